"""``memory.dmp``: a WinDbg-loadable full (DumpType 1) crash dump of the source's physical memory.

Built lazily: the header is computed once (at mount), page data is read through the source on
demand.  File layout (docs/formats/crashdump.md §1, §6.1): the header (0x2000 bytes ``PAGEDU64`` for x64 and
ARM64, 0x1000 bytes ``PAGEDUMP`` for x86), then every run's pages packed in run order.

Runs: one run per present range (rounded out to whole pages), so holes take no space.  When there
are more than :data:`MAX_RUNS` ranges, the smallest gaps are merged (and read as zeros) until they
fit.  32 keeps old LeechCore (< v2.15.3, §14.2) and every other reader happy and fits both headers
(42 / 86, §4.1); the alternative, a bitmap (DumpType 5) dump, is refused by old dbgeng-era tools,
LeechCore before v2.8 and 32-bit kdmp-parser-style readers, while DumpType 1 is known to all (§8).
Merging the smallest gaps first costs the fewest zero pages.

Header values: when the source offers its own crash-dump header (:meth:`MemorySource.dump_header`),
it is kept and only the memory description, DumpType (1) and RequiredDumpSpace are rewritten (§9
observation on MemProcFS), so reading memory.dmp gives back the same pages.  Otherwise the header is
synthesised per the §15 recipe from the source's metadata merged with the caller's kernel
:class:`~memfs.kernel.discover.Discovery` (this view never runs discovery itself), and the page data
carries its overlays: the decoded KDBG with KdpDataBlockEncoded cleared, and kernel segment selectors
in each processor's CONTEXT (§15.2 step 11).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from memfs import __version__
from memfs.filetime import from_datetime, from_timedelta
from memfs.formats import crashdump_structs as cs
from memfs.kernel.discover import Discovery, merge_metadata
from memfs.kernel.processors import context_from_registers, header_context
from memfs.memory import PAGE_SIZE, MemorySource, Run, Section
from memfs.views.base import VirtualFile
from memfs.windows_structs import CONTEXT_SIZE, MACHINE_BY_ARCH, offset_of, size_of

MAX_RUNS = 32
MEMFS_BUGCHECK_CODE = 0x4D454D46
"""BugCheckCode memfs writes into a header it synthesises: 'MEMF' read as a big-endian word."""
MEMORY_BUFFER = cs.PHYSICAL_MEMORY_DESCRIPTOR32.sizeof()
"""The PhysicalMemoryBlockBuffer union: 700 bytes in both widths (docs/formats/crashdump.md §4.1)."""


@dataclass(frozen=True)
class Layout:
    """Field offsets of one header width, from the reader's construct definitions (docs/formats/crashdump.md
    §2, §3)."""

    size: int
    ptr: str  # struct code of a pointer field
    valid: bytes
    dtb: int
    pfn: int
    modules: int
    processes: int
    machine: int
    cpus: int
    bugcheck: int
    params: int
    version_user: int
    version_user_size: int
    kdbg: int
    memory: int
    pages: int  # PhysicalMemoryBlock.NumberOfPages
    run_table: int
    run_size: int
    context: int
    context_area: int
    exception: int
    exception_size: int
    comment: int
    comment_size: int
    dump_type: int
    required: int
    system_time: int
    uptime: int
    zero_u32: tuple[int, ...]  # MiniDumpFields, SecondaryDataState, WriterStatus, Attributes, BootId, pads
    product: int
    suite: int


def _layout(width: int, zero_u32: tuple[str, ...]) -> Layout:
    """The writer's offsets for one header width, computed once at import from the construct Structs."""
    if width == 32:
        header, descriptor, valid = cs.DUMP_HEADER32, cs.PHYSICAL_MEMORY_DESCRIPTOR32, cs.VALID_DUMP32
    else:
        header, descriptor, valid = cs.DUMP_HEADER64, cs.PHYSICAL_MEMORY_DESCRIPTOR64, cs.VALID_DUMP64

    def at(name: str) -> int:
        return offset_of(header, name)

    return Layout(
        size=header.sizeof(),
        ptr="I" if width == 32 else "Q",
        valid=valid,
        dtb=at("DirectoryTableBase"),
        pfn=at("PfnDataBase"),
        modules=at("PsLoadedModuleList"),
        processes=at("PsActiveProcessHead"),
        machine=at("MachineImageType"),
        cpus=at("NumberProcessors"),
        bugcheck=at("BugCheckCode"),
        params=at("BugCheckParameter1"),
        version_user=at("VersionUser"),
        version_user_size=size_of(header, "VersionUser"),
        kdbg=at("KdDebuggerDataBlock"),
        memory=at("PhysicalMemoryBlock"),
        pages=at("PhysicalMemoryBlock") + offset_of(descriptor, "NumberOfPages"),
        run_table=cs.RUN_TABLE_OFFSET[width],
        run_size=cs.RUN_SIZE[width],
        context=at("ContextRecord"),
        context_area=size_of(header, "ContextRecord"),
        exception=at("Exception"),
        exception_size=size_of(header, "Exception"),
        comment=at("Comment"),
        comment_size=size_of(header, "Comment"),
        dump_type=at("DumpType"),
        required=at("RequiredDumpSpace"),
        system_time=at("SystemTime"),
        uptime=at("SystemUpTime"),
        zero_u32=tuple(at(name) for name in zero_u32),
        product=at("ProductType"),
        suite=at("SuiteMask"),
    )


_ZERO_U32 = ("MiniDumpFields", "SecondaryDataState", "WriterStatus", "Attributes", "BootId")
LAYOUT64 = _layout(64, ("_padding0", "_padding2", *_ZERO_U32))
LAYOUT32 = _layout(32, _ZERO_U32)
PAE_ENABLED32 = offset_of(cs.DUMP_HEADER32, "PaeEnabled")


def page_runs(runs: tuple[Run, ...] | list[Run], max_runs: int = MAX_RUNS) -> tuple[list[Run], int]:
    """Page-granular ``(base_page, page_count)`` runs covering ``runs``, at most ``max_runs`` of them.

    Byte runs are rounded out to whole pages; touching runs merge.  If too many remain, the
    smallest gaps are merged (merging a gap leaves the others unchanged, so picking the k smallest
    at once equals merging them one by one).  Returns the runs and the number of gap pages added.
    """
    pages: list[list[int]] = []
    for start, length in runs:
        first, end = start // PAGE_SIZE, -(-(start + length) // PAGE_SIZE)
        if pages and first <= pages[-1][1]:
            pages[-1][1] = max(pages[-1][1], end)
        else:
            pages.append([first, end])
    added = 0
    excess = len(pages) - max_runs
    if excess > 0:
        gaps = sorted(range(len(pages) - 1), key=lambda i: (pages[i + 1][0] - pages[i][1], i))[:excess]
        merge_after = set(gaps)
        merged: list[list[int]] = []
        for i, run in enumerate(pages):
            if merged and i - 1 in merge_after:
                added += run[0] - merged[-1][1]
                merged[-1][1] = run[1]
            else:
                merged.append(list(run))
        pages = merged
    return [(first, end - first) for first, end in pages], added


def _describable(runs: tuple[Run, ...], width: int) -> tuple[list[Run], int]:
    """The part of ``runs`` a header of ``width`` bits can describe, and the bytes left out.

    A 32-bit header stores page numbers as ULONGs (docs/formats/crashdump.md §4.1), so memory at or above
    2^32 pages (16 TiB) cannot appear in it; a 64-bit header describes every physical address.
    """
    if width == 64:
        return list(runs), 0
    limit = (1 << 32) * PAGE_SIZE
    kept = [(start, min(length, limit - start)) for start, length in runs if start < limit]
    return kept, sum(length for _, length in runs) - sum(length for _, length in kept)


def _kept_header(source: MemorySource, size: int) -> bytes | None:
    """The source's own crash-dump header, if it offers one of this width (docs/formats/crashdump.md §9
    observation)."""
    data = source.dump_header()
    if data is None or len(data) != size or data[:4] != cs.SIGNATURE:
        return None
    return data


class MemoryDmpFile(VirtualFile):
    """The dump: header bytes, then each run's page data mapped to ``source.read`` plus overlays.

    ``discovery`` is the caller's :func:`~memfs.kernel.discover.discover` result for ``source``.
    """

    name = "memory.dmp"

    def __init__(self, source: MemorySource, discovery: Discovery) -> None:
        self.source = source
        self.discovery = discovery
        # Merged with discovery: for a raw image it is what tells x86 from x64 (and so the header width).
        self.metadata = meta = merge_metadata(source.metadata, discovery)
        self.width = 32 if meta.arch == "x86" else 64
        self.layout = LAYOUT32 if self.width == 32 else LAYOUT64
        lay = self.layout
        max_runs = min(MAX_RUNS, (lay.memory + MEMORY_BUFFER - lay.run_table) // lay.run_size)
        described, self.undescribed = _describable(source.runs, self.width)
        self.runs, self.gap_pages = page_runs(described, max_runs)
        self.total_pages = sum(count for _, count in self.runs)
        hdr = self.layout.size
        self._file_starts: list[int] = []
        self._pa_runs: list[tuple[int, int]] = []
        offset = hdr
        for base, count in self.runs:
            self._file_starts.append(offset)
            self._pa_runs.append((base * PAGE_SIZE, count * PAGE_SIZE))
            offset += count * PAGE_SIZE
        self._size = offset
        original = _kept_header(source, hdr)
        self.kept_header = original is not None
        if original is not None:
            self.header = self._rewrite(original)
            self.overlays: list[tuple[int, bytes, str]] = []
        else:
            self.header = self._synthesise()
            self.overlays = sorted(discovery.overlays)
        self._overlay_starts = [pa for pa, _, _ in self.overlays]

    # -- header ------------------------------------------------------------------------------

    def _memory_descriptor(self, header: bytearray) -> None:
        lay = self.layout
        header[lay.memory : lay.memory + MEMORY_BUFFER] = bytes(MEMORY_BUFFER)
        struct.pack_into("<I", header, lay.memory, len(self.runs))  # NumberOfRuns
        struct.pack_into("<" + lay.ptr, header, lay.pages, self.total_pages)
        for i, (base, count) in enumerate(self.runs):
            struct.pack_into("<2" + lay.ptr, header, lay.run_table + lay.run_size * i, base, count)
        struct.pack_into("<I", header, lay.dump_type, 1)
        struct.pack_into("<q", header, lay.required, self._size)

    def _rewrite(self, original: bytes) -> bytes:
        """A crash-dump source's header with only the memory description and DumpType rewritten."""
        header = bytearray(original)
        self._memory_descriptor(header)
        return bytes(header)

    def _synthesise(self) -> bytes:
        """A header from metadata and discovery (docs/formats/crashdump.md §15.1 / §15.3)."""
        meta = self.metadata
        lay = self.layout
        header = bytearray(cs.SIGNATURE * (lay.size // 4))
        ptr = "<" + lay.ptr
        arch = meta.arch or "x64"
        version = self.discovery.version
        major = version.major if version else 0xF
        struct.pack_into("<4s4sII", header, 0, cs.SIGNATURE, lay.valid, major, meta.os_build or 0)
        for off, value in (
            (lay.dtb, meta.directory_table_base),
            (lay.pfn, meta.pfn_database),
            (lay.modules, meta.ps_loaded_module_list),
            (lay.processes, meta.ps_active_process_head),
            (lay.kdbg, meta.kd_debugger_data_block),
        ):
            struct.pack_into(
                ptr, header, off, (value or 0) & (0xFFFFFFFF if self.width == 32 else (1 << 64) - 1)
            )
        machine = MACHINE_BY_ARCH.get(arch, MACHINE_BY_ARCH["x64"])
        struct.pack_into("<II", header, lay.machine, machine, max(meta.number_processors or 1, 1))
        code = MEMFS_BUGCHECK_CODE
        params = [0, 0, 0, 0]
        struct.pack_into("<I", header, lay.bugcheck, code)
        struct.pack_into(ptr[0] + "4" + lay.ptr, header, lay.params, *params)
        for off in lay.zero_u32:
            struct.pack_into("<I", header, off, 0)
        header[lay.version_user : lay.version_user + lay.version_user_size] = bytes(lay.version_user_size)
        if self.width == 32:
            header[PAE_ENABLED32] = 1 if meta.pae else 0
        self._memory_descriptor(header)
        context_arch = "x86" if self.width == 32 else "x64"
        header[lay.context : lay.context + lay.context_area] = bytes(lay.context_area)
        # The registers the source states win (a hibernation file's KPROCESSOR_STATE,
        # docs/formats/hibernation.md §5; an ELF core's or VMware checkpoint's CPU 0); otherwise CPU 0's
        # CONTEXT from discovery.
        # header_context() adds selectors and the MxCsr rule.
        stated = self.source.metadata.context
        if stated:
            context = header_context(context_from_registers(stated, context_arch), context_arch)
        else:
            context = self.discovery.header_context
        if context is None or len(context) != CONTEXT_SIZE[context_arch]:
            context = header_context(None, context_arch)
        header[lay.context : lay.context + len(context)] = context
        header[lay.exception : lay.exception + lay.exception_size] = bytes(lay.exception_size)
        comment = self.comment().encode()[: lay.comment_size - 1]
        header[lay.comment : lay.comment + lay.comment_size] = comment.ljust(lay.comment_size, b"\0")
        kuser = self.discovery.kuser
        # Keep KUSER's full 100 ns precision when that is where the value came from.
        system_time = from_datetime(meta.system_time)
        if kuser and kuser.system_time_raw and kuser.system_time == meta.system_time:
            system_time = kuser.system_time_raw
        uptime = from_timedelta(meta.system_uptime)
        if kuser and kuser.uptime_raw is not None and kuser.uptime == meta.system_uptime:
            uptime = kuser.uptime_raw
        struct.pack_into("<q", header, lay.system_time, system_time)
        struct.pack_into("<q", header, lay.uptime, uptime)
        struct.pack_into("<II", header, lay.product, meta.product_type or 1, meta.suite_mask or 0)
        return bytes(header)

    def comment(self) -> str:
        """The Comment a synthesised header carries: who made it, and why it lacks what discovery finds
        when discovery did not run (a debugger shows it on loading the dump)."""
        text = f"generated by memfs {__version__} from {self.metadata.format}"
        return f"{text}; {self.discovery.skipped}" if self.discovery.skipped else text

    # -- VirtualFile ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        pieces = []
        for pos, take, pa in self._spans(offset, length):
            if pa is None:
                pieces.append(self.header[pos : pos + take])
                continue
            data = self.source.read(pa, take)
            if len(data) < take:  # the last page of the highest run may extend past source.size
                data += bytes(take - len(data))
            if self.overlays:
                data = self._apply_overlays(pa, data)
            pieces.append(data)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def read_into(self, offset: int, buffer: memoryview | bytearray) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        for pos, take, pa in self._spans(offset, len(view)):
            piece = view[pos - offset : pos - offset + take]
            if pa is None:
                piece[:] = self.header[pos : pos + take]
            else:
                got = self.source.read_into(pa, piece)
                piece[got:] = bytes(take - got)  # past source.size, as in read
                for lo, patch in self._overlays_in(pa, take):
                    piece[lo : lo + len(patch)] = patch
            filled += take
        return filled

    def data_extents(self) -> list[tuple[int, int]]:
        """The header and the file ranges of the source's present bytes; merged gaps are holes.

        ``memfs convert`` then neither reads nor plans the zero pages that merging gaps added, however
        far apart a (possibly hostile) image's ranges lie.
        """
        extents = [(0, self.layout.size)]
        runs = self.source.runs
        starts = [start for start, _ in runs]
        for file_start, (base, nbytes) in zip(self._file_starts, self._pa_runs, strict=True):
            end = base + nbytes
            index = max(bisect.bisect_right(starts, base) - 1, 0)
            while index < len(runs) and runs[index][0] < end:
                lo, hi = max(runs[index][0], base), min(runs[index][0] + runs[index][1], end)
                if lo < hi:
                    extents.append((file_start + lo - base, hi - lo))
                index += 1
        return extents

    def _spans(self, offset: int, length: int) -> Iterator[tuple[int, int, int | None]]:
        """``(file offset, length, physical address or None for the header)`` pieces of a read."""
        end = min(offset + length, self._size)
        if offset < 0 or offset >= end:
            return
        pos = offset
        hdr = self.layout.size
        if pos < hdr:
            yield pos, min(end, hdr) - pos, None
            pos = min(end, hdr)
        index = bisect.bisect_right(self._file_starts, pos) - 1
        while pos < end:
            file_start = self._file_starts[index]
            base_pa, nbytes = self._pa_runs[index]
            take = min(end, file_start + nbytes) - pos
            yield pos, take, base_pa + (pos - file_start)
            pos += take
            index += 1

    def _overlays_in(self, pa: int, length: int) -> Iterator[tuple[int, bytes]]:
        """``(offset from pa, bytes)`` of the overlay patches that fall in ``pa … pa+length-1``."""
        end = pa + length
        i = bisect.bisect_left(self._overlay_starts, pa - PAGE_SIZE)
        while i < len(self.overlays) and self._overlay_starts[i] < end:
            start, patch, _ = self.overlays[i]
            lo, hi = max(start, pa), min(start + len(patch), end)
            if lo < hi:
                yield lo - pa, patch[lo - start : hi - start]
            i += 1

    def _apply_overlays(self, pa: int, data: bytes) -> bytes:
        patched = None
        for lo, patch in self._overlays_in(pa, len(data)):
            if patched is None:
                patched = bytearray(data)
            patched[lo : lo + len(patch)] = patch
        return data if patched is None else bytes(patched)

    # -- header.txt ----------------------------------------------------------------------------

    def describe(self) -> list[Section]:
        """Sections for ``header.txt``: discovery details and what this dump holds and lacks."""
        sections = [] if self.kept_header else self.discovery.sections()
        kind = "64-bit PAGEDU64" if self.width == 64 else "32-bit PAGEDUMP"
        rows = [
            ("Header", f"{kind}, DumpType 1 (full, run based), {self.layout.size:#x} bytes"),
            ("Size", f"{self._size} bytes ({self._size:#x})"),
            ("Runs", f"{len(self.runs)} ({self.total_pages} pages)"),
        ]
        if self.gap_pages:
            rows.append(("Merged gaps", f"{self.gap_pages} zero pages added to stay within {MAX_RUNS} runs"))
        if self.undescribed:
            rows.append(
                (
                    "Left out",
                    f"{self.undescribed} bytes of memory at or above 16 TiB: a 32-bit header cannot describe "
                    "them (they are in physmem.bin)",
                )
            )
        if self.kept_header:
            rows.append(
                (
                    "Header values",
                    "kept from the source crash dump; memory description and DumpType rewritten",
                )
            )
        else:
            sources = "the image" if self.discovery.skipped else "the image and kernel discovery"
            rows.append(("Header values", f"synthesised by memfs from {sources}"))
            rows.append(("BugCheckCode", f"{MEMFS_BUGCHECK_CODE:#x} (memfs marker; parameters 0)"))
            rows.append(("Comment", self.comment()))
            for pa, patch, why in self.overlays[:32]:
                rows.append(("Overlay", f"PA {pa:#x}, {len(patch)} bytes: {why}"))
            if len(self.overlays) > 32:
                rows.append(("Overlay", f"... and {len(self.overlays) - 32} more"))
            missing = self.discovery.missing
            if self.metadata.arch is None:
                missing = ["architecture unknown: a 64-bit x64 header was written", *missing]
            for text in missing or ["nothing known to be missing"]:
                rows.append(("WinDbg will miss", text))
        return [*sections, Section("memory.dmp", rows)]
