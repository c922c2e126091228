"""Seeds for the fuzzer, made by the fixture builders of ``scripts/`` (nothing is stored in the repo).

Two kinds, because mutating a 24 MiB image byte by byte would cost more than the run it feeds:

- *small images* (a few KiB to 128 KiB each): every crash-dump DumpType in 32 and 64 bits, every
  hibernation layout (with a working set of page tables, so kernel discovery finds a CR3), a zeroed
  and a WAKE hibernation header, LiME, ELF (QEMU 32/64, VirtualBox, PN_XNUM), a VMware ``.vmsn``
  with memory inline and a raw file; and the same small images inside every container memfs reads
  (``.zdmp``, Snappy, S2 with and without an index, AVML, gzip, ZIP and tar with the image in a
  subdirectory, EWF when ``ewfacquire`` is installed).  The fuzzer mutates these files directly.
- *bases*: images of a synthetic Windows machine (:mod:`scripts.make_windows_image`) with a real
  kernel, KDBG and processor blocks, as raw files, a crash dump, a hibernation file, an ELF core and a
  VMware ``.vmss`` + ``.vmem`` pair.  The fuzzer mutates a list of patches applied to one of them
  (:mod:`tests.fuzz.target`), which reaches discovery's deeper steps at the cost of a patch.

Builders are deterministic, so a saved fuzz input means the same image on every machine.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PAGE = 0x1000

SMALL_RUNS = [(0x2, 1), (0x10, 2), (0x20, 2)]
"""Crash-dump pages: a hole at 0, runs and holes, all in the first 128 KiB (kernel discovery scans the
whole physical space of an image this small: every page of it costs time on every run)."""


@dataclass(frozen=True)
class Base:
    """A larger image the fuzzer patches: ``target`` (a file name in the base's directory) is mutated,
    ``open`` is the file memfs is asked to open (the same, or e.g. the ``.vmem`` beside a ``.vmss``)."""

    name: str
    target: str
    open: str
    build: Callable[[Path], None]


def _small_crash_dumps(out: Path) -> None:
    import scripts.make_crashdump_fixtures as mk

    for name, kwargs in mk.FIXTURES.items():
        mk.build_dump(
            out / f"crashdump-{name}", runs=SMALL_RUNS if kwargs["dump_type"] != 4 else None, **kwargs
        )


def _small_pages(mode: str, low_stub: bool) -> dict[int, bytes]:
    from scripts.make_hiberfil_fixtures import paging_pages, source_pages

    pages = {pfn: data for pfn, data in source_pages(0xA2, 5, low_stub).items() if pfn in (0, 1, 2, 0x30)}
    pages.update(paging_pages(mode))
    return pages


def _small_hiberfils(out: Path) -> None:
    from memfs.memory import PAGE_SIZE as HIBER_PAGE
    from scripts.make_hiberfil_fixtures import LAYOUTS, build_from_pages, paging_mode

    for key in LAYOUTS:
        mode = paging_mode(key)
        data = build_from_pages(key, _small_pages(mode, low_stub=False), seed=3)
        (out / f"hiberfil-{key}").write_bytes(data)
    for key in ("win7-x64", "win10-1809-x64"):
        data = bytearray(build_from_pages(key, _small_pages("x64", low_stub=True), seed=4))
        zeroed = bytes(HIBER_PAGE) + data[HIBER_PAGE:]
        (out / f"hiberfil-{key}-zeroed").write_bytes(zeroed)
        data[:4] = b"WAKE"
        (out / f"hiberfil-{key}-wake").write_bytes(bytes(data))


def _small_others(out: Path) -> None:
    from scripts.make_other_fixtures import build_elf, build_lime, build_vmware

    build_lime(out / "lime", [(0, 0x2000), (0x8000, 0x1000)])
    build_lime(out / "lime-unordered", [(0, 0x1000), (0x3000, 0x1000), (0x6000, 0x1000)], [2, 0, 1])
    build_elf(out / "elf64-qemu", [(0, 0x2000), (0x100000000, 0x1000)], file_order=[1, 0])
    build_elf(out / "elf32-qemu", [(0, 0x2000)], bits=32, cr3=0x1000, cpus=1)
    build_elf(out / "elf64-vbox", [(0, 0x1000)], notes="vbox", mmio=[(0xE0000000, 0x100000)], cpus=2)
    build_elf(out / "elf64-xnum", [(0, 0x1000)], notes=None, xnum=True)
    vm = out / "vm"
    build_vmware(vm, "inline", [(0, 2), (0x10, 1)], meta_suffix=".vmsn", inline=True)
    build_vmware(vm, "old", [(0, 1)], meta_suffix=".vmsn", inline=True, magic=0xBED0BED0)
    for path in vm.iterdir():
        shutil.move(path, out / f"vmware-{path.name}")
    vm.rmdir()
    (out / "raw").write_bytes(bytes(range(256)) * 32)


def _small_containers(out: Path) -> None:
    """Small images from the seeds above, wrapped by the container fixture builders."""
    import gzip

    import scripts.make_container_fixtures as mc
    from scripts.make_zdmp_fixtures import build_zdmp

    dump = (out / "crashdump-full64.dmp").read_bytes() if (out / "crashdump-full64.dmp").exists() else None
    dump = dump or next(p for p in sorted(out.iterdir()) if p.name.startswith("crashdump-")).read_bytes()
    hiberfil = (out / "hiberfil-win10-1809-x64").read_bytes()
    raw = (out / "raw").read_bytes()
    build_zdmp(out / "container-zdmp", dump, 0x4000, stored=(1,))
    (out / "container-snappy").write_bytes(mc.snappy_stream(raw + dump[:0x4000], block=0x1000))
    (out / "container-s2").write_bytes(mc.s2_stream(raw, block=0x1000))
    (out / "container-s2-index").write_bytes(mc.s2_stream(raw, block=0x1000, index=True, index_every=0x1000))
    (out / "container-avml").write_bytes(mc.avml_image([(0, raw[:0x2000]), (0x8000, raw[:0x1000])]))
    (out / "container-gzip").write_bytes(gzip.compress(dump, compresslevel=1, mtime=0))
    (out / "container-zip").write_bytes(mc._zip({"C/hiberfil.sys": hiberfil, "C/notes.txt": b"triage"}))
    (out / "container-zip-stored").write_bytes(mc._zip({"C/hiberfil.sys": hiberfil}, zipfile.ZIP_STORED))
    (out / "container-tar").write_bytes(mc._tar({"mem/MEMORY.DMP": dump}))
    ewf = mc.ewf_image(out, "container-ewf", raw, 1 << 20)
    if ewf is not None:
        ewf.rename(out / "container-ewf")


def build_small(out: Path) -> list[Path]:
    """Write the small seed images into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    _small_crash_dumps(out)
    _small_hiberfils(out)
    _small_others(out)
    _small_containers(out)
    return sorted(out.iterdir())


# -- bases ------------------------------------------------------------------------------------------------

WINDOWS_SIZE = 24 << 20
"""Enough for every structure make_windows_image places (its highest region starts at 20 MiB)."""


def _windows(mode: str = "x64", encoded: bool = False, low_stub: bool = True):
    from scripts.make_windows_image import build_image

    return build_image(mode=mode, encoded=encoded, low_stub=low_stub, size=WINDOWS_SIZE)


def _raw(mode: str, encoded: bool = False) -> Callable[[Path], None]:
    def build(directory: Path) -> None:
        (directory / "image.raw").write_bytes(_windows(mode, encoded).memory)

    return build


def _crash_dump(directory: Path) -> None:
    from memfs.kernel.discover import discover
    from memfs.memory import BufferSource
    from memfs.views.memory_dmp import MemoryDmpFile

    image = _windows("x64", encoded=True)
    source = BufferSource([(0, image.memory)])
    dump = MemoryDmpFile(source, discover(source))
    (directory / "MEMORY.DMP").write_bytes(dump.read(0, dump.size))


def _hiberfil(directory: Path) -> None:
    from scripts.make_hiberfil_fixtures import build_from_pages

    image = _windows("x64", encoded=True)
    zero = bytes(PAGE)
    pages = {
        pa // PAGE: image.memory[pa : pa + PAGE]
        for pa in range(0, len(image.memory), PAGE)
        if image.memory[pa : pa + PAGE] != zero
    }
    (directory / "hiberfil.sys").write_bytes(build_from_pages("win10-1809-x64", pages, seed=6))


HOLE = (0x9F000, 0x100000)


def _elf(directory: Path) -> None:
    from scripts.make_other_fixtures import build_elf

    image = _windows("x64", encoded=True, low_stub=False)
    runs = [(0, HOLE[0]), (HOLE[1], WINDOWS_SIZE - HOLE[1])]
    build_elf(directory / "core.elf", runs, memory=image.memory, cr3=image.dtb, file_order=[1, 0])


def _vmware(directory: Path) -> None:
    from scripts.make_other_fixtures import build_vmware

    image = _windows("pae")
    regions = [(0, HOLE[0] // PAGE), (HOLE[1] // PAGE, (WINDOWS_SIZE - HOLE[1]) // PAGE)]
    build_vmware(directory, "vm", regions, memory=image.memory, cr3=image.dtb, cr4=0x6F9)


BASES = [
    Base("windows-x64-raw", "image.raw", "image.raw", _raw("x64")),
    Base("windows-x64-encoded-raw", "image.raw", "image.raw", _raw("x64", encoded=True)),
    Base("windows-pae-raw", "image.raw", "image.raw", _raw("pae")),
    Base("windows-x86-raw", "image.raw", "image.raw", _raw("x86")),
    Base("windows-crashdump", "MEMORY.DMP", "MEMORY.DMP", _crash_dump),
    Base("windows-hiberfil", "hiberfil.sys", "hiberfil.sys", _hiberfil),
    Base("windows-elf", "core.elf", "core.elf", _elf),
    Base("windows-vmware", "vm.vmss", "vm.vmem", _vmware),
]
"""The patchable images, in the order the fuzz input's first byte selects them (append only: saved
inputs name a base by its position)."""


def build_bases(out: Path) -> dict[str, Path]:
    """Write every base into its own directory under ``out`` (once); return base name -> directory."""
    made = {}
    for base in BASES:
        directory = out / base.name
        if not (directory / base.target).exists():
            directory.mkdir(parents=True, exist_ok=True)
            base.build(directory)
        made[base.name] = directory
    return made
