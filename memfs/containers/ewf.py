"""EWF / EnCase images (``.E01``, split into ``.E02`` …), every chunk checked against its checksum.

Layout (docs/formats/ewf.md, sources there): each segment file starts with the ``EVF`` signature and
holds a chain of sections; ``volume``/``disk`` states the chunk size (sectors per chunk × bytes per
sector) and chunk count; each ``table`` section lists its chunks' offsets (bit 31 set = zlib-compressed)
relative to a base offset.  A compressed chunk is a zlib stream (its Adler-32 trailer checks it); an
uncompressed chunk is followed by its Adler-32, little-endian (§2).

Library choice (docs/formats/ewf.md §4): ``dissect.evidence`` read a 128 MiB ewfacquire image at 211 MB/s
and raised on a corrupt compressed chunk; ``libewf-python`` (pyewf) read at 49 MB/s and returned a
corrupt chunk as zeros without an error, so it cannot give EIO for bad chunks.  dissect.evidence's
segment parser then proved unsafe on hostile input (unbounded table reads, header inflation and
section loops), so memfs walks the sections itself (:mod:`memfs.containers.ewf_sections`) and reads and
checks chunks itself — zlib for compressed chunks, the Adler-32 for stored ones — so a bad chunk fails
its own bytes only, and reads need no lock (``pread`` on the segments; zlib releases the GIL).  No
library is needed.
"""

from __future__ import annotations

import os
import re
import string
import zlib
from array import array

from memfs.byte_source import ByteSource, FileByteSource
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers.chunked import UnitStream
from memfs.containers.ewf_sections import Table, Volume, read_segment
from memfs.exceptions import DecompressionError, FormatError, at
from memfs.formats.base import CONTAINER, FormatSpec, OpenOptions, ProbeInput

FORMAT_NAME = "ewf"
SIGNATURES = (b"EVF\x09\x0d\x0a\xff\x00", b"LVF\x09\x0d\x0a\xff\x00")
COMPRESSED_BIT = 1 << 31
MAX_CHUNK = 64 << 20  # ewfacquire offers up to 32,768 sectors per chunk (16 MiB at 512 bytes)


def probe(p: ProbeInput) -> bool:
    """The 8-byte EWF (``EVF``) or logical-EWF (``LVF``) signature at offset 0 (docs/formats/ewf.md §1)."""
    return p.head.startswith(SIGNATURES)


def segment_number(head: bytes) -> int | None:
    """The segment number a segment file states in its header (u16 after the signature and a 0x01 byte,
    docs/formats/ewf.md §1); None when the header is too short."""
    return int.from_bytes(head[9:11], "little") if len(head) >= 13 else None


def segment_paths(first: str) -> list[str]:
    """The segment files of an image, in order, from its first (``x.E01`` → ``x.E02`` … ``x.E99``,
    ``x.EAA`` … ``x.EZZ``, ``x.FAA`` …), stopping at the first that does not exist."""
    stem, ext = os.path.splitext(first)
    if not re.fullmatch(r"\.[EeLs]01", ext):
        return [first]
    letter, upper = ext[1], ext[1].isupper()
    names = [f"{n:02d}" for n in range(1, 100)]
    letters = string.ascii_uppercase if upper else string.ascii_lowercase
    start = letters.index(letter.upper() if upper else letter.lower())
    names += [a + b + c for a in letters[start:] for b in letters for c in letters][: 26 * 26 * 20]
    paths = []
    for name in names:
        candidate = f"{stem}.{letter}{name}" if name[0].isdigit() else f"{stem}.{name}"
        if not os.path.exists(candidate):
            break
        paths.append(candidate)
    return paths or [first]


class EwfStream(UnitStream):
    """The media data of an EWF image, one unit per chunk."""

    format_name = FORMAT_NAME

    def __init__(self, segments: list, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        first = segments[0]
        super().__init__(first, f"{first.name}[EWF media]", cache_size)
        self.segments = segments
        self._seg = array("H")
        self._off = array("Q")
        self._len = array("I")
        self._packed = bytearray()
        volume = None
        for number, source in enumerate(segments):
            parsed = read_segment(source)
            self.notes.extend(parsed.notes)
            volume = volume or parsed.volume
            for table in parsed.tables:
                self._add_table(number, source, table)
        if volume is None:
            why = f" ({self.notes[0]})" if self.notes else ""
            raise FormatError(at(first.name, 0, f"EWF segments hold no volume section{why}"))
        self._size_media(volume)

    def _size_media(self, volume: Volume) -> None:
        """The media spans the volume's sector count, as far as the tables list chunks (§2)."""
        self.chunk_size = volume.chunk_size
        if not 0 < self.chunk_size <= MAX_CHUNK:
            raise FormatError(
                at(self.base.name, 0, f"EWF volume states a chunk size of {self.chunk_size} bytes")
            )
        expected = self.chunks_expected = volume.chunk_count
        if len(self._off) != expected:
            self.notes.append(
                f"the volume section states {expected} chunks, the tables list {len(self._off)}"
            )
        listed = len(self._off) * self.chunk_size
        stated = volume.sector_count * volume.bytes_per_sector
        size = min(stated, listed) if stated else listed
        if not stated:
            self.notes.append("the volume section states no sector count: the media ends with its last chunk")
        self._set_units(array("Q", range(0, size, self.chunk_size)), size)

    def _add_table(self, number: int, source, table: Table) -> None:
        entries, base, count = table.entries, table.base, len(table.entries)
        for i in range(count):
            offset = base + (entries[i] & 0x7FFFFFFF)
            if i + 1 < count:
                end = base + (entries[i + 1] & 0x7FFFFFFF)
            elif offset < table.start:
                end = table.start  # the last chunk's data ends where the table section starts
            else:
                end = table.end
            if not offset < end <= source.size:
                raise FormatError(at(source.name, offset, f"EWF chunk #{len(self._off)} has no valid extent"))
            self._seg.append(number)
            self._off.append(offset)
            self._len.append(end - offset)
            self._packed.append(1 if entries[i] & COMPRESSED_BIT else 0)

    def _decode_unit(self, i: int, out: memoryview | None = None) -> bytes:
        start, length = self.unit_span(i)
        source = self.segments[self._seg[i]]
        offset, stored = self._off[i], self._len[i]
        try:
            if stored > self.chunk_size + (self.chunk_size >> 3) + 1024:  # more than zlib's worst case
                raise ValueError(f"its table entries give it {stored} stored bytes")
            data = source.pread(offset, stored)
            if len(data) != stored:
                raise ValueError(f"segment ends {stored - len(data)} bytes early")
            if self._packed[i]:
                inflater = zlib.decompressobj()
                try:
                    plain = inflater.decompress(data, self.chunk_size + 1)  # bounded: a zlib bomb stops here
                except zlib.error as exc:
                    raise ValueError(f"compressed chunk does not inflate ({exc})") from None
                if not inflater.eof or len(plain) > self.chunk_size:
                    raise ValueError("compressed chunk does not end within the chunk size")
            else:
                plain, checksum = data[:-4], int.from_bytes(data[-4:], "little")
                if zlib.adler32(plain) != checksum:
                    raise ValueError(
                        f"Adler-32 {zlib.adler32(plain):#010x} differs from the stored {checksum:#010x}"
                    )
            if len(plain) < length:
                raise ValueError(f"chunk holds {len(plain)} bytes, {length} expected")
        except ValueError as exc:
            message = at(
                source.name, offset, f"EWF chunk #{i} (media bytes {start:#x}-{start + length:#x}): {exc}"
            )
            self.failures.record(i, message)
            raise DecompressionError(message, offset) from None
        if out is not None:
            out[:] = memoryview(plain)[:length]
            return b""
        return plain if len(plain) == length else plain[:length]

    def facts(self) -> list[tuple[str, str]]:
        """Rows for header.txt and ``info --json``."""
        rows = [
            ("Container", f"EWF ({len(self.segments)} segment files, first {self.base.name})"),
            ("Chunks", f"{len(self._off)} of {self.chunk_size} bytes, {sum(self._packed)} compressed"),
            ("Media size", f"{self.size:#x} bytes"),
        ]
        return rows + self._status_rows("Chunks failing their checksum")

    def close(self) -> None:
        self.cache.clear()
        for source in self.segments:
            source.close()


def open_stream(segments: list, cache_size: int = DEFAULT_CACHE_SIZE) -> EwfStream:
    """Open the media data of an EWF image from its segment sources, in order (see :func:`segment_paths`)."""
    return EwfStream(segments, cache_size)


def open_first_segment(first: ByteSource, options: OpenOptions) -> EwfStream:
    """The registry's opener: ``first`` is the first segment; the others are the files beside it named
    by :func:`segment_paths`.  A first segment that is not a file (an ``.E01`` inside a ZIP) has no
    files beside it: it is read alone, and a note says what is missing when its tables do not list
    every chunk of the volume."""
    number = segment_number(first.pread(0, 13))
    if number is not None and number != 1:
        raise FormatError(
            at(first.name, 9, f"this is segment {number} of an EWF image: open its first segment (.E01)")
        )
    others: list[ByteSource] = []
    try:
        for path in segment_paths(first.path)[1:] if first.path else []:
            others.append(FileByteSource(path))
        stream = EwfStream([first, *others], options.cache_size)
    except BaseException:
        for source in others:  # ``first`` is the caller's to close when opening fails
            source.close()
        raise
    if first.path is None and stream.units < stream.chunks_expected:
        stream.notes.append(
            f"{first.name} is inside another container, so its further segment files (.E02, ...) cannot "
            "be looked for beside it: only the first segment's chunks are readable"
        )
    return stream


FORMAT = FormatSpec(
    name=FORMAT_NAME,
    description="EWF / EnCase image (.E01, segments .E02 ... found beside it), every chunk checked",
    probe=probe,
    open=open_first_segment,
    kind=CONTAINER,
)
