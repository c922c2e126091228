"""Windows hibernation files (hiberfil.sys), XP to 11 24H2, x86 and x64, detected without flags.

Open: read page 0, pick the layout (:mod:`hiberfil_detect`), walk table/set headers into a packed page
index (:mod:`hiberfil_index`) — nothing is decompressed for the index.  Read: physical page → map run
(bisect) → unit → decode through :class:`~memfs.cache.UnitCache` → slice.  A unit that fails to decode
fails only the reads that touch it (``failures.record`` + DecompressionError).

Processor state: legacy files keep a KPROCESSOR_STATE page (docs/formats/hibernation.md §2.4), read here;
modern
files keep it only in memory (§3.8), where kernel discovery (memfs.kernel.discover) finds CR3.
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Iterator
from datetime import datetime

from memfs.byte_source import ByteSource
from memfs.cache import UnitCache
from memfs.exceptions import CorruptionError, DecompressionError, MissingDependencyError
from memfs.filetime import to_datetime, to_timedelta
from memfs.formats import hiberfil_detect
from memfs.formats.base import FormatSpec, OpenOptions, ProbeInput
from memfs.formats.hiberfil_index import KIND_HUFFMAN, KIND_NAMES, KIND_PLAIN, KIND_RAW
from memfs.formats.hiberfil_legacy import LegacyWalk
from memfs.formats.hiberfil_structs import LAYOUT_KEYS, SIGNATURES
from memfs.memory import MAX_PROCESSORS, PAGE_SIZE, MemorySource, Section
from memfs.parallel import HELPERS
from memfs.windows_structs import MACHINE_BY_ARCH

LAYOUT_NAMES: tuple[str, ...] = LAYOUT_KEYS
"""Layouts a user may force with ``OpenOptions.hiber_layout`` (``--hiber-layout``), e.g. ``win7-x64``."""

WILLNEED_WINDOW = 64 << 20
PREFIX_REQUEST_MAX = 64 << 10
"""Requests up to this size may decode a unit only partly: random reads (4 KiB, or the few pages the
kernel's read-ahead adds to one, docs/performance.md "Random access"); the larger requests of sequential
readers want whole units, which a prefix would make them decode twice."""
_FADVISE = hasattr(os, "posix_fadvise")
HEADER_LABELS = {
    "page_size": "PageSize",
    "first_table_page": "FirstTablePage",
    "interrupt_time": "InterruptTime (100 ns since boot)",
    "num_pages_for_loader": "NumPagesForLoader",
    "first_boot_page": "FirstBootRestorePage",
    "first_kernel_page": "FirstKernelRestorePage",
    "boot_pages_processed": "PerfInfo.BootPagesProcessed",
    "kernel_pages_processed": "PerfInfo.KernelPagesProcessed",
    "highest_physical_page": "HighestPhysicalPage",
    "hv_cr3": "HvCr3 (hypervisor, not kernel CR3)",
    "processor_count": "PerfInfo.ProcessorCount",
}


def _codec():
    """The Xpress decoders (C extension); imported on first use so a stored-only file needs none."""
    try:
        from memfs import xpress
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise MissingDependencyError(
            f"the memfs.xpress extension is not built ({exc}); run: python3 setup.py build_ext --inplace"
        ) from None
    return xpress


def filetime(value: int) -> datetime | None:
    """A FILETIME as an aware UTC datetime, or None when zero or out of range."""
    return to_datetime(value) if value > 0 else None


class _OpenTimeReader:
    """``read(offset, n)`` for the open-time walks: up to ``n`` bytes at ``offset`` (short at the end).

    The walks read one small header per unit at rising offsets ~20 KiB apart, which the kernel's
    read-ahead does not recognise: from a cold page cache that is one disk round trip per set.
    Asking for the next WILLNEED_WINDOW bytes ahead of the walk (:meth:`advise`) turns it into large
    sequential I/O.  ``fd`` is the file's descriptor, with which the modern walk reads set headers in C
    (memfs.formats.hiberfil_modern); a byte source that is not a file (a container's stream) has none
    and is read through its own ``pread``.
    """

    def __init__(self, data: ByteSource, fd: int | None) -> None:
        self._data, self.fd = data, fd
        self._willneed_at = 0

    def __call__(self, offset: int, n: int) -> bytes:
        if self.fd is None:
            return self._data.pread(offset, n)
        self.advise(offset)
        return os.pread(self.fd, n, offset)

    def advise(self, offset: int) -> None:
        """The walk is about to read at ``offset``: have the next window read ahead if not yet asked."""
        if self.fd is not None and offset >= self._willneed_at and _FADVISE:
            os.posix_fadvise(self.fd, offset, WILLNEED_WINDOW, os.POSIX_FADV_WILLNEED)
            self._willneed_at = offset + WILLNEED_WINDOW // 2


class HiberfilSource(MemorySource):
    """Physical memory saved in a hibernation file."""

    format_name = "hiberfil"

    def __init__(self, data: ByteSource, options: OpenOptions | None = None) -> None:
        super().__init__(data)
        options = options or OpenOptions()
        try:
            self._open(options)
        except BaseException:
            self.close()
            raise

    def _open(self, options: OpenOptions) -> None:
        if self.file_size < 2 * PAGE_SIZE:
            raise CorruptionError(
                f"{self.name}: offset {self.file_size:#x}: file ends before the first table page "
                f"({self.file_size} bytes; a hibernation file has at least two pages)"
            )
        read = _OpenTimeReader(self.byte_source, self._fd)
        page0 = read(0, PAGE_SIZE)
        self.signature = page0[:4]
        self.cache = UnitCache(options.cache_size)
        self.det = hiberfil_detect.detect(read, self.name, self.file_size, page0, options.hiber_layout)
        index = self.det.index
        self._index = index
        self._run_pfn, self._run_count = index.run_pfn, index.run_count
        self._run_unit, self._run_slot = index.run_unit, index.run_slot
        self._unit_off = index.unit_off
        self._unit_kind, self._unit_pages = index.unit_kind, index.unit_pages
        self._set_runs(index.byte_runs())
        self.fallbacks = 0
        self._fill_metadata()

    # -- metadata -------------------------------------------------------------------------------------

    def _fill_metadata(self) -> None:
        det, meta = self.det, self.metadata
        meta.arch = det.arch
        meta.notes.extend(det.notes)
        lay = det.layout
        sig = self.signature
        if sig.upper() == b"WAKE":
            meta.notes.append(
                "signature WAKE: the system resumed from this image; Windows may have wiped parts of it "
                "(docs/formats/hibernation.md §3.9) — every page shown was validated structurally, "
                "not its content"
            )
        elif sig not in SIGNATURES and any(sig):
            meta.notes.append(f"unknown signature {sig!r}")
        if lay is not None:
            meta.os_major, meta.os_minor = lay.os_version
            meta.format_detail = f"hibernation file, {lay.name} layout ({det.family} format)"
            builds = getattr(lay, "builds", ())
            if len(builds) == 1:
                meta.os_build = builds[0]
            else:
                meta.unknown(
                    "os_build",
                    f"LengthSelf {lay.length_self:#x} is shared by builds {', '.join(map(str, builds))}"
                    if builds
                    else "legacy headers carry no build number",
                )
        else:
            meta.format_detail = f"hibernation file, {det.family} format recovered without a header"
            meta.unknown("os_build", "the header is zeroed")
        stime = det.header.get("system_time")
        meta.system_time = filetime(stime) if stime else None
        if stime:
            meta.unknown(
                "system_time", f"the header's SystemTime {stime:#x} is not a time a FILETIME can hold"
            )
        else:
            meta.unknown(
                "system_time", "the header's SystemTime is zero" if det.header else "the header is zeroed"
            )
        ticks = det.header.get("interrupt_time")
        if ticks:
            meta.system_uptime = to_timedelta(ticks)
            meta.unknown(
                "system_uptime",
                f"the header's InterruptTime {ticks:#x} does not fit a signed 64-bit count of 100 ns ticks",
            )
        else:
            meta.unknown("system_uptime", "only legacy headers carry InterruptTime (time since boot)")
        count = det.header.get("processor_count")
        if count and count <= MAX_PROCESSORS:
            meta.number_processors = count
        elif count:
            meta.unknown("number_processors", f"the header's ProcessorCount {count} is not believable")
        else:
            meta.unknown("number_processors", "only the 24H2 header carries a processor count")
        if det.family == "legacy":
            self._legacy_state()
        else:
            self._modern_state()
        meta.machine_image_type = MACHINE_BY_ARCH[det.arch]
        for name in (
            "kd_debugger_data_block", "kernel_base", "ps_loaded_module_list", "ps_active_process_head",
            "pfn_database", "ki_processor_block",
        ):  # fmt: skip
            meta.unknown(name, "a hibernation file has no debugger data header; it lives in memory (KDBG)")
        meta.unknown("bugcheck_code", "a hibernation file records no bug check")
        meta.unknown("dump_type", "not a crash dump")

    def _legacy_state(self) -> None:
        det, meta = self.det, self.metadata
        state = det.proc_state
        if state is None:
            meta.unknown(
                "directory_table_base", "no KPROCESSOR_STATE page (1, 2, 4) passes validation (§2.4)"
            )
            meta.unknown("context", "no KPROCESSOR_STATE page passes validation")
            return
        meta.directory_table_base = state["cr3"]
        meta.context = state
        if det.arch == "x86":
            meta.pae = bool(state["cr4"] & 0x20)

    def _modern_state(self) -> None:
        """Windows 8+ states no CR3 or CONTEXT in the file (docs/formats/hibernation.md §3.8): both live in
        memory.

        Kernel discovery (memfs.kernel.discover, run by the mount, ``info`` and ``convert``) searches
        the restored memory — x64 low stub, self-referencing page tables — and finds these values.
        """
        meta = self.metadata
        meta.unknown(
            "directory_table_base",
            "a Windows 8+ hibernation file states no kernel CR3; it is searched for in memory (§3.8)",
        )
        meta.unknown(
            "context",
            "Windows 8+ keeps the saved CONTEXT in KPRCB.ProcessorState inside memory (§3.8)",
        )

    # -- reads ----------------------------------------------------------------------------------------

    def _runs_mergeable(self) -> bool:
        return True  # map runs are looked up by page number, not through self.runs

    def _read_mapped(self, pa: int, n: int) -> bytes:
        pieces = []
        prefix_ok = n <= PREFIX_REQUEST_MAX
        for unit, start, take in self._pieces(pa, n, bisect.bisect_right(self._run_pfn, pa >> 12) - 1):
            if self._unit_kind[unit] == KIND_RAW:
                pieces.append(self._pread(self._unit_off[unit] + start, take))
            else:
                data = self._cached(unit, start + take, prefix_ok)
                # memoryview: the one copy is the join below (or bytes() for a single piece).
                whole = start == 0 and take == len(data)
                pieces.append(data if whole else memoryview(data)[start : start + take])
        if len(pieces) == 1:
            return bytes(pieces[0]) if isinstance(pieces[0], memoryview) else pieces[0]
        return b"".join(pieces)

    def _read_mapped_into(self, pa: int, out: memoryview) -> None:
        """Bulk reads (``read_into``): a unit whose every page lands in ``out`` is decoded straight into
        it, bypassing the cache — a bulk reader reads each unit once, so caching would
        only churn the LRU.  A unit only partly inside (split over map runs, or cut by the range's
        ends) goes through the cache, where its other pages will be found.  The units of one request
        are spread over the idle cores (:mod:`memfs.parallel`)."""
        i = bisect.bisect_right(self._run_pfn, pa >> 12) - 1
        prefix_ok = len(out) <= PREFIX_REQUEST_MAX
        inside = pa - (self._run_pfn[i] << 12)
        if prefix_ok and inside + len(out) <= self._run_count[i] << 12:
            # A small read inside one map run (one unit): random access, without the job list.
            unit, start = self._run_unit[i], (self._run_slot[i] << 12) + inside
            if self._unit_kind[unit] == KIND_RAW:
                self._pread_into(self._unit_off[unit] + start, out)
            else:
                self._copy_cached(unit, start, out, True)
            return
        pos = 0
        jobs = []
        for unit, start, take in self._pieces(pa, len(out), i):
            piece = out[pos : pos + take]
            if self._unit_kind[unit] == KIND_RAW:
                self._pread_into(self._unit_off[unit] + start, piece)
            elif start == 0 and take == self._unit_pages[unit] * PAGE_SIZE:
                jobs.append(functools.partial(self._decode, unit, piece))
            else:
                jobs.append(functools.partial(self._copy_cached, unit, start, piece, prefix_ok))
            pos += take
        if len(jobs) == 1:
            jobs[0]()
        elif jobs:
            HELPERS.run(jobs)

    def _copy_cached(self, unit: int, start: int, piece: memoryview, prefix_ok: bool) -> None:
        piece[:] = memoryview(self._cached(unit, start + len(piece), prefix_ok))[start : start + len(piece)]

    def _cached(self, unit: int, end: int, prefix_ok: bool) -> bytes:
        """At least the first ``end`` bytes of ``unit``, through the cache.

        Random access (docs/performance.md, "Random access"): for a small request (``prefix_ok``) a
        Huffman unit not yet cached is decoded only as far as ``end``, since its decoder is sequential
        and a page-table walk or debugger wants one page of it; a later read beyond that prefix decodes
        the whole unit, so no unit costs more than one and a half decodes.  Plain LZ77 units are cheap
        to decode whole, and their codec may turn out to be Huffman after all (the fallback in
        :meth:`_decode`), which only a complete decode can tell.
        """
        huffman = self._unit_kind[unit] == KIND_HUFFMAN
        partly = prefix_ok and huffman and end < self._unit_pages[unit] * PAGE_SIZE
        return self.cache.get_prefix(
            unit, end, lambda have: self._decode(unit, need=end if partly and have is None else None)
        )

    def _pieces(self, pa: int, n: int, i: int) -> Iterator[tuple[int, int, int]]:
        """``(unit, byte offset in its decoded data, length)`` for ``pa … pa+n-1``, from map run ``i``."""
        run_pfn, run_count = self._run_pfn, self._run_count
        run_unit, run_slot = self._run_unit, self._run_slot
        while n > 0:
            inside = pa - (run_pfn[i] << 12)
            take = min(n, (run_count[i] << 12) - inside)
            yield run_unit[i], (run_slot[i] << 12) + inside, take
            pa += take
            n -= take
            i += 1

    def _decode(self, unit: int, out: memoryview | None = None, need: int | None = None) -> bytes:
        """Decompress one unit to exactly pages × 4096 bytes; the declared codec first, then the other.

        With ``out`` (exactly that size) the unit is decoded into it and ``b""`` is returned.  With
        ``need`` (a Huffman unit) only its first ``need`` bytes or a few more are decoded and returned;
        if that fails the whole unit is decoded as above, so a damaged unit is reported the same way.
        """
        ref = self._index.unit(unit)
        out_size = ref.pages * PAGE_SIZE
        try:
            data = self._pread(ref.data_off, ref.csize)
        except CorruptionError as exc:
            self.failures.record(ref.head, str(exc))
            raise DecompressionError(str(exc)) from None
        codec = _codec()
        if need is not None:
            try:
                return codec.decompress_huffman_prefix(data, out_size, need)
            except DecompressionError:
                pass  # the full decode below tries both codecs and records the failure
        names = ("huffman", "plain") if ref.kind == KIND_HUFFMAN else ("plain", "huffman")
        errors = []
        for attempt, name in enumerate(names):
            try:
                if out is None:
                    result = getattr(codec, f"decompress_{name}")(data, out_size)
                else:  # fills all of ``out`` or raises
                    getattr(codec, f"decompress_{name}_into")(data, out)
                    result = b""
            except DecompressionError as exc:
                errors.append(str(exc))
                continue
            if out is not None or len(result) == out_size:
                if attempt:
                    self.fallbacks += 1
                return result
            errors.append(f"produced {len(result)} of {out_size} bytes")
        what = "Xpress block" if self.det.family == "legacy" else "compression set"
        message = (
            f"{self.name}: offset {ref.head:#x}: {what} ({KIND_NAMES[ref.kind]}, {ref.csize:#x} bytes, "
            f"{ref.pages} pages) does not decode: {'; '.join(errors)}"
        )
        self.failures.record(ref.head, message)
        raise DecompressionError(message)

    def cache_stats(self) -> dict[str, int]:
        return self.cache.stats()

    # -- header.txt -----------------------------------------------------------------------------------

    def describe(self) -> list[Section]:
        det, index = self.det, self._index
        lay = det.layout
        rows = [
            ("Signature", f"{self.signature!r} ({SIGNATURES.get(self.signature, 'not a known signature')})"),
            ("Family", f"{det.family} ({'XP - 7' if det.family == 'legacy' else '8 - 11'})"),
            ("Layout", f"{lay.key}: {lay.name}" if lay is not None else "unknown (recovered)"),
            ("Detected by", det.how),
            ("Architecture", det.arch),
        ]
        if lay is not None:
            rows.append(("LengthSelf", f"{lay.length_self:#x}"))
        for name, value in det.header.items():
            if name in HEADER_LABELS:
                rows.append((HEADER_LABELS[name], f"{value:#x}"))
        counts = index.kind_counts()
        unit_name = "Xpress blocks" if det.family == "legacy" else "Compression sets"
        rows.append(
            (unit_name, f"{index.units} ({', '.join(f'{counts[k]} {KIND_NAMES[k]}' for k in KIND_NAMES)})")
        )
        rows.append(("Pages mapped", str(index.pages)))
        for walk in det.walks:
            if isinstance(walk, LegacyWalk):
                rows.append(
                    (
                        "Range tables",
                        f"{walk.tables} tables, {walk.blocks} blocks, {walk.resyncs} block headers found by "
                        f"resync, {walk.surplus_slots} surplus block slots",
                    )
                )
            else:
                detail = f"{walk.sets} sets, {walk.pages} pages from {walk.start:#x} to {walk.end:#x}"
                if walk.big_sets:
                    detail += f", {walk.big_sets} sets of more than 16 pages"
                if walk.size20:
                    detail += f", {walk.size20} sizes read as 20-bit (bits 28-29 set)"
                if walk.stop:
                    detail += f"; stop: {walk.stop}"
                rows.append(("Phase", detail))
        if index.duplicates:
            rows.append(("Pages stored twice", f"{index.duplicates} (the later copy is used, §3.7)"))
        slack = max(self.file_size - index.end_offset, 0)
        rows.append(("Referenced file bytes", f"up to {index.end_offset:#x} of {self.file_size:#x}"))
        rows.append(("Slack (file bytes after the last unit)", f"{slack} bytes ({slack:#x})"))
        rows.append(
            ("Index size", f"{index.nbytes()} bytes ({index.nbytes() / max(index.pages, 1):.2f} per page)")
        )
        if self.fallbacks:
            rows.append(("Units decoded by the other codec", str(self.fallbacks)))
        if det.family == "legacy":
            where = f"file page {det.proc_page}" if det.proc_page is not None else "not found"
            rows.append(("Processor state", f"KPROCESSOR_STATE at {where}"))
        else:
            rows.append(("Processor state", "in memory (KPRCB), see kernel discovery"))
        return [Section("Hibernation file", rows)]


def _probe(p: ProbeInput) -> bool:
    """Known signature (hibr, HIBR, wake, WAKE, RSTR, BRKP, HORM) at offset 0 (docs/formats/hibernation.md
    §1.2)."""
    return p.head[:4] in SIGNATURES


def _probe_zeroed(p: ProbeInput) -> bool:
    return hiberfil_detect.weak_probe(p.head, p.size, p.pread)


FORMAT = FormatSpec(
    name="hiberfil",
    description="Windows hibernation file (hiberfil.sys), XP to 11 24H2, x86 and x64",
    probe=_probe,
    open=lambda data, options: HiberfilSource(data, options),
)

FORMAT_ZEROED = FormatSpec(
    name="hiberfil-recover",
    description="hibernation file whose header was zeroed after resume (recovered by scanning)",
    probe=_probe_zeroed,
    open=lambda data, options: HiberfilSource(data, options),
)

__all__ = ["FORMAT", "FORMAT_ZEROED", "HiberfilSource", "KIND_PLAIN", "LAYOUT_NAMES"]
