"""ReadAhead: sequential streams are recognised and the units ahead of them are warmed."""

from __future__ import annotations

import threading
import time

from memfs.readahead import ReadAhead


def _make(depth: int = 4):
    warmed: list[int] = []
    lock = threading.Lock()

    def warm(unit: int) -> None:
        with lock:
            warmed.append(unit)

    ra = ReadAhead(100, lambda a, b: tuple(range(a, b)), warm, depth=depth)
    return ra, warmed


def _settle(ra: ReadAhead) -> None:
    ra.close()  # finishes queued work


def test_random_reads_queue_nothing():
    ra, warmed = _make()
    for pos in (50, 3, 77, 12):
        ra.observe(pos * 0x10000, 0x1000, pos)
    _settle(ra)
    assert not ra.started and warmed == []


def test_sequential_stream_is_read_ahead_in_batches():
    ra, warmed = _make(depth=4)
    for pos in range(10):
        ra.observe(pos * 0x10000, 0x10000, pos)
    assert ra.started
    _settle(ra)
    assert sorted(set(warmed)) == list(range(2, 14))  # ahead of positions 1..9, never behind
    assert len(warmed) == len(set(warmed))  # each unit queued once
    assert ra.batches < 9  # batched, not one queue item per read


def test_two_interleaved_streams():
    ra, warmed = _make(depth=4)
    for step in range(6):
        ra.observe(step * 0x10000, 0x10000, step)
        ra.observe((50 + step) * 0x10000, 0x10000, 50 + step)
    _settle(ra)
    assert {3, 4, 53, 54} <= set(warmed)


def test_close_is_prompt():
    ra, _ = _make()
    for pos in range(5):
        ra.observe(pos * 0x10000, 0x10000, pos)
    start = time.monotonic()
    ra.close()
    assert time.monotonic() - start < 5
