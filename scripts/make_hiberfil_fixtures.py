"""Build synthetic hibernation files for every layout family of docs/formats/hibernation.md, from a known
memory image.

The source image is deterministic and memory-like (zero, text, pointer and random pages, with holes);
each fixture stores it with our Xpress encoders (``memfs.xpress``) in the structures of one layout:
legacy range-table chains with plain and stored Xpress blocks (§2.5–§2.7), or modern boot and kernel
phases with plain, Huffman and stored compression sets, multi-descriptor sets and sets of more than 16
pages (§3.5–§3.7).

The builder is a second, independent reading of the format: every header offset, range-table shape and
processor-state field it writes is stated below from docs/formats/hibernation.md itself, and nothing is
imported from the reader (``memfs.formats``), so a wrong offset in the reader's tables fails the tests
instead of being copied into the fixtures.  Only the codec is shared: the Xpress streams come from
``memfs.xpress``.  The one PyPI package with both [MS-XCA] encoders, ntcompress, is pure Python (about
0.1 s per 64 KiB set against 0.6 ms here: 45 s instead of 1.5 s for the fixtures, minutes for the
sample image); xpress_lz77, dissect.util and libfwnt only decode.  Independent decoders check the
streams instead: LeechCore's Xpress library reads every modern fixture (tests/leechcore.py), xpress_lz77
decodes fixture units (tests/formats/test_hiberfil.py).

Function API (for tests)::

    info = build_fixture("win7-x64", out_dir)          # -> FixtureInfo(path, sha256, sets, ...)
    FIXTURES                                            # every fixture name

CLI: ``python3 -m scripts.make_hiberfil_fixtures OUT_DIR [NAME ...]``;
``--large GIB OUT`` writes a big Huffman file for benchmarks (``--sparse`` leaves set data as holes,
for index/open-time measurements only; ``--compressed-every N`` fills all but every Nth set with zero
pages instead: a readable file describing much memory on little disk).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 0x1000  # docs/formats/hibernation.md §0: 4096 on every x86/x64 build
XPRESS_BLOCK_MAGIC = b"\x81\x81xpress"  # §2.6
PAGE_SIZE_AT = {"x86": 0x14, "x64": 0x18}  # PageSize (u32) in PO_MEMORY_IMAGE: §1.3 step 2, §2.2, §3.2

# -- the layouts, as docs/formats/hibernation.md states them -------------------------------------------------


@dataclass(frozen=True)
class RangeArray:
    """One PO_MEMORY_RANGE_ARRAY page shape, a row of docs/formats/hibernation.md §2.5 (offsets inside the
    page)."""

    first_range: int  # the link record's size: ranges start here
    next_table_at: int  # NextTable: u32 on x86, u64 on x64
    entry_count_at: int  # EntryCount: always u32
    range_size: int
    start_at: int  # StartPage / EndPage inside a range record, exclusive end
    end_at: int
    full: int  # HibrEntryCount: only a table holding exactly this many entries chains on
    u64: bool


# §2.5 rows
XP_X86_RANGES = RangeArray(0x10, 0x4, 0xC, 0x10, 0x4, 0x8, 0xFF, False)  # also 2003 x86, Vista SP0/SP1 x86
VISTA_SP2_X86_RANGES = RangeArray(0xC, 0x4, 0x8, 0x8, 0x0, 0x4, 0x1FE, False)
WIN7_X86_RANGES = RangeArray(0x8, 0x0, 0x4, 0x8, 0x0, 0x4, 0x1FF, False)
X64_OLD_RANGES = RangeArray(0x20, 0x8, 0x14, 0x20, 0x8, 0x10, 0x7F, True)  # 2003/XP x64, Vista SP0/SP1 x64
VISTA_SP2_X64_RANGES = RangeArray(0x18, 0x8, 0x10, 0x10, 0x0, 0x8, 0xFE, True)
WIN7_X64_RANGES = RangeArray(0x10, 0x0, 0x8, 0x10, 0x0, 0x8, 0xFF, True)


@dataclass(frozen=True)
class LegacyHeader:
    """A column of docs/formats/hibernation.md §2.2 (PO_MEMORY_IMAGE, legacy) with its §2.5 table and §2.4
    page."""

    arch: str
    length_self: int
    system_time: int  # FILETIME
    interrupt_time: int  # u64, 100 ns since boot
    first_table_page: int  # u32 on x86, u64 on x64
    ranges: RangeArray
    processor_state_page: int  # HibrProcPage, §2.4


@dataclass(frozen=True)
class ModernHeader:
    """A column of docs/formats/hibernation.md §3.2 (PO_MEMORY_IMAGE, Windows 8 and later); PerfInfo fields
    are
    given as offsets from the start of the header.  Page-number fields are u64 on x64 and u32 on x86;
    NumPagesForLoader and the PerfInfo page counts are u64 on both (§3.3, LeechCore's ``f32``)."""

    arch: str
    length_self: int
    system_time: int
    num_pages_for_loader: int
    first_boot_restore_page: int
    first_kernel_restore_page: int
    boot_pages_processed: int | None  # None: no type dump states it (11 21H2, §3.2)
    kernel_pages_processed: int
    hv_cr3: int  # HvCr3 / HvPageTableRoot
    highest_physical_page: int
    processor_count: int | None = None  # 24H2 PerfInfo.ProcessorCount (u32)


LEGACY: dict[str, LegacyHeader] = {
    # key: (arch, LengthSelf, SystemTime, InterruptTime, FirstTablePage, §2.5 row, HibrProcPage)
    "xp-x86": LegacyHeader("x86", 0xA8, 0x20, 0x28, 0x58, XP_X86_RANGES, 2),
    "2003-x64": LegacyHeader("x64", 0xC0, 0x20, 0x28, 0x68, X64_OLD_RANGES, 2),
    "vista-sp0-x86": LegacyHeader("x86", 0xE0, 0x18, 0x20, 0x50, XP_X86_RANGES, 4),
    "vista-sp1-x86": LegacyHeader("x86", 0xF0, 0x18, 0x20, 0x50, XP_X86_RANGES, 1),
    "vista-sp2-x86": LegacyHeader("x86", 0xF0, 0x18, 0x20, 0x50, VISTA_SP2_X86_RANGES, 1),
    "vista-sp0-x64": LegacyHeader("x64", 0x128, 0x20, 0x28, 0x68, X64_OLD_RANGES, 4),
    "vista-sp1-x64": LegacyHeader("x64", 0x140, 0x20, 0x28, 0x68, X64_OLD_RANGES, 1),
    "vista-sp2-x64": LegacyHeader("x64", 0x138, 0x20, 0x28, 0x68, VISTA_SP2_X64_RANGES, 1),
    "win7-x86": LegacyHeader("x86", 0xE0, 0x18, 0x20, 0x4C, WIN7_X86_RANGES, 1),
    "win7-x64": LegacyHeader("x64", 0x128, 0x20, 0x28, 0x60, WIN7_X64_RANGES, 1),
}

_24H2_PERF_INFO = 0x88  # §3.2, Windows 11 table: PerfInfo at 0x88, ProcessorCount at PerfInfo + 0x108
MODERN: dict[str, ModernHeader] = {
    # key: (arch, LengthSelf, SystemTime, NumPagesForLoader, FirstBootRestorePage, FirstKernelRestorePage,
    #       PerfInfo.BootPagesProcessed, PerfInfo.KernelPagesProcessed, HvCr3, HighestPhysicalPage)
    # §3.2 x64 tables (8 … 10 2004; Windows 11)
    "win8-x64": ModernHeader("x64", 0x360, 0x20, 0x58, 0x60, 0x68, 0x1C0, 0x1C8, 0x300, 0x330),
    "win10-1507-x64": ModernHeader("x64", 0x3B0, 0x20, 0x58, 0x68, 0x70, 0x210, 0x218, 0x350, 0x380),
    "win10-1607-x64": ModernHeader("x64", 0x3C8, 0x20, 0x58, 0x68, 0x70, 0x218, 0x220, 0x358, 0x388),
    "win10-1703-x64": ModernHeader("x64", 0x3D8, 0x20, 0x58, 0x68, 0x70, 0x228, 0x230, 0x368, 0x398),
    "win10-1809-x64": ModernHeader("x64", 0x3E0, 0x20, 0x58, 0x68, 0x70, 0x228, 0x230, 0x368, 0x398),
    "win11-21h2-x64": ModernHeader("x64", 0x448, 0x20, 0x58, 0x68, 0x70, None, 0x230, 0x3D0, 0x400),
    "win11-24h2-x64": ModernHeader(
        "x64", 0x4D8, 0x20, 0x58, 0x68, 0x70, 0x230, 0x238, 0x468, 0x498, _24H2_PERF_INFO + 0x108
    ),
    # §3.2 x86 table (8 … 10 2004)
    "win8-x86": ModernHeader("x86", 0x2C8, 0x18, 0x48, 0x50, 0x54, 0x1A8, 0x1B0, 0x280, 0x2B0),
    "win10-1507-x86": ModernHeader("x86", 0x310, 0x18, 0x48, 0x50, 0x54, 0x1F0, 0x1F8, 0x2C8, 0x2F8),
    "win10-1607-x86": ModernHeader("x86", 0x328, 0x18, 0x48, 0x50, 0x54, 0x1F8, 0x200, 0x2D0, 0x300),
    "win10-1703-x86": ModernHeader("x86", 0x338, 0x18, 0x48, 0x50, 0x54, 0x208, 0x210, 0x2E0, 0x310),
    "win10-1809-x86": ModernHeader("x86", 0x340, 0x18, 0x48, 0x50, 0x54, 0x208, 0x210, 0x2E0, 0x310),
}
LAYOUTS: dict[str, LegacyHeader | ModernHeader] = {**LEGACY, **MODERN}

# KPROCESSOR_STATE (§2.4): x64 (2003 … 10 1607) puts SpecialRegisters first and the CONTEXT at +0xE0;
# x86 puts the CONTEXT first and SpecialRegisters at +0x2CC.  CONTEXT fields: §2.4 (=
# docs/formats/crashdump.md §4.3).
KSTATE_X64_CR0, KSTATE_X64_CONTEXT = 0x00, 0xE0  # Cr0, Cr2, Cr3, Cr4: four u64 from +0x00
X64_CONTEXT = {"SegCs": 0x38, "EFlags": 0x44, "Rax": 0x78, "Rsp": 0x98, "Rip": 0xF8}  # SegCs…SegSs: 6 × u16
KSTATE_X86_CR0 = 0x2CC  # Cr0, Cr2, Cr3, Cr4: four u32
X86_CONTEXT = {"Eax": 0xB0, "Eip": 0xB8, "SegCs": 0xBC, "Esp": 0xC4}

SYSTEM_TIME = 133_500_000_000_000_000  # 2024-01-17 21:20 UTC (FILETIME)
INTERRUPT_TIME = 36_000_000_000  # one hour since boot (100 ns units)
RAM_PAGES = 0x2000  # the machine's memory (32 MiB): modern headers state HighestPhysicalPage = RAM_PAGES - 1

# Kernel page tables live in low memory (always present in the source image); each maps
# KUSER_SHARED_DATA, which is what kernel discovery checks before it trusts a CR3 (memfs.kernel.dtb).
KERNEL_CR3_X64 = 0x10000  # PML4; PDPT 0x11000, PD 0x12000, PT 0x13000
KERNEL_CR3_PAE = 0x15020  # PDPT inside page 0x15000; PDs 0x16000-0x19000, PT 0x1A000
KERNEL_CR3_X86 = 0x1B000  # page directory; PT 0x1C000
KUSER_PAGE = 0x14000
KUSER_VA = {"x64": 0xFFFFF78000000000, "pae": 0xFFDF0000, "x86": 0xFFDF0000}
HV_CR3 = 0x7FF000

# -- the source image --------------------------------------------------------------------------------------

WORDS = (
    b"kernel process thread handle object section memory page table directory registry driver "
    b"service session token security descriptor file volume device interrupt dispatch "
).split()


def _page(rng: random.Random, kind: int, pfn: int) -> bytes:
    if kind == 0:
        return bytes(PAGE)
    if kind == 1:
        text = b" ".join(rng.choice(WORDS) for _ in range(900))
        return (text * 2)[:PAGE]
    if kind == 2:
        base = 0xFFFFF80000000000 + (rng.randrange(1 << 20) << 12)
        vals = [
            base + rng.randrange(0x4000) * 8 if rng.random() < 0.7 else rng.randrange(256) for _ in range(512)
        ]
        return struct.pack("<512Q", *vals)
    if kind == 3:
        return rng.randbytes(PAGE)
    half = rng.randbytes(PAGE // 2)  # half random, half zero
    return half + bytes(PAGE // 2) if pfn & 1 else bytes(PAGE // 2) + half


def source_ranges(pages: int, top: int | None = None) -> list[tuple[int, int]]:
    """Present page ranges ``[start, end)`` with holes: low memory, a hole, two more ranges; with ``top``
    the last range ends there (the machine's highest page is in the image)."""
    low = 0x9F
    rest = pages - low
    first = rest * 2 // 3
    last = 0x400 if top is None else top - (rest - first)
    return [(0, low), (0x100, 0x100 + first), (last, last + rest - first)]


def paging_pages(mode: str) -> dict[int, bytes]:
    """Page tables of one address space (``x64``, ``pae`` or ``x86``) with the usual Windows self-map,
    mapping KUSER_SHARED_DATA to KUSER_PAGE (docs/formats/crashdump.md §11, §13)."""
    tables: dict[int, bytearray] = {}

    def entry(table: int, index: int, target: int, size: int = 8) -> None:
        page = tables.setdefault(table & ~0xFFF, bytearray(PAGE))
        struct.pack_into("<Q" if size == 8 else "<I", page, (table & 0xFFF) + index * size, target | 3)

    va = KUSER_VA[mode]
    if mode == "x64":
        pml4, pdpt, pd, pt = KERNEL_CR3_X64, 0x11000, 0x12000, 0x13000
        entry(pml4, 0x1ED, pml4)  # self-map in the kernel half
        entry(pml4, (va >> 39) & 0x1FF, pdpt)
        entry(pdpt, (va >> 30) & 0x1FF, pd)
        entry(pd, (va >> 21) & 0x1FF, pt)
        entry(pt, (va >> 12) & 0x1FF, KUSER_PAGE)
    elif mode == "pae":
        pds = [0x16000, 0x17000, 0x18000, 0x19000]
        for i, pd in enumerate(pds):
            tables.setdefault(KERNEL_CR3_PAE & ~0xFFF, bytearray(PAGE))
            struct.pack_into("<Q", tables[KERNEL_CR3_PAE & ~0xFFF], (KERNEL_CR3_PAE & 0xFFF) + 8 * i, pd | 1)
            entry(pds[3], i, pd)  # the fourth directory maps all four (self-map at 0xC0600000)
        entry(pds[(va >> 30) & 3], (va >> 21) & 0x1FF, 0x1A000)
        entry(0x1A000, (va >> 12) & 0x1FF, KUSER_PAGE)
    else:
        pd, pt = KERNEL_CR3_X86, 0x1C000
        entry(pd, 0x300, pd, 4)  # self-map at 0xC0000000
        entry(pd, va >> 22, pt, 4)
        entry(pt, (va >> 12) & 0x3FF, KUSER_PAGE, 4)
    out = {pa >> 12: bytes(page) for pa, page in tables.items()}
    kuser = bytearray(PAGE)
    struct.pack_into("<II", kuser, 0x26C, 10 if mode != "x86" else 5, 0)  # NtMajorVersion / Minor
    out[KUSER_PAGE >> 12] = bytes(kuser)
    return out


def paging_mode(layout: str) -> str:
    """The paging mode a fixture of ``layout`` uses: x64; PAE for 7 x86 and every modern x86; else 2-level."""
    if LAYOUTS[layout].arch == "x64":
        return "x64"
    return "pae" if layout in MODERN or layout == "win7-x86" else "x86"


def source_pages(
    pages: int, seed: int, low_stub: bool, paging: str | None = None, top: int | None = None
) -> dict[int, bytes]:
    """The known memory image: page number → 4096 bytes (with page tables for ``paging``)."""
    rng = random.Random(seed)
    out = {}
    for start, end in source_ranges(pages, top):
        for pfn in range(start, end):
            out[pfn] = _page(rng, rng.choice((0, 0, 1, 1, 1, 2, 2, 2, 3, 4)), pfn)
    if low_stub:
        # x64 PROCESSOR_START_BLOCK at PA 0x1000 (docs/formats/hibernation.md §3.8): jmp signature, kernel
        # entry, CR3.
        stub = bytearray(PAGE)
        struct.pack_into("<Q", stub, 0, 0x00000001000600E9)
        struct.pack_into("<Q", stub, 0x70, 0xFFFFF80212345670)
        struct.pack_into("<Q", stub, 0xA0, KERNEL_CR3_X64)
        out[1] = bytes(stub)
    if paging:
        out.update(paging_pages(paging))
    return out


def physmem_bytes(pages: dict[int, bytes]) -> bytes:
    """What physmem.bin must read: every page at its address, holes as zeros."""
    top = max(pages) + 1
    buf = bytearray(top * PAGE)
    for pfn, data in pages.items():
        buf[pfn * PAGE : (pfn + 1) * PAGE] = data
    return bytes(buf)


# -- encoding ---------------------------------------------------------------------------------------------


def _encode(data: bytes, codec: str) -> tuple[bytes, str]:
    """Compressed bytes and the codec actually used ("raw" when compression does not help)."""
    from memfs import xpress

    if codec == "raw":
        return data, "raw"
    out = xpress.compress_huffman(data) if codec == "huffman" else xpress.compress_plain(data)
    if len(out) >= len(data):
        return data, "raw"
    return out, codec


def _put(out: bytearray, offset: int, value: int, u64: bool) -> None:
    struct.pack_into("<Q" if u64 else "<I", out, offset, value)


# -- what a file builder records --------------------------------------------------------------------------


@dataclass
class Written:
    """What a file builder wrote besides the page data: the header fields (named as in
    docs/formats/hibernation.md, with the values stored) and, for modern files, every compression set."""

    header: dict[str, int] = field(default_factory=dict)
    sets: list[StoredSet] = field(default_factory=list)

    def put(self, out: bytearray, name: str, offset: int, value: int, fmt: str) -> None:
        struct.pack_into(fmt, out, offset, value)
        self.header[name] = value


@dataclass(frozen=True)
class StoredSet:
    """One compression set as written: its descriptor runs ``(first pfn, pages)`` in slot order and
    whether its data is stored uncompressed."""

    runs: tuple[tuple[int, int], ...]
    raw: bool

    @property
    def pfns(self) -> list[int]:
        return [pfn + j for pfn, n in self.runs for j in range(n)]


# -- legacy -----------------------------------------------------------------------------------------------


def _legacy_file(
    key: str, pages: dict[int, bytes], rng: random.Random, signature: bytes, rec: Written
) -> bytes:
    hdr = LEGACY[key]
    t = hdr.ranges
    # Many short ranges so that full tables chain (§2.5): single pages first, then longer runs.
    ranges: list[tuple[int, int]] = []
    for start, end in _runs(sorted(pages)):
        pfn = start
        while pfn < end:
            n = 1 if len(ranges) < t.full + 20 else rng.randint(1, 40)
            n = min(n, end - pfn)
            ranges.append((pfn, pfn + n))
            pfn += n
    tables = [ranges[i : i + t.full] for i in range(0, len(ranges), t.full)]
    if len(tables[-1]) == t.full:
        tables.append([])  # a full table chains on; the chain ends with a table that is not full
    out = bytearray(6 * PAGE)
    first_table = 6
    table_page = first_table
    for ti, entries in enumerate(tables):
        table = bytearray(PAGE)
        struct.pack_into("<I", table, t.entry_count_at, len(entries))
        for i, (start, end) in enumerate(entries):
            record = t.first_range + i * t.range_size
            _put(table, record + t.start_at, start, t.u64)
            _put(table, record + t.end_at, end, t.u64)
        # Xpress blocks follow the table (§2.6): pages in range order, at most 16 per block.
        seq = [pfn for start, end in entries for pfn in range(start, end)]
        blocks = bytearray()
        pos = 0
        while pos < len(seq):
            n = min(rng.choice((16, 16, 16, 5, 11)), len(seq) - pos)
            data = b"".join(pages[p] for p in seq[pos : pos + n])
            comp, _ = _encode(data, rng.choice(("plain", "plain", "plain", "raw")))
            info = (n - 1) | ((len(comp) - 1) << 10)
            blocks += XPRESS_BLOCK_MAGIC + struct.pack("<I", info) + bytes(20) + comp
            blocks += bytes(-len(blocks) % 8)
            pos += n
        blocks += bytes(-len(blocks) % PAGE)
        next_page = table_page + 1 + len(blocks) // PAGE
        if ti + 1 < len(tables):
            _put(table, t.next_table_at, next_page, t.u64)
        assert len(out) == table_page * PAGE
        out += table + blocks
        table_page = next_page
    _legacy_header(out, hdr, signature, first_table, rec)
    _legacy_processor_state(out, key)
    return bytes(out)


def _runs(pfns: list[int]) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for pfn in pfns:
        if runs and runs[-1][1] == pfn:
            runs[-1][1] += 1
        else:
            runs.append([pfn, pfn + 1])
    return [(a, b) for a, b in runs]


def _legacy_header(
    out: bytearray, hdr: LegacyHeader, signature: bytes, first_table: int, rec: Written
) -> None:
    """PO_MEMORY_IMAGE, legacy (docs/formats/hibernation.md §2.2)."""
    out[0:4] = signature
    rec.put(out, "LengthSelf", 0xC, hdr.length_self, "<I")
    rec.put(out, "PageSize", PAGE_SIZE_AT[hdr.arch], PAGE, "<I")
    rec.put(out, "SystemTime", hdr.system_time, SYSTEM_TIME, "<q")
    rec.put(out, "InterruptTime", hdr.interrupt_time, INTERRUPT_TIME, "<Q")
    rec.put(out, "FirstTablePage", hdr.first_table_page, first_table, "<Q" if hdr.arch == "x64" else "<I")


def _legacy_processor_state(out: bytearray, key: str) -> None:
    """A KPROCESSOR_STATE at the layout's HibrProcPage (docs/formats/hibernation.md §2.4)."""
    hdr = LEGACY[key]
    base = hdr.processor_state_page * PAGE
    if hdr.arch == "x64":
        cr = base + KSTATE_X64_CR0
        struct.pack_into("<4Q", out, cr, 0x80050033, 0xFFFFF6FB7DBED000, KERNEL_CR3_X64, 0x6F8)
        ctx = base + KSTATE_X64_CONTEXT
        struct.pack_into("<6H", out, ctx + X64_CONTEXT["SegCs"], 0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)
        struct.pack_into("<I", out, ctx + X64_CONTEXT["EFlags"], 0x46)
        for i in range(16):  # Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8 … R15
            struct.pack_into("<Q", out, ctx + X64_CONTEXT["Rax"] + 8 * i, 0x1111 * (i + 1))
        struct.pack_into("<Q", out, ctx + X64_CONTEXT["Rsp"], 0xFFFFF80212A4FE28)
        struct.pack_into("<Q", out, ctx + X64_CONTEXT["Rip"], 0xFFFFF8021234ABCD)
    else:
        pae = paging_mode(key) == "pae"  # the 7 x86 fixture is a PAE system
        cr3 = KERNEL_CR3_PAE if pae else KERNEL_CR3_X86
        struct.pack_into(
            "<4I", out, base + KSTATE_X86_CR0, 0x80010031, 0xC0300000, cr3, 0x6F9 if pae else 0x6D9
        )
        struct.pack_into("<I", out, base + X86_CONTEXT["Eip"], 0x8283ABCD)
        struct.pack_into("<I", out, base + X86_CONTEXT["Esp"], 0x8078AF20)
        struct.pack_into("<I", out, base + X86_CONTEXT["SegCs"], 0x8)
        struct.pack_into("<I", out, base + X86_CONTEXT["Eax"], 0x1234)


# -- modern -----------------------------------------------------------------------------------------------


def _sets(pfns: list[int], rng: random.Random, big: bool) -> list[list[tuple[int, int]]]:
    """Group pages into sets of descriptor runs: contiguous runs ≤ 16 pages, some sets of 2–3 runs."""
    runs = []
    for start, end in _runs(pfns):
        pfn = start
        while pfn < end:
            n = min(rng.choice((16, 16, 16, 7, 3, 1)), end - pfn)
            runs.append((pfn, n))
            pfn += n
    sets = []
    i = 0
    while i < len(runs):
        total = runs[i][1]
        group = [runs[i]]
        i += 1
        limit = 32 if big and rng.random() < 0.2 else 16  # sets over 16 pages (§3.6, §8.9)
        while i < len(runs) and total + runs[i][1] <= limit and rng.random() < 0.6:
            group.append(runs[i])
            total += runs[i][1]
            i += 1
        sets.append(group)
    return sets


def _modern_phase(
    sets: list[list[tuple[int, int]]],
    pages: dict[int, bytes],
    x64: bool,
    rng: random.Random,
    codecs: tuple[str, ...],
    high_bits: bool,
    rec: Written,
) -> bytes:
    """Compression sets back to back (§3.6): u32 header (descriptor count in bits 0–7, data size from
    bit 8, method in bits 30–31), the descriptors (x64 u64 / x86 u32: pages − 1 in bits 0–3, first pfn
    above), then the data."""
    out = bytearray()
    for group in sets:
        data = b"".join(pages[pfn + j] for pfn, n in group for j in range(n))
        comp, used = _encode(data, rng.choice(codecs))
        method = {"plain": 0, "raw": 0, "huffman": rng.choice((2, 3))}[used]
        if used == "huffman" and high_bits and rng.random() < 0.5:
            method = 1  # 24H2: bit 30 alone also means Huffman (LC >= 2.22.2, §3.6)
        head = len(group) | (len(comp) << 8) | (method << 30)
        if high_bits and rng.random() < 0.3:
            head |= 1 << 28  # 24H2 puts something in bits 28–29: the size must be read as 20 bits
        out += struct.pack("<I", head)
        for pfn, n in group:
            out += struct.pack("<Q" if x64 else "<I", (pfn << 4) | (n - 1))
        out += comp
        rec.sets.append(StoredSet(tuple(group), used == "raw"))
    return bytes(out)


def _modern_file(
    key: str,
    pages: dict[int, bytes],
    rng: random.Random,
    signature: bytes,
    codecs: tuple[str, ...],
    highest_page: int,
    rec: Written,
) -> bytes:
    """PO_MEMORY_IMAGE, modern (docs/formats/hibernation.md §3.2), then the boot and kernel phases (§3.1,
    §3.5)."""
    hdr = MODERN[key]
    x64 = hdr.arch == "x64"
    pfns = sorted(pages)
    boot_pfns = pfns[: len(pfns) // 5]
    kernel_pfns = pfns[len(pfns) // 5 :]
    boot_sets = _sets(boot_pfns, rng, big=False)
    kernel_sets = _sets(kernel_pfns, rng, big=True)
    rng.shuffle(kernel_sets)  # the kernel phase is not in page order
    high = key == "win11-24h2-x64"
    boot = _modern_phase(boot_sets, pages, x64, rng, codecs, high, rec)
    kernel = _modern_phase(kernel_sets, pages, x64, rng, codecs, high, rec)
    first_boot = 8
    first_kernel = first_boot + (len(boot) + PAGE - 1) // PAGE + 1
    out = bytearray(first_boot * PAGE) + boot
    out += bytes(first_kernel * PAGE - len(out)) + kernel
    out += bytes(-len(out) % PAGE) + random.Random(7).randbytes(PAGE)  # slack: stale data after the sets
    word = "<Q" if x64 else "<I"
    out[0:4] = signature
    rec.put(out, "LengthSelf", 0xC, hdr.length_self, "<I")
    rec.put(out, "PageSize", PAGE_SIZE_AT[hdr.arch], PAGE, "<I")
    rec.put(out, "SystemTime", hdr.system_time, SYSTEM_TIME, "<q")
    rec.put(out, "NumPagesForLoader", hdr.num_pages_for_loader, len(boot_pfns), "<Q")
    rec.put(out, "FirstBootRestorePage", hdr.first_boot_restore_page, first_boot, word)
    rec.put(out, "FirstKernelRestorePage", hdr.first_kernel_restore_page, first_kernel, word)
    rec.put(out, "PerfInfo.KernelPagesProcessed", hdr.kernel_pages_processed, len(kernel_pfns), "<Q")
    if hdr.boot_pages_processed is not None:
        rec.put(out, "PerfInfo.BootPagesProcessed", hdr.boot_pages_processed, len(boot_pfns), "<Q")
    rec.put(out, "HighestPhysicalPage", hdr.highest_physical_page, highest_page, word)
    rec.put(out, "HvCr3", hdr.hv_cr3, HV_CR3, "<Q")
    if hdr.processor_count is not None:
        rec.put(out, "PerfInfo.ProcessorCount", hdr.processor_count, 4, "<I")
    return bytes(out)


# -- fixtures ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    layout: str
    signature: bytes
    pages: int = 512
    codecs: tuple[str, ...] = ("plain", "huffman", "raw")
    zero_header: bool = False
    top_page_stored: bool = False  # modern: the image's last range ends at HighestPhysicalPage


FIXTURES: dict[str, Recipe] = {
    "xp-x86": Recipe("xp-x86", b"hibr", 420),
    "xp-x64": Recipe("2003-x64", b"hibr", 420),
    "vista-sp0-x86": Recipe("vista-sp0-x86", b"HIBR", 420),
    "vista-sp0-x64": Recipe("vista-sp0-x64", b"HIBR"),
    "vista-sp1-x86": Recipe("vista-sp1-x86", b"HIBR", 420),
    "vista-sp1-x64": Recipe("vista-sp1-x64", b"HIBR"),
    "vista-sp2-x64": Recipe("vista-sp2-x64", b"HIBR"),
    "vista-sp2-x86": Recipe("vista-sp2-x86", b"HIBR", 600),
    "win7-x86-pae": Recipe("win7-x86", b"HIBR", 700),
    "win7-x64": Recipe("win7-x64", b"HIBR", 600),
    "win8-x64": Recipe("win8-x64", b"HIBR", codecs=("plain", "raw")),
    "win81-x64": Recipe("win8-x64", b"HIBR", codecs=("huffman", "plain", "raw")),
    "win10-1507-x64": Recipe("win10-1507-x64", b"HIBR"),
    "win10-1607-x64": Recipe("win10-1607-x64", b"HIBR"),
    "win10-1703-x64": Recipe("win10-1703-x64", b"HIBR"),
    "win10-1809-x64": Recipe("win10-1809-x64", b"HIBR"),
    "win11-21h2-x64": Recipe("win11-21h2-x64", b"HIBR"),
    "win11-24h2-x64": Recipe("win11-24h2-x64", b"HIBR", 768),
    "win8-x86": Recipe("win8-x86", b"HIBR"),
    "win10-1507-x86": Recipe("win10-1507-x86", b"HIBR"),
    "win10-1607-x86": Recipe("win10-1607-x86", b"HIBR"),
    "win10-1703-x86": Recipe("win10-1703-x86", b"HIBR"),
    "win10-1809-x86": Recipe("win10-1809-x86", b"HIBR"),
    # variants
    "win10-1809-x64-wake": Recipe("win10-1809-x64", b"WAKE"),
    "win10-1809-x64-top": Recipe("win10-1809-x64", b"HIBR", top_page_stored=True),
    "xp-x86-wake": Recipe("xp-x86", b"wake", 420),
    "win7-x64-zeroed": Recipe("win7-x64", b"HIBR", 600, zero_header=True),
    "win10-1809-x64-zeroed": Recipe("win10-1809-x64", b"HIBR", zero_header=True),
}


@dataclass
class FixtureInfo:
    """A written fixture and what reading it must give."""

    name: str
    path: Path
    layout: str
    arch: str
    family: str
    sha256: str
    physmem_size: int
    pages: int
    cr3: int
    header: dict[str, int] = field(default_factory=dict)  # every header field written, by its doc name
    sets: tuple[StoredSet, ...] = ()  # modern: every compression set, in file order


@dataclass(frozen=True)
class Built:
    data: bytes  # the hibernation file
    physmem: bytes  # what physmem.bin must read
    recipe: Recipe
    written: Written


def _build(name: str, seed: int | None = None) -> Built:
    recipe = FIXTURES[name]
    key = recipe.layout
    seed = seed if seed is not None else sum(name.encode())
    rng = random.Random(seed * 31 + 1)
    modern = key in MODERN
    top = RAM_PAGES // 2 if recipe.top_page_stored else None
    x64 = LAYOUTS[key].arch == "x64"
    pages = source_pages(recipe.pages, seed, low_stub=modern and x64, paging=paging_mode(key), top=top)
    rec = Written()
    if modern:
        highest = max(pages) if recipe.top_page_stored else RAM_PAGES - 1
        data = bytearray(_modern_file(key, pages, rng, recipe.signature, recipe.codecs, highest, rec))
    else:
        data = bytearray(_legacy_file(key, pages, rng, recipe.signature, rec))
    if recipe.zero_header:
        data[:PAGE] = bytes(PAGE)
        rec.header.clear()
    return Built(bytes(data), physmem_bytes(pages), recipe, rec)


def build_bytes(name: str, seed: int | None = None) -> tuple[bytes, bytes, Recipe]:
    """(hibernation file bytes, expected physmem bytes, recipe) for fixture ``name``."""
    built = _build(name, seed)
    return built.data, built.physmem, built.recipe


def build_from_pages(
    layout: str, pages: dict[int, bytes], *, signature: bytes = b"HIBR", seed: int = 1
) -> bytes:
    """A hibernation file in ``layout`` (a key of :data:`LAYOUTS`) holding ``pages`` ({pfn: 4 KiB})."""
    rng = random.Random(seed)
    if layout in MODERN:
        highest = max(max(pages), RAM_PAGES - 1)
        return _modern_file(layout, pages, rng, signature, ("plain", "huffman", "raw"), highest, Written())
    return _legacy_file(layout, pages, rng, signature, Written())


def expected_cr3(name: str) -> int:
    """The kernel CR3 of fixture ``name``: stated by the processor state (legacy) or found in memory."""
    mode = paging_mode(FIXTURES[name].layout)
    return {"x64": KERNEL_CR3_X64, "pae": KERNEL_CR3_PAE, "x86": KERNEL_CR3_X86}[mode]


def build_fixture(name: str, out_dir: str | os.PathLike) -> FixtureInfo:
    """Write fixture ``name`` as ``OUT_DIR/NAME.hiberfil``; return what reading it must give."""
    built = _build(name)
    key = built.recipe.layout
    path = Path(out_dir) / f"{name}.hiberfil"
    path.write_bytes(built.data)
    return FixtureInfo(
        name=name,
        path=path,
        layout=key,
        arch=LAYOUTS[key].arch,
        family="modern" if key in MODERN else "legacy",
        sha256=hashlib.sha256(built.physmem).hexdigest(),
        physmem_size=len(built.physmem),
        pages=built.recipe.pages,
        cr3=expected_cr3(name),
        header=built.written.header,
        sets=tuple(built.written.sets),
    )


# -- large files for benchmarks ---------------------------------------------------------------------------


def build_large(
    path: str | os.PathLike,
    gib: float,
    codec: str = "huffman",
    sparse: bool = False,
    compressed_every: int = 1,
) -> dict:
    """A win10-1809-x64 file holding ``gib`` GiB of memory in 16-page sets.

    Real data: a pool of 64 distinct memory-like 64 KiB chunks is encoded once and reused, so every set
    decodes to real memory-like content (the decode cost per set is genuine) while building stays fast.
    ``sparse``: set data is left as file holes (only headers written) — for index/open-time measurement.
    ``compressed_every`` N > 1: only every Nth set holds a chunk of the pool; the others hold zero pages
    (about 270 bytes each, compressed) — a readable file describing much memory on little disk (scale
    benchmarks).
    Returns {"pages", "sets", "file_size", "chunk_sha256": [...]} (pages of chunk k repeat every 64 sets).
    """
    hdr = MODERN["win10-1809-x64"]
    total_pages = int(gib * (1 << 30)) // PAGE
    total_pages -= total_pages % 16
    rng = random.Random(5)
    pool = []
    for _ in range(64):
        chunk = b"".join(_page(rng, rng.choice((0, 1, 1, 2, 2, 2, 3, 4)), j) for j in range(16))
        comp, used = _encode(chunk, codec)
        method = 2 if used == "huffman" else 0
        pool.append((comp, method, hashlib.sha256(chunk).hexdigest()))
    zero_comp, zero_codec = _encode(bytes(16 * PAGE), codec)
    zeros = (zero_comp, 2 if zero_codec == "huffman" else 0)
    boot_pages = 256
    first_boot = 8
    with open(path, "wb") as fh:
        fd = fh.fileno()
        off = first_boot * PAGE
        header = bytearray(PAGE)

        def write_sets(first_pfn: int, count: int, off: int) -> int:
            buf = bytearray()
            start = off
            for s in range(count // 16):
                number = first_pfn // 16 + s
                comp, method, _ = pool[number % 64]
                if number % compressed_every:
                    comp, method = zeros
                size = len(comp)
                head = struct.pack("<IQ", 1 | (size << 8) | (method << 30), ((first_pfn + 16 * s) << 4) | 15)
                if sparse:
                    os.pwrite(fd, head, off)
                else:
                    buf += head + comp
                    if len(buf) > 1 << 22:
                        os.pwrite(fd, buf, start)
                        start += len(buf)
                        buf.clear()
                off += len(head) + size
            if buf:
                os.pwrite(fd, buf, start)
            return off

        off = write_sets(0, boot_pages, off)
        first_kernel = (off + PAGE - 1) // PAGE
        off = write_sets(boot_pages, total_pages - boot_pages, first_kernel * PAGE)
        os.ftruncate(fd, (off + PAGE - 1) // PAGE * PAGE)
        header[0:4] = b"HIBR"
        struct.pack_into("<I", header, 0xC, hdr.length_self)
        struct.pack_into("<I", header, PAGE_SIZE_AT[hdr.arch], PAGE)
        struct.pack_into("<q", header, hdr.system_time, SYSTEM_TIME)
        struct.pack_into("<Q", header, hdr.num_pages_for_loader, boot_pages)
        struct.pack_into("<Q", header, hdr.first_boot_restore_page, first_boot)
        struct.pack_into("<Q", header, hdr.first_kernel_restore_page, first_kernel)
        struct.pack_into("<Q", header, hdr.kernel_pages_processed, total_pages - boot_pages)
        struct.pack_into("<Q", header, hdr.highest_physical_page, total_pages - 1)
        os.pwrite(fd, header, 0)
    return {
        "pages": total_pages,
        "sets": total_pages // 16,
        "file_size": os.path.getsize(path),
        "chunk_sha256": [p[2] for p in pool],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output directory (or file with --large)")
    parser.add_argument("names", nargs="*", help=f"fixtures (default: all): {', '.join(FIXTURES)}")
    parser.add_argument(
        "--large", type=float, metavar="GIB", help="write one large benchmark file of GIB GiB"
    )
    parser.add_argument("--codec", default="huffman", choices=("huffman", "plain", "raw"))
    parser.add_argument("--sparse", action="store_true", help="with --large: headers only (open-time tests)")
    parser.add_argument(
        "--compressed-every",
        type=int,
        default=1,
        metavar="N",
        help="with --large: only every Nth set holds memory-like data, the others zero pages",
    )
    args = parser.parse_args(argv)
    if args.large:
        info = build_large(args.out, args.large, args.codec, args.sparse, args.compressed_every)
        print(f"{args.out}: {info['pages']} pages in {info['sets']} sets, {info['file_size']} bytes")
        return 0
    os.makedirs(args.out, exist_ok=True)
    for name in args.names or FIXTURES:
        if name not in FIXTURES:
            print(f"unknown fixture {name!r}", file=sys.stderr)
            return 2
        info = build_fixture(name, args.out)
        print(
            f"{info.path}  {info.layout:16} {info.arch}  physmem {info.physmem_size:#x}  sha256 {info.sha256}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
