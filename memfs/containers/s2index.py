"""The S2 seek index: a skippable chunk (type 0x99) at the end of a stream mapping decoded to file offsets.

Layout (docs/formats/snappy-s2.md §3; source: klauspost/compress s2/README.md "Index Format"): chunk
header ``0x99`` + 3-byte length, ``s2idx\\x00``, then signed zig-zag varints — total decoded size, total
compressed size (−1 if unknown), estimated block size, entry count (< 65,536) — a flag byte saying
whether decoded offsets are stored, the decoded offsets (deltas from previous + block size), the file
offsets (deltas from previous + a running guess that starts at half the block size and moves by half of
each stored delta, truncating toward zero), a 4-byte little-endian size of the whole chunk and the
trailer ``\\x00xdi2s``.  The last 10 bytes of an indexed file are that size and trailer, so the index is
found from the end without walking the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from memfs.exceptions import CorruptionError, at

INDEX_CHUNK = 0x99
HEADER = b"s2idx\x00"
TRAILER = b"\x00xdi2s"
MAX_ENTRIES = 1 << 16
MAX_INDEX_BYTES = 4 + len(HEADER) + 5 * 10 + 1 + 2 * 10 * MAX_ENTRIES + 4 + len(TRAILER)


@dataclass
class SeekIndex:
    """Entries ``(decoded offset, file offset)`` in ascending order, and where the index chunk starts."""

    total_decoded: int
    total_compressed: int
    entries: list[tuple[int, int]]
    chunk_offset: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Signed zig-zag varint at ``buf[pos:]``: ``(value, next position)``; ValueError when cut."""
    raw = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("varint cut or too long")
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return (raw >> 1) ^ -(raw & 1), pos


def _half(value: int) -> int:
    """``value / 2`` truncated toward zero, as the index's guess update requires."""
    return -((-value) // 2) if value < 0 else value // 2


def find(base, name: str, file_size: int) -> SeekIndex | None:
    """Read the seek index at the end of the stream, or None when the stream has no index trailer.

    A trailer whose index does not parse or does not fit the file is a CorruptionError naming where.
    """
    if file_size < 10 + 4 + len(HEADER):
        return None
    tail = base.pread(file_size - 10, 10)
    if tail[4:] != TRAILER:
        return None
    total = int.from_bytes(tail[:4], "little")
    start = file_size - total
    # The smallest index: its chunk header and "s2idx\0" (10 bytes), then the trailer (size + magic, 10).
    if total > MAX_INDEX_BYTES or start < 0 or total < 10 + len(tail):
        raise CorruptionError(at(name, file_size - 10, f"S2 index trailer states a {total}-byte index"))
    buf = base.pread(start, total)
    if buf[0] != INDEX_CHUNK or buf[4:10] != HEADER:
        raise CorruptionError(at(name, start, "S2 index trailer does not lead to an index chunk"))
    if int.from_bytes(buf[1:4], "little") != total - 4:
        raise CorruptionError(at(name, start, "S2 index chunk length disagrees with its trailer"))
    try:
        return _parse(buf, start)
    except ValueError as exc:
        raise CorruptionError(at(name, start, f"S2 index does not parse: {exc}")) from None


def _parse(buf: bytes, start: int) -> SeekIndex:
    pos = 10
    total_decoded, pos = _varint(buf, pos)
    total_compressed, pos = _varint(buf, pos)
    block, pos = _varint(buf, pos)
    count, pos = _varint(buf, pos)
    if total_decoded < 0 or block < 0 or not 0 <= count < MAX_ENTRIES:
        raise ValueError(f"sizes out of range (decoded {total_decoded}, block {block}, {count} entries)")
    if pos >= len(buf) or buf[pos] not in (0, 1):
        raise ValueError("offsets flag is neither 0 nor 1")
    has_decoded = buf[pos] == 1
    pos += 1
    decoded: list[int] = []
    for n in range(count):
        delta = 0
        if has_decoded:
            delta, pos = _varint(buf, pos)
        decoded.append(delta if n == 0 else decoded[-1] + block + delta)
    compressed: list[int] = []
    guess = block // 2
    for n in range(count):
        delta, pos = _varint(buf, pos)
        if n == 0:
            compressed.append(delta)
            continue
        compressed.append(compressed[-1] + guess + delta)
        guess += _half(delta)
    if len(buf) - pos != 4 + len(TRAILER):
        raise ValueError(f"{len(buf) - pos - 4 - len(TRAILER)} unexpected bytes before the trailer")
    entries = list(zip(decoded, compressed, strict=True))
    for (d0, c0), (d1, c1) in zip(entries, entries[1:], strict=False):
        if d1 <= d0 or c1 < c0:
            raise ValueError(f"entries out of order at decoded offset {d1:#x}")
    if entries and (entries[0][0] < 0 or entries[0][1] < 0 or entries[-1][1] >= start):
        raise ValueError("an entry points outside the stream")
    if entries and entries[-1][0] >= total_decoded and total_decoded:
        raise ValueError("an entry lies past the total decoded size")
    return SeekIndex(total_decoded, total_compressed, entries, start)
