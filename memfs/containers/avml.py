"""AVML compressed memory images (``avml acquire --compress``), decoded on demand into the LiME image inside.

Structure relied on (docs/formats/avml.md, sources there):

* The file is a sequence of blocks, each a 32-byte little-endian header — magic ``AVML`` (0x4c4d5641),
  version 2, first physical address, *last* physical address (inclusive), 8 zero bytes — then a Snappy
  framed stream of exactly ``last - first + 1`` decoded bytes, then the stream's compressed length as a
  little-endian u64 (§1).  It is LiME's layout with the range bytes compressed (§2).
* AVML splits ranges into blocks of at most 16 MiB and leaves all-zero blocks out (since 0.4.1;
  older versions wrote one block per range) (§3).

The decoded stream is the equivalent LiME file — each header rewritten as LiME v1 (magic ``EMiL``,
version 1, same addresses) followed by the decoded bytes — which is what ``avml convert`` writes; format
detection then finds LiME in it and the LiME reader maps the physical ranges.  Opening reads block
headers and chunk headers only (:mod:`memfs.containers.framing`); each Snappy chunk is a unit.
"""

from __future__ import annotations

import struct

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers import framing
from memfs.exceptions import CorruptionError, FormatError, at
from memfs.formats.base import CONTAINER, FormatSpec, ProbeInput

FORMAT_NAME = "avml"
AVML_MAGIC = 0x4C4D5641
AVML_VERSION = 2
HEADER = struct.Struct("<IIQQQ")
TRAILER = struct.Struct("<Q")
LIME_HEADER = struct.Struct("<IIQQ8s")
LIME_MAGIC = 0x4C694D45
LIME_VERSION = 1
MAX_BLOCKS = 1 << 22


def probe(p: ProbeInput) -> bool:
    """The first block header: magic ``AVML`` and version 2 (docs/formats/avml.md §1)."""
    return len(p.head) >= 8 and struct.unpack_from("<II", p.head) == (AVML_MAGIC, AVML_VERSION)


class AvmlStream(framing.FramedUnitStream):
    """The LiME image an AVML file holds, decoded chunk by chunk."""

    format_name = FORMAT_NAME

    def __init__(self, base, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(base, f"{base.name}[LiME]", cache_size)
        self._literals: dict[int, bytes] = {}
        self.blocks = 0
        self._walk()

    def _walk(self) -> None:
        base, name = self.base, self.base.name
        pos = decoded = 0
        while pos < base.size:
            raw = base.pread(pos, HEADER.size)
            if len(raw) < HEADER.size:
                self.notes.append(
                    at(name, pos, f"{len(raw)} trailing bytes after the last AVML block ignored")
                )
                break
            magic, version, first, last, padding = HEADER.unpack(raw)
            if (magic, version) != (AVML_MAGIC, AVML_VERSION):
                raise CorruptionError(
                    at(
                        name,
                        pos,
                        f"expected an AVML v2 block header, found magic {magic:#x} version {version}",
                    )
                )
            if padding:
                raise CorruptionError(at(name, pos + 24, f"AVML header padding is {padding:#x}, not zero"))
            if last < first:
                raise CorruptionError(
                    at(name, pos, f"AVML block ends ({last:#x}) before it starts ({first:#x})")
                )
            if self.blocks == MAX_BLOCKS:
                raise CorruptionError(at(name, pos, f"more than {MAX_BLOCKS} AVML blocks"))
            header_unit = len(self._units)
            self._units.add(decoded, 0, 0)
            stream_at = pos + HEADER.size
            want = last - first + 1
            result = framing.walk(
                base, name, stream_at, base.size, self._units, decoded + LIME_HEADER.size, want
            )
            self.s2 = self.s2 or result.s2
            got = result.decoded - decoded - LIME_HEADER.size
            if got < want:
                reason = result.truncated or "the file ends"
                self.notes.append(
                    at(
                        name,
                        stream_at,
                        f"AVML block for {first:#x}-{last:#x} cut short ({reason}): "
                        f"{got:#x} of {want:#x} bytes kept",
                    )
                )
                if got == 0:
                    self._drop_last_unit(header_unit)
                    break
                last = first + got - 1
            elif got > want:
                raise CorruptionError(
                    at(name, stream_at, f"AVML block decodes to {got:#x} bytes, its header says {want:#x}")
                )
            self._literals[header_unit] = LIME_HEADER.pack(LIME_MAGIC, LIME_VERSION, first, last, bytes(8))
            self.blocks += 1
            decoded = result.decoded
            pos = result.pos
            trailer = base.pread(pos, TRAILER.size)
            if got < want or len(trailer) < TRAILER.size:
                if got == want:
                    self.notes.append(at(name, pos, "the last AVML block has no compressed-length trailer"))
                break
            (stated,) = TRAILER.unpack(trailer)
            if stated != pos - stream_at:
                raise CorruptionError(
                    at(
                        name,
                        pos,
                        f"AVML trailer states {stated:#x} compressed bytes; chunks span {pos - stream_at:#x}",
                    )
                )
            pos += TRAILER.size
        if not self.blocks:
            raise FormatError(at(name, 0, "AVML file holds no complete block"))
        self._set_units(self._units.starts, decoded)

    def _drop_last_unit(self, unit: int) -> None:
        for table in (self._units.starts, self._units.comp_off, self._units.comp_end):
            del table[unit:]

    def _decode_unit(self, i: int, out: memoryview | None = None) -> bytes:
        literal = self._literals.get(i)
        if literal is not None:
            if out is not None:
                out[:] = literal
                return b""
            return literal
        return super()._decode_unit(i, out)

    def facts(self) -> list[tuple[str, str]]:
        """Rows for header.txt and ``info --json``."""
        rows = [
            (
                "Container",
                f"AVML v2 ({self.base.name}), {self.blocks} blocks, {len(self._units) - self.blocks} chunks",
            ),
            ("Decoded as", f"LiME image of {self.size:#x} bytes"),
        ]
        return rows + self._status_rows("Undecodable chunks")


def open_stream(source: ByteSource, cache_size: int = DEFAULT_CACHE_SIZE) -> AvmlStream:
    """Open an AVML file (a byte source :func:`probe` accepted) as the LiME image it holds."""
    return AvmlStream(source, cache_size)


FORMAT = FormatSpec(
    name=FORMAT_NAME,
    description="AVML compressed image (avml --compress): LiME ranges in Snappy frames",
    probe=probe,
    open=lambda source, options: AvmlStream(source, options.cache_size),
    kind=CONTAINER,
)
