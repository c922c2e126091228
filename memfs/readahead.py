"""Read-ahead for compressed sources: decode the next units of a sequential reader on worker threads.

A compressed source serves a read by decoding whole units (64 KiB sets/blocks) on the calling thread.
For one sequential reader that leaves the second core idle.  :class:`ReadAhead` recognises sequential
streams (a read starting where an earlier one ended) and hands the units just ahead of each stream to
worker threads, which decode them into the source's :class:`~memfs.cache.UnitCache`.  The decoders
release the GIL, so the reader's thread copies and answers FUSE while a worker decodes; the cache's
single flight means a unit is never decoded twice (a reader arriving early waits for the worker).

Positions are indices into the source's ordered list of map runs; the source says which units a
range of positions needs (``units``) and how to load one into its cache (``warm``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Sequence

MAX_STREAMS = 8
WORKERS = 2


class ReadAhead:
    """Follow up to ``MAX_STREAMS`` sequential readers and keep ``depth`` positions decoded ahead."""

    def __init__(
        self,
        positions: int,
        units: Callable[[int, int], Sequence[Hashable]],
        warm: Callable[[Hashable], None],
        depth: int = 8,
        workers: int = WORKERS,
    ) -> None:
        self.positions = positions
        self.depth = depth
        self._units = units
        self._warm = warm
        self._workers_wanted = workers
        self._streams: dict[int, int] = {}  # where a reader's next read starts -> last position queued
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue | None = None
        self._threads: list[threading.Thread] = []
        self.batches = 0

    @property
    def started(self) -> bool:
        """Whether any read-ahead was ever queued (worker threads exist)."""
        return self._queue is not None

    def observe(self, offset: int, length: int, position: int) -> None:
        """A read of ``length`` bytes at ``offset`` that starts in map run ``position``."""
        with self._lock:  # FUSE threads share the stream table
            streams = self._streams
            queued = streams.pop(offset, None)
            if queued is None:  # not (yet) a stream: remember where it would continue
                if len(streams) >= MAX_STREAMS:
                    del streams[next(iter(streams))]
                streams[offset + length] = -1
                return
            if position <= queued <= position + self.depth:
                if queued - position > self.depth // 2:
                    streams[offset + length] = queued  # still far enough ahead: queue in batches
                    return
                start = queued + 1
            else:
                start = position + 1
            stop = min(position + 1 + self.depth, self.positions)
            streams[offset + length] = max(queued, stop - 1)
            if start >= stop:
                return
            if self._queue is None:
                self._start()
            assert self._queue is not None
            q = self._queue
        units = self._units(start, stop)
        if units:
            self.batches += 1
            q.put(units)

    def _start(self) -> None:
        # A plain queue and daemon threads: a ThreadPoolExecutor's futures cost ~3x more CPU per unit.
        q: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name="memfs-readahead", daemon=True)
            for _ in range(self._workers_wanted)
        ]
        for thread in self._threads:
            thread.start()
        self._queue = q

    def _work(self, q: queue.SimpleQueue) -> None:
        while (units := q.get()) is not None:
            for unit in units:
                self._warm(unit)

    def close(self) -> None:
        """Stop the workers (queued work is finished first)."""
        with self._lock:
            q, self._queue = self._queue, None
        if q is not None:
            for _ in self._threads:
                q.put(None)
            for thread in self._threads:
                thread.join()
