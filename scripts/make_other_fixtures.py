"""Build small LiME, ELF-core and VMware fixtures with known physical memory.

Every builder writes an image whose physical memory is made of :func:`page_pattern` pages (each
16-byte line holds its own physical address, so a misplaced page is obvious) and returns a
:class:`Fixture` saying what each physical page must contain; :meth:`Fixture.read` is the reference
reader tests compare memfs against.  Formats follow the notes in the readers' docstrings
(``memfs/formats/lime.py``, ``elf.py``, ``vmware.py``).

VMware fixtures may describe gigabytes of guest memory (the PCI-hole layout needs a region above
4 GiB): the ``.vmem`` is then created sparse with ``truncate`` and only the pages listed in
``Fixture.pages`` are written, so it costs a few KiB of disk.

Run by hand: ``python3 -m scripts.make_other_fixtures OUT_DIR`` writes the standard set.
"""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 0x1000

# -- reference content -----------------------------------------------------------------------


def page_pattern(pa: int, salt: int = 0) -> bytes:
    """4 KiB whose 16-byte lines read ``(line address, ~line address ^ salt)``: unique per page."""
    mask = (1 << 64) - 1
    return b"".join(struct.pack("<QQ", addr, (~addr ^ salt) & mask) for addr in range(pa, pa + PAGE, 16))


@dataclass
class Fixture:
    """An image on disk and the physical memory it must yield.

    ``runs`` are the present ranges a reader should report (sorted); ``pages`` maps a page address
    to its content (pages of a run not listed read as zeros: the unwritten parts of a sparse file).
    """

    path: Path
    runs: list[tuple[int, int]]
    pages: dict[int, bytes]
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return max(start + length for start, length in self.runs)

    def read(self, pa: int, n: int) -> bytes:
        """What physmem must hold at ``pa`` (clamped at ``size``; holes are zeros)."""
        n = max(0, min(n, self.size - pa))
        out = bytearray(n)
        first = pa - pa % PAGE
        for page in range(first, pa + n, PAGE):
            data = self.pages.get(page)
            if data is None:
                continue
            lo, hi = max(page, pa), min(page + PAGE, pa + n)
            out[lo - pa : hi - pa] = data[lo - page : hi - page]
        return bytes(out)

    def image_bytes(self) -> bytes:
        """The whole physical image (only for small fixtures)."""
        return self.read(0, self.size)


ZERO_PAGE = bytes(PAGE)


def _pages_of(runs: list[tuple[int, int]], salt: int = 0, memory: bytes | None = None) -> dict[int, bytes]:
    """Content of every page of ``runs``: :func:`page_pattern`, or the non-zero pages of ``memory``."""
    if memory is None:
        return {
            pa: page_pattern(pa, salt) for start, length in runs for pa in range(start, start + length, PAGE)
        }
    pages = {}
    for start, length in runs:
        for pa in range(start, start + length, PAGE):
            data = memory[pa : pa + PAGE]
            if data != ZERO_PAGE:
                pages[pa] = data
    return pages


def _merge(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, length in sorted(runs):
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1][1] += length
        else:
            merged.append([start, length])
    return [(s, n) for s, n in merged]


# -- LiME ------------------------------------------------------------------------------------

LIME_HEADER = struct.Struct("<IIQQ8s")
LIME_MAGIC = 0x4C694D45


def lime_header(start: int, length: int, magic: int = LIME_MAGIC, version: int = 1) -> bytes:
    """A LiME v1 range header; ``e_addr`` is inclusive."""
    return LIME_HEADER.pack(magic, version, start, start + length - 1, bytes(8))


def build_lime(
    path: Path,
    ranges: list[tuple[int, int]],
    file_order: list[int] | None = None,
    memory: bytes | None = None,
) -> Fixture:
    """LiME file with ``ranges`` (pa, bytes), written in ``file_order`` (indices; default as given).

    ``memory`` (a physical image) supplies the page contents instead of :func:`page_pattern`.
    """
    order = file_order if file_order is not None else list(range(len(ranges)))
    pages = _pages_of(ranges, memory=memory)
    with open(path, "wb") as out:
        for index in order:
            start, length = ranges[index]
            out.write(lime_header(start, length))
            for pa in range(start, start + length, PAGE):
                if pa in pages:
                    out.write(pages[pa])
                else:
                    out.seek(PAGE, os.SEEK_CUR)  # a zero page: leave a hole in the file
        out.truncate()
    return Fixture(Path(path), _merge(ranges), pages)


LIME_RANGES = [(0x0, 0x9F000), (0x100000, 0x40000), (0x1000000, 0x10000)]


# -- ELF cores ---------------------------------------------------------------------------------

EM_386, EM_X86_64 = 3, 62
PT_LOAD, PT_NOTE = 1, 4


def _note(name: bytes, ntype: int, desc: bytes) -> bytes:
    """An ELF note as QEMU writes it: header, NUL-terminated name and descriptor, each padded to 4."""
    pad = lambda b: b + bytes(-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name) + 1, len(desc), ntype) + pad(name + b"\0") + pad(desc)


def _vbox_note(name: bytes, ntype: int, desc: bytes) -> bytes:
    """An ELF note as VirtualBox writes it (DBGFCoreWrite.cpp Elf64WriteNoteHdr): ``n_namesz`` without
    the NUL, name and descriptor padded to 8, ``n_descsz`` the padded size."""
    pad = lambda b: b + bytes(-len(b) % 8)  # noqa: E731
    return struct.pack("<III", len(name), len(pad(desc)), ntype) + pad(name + b"\0") + pad(desc)


def qemu_cpu_state(cr3: int, rip: int, cr4: int = 0x6F0, cr0: int = 0x80050033) -> bytes:
    """QEMUCPUState version 1 (QEMU target/i386/arch_dump.c): 432 bytes."""
    gprs = [0x1000 + i for i in range(16)]  # rax rbx rcx rdx rsi rdi rsp rbp r8..r15
    state = struct.pack("<II", 1, 432) + struct.pack("<18Q", *gprs, rip, 0x246)
    segments = [struct.pack("<IIIIQ", 0x10 + 8 * i, 0xFFFFFFFF, 0, 0, 0x7000 * i) for i in range(10)]
    state += b"".join(segments) + struct.pack("<5Q", cr0, 0, 0xDEAD000, cr3, cr4)
    assert len(state) == 432
    return state


def vbox_cpu(cr3: int, rip: int, efer: int = 0xD01, cr4: int = 0x6F8) -> bytes:
    """DBGFCORECPU prefix (VirtualBox dbgfcorefmt.h) up to and including msrEFER, zero-padded."""
    gprs = [0x2000 + i for i in range(14)]  # rax rbx rcx rdx rsi rdi r8..r15
    cpu = struct.pack("<18Q", *gprs, rip, 0xFFFF8000, 0xFFFF9000, 0x202)
    cpu += bytes(6 * 24) + struct.pack("<4Q", 0x80050031, 0, cr3, cr4)
    cpu += bytes(8 * 8 + 2 * 16 + 2 * 24 + 3 * 8) + struct.pack("<Q", efer)
    return cpu + bytes(64)


def build_elf(
    path: Path,
    segments: list[tuple[int, int]],
    *,
    bits: int = 64,
    notes: str | None = "qemu",
    cr3: int = 0x1AB000,
    cpus: int = 2,
    file_order: list[int] | None = None,
    mmio: list[tuple[int, int]] = (),  # type: ignore[assignment]
    xnum: bool = False,
    memory: bytes | None = None,
) -> Fixture:
    """An ELF core: PT_NOTE first, then one PT_LOAD per segment (pa, bytes), data page aligned.

    ``notes`` is ``"qemu"`` (CORE + QEMU notes, cr3 of CPU i = cr3 + i*0x1000), ``"vbox"`` (VBCORE +
    VBCPU) or None.  ``mmio`` adds PT_LOADs with no file data (VirtualBox MMIO).  ``xnum`` stores the
    program header count in section header 0 (PN_XNUM).  ``memory`` supplies page contents (zero
    pages are left as file holes).
    """
    order = file_order if file_order is not None else list(range(len(segments)))
    pages = _pages_of(segments, memory=memory)
    note_blob = b""
    if notes == "qemu":
        note_blob += b"".join(_note(b"CORE", 1, bytes(336)) for _ in range(cpus))
        note_blob += b"".join(
            _note(b"QEMU", 0, qemu_cpu_state(cr3 + i * PAGE, 0xFFFFF80000001000 + i)) for i in range(cpus)
        )
    elif notes == "vbox":
        descriptor = struct.pack("<6I", 0xC01AC0DE, 0x00010006, 24, (7 << 24) | (0 << 16) | 12, 159484, cpus)
        note_blob += _vbox_note(b"VBCORE", 0xB00, descriptor)
        note_blob += b"".join(
            _vbox_note(b"VBCPU", 0xB01, vbox_cpu(cr3 + i * PAGE, 0x401000 + i)) for i in range(cpus)
        )
    loads = len(segments) + len(mmio)
    phnum = loads + (1 if note_blob else 0)
    ehsize, phentsize, shentsize = (52, 32, 40) if bits == 32 else (64, 56, 64)
    phoff = ehsize
    notes_off = phoff + phnum * phentsize
    shoff = notes_off + len(note_blob) if xnum else 0
    data_off = -(-(shoff + shentsize if xnum else notes_off + len(note_blob)) // PAGE) * PAGE
    offsets = {}
    pos = data_off
    for index in order:
        offsets[index] = pos
        pos += segments[index][1]
    e_phnum = 0xFFFF if xnum else phnum
    machine = EM_386 if bits == 32 else EM_X86_64
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1, 1]) + bytes(9)
    # e_type e_machine e_version e_entry e_phoff e_shoff e_flags e_ehsize e_phentsize e_phnum e_shentsize
    # e_shnum e_shstrndx: only e_entry, e_phoff and e_shoff are address-sized.
    shnum = 1 if xnum else 0
    ehdr_fields = (4, machine, 1, 0, phoff, shoff, 0, ehsize, phentsize, e_phnum, shentsize, shnum, 0)
    if bits == 32:
        ehdr = ident + struct.pack("<HHIIIIIHHHHHH", *ehdr_fields)
        phdr = lambda t, off, pa, fs, ms: struct.pack("<IIIIIIII", t, off, 0, pa, fs, ms, 4, 0)  # noqa: E731
    else:
        ehdr = ident + struct.pack("<HHIQQQIHHHHHH", *ehdr_fields)
        phdr = lambda t, off, pa, fs, ms: struct.pack("<IIQQQQQQ", t, 4, off, 0, pa, fs, ms, 0)  # noqa: E731
    table = b""
    if note_blob:
        table += phdr(PT_NOTE, notes_off, 0, len(note_blob), len(note_blob))
    for index, (pa, length) in enumerate(segments):
        table += phdr(PT_LOAD, offsets[index], pa, length, length)
    for pa, length in mmio:
        table += phdr(PT_LOAD, pos, pa, 0, length)
    with open(path, "wb") as out:
        out.write(ehdr + table + note_blob)
        if xnum:
            shdr = (
                struct.pack("<IIIIIIIIII", 0, 0, 0, 0, 0, 0, 0, phnum, 0, 0)
                if bits == 32
                else struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, phnum, 0, 0)
            )
            out.seek(shoff)
            out.write(shdr)
        out.truncate(pos)
        for index in order:
            pa, length = segments[index]
            for page in range(pa, pa + length, PAGE):
                if page in pages:
                    out.seek(offsets[index] + page - pa)
                    out.write(pages[page])
    return Fixture(Path(path), _merge(segments), pages, {"cr3": cr3, "cpus": cpus, "phoff": phoff})


ELF_SEGMENTS = [(0x0, 0xA0000), (0x100000, 0x30000), (0x7FF000, 0x2000), (0x100000000, 0x8000)]


# -- VMware ------------------------------------------------------------------------------------

VMW_MAGIC = 0xBED2BED2


def vmw_tag(
    name: str,
    value: int | None = None,
    indices: tuple[int, ...] = (),
    size: int = 4,
    block: bytes | None = None,
    wide: bool = True,
) -> bytes:
    """One checkpoint tag (crash vmware_vmss.h layout): a ``size``-byte value, or an uncompressed block.

    Block sizes are u64, or u32 when not ``wide`` (the old 0xbed0bed0 format, per volatility3).
    """
    raw_name = name.encode()
    value_size = 63 if block is not None else size
    head = struct.pack("<H", (len(raw_name) << 8) | (len(indices) << 6) | value_size) + raw_name
    head += b"".join(struct.pack("<I", i) for i in indices)
    if block is not None:
        return head + struct.pack("<QQH" if wide else "<IIH", len(block), len(block), 0) + block
    assert value is not None
    return head + value.to_bytes(size, "little")


def build_vmss(
    path: Path,
    regions: list[tuple[int, int, int]],
    *,
    cr3: int = 0x1AD000,
    cpus: int = 1,
    memory: bytes | None = None,
    magic: int = VMW_MAGIC,
    cr4: int = 0x406F8,
) -> bytes:
    """A .vmss/.vmsn: groups "Checkpoint", "cpu", "memory"; ``regions`` (page_num, ppn, pages).

    ``memory`` adds a "Memory" block (memory inline).  Returns the file bytes (also written).
    """
    cpu = vmw_tag("cpu:numVCPUs", cpus)
    for i in range(cpus):
        for n, value in enumerate((0x80050033, 0, 0x7FF00000, cr3 + i * PAGE, cr4)):
            cpu += vmw_tag("CR64", value, (i, n), size=8)
        cpu += vmw_tag("rip", 0xFFFFF80000002000 + i, (i,), size=8)
        cpu += vmw_tag("rsp", 0xFFFFF80000003000 + i, (i,), size=8)
    cpu += b"\0\0"
    mem = vmw_tag("align_mask", 0xFFFF)
    if regions:
        mem += vmw_tag("regionsCount", len(regions))
        for i, (page_num, ppn, pages) in enumerate(regions):
            mem += vmw_tag("regionPageNum", page_num, (i,))
            mem += vmw_tag("regionPPN", ppn, (i,))
            mem += vmw_tag("regionSize", pages, (i,))
    if memory is not None:
        mem += vmw_tag("Memory", block=memory, indices=(0, 0), wide=magic != 0xBED0BED0)
    mem += b"\0\0"
    other = vmw_tag("version", 8) + b"\0\0"
    groups = [("Checkpoint", other), ("cpu", cpu), ("memory", mem)]
    table_end = 12 + 80 * len(groups)
    body, table, pos = b"", b"", table_end
    for name, data in groups:
        table += struct.pack("<64sQQ", name.encode(), pos, len(data))
        body += data
        pos += len(data)
    blob = struct.pack("<III", magic, 8, len(groups)) + table + body
    Path(path).write_bytes(blob)
    return blob


def build_vmware(
    directory: Path,
    stem: str,
    regions: list[tuple[int, int]],
    *,
    meta_suffix: str = ".vmss",
    inline: bool = False,
    written: list[int] | None = None,
    vmem_extra: int = 0,
    magic: int = VMW_MAGIC,
    cr4: int = 0x406F8,
    cr3: int = 0x1AD000,
    memory: bytes | None = None,
) -> Fixture:
    """A VMware VM: ``regions`` (ppn, pages) stored back to back in the memory file.

    ``written`` lists the physical pages given content (default: all of them; give a few for a
    sparse multi-GiB ``.vmem``).  ``inline`` puts memory in a .vmsn "Memory" block instead of a .vmem.
    ``vmem_extra`` appends bytes the regions do not cover (a mismatched metadata file).  ``memory``
    (a physical image) supplies the contents of the written pages (its zero pages stay holes).
    """
    directory.mkdir(parents=True, exist_ok=True)
    table, page_num = [], 0
    for ppn, pages in regions:
        table.append((page_num, ppn, pages))
        page_num += pages
    runs = [(ppn * PAGE, pages * PAGE) for ppn, pages in regions]
    if written is None:
        written = [pa for start, length in runs for pa in range(start, start + length, PAGE)]
    if memory is None:
        pages = {pa: page_pattern(pa, salt=0x766D) for pa in written}
    else:
        pages = {pa: memory[pa : pa + PAGE] for pa in written if memory[pa : pa + PAGE] != ZERO_PAGE}

    def file_offset(pa: int) -> int:
        for page_start, ppn, count in table:
            if ppn * PAGE <= pa < (ppn + count) * PAGE:
                return (page_start - ppn) * PAGE + pa
        raise ValueError(f"page {pa:#x} is in no region")

    meta_path = directory / (stem + meta_suffix)
    if inline:
        inline_memory = bytearray(page_num * PAGE)
        for pa, data in pages.items():
            inline_memory[file_offset(pa) : file_offset(pa) + PAGE] = data
        blob = build_vmss(meta_path, table, memory=bytes(inline_memory), magic=magic, cr4=cr4, cr3=cr3)
        image = meta_path
        extra = {"meta": meta_path, "memory_offset": len(blob) - len(inline_memory) - 2}
    else:
        build_vmss(meta_path, table, magic=magic, cr4=cr4, cr3=cr3)
        image = directory / (stem + ".vmem")
        with open(image, "wb") as out:
            out.truncate(page_num * PAGE + vmem_extra)
            for pa, data in sorted(pages.items()):
                out.seek(file_offset(pa))
                out.write(data)
        extra = {"meta": meta_path}
    return Fixture(image, _merge(runs), pages, extra)


GIB = 1 << 30
# A 3 GiB + 32 MiB guest: RAM below the PCI hole at 3 GiB, the rest remapped to 4 GiB.
HOLE_REGIONS = [(0, 3 * GIB // PAGE), (4 * GIB // PAGE, 0x2000)]
HOLE_WRITTEN = [
    0,
    PAGE,
    0x9F000,
    3 * GIB - 2 * PAGE,
    3 * GIB - PAGE,
    4 * GIB,
    4 * GIB + PAGE,
    4 * GIB + 0x1FFF000,
]
SMALL_REGIONS = [(0, 0xA0), (0x100, 0x40), (0x400, 0x10)]


def build_all(out: Path) -> dict[str, Fixture]:
    """The standard set, by name."""
    out.mkdir(parents=True, exist_ok=True)
    return {
        "lime": build_lime(out / "basic.lime", LIME_RANGES),
        "lime_unordered": build_lime(out / "unordered.lime", LIME_RANGES, [2, 0, 1]),
        "elf64_qemu": build_elf(out / "qemu64.elf", ELF_SEGMENTS, file_order=[3, 1, 0, 2]),
        "elf32_qemu": build_elf(out / "qemu32.elf", ELF_SEGMENTS[:3], bits=32, cr3=0x39000, cpus=1),
        "elf64_vbox": build_elf(
            out / "vbox.elf", ELF_SEGMENTS[:2], notes="vbox", mmio=[(0xE0000000, 0x100000)], cpus=2
        ),
        "elf64_xnum": build_elf(out / "xnum.elf", ELF_SEGMENTS[:2], notes=None, xnum=True),
        "vmware_small": build_vmware(out / "vm_small", "Win7-Snapshot1", SMALL_REGIONS),
        "vmware_hole": build_vmware(out / "vm_hole", "Win10-abc", HOLE_REGIONS, written=HOLE_WRITTEN),
        "vmware_inline": build_vmware(
            out / "vm_inline", "Win7-Snapshot2", SMALL_REGIONS, meta_suffix=".vmsn", inline=True
        ),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    for name, fixture in build_all(Path(argv[1])).items():
        disk = os.stat(fixture.path).st_blocks * 512
        print(f"{name:15} {fixture.path}  runs={len(fixture.runs)} size={fixture.size:#x}  disk={disk} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
