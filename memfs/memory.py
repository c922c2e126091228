"""The physical-memory source: the one interface every input format implements.

A source knows the *runs* of physical address space its image holds (sorted, non-overlapping
``(start, length)`` byte ranges computed at open time), what the image says about itself
(:class:`Metadata`), and how to read bytes inside one run (``_read_mapped``).  The base class
does the rest: :meth:`MemorySource.read` splits a request at run boundaries, fills holes with
zeros and clamps at the end of the address space.  :meth:`MemorySource.read_into` does the same
into a caller's buffer, for bulk readers; a source that can decode or read straight into it
overrides ``_read_mapped_into``.

Formats add their own detail to ``header.txt`` through :meth:`MemorySource.describe`, which returns
titled sections of ``(label, value)`` rows; nothing outside a format's reader knows its quirks.
"""

from __future__ import annotations

import bisect
import logging
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from memfs.exceptions import CorruptionError, MemfsError

log = logging.getLogger(__name__)

PAGE_SIZE = 0x1000
PHYSICAL_LIMIT = 1 << 52
"""No physical address reaches this: the architectural maximum on x64 and PAE (MAXPHYADDR is at most
52) and on ARM64.  Readers refuse a range that ends above it, which also keeps every size a FUSE
``st_size`` can hold."""
MAX_PROCESSORS = 2048
"""More logical processors than any Windows supports: a processor count above it is not believed."""

Run = tuple[int, int]
"""A present range of physical address space: ``(start, length)`` in bytes."""

Rows = list[tuple[str, str]]
"""Rows of a ``header.txt`` section: ``(label, value)``."""


@dataclass
class Section:
    """A titled block of ``header.txt`` that a format reader contributes."""

    title: str
    rows: Rows = field(default_factory=list)


@dataclass
class Metadata:
    """What an image says (or what discovery found) about the system it was taken from.

    Every field may be unknown, and unknown is ``None``, never 0.  ``unknown_reasons`` maps a
    field name to a sentence saying why it is unknown; ``notes`` collects warnings a user should
    read (shown in ``header.txt``).
    """

    format: str = "unknown"
    format_detail: str | None = None
    arch: str | None = None  # "x64", "x86", "arm64"
    pae: bool | None = None
    os_build: int | None = None
    os_major: int | None = None
    os_minor: int | None = None
    dump_type: int | None = None
    machine_image_type: int | None = None
    directory_table_base: int | None = None
    kd_debugger_data_block: int | None = None
    kernel_base: int | None = None
    ps_loaded_module_list: int | None = None
    ps_active_process_head: int | None = None
    pfn_database: int | None = None
    ki_processor_block: int | None = None
    number_processors: int | None = None
    bugcheck_code: int | None = None
    bugcheck_parameters: list[int] | None = None
    system_time: datetime | None = None
    system_uptime: timedelta | None = None
    product_type: int | None = None
    suite_mask: int | None = None
    comment: str | None = None
    context: dict[str, int] | None = None
    """Saved register context of the current/first processor, by register name (``rip``, ``cr3``...)."""
    unknown_reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def unknown(self, name: str, reason: str) -> None:
        """Record that field ``name`` is unknown and why (keeps any value already found)."""
        if getattr(self, name, None) is None:
            self.unknown_reasons[name] = reason


def open_image_file(path: str) -> int:
    """Open ``path`` read-only; a missing file, a directory or no permission is a one-line MemfsError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MemfsError(f"{path}: no such file") from None
    except PermissionError:
        raise MemfsError(f"{path}: permission denied") from None
    except OSError as exc:
        raise MemfsError(f"{path}: cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(os.fstat(fd).st_mode):  # os.open(O_RDONLY) succeeds on a directory on Linux
        os.close(fd)
        raise MemfsError(f"{path}: is a directory, not an image file")
    return fd


class FailureLog:
    """Records units that failed to decode: each is logged once and counted for ``header.txt``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[int, str] = {}

    def record(self, unit_offset: int, message: str) -> None:
        """Remember that the unit at file offset ``unit_offset`` failed; log it the first time."""
        with self._lock:
            if unit_offset in self._failures:
                return
            self._failures[unit_offset] = message
        log.error("%s", message)

    @property
    def count(self) -> int:
        """Number of distinct units that failed so far."""
        return len(self._failures)

    def items(self) -> list[tuple[int, str]]:
        """The failures so far, ordered by file offset."""
        with self._lock:
            return sorted(self._failures.items())


class MemorySource:
    """Physical memory held by an image file.

    Subclasses set ``self.runs`` (via :meth:`_set_runs`) and ``self.metadata`` when they open, and
    implement :meth:`_read_mapped`.  They never write to the image.
    """

    format_name = "unknown"

    def __init__(self, path: str) -> None:
        self.path = path
        self.metadata = Metadata(format=self.format_name)
        self.failures = FailureLog()
        self.runs: tuple[Run, ...] = ()
        self._run_starts: list[int] = []
        self._fd: int | None = None

    # -- set-up helpers for subclasses -------------------------------------------------------

    def _open_file(self) -> int:
        """Open the image read-only and remember its descriptor and size."""
        fd = open_image_file(self.path)
        self._fd = fd
        self.file_size = os.fstat(fd).st_size
        return fd

    def _set_runs(self, runs: Iterable[Run]) -> None:
        """Install the run table: merged where adjacent, checked sorted and non-overlapping."""
        merged: list[list[int]] = []
        for start, length in runs:
            if length <= 0:
                continue
            if start < 0 or start + length > PHYSICAL_LIMIT:
                raise CorruptionError(
                    f"{self.path}: physical range {start:#x}-{start + length:#x} lies beyond the 52-bit "
                    "physical address space"
                )
            if merged and start < merged[-1][0] + merged[-1][1]:
                raise CorruptionError(
                    f"{self.path}: physical range {start:#x} overlaps the previous one "
                    f"ending at {merged[-1][0] + merged[-1][1]:#x}"
                )
            if merged and start == merged[-1][0] + merged[-1][1] and self._runs_mergeable():
                merged[-1][1] += length
            else:
                merged.append([start, length])
        self.runs = tuple((s, n) for s, n in merged)
        self._run_starts = [s for s, _ in self.runs]

    def _runs_mergeable(self) -> bool:
        """Whether adjacent runs may be merged; sources whose runs index file data say no."""
        return True

    # -- public API ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Size of the physical address space: the end of the highest run."""
        if not self.runs:
            return 0
        start, length = self.runs[-1]
        return start + length

    @property
    def present_bytes(self) -> int:
        """Bytes of physical memory the image actually holds."""
        return sum(length for _, length in self.runs)

    def read(self, pa: int, n: int) -> bytes:
        """Read ``n`` bytes of physical memory at ``pa``; holes read as zeros, clamped at ``size``."""
        end = min(pa + n, self.size)
        if pa < 0 or pa >= end:
            return b""
        index = bisect.bisect_right(self._run_starts, pa) - 1
        if index >= 0:
            run_start, run_len = self.runs[index]
            if pa + n <= run_start + run_len:  # the common case: inside one run
                return self._read_mapped(pa, end - pa)
        pieces = [
            self._read_mapped(pos, take) if mapped else bytes(take)
            for pos, take, mapped in self._spans(pa, end, max(index, 0))
        ]
        return b"".join(pieces)

    def read_into(self, pa: int, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` with physical memory at ``pa`` (holes as zeros); return the bytes filled.

        Like :meth:`read` but without building a bytes object: bulk readers (``memfs convert``) reuse
        one buffer per chunk.  Fewer than ``len(buffer)`` bytes are filled only at the end of the
        address space.  Sources override :meth:`_read_mapped_into` to fill it directly.
        """
        view = memoryview(buffer).cast("B")
        end = min(pa + len(view), self.size)
        if pa < 0 or pa >= end:
            return 0
        index = max(bisect.bisect_right(self._run_starts, pa) - 1, 0)
        for pos, take, mapped in self._spans(pa, end, index):
            piece = view[pos - pa : pos - pa + take]
            if mapped:
                self._read_mapped_into(pos, piece)
            else:
                piece[:] = bytes(take)
        return end - pa

    def _spans(self, pos: int, end: int, index: int) -> Iterator[tuple[int, int, bool]]:
        """``(pa, length, mapped)`` pieces covering ``pos … end-1``: runs and the holes between them.

        ``index`` is the run at or before ``pos`` to start looking from.
        """
        runs = self.runs
        while pos < end:
            while index < len(runs) and runs[index][0] + runs[index][1] <= pos:
                index += 1
            if index == len(runs):
                yield pos, end - pos, False
                return
            run_start, run_len = runs[index]
            if pos < run_start:
                gap = min(run_start, end) - pos
                yield pos, gap, False
                pos += gap
                continue
            take = min(run_start + run_len, end) - pos
            yield pos, take, True
            pos += take

    def is_present(self, pa: int) -> bool:
        """Whether physical address ``pa`` lies inside a run."""
        index = bisect.bisect_right(self._run_starts, pa) - 1
        return index >= 0 and pa < self.runs[index][0] + self.runs[index][1]

    def describe(self) -> list[Section]:
        """Format-specific sections for ``header.txt`` (none by default)."""
        return []

    def cache_stats(self) -> dict[str, int] | None:
        """Hit/miss counters of the source's decode cache, if it has one."""
        return None

    def drop_cache(self) -> None:
        """Let go of decoded data kept for speed (none by default); later reads decode it again."""

    def close(self) -> None:
        """Release the image file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> MemorySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for subclasses ----------------------------------------------------------------------

    def _read_mapped(self, pa: int, n: int) -> bytes:
        """Return ``n`` bytes at ``pa``; the whole range lies inside one run."""
        raise NotImplementedError

    def _read_mapped_into(self, pa: int, out: memoryview) -> None:
        """Fill ``out`` with the ``len(out)`` bytes at ``pa`` (inside one run).

        The default copies :meth:`_read_mapped`; sources that can decode or read straight into the
        buffer override it.
        """
        out[:] = self._read_mapped(pa, len(out))

    def _pread_into(self, offset: int, out: memoryview) -> None:
        """Fill ``out`` from the image at ``offset`` or raise a CorruptionError (as :meth:`_pread`)."""
        assert self._fd is not None, "source is closed"
        got = os.preadv(self._fd, [out], offset)
        if got != len(out):
            raise self._ends_early(offset + got, len(out) - got)

    def _pread(self, offset: int, n: int) -> bytes:
        """Read exactly ``n`` bytes of the image at ``offset`` or raise a CorruptionError."""
        assert self._fd is not None, "source is closed"
        data = os.pread(self._fd, n, offset)
        if len(data) != n:
            raise self._ends_early(offset + len(data), n - len(data))
        return data

    def _ends_early(self, offset: int, missing: int) -> CorruptionError:
        return CorruptionError(
            f"{self.path}: offset {offset:#x}: file ends {missing:#x} bytes "
            "before the data the tables point to"
        )


class BufferSource(MemorySource):
    """An in-memory source (for tests and synthetic images): ``segments`` maps PA to bytes."""

    format_name = "memory"

    def __init__(self, segments: Sequence[tuple[int, bytes]], metadata: Metadata | None = None) -> None:
        super().__init__("<memory>")
        ordered = sorted(segments)
        self._segments = ordered
        self._set_runs((pa, len(data)) for pa, data in ordered)
        self._data = {pa: data for pa, data in ordered}
        if metadata is not None:
            self.metadata = metadata

    def _runs_mergeable(self) -> bool:
        return False

    def _read_mapped(self, pa: int, n: int) -> bytes:
        index = bisect.bisect_right(self._run_starts, pa) - 1
        start = self.runs[index][0]
        data = self._data[start]
        return data[pa - start : pa - start + n]
