"""Virtual-to-physical translation in the three paging modes, against the builder's own mapping."""

from __future__ import annotations

import random
import struct

import pytest

from memfs.kernel.paging import AddressSpace, canonical
from memfs.memory import BufferSource


def _space(image) -> AddressSpace:
    return AddressSpace(BufferSource([(0, image.memory)]).read, image.dtb, image.mode)


@pytest.mark.parametrize("name", ["x64", "pae", "x86"])
def test_every_mapped_page_translates_like_the_builder(windows_images, name) -> None:
    image = windows_images[name]
    space = _space(image)
    assert len(image.va_to_pa) > 1000
    for va, pa in image.va_to_pa.items():
        assert space.translate(va + 0x123) == pa + 0x123, hex(va)


@pytest.mark.parametrize("name", ["x64", "pae", "x86"])
def test_unmapped_addresses(windows_images, name) -> None:
    image = windows_images[name]
    space = _space(image)
    unmapped = image.kernel_base + image.kernel_size + 0x10000
    assert space.translate(unmapped) is None
    assert space.read(unmapped, 8) is None
    # a read crossing from a mapped into an unmapped page fails as a whole
    assert space.read(image.kernel_base + image.kernel_size - 4, 8) is None
    if image.mode == "x64":
        assert space.translate(0x0000900000000000) is None  # not canonical
    else:
        assert space.translate(1 << 32) is None


@pytest.mark.parametrize("name", ["x64", "pae", "x86"])
def test_mapping_walk_lists_the_builder_mappings(windows_images, name) -> None:
    image = windows_images[name]
    space = _space(image)
    walked = {}
    for va, pa, size in space.mappings(image.kernel_base, 1 << 64):
        for off in range(0, size, 0x1000):
            walked[va + off] = pa + off
    expected = {va: pa for va, pa in image.va_to_pa.items() if va >= image.kernel_base}
    assert {va: walked.get(va) for va in expected} == expected


def test_x64_one_gib_page_and_nx_bit() -> None:
    mem = bytearray(0x4000)
    struct.pack_into("<Q", mem, 0x1000 + 0x1FF * 8, 0x2000 | 3)  # PML4[511] -> PDPT
    struct.pack_into("<Q", mem, 0x2000 + 0x1FE * 8, (1 << 63) | 0x40000000 | 0x83)  # 1 GiB page at 1 GiB
    space = AddressSpace(BufferSource([(0, bytes(mem))]).read, 0x1000, "x64")
    va = 0xFFFFFFFF80000000 + 0x12345678
    assert space.translate(va) == 0x40000000 + 0x12345678
    assert canonical(0x0000FFFF80000000) == 0xFFFFFFFF80000000


def test_non_pae_4mib_page_with_pse36_bits() -> None:
    mem = bytearray(0x2000)
    struct.pack_into("<I", mem, 0x1000 + 0x300 * 4, 0x00C00000 | (0x3 << 13) | 0xE3)
    space = AddressSpace(BufferSource([(0, bytes(mem))]).read, 0x1000, "x86")
    assert space.translate(0xC0012345) == (3 << 32) | 0x00C00000 | 0x12345


@pytest.mark.parametrize("mode", ["x64", "pae", "x86"])
def test_garbage_tables_never_raise(mode) -> None:
    rng = random.Random(7)
    memory = rng.randbytes(0x40000)
    space = AddressSpace(BufferSource([(0, memory)]).read, 0x20000, mode)
    for _ in range(2000):
        va = rng.getrandbits(64 if mode == "x64" else 32)
        pa = space.translate(va)
        assert pa is None or pa >= 0
    assert sum(1 for _ in space.mappings(0, 1 << 64, budget=5000)) >= 0


def test_kernel_search_steps_over_frames_the_image_does_not_hold() -> None:
    """A 1 GiB page of device memory (or a wild entry) costs no reads and no place in the page budget."""
    from memfs.kernel.pe import find_kernel

    mem = bytearray(0x4000)
    struct.pack_into("<Q", mem, 0x1000 + 0x1F0 * 8, 0x2000 | 3)  # PML4[496] -> PDPT (0xFFFFF800`00000000)
    struct.pack_into("<Q", mem, 0x2000, 0x40000000 | 0x83)  # a 1 GiB page at 1 GiB: nothing backs it
    source = BufferSource([(0, bytes(mem))])
    reads = []

    class Counting:
        def read(self, pa, n):
            reads.append(pa)
            return source.read(pa, n)

        next_present = staticmethod(source.next_present)

    space = AddressSpace(source.read, 0x1000, "x64")
    image, how = find_kernel(space, Counting(), page_budget=16)
    assert image is None
    assert how == "no PE image named ntoskrnl among 0 mapped kernel pages"
    assert reads == []


def test_kernel_search_reads_a_frame_mapped_many_times_once() -> None:
    """Damaged tables mapping one frame at every VA of a table (found by the fuzzer: 262,144 probes of a
    few frames, 12 s instrumented) read that frame once; the walk's own entry budget bounds the rest."""
    from memfs.kernel.pe import find_kernel

    mem = bytearray(0x5000)
    struct.pack_into("<Q", mem, 0x1000 + 0x1F0 * 8, 0x2000 | 3)  # PML4[496] -> PDPT
    struct.pack_into("<Q", mem, 0x2000, 0x3000 | 3)  # PDPT[0] -> PD
    struct.pack_into("<Q", mem, 0x3000, 0x4000 | 3)  # PD[0] -> PT
    for index in range(512):
        struct.pack_into("<Q", mem, 0x4000 + 8 * index, 0x4000 | 3)  # every PTE maps the same frame
    source = BufferSource([(0, bytes(mem))])
    reads = []

    class Counting:
        def read(self, pa, n):
            reads.append(pa)
            return source.read(pa, n)

        next_present = staticmethod(source.next_present)

    space = AddressSpace(source.read, 0x1000, "x64")
    image, how = find_kernel(space, Counting(), page_budget=1000)
    assert image is None and how == "no PE image named ntoskrnl among 1 mapped kernel pages"
    assert reads == [0x4000]


def test_a_table_shared_by_many_entries_is_walked_once() -> None:
    """Every entry of a directory pointing at one page table (damaged or crafted; real hierarchies do not
    share tables) yields that table's mappings once, not 512 times (a fuzz input: a 2^20-entry walk)."""
    mem = bytearray(0x5000)
    struct.pack_into("<Q", mem, 0x1000 + 0x1F0 * 8, 0x2000 | 3)  # PML4[496] -> PDPT
    struct.pack_into("<Q", mem, 0x2000, 0x3000 | 3)  # PDPT[0] -> PD
    for index in range(512):
        struct.pack_into("<Q", mem, 0x3000 + 8 * index, 0x4000 | 3)  # every PDE -> the same PT
    for index in range(4):
        struct.pack_into("<Q", mem, 0x4000 + 8 * index, (0x10 + index) << 12 | 3)
    space = AddressSpace(BufferSource([(0, bytes(mem))]).read, 0x1000, "x64")
    base = 0xFFFFF80000000000
    found = list(space.mappings(base, base + (1 << 39)))
    assert found == [(base + i * 0x1000, (0x10 + i) << 12, 0x1000) for i in range(4)]
