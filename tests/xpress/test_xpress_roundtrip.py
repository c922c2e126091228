"""Property tests: our encoders' output is decoded exactly by our decoders and by independent ones.

Independent decoders: xpress_lz77 (Rust, PyPI) for both algorithms, except Huffman streams with the
32-bit length escape which it cannot decode (docs/formats/xpress.md §6); dissect.util (pure Python) for plain;
and
the literal transcription of docs/formats/xpress.md in xp_reference.py for small Huffman inputs.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memfs.xpress as xp
from tests.readers import independent_reader

from . import xp_reference as ref
from .xp_memlike import KINDS, memory_like

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

segments = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 24000), st.integers(0, 1 << 20)), max_size=8
)
# Sizes that straddle the 64 KiB block and the escape boundaries, plus small hibernation-like sizes.
small_segments = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 1500), st.integers(0, 1 << 20)), max_size=4
)
LONG_RUN = re.compile(rb"(.)\1{65538}", re.S)  # a run that needs the 32-bit length escape


@SETTINGS
@given(segments)
def test_plain_round_trip_and_independent_decoders(segs):
    xpress_lz77 = independent_reader("xpress_lz77")
    lzxpress = independent_reader("dissect.util.compression.lzxpress")
    data = memory_like(segs)
    stream = xp.compress_plain(data)
    assert xp.decompress_plain(stream, len(data)) == data
    assert xpress_lz77.lz77_plain_decompress_py(stream) == data
    assert lzxpress.decompress(stream) == data


@SETTINGS
@given(segments)
def test_huffman_round_trip_and_xpress_lz77(segs):
    xpress_lz77 = independent_reader("xpress_lz77")
    data = memory_like(segs)
    stream = xp.compress_huffman(data)
    assert xp.decompress_huffman(stream, len(data)) == data
    if not LONG_RUN.search(data):
        assert bytes(xpress_lz77.lz77_huffman_decompress_py(stream, len(data))) == data


@SETTINGS
@given(small_segments)
def test_huffman_round_trip_reference_decoder(segs):
    data = memory_like(segs)
    stream = xp.compress_huffman(data)
    assert ref.huffman_decode(stream, len(data)).output == data


@SETTINGS
@given(st.binary(max_size=3000))
def test_round_trip_arbitrary_bytes(data):
    assert xp.decompress_plain(xp.compress_plain(data), len(data)) == data
    assert xp.decompress_huffman(xp.compress_huffman(data), len(data)) == data


@settings(max_examples=25, deadline=None)
@given(st.integers(65536 - 40, 65536 + 40), st.sampled_from(KINDS), st.integers(0, 1 << 20))
def test_round_trip_sizes_around_64k(size, kind, seed):
    data = memory_like([(kind, size, seed)])
    for enc, dec in ((xp.compress_plain, xp.decompress_plain), (xp.compress_huffman, xp.decompress_huffman)):
        assert dec(enc(data), size) == data


@SETTINGS
@given(st.binary(max_size=400), st.integers(1, 40), st.integers(0, 255), st.binary(max_size=3))
def test_round_trip_short_runs_near_the_end(prefix, run, byte, suffix):
    """Short runs near the end make the last symbols (3, 1) matches, i.e. symbol 256 (docs/formats/xpress.md
    §3.1)."""
    xpress_lz77 = independent_reader("xpress_lz77")
    data = prefix + bytes([byte]) * run + suffix
    huff = xp.compress_huffman(data)
    assert xp.decompress_huffman(huff, len(data)) == data
    assert ref.huffman_decode(huff, len(data)).output == data
    assert bytes(xpress_lz77.lz77_huffman_decompress_py(huff, len(data))) == data
    assert xp.decompress_plain(xp.compress_plain(data), len(data)) == data
