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
from array import array

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE, UnitCache
from memfs.memory import FailureLog


class UnitStream(ByteSource):
    """A decoded stream: ``self._starts[i]`` is where unit ``i`` begins; units are contiguous.

    Subclasses call :meth:`_set_units` once at open and implement :meth:`_decode_unit`.
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
        i = bisect.bisect_right(self._starts, offset) - 1
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

        A unit wholly inside ``out`` is decoded straight into it, bypassing the cache (bulk readers read
        each unit once); a unit cut by the ends of ``out`` goes through the cache.
        """
        out = memoryview(out).cast("B")
        end = min(offset + len(out), self.size)
        if offset < 0 or offset >= end:
            return 0
        i = bisect.bisect_right(self._starts, offset) - 1
        pos = offset
        while pos < end:
            start, length = self.unit_span(i)
            inside = pos - start
            take = min(length - inside, end - pos)
            piece = out[pos - offset : pos - offset + take]
            if inside == 0 and take == length:
                self._decode_unit(i, piece)
            else:
                piece[:] = memoryview(self._cached(i))[inside : inside + take]
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
