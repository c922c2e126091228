"""ReadAhead: sequential streams are recognised and the units ahead of them are warmed."""

from __future__ import annotations

import os
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


def test_workers_survive_fork():
    """The mount daemon forks after discovery has read ahead: the child must get working workers."""
    ra, warmed = _make(depth=4)
    for pos in range(4):
        ra.observe(pos * 0x10000, 0x10000, pos)
    assert ra.started
    pid = os.fork()
    if pid == 0:  # the child: its read-ahead must work, not queue into a dead thread's queue
        status = 1
        try:
            warmed.clear()
            for pos in range(4, 12):
                ra.observe(pos * 0x10000, 0x10000, pos)
            _settle(ra)
            status = 0 if set(range(9, 14)) <= set(warmed) else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ra.observe(4 * 0x10000, 0x10000, 4)  # the parent's read-ahead restarts too
    ra.observe(5 * 0x10000, 0x10000, 5)
    assert ra.started
    _settle(ra)
