"""Build the built-in sample image that ``make run`` mounts, and explain what to try with it.

    python3 -m scripts.make_sample DIR            # writes DIR/<image> and DIR/IMAGE (its name)
    python3 -m scripts.make_sample --explain DIR  # prints what to do with the mounted sample

The sample is a small synthetic 64-bit Windows crash dump (bitmap type, with holes) built by the
same fixture builder the tests use, so it needs nothing from outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.make_crashdump_fixtures import build_dump

SAMPLE_NAME = "MEMORY.DMP"


def build(directory: Path) -> Path:
    """Write the sample image into ``directory`` and record its name in ``directory/IMAGE``."""
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / SAMPLE_NAME
    build_dump(image, width=64, dump_type=5)
    (directory / "IMAGE").write_text(SAMPLE_NAME + "\n")
    return image


def explain(directory: Path) -> str:
    """What to try once the sample is mounted at ``directory/mnt``."""
    mnt = directory / "mnt"
    image = directory / (directory / "IMAGE").read_text().strip()
    return f"""
The sample {image} is mounted on {mnt}. Try:

  ls -l {mnt}
  cat {mnt}/header.txt                 # format, kernel values, run table, what is unknown and why
  xxd -s 0x2000 -l 64 {mnt}/physmem.bin
  strings -n 8 {mnt}/physmem.bin | head
  dd if={mnt}/physmem.bin of=/dev/null bs=1M
  python3 -m memfs info {image} --json

When done:  make stop      (or: python3 -m memfs umount {mnt})
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
