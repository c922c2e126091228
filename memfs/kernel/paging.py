"""Virtual-to-physical translation for the three Windows paging modes.

``x64``: 4-level paging (PML4 → PDPT → PD → PT), 1 GiB and 2 MiB large pages.
``pae``: x86 PAE (4-entry PDPT → PD → PT, 8-byte entries), 2 MiB large pages; CR3 is 32-byte aligned.
``x86``: x86 non-PAE (PD → PT, 4-byte entries), 4 MiB large pages (PSE, with PSE-36 high bits).

Only present (valid) entries are followed: transition and prototype PTEs are software states that
other readers (kdmp-parser) do not follow either, so our translations stay comparable to theirs
(docs/formats/crashdump.md §11, §13).  Everything reads physical memory through a ``read(pa, n)`` callable (a
:class:`~memfs.memory.MemorySource`'s ``read``), so holes read as zeros and garbage never raises.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from memfs.memory import PAGE_SIZE

ReadFn = Callable[[int, int], bytes]

# Per mode: (VA shift, entry size, index mask, may be a large-page leaf) for each level, top first.
_LEVELS: dict[str, tuple[tuple[int, int, int, bool], ...]] = {
    "x64": ((39, 8, 0x1FF, False), (30, 8, 0x1FF, True), (21, 8, 0x1FF, True), (12, 8, 0x1FF, False)),
    "pae": ((30, 8, 0x3, False), (21, 8, 0x1FF, True), (12, 8, 0x1FF, False)),
    "x86": ((22, 4, 0x3FF, True), (12, 4, 0x3FF, False)),
}
_FRAME_MASK_64 = 0x000FFFFFFFFFF000
_FRAME_MASK_32 = 0xFFFFF000
_PRESENT = 1
_LARGE = 0x80
_TABLE_CACHE_PAGES = 512

KERNEL_HALF = {
    "x64": (0xFFFF800000000000, 1 << 64),
    "pae": (0x80000000, 1 << 32),
    "x86": (0x80000000, 1 << 32),
}
"""The kernel half of the address space per mode: ``(start, end)``."""


def canonical(va: int) -> int:
    """Sign-extend a 48-bit x64 address to its canonical 64-bit form."""
    va &= (1 << 64) - 1
    return va | 0xFFFF000000000000 if va & (1 << 47) else va & 0x0000FFFFFFFFFFFF


class AddressSpace:
    """A virtual address space given by a top-level table (``dtb``) and a paging ``mode``."""

    def __init__(self, read: ReadFn, dtb: int, mode: str) -> None:
        if mode not in _LEVELS:
            raise ValueError(f"unknown paging mode {mode!r}")
        self._read = read
        self.mode = mode
        self.dtb = dtb & ~0x1F if mode == "pae" else dtb & ~0xFFF
        self._levels = _LEVELS[mode]
        self._pages: dict[int, bytes] = {}
        self.ptr_size = 8 if mode == "x64" else 4

    # -- page-table access -------------------------------------------------------------------

    def _table_page(self, page: int) -> bytes:
        data = self._pages.get(page)
        if data is None:
            data = self._read(page, PAGE_SIZE)
            if len(data) < PAGE_SIZE:
                data = data.ljust(PAGE_SIZE, b"\0")
            if len(self._pages) >= _TABLE_CACHE_PAGES:
                self._pages.clear()
            self._pages[page] = data
        return data

    def _entry(self, address: int, size: int) -> int:
        offset = address & 0xFFF
        return int.from_bytes(self._table_page(address & ~0xFFF)[offset : offset + size], "little")

    def _entries(self, table: int, size: int, count: int) -> tuple[int, ...]:
        """All ``count`` entries of the table at ``table``, unpacked at once (a walk reads every one)."""
        return struct.unpack_from(
            f"<{count}{'Q' if size == 8 else 'I'}", self._table_page(table & ~0xFFF), table & 0xFFF
        )

    def _next_table(self, entry: int, size: int) -> int:
        return entry & (_FRAME_MASK_64 if size == 8 else _FRAME_MASK_32)

    def _leaf(self, entry: int, size: int, shift: int) -> int:
        if size == 8:
            return entry & _FRAME_MASK_64 & ~((1 << shift) - 1)
        if shift == 22:  # non-PAE 4 MiB page: bits 13..20 of the PDE are PA bits 32..39 (PSE-36)
            return (entry & 0xFFC00000) | (((entry >> 13) & 0xFF) << 32)
        return entry & _FRAME_MASK_32

    # -- public API ----------------------------------------------------------------------------

    def translate(self, va: int) -> int | None:
        """The physical address of ``va``, or None when it is not mapped (or not canonical)."""
        if self.mode == "x64":
            if canonical(va) != va & ((1 << 64) - 1):
                return None
        elif not 0 <= va < 1 << 32:
            return None
        table = self.dtb
        last = len(self._levels) - 1
        for depth, (shift, size, mask, may_be_large) in enumerate(self._levels):
            entry = self._entry(table + ((va >> shift) & mask) * size, size)
            if not entry & _PRESENT:
                return None
            if depth == last or (may_be_large and entry & _LARGE):
                return self._leaf(entry, size, shift) | (va & ((1 << shift) - 1))
            table = self._next_table(entry, size)
        return None  # pragma: no cover - the loop always returns

    def read(self, va: int, n: int) -> bytes | None:
        """``n`` bytes at ``va``, or None when any page of the range is not mapped."""
        pieces = []
        while n > 0:
            pa = self.translate(va)
            if pa is None:
                return None
            take = min(n, PAGE_SIZE - (va & 0xFFF))
            data = self._read(pa, take)
            if len(data) < take:
                data = data.ljust(take, b"\0")
            pieces.append(data)
            va += take
            n -= take
        return b"".join(pieces)

    def read_uint(self, va: int, size: int) -> int | None:
        """A little-endian unsigned integer of ``size`` bytes at ``va``, or None."""
        data = self.read(va, size)
        return None if data is None else int.from_bytes(data, "little")

    def read_ptr(self, va: int) -> int | None:
        """A pointer (8 bytes on x64, 4 on x86) at ``va``, or None."""
        return self.read_uint(va, self.ptr_size)

    def pointer_ok(self, value: int | None) -> bool:
        """Whether ``value`` looks like a kernel-half pointer in this mode."""
        if value is None:
            return False
        start, end = KERNEL_HALF[self.mode]
        if self.mode == "x64" and canonical(value) != value:
            return False
        return start <= value < end

    def mappings(self, start: int, end: int, budget: int = 1 << 20) -> Iterator[tuple[int, int, int]]:
        """Yield ``(va, pa, size)`` for present leaf mappings in ``[start, end)``, ascending.

        At most ``budget`` table entries are examined, so a walk over a huge or hostile
        hierarchy stays bounded.  A top-level entry that points back at the top-level table (the
        x64 self-map, docs/formats/crashdump.md §11) is skipped: it only maps the page tables themselves.
        A table reached a second time at the same level is not walked again: real hierarchies do not
        share tables, and a damaged one that does would map the same frames over and over (a fuzz
        input pointing every entry of a directory at one table made the walk 2^20 entries long).
        """
        remaining = [budget]
        yield from self._walk(self.dtb, 0, 0, start, end, remaining, set())

    def _walk(
        self,
        table: int,
        depth: int,
        base: int,
        start: int,
        end: int,
        remaining: list[int],
        walked: set[tuple[int, int]],
    ) -> Iterator[tuple[int, int, int]]:
        shift, size, mask, may_be_large = self._levels[depth]
        span = 1 << shift
        last = len(self._levels) - 1
        entries = self._entries(table, size, mask + 1)
        for index in range(mask + 1):
            va = base + index * span
            if self.mode == "x64" and depth == 0:
                va = canonical(va)
            if va + span <= start or va >= end:
                continue
            if remaining[0] <= 0:
                return
            remaining[0] -= 1
            entry = entries[index]
            if not entry & _PRESENT:
                continue
            if depth == 0 and self._next_table(entry, size) == self.dtb & ~0xFFF:
                continue
            if depth == last or (may_be_large and entry & _LARGE):
                yield va, self._leaf(entry, size, shift), span
            else:
                child = (self._next_table(entry, size), depth + 1)
                if child not in walked:
                    walked.add(child)
                    yield from self._walk(child[0], depth + 1, va, start, end, remaining, walked)
