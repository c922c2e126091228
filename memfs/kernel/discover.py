"""Symbol-free discovery of the kernel values a WinDbg-loadable dump needs: an explicit step.

``discover(source)`` runs the steps below (each in its own module) and returns a :class:`Discovery`
that the caller owns (the mount, ``memfs info``, ``memfs convert --to dmp``) and hands to the views
that need it (``memory.dmp``, ``header.txt``).  It never writes into the source: the metadata fields
it found are kept in the Discovery with, for each one it looked for and did not find, the reason;
:func:`merge_metadata` lays them over what the source states, for ``header.txt``, ``info --json`` and
the memory.dmp header alike.  Beyond metadata the Discovery holds what the memory.dmp writer needs:
the address space, the decoded KDBG, the CPU 0 CONTEXT and the overlay patches (docs/formats/crashdump.md
§15.2
step 11).

1. DTB and paging mode (:mod:`memfs.kernel.dtb`, §11);
2. kernel image (:mod:`memfs.kernel.pe`), from the low stub's LmTarget hint or a mapping walk;
3. KDBG, plain or Windows 8+ encoded (:mod:`memfs.kernel.kdbg`, §10);
4. list heads, PFN database, processors and their contexts (:mod:`memfs.kernel.processors`, §12);
5. OS build from DBGKD_GET_VERSION64 (:mod:`memfs.kernel.version`, §10.2);
6. time, uptime, product type, suite mask from KUSER_SHARED_DATA (:mod:`memfs.kernel.kuser`).

Every scan is bounded (bytes and seconds), and garbage input only ever yields "not found".  The
scans read through :class:`~memfs.kernel.tolerant.TolerantMemory`: a unit that fails to decode costs
only its own pages (they read as zeros; each unit is counted in ``skipped_units``), and one deadline
bounds the whole discovery.  A Discovery says how complete it is: ``skipped`` (it did not run, and
why), ``stopped`` (it ended early, and why), and per value the reason it is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memfs.exceptions import MemfsError
from memfs.kernel import dtb as dtb_mod
from memfs.kernel import kdbg as kdbg_mod
from memfs.kernel.kuser import KUserData, read_kuser
from memfs.kernel.paging import AddressSpace
from memfs.kernel.pe import PeImage, find_kernel
from memfs.kernel.processors import SELECTOR_PATCHES, Processor, header_context, read_processors, registers
from memfs.kernel.tolerant import DISCOVERY_SECONDS, TolerantMemory
from memfs.kernel.version import VersionBlock, find_version_block
from memfs.memory import PAGE_SIZE, MemorySource, Metadata, Section
from memfs.windows_structs import MACHINE_BY_ARCH

log = logging.getLogger(__name__)

PHYS_KDBG_SCAN = 1 << 30
SUPPORTED_ARCHES = (None, "x64", "x86")
"""Stated architectures discovery can search (None: unknown, as for a raw image)."""
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
    """What discovery found in one source: metadata values, the details behind them, and what it missed.

    ``values`` holds the metadata fields discovery filled (only fields the source left unknown) and
    ``reasons`` why each field it looked for is still unknown; ``notes`` are warnings for
    ``header.txt``.  None of them is in ``source.metadata``: :func:`merge_metadata` combines the two.
    """

    skipped: str | None = None
    """Why discovery did not run at all (nothing else is then filled in), or None."""
    stopped: str | None = None
    """Why discovery ended early (what it found until then is kept), or None."""
    values: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    mode: str | None = None
    space: AddressSpace | None = None
    kernel: PeImage | None = None
    kdbg: kdbg_mod.Kdbg | None = None
    version: VersionBlock | None = None
    kuser: KUserData | None = None
    processors: list[Processor] = field(default_factory=list)
    header_context: bytes | None = None
    """CPU 0's CONTEXT as the memory.dmp header carries it (kernel selectors, valid flags)."""
    context: dict[str, int] | None = None
    """CPU 0's registers, for ``metadata.context`` when the source states none."""
    overlays: list[Overlay] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """What a debugger loading memory.dmp will lack, in plain words (header.txt)."""
    skipped_units: list[str] = field(default_factory=list)
    """Units that failed to decode while discovery read them (one message each, naming the unit):
    their pages read as zeros to the scans, and everything else was searched."""
    seconds: float = 0.0

    @classmethod
    def skip(cls, reason: str, stated: Metadata | None = None) -> Discovery:
        """A Discovery that did not run: nothing found, and ``reason`` is what memory.dmp lacks.

        With ``stated`` (what the image itself states), ``missing`` also names each value a debugger
        will lack because the image does not state it.
        """
        found = cls(skipped=reason, missing=[reason])
        if stated is not None:
            found.missing += _lacking(lambda name: getattr(stated, name), has_context=False)
            for name in ("directory_table_base", "kernel_base", *_KDBG_FIELDS, *_KUSER_FIELDS):
                if getattr(stated, name) is None:
                    why = stated.unknown_reasons.get(name)
                    found.reasons[name] = f"{why}; {reason}" if why else reason
        return found

    @property
    def complete(self) -> bool:
        """Whether discovery ran to its end (values may still be missing: see ``reasons``)."""
        return self.skipped is None and self.stopped is None

    def summary(self) -> dict[str, Any]:
        """How complete discovery is, for ``info --json`` (``discovery``)."""
        return {
            "complete": self.complete,
            "skipped": self.skipped,
            "stopped": self.stopped,
            "skipped_units": len(self.skipped_units),
            "seconds": round(self.seconds, 3),
            "missing": list(self.missing),
        }

    def sections(self) -> list[Section]:
        """The ``header.txt`` section describing how each value was found (or why not), or why not run."""
        if self.skipped is not None:
            return [Section("Kernel discovery (symbol-free)", [("Not run", self.skipped)])]
        rows = list(self.rows)
        if self.skipped_units:
            rows.append(
                (
                    "Undecodable units skipped",
                    f"{len(self.skipped_units)} (their pages read as zeros to the scans; "
                    f"see [Decode failures]); first: {self.skipped_units[0]}",
                )
            )
        rows.append(("Discovery time", f"{self.seconds:.2f} s"))
        return [Section("Kernel discovery (symbol-free)", rows)]


NOT_REQUESTED = "kernel discovery was not run (--no-discovery)"
"""Why a Discovery is skipped when the user turned it off."""


def not_requested(source: MemorySource) -> Discovery:
    """The Discovery of a caller told not to run it (``--no-discovery``): nothing searched, and
    ``missing`` names what memory.dmp lacks because ``source`` does not state it."""
    return Discovery.skip(NOT_REQUESTED, source.metadata)


def merge_metadata(stated: Metadata, discovery: Discovery | None) -> Metadata:
    """What the image states, with what discovery found filled in: the one view of the system's values.

    ``header.txt``, ``info --json`` and the memory.dmp header all read this, so they cannot disagree.
    ``stated`` is not modified; a None ``discovery`` (not run) gives a copy of it.
    """
    merged = dataclasses.replace(
        stated, unknown_reasons=dict(stated.unknown_reasons), notes=list(stated.notes)
    )
    if discovery is None:
        return merged
    for name, value in discovery.values.items():
        if getattr(merged, name) is None:
            setattr(merged, name, value)
            merged.unknown_reasons.pop(name, None)
    for name, reason in discovery.reasons.items():
        merged.unknown(name, reason)
    if merged.context is None:
        merged.context = discovery.context
    merged.notes += discovery.notes
    return merged


def discover(source: MemorySource, seconds: float = DISCOVERY_SECONDS) -> Discovery:
    """Discover the kernel values of ``source`` and return them; ``source`` is only read.

    Each call runs the whole search again: the caller keeps the result for as long as it needs it.
    It ends within about ``seconds`` whatever the image holds (:mod:`memfs.kernel.tolerant`).
    """
    meta = source.metadata
    if not source.runs:
        return Discovery.skip("the image holds no physical memory")
    if meta.arch not in SUPPORTED_ARCHES:
        return Discovery.skip("kernel discovery does not support this arch")
    started = time.monotonic()
    found = _Found(meta, Discovery())
    memory = TolerantMemory(source, seconds)
    try:
        _run(memory, found)
    except (MemfsError, struct.error, ValueError, OverflowError, IndexError) as exc:
        log.warning("%s: kernel discovery stopped: %s", source.name, exc)
        found.d.stopped = str(exc)
        found.d.rows.append(("Stopped", f"discovery stopped early: {exc}"))
        found.d.notes.append(f"kernel discovery stopped early: {exc}")
    finally:
        memory.finish()
    found.d.skipped_units = list(memory.skipped)
    if memory.skipped:
        found.d.notes.append(
            f"kernel discovery skipped {len(memory.skipped)} units that do not decode "
            "(their pages only; see [Decode failures])"
        )
    found.d.seconds = time.monotonic() - started
    _explain_missing(found)
    return found.d


class _Found:
    """Discovery's working view of the metadata: the source's statements, then what was found so far.

    Later steps depend on earlier findings (the OS build picks the KPRCB context offset), so reads
    go through :meth:`get`; writes go only into the Discovery.
    """

    def __init__(self, stated: Metadata, d: Discovery) -> None:
        self.stated = stated
        self.d = d

    def get(self, name: str) -> Any:
        value = getattr(self.stated, name)
        return value if value is not None else self.d.values.get(name)

    def set(self, name: str, value: object, reason: str) -> None:
        """Fill a field the source left unknown; record ``reason`` when discovery has no value."""
        if self.get(name) is None:
            if value is None:
                self.d.reasons[name] = reason
            else:
                self.d.values[name] = value
                self.d.reasons.pop(name, None)

    def unknown(self, name: str, reason: str) -> None:
        """Record why a field is unknown (as :meth:`Metadata.unknown`: only while it has no value)."""
        if self.get(name) is None:
            self.d.reasons[name] = reason

    def set_pointer(self, space: AddressSpace, name: str, value: int | None) -> None:
        """Fill a field from a KDBG field, kept only if it looks like a kernel pointer."""
        self.set(name, value if space.pointer_ok(value) else None, "KDBG field is not a pointer")


def _patch(source: TolerantMemory, space: AddressSpace, va: int, data: bytes, why: str) -> list[Overlay]:
    """Overlay ``data`` at ``va``, split per page; parts on unmapped, absent or undecodable pages are
    skipped (memory.dmp fails the reads of an undecodable page before any overlay)."""
    out: list[Overlay] = []
    pos = 0
    while pos < len(data):
        take = min(len(data) - pos, PAGE_SIZE - ((va + pos) & (PAGE_SIZE - 1)))
        pa = space.translate(va + pos)
        piece = data[pos : pos + take]
        differs = pa is not None and source.is_present(pa) and source.read(pa, take) != piece
        if differs and not source.damaged(pa):  # the read is what finds out that a page is undecodable
            out.append((pa, piece, why))
        pos += take
    return out


def _run(source: TolerantMemory, found: _Found) -> None:
    d = found.d
    if source.dump_header() is None:
        why = "the image is not a crash dump (memory.dmp carries memfs's own marker, see [memory.dmp])"
        for name in ("bugcheck_code", "bugcheck_parameters", "comment"):
            found.unknown(name, why)
    # The x64 low stub serves the DTB search and the kernel search: parsed once, when first needed.
    low_stubs = functools.cache(lambda: dtb_mod.find_low_stubs(source))
    result, attempts = dtb_mod.find_dtb(source, low_stubs)
    for line in attempts:
        d.rows.append(("DTB search", line))
    if result is None:
        reason = "no valid page-table root found (" + "; ".join(attempts or ["no candidate"]) + ")"
        for name in ("directory_table_base", "kernel_base", *_KDBG_FIELDS, *_KUSER_FIELDS):
            found.set(name, None, reason)
        return
    d.mode, d.space = result.mode, result.space
    space = result.space
    d.rows.append(("DirectoryTableBase", f"{result.dtb:#x}: {result.method}"))
    d.rows.append(
        ("Paging mode", {"x64": "x64 4-level", "pae": "x86 PAE", "x86": "x86 non-PAE"}[result.mode])
    )
    found.set("arch", result.arch, "")
    if result.arch == "x86":
        found.set("pae", result.mode == "pae", "")
    else:
        found.unknown("pae", "PAE is a 32-bit x86 setting; not applicable to x64")
    found.set("directory_table_base", result.dtb, "")
    found.set("machine_image_type", MACHINE_BY_ARCH[result.arch], "")

    _discover_kuser(found, space)

    stubs = low_stubs() if result.mode == "x64" else []
    hint = stubs[0].lm_target if stubs else None
    kernel, how = find_kernel(space, source, hint)
    d.kernel = kernel
    d.rows.append(("Kernel image", f"{kernel.base:#x} ({kernel.size:#x} bytes): {how}" if kernel else how))

    kdbg, why = _find_kdbg(source, space, kernel)
    d.kdbg = kdbg
    if kdbg is None:
        d.rows.append(("KDBG", why))
        reason = f"KDBG not found ({why})"
        found.set("kernel_base", kernel.base if kernel else None, reason)
        for name in _KDBG_FIELDS:
            found.set(name, None, reason)
        return
    _use_kdbg(source, found, space, kdbg)


def _find_kdbg(
    source: TolerantMemory, space: AddressSpace, kernel: PeImage | None
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


def _use_kdbg(source: TolerantMemory, found: _Found, space: AddressSpace, kdbg: kdbg_mod.Kdbg) -> None:
    d = found.d
    d.rows.append(("KDBG", f"{kdbg.va:#x} (PA {kdbg.pa:#x}, Size {kdbg.size:#x}): {kdbg.method}"))
    if kdbg.encoded:
        d.rows.append(("KiWaitNever / KiWaitAlways", f"{kdbg.wait_never:#018x} / {kdbg.wait_always:#018x}"))
        flag = "unreadable" if kdbg.encoded_flag_value is None else f"{kdbg.encoded_flag_value:#x}"
        d.rows.append(
            ("KdpDataBlockEncoded", f"{kdbg.encoded_flag_va:#x} (byte reads {flag}), solved from KernBase")
        )
        d.overlays += _patch(
            source, space, kdbg.va, kdbg.plain, "decoded KDBG (docs/formats/crashdump.md §10.4)"
        )
        d.overlays += _patch(source, space, kdbg.encoded_flag_va, b"\0", "KdpDataBlockEncoded cleared")
    found.set("kd_debugger_data_block", kdbg.va, "")
    kern_base = kdbg.ptr(kdbg_mod.KERN_BASE)
    found.set("kernel_base", kern_base, "")
    modules = kdbg.ptr(kdbg_mod.PS_LOADED_MODULE_LIST)
    found.set_pointer(space, "ps_loaded_module_list", modules)
    found.set_pointer(space, "ps_active_process_head", kdbg.ptr(kdbg_mod.PS_ACTIVE_PROCESS_HEAD))

    # PfnDataBase: the value of nt!MmPfnDatabase, as MemProcFS writes and LeechCore reads it (§5.6).
    pfn_var = kdbg.ptr(kdbg_mod.MM_PFN_DATABASE)
    pfn = space.read_ptr(pfn_var) if space.pointer_ok(pfn_var) else None
    if pfn is not None and space.pointer_ok(pfn):
        d.rows.append(("MmPfnDatabase", f"value {pfn:#x} read at KDBG.MmPfnDatabase {pfn_var:#x}"))
    else:
        pfn = None
    found.set("pfn_database", pfn, "KDBG.MmPfnDatabase does not point to a readable kernel pointer")

    version = None
    if kern_base is not None and modules is not None:
        version = find_version_block(space, kdbg.va, kern_base, modules)
    d.version = version
    if version is not None:
        d.rows.append(
            ("DBGKD_GET_VERSION64", f"{version.va:#x}: build {version.minor}, major {version.major:#x}")
        )
    found.set(
        "os_build",
        version.minor if version else None,
        "DBGKD_GET_VERSION64 not found within 8 pages of the KDBG",
    )

    found.set_pointer(space, "ki_processor_block", kdbg.ptr(kdbg_mod.KI_PROCESSOR_BLOCK))
    processors, how = read_processors(space, kdbg, found.get("os_build"))
    d.processors = processors
    d.rows.append(("Processors", f"{len(processors)} in KiProcessorBlock; contexts: {how}"))
    found.set("number_processors", len(processors) or None, "KiProcessorBlock lists no processor")
    if d.kuser is not None and d.kuser.active_processors not in (None, len(processors)):
        d.notes.append(
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
        d.context = registers(processors[0].context, arch)
    else:
        d.notes.append("no CPU 0 CONTEXT found: the memory.dmp header carries kernel selectors only")


def _discover_kuser(found: _Found, space: AddressSpace) -> None:
    kuser = read_kuser(space)
    found.d.kuser = kuser
    reason = "KUSER_SHARED_DATA not mapped" if kuser is None else "KUSER_SHARED_DATA value implausible"
    if kuser is not None:
        found.d.rows.append(("KUSER_SHARED_DATA", f"{kuser.va:#x}"))
    for name, attr in _KUSER_FIELDS.items():
        found.set(name, getattr(kuser, attr) if kuser is not None else None, reason)


_MISSING = (
    ("directory_table_base", "no DirectoryTableBase: WinDbg cannot translate virtual addresses"),
    ("kd_debugger_data_block", "no KdDebuggerDataBlock: module, process and processor commands fail"),
    ("ps_loaded_module_list", "no PsLoadedModuleList: WinDbg cannot list or load kernel modules"),
    ("ps_active_process_head", "no PsActiveProcessHead: process listing unavailable"),
    ("os_build", "OS build unknown: header MinorVersion is 0"),
    ("system_time", "system time unknown: header SystemTime is 0"),
)


def _lacking(get: Callable[[str], Any], has_context: bool) -> list[str]:
    """What a debugger loading memory.dmp will lack, given the value of each field (``get``)."""
    missing = [text for name, text in _MISSING if get(name) is None]
    if not has_context and get("context") is None:
        missing.append("no CPU 0 register context: no stack or registers in the header")
    return missing


def _explain_missing(found: _Found) -> None:
    """Say plainly what a debugger loading memory.dmp will lack (header.txt)."""
    found.d.missing = _lacking(found.get, found.d.header_context is not None)
