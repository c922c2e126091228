"""Byte sources: the bottom of every stack of layers (docs/architecture.md, "Sources and containers").

A :class:`ByteSource` is a sized, read-only run of bytes that can be read at any offset: an image
file (:class:`FileByteSource`), bytes held in memory (:class:`BufferByteSource`), or the decoded
stream of a container (a ``.zdmp``, a gzip, ...), which reads its own base source.  Format readers
(:class:`~memfs.memory.MemorySource` subclasses) and container openers take a byte source, never a
path, so that one format can sit on another.

The protocol every byte source keeps:

* ``name`` is what error messages call it: the path of a file as the user gave it, or the outer
  name with a suffix for a decoded layer (``evidence.zdmp[decoded]``);
* ``size`` is its length in bytes, known when it is opened;
* :meth:`~ByteSource.pread` and :meth:`~ByteSource.readinto` return fewer bytes than asked only at
  the end of the source; both are safe to call from several threads at once (FUSE serves reads in
  parallel) and neither moves a shared position;
* :meth:`~ByteSource.close` releases what it holds, including the source below it, and may be
  called more than once;
* a stream that decodes units keeps its decode cache in ``cache`` (a :class:`~memfs.cache.UnitCache`,
  whose budget the layers of a stack share) and records the units that fail to decode in ``failures``
  (a :class:`~memfs.memory.FailureLog`, which ``header.txt`` lists per layer); both are None otherwise.

Nothing here ever writes: files are opened ``O_RDONLY``.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from memfs.exceptions import MemfsError

if TYPE_CHECKING:
    from memfs.cache import UnitCache
    from memfs.memory import FailureLog

Rows = list[tuple[str, str]]
"""``(label, value)`` rows, as ``header.txt`` shows them."""


class ByteSource:
    """A sized, read-only byte stream with positional reads (see the module docstring)."""

    name: str = "<bytes>"
    size: int = 0
    path: str | None = None
    """The file's path, for a source that is a plain file (VMware looks for files beside it); else None."""
    fd: int | None = None
    """An OS descriptor whose offsets are this source's offsets, when there is one.

    Readers on a hot path call ``os.pread(fd, ...)`` on it directly: no Python frame per read.
    """
    cache: UnitCache | None = None
    """The decode cache of a stream that keeps one (see the module docstring)."""
    failures: FailureLog | None = None
    """The units of a decoded stream that failed to decode, each logged once (see the module docstring)."""

    def pread(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``: all of them unless the source ends first."""
        raise NotImplementedError

    def readinto(self, offset: int, out: memoryview) -> int:
        """Fill ``out`` from ``offset``; return the bytes filled (fewer only at the end of the source).

        The default copies :meth:`pread`; sources that can decode or read straight into ``out``
        override it.
        """
        data = self.pread(offset, len(out))
        out[: len(data)] = data
        return len(data)

    def facts(self) -> Rows:
        """What this source knows about itself, for ``header.txt`` and ``info --json`` (none by default).

        A container's decoded stream states here what the container said (block counts, sizes, ...).
        """
        return []

    def close(self) -> None:
        """Release what the source holds (none by default)."""

    def __enter__(self) -> ByteSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}, {self.size} bytes>"


class FileByteSource(ByteSource):
    """An image file opened read-only; reads are ``os.pread``/``os.preadv`` on its descriptor."""

    def __init__(self, path: str) -> None:
        """Open ``path``; a missing file, a directory or no permission is a one-line MemfsError."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MemfsError(f"{path}: no such file") from None
        except PermissionError:
            raise MemfsError(f"{path}: permission denied") from None
        except OSError as exc:
            raise MemfsError(f"{path}: cannot open: {exc.strerror}") from None
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):  # os.open(O_RDONLY) succeeds on a directory on Linux
            os.close(fd)
            raise MemfsError(f"{path}: is a directory, not an image file")
        self.fd = fd
        self.path = path
        self.name = path
        self.size = info.st_size

    def pread(self, offset: int, n: int) -> bytes:
        data = os.pread(self.fd, n, offset)
        if len(data) == n or not data:
            return data
        # Linux cuts one read at 2 GiB - 4 KiB; keep the "short only at the end" promise beyond that.
        pieces, done = [data], len(data)
        while done < n:
            more = os.pread(self.fd, n - done, offset + done)
            if not more:
                break
            pieces.append(more)
            done += len(more)
        return b"".join(pieces)

    def readinto(self, offset: int, out: memoryview) -> int:
        done = os.preadv(self.fd, [out], offset)
        while 0 < done < len(out):
            more = os.preadv(self.fd, [out[done:]], offset + done)
            if not more:
                break
            done += more
        return done

    def close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1  # later reads fail with EBADF instead of reading another file's descriptor


class BufferByteSource(ByteSource):
    """Bytes held in memory, under a ``name`` for messages (tests, small decoded streams)."""

    def __init__(self, name: str, data: bytes | bytearray | memoryview) -> None:
        self.name = name
        self._data = memoryview(data).cast("B").toreadonly()
        self.size = len(self._data)

    def pread(self, offset: int, n: int) -> bytes:
        return bytes(self._data[offset : offset + n])

    def readinto(self, offset: int, out: memoryview) -> int:
        piece = self._data[offset : offset + len(out)]
        out[: len(piece)] = piece
        return len(piece)
