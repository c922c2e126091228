"""``decompress_huffman_prefix``: decoding an LZ77+Huffman stream only as far as a reader needs.

What is checked: the bytes returned are the start of what the full decoder returns (Windows-made vectors,
our encoder's streams of memory-like data across the 64 KiB block boundary, every ``need`` from 0 to the
end on small streams); at least ``need`` and at most ``out_size`` bytes come back; bad arguments are
refused; damaged streams raise DecompressionError or give a prefix that the full decode agrees with.
The C core is also exercised under AddressSanitizer by ``make asan`` (tests/xpress/asan_driver.c).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memfs.xpress as xp
from memfs.exceptions import DecompressionError
from tests.stream_edits import edit_stream

from .xp_memlike import KINDS, memory_like
from .xp_shared import manifest_params, vector_dir

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_prefix(stream: bytes, full: bytes, need: int) -> bytes:
    got = xp.decompress_huffman_prefix(stream, len(full), need)
    assert type(got) is bytes
    assert need <= len(got) <= len(full)
    assert got == full[: len(got)]
    return got


HUFFMAN_VECTORS = [
    p for p in manifest_params() if p.values[0] is None or p.values[0]["algorithm"] == "lz77_huffman"
]


@pytest.mark.parametrize("entry", HUFFMAN_VECTORS)
def test_windows_vectors_prefixes(entry):
    root = vector_dir()
    stream = (root / entry["compressed"]).read_bytes()
    full = (root / entry["expected"]).read_bytes()
    rng = random.Random(entry["compressed"])
    for need in {0, 1, len(full) // 2, len(full), *(rng.randrange(len(full) + 1) for _ in range(8))}:
        check_prefix(stream, full, need)


@SETTINGS
@given(st.sampled_from(KINDS), st.integers(1, 200_000), st.integers(0, 1 << 20), st.data())
def test_prefix_is_the_start_of_the_full_decode(kind, size, seed, data):
    full = memory_like([(kind, size, seed), ("pointers", size // 5, seed + 1)])
    stream = xp.compress_huffman(full)
    # Needs around the 64 KiB block boundaries (a block ends after exactly 65536 bytes, §3.4).
    edges = [b + d for b in range(65536, len(full), 65536) for d in (-1, 0, 1)]
    needs = data.draw(st.lists(st.integers(0, len(full)), max_size=6)) + [n for n in edges if n <= len(full)]
    for need in needs:
        check_prefix(stream, full, need)


def test_every_need_of_a_small_stream():
    full = memory_like([("text", 3000, 7), ("random", 500, 8), ("zero", 600, 9)])
    stream = xp.compress_huffman(full)
    produced = [len(check_prefix(stream, full, need)) for need in range(len(full) + 1)]
    assert produced[0] == 0 and produced[-1] == len(full)
    assert any(p > n for n, p in enumerate(produced)), "some match should run past the need"


def test_a_page_of_a_unit_decodes_much_less():
    full = memory_like([("text", 65536, 3)])
    stream = xp.compress_huffman(full)
    assert len(check_prefix(stream, full, 4096)) < 8192


@pytest.mark.parametrize("need", [-1, 65537])
def test_need_outside_the_output_is_refused(need):
    stream = xp.compress_huffman(bytes(65536))
    with pytest.raises(ValueError, match="need"):
        xp.decompress_huffman_prefix(stream, 65536, need)


def test_damage_after_the_prefix_goes_unseen_and_before_it_raises():
    full = memory_like([("random", 65536, 4)])
    stream = bytearray(xp.compress_huffman(full))
    cut = bytes(stream[: len(stream) // 2])  # the second half of the stream is missing
    assert check_prefix(cut, full, 4096)
    with pytest.raises(DecompressionError):
        xp.decompress_huffman_prefix(cut, len(full), len(full))
    stream[0:256] = bytes(256)  # no code lengths: not a prefix code (§3.2)
    with pytest.raises(DecompressionError, match="offset 0x0"):
        xp.decompress_huffman_prefix(bytes(stream), len(full), 1)


@SETTINGS
@given(st.data())
def test_mutated_streams_give_a_true_prefix_or_raise(data):
    full = memory_like([(data.draw(st.sampled_from(KINDS)), data.draw(st.integers(1, 9000)), 5)])
    stream = bytearray(xp.compress_huffman(full))
    edit_stream(data.draw, stream)
    out_size = len(full)
    need = data.draw(st.integers(0, out_size))
    try:
        got = xp.decompress_huffman_prefix(bytes(stream), out_size, need)
    except DecompressionError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(stream)
        return
    assert need <= len(got) <= out_size
    try:
        whole = xp.decompress_huffman(bytes(stream), out_size)
    except DecompressionError:
        return  # the damage lies past what the prefix needed
    assert got == whole[: len(got)]
