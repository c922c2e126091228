"""Write small DumpIt ``.zdmp`` files wrapping the synthetic crash dumps of make_crashdump_fixtures.

The layout is written out here from docs/formats/zdmp.md, not taken from memfs's reader, so the reader
is checked against the format page:

* file header, the first 0x1000 bytes: ``ZDMP``, u32 Version 0x100, u64 FileSize (the decoded size),
  u32 BlockSize, u16 DataType 1 (compressed), u16 CompressionFormat 2 (LZNT1), zeros up to 0x1000;
* blocks from 0x1000, back to back: ``ZBLK``, u32 DataSize, u32 CRC32 (zlib's) of the payload, then the
  payload: the block's LZNT1 stream, or the block itself (DataSize == BlockSize) when compressing it does
  not make it smaller than BlockSize.  The last block holds the rest of FileSize.

LZNT1 streams come from memfs.lznt1.compress, whose own tests check it against Windows-made streams and
dissect.util.

    python3 -m scripts.make_zdmp_fixtures OUT_DIR

:func:`build_zdmp` wraps any bytes; :data:`FIXTURES` names the set the CLI writes (each beside the
inner ``.dmp`` it wraps).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

from memfs import lznt1
from scripts.make_crashdump_fixtures import build_dump

HEADER_AREA = 0x1000


def block_payloads(inner: bytes, block_size: int, stored: Iterable[int] = ()) -> list[bytes]:
    """One payload per block of ``inner``: LZNT1, or the block itself when that is not smaller.

    Blocks listed in ``stored`` are stored whatever their content (a writer may store any block).  A
    last block shorter than BlockSize is always written as LZNT1 (a short stored payload would read as
    compressed), unless its stream would reach BlockSize: then it is stored zero-padded to BlockSize.
    """
    force = set(stored)
    payloads = []
    for index, start in enumerate(range(0, len(inner), block_size)):
        block = inner[start : start + block_size]
        stream = lznt1.compress(block)
        if index in force or len(stream) >= block_size:
            payloads.append(block + bytes(block_size - len(block)))
        else:
            payloads.append(stream)
    return payloads


def write_zdmp(
    path: str | os.PathLike,
    payloads: list[bytes],
    file_size: int,
    block_size: int,
    *,
    version: int = 0x100,
    data_type: int = 1,
    compression_format: int = 2,
    crcs: list[int | None] | None = None,
    trailing: bytes = b"",
) -> None:
    """Write the header and the blocks; ``crcs`` overrides a block's CRC32 where not None."""
    header = struct.pack("<4sIQIHH", b"ZDMP", version, file_size, block_size, data_type, compression_format)
    with open(path, "wb") as handle:
        handle.write(header + bytes(HEADER_AREA - len(header)))
        for index, payload in enumerate(payloads):
            crc = (
                crcs[index] if crcs and index < len(crcs) and crcs[index] is not None else zlib.crc32(payload)
            )
            handle.write(struct.pack("<4sII", b"ZBLK", len(payload), crc))
            handle.write(payload)
        handle.write(trailing)


def block_offsets(path: str | os.PathLike) -> list[int]:
    """File offsets of the block headers of a .zdmp, walked from the layout this builder states (for
    tests that damage one block; independent of memfs's reader)."""
    with open(path, "rb") as handle:
        data = handle.read()
    offsets, pos = [], HEADER_AREA
    while pos < len(data):
        offsets.append(pos)
        pos += 12 + struct.unpack_from("<I", data, pos + 4)[0]
    return offsets


def build_zdmp(
    path: str | os.PathLike, inner: bytes, block_size: int, stored: Iterable[int] = ()
) -> list[bytes]:
    """Write ``inner`` as a .zdmp with blocks of ``block_size``; return the payloads written."""
    payloads = block_payloads(inner, block_size, stored)
    write_zdmp(path, payloads, len(inner), block_size)
    return payloads


BIG_RUNS = [(0x2, 0x1E), (0x30, 0x10), (0x100, 0x241), (0x400, 0x80)]
"""Runs of the larger fixture: 751 pages, with the fixture dumps' zero and pseudo-random pages."""

# name: (make_crashdump_fixtures.build_dump arguments, BlockSize, blocks stored whatever their content)
FIXTURES: dict[str, tuple[dict, int, tuple[int, ...]]] = {
    "full64.zdmp": ({"width": 64, "dump_type": 1}, 0x10000, ()),  # 7 full blocks and a short one
    "bitmap64.zdmp": ({"width": 64, "dump_type": 5, "bitmap_signature": b"FDMP"}, 0x10000, (2,)),
    "full32.zdmp": ({"width": 32, "dump_type": 1}, 0x10000, ()),
    "bitmap32.zdmp": ({"width": 32, "dump_type": 5, "bitmap_signature": b"FDMP"}, 0x10000, (1,)),
    # 4 KiB blocks: the fixture dumps' pseudo-random page is an incompressible block, stored.
    "full64_4k.zdmp": ({"width": 64, "dump_type": 1}, 0x1000, ()),
    # DumpIt's own block size: the whole dump is one short last block.
    "full64_2m.zdmp": ({"width": 64, "dump_type": 1}, 0x200000, ()),
    # DumpType 6 in 128 KiB blocks.
    "type6_64.zdmp": ({"width": 64, "dump_type": 6, "bitmap_signature": b"FDMP"}, 0x20000, ()),
    # A 3 MiB dump in 320 KiB blocks (not a multiple of memfs's 256 KiB units), block 2 stored.
    "full64_320k.zdmp": ({"width": 64, "dump_type": 1, "runs": BIG_RUNS}, 0x50000, (2,)),
}


def build_fixture(out: Path, name: str) -> tuple[Path, Path, dict[int, bytes]]:
    """Write fixture ``name`` and its inner dump into ``out``; return their paths and the dump's pages."""
    dump_args, block_size, stored = FIXTURES[name]
    inner_path = out / (name.removesuffix(".zdmp") + ".dmp")
    pages = build_dump(inner_path, **dump_args)
    build_zdmp(out / name, inner_path.read_bytes(), block_size, stored)
    return out / name, inner_path, pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the fixtures into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES:
        path, inner, _ = build_fixture(args.out, name)
        print(f"{name}: {path.stat().st_size} bytes wrapping {inner.name} ({inner.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
