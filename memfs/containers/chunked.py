"""The decoded stream of a container made of independently decodable units (chunks, blocks, spans).

Every container layer in this package indexes its units at open time — the decoded offset where each
begins — and decodes a unit only when a read touches it, through a byte-bounded
:class:`~memfs.cache.UnitCache` (decoding outside the lock, one decoder per unit).  :class:`UnitStream`
turns that into the byte-source protocol (``name``, ``size``, ``pread``, ``readinto``, ``close``):
format detection runs again on what it returns.

A unit that fails to decode is recorded once in :attr:`UnitStream.failures` (a
:class:`~memfs.memory.FailureLog`, shown in ``header.txt``) and raises
:class:`~memfs.exceptions.DecompressionError` for the reads that touch it; every other unit keeps
working, so a mount gives EIO for the pages of that unit only.
"""

from __future__ import annotations

import bisect
import functools
from array import array

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE, UnitCache
from memfs.memory import FailureLog
from memfs.parallel import HELPERS


class UnitStream(ByteSource):
    """A decoded stream of contiguous units, unit ``i`` starting where unit ``i - 1`` ends.

    Subclasses call :meth:`_set_units` once at open and implement :meth:`_decode_unit`.  A stream whose
    units follow a rule (a fixed unit size, units inside fixed-size blocks) may instead compute them:
    it sets ``size`` and overrides :meth:`_unit_at`, :meth:`unit_span` and :attr:`units` (``.zdmp``).
    """

    def __init__(self, base, name: str, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.base = base
        self.name = name
        self.size = 0
        self.cache = UnitCache(cache_size)
        self.failures = FailureLog()
        self.notes: list[str] = []
        self._starts = array("Q")

    def _set_units(self, starts: array, size: int) -> None:
        """Install the unit table: ascending decoded start offsets (the first is 0) and the total size."""
        self._starts = starts
        self.size = size

    @property
    def units(self) -> int:
        """Number of units in the stream."""
        return len(self._starts)

    def _unit_at(self, offset: int) -> int:
        """The unit holding decoded byte ``offset`` (``0 <= offset < size``)."""
        return bisect.bisect_right(self._starts, offset) - 1

    def unit_span(self, i: int) -> tuple[int, int]:
        """``(decoded start, decoded length)`` of unit ``i``."""
        start = self._starts[i]
        end = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
        return start, end - start

    # -- the byte-source protocol --------------------------------------------------------------------

    def pread(self, offset: int, n: int) -> bytes:
        """Up to ``n`` decoded bytes at ``offset``: short only at the end of the stream."""
        end = min(offset + n, self.size)
        if offset < 0 or offset >= end:
            return b""
        pieces = []
        i = self._unit_at(offset)
        pos = offset
        while pos < end:
            start, length = self.unit_span(i)
            data = self._cached(i)
            inside = pos - start
            take = min(length - inside, end - pos)
            pieces.append(data if take == len(data) else memoryview(data)[inside : inside + take])
            pos += take
            i += 1
        if len(pieces) == 1:
            return pieces[0] if type(pieces[0]) is bytes else bytes(pieces[0])
        return b"".join(pieces)

    def readinto(self, offset: int, out: memoryview) -> int:
        """Fill ``out`` with decoded bytes at ``offset``; return the count (short only at the end).

        Units wholly inside ``out`` are decoded straight into it, a run of them at a time
        (:meth:`_decode_units`), bypassing the cache (bulk readers read each unit once); a unit cut by
        the ends of ``out`` goes through the cache, unless the container can decode just the part
        needed (:meth:`_read_part`).
        """
        out = memoryview(out).cast("B")
        end = min(offset + len(out), self.size)
        if offset < 0 or offset >= end:
            return 0
        i = self._unit_at(offset)
        pos = offset
        while pos < end:
            start, length = self.unit_span(i)
            if pos == start and start + length <= end:
                j, stop = i + 1, start + length  # the run: units i .. j - 1, ending at stop
                while stop < end:
                    next_length = self.unit_span(j)[1]
                    if stop + next_length > end:
                        break
                    j, stop = j + 1, stop + next_length
                self._decode_units(i, j, out[pos - offset : stop - offset])
                pos, i = stop, j
                continue
            inside = pos - start
            take = min(length - inside, end - pos)
            self._read_part(i, inside, out[pos - offset : pos - offset + take])
            pos += take
            i += 1
        return end - offset

    def close(self) -> None:
        """Let go of the cache and close the source this stream was decoded from."""
        self.cache.clear()
        self.base.close()

    # -- for subclasses ------------------------------------------------------------------------------

    def _cached(self, i: int) -> bytes:
        return self.cache.get(i, lambda: self._decode_unit(i))

    def _decode_unit(self, i: int, out: memoryview | None = None) -> bytes:
        """Decode unit ``i``: into ``out`` (exactly its length; returns ``b""``) or as new bytes.

        On failure: ``self.failures.record(...)`` then raise DecompressionError (one line: the
        container's name, the offset of the bad unit in it, what was wrong).
        """
        raise NotImplementedError

    def _decode_units(self, i: int, j: int, out: memoryview) -> None:
        """Decode units ``i .. j - 1`` into ``out`` (exactly their length).

        Unit by unit by default, spread over the idle cores (:mod:`memfs.parallel`: one sequential
        reader's request decoded by two threads); a container that decodes a run of units faster in one
        call (``.zdmp``: one LZNT1 call per block) overrides it.
        """
        jobs, pos = [], 0
        for unit in range(i, j):
            length = self.unit_span(unit)[1]
            jobs.append(functools.partial(self._decode_unit, unit, out[pos : pos + length]))
            pos += length
        if len(jobs) == 1:
            jobs[0]()
        else:
            HELPERS.run(jobs)

    def _read_part(self, i: int, inside: int, out: memoryview) -> None:
        """Fill ``out`` with bytes ``inside .. inside + len(out)`` of unit ``i``, a piece cut by the ends
        of a read: from the cached unit by default.

        A container that can decode part of a unit without the rest overrides it (``.zdmp``: any run of
        whole LZNT1 chunks, so that page-aligned reads never decode a unit twice or copy it).
        """
        out[:] = memoryview(self._cached(i))[inside : inside + len(out)]

    def _status_rows(self, failed: str) -> list[tuple[str, str]]:
        """header.txt rows every container ends with: its notes, and how many units failed (``failed``)."""
        rows = [("Note", note) for note in self.notes]
        if self.failures.count:
            rows.append((failed, str(self.failures.count)))
        return rows

    def cache_stats(self) -> dict[str, int]:
        """Hit/miss counters of the decode cache (for header.txt and benchmarks)."""
        return self.cache.stats()

    def drop_cache(self) -> None:
        """Let go of decoded units kept for speed."""
        self.cache.clear()
