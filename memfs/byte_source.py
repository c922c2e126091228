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
  called more than once.

A container's decoded stream may also keep a ``failures`` log (:class:`~memfs.memory.FailureLog`:
units that did not decode, shown per layer in ``header.txt``) and offer :meth:`~ByteSource.verify`
(``memfs info --verify``).

Nothing here ever writes: files are opened ``O_RDONLY``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from memfs.exceptions import MemfsError

Rows = list[tuple[str, str]]
"""``(label, value)`` rows, as ``header.txt`` shows them."""


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`ByteSource.verify` found: how many of a layer's units passed the check."""

    units: str
    """What was checked, in the plural ("blocks")."""
    check: str
    """How ("CRC32 of the stored payload")."""
    good: int
    bad: int
    missing: int = 0
    """Units the layer's own index expects but the file does not hold (a truncated file)."""

    @property
    def ok(self) -> bool:
        """Whether every unit is present and passed."""
        return not self.bad and not self.missing


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

    def verify(self) -> VerifyResult | None:
        """Check every unit of this layer without decoding it, where the format allows (a checksum of the
        stored bytes); record the bad ones in ``failures``.

        None, the default, when the layer has nothing to check that way: its units are then checked only
        as they are read (a checksum of the decoded bytes needs the decoding).
        """
        return None

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
