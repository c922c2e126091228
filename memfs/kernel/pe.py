"""The NT kernel image in virtual memory: find it without symbols, read its sections and exports.

The kernel is the mapped PE image ("MZ" at a page start, "PE\\0\\0" at e_lfanew) whose export
directory names it ``ntoskrnl.exe`` (or one of the x86 variants).  Layout facts are those of the
PE/COFF format: e_lfanew at 0x3C; the optional header after the 20-byte COFF header; SizeOfImage at
optional+0x38; data directories at optional+0x70 (PE32+) / +0x60 (PE32); 40-byte section headers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from memfs.kernel.paging import KERNEL_HALF, AddressSpace
from memfs.memory import PAGE_SIZE

KERNEL_NAMES = (b"ntoskrnl.exe", b"ntkrnlmp.exe", b"ntkrnlpa.exe", b"ntkrpamp.exe")
MAX_IMAGE = 256 << 20
MAX_EXPORTS = 0x10000

# Where to look first: the classic kernel ranges (x64 0xFFFFF800`00000000.., x86 0x80000000..).
_PREFERRED = {"x64": (0xFFFFF80000000000, 0xFFFFF80800000000), "pae": (0x80000000, 0xA0000000)}
_PREFERRED["x86"] = _PREFERRED["pae"]
_X86_PAGE_TABLES = (0xC0000000, 0xC0800000)  # the self-mapped page tables (docs/formats/crashdump.md §13)


@dataclass
class PeImage:
    """A mapped PE image: base VA, size, sections ``{name: (rva, size)}`` and export directory."""

    base: int
    size: int
    name: bytes
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)
    export_rva: int = 0
    export_size: int = 0

    def section(self, name: str) -> tuple[int, int] | None:
        """``(va, size)`` of a section, or None."""
        entry = self.sections.get(name)
        return None if entry is None else (self.base + entry[0], entry[1])


def _cstring(data: bytes) -> bytes:
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def parse_pe(space: AddressSpace, base: int) -> PeImage | None:
    """Parse the PE headers mapped at ``base``; None if they are not a sane PE image."""
    head = space.read(base, PAGE_SIZE)
    if head is None or head[:2] != b"MZ":
        return None
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if not 0x40 <= lfanew <= PAGE_SIZE - 0x100 or head[lfanew : lfanew + 4] != b"PE\0\0":
        return None
    _, nsections, _, _, _, opt_size, _ = struct.unpack_from("<HHIIIHH", head, lfanew + 4)
    opt = lfanew + 24
    (magic,) = struct.unpack_from("<H", head, opt)
    if magic not in (0x10B, 0x20B) or nsections > 96:
        return None
    (size,) = struct.unpack_from("<I", head, opt + 0x38)
    if not PAGE_SIZE <= size <= MAX_IMAGE:
        return None
    dirs = opt + (0x70 if magic == 0x20B else 0x60)
    export_rva, export_size = struct.unpack_from("<II", head, dirs)
    image = PeImage(base, size, b"", export_rva=export_rva, export_size=export_size)
    table = opt + opt_size
    for i in range(nsections):
        off = table + 40 * i
        if off + 40 > PAGE_SIZE:
            break
        name, vsize, rva = struct.unpack_from("<8sII", head, off)
        image.sections.setdefault(_cstring(name).decode("latin-1"), (rva, vsize))
    if 0 < export_rva < size:
        directory = space.read(base + export_rva, 40)
        if directory is not None:
            (name_rva,) = struct.unpack_from("<I", directory, 12)
            name = space.read(base + name_rva, 32) if 0 < name_rva < size else None
            image.name = _cstring(name or b"").lower()
    return image


def exports(space: AddressSpace, image: PeImage) -> dict[str, int]:
    """The image's exports by name, as VAs (bounded; unreadable tables give what was read)."""
    directory = space.read(image.base + image.export_rva, 40) if image.export_rva else None
    if directory is None:
        return {}
    nfuncs, nnames, funcs, names, ords = struct.unpack_from("<IIIII", directory, 0x14)
    nnames = min(nnames, MAX_EXPORTS)
    name_table = space.read(image.base + names, 4 * nnames)
    ord_table = space.read(image.base + ords, 2 * nnames)
    func_table = space.read(image.base + funcs, 4 * min(nfuncs, MAX_EXPORTS))
    if not name_table or not ord_table or not func_table:
        return {}
    result = {}
    for i in range(nnames):
        (name_rva,) = struct.unpack_from("<I", name_table, 4 * i)
        (ordinal,) = struct.unpack_from("<H", ord_table, 2 * i)
        if 4 * ordinal + 4 > len(func_table) or not 0 < name_rva < image.size:
            continue
        name = space.read(image.base + name_rva, 64)
        if name is None:
            continue
        (rva,) = struct.unpack_from("<I", func_table, 4 * ordinal)
        result[_cstring(name).decode("latin-1")] = image.base + rva
    return result


def _is_kernel(space: AddressSpace, va: int) -> PeImage | None:
    image = parse_pe(space, va)
    return image if image is not None and image.name in KERNEL_NAMES else None


def find_kernel(
    space: AddressSpace, memory, hint: int | None = None, page_budget: int = 1 << 18
) -> tuple[PeImage | None, str]:
    """Find the kernel image: backwards from ``hint`` (a VA inside it), else by walking kernel mappings.

    ``memory`` is the physical memory (``read(pa, n)`` and ``next_present(pa)``): probing it directly is
    cheaper than translating every page, and mapped frames that no run of the image backs (device
    memory, or a damaged table's wild entries) are stepped over without a read or a place in the budget.
    Returns the image (or None) and a sentence saying how it was found or how far the search went.
    """
    if hint is not None:
        start = hint & ~(PAGE_SIZE - 1)
        for va in range(start, max(start - (64 << 20), 0), -PAGE_SIZE):
            if space.read(va, 2) == b"MZ":
                image = _is_kernel(space, va)
                if image is not None and va + image.size > hint:
                    return image, f"PE image named {image.name.decode()} found below the hint {hint:#x}"
    mode = space.mode
    lo, hi = KERNEL_HALF[mode]
    ranges = [_PREFERRED[mode], (lo, hi)]
    if mode != "x64":
        ranges = [_PREFERRED[mode], (lo, _X86_PAGE_TABLES[0]), (_X86_PAGE_TABLES[1], hi)]
    checked = 0
    seen: set[int] = set()
    not_mz: set[int] = set()  # frames read once: damaged tables can map one frame at a million VAs
    for start, end in ranges:
        for va, pa, size in space.mappings(start, end):
            for off in _backed_pages(memory, pa, size):
                if va + off in seen or pa + off in not_mz:
                    continue
                seen.add(va + off)
                checked += 1
                if checked > page_budget:
                    return None, f"no kernel image in the first {page_budget} mapped kernel pages (budget)"
                if memory.read(pa + off, 2) != b"MZ":
                    not_mz.add(pa + off)
                else:
                    image = _is_kernel(space, va + off)
                    if image is not None:
                        return image, f"PE image named {image.name.decode()} found by walking kernel mappings"
    return None, f"no PE image named ntoskrnl among {checked} mapped kernel pages"


def _backed_pages(memory, pa: int, size: int):
    """Offsets into the mapping ``[pa, pa + size)`` of the pages the image holds, in order."""
    off = 0
    while off < size:
        present = memory.next_present(pa + off)
        if present is None or present >= pa + size:
            return
        off = max(off, (present - pa) & ~(PAGE_SIZE - 1))
        yield off
        off += PAGE_SIZE
