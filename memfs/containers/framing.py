"""The Snappy framing format and its S2 variant: walking chunk headers and decoding spans of chunks.

Structure relied on (docs/formats/snappy-s2.md; sources there):

* A framed stream is a sequence of chunks, each a 1-byte type and a 3-byte little-endian length of the
  body that follows (§1.1).  Type 0xff is the stream identifier, body ``sNaPpY`` (Snappy) or ``S2sTwO``
  (S2); it starts the stream and may appear again where streams were concatenated (§1.2).
* 0x00 is compressed data: a 4-byte masked CRC-32C of the *decoded* bytes, then one block whose first
  bytes are the uvarint decoded length (§1.3, §2.1).  0x01 is uncompressed data: masked CRC, then the
  bytes (§1.3).  Decoded chunks are at most 65,536 bytes in Snappy streams and 4 MiB in S2 (§1.4).
* 0x02-0x7f are reserved and unskippable: a reader must stop; 0x80-0xfe are skippable (0xfe padding,
  0x99 the S2 seek index) (§1.5).

Opening reads only chunk headers (16 bytes per chunk); decoding reads a unit's chunks and checks each
chunk's CRC, so a corrupt chunk fails its unit only.  Snappy blocks are decoded by ``cramjam`` (it
releases the GIL and decodes at several GB/s: docs/formats/snappy-s2.md §5); S2 blocks by the small C decoder
in
``memfs.containers._s2`` because no PyPI package decodes S2 (§5).
"""

from __future__ import annotations

import functools
from array import array
from dataclasses import dataclass

from memfs.containers.chunked import UnitStream
from memfs.containers.deps import require
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, at

STREAM_IDENTIFIER = 0xFF
COMPRESSED = 0x00
UNCOMPRESSED = 0x01
SNAPPY_MAGIC = b"sNaPpY"
S2_MAGIC = b"S2sTwO"
STREAM_START_SNAPPY = b"\xff\x06\x00\x00" + SNAPPY_MAGIC
STREAM_START_S2 = b"\xff\x06\x00\x00" + S2_MAGIC
MAX_SNAPPY_CHUNK = 1 << 16
MAX_S2_CHUNK = 4 << 20
HEADER_PEEK = 16  # chunk header + CRC + the longest uvarint of a decoded length
MAX_UNITS = 1 << 26  # 64 Mi chunks: beyond any real image; bounds the index a hostile file can ask for


def chunk_header(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """``(type, body length)`` of the chunk header at ``buf[pos:pos+4]``."""
    return buf[pos], buf[pos + 1] | buf[pos + 2] << 8 | buf[pos + 3] << 16


def uvarint(buf: bytes | memoryview, pos: int, limit: int = 5) -> tuple[int, int]:
    """``(value, bytes used)`` of the uvarint at ``buf[pos:]``; ``(−1, 0)`` when malformed or cut."""
    value = shift = 0
    for i in range(pos, min(len(buf), pos + limit)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1 - pos
        shift += 7
    return -1, 0


def masked_crc32c(data) -> int:
    """The framing format's checksum of ``data``: CRC-32C rotated right by 15 plus 0xa282ead8 (§1.3)."""
    crc = _crc32c().crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclass
class WalkResult:
    """Where a walk stopped: file offset, decoded bytes produced, whether an S2 identifier was seen."""

    pos: int
    decoded: int
    s2: bool
    truncated: str | None = None


class FramedUnits:
    """Unit table of a framed stream: unit ``i`` decodes the chunks in ``comp_off[i] … comp_end[i]``."""

    def __init__(self) -> None:
        self.starts = array("Q")
        self.comp_off = array("Q")
        self.comp_end = array("Q")

    def add(self, decoded_start: int, comp_off: int, comp_end: int) -> None:
        self.starts.append(decoded_start)
        self.comp_off.append(comp_off)
        self.comp_end.append(comp_end)

    def __len__(self) -> int:
        return len(self.starts)


def walk(
    base,
    name: str,
    pos: int,
    end: int,
    units: FramedUnits,
    decoded: int = 0,
    want: int | None = None,
    s2: bool = False,
) -> WalkResult:
    """Index the data chunks from file offset ``pos`` to ``end`` (one unit each), reading headers only.

    ``decoded`` is the decoded offset of the first chunk.  With ``want``, the walk stops once ``want``
    bytes were decoded (an AVML block).  A chunk cut by ``end`` stops the walk with ``truncated`` set;
    an unskippable reserved chunk, a decoded length over the format's limit or a stream that does not
    start with an identifier is a CorruptionError naming the offset.
    """
    stop = decoded + want if want is not None else None
    first = pos
    while pos < end and (stop is None or decoded < stop):
        head = base.pread(pos, HEADER_PEEK)
        if len(head) < 4:
            return WalkResult(
                pos, decoded, s2, f"chunk header cut by the end of the data ({len(head)} of 4 bytes)"
            )
        ctype, length = chunk_header(head)
        body_end = pos + 4 + length
        if pos == first and ctype != STREAM_IDENTIFIER:
            raise CorruptionError(
                at(
                    name,
                    pos,
                    f"framed stream does not start with a stream identifier (chunk type {ctype:#x})",
                )
            )
        if body_end > end:
            return WalkResult(
                pos, decoded, s2, f"chunk of type {ctype:#x} needs {length + 4} bytes, {end - pos} are left"
            )
        if ctype == STREAM_IDENTIFIER:
            magic = base.pread(pos + 4, length)
            if magic == S2_MAGIC:
                s2 = True
            elif magic != SNAPPY_MAGIC:
                raise CorruptionError(
                    at(name, pos, f"stream identifier {magic[:16]!r} is neither sNaPpY nor S2sTwO")
                )
        elif ctype in (COMPRESSED, UNCOMPRESSED):
            if length < 5:
                raise CorruptionError(
                    at(name, pos, f"data chunk of {length} bytes is shorter than its checksum")
                )
            if ctype == UNCOMPRESSED:
                size = length - 4
            else:
                size, used = uvarint(head, 8, min(5, length - 4))
                if used == 0:
                    raise CorruptionError(
                        at(name, pos + 8, "compressed chunk's decoded length is not a valid uvarint")
                    )
            limit = MAX_S2_CHUNK if s2 else MAX_SNAPPY_CHUNK
            if size > limit:
                raise CorruptionError(
                    at(name, pos, f"chunk decodes to {size} bytes, more than the {limit} allowed")
                )
            if size:
                if len(units) >= MAX_UNITS:
                    raise CorruptionError(at(name, pos, f"more than {MAX_UNITS} chunks"))
                units.add(decoded, pos, body_end)
                decoded += size
        elif ctype < 0x80:
            raise CorruptionError(at(name, pos, f"reserved unskippable chunk type {ctype:#x}"))
        pos = body_end
    return WalkResult(pos, decoded, s2)


class FramedUnitStream(UnitStream):
    """A decoded stream whose units are spans of framed chunks (:class:`FramedUnits`)."""

    def __init__(self, base, name: str, cache_size: int) -> None:
        super().__init__(base, name, cache_size)
        self._units = FramedUnits()
        self.s2 = False

    def _decode_unit(self, i: int, out: memoryview | None = None) -> bytes:
        start, length = self.unit_span(i)
        comp_off, comp_end = self._units.comp_off[i], self._units.comp_end[i]
        target = out if out is not None else memoryview(bytearray(length))
        try:
            data = self.base.pread(comp_off, comp_end - comp_off)
            if len(data) != comp_end - comp_off:
                raise DecompressionError(
                    at(self.base.name, comp_off + len(data), "file ends inside the chunk")
                )
            decode_span(self.base.name, data, comp_off, target, self.s2)
        except DecompressionError as exc:
            self.failures.record(comp_off, f"{exc} (decoded bytes {start:#x}-{start + length:#x} unreadable)")
            raise
        return b"" if out is not None else target.obj


def decode_span(name: str, data, offset: int, out: memoryview, s2: bool) -> None:
    """Decode the chunks in ``data`` (read from file ``offset``) into exactly all of ``out``.

    Skippable chunks and stream identifiers inside are passed over.  Raises DecompressionError naming
    the chunk's file offset when a block does not decode, a checksum differs or the sizes disagree.
    """
    view = memoryview(data)
    pos = filled = 0
    while pos < len(view):
        if len(view) - pos < 4:
            raise DecompressionError(
                at(name, offset + pos, "chunk header cut by the end of the unit"), offset + pos
            )
        ctype, length = chunk_header(view, pos)
        body = view[pos + 4 : pos + 4 + length]
        if len(body) != length:
            raise DecompressionError(at(name, offset + pos, "chunk cut by the end of the unit"), offset + pos)
        if ctype in (COMPRESSED, UNCOMPRESSED):
            if length < 5:  # the walker's rule too; an S2 index leads here without the walker
                raise DecompressionError(
                    at(name, offset + pos, f"data chunk of {length} bytes is shorter than its checksum"),
                    offset + pos,
                )
            expected = int.from_bytes(body[:4], "little")
            if ctype == UNCOMPRESSED:
                size = length - 4
                if size > len(out) - filled:
                    raise DecompressionError(at(name, offset + pos, "chunk runs past the unit"), offset + pos)
                target = out[filled : filled + size]
                target[:] = body[4:]
            else:
                size, _ = uvarint(body, 4)
                if size < 0 or size > len(out) - filled:
                    raise DecompressionError(at(name, offset + pos, "chunk runs past the unit"), offset + pos)
                target = out[filled : filled + size]
                _decode_block(name, offset + pos, body[4:], target, s2)
            actual = masked_crc32c(target)
            if actual != expected:
                raise DecompressionError(
                    at(
                        name,
                        offset + pos,
                        f"chunk checksum {actual:#010x} differs from the stored {expected:#010x}",
                    ),
                    offset + pos,
                )
            filled += size
        elif ctype != STREAM_IDENTIFIER and ctype < 0x80:
            raise DecompressionError(
                at(name, offset + pos, f"reserved unskippable chunk type {ctype:#x}"), offset + pos
            )
        pos += 4 + length
    if filled != len(out):
        raise DecompressionError(at(name, offset, f"unit decodes to {filled} bytes, not {len(out)}"), offset)


def _decode_block(name: str, offset: int, block, out: memoryview, s2: bool) -> None:
    if s2:
        from memfs.containers import _s2

        try:
            _s2.decompress_into(block, out)
        except DecompressionError as exc:
            raise DecompressionError(at(name, offset, str(exc)), offset) from None
        return
    cramjam = _cramjam()
    try:
        got = cramjam.snappy.decompress_raw_into(block, out)
    except cramjam.DecompressionError as exc:
        raise DecompressionError(at(name, offset, f"Snappy block does not decode: {exc}"), offset) from None
    if got != len(out):
        raise DecompressionError(
            at(name, offset, f"Snappy block decodes to {got} bytes, not {len(out)}"), offset
        )


@functools.cache  # once: every chunk asks (importlib's lookup cost 8% of a Snappy decode)
def _cramjam():
    return require("cramjam", "cramjam", "decoding Snappy-compressed images")


@functools.cache
def _crc32c():
    return require("crc32c", "crc32c", "checking Snappy/S2 chunk checksums")


def check_flavour_start(head: bytes, name: str) -> bool:
    """Whether ``head`` starts a framed stream; True for S2, False for Snappy; FormatError otherwise."""
    if head.startswith(STREAM_START_S2):
        return True
    if head.startswith(STREAM_START_SNAPPY):
        return False
    raise FormatError(at(name, 0, "not a Snappy or S2 framed stream"))
