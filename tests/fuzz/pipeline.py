"""The whole memfs pipeline on one image, the way ``memfs mount`` and ``memfs convert`` drive it.

:func:`run_pipeline` is the one place the fuzz harness, the corpus regression test and anyone
reproducing a crasher go through: open (format detection) -> kernel discovery (``discover``, the
explicit step the mount, ``info`` and ``convert`` take) -> ``header.txt`` and ``info --json`` ->
``memory.dmp`` header and reads -> ``physmem.bin`` reads -> convert of both files to a scratch
directory.

The rules it enforces are the brief's for hostile input:

- the only exception allowed to leave memfs is :class:`~memfs.exceptions.MemfsError` (at open: the
  image is refused; on a read: that read fails, as EIO does in a mount, and the others go on);
- every file's size fits a FUSE ``st_size`` (off_t) and ``physmem.bin`` ends at or below 2^52;
- a read returns exactly the bytes that lie between its offset and the end of the file, ``read``
  and ``read_into`` agree, and reading past the end returns nothing.

A broken rule raises :class:`PipelineViolation` (an AssertionError), which the fuzzer reports as a
crash like any uncaught exception.  Reads are few and small and conversions are capped
(:data:`CONVERT_CAP`), so one run costs milliseconds on a small image.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

from memfs.detect import OpenOptions, open_image
from memfs.exceptions import MemfsError
from memfs.kernel.discover import discover
from memfs.memory import PAGE_SIZE, MemorySource
from memfs.report import info_dict
from memfs.views.base import VirtualFile
from memfs.views.header_txt import render_header
from memfs.views.tree import build_files

PHYSICAL_LIMIT = 1 << 52
"""The highest physical address end any architecture memfs reads can have (x64 and PAE: 52 bits)."""
OFF_T_LIMIT = 1 << 63
"""A FUSE file size is an off_t."""
READ_SPAN = 3 * PAGE_SIZE
MAX_READ_POINTS = 24
"""Reads per file: run starts and ends, holes, the last byte, the first bytes; enough to reach every
reader's page lookup, small enough to keep a run in milliseconds."""
CONVERT_CAP = 1 << 20
"""Largest prefix of a file the run converts: the convert machinery is the same at any size."""
CONVERT_CHUNK = 256 << 10
"""Small chunks, so the capped conversion still plans, fills and hashes several."""
CACHE_SIZE = 8 << 20


class PipelineViolation(AssertionError):
    """memfs answered an image with something the rules above forbid (not an exception: a wrong answer)."""


@dataclass
class PipelineResult:
    """What one run did: for the harness's statistics and for tests."""

    opened: bool = False
    refused: str | None = None
    files: dict[str, int] = field(default_factory=dict)  # name -> size
    failed_reads: int = 0
    converted: list[str] = field(default_factory=list)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise PipelineViolation(what)


class _Prefix(VirtualFile):
    """The first ``size`` bytes of a file: what convert writes when the whole file is too large."""

    def __init__(self, file: VirtualFile, size: int) -> None:
        self.file, self.name, self._size = file, file.name, size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        return self.file.read(offset, max(0, min(length, self._size - offset)))

    def read_into(self, offset: int, buffer) -> int:
        view = memoryview(buffer).cast("B")
        return self.file.read_into(offset, view[: max(0, min(len(view), self._size - offset))])

    def data_extents(self) -> list[tuple[int, int]]:
        return self.file.data_extents()


def _read_points(file: VirtualFile, source: MemorySource) -> list[int]:
    """Offsets worth reading: start, end, run boundaries (for physmem.bin and memory.dmp alike)."""
    size = file.size
    points = [0, size - 1, size - READ_SPAN // 2, size]
    for start, length in source.runs[:6] + source.runs[-2:]:
        points += [start, start + length - 1, start + length]
    points += [start for start, _ in file.data_extents()[:4]]
    return sorted({p for p in points if 0 <= p <= size})[:MAX_READ_POINTS]


def _exercise(file: VirtualFile, source: MemorySource, result: PipelineResult) -> None:
    """Read ``file`` at its interesting offsets with both read paths and check what comes back."""
    size = file.size
    _check(
        isinstance(size, int) and 0 <= size < OFF_T_LIMIT, f"{file.name}: size {size!r} does not fit off_t"
    )
    result.files[file.name] = size
    buffer = bytearray(READ_SPAN)
    for offset in _read_points(file, source):
        expected = max(0, min(READ_SPAN, size - offset))
        try:
            data = file.read(offset, READ_SPAN)
        except MemfsError:
            result.failed_reads += 1
            continue
        _check(
            len(data) == expected, f"{file.name}: read at {offset:#x} gave {len(data):#x} of {expected:#x}"
        )
        try:
            got = file.read_into(offset, buffer)
        except MemfsError:
            result.failed_reads += 1
            continue
        _check(got == expected, f"{file.name}: read_into at {offset:#x} filled {got:#x} of {expected:#x}")
        _check(bytes(buffer[:got]) == data, f"{file.name}: read and read_into differ at {offset:#x}")
    _check(file.read(size, 16) == b"", f"{file.name}: a read at its end returned data")


def _convert(file: VirtualFile, directory: str, result: PipelineResult) -> None:
    from memfs.convert import DEFAULT_CHUNK_SIZE, convert_file, plan_chunks

    # What `memfs convert` plans for the whole file (its memory must not grow with the holes)...
    plan_chunks(file.data_extents(), file.size, DEFAULT_CHUNK_SIZE)
    # ...then a conversion of at most CONVERT_CAP bytes of it.
    view = file if file.size <= CONVERT_CAP else _Prefix(file, CONVERT_CAP)
    output = os.path.join(directory, file.name)
    try:
        done = convert_file(view, output, jobs=1, chunk_size=CONVERT_CHUNK, force=True, hash_output=True)
    except MemfsError:
        return
    _check(done.size == view.size, f"convert of {file.name} wrote {done.size:#x} of {view.size:#x} bytes")
    _check(os.path.getsize(output) == view.size, f"convert of {file.name}: output size differs")
    os.unlink(output)
    result.converted.append(file.name)


def run_pipeline(
    path: str, options: OpenOptions | None = None, scratch: str | None = None, convert: bool = True
) -> PipelineResult:
    """Drive ``path`` through everything a mount and ``memfs convert`` do; see the module docstring.

    ``scratch`` is where conversions are written (a fresh temporary directory under /dev/shm when
    absent).  Raises :class:`PipelineViolation` or any exception memfs let escape; returns otherwise.
    """
    result = PipelineResult()
    try:
        source = open_image(path, options or OpenOptions(cache_size=CACHE_SIZE))
    except MemfsError as exc:
        result.refused = str(exc)
        _check("\n" not in result.refused, f"error message spans lines: {result.refused!r}")
        return result
    result.opened = True
    with source:
        _check(0 <= source.size <= PHYSICAL_LIMIT, f"physmem.bin size {source.size:#x} is above 2^52")
        discovery = discover(source)
        files = build_files(source, discovery)
        header = files["header.txt"]
        text = header.read(0, header.size)
        _check(len(text) == header.size, "header.txt read is short")
        json.dumps(info_dict(source, discovery))
        for name, file in files.items():
            if name != "header.txt":
                _exercise(file, source, result)
        # Decode failures during the reads re-render header.txt: render it again, as a mount would.
        render_header(source, discovery, header.extra_sections)
        if convert:
            with tempfile.TemporaryDirectory(prefix="memfs-fuzz-", dir=scratch or _scratch_root()) as out:
                for name, file in files.items():
                    if name != "header.txt":
                        _convert(file, out, result)
    return result


def _scratch_root() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
