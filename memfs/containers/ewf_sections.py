"""The section chain of one EWF segment file: its volume and its chunk tables, read defensively.

Layout (docs/formats/ewf.md §1–2): after the 13-byte file header, sections follow one another, each
starting with a 76-byte descriptor — type (16 bytes, NUL-padded), offset of the next section (u64),
size of this section including the descriptor (u64), 40 bytes of padding, and the Adler-32 of the
72 bytes before it.  The chain ends at a ``done`` or ``next`` section, or one naming itself as next.

Every value here comes from a file that may be damaged or crafted, so the chain is walked forward
only (a section naming an earlier or overlapping one as next is an error, not a loop), a table may
not state more entries than its section holds, and nothing is inflated: the segment's ``header``
sections (zlib text about the case) are not read at all.  This module replaces the segment parser
of dissect.evidence, which followed a chain looping back forever (a 5 KiB fuzz input took 5 GB within
two minutes), read as many table entries as a table stated and inflated headers without a bound
(docs/formats/ewf.md §4).
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from dataclasses import dataclass, field

from memfs.byte_source import ByteSource
from memfs.exceptions import FormatError, at

FILE_HEADER_SIZE = 13  # signature (8), 0x01, segment number (u16), 0x0000
DESCRIPTOR = struct.Struct("<16sQQ40sI")  # type, next, size, padding, Adler-32 of the 72 bytes before
VOLUME = struct.Struct("<4xIII")  # chunk count, sectors per chunk, bytes per sector (§2)
E01_VOLUME_SIZE = 1052  # the EnCase volume: the media's sector count is a u64 at 16 (SMART: a u32)
TABLE_HEADER = struct.Struct("<I4xQ4xI")  # entry count, base offset, Adler-32 of the 20 bytes before
MAX_TABLE_ENTRIES = 1 << 20  # ewfacquire writes at most 16,375 per table; bounds what one table costs


@dataclass
class Volume:
    """What the ``volume`` (or ``disk``) section states about the media."""

    chunk_count: int
    sectors_per_chunk: int
    bytes_per_sector: int
    sector_count: int

    @property
    def chunk_size(self) -> int:
        return self.sectors_per_chunk * self.bytes_per_sector


@dataclass
class Table:
    """One ``table`` section: chunk ``i`` is stored at ``base + (entries[i] & 0x7FFFFFFF)``, bit 31 set
    when it is zlib-compressed; the section itself spans ``start .. end`` of the segment."""

    start: int
    end: int
    base: int
    entries: array


@dataclass
class Segment:
    """The sections of one segment file memfs uses, and what was wrong with its chain, if anything."""

    volume: Volume | None = None
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_segment(source: ByteSource) -> Segment:
    """Walk the section chain of ``source``.

    A chain cut by the end of the file, or a descriptor failing its checksum, ends the walk with a note
    (the tables before it stay usable); a chain that goes backwards or a table that cannot be what it
    states raises FormatError naming the offset.
    """
    segment = Segment()
    offset = FILE_HEADER_SIZE
    while True:
        raw = source.pread(offset, DESCRIPTOR.size)
        if len(raw) < DESCRIPTOR.size:
            segment.notes.append(
                f"{source.name}: the section chain is cut by the end of the file at {offset:#x}"
            )
            return segment
        kind, following, size, _, checksum = DESCRIPTOR.unpack(raw)
        if zlib.adler32(raw[:72]) != checksum:
            segment.notes.append(
                f"{source.name}: the section descriptor at {offset:#x} fails its checksum; sections from "
                "there on are not read"
            )
            return segment
        kind = kind.rstrip(b"\x00")
        body_size = size - DESCRIPTOR.size
        if kind in (b"volume", b"disk") and segment.volume is None:
            segment.volume = _volume(source, offset, body_size)
        elif kind == b"table":
            segment.tables.append(_table(source, offset, size, body_size))
        if kind in (b"done", b"next") or following == offset:
            return segment
        if following < offset + DESCRIPTOR.size:
            raise FormatError(
                at(source.name, offset, f"EWF section names {following:#x}, not after itself, as the next")
            )
        offset = following


def _volume(source: ByteSource, offset: int, body_size: int) -> Volume:
    body = source.pread(offset + DESCRIPTOR.size, min(max(body_size, 0), E01_VOLUME_SIZE))
    if len(body) < 24:
        raise FormatError(at(source.name, offset, f"EWF volume section holds {len(body)} bytes, 24 needed"))
    chunks, sectors_per_chunk, bytes_per_sector = VOLUME.unpack_from(body)
    wide = len(body) >= E01_VOLUME_SIZE
    sector_count = int.from_bytes(body[16:24] if wide else body[16:20], "little")
    return Volume(chunks, sectors_per_chunk, bytes_per_sector, sector_count)


def _table(source: ByteSource, offset: int, size: int, body_size: int) -> Table:
    header = source.pread(offset + DESCRIPTOR.size, TABLE_HEADER.size)
    if len(header) < TABLE_HEADER.size:
        raise FormatError(at(source.name, offset, "EWF table section cut by the end of the file"))
    count, base, checksum = TABLE_HEADER.unpack(header)
    if zlib.adler32(header[:20]) != checksum:
        raise FormatError(at(source.name, offset, "EWF table section header fails its checksum"))
    room = (body_size - TABLE_HEADER.size) // 4
    if count > min(room, MAX_TABLE_ENTRIES):
        raise FormatError(
            at(source.name, offset, f"EWF table states {count} entries; its section holds {max(room, 0)}")
        )
    data = source.pread(offset + DESCRIPTOR.size + TABLE_HEADER.size, 4 * count)
    if len(data) < 4 * count:
        raise FormatError(at(source.name, offset, "EWF table section cut by the end of the file"))
    entries = array("I")
    entries.frombytes(data)
    if sys.byteorder == "big":
        entries.byteswap()  # stored little-endian
    return Table(offset, offset + size, base, entries)
