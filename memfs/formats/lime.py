"""LiME (Linux Memory Extractor) images in ``format=lime``.

Structure relied on (sources in brackets):

* The file is a sequence of ranges, each a 32-byte little-endian header followed directly by the
  range's bytes; there is nothing before the first header and nothing after the last range
  [LiME doc/README.md, "LiME Memory Range Header Version 1 Specification"; volatility3
  ``layers/lime.py`` walks the file the same way].
* Header: ``magic`` u32 = 0x4C694D45 ("EMiL" on disk), ``version`` u32 = 1, ``s_addr`` u64 first
  physical address, ``e_addr`` u64 *last* physical address (inclusive: the range holds
  ``e_addr - s_addr + 1`` bytes), ``reserved`` 8 bytes of zeros [LiME spec; volatility3 computes
  the length as ``end - start + 1``].
* Ranges are written in ascending order with gaps for non-RAM [LiME ``main.c`` walks the kernel's
  "System RAM" resources in order].  memfs does not rely on the order: ranges are sorted, gaps read
  as zeros, and overlapping ranges are an error (volatility3 rejects out-of-order files; memfs
  accepts them).

A truncated final range keeps the bytes that are there (note in ``header.txt``); fewer than 32 bytes
after the last range are reported as ignored trailing bytes.  A header with a bad magic or version
in the middle of the file is an error: the chain cannot be followed past it.
"""

from __future__ import annotations

import struct

from memfs.byte_source import ByteSource
from memfs.exceptions import CorruptionError, FormatError, at
from memfs.formats.base import FormatSpec, OpenOptions, ProbeInput
from memfs.formats.segmented import Segment, SegmentedFileSource
from memfs.memory import PHYSICAL_LIMIT, Section

LIME_MAGIC = 0x4C694D45
LIME_VERSION = 1
HEADER = struct.Struct("<IIQQ8s")
MAX_RANGES = 1 << 20  # real images have tens; a bound keeps a hostile file from stalling the open
MAX_LISTED_RANGES = 100


class LimeSource(SegmentedFileSource):
    """A LiME file: every range header found by walking the file from offset 0."""

    format_name = "lime"

    def __init__(self, data: ByteSource) -> None:
        super().__init__(data)
        try:
            self._ranges = self._walk()
            self._install_segments(
                Segment(start, origin + HEADER.size, length, origin, f"LiME range #{i}")
                for i, (origin, start, length) in enumerate(self._ranges)
            )
        except BaseException:
            self.close()
            raise
        meta = self.metadata
        starts = [start for _, start, _ in self._ranges]
        ordered = starts == sorted(starts)
        meta.format_detail = f"LiME v{LIME_VERSION}, {len(self._ranges)} ranges" + (
            "" if ordered else " (not in address order; sorted by memfs)"
        )
        reason = "a LiME image holds physical memory only, no system values"
        for name in ("arch", "os_build", "directory_table_base", "kd_debugger_data_block"):
            meta.unknown(name, reason)

    def _walk(self) -> list[tuple[int, int, int]]:
        """Follow the header chain: ``[(header offset, s_addr, length), ...]``."""
        ranges: list[tuple[int, int, int]] = []
        offset = 0
        while offset < self.file_size:
            remaining = self.file_size - offset
            if remaining < HEADER.size:
                if not ranges:
                    raise CorruptionError(
                        at(self.name, offset, f"LiME header truncated: {remaining} of {HEADER.size} bytes")
                    )
                self.metadata.notes.append(
                    at(self.name, offset, f"{remaining} trailing bytes after the last LiME range ignored")
                )
                break
            magic, version, start, end, _ = HEADER.unpack(self._pread(offset, HEADER.size))
            if magic != LIME_MAGIC:
                raise CorruptionError(
                    at(
                        self.name,
                        offset,
                        f"expected a LiME range header (magic {LIME_MAGIC:#x}), found {magic:#x}",
                    )
                )
            if version != LIME_VERSION:
                raise FormatError(at(self.name, offset + 4, f"unsupported LiME header version {version}"))
            if end < start:
                raise CorruptionError(
                    at(self.name, offset, f"LiME range ends ({end:#x}) before it starts ({start:#x})")
                )
            if end >= PHYSICAL_LIMIT:
                raise CorruptionError(
                    at(
                        self.name,
                        offset + 16,
                        f"LiME range {start:#x}-{end:#x} ends beyond the 52-bit physical address space",
                    )
                )
            length = end - start + 1
            if len(ranges) == MAX_RANGES:
                raise CorruptionError(at(self.name, offset, f"more than {MAX_RANGES} LiME ranges"))
            ranges.append((offset, start, length))
            offset += HEADER.size + length
        return ranges

    def describe(self) -> list[Section]:
        rows = [
            (f"#{i} at {origin:#x}", f"physical {start:#x}-{start + length:#x} ({length} bytes)")
            for i, (origin, start, length) in enumerate(self._ranges[:MAX_LISTED_RANGES])
        ]
        if len(self._ranges) > MAX_LISTED_RANGES:
            rows.append(("", f"... and {len(self._ranges) - MAX_LISTED_RANGES} more"))
        return [Section("LiME ranges (file order)", rows)]


def _probe(probe: ProbeInput) -> bool:
    return len(probe.head) >= 4 and struct.unpack_from("<I", probe.head)[0] == LIME_MAGIC


def _open(data: ByteSource, options: OpenOptions) -> LimeSource:
    return LimeSource(data)


FORMAT = FormatSpec(name="lime", description="LiME memory image (format=lime)", probe=_probe, open=_open)
