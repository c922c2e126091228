"""Finding the kernel DirectoryTableBase (CR3) and paging mode of an image (docs/formats/crashdump.md §11).

Candidates, in order:

1. the value the image itself states (hibernation processor state, crash-dump header), used as a
   hint and validated like any other candidate (MemProcFS does the same, §8.1);
2. the x64 low stub, PROCESSOR_START_BLOCK, in the first MiB (§11 item 1);
3. a chunked scan of low physical memory for self-referencing top-level tables: x64 PML4 with a
   kernel-half entry pointing at itself, x86 PAE page directories whose fourth directory maps the
   four directories (and then the PDPT that lists them), x86 non-PAE page directories with the
   self-map at index 0x300 (§11 item 2, §13).

A candidate is accepted only when it translates KUSER_SHARED_DATA (fixed VA per architecture, §12)
to a present physical page: garbage tables essentially never do.  Scans are bounded by a byte and a
time budget so a huge image (or a slow compressed one) cannot stall the mount.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from memfs.kernel.paging import AddressSpace
from memfs.kernel.tolerant import ScanSource
from memfs.memory import PAGE_SIZE

KUSER_VA = {"x64": 0xFFFFF78000000000, "pae": 0xFFDF0000, "x86": 0xFFDF0000}
SCAN_BYTES = 512 << 20
SCAN_SECONDS = 20.0
CHUNK = 1 << 20
MAX_PDPT_SEARCHES = 8  # each PAE candidate costs a scan for its PDPT; every process has a self-map
_FRAME = 0x000FFFFFFFFFF000
_ZEROS = bytes(CHUNK)


@dataclass
class DtbResult:
    """A validated kernel address space."""

    mode: str  # "x64", "pae", "x86"
    dtb: int
    method: str
    space: AddressSpace

    @property
    def arch(self) -> str:
        return "x64" if self.mode == "x64" else "x86"


def validate(source: ScanSource, mode: str, dtb: int) -> AddressSpace | None:
    """The address space of ``dtb`` if it maps KUSER_SHARED_DATA to a present page, else None."""
    if dtb <= 0 or dtb >= source.size or (mode == "pae" and dtb & 0x1F) or (mode != "pae" and dtb & 0xFFF):
        return None
    space = AddressSpace(source.read, dtb, mode)
    pa = space.translate(KUSER_VA[mode])
    if pa is None or not source.is_present(pa):
        return None
    return space


def _modes_for(arch: str | None, pae: bool | None) -> tuple[str, ...]:
    if arch == "x64":
        return ("x64",)
    if arch == "x86":
        return ("pae",) if pae else ("x86",) if pae is False else ("pae", "x86")
    if arch is None:
        return ("x64", "pae", "x86")
    return ()


def from_hint(source: ScanSource, dtb: int, arch: str | None, pae: bool | None) -> DtbResult | None:
    """Validate a DTB the image states about itself.

    Low bits are masked first: an x64 CR3 may carry PCID bits 11:0 (kdmp-parser masks them too),
    a PAE CR3 is only 32-byte aligned.
    """
    for mode in _modes_for(arch, pae):
        space = validate(source, mode, dtb & (~0x1F if mode == "pae" else ~0xFFF))
        if space is not None:
            return DtbResult(
                mode, space.dtb, "stated by the image, validated (KUSER_SHARED_DATA maps)", space
            )
    return None


@dataclass(frozen=True)
class LowStub:
    """An x64 PROCESSOR_START_BLOCK in low memory (docs/formats/crashdump.md §11 item 1) and the two values
    memfs uses."""

    pa: int
    lm_target: int
    """LmTarget: a VA inside the kernel image (the hint :func:`memfs.kernel.pe.find_kernel` starts from)."""
    cr3: int
    """ProcessorState.SpecialRegisters.Cr3: the kernel DTB, if it validates."""


LOW_STUB_END = 0x100000
"""The stub lies on a page boundary in PA 0x1000 … 0xFFFFF (docs/formats/crashdump.md §11 item 1)."""


def find_low_stubs(source: ScanSource) -> list[LowStub]:
    """Every page of the first MiB that starts like a PROCESSOR_START_BLOCK with a kernel LmTarget.

    Parsed once per discovery: the DTB search validates each stub's CR3 (:func:`scan_low_stub`) and
    the kernel search starts from the first stub's LmTarget.
    """
    low = source.read(0, LOW_STUB_END)
    stubs = []
    for off in range(PAGE_SIZE, len(low) - 0xA8, PAGE_SIZE):
        (head,) = struct.unpack_from("<Q", low, off)
        if head & 0xFFFFFFFFFFFF00FF != 0x00000001000600E9:  # E9 jmp, then CompletionFlag 1 at +4
            continue
        (lm_target,) = struct.unpack_from("<Q", low, off + 0x70)
        if lm_target & 0xFFFFF80000000003 == 0xFFFFF80000000000:
            (cr3,) = struct.unpack_from("<Q", low, off + 0xA0)
            stubs.append(LowStub(off, lm_target, cr3))
    return stubs


def scan_low_stub(source: ScanSource, stubs: Sequence[LowStub]) -> DtbResult | None:
    """The first low stub whose CR3 validates (docs/formats/crashdump.md §11 item 1)."""
    for stub in stubs:
        if stub.cr3 & 0xFFFFFF0000000FFF:
            continue
        space = validate(source, "x64", stub.cr3)
        if space is not None:
            return DtbResult(
                "x64", stub.cr3, f"x64 low stub (PROCESSOR_START_BLOCK) at PA {stub.pa:#x}", space
            )
    return None


def _x64_self_map(page: bytes, pa: int) -> bool:
    key = ((pa >> 16) & 0xFFFFFFFF).to_bytes(4, "little")
    pos = page.find(key, 0x800 + 2)
    while pos != -1:
        if pos % 8 == 2:
            (entry,) = struct.unpack_from("<Q", page, pos - 2)
            if entry & 0x0000FFFFFFFFF083 == pa | 3:
                return True
        pos = page.find(key, pos + 1)
    return False


def _pae_pd3(page: bytes, pa: int, limit: int) -> list[int] | None:
    entries = struct.unpack_from("<4Q", page, 0)
    if entries[3] & _FRAME != pa or not entries[3] & 1:
        return None
    pds = [e & _FRAME for e in entries]
    if not all(e & 1 for e in entries) or len(set(pds)) != 4 or max(pds) >= limit:
        return None
    return pds


def _x86_self_map(page: bytes, pa: int) -> bool:
    (entry,) = struct.unpack_from("<I", page, 0xC00)
    return entry & 0xFFFFF001 == pa | 1


def _find_pdpt(source: ScanSource, pds: list[int], budget: int, deadline: float) -> int | None:
    """A 32-byte aligned PDPT listing exactly these four page directories (§13)."""
    key = ((pds[0] >> 16) & 0xFFFFFFFF).to_bytes(4, "little")
    for base in range(0, min(source.size, budget), CHUNK):
        if time.monotonic() > deadline:
            return None
        chunk = source.read(base, CHUNK)
        pos = chunk.find(key)
        while pos != -1:
            start = pos - 2
            if start % 32 == 0 and start + 32 <= len(chunk):
                entries = struct.unpack_from("<4Q", chunk, start)
                if all(e & 1 and e & _FRAME == pd for e, pd in zip(entries, pds, strict=True)):
                    return base + start
            pos = chunk.find(key, pos + 1)
    return None


def scan_self_map(
    source: ScanSource, modes: tuple[str, ...], budget: int = SCAN_BYTES, seconds: float = SCAN_SECONDS
) -> tuple[DtbResult | None, str]:
    """Scan low physical memory for self-referencing top-level tables (docs/formats/crashdump.md §11 item 2).

    Returns the result (or None) and a sentence saying how much was scanned.
    """
    deadline = time.monotonic() + seconds
    end = min(source.size, budget)
    scanned = 0
    pdpt_searches = 0
    for base in range(0, end, CHUNK):
        if time.monotonic() > deadline:
            return None, f"stopped after {scanned >> 20} MiB (time budget {seconds:.0f} s)"
        chunk = source.read(base, CHUNK)
        scanned += len(chunk)
        if chunk == _ZEROS[: len(chunk)]:  # holes and zero-filled memory hold no page tables
            continue
        for off in range(0, len(chunk) - PAGE_SIZE + 1, PAGE_SIZE):
            pa = base + off
            page = chunk[off : off + PAGE_SIZE]
            if "x64" in modes and _x64_self_map(page, pa):
                space = validate(source, "x64", pa)
                if space is not None:
                    return DtbResult("x64", pa, f"self-referencing PML4 at PA {pa:#x}", space), ""
            if "pae" in modes and pdpt_searches < MAX_PDPT_SEARCHES:
                pds = _pae_pd3(page, pa, source.size)
                if pds is not None:
                    pdpt_searches += 1
                    pdpt = _find_pdpt(source, pds, budget, deadline)
                    space = validate(source, "pae", pdpt) if pdpt is not None else None
                    if space is not None:
                        return DtbResult(
                            "pae",
                            pdpt,
                            f"PAE page directory self-map at PA {pa:#x}, PDPT at PA {pdpt:#x}",
                            space,
                        ), ""
            if "x86" in modes and _x86_self_map(page, pa):
                space = validate(source, "x86", pa)
                if space is not None:
                    return DtbResult("x86", pa, f"non-PAE page directory self-map at PA {pa:#x}", space), ""
    return None, f"scanned {scanned >> 20} MiB of the first {end >> 20} MiB"


def find_dtb(
    source: ScanSource, low_stubs: Callable[[], Sequence[LowStub]]
) -> tuple[DtbResult | None, list[str]]:
    """The kernel address space, and sentences describing each attempt (for header.txt).

    Starts from what the source's metadata states (architecture, PAE, DTB).  ``low_stubs()`` gives
    the image's :func:`find_low_stubs`; it is called only if the stated DTB does not validate and the
    image may be x64, and the caller keeps its result for the kernel search.
    """
    meta = source.metadata
    log: list[str] = []
    modes = _modes_for(meta.arch, meta.pae)
    if not modes:
        return None, [f"architecture {meta.arch} is not supported by discovery"]
    if meta.directory_table_base is not None:
        result = from_hint(source, meta.directory_table_base, meta.arch, meta.pae)
        if result is not None:
            return result, log
        log.append(f"stated DTB {meta.directory_table_base:#x} does not map KUSER_SHARED_DATA; scanning")
    if "x64" in modes:
        result = scan_low_stub(source, low_stubs())
        if result is not None:
            return result, log
        log.append("no x64 low stub (PROCESSOR_START_BLOCK) in the first MiB")
    result, how = scan_self_map(source, modes)
    if result is not None:
        return result, log
    log.append(f"no self-referencing page table validated ({how})")
    return None, log
