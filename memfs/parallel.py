"""Both cores for one reader: the units of one bulk read are decoded by the caller and idle helper threads.

A sequential reader of a mount (``dd``, ``grep``, ``yara``) has one request in flight at a time: the kernel
sends the next 1 MiB read-ahead request only once the reader reaches the previous one, so one FUSE thread
decodes while the other cores wait.  memfs splits each request instead: the 16 or so units a 1 MiB
request covers are decoded by the FUSE thread *and* by helper threads, each straight into its slice of the
reply buffer (the Xpress decoders release the GIL), and the request is answered when the last one is done.

Why split rather than decode ahead of the reader (the other way to use an idle core): splitting does no
speculative work, keeps nothing beyond the kernel's own reply buffer (so no decoded unit competes with the
cache budget), needs no guess about what comes next and serves any reader whose requests span several
units (convert's 8 MiB chunks, 1 MiB read-ahead).  Decoding ahead would hold up to a request's worth of
decoded units per reader in the cache and waste them when the reader stops or seeks; on two cores it
cannot beat splitting, which already gives the one request in flight both cores (docs/performance.md,
"Both cores for one reader": the daemon had exactly one request in progress two thirds of the time).

Helpers take work only when they are free: a caller never waits for a busy helper, it decodes its own units
one by one and only waits, at the end, for the units a helper already started.  A request that arrives
while others are being served is split only over the cores they leave (none on two cores), so several
readers at once are not slowed down.  The pool holds one thread per usable core but one
(``os.sched_getaffinity``: a daemon pinned to one core, ``taskset -c 0``, runs everything inline), and
is started on first use in each process (the mount's daemon is forked after the image is opened).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable, Sequence

MAX_HELPERS = 15
"""Upper bound on helper threads, whatever the number of cores (a 1 MiB request is 16 units)."""

Job = Callable[[], None]


def usable_cores() -> int:
    """Cores this thread may run on (its CPU affinity, e.g. set by ``taskset``), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Batch:
    """The jobs of one request, taken one at a time by whoever is free (caller first)."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = jobs
        self._next = itertools.count()  # next() is atomic under the GIL: each job is taken once
        self._left = len(jobs)
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        """Run jobs until none is left to take."""
        jobs, count = self.jobs, len(self.jobs)
        while (index := next(self._next)) < count:
            try:
                jobs[index]()
            except BaseException as exc:  # handed to the caller, who raises it
                if self.error is None:
                    self.error = exc
            with self._lock:
                self._left -= 1
                if self._left == 0:
                    self.done.set()


class Helpers:
    """A pool of helper threads that join in running a caller's jobs (see the module docstring)."""

    def __init__(self, max_helpers: int = MAX_HELPERS) -> None:
        self.max_helpers = max_helpers
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Batch] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._running = 0  # callers inside run() now
        self.batches = 0  # requests split so far (for tests and benchmarks)

    def run(self, jobs: Sequence[Job]) -> None:
        """Run every job, on this thread and on idle helpers; raise the first error any job raised."""
        with self._lock:
            # Cores already busy with other callers' requests (two readers, or the kernel's read-ahead
            # overlapping two requests of one reader) are not idle: splitting there only adds switches.
            helpers = min(usable_cores() - 1 - self._running, len(jobs) - 1, self.max_helpers)
            self._running += 1
        try:
            if helpers <= 0:
                for job in jobs:
                    job()
                return
            self._start(helpers)
            batch = _Batch(jobs)
            for _ in range(helpers):
                self._queue.put(batch)
            self.batches += 1
            batch.work()
            batch.done.wait()
            if batch.error is not None:
                raise batch.error
        finally:
            with self._lock:
                self._running -= 1

    def _start(self, wanted: int) -> None:
        if len(self._threads) >= wanted:
            return
        with self._start_lock:
            while len(self._threads) < wanted:
                thread = threading.Thread(target=self._serve, name="memfs-helper", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            self._queue.get().work()  # a batch already finished by others is a no-op

    def _forget_threads(self) -> None:
        """In a forked child: the parent's threads do not exist here; start afresh on first use."""
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._threads = []
        self._running = 0


HELPERS = Helpers()
"""The process's pool, shared by every source."""

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=HELPERS._forget_threads)
