"""A minimal file-backed byte source (the protocol of memfs/byte_source.py) for container tests."""

from __future__ import annotations

import os


class FileByteSource:
    """``name``, ``size``, ``pread``, ``readinto``, ``close`` over a file opened read-only."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = os.fspath(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size
        self.closed = False

    def pread(self, offset: int, n: int) -> bytes:
        return os.pread(self._fd, n, offset)

    def readinto(self, offset: int, out: memoryview) -> int:
        return os.preadv(self._fd, [out], offset)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self.closed = True
