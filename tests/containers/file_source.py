"""A minimal file-backed byte source (the ``memfs.byte_source`` protocol) for the container tests."""

from __future__ import annotations

import os


class FileSource:
    """``name``, ``size``, ``pread``, ``readinto``, ``close`` over a read-only file descriptor."""

    def __init__(self, path) -> None:
        self.name = str(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size

    def pread(self, offset: int, n: int) -> bytes:
        if offset >= self.size or n <= 0:
            return b""
        return os.pread(self._fd, n, offset)

    def readinto(self, offset: int, out) -> int:
        if offset >= self.size:
            return 0
        return os.preadv(self._fd, [out], offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
