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
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from memfs.byte_source import BufferByteSource, ByteSource
from memfs.cache import UnitCache
from memfs.exceptions import CorruptionError

log = logging.getLogger(__name__)

PAGE_SIZE = 0x1000

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
    as a ``kind`` layer; ``rows`` are the facts the layer contributes to ``header.txt``.  ``failures``
    is the layer's record of units that failed to decode and ``cache`` its decode cache, when it has
    them (``header.txt`` lists each layer's failures; the layers share the user's cache budget).
    """

    kind: str
    format: str
    name: str
    size: int
    path: str | None = None
    rows: Rows = field(default_factory=list)
    failures: FailureLog | None = field(default=None, repr=False, compare=False)
    cache: UnitCache | None = field(default=None, repr=False, compare=False)


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

    # -- set-up helpers for subclasses -------------------------------------------------------

    def _set_runs(self, runs: Iterable[Run]) -> None:
        """Install the run table: merged where adjacent, checked sorted and non-overlapping."""
        merged: list[list[int]] = []
        for start, length in runs:
            if length <= 0:
                continue
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
        this one reading the container's decoded stream.
        """
        rows: Rows = [("Detail", self.metadata.format_detail)] if self.metadata.format_detail else []
        rows.append(("Physical memory", f"{self.present_bytes} bytes in {len(self.runs)} runs"))
        own = Layer(
            MEMORY, self.metadata.format, self.name, self.file_size, self.byte_source.path, rows,
            self.failures, self.cache,
        )  # fmt: skip
        return [*self.containers, own]

    @property
    def failure_count(self) -> int:
        """Units that failed to decode so far, in every layer (this format's and its containers')."""
        return sum(layer.failures.count for layer in self.layers if layer.failures is not None)

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
        """Let go of decoded data kept for speed (none by default); later reads decode it again."""

    def drop_caches(self) -> None:
        """:meth:`drop_cache`, and the decoded units the containers below this source keep."""
        self.drop_cache()
        for layer in self.containers:
            if layer.cache is not None:
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

    def _ends_early(self, offset: int, missing: int) -> CorruptionError:
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
