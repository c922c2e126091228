"""The FUSE callbacks: a thin, read-only layer over the mount's virtual files.

Errno policy (docs/architecture.md, "Errors"): a missing path is ENOENT, any attempt to change anything is
EROFS, a page that cannot be decoded is EIO (the source logged it once), and no exception ever
escapes into libfuse.  Files whose content never changes are opened with ``keep_cache`` so the
kernel page cache serves re-reads without calling us (docs/performance.md: 10–15 GB/s).

When the image file changes under the mount (see
docs/architecture.md, "Evidence that changes under a mount") the files that present it fail their
reads with EIO, and the pages the kernel already caches must go too: from then on ``getattr``
reports the time of the change as the files' modification time, which makes the kernel drop their
cached pages the next time it revalidates their attributes (libfuse 3 asks the kernel for
``auto_inval_data``; attributes live ``attr_timeout``, one second), and every open looks at the file
first (two ``stat`` calls) and, once it changed, gets ``direct_io`` instead of ``keep_cache``, which
makes the kernel drop the file's cached pages at once, for every handle (libfuse 2 as well).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from memfs.exceptions import MemfsError, internal_error
from memfs.fuse.libfuse import import_mfusepy
from memfs.views.base import VirtualFile

mfusepy = import_mfusepy()  # chooses the libfuse before mfusepy loads one
FuseOSError = mfusepy.FuseOSError

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20
"""``st_blksize`` we advertise, so that ``cp``, ``dd`` and friends issue 1 MiB reads."""


def mount_modes(allow_other: bool, world_readable: bool = False) -> tuple[int, int]:
    """(file mode, directory mode) of a mount.

    Physical memory holds passwords and keys, so a mount other users may enter (``allow_other``)
    lets in the owner and one group only (0440 / 0550), unless the user asked for everyone.  A
    private mount keeps 0444 / 0555: FUSE itself refuses every other user there.
    """
    if allow_other and not world_readable:
        return 0o440, 0o550
    return 0o444, 0o555


def _read_only(*_: Any, **__: Any) -> int:
    raise FuseOSError(errno.EROFS)


class MemfsOperations(mfusepy.Operations):
    """Serve a flat directory of :class:`VirtualFile` objects, read-only."""

    use_ns = True

    def __init__(
        self,
        files: dict[str, VirtualFile],
        on_ready: Callable[[], None] | None = None,
        *,
        gid: int | None = None,
        modes: tuple[int, int] = (0o444, 0o555),
    ) -> None:
        """``gid`` owns the files (default: the mounting user's group); ``modes`` from :func:`mount_modes`."""
        self.files = files
        self._on_ready = on_ready
        self._uid = os.getuid()
        self._gid = os.getgid() if gid is None else gid
        self._file_mode, self._dir_mode = modes
        self._time_ns = time.time_ns()
        self._logged_unexpected: set[str] = set()
        self._lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------------

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        """Called once the kernel has accepted the mount: tell whoever waits that it is ready.

        (Lookup timeouts are mount options, ``mount._fuse_options``: libfuse 2 has no ``config_3``.)
        """
        if self._on_ready is not None:
            self._on_ready()

    # -- lookups --------------------------------------------------------------------------------

    def _file(self, path: str) -> VirtualFile:
        file = self.files.get(path.lstrip("/"))  # names hold no "/": a deeper path finds nothing
        if file is None:
            raise FuseOSError(errno.ENOENT)
        return file

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        """Directory ``/`` and read-only regular files, with the modes of :func:`mount_modes`."""
        common = {
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_atime": self._time_ns,
            "st_mtime": self._time_ns,
            "st_ctime": self._time_ns,
            "st_blksize": BLOCK_SIZE,
        }
        if path == "/":
            return {**common, "st_mode": stat.S_IFDIR | self._dir_mode, "st_nlink": 2, "st_size": 0}
        file = self._file(path)
        size = self._guarded(path, lambda: file.size)
        change = self._guarded(path, file.changed)
        if change is not None:
            changed_ns = int(change.noticed.timestamp() * 1_000_000_000)
            common.update(st_mtime=changed_ns, st_ctime=changed_ns)
        return {
            **common,
            "st_mode": stat.S_IFREG | self._file_mode,
            "st_nlink": 1,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
        }

    def readdir(self, path: str, fh: Any) -> list[str]:
        """The root lists the mount's files; there are no subdirectories."""
        if path != "/":
            raise FuseOSError(errno.ENOTDIR if path.lstrip("/") in self.files else errno.ENOENT)
        return [".", "..", *self.files]

    def open(self, path: str, fi: Any) -> int:
        """Refuse writers; enable the kernel page cache for files whose content is fixed."""
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise FuseOSError(errno.EROFS)
        file = self._file(path)
        if file.cacheable and self._guarded(path, lambda: file.changed(now=True)) is None:
            fi.keep_cache = 1
        else:
            fi.direct_io = 1
        return 0

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        """Bytes of the file; EIO when the data behind them cannot be decoded.

        memfs's own FUSE subclass serves reads through :meth:`read_into`; this method is what plain
        mfusepy calls, and its presence is what makes mfusepy register the read callback at all.
        """
        file = self._file(path)
        return self._guarded(path, lambda: file.read(offset, size))

    def read_into(self, path: str, buffer: memoryview, offset: int, fh: Any) -> int:
        """Fill libfuse's reply ``buffer`` (see :class:`memfs.fuse.mount`'s FUSE subclass); EIO as read."""
        file = self._file(path)
        return self._guarded(path, lambda: file.read_into(offset, buffer))

    def _guarded(self, path: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except FuseOSError:
            raise
        except MemfsError as exc:
            # The source has already logged this unit once (memory.FailureLog).
            log.debug("%s: %s", path, exc)
            raise FuseOSError(errno.EIO) from None
        except Exception as exc:  # a bug must cost one read, not the daemon
            line = internal_error(exc)
            key = line.rsplit(" at ", 1)[-1]  # once per place in memfs, whatever the offsets in the message
            with self._lock:
                first = key not in self._logged_unexpected
                self._logged_unexpected.add(key)
            if first:
                log.error("%s: %s (the read fails with EIO; please report it)", path, line)
                log.debug("traceback", exc_info=True)
            raise FuseOSError(errno.EIO) from None

    def statfs(self, path: str) -> dict[str, int]:
        """A read-only filesystem with no free space."""
        total = sum(f.size for f in self.files.values())
        return {
            "f_bsize": BLOCK_SIZE,
            "f_frsize": BLOCK_SIZE,
            "f_blocks": (total + BLOCK_SIZE - 1) // BLOCK_SIZE,
            "f_bfree": 0,
            "f_bavail": 0,
            "f_files": len(self.files),
            "f_ffree": 0,
            "f_namemax": 255,
        }

    def access(self, path: str, amode: int) -> int:
        """Nothing here may be written or executed."""
        if amode & os.W_OK:
            raise FuseOSError(errno.EROFS)
        if path != "/":
            self._file(path)
        return 0

    # Everything that would change the filesystem.
    write = truncate = create = mkdir = rmdir = unlink = rename = symlink = link = _read_only
    chmod = chown = utimens = mknod = setxattr = removexattr = _read_only
