"""Raw memory images compressed as a Snappy or S2 framed stream (go-winpmem, Velociraptor ``winpmem()``).

What the writers produce (docs/formats/snappy-s2.md §4, sources there): go-winpmem ``acquire
--compression snappy|s2`` and Velociraptor's ``winpmem(compression=...)`` (``Windows.Memory.Acquisition``,
uploaded as ``PhysicalMemory.dd``) write the whole physical address space from 0 as one framed stream,
holes included as zeros (sparse output is turned off when compressing).  ``snappy`` is klauspost's
Snappy-compatible writer: chunks of at most 65,528 decoded bytes, one flush per 4 MiB write.  ``s2`` is
klauspost's S2 writer with default options: 1 MiB chunks and no seek index.  Streams made with
``s2c -index`` or ``WriterAddIndex`` end in a seek index (§3).

Opening: with a seek index, its entries become the units (no walk: open time is independent of image
size); without one, every chunk header is read once (16 bytes per chunk) and each data chunk is a unit.
A stream cut short keeps the chunks that are whole and says what is missing in :attr:`notes`.
"""

from __future__ import annotations

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers import framing, s2index
from memfs.exceptions import CorruptionError, FormatError, at
from memfs.formats.base import CONTAINER, FormatSpec, OpenOptions, ProbeInput

FORMAT_SNAPPY = "snappy"
FORMAT_S2 = "s2"
MAX_SPAN = (
    64 << 20
)  # decoded bytes of one index entry: klauspost keeps entries 1 MiB+ apart, ≤ 65,536 of them


def probe_snappy(p: ProbeInput) -> bool:
    """A Snappy framed stream starts with the stream identifier chunk ``sNaPpY`` (docs/formats/snappy-s2.md
    §1.2)."""
    return p.head.startswith(framing.STREAM_START_SNAPPY)


def probe_s2(p: ProbeInput) -> bool:
    """An S2 framed stream starts with the stream identifier chunk ``S2sTwO`` (docs/formats/snappy-s2.md
    §1.2)."""
    return p.head.startswith(framing.STREAM_START_S2)


class FramedStream(framing.FramedUnitStream):
    """The decoded bytes of a Snappy/S2 framed stream."""

    def __init__(self, base, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(base, f"{base.name}[decoded]", cache_size)
        self.s2 = framing.check_flavour_start(base.pread(0, 10), base.name)
        self.format_name = FORMAT_S2 if self.s2 else FORMAT_SNAPPY
        self.index: s2index.SeekIndex | None = None
        try:
            self.index = s2index.find(base, base.name, base.size)
        except CorruptionError as exc:
            self.notes.append(f"seek index ignored, stream walked instead: {exc}")
        if self.index is not None:
            try:
                self._from_index(self.index)
            except CorruptionError as exc:
                self.notes.append(f"seek index ignored, stream walked instead: {exc}")
                self.index, self._units = None, framing.FramedUnits()
        if self.index is None:
            self._walk()

    def _from_index(self, index: s2index.SeekIndex) -> None:
        entries = index.entries
        if not entries or entries[0][0] != 0:
            entries = [(0, 0), *entries]
        ends = [c for _, c in entries[1:]] + [index.chunk_offset]
        sizes = [d for d, _ in entries[1:]] + [index.total_decoded]
        for (decoded, comp), comp_end, decoded_end in zip(entries, ends, sizes, strict=True):
            if not 0 < decoded_end - decoded <= MAX_SPAN or not 0 < comp_end - comp <= 2 * MAX_SPAN:
                raise CorruptionError(
                    at(self.base.name, index.chunk_offset, f"S2 index entry at decoded {decoded:#x} spans "
                       f"{decoded_end - decoded:#x} decoded / {comp_end - comp:#x} compressed bytes")
                )  # fmt: skip
            self._units.add(decoded, comp, comp_end)
        self._set_units(self._units.starts, index.total_decoded)
        self.how = f"S2 seek index at {index.chunk_offset:#x} ({len(index.entries)} entries)"

    def _walk(self) -> None:
        result = framing.walk(self.base, self.base.name, 0, self.base.size, self._units, s2=self.s2)
        self.s2 = self.s2 or result.s2
        if result.truncated:
            self.notes.append(
                at(
                    self.base.name,
                    result.pos,
                    f"stream cut short: {result.truncated}; the decoded image ends at {result.decoded:#x}",
                )
            )
        self._set_units(self._units.starts, result.decoded)
        self.how = f"chunk headers walked ({len(self._units)} data chunks)"

    def facts(self) -> list[tuple[str, str]]:
        """Rows for header.txt and ``info --json``: the container, how it was indexed, what failed."""
        rows = [
            ("Container", f"{'S2' if self.s2 else 'Snappy'} framed stream ({self.base.name})"),
            ("Indexed by", self.how),
            ("Decoded size", f"{self.size:#x} bytes from {self.base.size:#x} compressed"),
        ]
        return rows + self._status_rows("Undecodable chunks")


def open_stream(source: ByteSource, cache_size: int = DEFAULT_CACHE_SIZE) -> FramedStream:
    """Open ``source`` (a byte source that starts with a stream identifier) as its decoded stream."""
    return FramedStream(source, cache_size)


def _opener(flavour: str):
    def open_flavour(source: ByteSource, options: OpenOptions) -> FramedStream:
        stream = FramedStream(source, options.cache_size)
        if stream.format_name != flavour:  # only when --format names the other flavour
            what = f"the stream identifier says {stream.format_name}, not {flavour}"
            raise FormatError(at(source.name, 0, what))
        return stream

    return open_flavour


SNAPPY = FormatSpec(
    name=FORMAT_SNAPPY,
    description="Snappy framed stream (go-winpmem/Velociraptor --compression snappy)",
    probe=probe_snappy,
    open=_opener(FORMAT_SNAPPY),
    kind=CONTAINER,
    holds="raw",  # go-winpmem and Velociraptor write raw images only (docs/formats/snappy-s2.md §4)
)
S2 = FormatSpec(
    name=FORMAT_S2,
    description="S2 framed stream, with or without a seek index (go-winpmem/Velociraptor --compression s2)",
    probe=probe_s2,
    open=_opener(FORMAT_S2),
    kind=CONTAINER,
    holds="raw",  # go-winpmem and Velociraptor write raw images only (docs/formats/snappy-s2.md §4)
)

__all__ = ["FORMAT_S2", "FORMAT_SNAPPY", "S2", "SNAPPY", "FramedStream", "open_stream"]
