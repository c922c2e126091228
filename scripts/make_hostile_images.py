"""Build small crafted memory images that would make an unbounded kernel-discovery scan run for minutes.

``aliased_kernel(path)`` writes a raw x64 image of six pages whose page tables map the *whole* kernel
half of the address space onto one physical page (every PML4 entry of the kernel half points at one
PDPT, each of its 512 entries at one page directory, each of those at one page table, each of those at
the data page).  The Intel SDM 4-level format is written out here byte by byte (present and writable
bits, 4 KiB-aligned frame addresses; docs/formats/crashdump.md §11), not taken from memfs:

- PA 0x1000: the PML4, with the x64 self-map entry at index 0x1ED (so the self-map scan accepts it)
  and every other kernel-half entry pointing at the PDPT;
- PA 0x2000, 0x3000, 0x4000: PDPT, page directory, page table, every entry pointing one level down;
- PA 0x5000: the page every kernel virtual address reads: an ``MZ``/``PE`` header whose export
  directory names the image ``ntoskrnl.exe`` with SizeOfImage 256 MiB (the largest a scan accepts),
  and the rest of the page filled with ``KDBG`` tags whose block Size is invalid.

KUSER_SHARED_DATA therefore maps to a present page, the kernel image is "found" at the first kernel
address, and a scan of its 65536 pages meets some 500 KDBG candidates per page, none valid: tens of
millions of virtual reads, minutes of work for an unbounded search — and the whole file is 24 KiB.

Usage: ``python3 -m scripts.make_hostile_images OUT.raw``.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

PAGE = 0x1000
PML4, PDPT, PD, PT, DATA = 0x1000, 0x2000, 0x3000, 0x4000, 0x5000
SELF_MAP_INDEX = 0x1ED
PRESENT_WRITABLE = 0x3
IMAGE_SIZE = 256 << 20

# The PE layout of the data page (offsets inside it).
E_LFANEW = 0x80
EXPORT_RVA = 0x300
NAME_RVA = 0x340
TAGS_FROM = 0x400


def _table(entries: dict[int, int]) -> bytes:
    page = bytearray(PAGE)
    for index, target in entries.items():
        struct.pack_into("<Q", page, index * 8, target | PRESENT_WRITABLE)
    return bytes(page)


def _data_page() -> bytes:
    page = bytearray(PAGE)
    page[0:2] = b"MZ"
    struct.pack_into("<I", page, 0x3C, E_LFANEW)
    page[E_LFANEW : E_LFANEW + 4] = b"PE\0\0"
    # COFF header: machine AMD64, no sections, SizeOfOptionalHeader 0xF0.
    struct.pack_into("<HHIIIHH", page, E_LFANEW + 4, 0x8664, 0, 0, 0, 0, 0xF0, 0x22)
    optional = E_LFANEW + 24
    struct.pack_into("<H", page, optional, 0x20B)  # PE32+
    struct.pack_into("<I", page, optional + 0x38, IMAGE_SIZE)  # SizeOfImage
    struct.pack_into("<II", page, optional + 0x70, EXPORT_RVA, 0x40)  # export data directory
    struct.pack_into("<I", page, EXPORT_RVA + 12, NAME_RVA)  # IMAGE_EXPORT_DIRECTORY.Name
    page[NAME_RVA : NAME_RVA + 13] = b"ntoskrnl.exe\0"
    for off in range(TAGS_FROM, PAGE, 8):  # 'KDBG' OwnerTag at +0x10 of a block, Size 0 after it
        page[off : off + 4] = b"KDBG"
    return bytes(page)


def aliased_kernel_bytes() -> bytes:
    """The image's bytes (see the module docstring)."""
    pml4 = {index: PDPT for index in range(0x100, 0x200)}
    pml4[SELF_MAP_INDEX] = PML4
    pages = [
        bytes(PAGE),
        _table(pml4),
        _table(dict.fromkeys(range(512), PD)),
        _table(dict.fromkeys(range(512), PT)),
        _table(dict.fromkeys(range(512), DATA)),
        _data_page(),
    ]
    return b"".join(pages)


def aliased_kernel(path: str | Path) -> Path:
    """Write the image to ``path`` and return it."""
    path = Path(path)
    path.write_bytes(aliased_kernel_bytes())
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the raw image to write")
    print(aliased_kernel(parser.parse_args(argv).out))


if __name__ == "__main__":
    main()
