"""Modern hibernation files (8 … 11 24H2): restore phases made of back-to-back compression sets.

docs/formats/hibernation.md §3.5–§3.7: a phase starts at a page boundary and is a packed sequence of
compression sets
(4-byte header, D page-run descriptors, C data bytes).  The walk reads only set headers (≤ 132 bytes, one
``pread`` each) and appends units and map runs to an :class:`~memfs.formats.hiberfil_index.IndexBuilder`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from memfs.exceptions import CorruptionError
from memfs.formats.hiberfil_index import KIND_HUFFMAN, KIND_PLAIN, KIND_RAW, IndexBuilder
from memfs.memory import PAGE_SIZE

_HEAD = struct.Struct("<I")
_DESC = {8: [struct.Struct(f"<{n}Q") for n in range(256)], 4: [struct.Struct(f"<{n}I") for n in range(256)]}

try:
    from memfs.formats._hiberwalk import scan_sets
except ImportError:  # pragma: no cover - the C extension is not built: the Python loop walks every set
    scan_sets = None

SCAN_STEP = 16 << 20
"""File bytes the C loop walks per call, so the reader's read-ahead advice keeps ahead of it."""

MAX_SET_PAGES = 256
"""Largest set accepted (decoded 1 MiB).  Genuine sets hold ≤ 16 pages, but LC handles more (§3.6, §8.9)."""


class TruncatedError(CorruptionError):
    """A phase needs data past the end of the file (the file is cut short, not mis-described)."""


@dataclass
class PhaseWalk:
    """What one phase walk found, for ``header.txt``."""

    start: int
    sets: int = 0
    pages: int = 0
    end: int = 0
    big_sets: int = 0  # sets of more than 16 pages
    size20: int = 0  # sets whose size needed the 20-bit reading (bits 28–29 set, §3.6)
    stop: str = ""
    kinds: dict[int, int] = field(default_factory=dict)


def parse_set(head: bytes, dsz: int, pfn_limit: int) -> tuple[int, int, int, tuple[int, ...]] | str:
    """Decode a set header: (D, C, kind, descriptors) or a reason string when it is not valid.

    ``head`` holds at least 4 + dsz × D bytes.  Size rule (§3.6): the 22-bit field when it is plausible,
    else the 20-bit one (24H2 puts something in bits 28–29).
    """
    h = _HEAD.unpack_from(head)[0]
    d = h & 0xFF
    if d == 0:
        return "descriptor count 0"
    if len(head) < 4 + dsz * d:
        return "header truncated by the end of the file"
    descs = _DESC[dsz][d].unpack_from(head, 4)
    pages = 0
    for desc in descs:
        count = (desc & 0xF) + 1
        pfn = desc >> 4
        if pfn + count > pfn_limit:
            return f"page {pfn:#x} lies past the highest physical page {pfn_limit - 1:#x}"
        pages += count
    if pages > MAX_SET_PAGES:
        return f"{pages} pages in one set"
    full = pages * PAGE_SIZE
    c = (h >> 8) & 0x3FFFFF
    if not 0 < c <= full:
        c = (h >> 8) & 0xFFFFF
        if not 0 < c <= full:
            return f"compressed size {(h >> 8) & 0x3FFFFF:#x} impossible for {pages} pages"
    if c == full:
        kind = KIND_RAW
    elif h >> 30:
        kind = KIND_HUFFMAN  # method 2/3, or bit 30 alone (LC >= 2.22.2); decode falls back to plain
    else:
        kind = KIND_PLAIN
    return d, c, kind, descs


def walk_phase(
    read,
    path: str,
    file_size: int,
    start_page: int,
    count: int | None,
    dsz: int,
    builder: IndexBuilder,
    pfn_limit: int,
    name: str,
) -> PhaseWalk:
    """Index the sets of one phase.

    ``count`` is the number of pages the header says the phase holds: the walk raises CorruptionError
    if a set is invalid before that many pages are seen.  ``count=None`` walks until the first invalid
    set header or the end of the file (H2B's strategy, §3.5) — used when the count is unknown.

    When ``read`` has an ``fd`` (a plain file), runs of ordinary sets are walked in C (``scan_sets`` of
    memfs/formats/_hiberwalk.c, about 4x faster); every other set goes through the loop below.
    """
    off = start_page * PAGE_SIZE
    walk = PhaseWalk(start=off)
    if off >= file_size:
        raise CorruptionError(f"{path}: offset {off:#x}: {name} phase starts past the end of the file")
    # Hot loop (one iteration per set, ~260k for 16 GiB): local names, no per-set method calls.
    run_pfn, run_count, run_unit, run_slot = (
        builder.run_pfn,
        builder.run_count,
        builder.run_unit,
        builder.run_slot,
    )
    u_off, u_csize, u_pages = builder.unit_off.append, builder.unit_csize.append, builder.unit_pages.append
    u_kind, u_head = builder.unit_kind.append, builder.unit_head.append
    unit = len(builder.unit_off)
    read_len = 4 + dsz * 16
    kinds = walk.kinds
    done = sets = big = size20 = 0
    fd = getattr(read, "fd", None) if scan_sets is not None else None
    fast_arrays = (
        builder.unit_off, builder.unit_csize, builder.unit_pages, builder.unit_kind, builder.unit_head,
        run_pfn, run_count, run_unit, run_slot,
    )  # fmt: skip
    while count is None or done < count:
        if fd is not None:
            read.advise(off)
            wanted = (1 << 62) if count is None else count - done
            off, n_sets, n_pages, n_big, n_kinds, packed = scan_sets(
                fd, off, file_size, dsz, pfn_limit, wanted, unit, off + SCAN_STEP
            )
            if n_sets:
                for array, data in zip(fast_arrays, packed, strict=True):
                    array.frombytes(data)
                for kind, n in enumerate(n_kinds):
                    if n:
                        kinds[kind] = kinds.get(kind, 0) + n
                unit, sets, done, big = unit + n_sets, sets + n_sets, done + n_pages, big + n_big
                continue
        if off + 4 > file_size:
            if count is None:
                walk.stop = "end of file"
                break
            raise TruncatedError(
                f"{path}: offset {off:#x}: {name} phase ends at the end of the file after {done} "
                f"of {count} pages"
            )
        head = read(off, read_len)
        if len(head) >= 4 and (head[0] > 16):
            head = read(off, 4 + dsz * head[0])
        parsed = parse_set(head, dsz, pfn_limit)
        if parsed.__class__ is str:
            if count is not None and off + 4 + dsz * head[0] > file_size:
                raise TruncatedError(
                    f"{path}: offset {off:#x}: {name} phase set header is cut by the end of the file"
                )
            if count is None:
                walk.stop = f"invalid set header at {off:#x} ({parsed})"
                break
            raise CorruptionError(
                f"{path}: offset {off:#x}: invalid compression set in the {name} phase after {done} "
                f"of {count} pages: {parsed}"
            )
        d, c, kind, descs = parsed
        data_off = off + 4 + dsz * d
        if data_off + c > file_size:
            if count is None:
                walk.stop = f"set at {off:#x} runs past the end of the file"
                break
            raise TruncatedError(
                f"{path}: offset {off:#x}: compression set of {c:#x} bytes runs past the end of the file"
            )
        pages = 0
        for desc in descs:
            n = (desc & 0xF) + 1
            pfn = desc >> 4
            # Contiguous descriptors of one set share a map run (fewer runs, same lookups).
            if pages and run_pfn[-1] + run_count[-1] == pfn:
                run_count[-1] += n
            else:
                run_pfn.append(pfn)
                run_count.append(n)
                run_unit.append(unit)
                run_slot.append(pages)
            pages += n
        u_off(data_off)
        u_csize(c)
        u_pages(pages)
        u_kind(kind)
        u_head(off)
        unit += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        sets += 1
        done += pages
        if pages > 16:
            big += 1
        if c != (head[1] | head[2] << 8 | head[3] << 16) & 0x3FFFFF:
            size20 += 1
        off = data_off + c
    walk.sets, walk.pages, walk.big_sets, walk.size20 = sets, done, big, size20
    builder.pages += done
    builder.end_offset = max(builder.end_offset, off)
    walk.end = off
    if count is not None and walk.pages > count:
        walk.stop = f"last set overshoots the header's count by {walk.pages - count} pages"
    return walk


def chain_valid(read, off: int, file_size: int, dsz: int, pfn_limit: int, sets: int) -> int:
    """How many consecutive valid sets (of ≤ 16 pages, strict) start at ``off``, up to ``sets``."""
    found = 0
    while found < sets and off + 4 <= file_size:
        head = read(off, 4 + dsz * 16)
        parsed = parse_set(head, dsz, pfn_limit)
        if isinstance(parsed, str):
            break
        d, c, _, descs = parsed
        if d > 16 or sum((x & 0xF) + 1 for x in descs) > 16:
            break
        off += 4 + dsz * d + c
        if off > file_size:
            break
        found += 1
    return found
