"""Byte sources made of other byte sources, and the file-object view libraries need.

* :class:`SliceSource` — a range of another source (a stored archive member).
* :class:`ConcatSource` — pieces back to back: ranges of sources and literal bytes (a ZIP member's
  raw deflate data between a made-up gzip header and trailer, so a gzip library can index it).
* :class:`SourceFile` — a read-only, seekable :class:`io.RawIOBase` over a source, for libraries that
  take file objects (rapidgzip, zipfile, tarfile, pyewf).  Each instance has its own position; reads
  are ``pread`` calls, so several instances may share one source.
"""

from __future__ import annotations

import bisect
import io

from memfs.byte_source import ByteSource


class SliceSource(ByteSource):
    """``length`` bytes of ``base`` from ``offset``; closing it leaves ``base`` open."""

    def __init__(self, base: ByteSource, offset: int, length: int, name: str) -> None:
        self.base, self.offset, self.name = base, offset, name
        self.size = max(0, min(length, base.size - offset))

    def pread(self, offset: int, n: int) -> bytes:
        n = min(n, self.size - offset)
        return self.base.pread(self.offset + offset, n) if offset >= 0 and n > 0 else b""

    def readinto(self, offset: int, out) -> int:
        out = memoryview(out).cast("B")
        n = min(len(out), self.size - offset)
        return self.base.readinto(self.offset + offset, out[:n]) if offset >= 0 and n > 0 else 0

    def close(self) -> None:
        """Nothing to release: the base source belongs to whoever opened it."""


class ConcatSource(ByteSource):
    """Pieces back to back; a piece is ``bytes`` or a source (read whole)."""

    def __init__(self, pieces: list, name: str) -> None:
        self.name = name
        self._pieces = pieces
        self._starts = []
        pos = 0
        for piece in pieces:
            self._starts.append(pos)
            pos += len(piece) if isinstance(piece, bytes) else piece.size
        self.size = pos

    def pread(self, offset: int, n: int) -> bytes:
        out = bytearray(max(0, min(n, self.size - offset)))
        got = self.readinto(offset, memoryview(out))
        return bytes(out[:got])

    def readinto(self, offset: int, out) -> int:
        out = memoryview(out).cast("B")
        end = min(offset + len(out), self.size)
        if offset < 0 or offset >= end:
            return 0
        i = bisect.bisect_right(self._starts, offset) - 1
        pos = offset
        while pos < end:
            piece, start = self._pieces[i], self._starts[i]
            length = len(piece) if isinstance(piece, bytes) else piece.size
            take = min(start + length - pos, end - pos)
            target = out[pos - offset : pos - offset + take]
            if isinstance(piece, bytes):
                target[:] = piece[pos - start : pos - start + take]
            elif piece.readinto(pos - start, target) != take:
                return pos - offset
            pos += take
            i += 1
        return end - offset

    def close(self) -> None:
        """Nothing to release: the pieces belong to whoever made them."""


class SourceFile(io.RawIOBase):
    """A read-only file object over a byte source (position kept here, reads are ``pread``)."""

    def __init__(self, source: ByteSource) -> None:
        super().__init__()
        self.source = source
        self.name = source.name
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.source.size}[whence]
        if base + offset < 0:
            raise OSError(f"{self.name}: seek before the start")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        got = (
            self.source.readinto(self._pos, memoryview(buffer).cast("B"))
            if self._pos < self.source.size
            else 0
        )
        self._pos += got
        return got

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.source.size - self._pos)
        data = self.source.pread(self._pos, size) if self._pos < self.source.size else b""
        self._pos += len(data)
        return data
