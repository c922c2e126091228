"""The 127 vector pairs of shared/data/xpress (docs/formats/xpress.md §7) through our decoders and
encoders."""

from __future__ import annotations

import hashlib

import pytest

import memfs.xpress as xp

from .xp_shared import manifest, manifest_params, vector_dir

DECODERS = {"plain_lz77": xp.decompress_plain, "lz77_huffman": xp.decompress_huffman}
DECODERS_INTO = {"plain_lz77": xp.decompress_plain_into, "lz77_huffman": xp.decompress_huffman_into}
ENCODERS = {"plain_lz77": xp.compress_plain, "lz77_huffman": xp.compress_huffman}


@pytest.mark.parametrize("entry", manifest_params())
def test_vector_decodes_byte_exactly(entry):
    data = (vector_dir() / entry["compressed"]).read_bytes()
    out = DECODERS[entry["algorithm"]](data, entry["expected_size"])
    assert len(out) == entry["expected_size"]
    assert hashlib.sha256(out).hexdigest() == entry["sha256_expected"]


@pytest.mark.parametrize("entry", manifest_params())
def test_vector_decodes_into_memoryview_slice(entry):
    data = (vector_dir() / entry["compressed"]).read_bytes()
    size = entry["expected_size"]
    buf = bytearray(b"\xaa" * (size + 32))
    written = DECODERS_INTO[entry["algorithm"]](memoryview(data), memoryview(buf)[16 : 16 + size])
    assert written == size
    assert buf[:16] == b"\xaa" * 16 and buf[16 + size :] == b"\xaa" * 16
    assert hashlib.sha256(buf[16 : 16 + size]).hexdigest() == entry["sha256_expected"]


@pytest.mark.parametrize("entry", manifest_params())
def test_encoder_round_trips_vector_original(entry):
    original = (vector_dir() / entry["expected"]).read_bytes()
    stream = ENCODERS[entry["algorithm"]](original)
    assert DECODERS[entry["algorithm"]](stream, len(original)) == original


@pytest.mark.parametrize("algorithm", ["plain_lz77", "lz77_huffman"])
def test_encoder_total_size_within_10_percent_of_windows(algorithm):
    """Windows made the samba/compressed-* streams; our total must be <= 1.10 x theirs."""
    root = vector_dir()
    ours = windows = 0
    for e in manifest():
        if e["algorithm"] == algorithm and e["compressed"].startswith("samba/"):
            windows += e["compressed_size"]
            ours += len(ENCODERS[algorithm]((root / e["expected"]).read_bytes()))
    assert windows > 0
    assert ours <= 1.10 * windows, (ours, windows)


@pytest.mark.parametrize("name", ["msxca_3.1_example1.lzplain", "msxca_3.1_example2.lzplain"])
def test_plain_encoder_reproduces_msxca_examples(name):
    """docs/formats/xpress.md §2.4: the [MS-XCA] plain examples are reproduced byte for byte."""
    root = vector_dir()
    (entry,) = [e for e in manifest() if e["compressed"].endswith(name)]
    assert (
        xp.compress_plain((root / entry["expected"]).read_bytes())
        == (root / entry["compressed"]).read_bytes()
    )
