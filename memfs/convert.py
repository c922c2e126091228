"""Convert an image to a raw physical image or a crash dump, without FUSE.

``memfs convert`` writes exactly the bytes a mount serves: it reads the very :class:`VirtualFile`
classes a mount shows (:func:`memfs.views.tree.build_memory_file`: ``physmem.bin`` for ``--to raw``,
``memory.dmp`` for ``--to dmp``), never a separate decoding path.

How it writes:

- Worker threads fill reused chunk buffers with the view's ``read_into`` (a compressed source
  decodes straight into the buffer, bypassing its cache; the decoders release the GIL, so two
  workers use two cores) and write them with ``os.pwrite``; the main thread takes the buffers *in
  file order* and hashes them (SHA-256 of exactly what is written).  ``jobs + 2`` buffers are in
  flight, so memory stays bounded whatever the image size.
- Ranges the view reports as holes (:meth:`VirtualFile.data_extents`: the gaps between a source's
  runs for ``physmem.bin``) are neither read nor written, and 64 KiB blocks that decode to all zeros
  are not written: the output is created at its final size with ``ftruncate``, so those stay sparse.
- Output goes to a temporary file in the target directory, is fsynced and then renamed over the
  final name.  Whatever stops the conversion (an error, SIGINT, SIGTERM turned into
  ``KeyboardInterrupt`` by the CLI) removes the temporary file: a partial output never appears under
  the final name.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from memfs.exceptions import MemfsError
from memfs.memory import MemorySource
from memfs.progress import Progress
from memfs.views.base import VirtualFile

TARGETS = {"raw": "physmem.bin", "dmp": "memory.dmp"}
"""``--to`` value -> the mount file whose bytes are written."""

DEFAULT_CHUNK_SIZE = 8 << 20
"""Bytes per worker read: large enough that per-call overhead vanishes, small enough to bound memory."""

ZERO_BLOCK = 64 << 10
"""Granularity of zero detection inside a chunk: all-zero 64 KiB blocks are left sparse."""

_ZEROS = bytes(DEFAULT_CHUNK_SIZE)
_ZERO_BLOCK = bytes(ZERO_BLOCK)

Chunk = tuple[int, int]


@dataclass
class ConvertResult:
    """What a conversion wrote."""

    path: str
    size: int
    """Size of the output file in bytes."""
    sha256: str | None
    """SHA-256 (hex) of the whole output, holes included; None when hashing was turned off."""
    data_bytes: int
    """Bytes read from the view (everything outside its holes)."""
    written_bytes: int
    """Bytes actually written (data outside all-zero 64 KiB blocks)."""
    seconds: float


def default_jobs() -> int:
    """Worker threads by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def select_file(source: MemorySource, to: str, discovery: bool = True) -> VirtualFile:
    """The mount file that ``--to`` names, exactly as a mount would serve it.

    Only that file is built, and kernel discovery runs only if it needs it: ``--to raw`` skips the
    discovery that ``memory.dmp`` needs (1.7 s of a 2 GiB hibernation file's conversion).
    ``discovery=False`` (``--no-discovery``) builds ``memory.dmp`` from what the image states alone.
    """
    from memfs.kernel.discover import discover, not_requested
    from memfs.views.tree import DISCOVERY_FILES, build_memory_file

    if to not in TARGETS:
        raise MemfsError(f"unknown output type {to!r}; choose one of: {', '.join(TARGETS)}")
    name = TARGETS[to]
    found = None
    if name in DISCOVERY_FILES:
        found = discover(source) if discovery else not_requested(source)
    file = build_memory_file(source, name, found)
    if file is None:
        raise MemfsError(f"{source.name}: the image holds no physical memory, so there is nothing to convert")
    return file


def plan_chunks(extents: list[tuple[int, int]], size: int, chunk_size: int) -> list[Chunk]:
    """Split the data extents into reads of at most ``chunk_size`` that never cross a multiple of it.

    Aligning to ``chunk_size`` keeps writes aligned whatever the run boundaries are.  Extents are
    clamped to ``size`` and taken in order; everything outside them is a hole.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    chunks: list[Chunk] = []
    for start, length in sorted(extents):
        end = min(start + length, size)
        pos = max(start, chunks[-1][0] + chunks[-1][1] if chunks else 0)
        while pos < end:
            stop = min(end, (pos // chunk_size + 1) * chunk_size)
            chunks.append((pos, stop - pos))
            pos = stop
    return chunks


def check_output(output: str, input_path: str | None, force: bool) -> None:
    """Refuse outputs that would lose data: an existing file without ``force``, the input, a directory."""
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise MemfsError(f"{output}: directory {directory} does not exist")
    if os.path.isdir(output):
        raise MemfsError(f"{output}: is a directory; give the output file's name")
    if not os.path.lexists(output):
        return
    if input_path is not None and os.path.exists(output) and os.path.samefile(output, input_path):
        raise MemfsError(f"{output}: is the input image; memfs never writes to its input")
    if not force:
        raise MemfsError(f"{output}: already exists (use --force to replace it)")


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _write_nonzero(fd: int, data: bytes | bytearray, offset: int, begin: int, end: int) -> int:
    """Write ``data[begin:end]`` at ``offset + begin`` except its all-zero 64 KiB blocks.

    Returns the bytes written.  ``startswith(zeros, i)`` is a memcmp without a copy, so the
    scan costs ~0.3 ms per 8 MiB.  Consecutive non-zero blocks go out in one ``pwrite``.
    """
    written = 0
    run_start = None
    for block in range(begin, end + ZERO_BLOCK, ZERO_BLOCK):
        if block >= end:
            zero = True  # flush the last run
        elif block + ZERO_BLOCK <= end:
            zero = data.startswith(_ZERO_BLOCK, block)
        else:
            zero = not data[block:end].strip(b"\0")
        if not zero and run_start is None:
            run_start = block
        elif zero and run_start is not None:
            stop = min(block, end)
            _pwrite_all(fd, memoryview(data)[run_start:stop], offset + run_start)
            written += stop - run_start
            run_start = None
    return written


def _hash_zeros(digest: hashlib._Hash, count: int) -> None:
    zeros = memoryview(_ZEROS)
    while count > 0:
        take = min(count, len(zeros))
        digest.update(zeros[:take])
        count -= take


@contextlib.contextmanager
def _writing(output: str) -> Iterator[None]:
    """Report a failed write (no space, quota, I/O error) as one line naming the output."""
    try:
        yield
    except OSError as exc:
        raise MemfsError(f"{output}: cannot write: {exc.strerror or exc}") from exc


def _open_temporary(output: str) -> tuple[int, str]:
    directory = os.path.dirname(os.path.abspath(output))
    with _writing(output):
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.", suffix=".partial", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # like any new file, not mkstemp's 0600
    return fd, temp


def _fsync_directory(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _SignalsDeferred:
    """Hold SIGINT/SIGTERM off while the temporary file is cleaned up (main thread only)."""

    def __enter__(self) -> _SignalsDeferred:
        self._saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, signal.SIG_IGN)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def convert_file(
    file: VirtualFile,
    output: str,
    *,
    jobs: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
    force: bool = False,
    input_path: str | None = None,
    hash_output: bool = True,
) -> ConvertResult:
    """Write the whole of ``file`` to ``output`` (see the module docstring for how).

    ``hash_output=False`` skips the SHA-256: hashing is serial (one core, ~1.8 GB/s with SHA-NI), so
    on two cores it takes a quarter of a hibernation file's conversion time, and on many cores it
    caps the rate whatever the decoders do.
    """
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise MemfsError(f"--jobs must be at least 1, not {jobs}")
    check_output(output, input_path, force)
    size = file.size
    chunks = plan_chunks(file.data_extents(), size, chunk_size)
    started = time.monotonic()
    fd, temp = _open_temporary(output)
    try:
        with _writing(output):
            os.ftruncate(fd, size)
        digest = hashlib.sha256() if hash_output else None
        data_bytes, written = _copy(file, fd, chunks, size, jobs, progress, output, digest)
        if progress is not None:
            progress.note("100%: flushing to disk")
        with _writing(output):
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(temp, output)
    except BaseException:
        with _SignalsDeferred():
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise
    _fsync_directory(output)
    return ConvertResult(
        path=output,
        size=size,
        sha256=digest.hexdigest() if digest is not None else None,
        data_bytes=data_bytes,
        written_bytes=written,
        seconds=time.monotonic() - started,
    )


def _copy(
    file: VirtualFile,
    fd: int,
    chunks: list[Chunk],
    size: int,
    jobs: int,
    progress: Progress | None,
    output: str,
    digest: hashlib._Hash | None,
) -> tuple[int, int]:
    """Fill and write ``chunks`` on ``jobs`` threads; hash them in order on this one into ``digest``.

    Each worker fills a reused buffer (``read_into``: a compressed source decodes straight into it)
    and writes it itself — ``pwrite`` needs no order — so only hashing is serial.  A buffer goes back
    to the pool once hashed; ``jobs + 2`` buffers bound memory and keep the workers ahead of the hash.
    Returns (bytes read, bytes written).
    """
    chunk_size = max((length for _, length in chunks), default=0)
    free = [bytearray(chunk_size) for _ in range(min(jobs + 2, len(chunks)))]
    pending: collections.deque[tuple[Chunk, bytearray, Future[int]]] = collections.deque()
    todo = iter(chunks)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="memfs-convert")

    def fill_and_write(offset: int, length: int, buffer: bytearray) -> int:
        got = file.read_into(offset, memoryview(buffer)[:length])
        if got != length:
            raise MemfsError(f"{file.name}: offset {offset:#x}: read returned {got:#x} of {length:#x} bytes")
        with _writing(output):
            return _write_nonzero(fd, buffer, offset, 0, length)

    def refill() -> None:
        while free:
            chunk = next(todo, None)
            if chunk is None:
                return
            buffer = free.pop()
            pending.append((chunk, buffer, pool.submit(fill_and_write, *chunk, buffer)))

    position = data_bytes = written = 0
    try:
        refill()
        while pending:
            (offset, length), buffer, future = pending.popleft()
            written += future.result()
            if digest is not None:
                _hash_zeros(digest, offset - position)  # a hole before this chunk
                digest.update(memoryview(buffer)[:length])
            free.append(buffer)
            refill()
            data_bytes += length
            position = offset + length
            if progress is not None:
                progress.update(position)
        if digest is not None:
            _hash_zeros(digest, size - position)
        if progress is not None:
            progress.update(size)
    finally:
        # On an error or interrupt: drop queued reads, wait only for the ones running (one chunk each).
        pool.shutdown(wait=True, cancel_futures=True)
    return data_bytes, written


__all__ = [
    "TARGETS",
    "ConvertResult",
    "check_output",
    "convert_file",
    "default_jobs",
    "plan_chunks",
    "select_file",
]
