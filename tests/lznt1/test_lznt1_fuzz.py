"""Random and mutated LZNT1 streams: output of exactly the requested size or DecompressionError carrying
an input offset inside the stream; never a crash, another exception, or a write past the output."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memfs.lznt1 as lz
from memfs.exceptions import DecompressionError
from tests.stream_edits import edit_stream
from tests.xpress.xp_memlike import KINDS, memory_like

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GUARD = 32


def decode_checked(stream: bytes, out_size: int) -> None:
    try:
        out = lz.decompress(stream, out_size)
    except DecompressionError as e:
        assert e.offset is not None and 0 <= e.offset <= len(stream), str(e)
        assert str(e).startswith("LZNT1: ")
    else:
        assert type(out) is bytes and len(out) == out_size
    buf = bytearray(b"\xa5" * (out_size + 2 * GUARD))
    try:
        n = lz.decompress_into(stream, memoryview(buf)[GUARD : GUARD + out_size], True)
    except DecompressionError:
        pass
    else:
        assert 0 <= n <= out_size
    assert buf[:GUARD] == b"\xa5" * GUARD and buf[GUARD + out_size :] == b"\xa5" * GUARD


@SETTINGS
@given(st.binary(max_size=3000), st.integers(0, 20000))
def test_random_bytes(stream, out_size):
    decode_checked(stream, out_size)


@st.composite
def plausible_chunks(draw) -> bytes:
    """Chunks with valid headers and random bodies: reach the token decoding, not just header checks."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 4))):
        body = draw(st.binary(min_size=1, max_size=600))
        flag = 0x8000 if draw(st.integers(0, 4)) else 0
        out += struct.pack("<H", flag | 0x3000 | (len(body) - 1)) + body
    return bytes(out)


@SETTINGS
@given(plausible_chunks(), st.integers(0, 20000))
def test_random_bodies_behind_valid_headers(stream, out_size):
    decode_checked(stream, out_size)


@st.composite
def mutated_stream(draw):
    kind = draw(st.sampled_from(KINDS))
    size = draw(st.integers(1, 14000))
    data = memory_like([(kind, size, draw(st.integers(0, 1000))), ("code", size // 2, 2)])
    stream = bytearray(lz.compress(data))
    edit_stream(draw, stream)
    out_size = len(data) + draw(st.sampled_from((0, 0, -1, 1, -4096, 4096, 100)))
    return bytes(stream), max(0, out_size)


@SETTINGS
@given(mutated_stream())
def test_mutated_streams(case):
    decode_checked(*case)
