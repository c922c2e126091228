"""gzip-compressed images (``.gz``, go-winpmem ``--compression gzip``), read at random through ``rapidgzip``.

gzip has no index: a reader must inflate the whole stream once to learn its size and where to resume
(docs/formats/gzip.md §1-§2).  ``rapidgzip`` does that pass in parallel and keeps seek points with
compressed windows; ``indexed_gzip`` was the other candidate.  Measured on the same 128 MiB memory-like
image (gzip -1, 2 cores, load 3.5; docs/formats/gzip.md §4): index pass 0.32 s vs 0.39 s, random 4 KiB read
median
1.5 ms vs 47 ms (indexed_gzip at 4 MiB seek-point spacing; denser spacing costs 32 KiB of window per
point), sequential reads alike (~560 MB/s), both release the GIL.  rapidgzip wins on latency, which is
what a mount sees; it is optional (MissingDependencyError names it).

The decoded stream is cut into 1 MiB units read through the cache; one lock serialises the library
handle (it is not safe for concurrent seeks).  A stream that does not inflate to the end (cut short,
corrupt, CRC mismatch) is refused at open with one line: gzip cannot resume after damage.

rapidgzip decodes on threads of its own, and threads do not survive ``fork``: a forked child (the mount
daemon, forked once the image is open) waited forever on the first read that needed them (measured: an
8 MiB image hangs).  Every open stream therefore stops its threads before any fork
(``os.register_at_fork``); the next read, in parent or child, starts them again.
"""

from __future__ import annotations

import io
import os
import re
import threading
import weakref
from array import array

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers.chunked import UnitStream
from memfs.containers.deps import require
from memfs.containers.slices import SourceFile
from memfs.exceptions import CorruptionError, DecompressionError, at
from memfs.formats.base import CONTAINER, FormatSpec, ProbeInput

FORMAT_NAME = "gzip"
UNIT = 1 << 20
GZIP_MAGIC = b"\x1f\x8b\x08"
_OPEN_STREAMS: weakref.WeakSet[GzipStream] = weakref.WeakSet()


def _before_fork() -> None:
    """Stop the decoding threads of every open stream (see the module docstring)."""
    for stream in list(_OPEN_STREAMS):
        stream.join_threads()


os.register_at_fork(before=_before_fork)


def probe(p: ProbeInput) -> bool:
    """gzip member header: ID1 ID2 = 1f 8b, CM = 8 (deflate), reserved FLG bits clear (docs/formats/gzip.md
    §1)."""
    return len(p.head) >= 10 and p.head.startswith(GZIP_MAGIC) and not p.head[3] & 0xE0


class GzipStream(UnitStream):
    """The inflated bytes of a gzip file (every member, concatenated)."""

    format_name = FORMAT_NAME

    def __init__(self, base, cache_size: int = DEFAULT_CACHE_SIZE, name: str | None = None) -> None:
        super().__init__(base, name or f"{base.name}[gunzip]", cache_size)
        rapidgzip = require("rapidgzip", "rapidgzip", "reading gzip-compressed images")
        self._lock = threading.Lock()
        self._file = SourceFile(base)
        self._gz = rapidgzip.open(self._file, parallelization=os.cpu_count() or 1)
        # rapidgzip aborts the interpreter if a handle is still open at exit: close it then at the latest.
        self._finalizer = weakref.finalize(self, self._gz.close)
        try:
            size = self._gz.seek(0, io.SEEK_END)
            # A stream cut short can still report a size; inflating its end proves it is whole.
            tail = min(size, UNIT)
            self._gz.seek(size - tail)
            if len(self._gz.read(tail + 1)) != tail:
                raise ValueError(f"inflating the last {tail} bytes of the stated {size} fails")
        except (ValueError, RuntimeError, OSError) as exc:
            self._finalizer()
            raise CorruptionError(
                at(
                    base.name,
                    0,
                    f"the gzip stream starting here does not inflate to its end: {_first_line(exc)}",
                )
            ) from None
        self._set_units(array("Q", range(0, size, UNIT)), size)
        self._closed = False
        _OPEN_STREAMS.add(self)

    def join_threads(self) -> None:
        """Stop rapidgzip's decoding threads (it starts them again when it needs them)."""
        with self._lock:
            if not self._closed:
                self._gz.join_threads()

    def _decode_unit(self, i: int, out: memoryview | None = None) -> bytes:
        start, length = self.unit_span(i)
        target = out if out is not None else memoryview(bytearray(length))
        try:
            with self._lock:
                self._gz.seek(start)
                got = self._gz.readinto(target)
        except (ValueError, RuntimeError, OSError) as exc:
            got, error = -1, _first_line(exc)
        else:
            error = f"inflates to {got} of {length} bytes"
        if got != length:
            message = at(self.name, start, f"gzip data does not inflate: {error}")
            self.failures.record(start, message)
            raise DecompressionError(message, start)
        return b"" if out is not None else target.obj

    def facts(self) -> list[tuple[str, str]]:
        """Rows for header.txt and ``info --json``."""
        return [
            ("Container", f"gzip ({self.base.name}), read through rapidgzip"),
            ("Decoded size", f"{self.size:#x} bytes from {self.base.size:#x} compressed"),
            *self._status_rows("Undecodable units"),
        ]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._finalizer()
        _OPEN_STREAMS.discard(self)
        super().close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return re.sub(r"^\[[^]]*\]\s*(\[Thread \d+\]\s*)?", "", text[0]) if text else type(exc).__name__


def open_stream(
    source: ByteSource, cache_size: int = DEFAULT_CACHE_SIZE, name: str | None = None
) -> GzipStream:
    """Open a gzip byte source as its inflated stream (one pass over it to build the index)."""
    return GzipStream(source, cache_size, name)


FORMAT = FormatSpec(
    name=FORMAT_NAME,
    description="gzip-compressed image (.gz, go-winpmem/Velociraptor --compression gzip)",
    probe=probe,
    open=lambda source, options: GzipStream(source, options.cache_size),
    kind=CONTAINER,
)
