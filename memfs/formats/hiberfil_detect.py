"""Which hibernation layout a file uses, decided from the file alone (docs/formats/hibernation.md §1.3, §3.4).

The header names its architecture (where PageSize sits) and its kernel's ``sizeof(PO_MEMORY_IMAGE)``
(``LengthSelf``).  Those pick candidate layouts from :mod:`hiberfil_structs`; each candidate is tried by
walking its tables/sets, and the one whose structures validate is kept.  When the header is zeroed or
unreadable, :func:`recover` scans for Xpress blocks and compression sets instead.  ``header.txt`` reports
which path was taken (``Detection.how``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from memfs.exceptions import CorruptionError, FormatError
from memfs.formats import hiberfil_legacy as legacy
from memfs.formats import hiberfil_modern as modern
from memfs.formats.hiberfil_index import IndexBuilder, PageIndex
from memfs.formats.hiberfil_structs import (
    ALL_TABLE_LAYOUTS,
    LEGACY_LAYOUTS,
    MODERN_LAYOUTS,
    PAGE_SIZE_OFFSET,
    SIGNATURES,
    LegacyLayout,
    ModernLayout,
    legacy_header_struct,
    modern_header_struct,
)
from memfs.memory import PAGE_SIZE

PFN_LIMIT = {"x64": 1 << 40, "x86": 1 << 24}  # 52-bit / 36-bit (PAE) physical addresses
RECOVERY_PFN_LIMIT = 1 << 30  # 4 TiB: stricter, since nothing else vouches for a recovered set
RECOVERY_SCAN_PAGES = 0x40


@dataclass
class Detection:
    """The layout kept for a file, how it was found, and the index its walk produced."""

    family: str  # "legacy" or "modern"
    arch: str
    layout: LegacyLayout | ModernLayout | None
    how: str
    index: PageIndex
    header: dict[str, Any] = field(default_factory=dict)
    walks: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    recovered: bool = False
    proc_state: dict[str, int] | None = None
    proc_page: int | None = None


def header_arches(page0: bytes) -> list[str]:
    """Architectures whose PageSize position holds 0x1000 (docs/formats/hibernation.md §1.3 step 2)."""
    if len(page0) < 0x20:
        return []
    return [a for a, off in PAGE_SIZE_OFFSET.items() if struct.unpack_from("<I", page0, off)[0] == PAGE_SIZE]


class _Reader:
    def __init__(self, read, path: str, size: int) -> None:
        self.read, self.path, self.size = read, path, size


def _try_legacy(r: _Reader, page0: bytes, lay: LegacyLayout) -> Detection:
    hdr = dict(legacy_header_struct(lay).parse(page0))
    hdr.pop("_io", None)
    first = hdr["first_table_page"]
    if not 0 < first < r.size // PAGE_SIZE - 1:
        raise CorruptionError(
            f"{r.path}: offset {lay.first_table_page:#x}: FirstTablePage {first:#x} lies outside the file "
            f"(layout {lay.key})"
        )
    builder = IndexBuilder()
    try:
        walk = legacy.walk_tables(
            r.read, r.path, r.size, lay.table, hdr["first_table_page"], builder, PFN_LIMIT[lay.arch]
        )
    except FormatError as exc:
        exc.progress = builder.pages  # type: ignore[attr-defined]  # to report the most plausible failure
        raise
    if builder.pages == 0:
        raise CorruptionError(
            f"{r.path}: offset {hdr['first_table_page'] * PAGE_SIZE:#x}: the range tables map no pages"
        )
    det = Detection("legacy", lay.arch, lay, "", builder.finish(r.path), hdr, [walk])
    det.proc_page, det.proc_state = _legacy_proc_state(r, lay)
    return det


def _legacy_proc_state(r: _Reader, lay: LegacyLayout) -> tuple[int | None, dict[str, int] | None]:
    """The KPROCESSOR_STATE page of ``lay`` (§2.4), else the first other candidate page that validates."""
    for page in dict.fromkeys((lay.proc_page, 1, 2, 4)):
        state = legacy.parse_processor_state(
            r.read(page * PAGE_SIZE, PAGE_SIZE).ljust(PAGE_SIZE, b"\0"), lay.arch
        )
        if state is not None:
            return page, state
    return None, None


def _scan_proc_state(r: _Reader, arch: str) -> tuple[int | None, dict[str, int] | None]:
    """Without a header: the first of the pages 1, 2, 4 that validates as a KPROCESSOR_STATE (§2.4)."""
    for page in (1, 2, 4):
        state = legacy.parse_processor_state(
            r.read(page * PAGE_SIZE, PAGE_SIZE).ljust(PAGE_SIZE, b"\0"), arch
        )
        if state is not None:
            return page, state
    return None, None


def _try_modern(r: _Reader, page0: bytes, lay: ModernLayout) -> Detection:
    hdr = dict(modern_header_struct(lay).parse(page0))
    hdr.pop("_io", None)
    highest = hdr["highest_physical_page"]
    if not 0 < highest < PFN_LIMIT[lay.arch]:
        raise CorruptionError(
            f"{r.path}: offset {lay.highest_physical_page:#x}: "
            f"HighestPhysicalPage {highest:#x} is implausible"
        )
    limit = highest + 1
    dsz = 8 if lay.arch == "x64" else 4
    builder = IndexBuilder()
    notes: list[str] = []
    walks = []
    if hdr["num_pages_for_loader"] > limit:
        raise CorruptionError(
            f"{r.path}: offset {lay.num_pages_for_loader:#x}: "
            f"NumPagesForLoader {hdr['num_pages_for_loader']:#x} "
            f"exceeds the "
            f"{limit:#x} physical pages"
        )
    try:
        _modern_phases(r, lay, hdr, builder, walks, notes, limit, dsz)
    except FormatError as exc:
        exc.progress = builder.pages  # type: ignore[attr-defined]
        raise
    if builder.pages == 0:
        raise CorruptionError(
            f"{r.path}: offset {hdr['first_boot_page'] * PAGE_SIZE:#x}: the restore phases map no pages"
        )
    return Detection("modern", lay.arch, lay, "", builder.finish(r.path), hdr, walks, notes)


def _modern_phases(r, lay, hdr, builder, walks, notes, limit, dsz) -> None:
    """Walk the boot phase (NumPagesForLoader pages) and the kernel phase (KernelPagesProcessed, §3.5)."""
    boot_count = hdr["num_pages_for_loader"]
    if boot_count:
        walks.append(
            modern.walk_phase(
                r.read, r.path, r.size, hdr["first_boot_page"], boot_count, dsz, builder, limit, "boot"
            )
        )
    kcount = hdr["kernel_pages_processed"]
    mark = builder.mark()
    try:
        if not 0 < kcount <= limit:
            raise CorruptionError(f"KernelPagesProcessed {kcount:#x} is implausible")
        walk = modern.walk_phase(
            r.read, r.path, r.size, hdr["first_kernel_page"], kcount, dsz, builder, limit, "kernel"
        )
        if walk.pages != kcount:
            raise CorruptionError(f"the sets hold {walk.pages} pages, not {kcount}")
        walks.append(walk)
        after = modern.chain_valid(r.read, walk.end, r.size, dsz, limit, 2)
        if after >= 2:
            # Could be stale sets in slack, or a KernelPagesProcessed that is too small (§8.3).
            notes.append(
                f"compression sets continue after the kernel phase's {kcount:#x} pages (at {walk.end:#x}); "
                f"they are not mapped — if memory looks incomplete, KernelPagesProcessed may be wrong"
            )
    except modern.TruncatedError:
        raise
    except CorruptionError as exc:
        # KernelPagesProcessed moves between builds and is unconfirmed for 11 21H2-23H2 (§3.3, §8.3):
        # walk the kernel phase until its first invalid set instead (H2B's strategy, §3.5).
        builder.rollback(mark)
        walk = modern.walk_phase(
            r.read, r.path, r.size, hdr["first_kernel_page"], None, dsz, builder, limit, "kernel"
        )
        if walk.sets == 0:
            raise
        walks.append(walk)
        notes.append(
            f"KernelPagesProcessed (u64 at {lay.kernel_pages_processed:#x}) = {kcount:#x} did not fit the "
            f"compression sets ({exc}); the kernel phase was walked to its first invalid set "
            f"({walk.pages} pages; stop: {walk.stop})"
        )


def detect(read, path: str, size: int, page0: bytes, override: str | None) -> Detection:
    """Pick the layout of a hibernation file (docs/formats/hibernation.md §1.3), or recover a zeroed one.

    Raises FormatError/CorruptionError naming the file and offset when nothing validates.
    """
    r = _Reader(read, path, size)
    arches = header_arches(page0)
    length_self = struct.unpack_from("<I", page0, 0xC)[0] if len(page0) >= 0x10 else 0
    all_layouts: list[LegacyLayout | ModernLayout] = list(MODERN_LAYOUTS) + list(LEGACY_LAYOUTS)
    if override:
        chosen = [lay for lay in all_layouts if lay.key == override]
        if not chosen:
            keys = ", ".join(lay.key for lay in all_layouts)
            raise FormatError(f"{path}: unknown hibernation layout {override!r}; known: {keys}")
        candidates, why = chosen, f"layout {override!r} given by the user (hiber_layout override)"
        exact = chosen
    elif not arches:
        return recover(r, page0)
    else:
        exact = [lay for lay in all_layouts if lay.arch in arches and lay.length_self == length_self]
        if exact:
            candidates = exact
            names = " / ".join(lay.key for lay in exact)
            where = PAGE_SIZE_OFFSET[exact[0].arch]
            why = f"LengthSelf {length_self:#x} with PageSize at {where:#x} -> {names}"
        else:
            # Unknown LengthSelf (a newer build): try every layout of the architecture, newest first
            # (§1.3 step 5), and keep the one whose sets/tables validate.
            candidates = [lay for lay in reversed(all_layouts) if lay.arch in arches]
            candidates.sort(key=lambda lay: isinstance(lay, LegacyLayout))
            why = f"LengthSelf {length_self:#x} is not a known value; probed layouts newest first"
    probing = not override and arches and not exact
    found: list[Detection] = []
    errors: list[FormatError] = []
    for lay in candidates:
        try:
            det = _try_legacy(r, page0, lay) if isinstance(lay, LegacyLayout) else _try_modern(r, page0, lay)
        except FormatError as exc:
            errors.append(exc)
            continue
        found.append(det)
        if probing and not det.notes:
            break  # newest-first probing: the first clean fit wins (each try walks the whole file)
    if not found:
        sig = page0[:4]
        # Report the failure of the candidate that got furthest (e.g. a table loop, not a zero field).
        errors.sort(key=lambda e: getattr(e, "progress", 0), reverse=True)
        detail = errors[0] if errors else f"{path}: offset 0x0: no hibernation layout fits this header"
        if sig.upper() == b"WAKE":
            raise CorruptionError(
                f"{detail} (signature {sig.decode()}: the system resumed from this image and Windows may "
                f"have wiped its data, docs/formats/hibernation.md §3.9)"
            )
        raise detail if isinstance(detail, FormatError) else CorruptionError(str(detail))
    # Prefer: no fallback needed, a validating processor-state page, then the most pages mapped.
    found.sort(key=lambda d: (not d.notes, d.proc_state is not None, d.index.pages), reverse=True)
    best = found[0]
    if probing:
        tried = len(found) + len(errors)
        why += f"; kept {best.layout.key}, the first of {tried} tried whose structures validate"
    elif len(candidates) > 1:
        kept = f"; walks validated for {len(found)} of {len(candidates)}, kept {best.layout.key}"
        if best.family == "legacy" and best.proc_state is not None and len(found) > 1:
            kept += f" (processor state page {best.proc_page} validates)"
        why += kept
    else:
        why += "; tables validated" if best.family == "legacy" else "; compression sets validated"
    best.how = why
    return best


# -- zeroed / unreadable header (docs/formats/hibernation.md §1.2 "all zero", §1.3 step 6, §3.9) -----


def recover(r: _Reader, page0: bytes) -> Detection:
    """Map what can be placed when the header says nothing: legacy tables first, then compression sets."""
    state = "zeroed" if not any(page0) else "unreadable (no PageSize at 0x14 or 0x18)"
    best: Detection | None = None
    for table_page in legacy.find_table_candidates(r.read):
        page = r.read(table_page * PAGE_SIZE, PAGE_SIZE)
        for t in ALL_TABLE_LAYOUTS:
            if not legacy.table_plausible(page, t):
                continue
            builder = IndexBuilder()
            arch = "x64" if t.wide else "x86"
            try:
                walk = legacy.walk_tables(r.read, r.path, r.size, t, table_page, builder, PFN_LIMIT[arch])
            except FormatError:
                continue
            if best is None or builder.pages > best.index.pages:
                how = (
                    f"header {state}: first range table found at page {table_page:#x} (an Xpress block "
                    f"follows it); its shape matches the {arch} layout with {t.max_entries} entries per table"
                )
                best = Detection(
                    "legacy", arch, None, how, builder.finish(r.path), {}, [walk], recovered=True
                )
                best.proc_page, best.proc_state = _scan_proc_state(r, arch)
    if best is None:
        best = _recover_modern(r, state)
    if best is None:
        raise CorruptionError(
            f"{r.path}: offset 0x0: hibernation header is {state} and no Xpress block or compression set "
            f"was found in the first {RECOVERY_SCAN_PAGES} pages"
        )
    covered = best.index.end_offset
    best.notes.append(
        f"recovered without a header: {best.index.pages} pages in {best.index.units} units placed; "
        f"the units span file bytes up to {covered:#x} of {r.size:#x}"
    )
    return best


def _recover_modern(r: _Reader, state: str) -> Detection | None:
    for dsz, arch in ((8, "x64"), (4, "x86")):
        start = next(
            (
                p
                for p in range(1, RECOVERY_SCAN_PAGES)
                if modern.chain_valid(r.read, p * PAGE_SIZE, r.size, dsz, RECOVERY_PFN_LIMIT, 4) >= 4
            ),
            None,
        )
        if start is None:
            continue
        builder = IndexBuilder()
        walks = []
        page = start
        while page is not None:
            walk = modern.walk_phase(
                r.read, r.path, r.size, page, None, dsz, builder, RECOVERY_PFN_LIMIT, "recovered"
            )
            walks.append(walk)
            page = _next_chain(r, walk.end, dsz)
        how = (
            f"header {state}: {len(walks)} runs of {arch} compression sets found by scanning "
            f"(first at page {start:#x})"
        )
        return Detection("modern", arch, None, how, builder.finish(r.path), {}, walks, recovered=True)
    return None


def _next_chain(r: _Reader, off: int, dsz: int) -> int | None:
    """The next page boundary at or after ``off`` where at least two strict sets chain (a later phase)."""
    page = (off + PAGE_SIZE - 1) // PAGE_SIZE
    chunk = 64
    while page * PAGE_SIZE < r.size:
        block = r.read(page * PAGE_SIZE, chunk * PAGE_SIZE)
        for i in range(0, len(block), PAGE_SIZE):
            # Cheap filter first: a set header has 1–16 descriptors and a non-zero size.
            if 0 < block[i] <= 16 and block[i + 1 : i + 4] != b"\0\0\0":
                found = modern.chain_valid(
                    r.read, (page + i // PAGE_SIZE) * PAGE_SIZE, r.size, dsz, RECOVERY_PFN_LIMIT, 2
                )
                if found >= 2:
                    return page + i // PAGE_SIZE
        page += chunk
    return None


def weak_probe(head: bytes, size: int, pread) -> bool:
    """Cheap test for a hibernation file whose header was zeroed or damaged (runs last before raw).

    True only when page 0 is zero and a range table followed by an Xpress block, or a chain of eight
    strict compression sets, starts at one of the next 15 page boundaries — or when the signature is
    unknown but LengthSelf and PageSize form a known pair.
    """
    if len(head) < 2 * PAGE_SIZE or head[:4] in SIGNATURES:
        return False
    if any(head[:PAGE_SIZE]):
        ls = struct.unpack_from("<I", head, 0xC)[0]
        arches = header_arches(head)
        return any(lay.length_self == ls and lay.arch in arches for lay in LEGACY_LAYOUTS + MODERN_LAYOUTS)
    for page in range(1, min(16, len(head) // PAGE_SIZE - 1)):
        if head[(page + 1) * PAGE_SIZE : (page + 1) * PAGE_SIZE + 8] == legacy.XPRESS_MAGIC:
            table = head[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
            if any(legacy.table_plausible(table, t) for t in ALL_TABLE_LAYOUTS):
                return True
    for dsz in (8, 4):
        for page in range(1, 16):
            if (page + 1) * PAGE_SIZE > size:
                break
            if modern.chain_valid(pread, page * PAGE_SIZE, size, dsz, RECOVERY_PFN_LIMIT, 8) >= 8:
                return True
    return False
