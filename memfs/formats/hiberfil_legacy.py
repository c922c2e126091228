"""Legacy hibernation files (XP, 2003, Vista, 7): range-table chain and Xpress blocks, read at open.

docs/formats/hibernation.md §2.5–§2.7: a table page lists physical page ranges; the Xpress blocks after it
hold those
pages in order (block k: sequence pages of its header's count).  The walk reads each table page and each
32-byte block header once — no decompression — and appends units and map runs to an
:class:`~memfs.formats.hiberfil_index.IndexBuilder`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from memfs.exceptions import CorruptionError
from memfs.formats.hiberfil_index import KIND_PLAIN, KIND_RAW, IndexBuilder, check_pfn_limit
from memfs.formats.hiberfil_structs import (
    KSTATE_X64_CONTEXT,
    KSTATE_X64_CR,
    KSTATE_X64_GENERAL,
    KSTATE_X64_SELECTORS,
    KSTATE_X86_CONTEXT,
    KSTATE_X86_CR,
    KSTATE_X86_REGISTERS,
    XPRESS_MAGIC,
    TableLayout,
)
from memfs.memory import PAGE_SIZE
from memfs.windows_structs import unpack_registers

BLOCK_HEADER = 0x20
RESYNC_LIMIT = 10 * 1024  # V2 searches this far for a misplaced block header (§2.7)
_INFO = struct.Struct("<I")


@dataclass
class LegacyWalk:
    """What a table walk found, for ``header.txt``."""

    tables: int = 0
    blocks: int = 0
    resyncs: int = 0
    surplus_slots: int = 0  # block slots beyond the table's pages (ignored)


def _parse_table(path: str, page: bytes, table_off: int, t: TableLayout) -> tuple[int, list[tuple[int, int]]]:
    """Return (NextTable, [(StartPage, EndPage)…]) of one table page, or raise CorruptionError."""
    word = "<Q" if t.wide else "<I"
    next_table = struct.unpack_from(word, page, t.next_off)[0]
    count = struct.unpack_from("<I", page, t.count_off)[0]
    if count > t.max_entries:
        raise CorruptionError(
            f"{path}: offset {table_off + t.count_off:#x}: range table claims {count} entries, "
            f"at most {t.max_entries} fit in a page"
        )
    ranges = []
    size = 8 if t.wide else 4
    for i in range(count):
        base = t.link_size + i * t.range_size
        start = int.from_bytes(page[base + t.start_off : base + t.start_off + size], "little")
        end = int.from_bytes(page[base + t.end_off : base + t.end_off + size], "little")
        if end <= start:
            raise CorruptionError(
                f"{path}: offset {table_off + base:#x}: range {i} has EndPage {end:#x} "
                f"<= StartPage {start:#x}"
            )
        ranges.append((start, end))
    return (next_table if count == t.max_entries else 0), ranges


def _find_block(read, path: str, off: int, file_size: int) -> tuple[int, bytes, bool]:
    """The block header at ``off``, or the next one within RESYNC_LIMIT bytes (V2's tolerance, §2.7)."""
    head = read(off, BLOCK_HEADER)
    if head[:8] == XPRESS_MAGIC and len(head) == BLOCK_HEADER:
        return off, head, False
    window = read(off, RESYNC_LIMIT + BLOCK_HEADER)
    pos = window.find(XPRESS_MAGIC)
    if pos < 0 or pos + BLOCK_HEADER > len(window):
        if off >= file_size:
            raise CorruptionError(
                f"{path}: offset {off:#x}: the range table needs more Xpress blocks than the file holds"
            )
        raise CorruptionError(
            f"{path}: offset {off:#x}: no Xpress block header (81 81 'xpress') here or in the next 10 KiB"
        )
    return off + pos, window[pos : pos + BLOCK_HEADER], True


def walk_tables(
    read,
    path: str,
    file_size: int,
    table_layout: TableLayout,
    first_table: int,
    builder: IndexBuilder,
    pfn_limit: int,
) -> LegacyWalk:
    """Index every table of the chain starting at page ``first_table`` (docs/formats/hibernation.md §2.7)."""
    walk = LegacyWalk()
    seen: set[int] = set()
    table = first_table
    while True:
        table_off = table * PAGE_SIZE
        if table == 0 or table_off + PAGE_SIZE > file_size:
            raise CorruptionError(
                f"{path}: offset {table_off:#x}: range table page {table:#x} lies outside the file"
            )
        if table in seen:
            raise CorruptionError(
                f"{path}: offset {table_off:#x}: range table chain loops back to page {table:#x}"
            )
        seen.add(table)
        next_table, ranges = _parse_table(path, read(table_off, PAGE_SIZE), table_off, table_layout)
        walk.tables += 1
        off = table_off + PAGE_SIZE
        ri = 0
        pfn = ranges[0][0] if ranges else 0
        left = ranges[0][1] - ranges[0][0] if ranges else 0
        for start, end in ranges:
            check_pfn_limit(path, table_off, start, end - start, pfn_limit)
        remaining = sum(end - start for start, end in ranges)
        while remaining:
            off, head, moved = _find_block(read, path, off, file_size)
            walk.resyncs += moved
            info = _INFO.unpack_from(head, 8)[0]
            pages = (info & 0x3FF) + 1
            csize = (info >> 10) + 1
            if off + BLOCK_HEADER + csize > file_size:
                raise CorruptionError(
                    f"{path}: offset {off:#x}: Xpress block of {csize:#x} bytes runs past the end of the file"
                )
            kind = KIND_RAW if csize == pages * PAGE_SIZE else KIND_PLAIN
            if csize > pages * PAGE_SIZE:
                raise CorruptionError(
                    f"{path}: offset {off:#x}: Xpress block claims {csize:#x} bytes for {pages} pages"
                )
            unit = builder.add_unit(off, off + BLOCK_HEADER, csize, pages, kind)
            walk.blocks += 1
            slot = 0
            while slot < pages and remaining:
                take = min(left, pages - slot)
                builder.add_run(pfn, take, unit, slot)
                slot += take
                remaining -= take
                pfn += take
                left -= take
                if left == 0 and ri + 1 < len(ranges):
                    ri += 1
                    pfn, left = ranges[ri][0], ranges[ri][1] - ranges[ri][0]
            walk.surplus_slots += pages - slot
            off += BLOCK_HEADER + ((csize + 7) & ~7)
        if not next_table:
            return walk
        table = next_table


def find_table_candidates(read, max_page: int = 0x30) -> list[int]:
    """Candidate first tables of a zeroed header: pages followed by an Xpress block (§1.3 step 6)."""
    found = []
    for page in range(1, max_page):
        if read((page + 1) * PAGE_SIZE, 8) == XPRESS_MAGIC:
            found.append(page)
    return found


def table_plausible(page: bytes, t: TableLayout) -> bool:
    """Cheap structural test of a table page (used by the weak probe and by recovery)."""
    count = struct.unpack_from("<I", page, t.count_off)[0]
    if not 0 < count <= t.max_entries:
        return False
    size = 8 if t.wide else 4
    for i in range(min(count, 8)):
        base = t.link_size + i * t.range_size
        start = int.from_bytes(page[base + t.start_off : base + t.start_off + size], "little")
        end = int.from_bytes(page[base + t.end_off : base + t.end_off + size], "little")
        if not start < end <= 1 << 40:
            return False
    return True


# -- processor state (docs/formats/hibernation.md §2.4) ------------------------------------------------------


def parse_processor_state(page: bytes, arch: str) -> dict[str, int] | None:
    """Registers from a KPROCESSOR_STATE page, or None when it fails the §2.4 validation."""
    if arch == "x64":
        regs = {name: struct.unpack_from("<Q", page, off)[0] for name, off in KSTATE_X64_CR.items()}
        ctx = KSTATE_X64_CONTEXT
        regs.update(unpack_registers(page, ctx, "x64", KSTATE_X64_GENERAL))
        regs["rflags"] = unpack_registers(page, ctx, "x64", ("eflags",))["eflags"]
        regs.update(unpack_registers(page, ctx, "x64", KSTATE_X64_SELECTORS))
        ok = (
            regs["cr3"] & 0xFFF == 0
            and regs["cr3"] != 0
            and regs["cr0"] & 0x80000001 == 0x80000001
            and regs["cr4"] & 0x20
            and regs["rip"] >> 47 == 0x1FFFF
        )
    else:
        regs = {name: struct.unpack_from("<I", page, off)[0] for name, off in KSTATE_X86_CR.items()}
        regs.update(unpack_registers(page, KSTATE_X86_CONTEXT, "x86", KSTATE_X86_REGISTERS))
        align = 0x1F if regs["cr4"] & 0x20 else 0xFFF  # PAE: PDPT is 32-byte aligned
        ok = (
            regs["cr3"] & align == 0
            and regs["cr3"] != 0
            and regs["cr0"] & 0x80000001 == 0x80000001
            and regs["eip"] >= 0x80000000
        )
    return regs if ok else None
