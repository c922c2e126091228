"""Build the built-in sample image that ``make run`` mounts, and explain what to try with it.

    python3 -m scripts.make_sample DIR            # writes DIR/hiberfil.sys and DIR/IMAGE (its name)
    python3 -m scripts.make_sample --explain DIR  # prints what to do with the mounted sample

The sample is the headline case: a Windows 10 (1809+) x64 hibernation file, compressed with our own
Xpress encoders, of a small synthetic Windows-like memory image (page tables, an ntoskrnl PE image, an
encoded Windows 8+ KDBG, processor blocks, KUSER_SHARED_DATA) with the legacy VGA/BIOS hole left out.
It needs nothing from outside the repository and builds in about a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scripts.make_hiberfil_fixtures import build_from_pages
from scripts.make_windows_image import build_image

SAMPLE_NAME = "hiberfil.sys"
SAMPLE_LAYOUT = "win10-1809-x64"
PAGE = 0x1000
HOLE_PFNS = range(0xA0, 0x100)  # 640 KiB – 1 MiB: never RAM on a PC, so a hole in every real image


def sample_pages() -> dict[int, bytes]:
    """The sample's physical pages ``{pfn: bytes}``: the synthetic Windows image minus the hole."""
    image = build_image(mode="x64", encoded=True, size=32 << 20)
    memory = image.memory
    pages = {pfn: memory[pfn * PAGE : (pfn + 1) * PAGE] for pfn in range(len(memory) // PAGE)}
    for pfn in HOLE_PFNS:
        if any(pages[pfn]):
            raise RuntimeError(f"the sample image uses PFN {pfn:#x}, which the sample leaves as a hole")
        del pages[pfn]
    return pages


def build(directory: Path) -> Path:
    """Write the sample image into ``directory`` and record its name in ``directory/IMAGE``."""
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / SAMPLE_NAME
    image.write_bytes(build_from_pages(SAMPLE_LAYOUT, sample_pages()))
    (directory / "IMAGE").write_text(SAMPLE_NAME + "\n")
    return image


def explain(directory: Path) -> str:
    """What to try once the sample is mounted at ``directory/mnt``."""
    mnt = directory / "mnt"
    image = directory / (directory / "IMAGE").read_text().strip()
    # The memfs command of the environment running this (make's .venv), as the user can type it.
    script = Path(sys.executable).parent / "memfs"
    memfs = os.path.relpath(script) if script.exists() else "python3 -m memfs"
    return f"""
The sample {image} (a Windows 10 x64 hibernation file) is mounted on {mnt}. Try:

  ls -l {mnt}                  # header.txt  memory.dmp  physmem.bin
  cat {mnt}/header.txt         # layout, CR3, KDBG, processors, runs, what is unknown and why
  strings -n 8 {mnt}/physmem.bin | grep -m3 ntoskrnl
  dd if={mnt}/physmem.bin of=/dev/null bs=1M
  {memfs} info {mnt}/memory.dmp        # memfs reads its own crash dump back (so do WinDbg, kdmp-parser)
  {memfs} info {image} --json
  {memfs} convert {image} /tmp/sample.raw --to raw
  {memfs} doctor                          # what this machine has for mounting (libfuse, /dev/fuse, ...)

When done:  make stop      (or: {memfs} umount {mnt})
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--explain", action="store_true", help="print what to try with the mounted sample")
    args = parser.parse_args(argv)
    if args.explain:
        print(explain(args.directory))
    else:
        print(f"sample image: {build(args.directory)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
