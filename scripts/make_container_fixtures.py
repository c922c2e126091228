"""Build small container fixtures — Snappy/S2 streams, AVML, gzip, ZIP, tar, E01 — around known images.

The formats are stated here a second time, from docs/formats/snappy-s2.md, docs/formats/avml.md,
docs/formats/gzip.md,
docs/formats/archives.md and docs/formats/ewf.md, independently of the readers in ``memfs/containers`` (no
constants or code are
shared).  Where a real tool exists it makes the container: ``gzip``/``zipfile``/``tarfile`` from the
standard library, ``cramjam`` for Snappy blocks, ``ewfacquire`` (Debian ``ewf-tools``) for E01.  S2 has no
Python encoder, so :func:`s2_block` below is a small one that uses every S2 element (literals of each
length form, 1/2/4-byte-offset copies and repeat copies of each length form); its output is checked
by klauspost's own decoder when Go is installed (tests/containers/test_go_s2.py).

Function API (for tests)::

    data = memory_like(pages, seed)                  # the known decoded image
    snappy_stream(data), s2_stream(data, index=True) # framed streams (bytes)
    avml_image(ranges)                               # AVML file (bytes) for [(address, bytes), ...]
    build_all(out_dir) -> {name: Built(path, expected)}

CLI: ``python3 -m scripts.make_container_fixtures OUT_DIR`` writes every fixture.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

PAGE = 4096


# -- known content ---------------------------------------------------------------------------------


def memory_like(pages: int, seed: int = 1) -> bytes:
    """Deterministic memory-like bytes: zero, text, pointer-table, repeated and random pages."""
    rng = random.Random(seed)
    out = bytearray()
    previous = bytes(PAGE)
    for n in range(pages):
        kind = rng.choice("zztpprR")
        if kind == "z":
            page = bytes(PAGE)
        elif kind == "t":
            line = f"page {n:06d} memfs container fixture; pid={rng.randrange(9999)} ".encode()
            page = (line * (PAGE // len(line) + 1))[:PAGE]
        elif kind == "p":
            base = 0xFFFF_F800_0000_0000 + rng.randrange(1 << 30) * 8
            page = b"".join(
                struct.pack("<Q", base + 16 * i if rng.random() < 0.8 else 0) for i in range(PAGE // 8)
            )
        elif kind == "r":
            page = previous
        else:
            page = rng.randbytes(PAGE)
        out += page
        previous = page
    return bytes(out)


def raw_image() -> bytes:
    """The raw image the Snappy/S2/ZIP/tar/E01 fixtures hold: memory-like pages then 400 KiB of random
    bytes, so that whole chunks are incompressible and stored uncompressed."""
    return memory_like(1000, seed=15) + random.Random(16).randbytes(100 * PAGE)


# -- Snappy framing (docs/formats/snappy-s2.md §1) -----------------------------------------------------------


def _masked(data) -> int:
    import crc32c

    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _chunk(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "little") + body


def framed_chunks(data: bytes, block: int, encode, magic: bytes, first: bool = True) -> list[bytes]:
    """The chunks of a framed stream: identifier, then one data chunk per ``block`` bytes.

    A block whose encoding does not save at least 1/8 is stored as an uncompressed chunk (type 0x01),
    as klauspost's and the Rust ``snap`` writers do.
    """
    chunks = [_chunk(0xFF, magic)] if first else []
    for pos in range(0, len(data), block):
        piece = data[pos : pos + block]
        crc = _masked(piece).to_bytes(4, "little")
        packed = encode(piece)
        if len(packed) < len(piece) - len(piece) // 8:
            chunks.append(_chunk(0x00, crc + packed))
        else:
            chunks.append(_chunk(0x01, crc + piece))
    return chunks


def snappy_block(data: bytes) -> bytes:
    """A raw Snappy block made by cramjam (Google's format, no S2 extensions)."""
    import cramjam  # imported here: the builder's other formats need only the standard library

    return bytes(cramjam.snappy.compress_raw(data))


def snappy_stream(data: bytes, block: int = 65536 - 8) -> bytes:
    """A Snappy framed stream as klauspost's Snappy-compatible writer chunks it (65,528-byte blocks)."""
    return b"".join(framed_chunks(data, block, snappy_block, b"sNaPpY"))


# -- S2 blocks (docs/formats/snappy-s2.md §2) ----------------------------------------------------------------


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append(n & 0x7F | 0x80)
        n >>= 7


def _literal(out: bytearray, data: bytes) -> None:
    n = len(data) - 1
    if n < 60:
        out.append(n << 2)
    else:
        width = (n.bit_length() + 7) // 8
        out.append((59 + width) << 2)
        out += n.to_bytes(width, "little")
    out += data


def _repeat(out: bytearray, length: int) -> None:
    """Copies of the previous offset: offset 0 in a 1-byte-offset copy, length escapes 5/6/7."""
    while length:
        if length <= 8:
            out += bytes([1 | (length - 4) << 2, 0])
            take = length
        elif length <= 263:
            out += bytes([1 | 5 << 2, 0, length - 8])
            take = length
        elif length <= 65795:
            out += bytes([1 | 6 << 2, 0]) + (length - 260).to_bytes(2, "little")
            take = length
        else:
            take = min(length, 65540 + (1 << 24) - 1)
            if 0 < length - take < 4:
                take -= 4
            out += bytes([1 | 7 << 2, 0]) + (take - 65540).to_bytes(3, "little")
        length -= take


def _copy(out: bytearray, offset: int, length: int, last: int | None) -> None:
    """One match: a repeat when the offset is the previous one, else a copy then repeats."""
    if offset == last:
        _repeat(out, length)
        return
    most = 11 if offset < 2048 else 64
    first = min(length, most)
    rest = length - first
    if 0 < rest < 4:
        first -= 4 - rest
        rest = 4
    if offset < 2048 and first <= 11:
        out += bytes([1 | (first - 4) << 2 | (offset >> 8) << 5, offset & 0xFF])
    elif offset < 65536:
        out += bytes([2 | (first - 1) << 2]) + offset.to_bytes(2, "little")
    else:
        out += bytes([3 | (first - 1) << 2]) + offset.to_bytes(4, "little")
    _repeat(out, rest)


def s2_block(data: bytes, step: int = 32) -> bytes:
    """An S2 block: greedy matching of ``step``-byte windows, extended byte by byte."""
    out = bytearray(_uvarint(len(data)))
    seen: dict[bytes, int] = {}
    n = len(data)
    pos = literal_from = 0
    last = None
    while pos + step <= n:
        key = data[pos : pos + step]
        candidate = seen.get(key)
        seen[key] = pos
        if candidate is None or candidate == pos:
            pos += step
            continue
        offset = pos - candidate
        length = step
        while (
            pos + length + step <= n
            and data[pos + length : pos + length + step]
            == data[pos + length - offset : pos + length - offset + step]
        ):
            length += step
        while pos + length < n and data[pos + length] == data[pos + length - offset]:
            length += 1
        if literal_from < pos:
            _literal(out, data[literal_from:pos])
        _copy(out, offset, length, last)
        last = offset
        pos += length
        literal_from = pos
    if literal_from < n:
        _literal(out, data[literal_from:])
    return bytes(out)


def _zigzag(value: int) -> bytes:
    return _uvarint((value << 1) ^ (value >> 63) if value >= 0 else ((-value) << 1) - 1)


def _truncated_half(value: int) -> int:
    return int(value / 2)


def s2_index(entries: list[tuple[int, int]], total: int, compressed: int, block: int) -> bytes:
    """The seek-index chunk (type 0x99) for ``entries`` of (decoded offset, file offset)
    (docs/formats/snappy-s2.md §3)."""
    body = bytearray(b"s2idx\x00")
    for value in (total, compressed, block, len(entries)):
        body += _zigzag(value)
    regular = all(u == i * block for i, (u, _) in enumerate(entries))
    body.append(0 if regular else 1)
    if not regular:
        for i, (u, _) in enumerate(entries):
            body += _zigzag(u if i == 0 else u - entries[i - 1][0] - block)
    guess = block // 2
    for i, (_, c) in enumerate(entries):
        if i == 0:
            body += _zigzag(c)
            continue
        delta = c - entries[i - 1][1] - guess
        body += _zigzag(delta)
        guess += _truncated_half(delta)
    size = 4 + len(body) + 4 + 6
    return bytes([0x99]) + (size - 4).to_bytes(3, "little") + body + size.to_bytes(4, "little") + b"\x00xdi2s"


def s2_stream(data: bytes, block: int = 1 << 20, index: bool = False, index_every: int = 1 << 20) -> bytes:
    """An S2 framed stream (``S2sTwO``) of ``block``-byte chunks, optionally ending in a seek index.

    Index entries are at most one per ``index_every`` decoded bytes, as klauspost's writer keeps them.
    """
    chunks = framed_chunks(data, block, s2_block, b"S2sTwO")
    if not index:
        return b"".join(chunks)
    entries = []
    offset = len(chunks[0])
    for n, chunk in enumerate(chunks[1:]):
        decoded = n * block
        if not entries or decoded - entries[-1][0] >= index_every:
            entries.append((decoded, offset))
        offset += len(chunk)
    return b"".join(chunks) + s2_index(entries, len(data), offset, block)


# -- AVML (docs/formats/avml.md) -----------------------------------------------------------------------------


def avml_image(ranges: list[tuple[int, bytes]], max_block: int = 16 << 20) -> bytes:
    """AVML v2: per block a 32-byte header, a Snappy framed stream and the stream's length (u64).

    Ranges are split into ``max_block`` blocks and all-zero blocks are left out, as AVML 0.4.1 and later do.
    """
    out = bytearray()
    for first, piece in _blocks(ranges, max_block):
        out += struct.pack("<IIQQQ", 0x4C4D5641, 2, first, first + len(piece) - 1, 0)
        stream = b"".join(framed_chunks(piece, 65536, snappy_block, b"sNaPpY"))
        out += stream + struct.pack("<Q", len(stream))
    return bytes(out)


def _blocks(ranges: list[tuple[int, bytes]], max_block: int):
    """``(address, bytes)`` of every block of at most ``max_block`` bytes that is not all zero."""
    for address, data in ranges:
        for pos in range(0, len(data), max_block):
            piece = data[pos : pos + max_block]
            if any(piece):
                yield address + pos, piece


def avml_ranges() -> list[tuple[int, bytes]]:
    """Physical ranges of the AVML fixture: 300 pages at 0, 2 MiB of zeros then 200 pages at 2 MiB (two
    all-zero 1 MiB blocks to leave out), 64 pages at 16 MiB."""
    return [
        (0, memory_like(300, 3)),
        (0x200000, bytes(2 << 20) + memory_like(200, 4)),
        (0x1000000, memory_like(64, 5)),
    ]


def lime_image(ranges: list[tuple[int, bytes]], max_block: int = 16 << 20) -> bytes:
    """The LiME file an AVML file of the same ranges decodes to (LiME v1 headers, same blocks)."""
    out = bytearray()
    for first, piece in _blocks(ranges, max_block):
        out += struct.pack("<IIQQ8s", 0x4C694D45, 1, first, first + len(piece) - 1, bytes(8))
        out += piece
    return bytes(out)


# -- the fixture set ------------------------------------------------------------------------------------


@dataclass
class Built:
    """A container on disk, the decoded stream (or archive member) it must yield, and the memory image at
    the bottom of its stack (``image``, when that is not ``expected`` itself: a tar inside a gzip)."""

    path: Path
    expected: bytes
    member: str | None = None
    image: bytes | None = None

    @property
    def bare(self) -> bytes:
        """The memory image the stack holds, as a file of its own would hold it."""
        return self.expected if self.image is None else self.image


def _crash_dump(out_dir: Path) -> bytes:
    from scripts import make_crashdump_fixtures as crash

    path = out_dir / "inner.dmp"
    crash.build_dump(path)
    data = path.read_bytes()
    path.unlink()
    return data


def _hiberfil() -> bytes:
    from scripts import make_hiberfil_fixtures as hiber

    data, _, _ = hiber.build_bytes("win10-1809-x64")
    return data


def build_all(out_dir: str | os.PathLike) -> dict[str, Built]:
    """Write every fixture into ``out_dir``; return ``{name: Built}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    built: dict[str, Built] = {}

    def put(name: str, payload: bytes, expected: bytes, member: str | None = None, image=None) -> None:
        path = out / name
        path.write_bytes(payload)
        built[name] = Built(path, expected, member, image)

    raw = raw_image()
    put("raw.snappy", snappy_stream(raw), raw)
    put("raw.s2", s2_stream(raw), raw)
    put("raw-index.s2", s2_stream(raw, index=True), raw)
    put("raw-index-64k.s2", s2_stream(raw, block=65536, index=True), raw)
    ranges = avml_ranges()
    put("image.avml", avml_image(ranges, max_block=1 << 20), lime_image(ranges, max_block=1 << 20))
    dump = _crash_dump(out)
    put("crash.dmp.gz", gzip.compress(dump, compresslevel=6, mtime=0), dump)
    hiberfil = _hiberfil()
    put(
        "triage.zip",
        _zip({"C/hiberfil.sys": hiberfil, "C/Windows/notes.txt": b"not memory\n" * 50}),
        hiberfil,
        "C/hiberfil.sys",
    )
    put("stored.zip", _zip({"PhysicalMemory.dd": raw}, zipfile.ZIP_STORED), raw, "PhysicalMemory.dd")
    put("two.zip", _zip({"a/PhysicalMemory.dd": raw, "b/crash.dmp": dump}), dump, "b/crash.dmp")
    # A Velociraptor offline collection: the S2-compressed acquisition uploaded as PhysicalMemory.dd.
    put("collection.zip", _zip({"uploads/auto/PhysicalMemory.dd": s2_stream(raw), "log.json": b"{}\n" * 40}),
        s2_stream(raw), "uploads/auto/PhysicalMemory.dd", raw)  # fmt: skip
    put("empty.zip", _zip({"readme.txt": b"nothing here\n" * 20}), b"")
    put(
        "image.tar",
        _tar({"mem/PhysicalMemory.raw": raw, "mem/info.txt": b"x" * 100}),
        raw,
        "mem/PhysicalMemory.raw",
    )
    tarred = _tar({"memory.dmp": dump})
    put("image.tar.gz", gzip.compress(tarred, mtime=0), tarred, None, dump)
    e01 = ewf_image(out, "image", raw + random.Random(17).randbytes(1 << 20), segment_bytes=1 << 20)
    if e01 is not None:
        built["image.E01"] = Built(e01, raw + random.Random(17).randbytes(1 << 20))
    return built


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ewf_image(out_dir: Path, stem: str, data: bytes, segment_bytes: int) -> Path | None:
    """Acquire ``data`` with ``ewfacquire`` into segments ``stem.E01``, ``.E02``…; None when absent."""
    tool = shutil.which("ewfacquire")
    if tool is None:
        return None
    raw = out_dir / f"{stem}.raw"
    raw.write_bytes(data)
    target = out_dir / stem
    for old in out_dir.glob(f"{stem}.E0*"):
        old.unlink()
    subprocess.run(
        [tool, "-u", "-t", str(target), "-f", "encase6", "-c", "deflate:fast", "-S", str(segment_bytes),
         "-b", "64", "-C", "case", "-D", "memfs fixture", "-e", "memfs", "-E", "1", "-N", "none", "-q",
         str(raw)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    raw.unlink()
    return out_dir / f"{stem}.E01"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    for name, item in build_all(args.out_dir).items():
        print(f"{name}: {item.path.stat().st_size} bytes -> {len(item.expected)} decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
