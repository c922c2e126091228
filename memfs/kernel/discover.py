"""Symbol-free discovery of the kernel values a WinDbg-loadable dump needs, once per source.

``discover(source)`` runs the steps below (each in its own module), fills ``source.metadata`` with
every value found (and, for each value not found, the reason), and returns a :class:`Discovery`
holding what the memory.dmp writer needs beyond metadata: the address space, the decoded KDBG, the
CPU 0 CONTEXT and the overlay patches (crashdump.md §15.2 step 11).

1. DTB and paging mode (:mod:`memfs.kernel.dtb`, §11);
2. kernel image (:mod:`memfs.kernel.pe`), from the low stub's LmTarget hint or a mapping walk;
3. KDBG, plain or Windows 8+ encoded (:mod:`memfs.kernel.kdbg`, §10);
4. list heads, PFN database, processors and their contexts (:mod:`memfs.kernel.processors`, §12);
5. OS build from DBGKD_GET_VERSION64 (:mod:`memfs.kernel.version`, §10.2);
6. time, uptime, product type, suite mask from KUSER_SHARED_DATA (:mod:`memfs.kernel.kuser`).

Every scan is bounded (bytes and seconds), and garbage input only ever yields "not found".
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from dataclasses import dataclass, field

from memfs.exceptions import MemfsError
from memfs.formats.crashdump_structs import MACHINE_BY_ARCH
from memfs.kernel import dtb as dtb_mod
from memfs.kernel import kdbg as kdbg_mod
from memfs.kernel.kuser import KUserData, read_kuser
from memfs.kernel.paging import AddressSpace
from memfs.kernel.pe import PeImage, find_kernel
from memfs.kernel.processors import SELECTOR_PATCHES, Processor, header_context, read_processors, registers
from memfs.kernel.version import VersionBlock, find_version_block
from memfs.memory import MemorySource, Metadata, Section

log = logging.getLogger(__name__)

PHYS_KDBG_SCAN = 1 << 30
_KDBG_FIELDS = (
    "kd_debugger_data_block",
    "ps_loaded_module_list",
    "ps_active_process_head",
    "pfn_database",
    "ki_processor_block",
    "number_processors",
    "os_build",
)
"""Metadata fields discovery fills from the KDBG and what it points to."""
_KUSER_FIELDS = {
    "system_time": "system_time",
    "system_uptime": "uptime",
    "product_type": "product_type",
    "suite_mask": "suite_mask",
}
"""Metadata fields discovery fills from KUSER_SHARED_DATA: field -> KUserData attribute."""

Overlay = tuple[int, bytes, str]
"""A patch memory.dmp applies on top of physical memory: ``(pa, bytes, why)``; never crosses a page."""


@dataclass
class Discovery:
    """What discovery found beyond the metadata fields, for memory.dmp and header.txt."""

    mode: str | None = None
    space: AddressSpace | None = None
    kernel: PeImage | None = None
    kdbg: kdbg_mod.Kdbg | None = None
    version: VersionBlock | None = None
    kuser: KUserData | None = None
    processors: list[Processor] = field(default_factory=list)
    header_context: bytes | None = None
    filled_context: bool = False  # metadata.context came from discovery, not from the source
    overlays: list[Overlay] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def sections(self) -> list[Section]:
        """The ``header.txt`` section describing how each value was found (or why not)."""
        rows = list(self.rows)
        rows.append(("Discovery time", f"{self.seconds:.2f} s"))
        return [Section("Kernel discovery (symbol-free)", rows)]


_CACHED = "_memfs_discovery"
"""The source attribute that keeps its Discovery.  Not a WeakKeyDictionary: a Discovery refers back to
its source (the address space reads through it), so a weak-keyed entry would never die and every
source discovered would stay in memory with its caches."""
_LOCK = threading.Lock()


def discover(source: MemorySource) -> Discovery:
    """Discover the kernel values of ``source`` once, fill ``source.metadata``, and return the details.

    Safe to call repeatedly (the result is cached per source) and from several threads.
    """
    with _LOCK:
        cached = getattr(source, _CACHED, None)
        if cached is not None:
            return cached
        started = time.monotonic()
        result = Discovery()
        try:
            _run(source, result)
        except (MemfsError, struct.error, ValueError, OverflowError, IndexError) as exc:
            log.warning("%s: kernel discovery stopped: %s", source.path, exc)
            result.rows.append(("Stopped", f"discovery stopped early: {exc}"))
            source.metadata.notes.append(f"kernel discovery stopped early: {exc}")
        result.seconds = time.monotonic() - started
        _explain_missing(source.metadata, result)
        setattr(source, _CACHED, result)
        return result


def _set(meta: Metadata, name: str, value: object, reason: str) -> None:
    """Fill a metadata field the source left unknown; record ``reason`` when discovery has no value."""
    if getattr(meta, name) is None:
        if value is None:
            meta.unknown(name, reason)
        else:
            setattr(meta, name, value)
            meta.unknown_reasons.pop(name, None)


def _set_pointer(meta: Metadata, space: AddressSpace, name: str, value: int | None) -> None:
    """Fill a metadata field from a KDBG field, kept only if it looks like a kernel pointer."""
    _set(meta, name, value if space.pointer_ok(value) else None, "KDBG field is not a pointer")


def _patch(source: MemorySource, space: AddressSpace, va: int, data: bytes, why: str) -> list[Overlay]:
    """Overlay ``data`` at ``va``, split per page; parts on unmapped or absent pages are skipped."""
    out: list[Overlay] = []
    pos = 0
    while pos < len(data):
        take = min(len(data) - pos, 0x1000 - ((va + pos) & 0xFFF))
        pa = space.translate(va + pos)
        piece = data[pos : pos + take]
        if pa is not None and source.is_present(pa) and source.read(pa, take) != piece:
            out.append((pa, piece, why))
        pos += take
    return out


def _run(source: MemorySource, d: Discovery) -> None:
    meta = source.metadata
    if meta.format != "crashdump":
        why = "the image is not a crash dump (memory.dmp carries memfs's own marker, see [memory.dmp])"
        for name in ("bugcheck_code", "bugcheck_parameters", "comment"):
            meta.unknown(name, why)
    found, attempts = dtb_mod.find_dtb(source)
    for line in attempts:
        d.rows.append(("DTB search", line))
    if found is None:
        reason = "no valid page-table root found (" + "; ".join(attempts or ["no candidate"]) + ")"
        for name in ("directory_table_base", "kernel_base", *_KDBG_FIELDS, *_KUSER_FIELDS):
            _set(meta, name, None, reason)
        return
    d.mode, d.space = found.mode, found.space
    space = found.space
    d.rows.append(("DirectoryTableBase", f"{found.dtb:#x}: {found.method}"))
    d.rows.append(("Paging mode", {"x64": "x64 4-level", "pae": "x86 PAE", "x86": "x86 non-PAE"}[found.mode]))
    _set(meta, "arch", found.arch, "")
    if found.arch == "x86":
        _set(meta, "pae", found.mode == "pae", "")
    else:
        meta.unknown("pae", "PAE is a 32-bit x86 setting; not applicable to x64")
    _set(meta, "directory_table_base", found.dtb, "")
    _set(meta, "machine_image_type", MACHINE_BY_ARCH[found.arch], "")

    _discover_kuser(meta, d, space)

    hint = _low_stub_hint(source) if found.mode == "x64" else None
    kernel, how = find_kernel(space, source.read, hint)
    d.kernel = kernel
    d.rows.append(("Kernel image", f"{kernel.base:#x} ({kernel.size:#x} bytes): {how}" if kernel else how))

    kdbg, why = _find_kdbg(source, space, kernel)
    d.kdbg = kdbg
    if kdbg is None:
        d.rows.append(("KDBG", why))
        reason = f"KDBG not found ({why})"
        _set(meta, "kernel_base", kernel.base if kernel else None, reason)
        for name in _KDBG_FIELDS:
            _set(meta, name, None, reason)
        return
    _use_kdbg(source, meta, d, space, kdbg)


def _low_stub_hint(source: MemorySource) -> int | None:
    """LmTarget of the x64 low stub: a VA inside the kernel image (crashdump.md §11 item 1)."""
    low = source.read(0, 0x100000)
    for off in range(0x1000, len(low) - 0xA8, 0x1000):
        (head,) = struct.unpack_from("<Q", low, off)
        (target,) = struct.unpack_from("<Q", low, off + 0x70)
        if (
            head & 0xFFFFFFFFFFFF00FF == 0x00000001000600E9
            and target & 0xFFFFF80000000003 == 0xFFFFF80000000000
        ):
            return target
    return None


def _find_kdbg(
    source: MemorySource, space: AddressSpace, kernel: PeImage | None
) -> tuple[kdbg_mod.Kdbg | None, str]:
    reasons = []
    if kernel is not None:
        found = kdbg_mod.find_plain_in_image(space, kernel)
        if found is not None:
            return found, ""
        reasons.append("no plain 'KDBG' block in the kernel image")
        if space.mode == "x64":
            found, why = kdbg_mod.find_encoded(space, kernel)
            if found is not None:
                return found, ""
            reasons.append(why)
    else:
        reasons.append("kernel image not found")
    found, why = kdbg_mod.find_plain_physical(space, source.read, source.size, PHYS_KDBG_SCAN)
    if found is not None:
        return found, ""
    reasons.append(why)
    return None, "; ".join(reasons)


def _use_kdbg(
    source: MemorySource, meta: Metadata, d: Discovery, space: AddressSpace, kdbg: kdbg_mod.Kdbg
) -> None:
    d.rows.append(("KDBG", f"{kdbg.va:#x} (PA {kdbg.pa:#x}, Size {kdbg.size:#x}): {kdbg.method}"))
    if kdbg.encoded:
        d.rows.append(("KiWaitNever / KiWaitAlways", f"{kdbg.wait_never:#018x} / {kdbg.wait_always:#018x}"))
        flag = "unreadable" if kdbg.encoded_flag_value is None else f"{kdbg.encoded_flag_value:#x}"
        d.rows.append(
            ("KdpDataBlockEncoded", f"{kdbg.encoded_flag_va:#x} (byte reads {flag}), solved from KernBase")
        )
        d.overlays += _patch(source, space, kdbg.va, kdbg.plain, "decoded KDBG (crashdump.md §10.4)")
        d.overlays += _patch(source, space, kdbg.encoded_flag_va, b"\0", "KdpDataBlockEncoded cleared")
    _set(meta, "kd_debugger_data_block", kdbg.va, "")
    kern_base = kdbg.ptr(kdbg_mod.KERN_BASE)
    _set(meta, "kernel_base", kern_base, "")
    modules = kdbg.ptr(kdbg_mod.PS_LOADED_MODULE_LIST)
    _set_pointer(meta, space, "ps_loaded_module_list", modules)
    _set_pointer(meta, space, "ps_active_process_head", kdbg.ptr(kdbg_mod.PS_ACTIVE_PROCESS_HEAD))

    # PfnDataBase: the value of nt!MmPfnDatabase, as MemProcFS writes and LeechCore reads it (§5.6).
    pfn_var = kdbg.ptr(kdbg_mod.MM_PFN_DATABASE)
    pfn = space.read_ptr(pfn_var) if space.pointer_ok(pfn_var) else None
    if pfn is not None and space.pointer_ok(pfn):
        d.rows.append(("MmPfnDatabase", f"value {pfn:#x} read at KDBG.MmPfnDatabase {pfn_var:#x}"))
    else:
        pfn = None
    _set(meta, "pfn_database", pfn, "KDBG.MmPfnDatabase does not point to a readable kernel pointer")

    version = None
    if kern_base is not None and modules is not None:
        version = find_version_block(space, kdbg.va, kern_base, modules)
    d.version = version
    if version is not None:
        d.rows.append(
            ("DBGKD_GET_VERSION64", f"{version.va:#x}: build {version.minor}, major {version.major:#x}")
        )
    _set(
        meta,
        "os_build",
        version.minor if version else None,
        "DBGKD_GET_VERSION64 not found within 8 pages of the KDBG",
    )

    _set_pointer(meta, space, "ki_processor_block", kdbg.ptr(kdbg_mod.KI_PROCESSOR_BLOCK))
    processors, how = read_processors(space, kdbg, meta.os_build)
    d.processors = processors
    d.rows.append(("Processors", f"{len(processors)} in KiProcessorBlock; contexts: {how}"))
    _set(meta, "number_processors", len(processors) or None, "KiProcessorBlock lists no processor")
    if d.kuser is not None and d.kuser.active_processors not in (None, len(processors)):
        meta.notes.append(
            f"KUSER_SHARED_DATA.ActiveProcessorCount is {d.kuser.active_processors}, "
            f"KiProcessorBlock lists {len(processors)}"
        )
    arch = kdbg.arch
    for cpu in processors:
        for va in (cpu.embedded_context_va, cpu.context_ptr_va):
            if va is None:
                continue
            for off, data in SELECTOR_PATCHES[arch]:
                d.overlays += _patch(
                    source, space, va + off, data, f"CPU {cpu.index} CONTEXT kernel selectors"
                )
    if processors and processors[0].context is not None:
        d.header_context = header_context(processors[0].context, arch)
        if meta.context is None:
            meta.context = registers(processors[0].context, arch)
            d.filled_context = True
    else:
        meta.notes.append("no CPU 0 CONTEXT found: the memory.dmp header carries kernel selectors only")


def _discover_kuser(meta: Metadata, d: Discovery, space: AddressSpace) -> None:
    kuser = read_kuser(space)
    d.kuser = kuser
    reason = "KUSER_SHARED_DATA not mapped" if kuser is None else "KUSER_SHARED_DATA value implausible"
    if kuser is not None:
        d.rows.append(("KUSER_SHARED_DATA", f"{kuser.va:#x}"))
    for name, attr in _KUSER_FIELDS.items():
        _set(meta, name, getattr(kuser, attr) if kuser is not None else None, reason)


def _explain_missing(meta: Metadata, d: Discovery) -> None:
    """Say plainly what a debugger loading memory.dmp will lack (header.txt)."""
    checks = [
        ("directory_table_base", "no DirectoryTableBase: WinDbg cannot translate virtual addresses"),
        ("kd_debugger_data_block", "no KdDebuggerDataBlock: module, process and processor commands fail"),
        ("ps_loaded_module_list", "no PsLoadedModuleList: WinDbg cannot list or load kernel modules"),
        ("ps_active_process_head", "no PsActiveProcessHead: process listing unavailable"),
        ("os_build", "OS build unknown: header MinorVersion is 0"),
        ("system_time", "system time unknown: header SystemTime is 0"),
    ]
    d.missing = [text for name, text in checks if getattr(meta, name) is None]
    if d.header_context is None:
        d.missing.append("no CPU 0 register context: no stack or registers in the header")
