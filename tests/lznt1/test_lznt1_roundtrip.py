"""Round trips through our encoder and decoder, and decoding from several threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memfs.lznt1 as lz
from tests.xpress.xp_memlike import KINDS, corpus, memory_like

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def memory_data(draw) -> bytes:
    segments = draw(
        st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 9000), st.integers(0, 1 << 20)), max_size=4)
    )
    return memory_like(segments)


@SETTINGS
@given(memory_data())
def test_round_trip_memory_like(data):
    stream = lz.compress(data)
    assert len(stream) <= len(data) + 2 * (len(data) // 4096 + 1)
    assert lz.decompress(stream, len(data)) == data
    out = bytearray(len(data))
    assert lz.decompress_into(stream, out) == len(data) and out == data


@SETTINGS
@given(st.binary(max_size=10000))
def test_round_trip_arbitrary_bytes(data):
    assert lz.decompress(lz.compress(data), len(data)) == data


@SETTINGS
@given(st.integers(1, 3), st.integers(-3, 3), st.sampled_from(("zero", "random", "text")))
def test_round_trip_sizes_around_chunk_multiples(chunks, delta, kind):
    data = memory_like([(kind, max(0, chunks * 4096 + delta), chunks)])
    assert lz.decompress(lz.compress(data), len(data)) == data


def test_incompressible_chunks_are_stored_and_zero_chunks_shrink():
    data = memory_like([("random", 4096, 1), ("zero", 4096, 0)])
    stream = lz.compress(data)
    assert stream[:2] == (0x3FFF).to_bytes(2, "little")  # stored: no compressed flag, 4096 bytes
    assert stream[4098 + 1] & 0x80  # the zero chunk is compressed
    assert len(stream) < 4098 + 100


def test_threads_decode_in_parallel_with_correct_results():
    data = corpus(1 << 20, seed=3)
    stream = lz.compress(data)
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda _: lz.decompress(stream, len(data)) == data, range(40)))
