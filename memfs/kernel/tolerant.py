"""Physical memory as kernel discovery reads it: damage is skipped and counted, time is bounded.

Discovery scans memory it knows nothing about yet, so it must survive whatever the image holds
(docs/architecture.md, "Discovery"):

* **A unit that fails to decode costs only its own pages.**  A read that meets one is retried page by
  page: the pages of the undecodable unit read as zeros — as a hole does — and every other page is
  read as usual.  Zeros are safe for the scans: each structure they accept is validated first
  (self-referencing tables, signatures, pointer ranges, KUSER_SHARED_DATA mapping), so a zero page
  can only make a value "not found", never a wrong one.  A page known bad is never decoded again,
  and each bad unit is counted once (by its error message, which names the unit's offset).
* **Bounded.**  Every read checks one deadline for the whole discovery (:data:`DISCOVERY_SECONDS`),
  whatever scan is running; past it, or past :data:`MAX_SKIPPED_UNITS` undecodable units (the image
  is then too damaged for a scan to find anything), :class:`DiscoveryBudgetError` ends discovery,
  which keeps what it found until then.  The budgets inside each scan (bytes, pages, table entries,
  seconds) still apply first; this one holds for any input.
* **The evidence changing is not damage.**  :class:`~memfs.exceptions.SourceChangedError` (the image
  file changed under memfs) is never skipped: discovery stops and says why.
"""

from __future__ import annotations

import time

from memfs.exceptions import MemfsError, SourceChangedError
from memfs.memory import PAGE_SIZE, MemorySource

DISCOVERY_SECONDS = 30.0
"""Wall-clock budget of one whole discovery, checked on every read (each scan has a smaller one)."""
MAX_SKIPPED_UNITS = 1024
"""Undecodable units discovery steps over before it gives up on the image."""


class DiscoveryBudgetError(MemfsError):
    """Discovery ran out of its time budget, or met more undecodable units than it steps over."""


class TolerantMemory:
    """A :class:`~memfs.memory.MemorySource` as discovery reads it (see the module docstring).

    It offers what the scans use of a source — ``name``, ``size``, ``metadata``, ``read``,
    ``is_present``, ``next_present``, ``dump_header`` — and reads through the source, never into it.
    """

    def __init__(
        self, source: MemorySource, seconds: float = DISCOVERY_SECONDS, max_skipped: int = MAX_SKIPPED_UNITS
    ) -> None:
        self.source = source
        self.name = source.name
        self.size = source.size
        self.metadata = source.metadata
        self.is_present = source.is_present
        self.next_present = source.next_present
        self.dump_header = source.dump_header
        self.seconds = seconds
        self._deadline: float | None = time.monotonic() + seconds
        self._max_skipped = max_skipped
        self._bad_pages: set[int] = set()
        self.skipped: dict[str, None] = {}
        """Error messages of the units that failed to decode, each once, in the order met."""

    def finish(self) -> None:
        """Discovery is over: the deadline no longer applies (the address space it built stays usable)."""
        self._deadline = None

    def damaged(self, pa: int) -> bool:
        """Whether the page holding ``pa`` failed to decode (it reads as zeros here)."""
        return pa // PAGE_SIZE in self._bad_pages

    def read(self, pa: int, n: int) -> bytes:
        """``n`` bytes at ``pa`` as :meth:`MemorySource.read` gives them, undecodable pages as zeros."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise DiscoveryBudgetError(f"the time budget of {self.seconds:g} s for kernel discovery ran out")
        if self._bad_pages and self._touches_bad(pa, n):
            return self._by_page(pa, n)
        try:
            return self.source.read(pa, n)
        except SourceChangedError:
            raise
        except MemfsError:
            return self._by_page(pa, n)

    def _touches_bad(self, pa: int, n: int) -> bool:
        bad = self._bad_pages
        return any(page in bad for page in range(pa // PAGE_SIZE, (pa + max(n, 1) - 1) // PAGE_SIZE + 1))

    def _by_page(self, pa: int, n: int) -> bytes:
        """The read again, one page at a time: pages that fail (or failed before) become zeros."""
        end = min(pa + n, self.size)
        pieces = []
        pos = max(pa, 0)
        while pos < end:
            take = min(end - pos, PAGE_SIZE - pos % PAGE_SIZE)
            page = pos // PAGE_SIZE
            if page in self._bad_pages:
                pieces.append(bytes(take))
            else:
                try:
                    pieces.append(self.source.read(pos, take))
                except SourceChangedError:
                    raise
                except MemfsError as exc:
                    self._skip(page, str(exc))
                    pieces.append(bytes(take))
            pos += take
        return b"".join(pieces)

    def _skip(self, page: int, message: str) -> None:
        self._bad_pages.add(page)
        if message not in self.skipped:
            self.skipped[message] = None
            if len(self.skipped) > self._max_skipped:
                raise DiscoveryBudgetError(
                    f"more than {self._max_skipped} units of the image do not decode; "
                    f"kernel discovery gave up (first: {next(iter(self.skipped))})"
                )


ScanSource = MemorySource | TolerantMemory
"""What the scans read: a source itself (tests, direct callers) or discovery's tolerant view of it."""
