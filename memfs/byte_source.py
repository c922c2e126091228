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
* :meth:`~ByteSource.changes` says whether the evidence file underneath changed since it was opened
  (shrank, grew, was rewritten, replaced or deleted; see
  docs/architecture.md, "Evidence that changes under a mount").  It costs a ``stat`` or two, so
  callers ask at a cadence, not per read.

A container's decoded stream that decodes units keeps its decode cache in ``cache`` (a
:class:`~memfs.cache.UnitCache`, whose budget the layers of a stack share) and records the units that
fail to decode in ``failures`` (a :class:`~memfs.memory.FailureLog`, listed per layer in ``header.txt``);
both are None otherwise.  It may offer :meth:`~ByteSource.verify` (``memfs info --verify``).

Nothing here ever writes: files are opened ``O_RDONLY``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from memfs.exceptions import MemfsError

if TYPE_CHECKING:
    from memfs.cache import UnitCache
    from memfs.memory import FailureLog

Rows = list[tuple[str, str]]
"""``(label, value)`` rows, as ``header.txt`` shows them."""


@dataclass(frozen=True)
class SourceChange:
    """How the evidence file changed after it was opened, and when memfs noticed."""

    path: str
    what: str
    """What changed, in words: ``shrank from 0x... to 0x... bytes``, ``was deleted``, ..."""
    noticed: datetime
    """When memfs noticed (local time, aware): the change happened at or before it."""

    def __str__(self) -> str:
        when = self.noticed.isoformat(timespec="seconds")
        return f"{self.path}: the image file {self.what} (noticed {when}); memfs reads nothing more from it"


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
    base: ByteSource | None = None
    """The byte source this one decodes (a container's stream reads its ``base``); None at the bottom."""
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

    def changes(self) -> SourceChange | None:
        """How the file(s) under this source changed since they were opened, or None if they did not.

        Looks again each time it is called (a ``stat`` or two); once a change is seen it is kept.  A
        decoded stream asks its ``base``; bytes held in memory never change.
        """
        return changes_of(self.base)

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


def content_check_of(source: object) -> Callable[[], bool] | None:
    """The cheap "may the bytes have changed?" check of the file at the bottom of ``source``'s stack
    (:meth:`FileByteSource.content_changed`), or None when the bytes are not a file (held in memory)."""
    while source is not None:
        check = getattr(source, "content_changed", None)
        if check is not None:
            return check
        source = getattr(source, "base", None)
    return None


def changes_of(source: object) -> SourceChange | None:
    """``source.changes()`` for anything read as a byte source, None for ``None``.

    A helper source that does not derive from :class:`ByteSource` (a slice of another source) is
    followed through its ``base``; one with neither reports no change.
    """
    if source is None:
        return None
    method = getattr(source, "changes", None)
    if method is not None:
        return method()
    return changes_of(getattr(source, "base", None))


class FileByteSource(ByteSource):
    """An image file opened read-only; reads are ``os.pread``/``os.preadv`` on its descriptor.

    What the file was when opened (``opened``: device, inode, size, modification and status-change
    times) is kept, so that :meth:`changes` can tell when the file shrinks, grows, is rewritten in place,
    is replaced (the path names another file) or deleted while memfs reads it.
    """

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
        self.opened = info
        self._where = os.path.abspath(path)  # the daemon's working directory becomes /
        # What the path names, by stat: compared with later stats of the path, never with fstat, which
        # may number the same file differently on stacked file systems (overlayfs).
        try:
            named = os.stat(self._where)
        except OSError:
            named = info
        self._named = (named.st_dev, named.st_ino)
        self._change: SourceChange | None = None

    def changes(self) -> SourceChange | None:
        if self._change is None and self.fd is not None and self.fd >= 0:
            what = self._differs()
            if what is not None:
                self._change = SourceChange(self.name, what, datetime.now().astimezone())
        return self._change

    def content_changed(self) -> bool:
        """Whether the bytes behind the descriptor may differ from the file as opened: one ``fstat``
        (size, modification and status-change times), cheap enough to ask after every read that reached
        the file.  A replaced or deleted path leaves these bytes as they were, so :meth:`changes`, which
        also looks at the path, is asked at a slower cadence."""
        try:
            now = os.fstat(self.fd)
        except OSError:
            return True
        was = self.opened
        return (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (
            was.st_size,
            was.st_mtime_ns,
            was.st_ctime_ns,
        )

    def _differs(self) -> str | None:
        """What differs now from the file as opened, or None.  The path is looked at first: deleting or
        replacing a file also changes the status-change time of the one memfs holds open."""
        was = self.opened
        try:
            there = os.stat(self._where)
        except FileNotFoundError:
            return "was deleted or moved away (its path names no file)"
        except OSError as exc:
            return f"can no longer be looked up by its path ({exc.strerror})"
        if (there.st_dev, there.st_ino) != self._named:
            return "was replaced (its path names another file)"
        try:
            now = os.fstat(self.fd)
        except OSError as exc:  # the descriptor is open, so only the file system can refuse (EIO, ESTALE)
            return f"can no longer be examined ({exc.strerror})"
        if now.st_size < was.st_size:
            return f"shrank from {was.st_size:#x} to {now.st_size:#x} bytes"
        if now.st_size > was.st_size:
            return f"grew from {was.st_size:#x} to {now.st_size:#x} bytes"
        if now.st_mtime_ns != was.st_mtime_ns:
            return "was modified in place (its modification time changed)"
        if now.st_ctime_ns != was.st_ctime_ns:
            return (
                "changed status with the same size and modification time (a chmod or chown does this, and so "
                "does a rewrite that restores the modification time; memfs cannot tell them apart)"
            )
        return None

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
