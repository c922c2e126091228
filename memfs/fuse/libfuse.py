"""Which libfuse serves memfs mounts, chosen before mfusepy loads one, and what that version accepts.

mfusepy, left to itself, loads ``find_library('fuse')`` first: libfuse 2 wherever it is installed
beside libfuse 3 (wimlib, AppImage support and many desktops pull it in), and then every mount
fails on the first libfuse-3-only option.  memfs chooses instead, in this order, and tells mfusepy
through ``FUSE_LIBRARY_PATH`` (the variable mfusepy reads when it is imported):

1. ``FUSE_LIBRARY_PATH`` if the user set it: an explicit override, used as given;
2. libfuse 3: ``libfuse3.so.4`` (the soname Debian 13 ships 3.17 under), then ``libfuse3.so.3``;
3. libfuse 2 (``libfuse.so.2``) only when no libfuse 3 loads.

The loaded library is asked its version (``fuse_version()``, and ``fuse_pkgversion()`` on libfuse
3), and mount options follow it: ``max_threads`` exists only from libfuse 3.12, and libfuse 2 has
no thread limit at all.  libfuse 2 cannot negotiate requests larger than 128 KiB (the kernel's
default), so it serves the same files with four times as many read requests as libfuse 3's 1 MiB
(docs/benchmarks.md); it is the fallback, not the choice.

Nothing here imports mfusepy: ``memfs doctor`` and ``memfs --version`` describe the library
without mounting, and :func:`import_mfusepy` is the one way the FUSE layer imports the binding.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass
from types import ModuleType

from memfs.exceptions import MissingDependencyError

LIBRARY_VARIABLE = "FUSE_LIBRARY_PATH"
"""The environment variable mfusepy loads its library from; memfs honours it as an override."""

LIBFUSE3_SONAMES = ("libfuse3.so.4", "libfuse3.so.3")
"""libfuse 3 sonames, preferred first (Debian 13 renamed the 3.17 library to ``.so.4``)."""

LIBFUSE2_SONAMES = ("libfuse.so.2",)
"""libfuse 2, loaded only when no libfuse 3 is present."""

MAX_THREADS_SINCE = (3, 12)
"""The first libfuse that knows ``-o max_threads`` (3.10 and 3.11 refuse it as unknown)."""

INSTALL_HINT = "install libfuse 3 (Debian/Ubuntu: sudo apt-get install fuse3)"


@dataclass(frozen=True)
class LibFuse:
    """A loaded libfuse: which file, which version, and how it was chosen."""

    path: str
    """The library file the dynamic linker loaded (or the name it was asked for, if it cannot say)."""
    api: tuple[int, int]
    """``fuse_version()``: the API major and minor version (``(3, 14)``, ``(2, 9)``)."""
    release: str
    """The full release, ``"3.14.0"`` (``fuse_pkgversion()``; for libfuse 2 from the file name)."""
    chosen_by: str
    """``"FUSE_LIBRARY_PATH"`` when the user's variable named it, else ``"memfs"``."""

    @property
    def major(self) -> int:
        return self.api[0]

    @property
    def knows_max_threads(self) -> bool:
        """Whether ``-o max_threads`` is an option this library accepts."""
        return self.api >= MAX_THREADS_SINCE

    @property
    def largest_read(self) -> int:
        """The largest read request the kernel sends through this library (bytes).

        libfuse 3 negotiates 1 MiB requests (``max_pages``); libfuse 2 predates that and gets the
        kernel's default of 32 pages.
        """
        return 1 << 20 if self.major >= 3 else 128 << 10

    @property
    def largest_read_text(self) -> str:
        """:attr:`largest_read` for people: ``1 MiB``, ``128 KiB``."""
        size = self.largest_read
        return f"{size >> 20} MiB" if size % (1 << 20) == 0 else f"{size >> 10} KiB"

    def describe(self) -> str:
        """``libfuse 3.14.0 (/lib/x86_64-linux-gnu/libfuse3.so.3)``, plus how it was chosen."""
        text = f"libfuse {self.release} ({self.path})"
        if self.chosen_by == LIBRARY_VARIABLE:
            text += f", chosen by {LIBRARY_VARIABLE}"
        return text


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _loaded_file(function: ctypes._CFuncPtr, fallback: str) -> str:
    """The file a loaded symbol lives in (``dladdr``), resolved; ``fallback`` if it cannot be told."""
    try:
        dladdr = ctypes.CDLL(None).dladdr  # glibc >= 2.34 has it in libc, older ones in libdl
    except AttributeError:
        try:
            dladdr = ctypes.CDLL("libdl.so.2").dladdr
        except (OSError, AttributeError):
            return fallback
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    if not dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(info)) or not info.dli_fname:
        return fallback
    return os.path.realpath(os.fsdecode(info.dli_fname))


def _api_version(number: int) -> tuple[int, int]:
    # FUSE_MAKE_VERSION is major * 10 + minor in libfuse 2 and major * 100 + minor in libfuse 3.
    return divmod(number, 10) if number < 100 else divmod(number, 100)


def _describe_library(handle: ctypes.CDLL, name: str, chosen_by: str) -> LibFuse:
    try:
        version_function = handle.fuse_version
    except AttributeError:
        raise MissingDependencyError(f"{name}: not a libfuse library (it has no fuse_version())") from None
    version_function.restype = ctypes.c_int
    api = _api_version(version_function())
    path = _loaded_file(version_function, name)
    release = ""
    if hasattr(handle, "fuse_pkgversion"):  # libfuse 3 only
        handle.fuse_pkgversion.restype = ctypes.c_char_p
        release = (handle.fuse_pkgversion() or b"").decode(errors="replace")
    if not release:
        match = re.search(r"\.so\.(\d+(?:\.\d+)+)$", path)
        release = match.group(1) if match else f"{api[0]}.{api[1]}"
    if not (api[0] == 3 or (api[0] == 2 and api[1] >= 6)):
        raise MissingDependencyError(
            f"{path}: libfuse {release} is not supported (memfs needs libfuse 3, or 2.6 or later); "
            + INSTALL_HINT
        )
    return LibFuse(path=path, api=api, release=release, chosen_by=chosen_by)


def find_libfuse(environ: dict[str, str] | os._Environ = os.environ) -> LibFuse:
    """Load the libfuse memfs should use (see the module docstring); raise with the fix if none loads."""
    override = environ.get(LIBRARY_VARIABLE)
    if override:
        try:
            handle = ctypes.CDLL(override)
        except OSError as exc:
            raise MissingDependencyError(
                f"{LIBRARY_VARIABLE}={override}: cannot load it ({exc}); unset it to let memfs choose"
            ) from None
        return _describe_library(handle, override, LIBRARY_VARIABLE)
    for soname in LIBFUSE3_SONAMES + LIBFUSE2_SONAMES:
        try:
            handle = ctypes.CDLL(soname)
        except OSError:
            continue
        return _describe_library(handle, soname, "memfs")
    tried = ", ".join(LIBFUSE3_SONAMES + LIBFUSE2_SONAMES)
    raise MissingDependencyError(f"no libfuse found (tried {tried}); {INSTALL_HINT}")


_selected: LibFuse | None = None


def select_libfuse() -> LibFuse:
    """The libfuse this process mounts with, chosen once (:func:`find_libfuse`)."""
    global _selected
    if _selected is None:
        _selected = find_libfuse()
    return _selected


def import_mfusepy() -> ModuleType:
    """mfusepy, bound to :func:`select_libfuse`'s library (the only way memfs imports the binding).

    The variable is set only while mfusepy is imported (it reads it then), so processes memfs
    starts see the user's environment, not memfs's choice.
    """
    lib = select_libfuse()
    previous = os.environ.get(LIBRARY_VARIABLE)
    os.environ[LIBRARY_VARIABLE] = lib.path
    try:
        import mfusepy
    except ImportError as exc:
        raise MissingDependencyError(f"cannot mount: mfusepy is not installed ({exc})") from None
    except (OSError, AttributeError) as exc:  # mfusepy loads and checks the library when imported
        raise MissingDependencyError(f"cannot mount: mfusepy refuses {lib.describe()}: {exc}") from None
    finally:
        if previous is None:
            del os.environ[LIBRARY_VARIABLE]
        else:
            os.environ[LIBRARY_VARIABLE] = previous
    loaded = getattr(mfusepy, "_libfuse_path", lib.path)
    if loaded != lib.path:  # imported earlier, before memfs chose
        raise MissingDependencyError(f"mfusepy was loaded with {loaded} before memfs chose {lib.describe()}")
    return mfusepy


__all__ = ["LibFuse", "find_libfuse", "import_mfusepy", "select_libfuse"]
