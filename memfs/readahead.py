"""Read-ahead for compressed sources: decode the next units of a sequential reader on worker threads.

A compressed source serves a read by decoding whole units (64 KiB sets/blocks) on the calling thread.
For one sequential reader that leaves the second core idle.  :class:`ReadAhead` recognises sequential
streams (a read starting where an earlier one ended) and hands the units just ahead of each stream to
worker threads, which decode them into the source's :class:`~memfs.cache.UnitCache`.  The decoders
release the GIL, so the reader's thread copies and answers FUSE while a worker decodes; the cache's
single flight means a unit is never decoded twice (a reader arriving early waits for the worker).

Positions are indices into the source's ordered list of map runs; the source says which units a
range of positions needs (``units``) and how to load one into its cache (``warm``).

Fork: threads do not survive ``os.fork``, and the mount daemon is forked after kernel discovery has
already read (and read ahead) through the source.  Before any fork every live ReadAhead finishes its
queued units and stops its workers; the next sequential read starts fresh ones, in the parent and in
the child alike.  Without this the daemon's read-ahead queue had no workers.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
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
        self._closed = False
        self.batches = 0
        _LIVE.add(self)

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
            if start >= stop or self._closed:
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

    def pause(self) -> None:
        """Stop the workers (queued work is finished first); the next read-ahead starts new ones."""
        with self._lock:
            q, self._queue = self._queue, None
            threads, self._threads = self._threads, []
        if q is not None:
            for _ in threads:
                q.put(None)
            for thread in threads:
                thread.join()

    def close(self) -> None:
        """Stop the workers for good (queued work is finished first)."""
        self._closed = True
        self.pause()


_LIVE: weakref.WeakSet[ReadAhead] = weakref.WeakSet()


def _pause_all() -> None:
    for readahead in list(_LIVE):
        readahead.pause()


os.register_at_fork(before=_pause_all)
