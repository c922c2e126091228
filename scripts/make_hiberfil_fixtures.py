"""Build synthetic hibernation files for every layout family of hibernation.md, from a known memory image.

The source image is deterministic and memory-like (zero, text, pointer and random pages, with holes);
each fixture stores it with our Xpress encoders (``memfs.xpress``) in the structures of one layout:
legacy range-table chains with plain and stored Xpress blocks (§2.5–§2.7), or modern boot and kernel
phases with plain, Huffman and stored compression sets, multi-descriptor sets and sets of more than 16
pages (§3.5–§3.7).  Header offsets come from the layout tables in ``memfs.formats.hiberfil_structs``
(themselves transcribed from the doc) — reused, not restated.

Function API (for tests)::

    info = build_fixture("win7-x64", out_dir)          # -> FixtureInfo(path, sha256, ...)
    FIXTURES                                            # every fixture name

CLI: ``python3 -m scripts.make_hiberfil_fixtures OUT_DIR [NAME ...]``;
``--large GIB OUT`` writes a big Huffman file for benchmarks (``--sparse`` leaves set data as holes,
for index/open-time measurements only).
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

from memfs.formats.hiberfil_structs import (
    LEGACY_LAYOUTS,
    MODERN_LAYOUTS,
    PAGE_SIZE_OFFSET,
    XPRESS_MAGIC,
    LegacyLayout,
    ModernLayout,
)

PAGE = 0x1000
LAYOUTS = {lay.key: lay for lay in LEGACY_LAYOUTS + MODERN_LAYOUTS}
SYSTEM_TIME = 133_500_000_000_000_000  # 2024-01-17 21:20 UTC (FILETIME)
INTERRUPT_TIME = 36_000_000_000  # one hour since boot (100 ns units)
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


def source_ranges(pages: int) -> list[tuple[int, int]]:
    """Present page ranges ``[start, end)`` with holes: low memory, a hole, two more ranges."""
    low = 0x9F
    rest = pages - low
    first = rest * 2 // 3
    return [(0, low), (0x100, 0x100 + first), (0x400, 0x400 + rest - first)]


def paging_pages(mode: str) -> dict[int, bytes]:
    """Page tables of one address space (``x64``, ``pae`` or ``x86``) with the usual Windows self-map,
    mapping KUSER_SHARED_DATA to KUSER_PAGE (crashdump.md §11, §13)."""
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


def paging_mode(lay: LegacyLayout | ModernLayout) -> str:
    """The paging mode a fixture of ``lay`` uses: x64; PAE for 7 x86 and every modern x86; else 2-level."""
    if lay.arch == "x64":
        return "x64"
    return "pae" if isinstance(lay, ModernLayout) or lay.key.startswith("win7") else "x86"


def source_pages(pages: int, seed: int, low_stub: bool, paging: str | None = None) -> dict[int, bytes]:
    """The known memory image: page number → 4096 bytes (with page tables for ``paging``)."""
    rng = random.Random(seed)
    out = {}
    for start, end in source_ranges(pages):
        for pfn in range(start, end):
            out[pfn] = _page(rng, rng.choice((0, 0, 1, 1, 1, 2, 2, 2, 3, 4)), pfn)
    if low_stub:
        # x64 PROCESSOR_START_BLOCK at PA 0x1000 (hibernation.md §3.8): jmp signature, kernel entry, CR3.
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


# -- legacy -----------------------------------------------------------------------------------------------


def _legacy_file(lay: LegacyLayout, pages: dict[int, bytes], rng: random.Random, signature: bytes) -> bytes:
    t = lay.table
    word = "<Q" if t.wide else "<I"
    # Many short ranges so that full tables chain (§2.5): single pages first, then longer runs.
    ranges: list[tuple[int, int]] = []
    for start, end in _runs(sorted(pages)):
        pfn = start
        while pfn < end:
            n = 1 if len(ranges) < t.max_entries + 20 else rng.randint(1, 40)
            n = min(n, end - pfn)
            ranges.append((pfn, pfn + n))
            pfn += n
    tables = [ranges[i : i + t.max_entries] for i in range(0, len(ranges), t.max_entries)]
    if len(tables[-1]) == t.max_entries:
        tables.append([])  # a full table chains on; the chain ends with a table that is not full
    out = bytearray(6 * PAGE)
    first_table = 6
    table_page = first_table
    for ti, entries in enumerate(tables):
        table = bytearray(PAGE)
        struct.pack_into("<I", table, t.count_off, len(entries))
        for i, (start, end) in enumerate(entries):
            base = t.link_size + i * t.range_size
            struct.pack_into(word, table, base + t.start_off, start)
            struct.pack_into(word, table, base + t.end_off, end)
        seq = [pfn for start, end in entries for pfn in range(start, end)]
        blocks = bytearray()
        pos = 0
        while pos < len(seq):
            n = min(rng.choice((16, 16, 16, 5, 11)), len(seq) - pos)
            data = b"".join(pages[p] for p in seq[pos : pos + n])
            comp, _ = _encode(data, rng.choice(("plain", "plain", "plain", "raw")))
            info = (n - 1) | ((len(comp) - 1) << 10)
            blocks += XPRESS_MAGIC + struct.pack("<I", info) + bytes(20) + comp
            blocks += bytes(-len(blocks) % 8)
            pos += n
        blocks += bytes(-len(blocks) % PAGE)
        next_page = table_page + 1 + len(blocks) // PAGE
        if ti + 1 < len(tables):
            struct.pack_into(word, table, t.next_off, next_page)
        assert len(out) == table_page * PAGE
        out += table + blocks
        table_page = next_page
    _legacy_header(out, lay, signature, first_table)
    _legacy_proc_page(out, lay)
    return bytes(out)


def _runs(pfns: list[int]) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for pfn in pfns:
        if runs and runs[-1][1] == pfn:
            runs[-1][1] += 1
        else:
            runs.append([pfn, pfn + 1])
    return [(a, b) for a, b in runs]


def _legacy_header(out: bytearray, lay: LegacyLayout, signature: bytes, first_table: int) -> None:
    out[0:4] = signature
    struct.pack_into("<I", out, 0xC, lay.length_self)
    struct.pack_into("<I", out, PAGE_SIZE_OFFSET[lay.arch], PAGE)
    struct.pack_into("<q", out, lay.system_time, SYSTEM_TIME)
    struct.pack_into("<Q", out, lay.system_time + 8, INTERRUPT_TIME)
    struct.pack_into("<Q" if lay.wide else "<I", out, lay.first_table_page, first_table)


def _legacy_proc_page(out: bytearray, lay: LegacyLayout) -> None:
    """A KPROCESSOR_STATE at the layout's page (hibernation.md §2.4)."""
    base = lay.proc_page * PAGE
    if lay.arch == "x64":
        struct.pack_into("<4Q", out, base, 0x80050033, 0xFFFFF6FB7DBED000, KERNEL_CR3_X64, 0x6F8)
        ctx = base + 0xE0
        struct.pack_into("<6H", out, ctx + 0x38, 0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)
        struct.pack_into("<I", out, ctx + 0x44, 0x46)
        for i in range(16):
            struct.pack_into("<Q", out, ctx + 0x78 + 8 * i, 0x1111 * (i + 1))
        struct.pack_into("<Q", out, ctx + 0x98, 0xFFFFF80212A4FE28)  # rsp
        struct.pack_into("<Q", out, ctx + 0xF8, 0xFFFFF8021234ABCD)  # rip
    else:
        pae = paging_mode(lay) == "pae"  # the 7 x86 fixture is a PAE system
        cr3 = KERNEL_CR3_PAE if pae else KERNEL_CR3_X86
        struct.pack_into("<4I", out, base + 0x2CC, 0x80010031, 0xC0300000, cr3, 0x6F9 if pae else 0x6D9)
        struct.pack_into("<I", out, base + 0xB8, 0x8283ABCD)  # eip
        struct.pack_into("<I", out, base + 0xC4, 0x8078AF20)  # esp
        struct.pack_into("<I", out, base + 0xBC, 0x8)  # cs
        struct.pack_into("<I", out, base + 0xB0, 0x1234)  # eax


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
    lay: ModernLayout,
    rng: random.Random,
    codecs: tuple[str, ...],
    high_bits: bool,
) -> bytes:
    dsz = 8 if lay.wide else 4
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
            out += struct.pack("<Q" if dsz == 8 else "<I", (pfn << 4) | (n - 1))
        out += comp
    return bytes(out)


def _modern_file(
    lay: ModernLayout, pages: dict[int, bytes], rng: random.Random, signature: bytes, codecs: tuple[str, ...]
) -> bytes:
    pfns = sorted(pages)
    boot_pfns = pfns[: len(pfns) // 5]
    kernel_pfns = pfns[len(pfns) // 5 :]
    boot_sets = _sets(boot_pfns, rng, big=False)
    kernel_sets = _sets(kernel_pfns, rng, big=True)
    rng.shuffle(kernel_sets)  # the kernel phase is not in page order
    high = lay.key.startswith("win11-24h2")
    boot = _modern_phase(boot_sets, pages, lay, rng, codecs, high)
    kernel = _modern_phase(kernel_sets, pages, lay, rng, codecs, high)
    first_boot = 8
    first_kernel = first_boot + (len(boot) + PAGE - 1) // PAGE + 1
    out = bytearray(first_boot * PAGE) + boot
    out += bytes(first_kernel * PAGE - len(out)) + kernel
    out += bytes(-len(out) % PAGE) + random.Random(7).randbytes(PAGE)  # slack: stale data after the sets
    word = "<Q" if lay.wide else "<I"
    out[0:4] = signature
    struct.pack_into("<I", out, 0xC, lay.length_self)
    struct.pack_into("<I", out, PAGE_SIZE_OFFSET[lay.arch], PAGE)
    struct.pack_into("<q", out, lay.system_time, SYSTEM_TIME)
    struct.pack_into("<Q", out, lay.num_pages_for_loader, len(boot_pfns))
    struct.pack_into(word, out, lay.first_boot_page, first_boot)
    struct.pack_into(word, out, lay.first_kernel_page, first_kernel)
    struct.pack_into("<Q", out, lay.kernel_pages_processed, len(kernel_pfns))
    if lay.boot_pages_processed is not None:
        struct.pack_into("<Q", out, lay.boot_pages_processed, len(boot_pfns))
    struct.pack_into(word, out, lay.highest_physical_page, max(pfns))
    if lay.hv_cr3 is not None:
        struct.pack_into("<Q", out, lay.hv_cr3, HV_CR3)
    if lay.processor_count is not None:
        struct.pack_into("<I", out, lay.processor_count, 4)
    return bytes(out)


# -- fixtures ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    layout: str
    signature: bytes
    pages: int = 512
    codecs: tuple[str, ...] = ("plain", "huffman", "raw")
    zero_header: bool = False


FIXTURES: dict[str, Recipe] = {
    "xp-x86": Recipe("xp-x86", b"hibr", 420),
    "xp-x64": Recipe("2003-x64", b"hibr", 420),
    "vista-sp0-x64": Recipe("vista-sp0-x64", b"HIBR"),
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
    "win10-1809-x86": Recipe("win10-1809-x86", b"HIBR"),
    "win8-x86": Recipe("win8-x86", b"HIBR"),
    # variants
    "win10-1809-x64-wake": Recipe("win10-1809-x64", b"WAKE"),
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
    extra: dict = field(default_factory=dict)


def build_bytes(name: str, seed: int | None = None) -> tuple[bytes, bytes, Recipe]:
    """(hibernation file bytes, expected physmem bytes, recipe) for fixture ``name``."""
    recipe = FIXTURES[name]
    lay = LAYOUTS[recipe.layout]
    seed = seed if seed is not None else sum(name.encode())
    rng = random.Random(seed * 31 + 1)
    modern = isinstance(lay, ModernLayout)
    pages = source_pages(recipe.pages, seed, low_stub=modern and lay.arch == "x64", paging=paging_mode(lay))
    if modern:
        data = bytearray(_modern_file(lay, pages, rng, recipe.signature, recipe.codecs))
    else:
        data = bytearray(_legacy_file(lay, pages, rng, recipe.signature))
    if recipe.zero_header:
        data[:PAGE] = bytes(PAGE)
    return bytes(data), physmem_bytes(pages), recipe


def build_from_pages(
    layout: str, pages: dict[int, bytes], *, signature: bytes = b"HIBR", seed: int = 1
) -> bytes:
    """A hibernation file in ``layout`` (a key of :data:`LAYOUTS`) holding ``pages`` ({pfn: 4 KiB})."""
    lay = LAYOUTS[layout]
    rng = random.Random(seed)
    if isinstance(lay, ModernLayout):
        return _modern_file(lay, pages, rng, signature, ("plain", "huffman", "raw"))
    return _legacy_file(lay, pages, rng, signature)


def expected_cr3(name: str) -> int:
    """The kernel CR3 of fixture ``name``: stated by the processor state (legacy) or found in memory."""
    mode = paging_mode(LAYOUTS[FIXTURES[name].layout])
    return {"x64": KERNEL_CR3_X64, "pae": KERNEL_CR3_PAE, "x86": KERNEL_CR3_X86}[mode]


def build_fixture(name: str, out_dir: str | os.PathLike) -> FixtureInfo:
    """Write fixture ``name`` as ``OUT_DIR/NAME.hiberfil``; return what reading it must give."""
    data, physmem, recipe = build_bytes(name)
    lay = LAYOUTS[recipe.layout]
    path = Path(out_dir) / f"{name}.hiberfil"
    path.write_bytes(data)
    return FixtureInfo(
        name=name,
        path=path,
        layout=lay.key,
        arch=lay.arch,
        family="modern" if isinstance(lay, ModernLayout) else "legacy",
        sha256=hashlib.sha256(physmem).hexdigest(),
        physmem_size=len(physmem),
        pages=recipe.pages,
        cr3=expected_cr3(name),
    )


# -- large files for benchmarks ---------------------------------------------------------------------------


def build_large(path: str | os.PathLike, gib: float, codec: str = "huffman", sparse: bool = False) -> dict:
    """A win10-1809-x64 file holding ``gib`` GiB of memory in 16-page sets.

    Real data: a pool of 64 distinct memory-like 64 KiB chunks is encoded once and reused, so every set
    decodes to real memory-like content (the decode cost per set is genuine) while building stays fast.
    ``sparse``: set data is left as file holes (only headers written) — for index/open-time measurement.
    Returns {"pages", "sets", "file_size", "chunk_sha256": [...]} (pages of chunk k repeat every 64 sets).
    """
    lay = LAYOUTS["win10-1809-x64"]
    total_pages = int(gib * (1 << 30)) // PAGE
    total_pages -= total_pages % 16
    rng = random.Random(5)
    pool = []
    for _ in range(64):
        chunk = b"".join(_page(rng, rng.choice((0, 1, 1, 2, 2, 2, 3, 4)), j) for j in range(16))
        comp, used = _encode(chunk, codec)
        method = 2 if used == "huffman" else 0
        pool.append((comp, method, hashlib.sha256(chunk).hexdigest()))
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
                comp, method, _ = pool[(first_pfn // 16 + s) % 64]
                head = struct.pack(
                    "<IQ", 1 | (len(comp) << 8) | (method << 30), ((first_pfn + 16 * s) << 4) | 15
                )
                if sparse:
                    os.pwrite(fd, head, off)
                else:
                    buf += head + comp
                    if len(buf) > 1 << 22:
                        os.pwrite(fd, buf, start)
                        start += len(buf)
                        buf.clear()
                off += len(head) + len(comp)
            if buf:
                os.pwrite(fd, buf, start)
            return off

        off = write_sets(0, boot_pages, off)
        first_kernel = (off + PAGE - 1) // PAGE
        off = write_sets(boot_pages, total_pages - boot_pages, first_kernel * PAGE)
        os.ftruncate(fd, (off + PAGE - 1) // PAGE * PAGE)
        header[0:4] = b"HIBR"
        struct.pack_into("<I", header, 0xC, lay.length_self)
        struct.pack_into("<I", header, 0x18, PAGE)
        struct.pack_into("<q", header, 0x20, SYSTEM_TIME)
        struct.pack_into("<Q", header, lay.num_pages_for_loader, boot_pages)
        struct.pack_into("<Q", header, lay.first_boot_page, first_boot)
        struct.pack_into("<Q", header, lay.first_kernel_page, first_kernel)
        struct.pack_into("<Q", header, lay.kernel_pages_processed, total_pages - boot_pages)
        struct.pack_into("<Q", header, lay.highest_physical_page, total_pages - 1)
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
    args = parser.parse_args(argv)
    if args.large:
        info = build_large(args.out, args.large, args.codec, args.sparse)
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
