"""Fuzzing the decoders with random and mutated streams: the only outcomes allowed are output of exactly
the requested length or DecompressionError (no crash, no hang, no other exception)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memfs.xpress as xp
from memfs.exceptions import DecompressionError
from tests.stream_edits import edit_stream

from .xp_memlike import KINDS, memory_like

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECODERS = (xp.decompress_plain, xp.decompress_huffman)


def decode_checked(decode, data: bytes, out_size: int) -> None:
    try:
        out = decode(data, out_size)
    except DecompressionError as e:
        assert e.offset is not None and 0 <= e.offset <= len(data)
        return
    assert type(out) is bytes and len(out) == out_size
    into = bytearray(out_size)
    try:
        into_fn = xp.decompress_plain_into if decode is xp.decompress_plain else xp.decompress_huffman_into
        assert into_fn(data, into) == out_size
    except DecompressionError:  # pragma: no cover - both paths run the same C function
        raise AssertionError("decode succeeded but decode-into failed") from None
    assert into == out


@st.composite
def mutated_stream(draw):
    """A valid stream of memory-like data with a few random edits applied."""
    kind = draw(st.sampled_from(KINDS))
    size = draw(st.integers(1, 9000))
    data = memory_like([(kind, size, draw(st.integers(0, 1000))), ("text", size // 3, 1)])
    algorithm = draw(st.sampled_from((0, 1)))
    stream = bytearray((xp.compress_plain, xp.compress_huffman)[algorithm](data))
    edit_stream(draw, stream)
    out_size = len(data) + draw(st.sampled_from((0, 0, 0, -1, 1, 3, -100, 100)))
    return algorithm, bytes(stream), max(0, out_size)


@SETTINGS
@given(mutated_stream())
def test_mutated_streams_decode_or_raise(case):
    algorithm, stream, out_size = case
    decode_checked(DECODERS[algorithm], stream, out_size)
    # the wrong algorithm (docs/formats/xpress.md §4 row 12)
    decode_checked(DECODERS[1 - algorithm], stream, out_size)


@SETTINGS
@given(st.binary(max_size=2000), st.integers(0, 70000))
def test_random_streams_decode_or_raise(stream, out_size):
    for decode in DECODERS:
        decode_checked(decode, stream, out_size)


def pack_lengths(lengths: dict[int, int]) -> bytes:
    """The 256-byte code-length table (docs/formats/xpress.md §3.1) for {symbol: length}."""
    table = bytearray(256)
    for sym, n in lengths.items():
        table[sym // 2] |= n << (4 * (sym % 2))
    return bytes(table)


# Complete codes: all 512 symbols at 9 bits; literals only at 8 bits; a skewed code with lengths
# 1..15 (long codes go through the decoder's second-level tables) mixing matches and literals.
SKEWED = [257, 0, 300, 1, 511, 2, 270, 3, 400, 4, 271, 5, 256, 7, 8, 9]
TABLES = [
    pack_lengths(dict.fromkeys(range(512), 9)),
    pack_lengths(dict.fromkeys(range(256), 8)),
    pack_lengths({sym: min(i + 1, 15) for i, sym in enumerate(SKEWED)}),
]


@SETTINGS
@given(st.sampled_from(TABLES), st.binary(min_size=4, max_size=600), st.integers(1, 70000))
def test_random_bit_streams_after_a_valid_huffman_table(table, body, out_size):
    """Random bits behind a complete code exercise the Huffman symbol loop, not just table checks."""
    decode_checked(xp.decompress_huffman, table + body, out_size)
