"""Images whose physical memory is stored uncompressed in segments of one file.

LiME, ELF cores and VMware snapshots all say "physical range [pa, pa+length) is stored at file
offset X": they differ only in where that table lives.  :class:`SegmentedFileSource` takes the
table (a list of :class:`Segment`), checks it once at open time and serves reads with one
``os.pread`` each.  The checks are the ones every such format needs:

* segments are sorted by physical address; two that overlap are an error naming the table entry
  (a reader cannot know which copy is right);
* a segment that reaches past the end of the file is cut at the end of the file (or dropped when it
  starts beyond it), with a note in ``header.txt``: the data that is there is still served and the
  missing part reads as zeros, which is what a truncated acquisition looks like;
* segments that are contiguous both in physical space and in the file are merged, and runs (what
  ``header.txt`` lists) merge all physically adjacent segments, so a LiME file with thousands of
  adjacent ranges still has a short run table.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import NamedTuple

from memfs.exceptions import CorruptionError, at
from memfs.memory import MemorySource

MAX_TRUNCATION_NOTES = 3


class Segment(NamedTuple):
    """``length`` bytes of physical memory at ``pa``, stored at ``offset`` of the data file.

    ``origin`` is the offset of the table entry that described the segment and ``label`` names it
    (``"PT_LOAD #3"``, ``"LiME range"``): both go into error messages.
    """

    pa: int
    offset: int
    length: int
    origin: int
    label: str


class SegmentedFileSource(MemorySource):
    """A source whose physical ranges are stored as plain file ranges (see the module docstring)."""

    def _install_segments(self, segments: Iterable[Segment], table_path: str | None = None) -> None:
        """Validate ``segments`` against the open data file and install them as the run table.

        ``table_path`` is the file the table was read from when it is not the data file (VMware
        metadata); it is the file named in overlap errors.
        """
        table_path = table_path or self.name
        ordered = sorted((s for s in segments if s.length > 0), key=lambda s: (s.pa, s.origin))
        kept: list[Segment] = []
        truncated: list[str] = []
        for seg in ordered:
            if kept and seg.pa < kept[-1].pa + kept[-1].length:
                prev = kept[-1]
                raise CorruptionError(
                    at(
                        table_path,
                        seg.origin,
                        f"{seg.label} maps physical {seg.pa:#x}-{seg.pa + seg.length:#x}, which overlaps "
                        f"{prev.label} (physical {prev.pa:#x}-{prev.pa + prev.length:#x}, "
                        f"described at offset {prev.origin:#x})",
                    )
                )
            available = self.file_size - seg.offset
            if available < seg.length:
                kept_len = max(available, 0)
                truncated.append(
                    at(
                        table_path,
                        seg.origin,
                        f"{seg.label} (physical {seg.pa:#x}-{seg.pa + seg.length:#x}) is stored at "
                        f"{self.name} offset {seg.offset:#x}, but that file ends at {self.file_size:#x}: "
                        f"{seg.length - kept_len:#x} bytes are missing and read as zeros",
                    )
                )
                seg = seg._replace(length=kept_len)
                if kept_len == 0:
                    continue
            if (
                kept
                and seg.pa == kept[-1].pa + kept[-1].length
                and seg.offset == kept[-1].offset + kept[-1].length
            ):
                kept[-1] = kept[-1]._replace(length=kept[-1].length + seg.length)
            else:
                kept.append(seg)
        notes = truncated[:MAX_TRUNCATION_NOTES]
        if len(truncated) > MAX_TRUNCATION_NOTES:
            notes.append(
                f"... and {len(truncated) - MAX_TRUNCATION_NOTES} more segments past the end of the file"
            )
        self.metadata.notes.extend(notes)
        self._segments = kept
        self._segment_starts = [s.pa for s in kept]
        self._set_runs((s.pa, s.length) for s in kept)

    def _read_mapped(self, pa: int, n: int) -> bytes:
        # Runs merge physically adjacent segments, so one run may span several file ranges.
        index = bisect.bisect_right(self._segment_starts, pa) - 1
        seg = self._segments[index]
        if pa + n <= seg.pa + seg.length:
            return self._pread(seg.offset + pa - seg.pa, n)
        pieces = []
        while n > 0:
            seg = self._segments[index]
            take = min(n, seg.pa + seg.length - pa)
            pieces.append(self._pread(seg.offset + pa - seg.pa, take))
            pa, n, index = pa + take, n - take, index + 1
        return b"".join(pieces)

    def _read_mapped_into(self, pa: int, out: memoryview) -> None:
        # As _read_mapped, straight into the caller's buffer (a decoded stream below decodes into it).
        index = bisect.bisect_right(self._segment_starts, pa) - 1
        done = 0
        while done < len(out):
            seg = self._segments[index]
            take = min(len(out) - done, seg.pa + seg.length - pa)
            self._pread_into(seg.offset + pa - seg.pa, out[done : done + take])
            pa, done, index = pa + take, done + take, index + 1
