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

A source reads its image through a :class:`~memfs.byte_source.ByteSource` (a file, or the decoded
stream of a container) and knows the stack of layers it sits on (:attr:`MemorySource.layers`,
docs/architecture.md "Sources and containers").

A source also watches its image file (docs/architecture.md, "Evidence that changes under a mount"): at
most once every :data:`CHANGE_CHECK_SECONDS`, on a read, and at once when a read fails, it asks its
byte source whether the file changed since it was opened.  From the first change on, every read
raises :class:`~memfs.exceptions.SourceChangedError` (EIO in a mount): the bytes the file holds now
are not the image that was opened, and bytes decoded from it earlier are dropped with the cache.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from memfs.byte_source import BufferByteSource, ByteSource, SourceChange, changes_of, content_check_of
from memfs.cache import UnitCache
from memfs.exceptions import CorruptionError, MemfsError, SourceChangedError

log = logging.getLogger(__name__)

PAGE_SIZE = 0x1000
PHYSICAL_LIMIT = 1 << 52
"""No physical address reaches this: the architectural maximum on x64 and PAE (MAXPHYADDR is at most
52) and on ARM64.  Readers refuse a range that ends above it, which also keeps every size a FUSE
``st_size`` can hold."""
MAX_PROCESSORS = 2048
"""More logical processors than any Windows supports: a processor count above it is not believed."""

CHANGE_CHECK_SECONDS = 1.0
"""A source looks whether its image file changed at most this often (two ``stat`` calls), on a read."""
_monotonic = time.monotonic

Run = tuple[int, int]
"""A present range of physical address space: ``(start, length)`` in bytes."""

Rows = list[tuple[str, str]]
"""Rows of a ``header.txt`` section: ``(label, value)``."""

MEMORY = "memory"
"""Layer kind of a memory format: it turns bytes into physical memory (a :class:`MemorySource`)."""
CONTAINER = "container"
"""Layer kind of a container: it turns bytes into the bytes of the stream it holds."""


@dataclass
class Section:
    """A titled block of ``header.txt`` that a format reader contributes."""

    title: str
    rows: Rows = field(default_factory=list)


@dataclass
class Layer:
    """One layer of the stack an image was opened through (``MemorySource.layers``, outermost first).

    ``format`` read the byte source called ``name`` (``size`` bytes; ``path`` when it is a plain file)
    as a ``kind`` layer; ``rows`` are the facts the layer contributes to ``header.txt``.  ``opened`` is
    what the layer made of its input — a container's decoded :class:`~memfs.byte_source.ByteSource`,
    or the :class:`MemorySource` — for its live state: :attr:`failures`, :attr:`cache` (the layers of a
    stack share the user's cache budget) and ``verify()``.
    """

    kind: str
    format: str
    name: str
    size: int
    path: str | None = None
    rows: Rows = field(default_factory=list)
    opened: object | None = field(default=None, repr=False, compare=False)

    @property
    def failures(self) -> FailureLog | None:
        """The layer's log of units that failed to decode, if it keeps one."""
        log = getattr(self.opened, "failures", None)
        return log if isinstance(log, FailureLog) else None

    @property
    def cache(self) -> UnitCache | None:
        """The layer's decode cache, if it keeps one."""
        cache = getattr(self.opened, "cache", None)
        return cache if isinstance(cache, UnitCache) else None


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
    """Physical memory held by an image, read through a byte source.

    The source owns ``data`` (closing the source closes it).  ``name`` is what messages call the
    image (the byte source's name) and ``file_size`` its size in bytes.  Subclasses set ``self.runs``
    (via :meth:`_set_runs`) and ``self.metadata`` when they open, and implement :meth:`_read_mapped`.
    They never write to the image.
    """

    format_name = "unknown"
    cache: UnitCache | None = None
    """The format's decode cache, for a format that keeps one (it shares the user's budget with the
    containers below it: :func:`memfs.detect.open_source`)."""

    def __init__(self, data: ByteSource) -> None:
        self.byte_source = data
        self.name = data.name
        self.file_size = data.size
        self._fd = data.fd  # the hot-path reads use it directly when the bytes are a file (see _pread)
        self.metadata = Metadata(format=self.format_name)
        self.failures = FailureLog()
        self.runs: tuple[Run, ...] = ()
        self._run_starts: list[int] = []
        self.containers: list[Layer] = []
        """The container layers this source was found inside, outermost first (set by the opener)."""
        self.change: SourceChange | None = None
        """How the image file changed after it was opened (None while it has not): reads then fail."""
        self._next_look = _monotonic() + CHANGE_CHECK_SECONDS
        self._look_lock = threading.Lock()
        self._content_changed = content_check_of(data)
        """Asked after every read: a file rewritten in place must not pass its new bytes off as the image
        between two looks (docs/architecture.md, "Evidence that changes under a mount")."""

    # -- set-up helpers for subclasses -------------------------------------------------------

    def _set_runs(self, runs: Iterable[Run]) -> None:
        """Install the run table: merged where adjacent, checked sorted and non-overlapping."""
        merged: list[list[int]] = []
        for start, length in runs:
            if length <= 0:
                continue
            if start < 0 or start + length > PHYSICAL_LIMIT:
                raise CorruptionError(
                    f"{self.name}: physical range {start:#x}-{start + length:#x} lies beyond the 52-bit "
                    "physical address space"
                )
            if merged and start < merged[-1][0] + merged[-1][1]:
                raise CorruptionError(
                    f"{self.name}: physical range {start:#x} overlaps the previous one "
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

    @property
    def layers(self) -> list[Layer]:
        """The stack this source was opened through, outermost first; the last layer is this format.

        A plain file is one layer; a crash dump inside a container is the container's layer, then
        this one reading the container's decoded stream.  A container's rows are its facts as of now
        (what reads have found since it was opened: bad blocks, ...).
        """
        rows: Rows = [("Detail", self.metadata.format_detail)] if self.metadata.format_detail else []
        rows.append(("Physical memory", f"{self.present_bytes} bytes in {len(self.runs)} runs"))
        own = Layer(MEMORY, self.metadata.format, self.name, self.file_size, self.byte_source.path, rows)
        own.opened = self
        containers = [
            replace(layer, rows=layer.opened.facts()) if isinstance(layer.opened, ByteSource) else layer
            for layer in self.containers
        ]
        return [*containers, own]

    @property
    def failure_count(self) -> int:
        """Units that failed to decode so far, in every layer (this format's and its containers')."""
        return sum(layer.failures.count for layer in self.layers if layer.failures is not None)

    def read(self, pa: int, n: int) -> bytes:
        """Read ``n`` bytes of physical memory at ``pa``; holes read as zeros, clamped at ``size``.

        Raises SourceChangedError once the image file changed (see the module docstring).
        """
        if self.change is not None or _monotonic() >= self._next_look:
            self._refuse_if_changed()
        try:
            result = self._read(pa, n)
        except MemfsError:
            self._refuse_if_changed(now=True)  # a failing read may be the file changing: say so instead
            raise
        if self._content_changed is not None and self._content_changed():
            self._refuse_if_changed(now=True)  # rewritten while (or just before) this read read it
        return result

    def _read(self, pa: int, n: int) -> bytes:
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
        if self.change is not None or _monotonic() >= self._next_look:
            self._refuse_if_changed()
        try:
            result = self._read_into(pa, buffer)
        except MemfsError:
            self._refuse_if_changed(now=True)
            raise
        if self._content_changed is not None and self._content_changed():
            self._refuse_if_changed(now=True)
        return result

    def _read_into(self, pa: int, buffer: memoryview | bytearray) -> int:
        view = memoryview(buffer).cast("B")
        end = min(pa + len(view), self.size)
        if pa < 0 or pa >= end:
            return 0
        index = bisect.bisect_right(self._run_starts, pa) - 1
        if index >= 0 and end <= self.runs[index][0] + self.runs[index][1]:  # inside one run: most reads
            self._read_mapped_into(pa, view[: end - pa] if end - pa < len(view) else view)
            return end - pa
        for pos, take, mapped in self._spans(pa, end, max(index, 0)):
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

    def source_change(self, now: bool = False) -> SourceChange | None:
        """How the image file changed since it was opened, or None; looks again when a look is due,
        or at once with ``now``."""
        if self.change is None and (now or _monotonic() >= self._next_look):
            self._look()
        return self.change

    def _look(self) -> SourceChange | None:
        """Ask the byte source now.  On the first change seen: log it once, stop reading the file and
        drop the units decoded from it (the file no longer backs them)."""
        with self._look_lock:
            self._next_look = _monotonic() + CHANGE_CHECK_SECONDS
            if self.change is None:
                change = changes_of(self.byte_source)
                if change is not None:
                    log.error("%s", change)
                    self._fd = None
                    self.change = change
                    self.drop_cache()
        return self.change

    def _refuse_if_changed(self, now: bool = False) -> None:
        """Raise SourceChangedError if the image file changed (looking now, or when a look is due)."""
        change = self.source_change(now)
        if change is not None:
            raise SourceChangedError(str(change)) from None

    def is_present(self, pa: int) -> bool:
        """Whether physical address ``pa`` lies inside a run."""
        index = bisect.bisect_right(self._run_starts, pa) - 1
        return index >= 0 and pa < self.runs[index][0] + self.runs[index][1]

    def next_present(self, pa: int) -> int | None:
        """The lowest present address at or above ``pa``, or None when no run lies there or above.

        Scans over mapped address ranges use it to step over holes in one move rather than page by page.
        """
        index = bisect.bisect_right(self._run_starts, pa) - 1
        if index >= 0 and pa < self.runs[index][0] + self.runs[index][1]:
            return pa
        return self.runs[index + 1][0] if index + 1 < len(self.runs) else None

    def describe(self) -> list[Section]:
        """Format-specific sections for ``header.txt`` (none by default)."""
        return []

    def dump_header(self) -> bytes | None:
        """The image's own crash-dump header bytes (DUMP_HEADER32/64), if the image is a kernel crash dump.

        ``memory.dmp`` keeps such a header and rewrites only its memory description, so a crash dump
        reads back with its own values (docs/formats/crashdump.md §9).  None, the default, for every other
        format:
        ``memory.dmp`` then synthesises a header from the metadata and kernel discovery.
        """
        return None

    def cache_stats(self) -> dict[str, int] | None:
        """Hit/miss counters of the source's decode cache, if it has one."""
        return None

    def drop_cache(self) -> None:
        """Let go of decoded data kept for speed, in this format and in the containers below it; later
        reads decode it again."""
        for layer in self.layers:
            drop = getattr(layer.opened, "drop_cache", None) if layer.opened is not self else None
            if drop is not None:
                drop()
            elif layer.cache is not None:
                layer.cache.clear()

    def close(self) -> None:
        """Release the byte source (and every layer below it); closing twice is harmless."""
        self._fd = None
        self.byte_source.close()

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

    # Hot paths (one call per page a reader serves): a file's descriptor is read directly, so a
    # page costs one os.pread as before byte sources existed; other byte sources are called.

    def _pread_into(self, offset: int, out: memoryview) -> None:
        """Fill ``out`` from the image at ``offset`` or raise a CorruptionError (as :meth:`_pread`)."""
        fd = self._fd
        got = os.preadv(fd, [out], offset) if fd is not None else self.byte_source.readinto(offset, out)
        if got != len(out):
            raise self._ends_early(offset + got, len(out) - got)

    def _pread(self, offset: int, n: int) -> bytes:
        """Read exactly ``n`` bytes of the image at ``offset`` or raise a CorruptionError."""
        fd = self._fd
        data = os.pread(fd, n, offset) if fd is not None else self.byte_source.pread(offset, n)
        if len(data) != n:
            raise self._ends_early(offset + len(data), n - len(data))
        return data

    def _ends_early(self, offset: int, missing: int) -> MemfsError:
        """The error for a read the file cut short: the file changed under us, or its tables lie."""
        change = self._look()
        if change is not None:
            return SourceChangedError(str(change))
        return CorruptionError(
            f"{self.name}: offset {offset:#x}: file ends {missing:#x} bytes "
            "before the data the tables point to"
        )


class BufferSource(MemorySource):
    """An in-memory source (for tests and synthetic images): ``segments`` maps PA to bytes."""

    format_name = "memory"

    def __init__(self, segments: Sequence[tuple[int, bytes]], metadata: Metadata | None = None) -> None:
        super().__init__(BufferByteSource("<memory>", b""))
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
