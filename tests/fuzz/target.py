"""The fuzz target: one fuzz input -> one image on disk -> :func:`tests.fuzz.pipeline.run_pipeline`.

A fuzz input is read as follows (so that both small files and big images can be mutated cheaply):

- first byte ``< 0xC0``: the rest *is* the image file (seeds: :func:`tests.fuzz.seeds.build_small`);
- ``0xC0 … 0xEF``: the same, opened with the hibernation layout override
  ``LAYOUT_KEYS[byte - 0xC0]`` (what ``--hiber-layout`` does; modulo the number of layouts);
- ``0xF0 + i``: base ``i`` of :data:`tests.fuzz.seeds.BASES`, patched by the records that follow:
  ``op`` u8, ``offset`` u32 LE, then for ``op < 0x80`` ``op`` bytes written at ``offset`` modulo the
  file size, and for ``op >= 0x80`` the file cut to ``offset`` modulo (size + 1).  At most
  :data:`MAX_PATCHES` records; the base is restored after the run.

Run under atheris (``python -m tests.fuzz.target [libFuzzer flags] CORPUS``): memfs's modules are
instrumented for coverage; an exception other than MemfsError, or a broken pipeline rule, is a crash.
The orchestration (time budget, all cores, minimising and saving crashers) is ``tests/fuzz/run.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

RAW_LIMIT = 0xC0
LAYOUT_LIMIT = 0xF0
MAX_PATCHES = 64
PATCH = struct.Struct("<BI")


class Workspace:
    """Where fuzz inputs become files: a private copy of every base, patched in place and restored.

    ``bases`` is a directory made by :func:`tests.fuzz.seeds.build_bases` (shared, never written);
    ``root`` is this process's own directory (best on /dev/shm).
    """

    def __init__(self, root: Path, bases: Path) -> None:
        from tests.fuzz.seeds import BASES

        self.root = root
        self.pristine = bases
        self.bases = BASES
        root.mkdir(parents=True, exist_ok=True)
        for base in BASES:
            if not (root / base.name).exists():
                shutil.copytree(bases / base.name, root / base.name)
        self.scratch = root / "scratch"
        self.scratch.mkdir(exist_ok=True)

    @contextlib.contextmanager
    def materialise(self, data: bytes) -> Iterator[tuple[str, object] | None]:
        """``(path to open, OpenOptions)`` for ``data``, or None for an empty input."""
        from memfs.detect import OpenOptions
        from memfs.formats.hiberfil import LAYOUT_NAMES as LAYOUT_KEYS
        from tests.fuzz.pipeline import CACHE_SIZE

        if not data:
            yield None
            return
        options = OpenOptions(cache_size=CACHE_SIZE)
        if data[0] < LAYOUT_LIMIT:
            if data[0] >= RAW_LIMIT:
                options.hiber_layout = LAYOUT_KEYS[(data[0] - RAW_LIMIT) % len(LAYOUT_KEYS)]
            path = self.root / "image"
            path.write_bytes(data[1:])
            yield str(path), options
            return
        base = self.bases[(data[0] - LAYOUT_LIMIT) % len(self.bases)]
        target = self.root / base.name / base.target
        undo = _patch(target, data[1:])
        try:
            yield str(self.root / base.name / base.open), options
        finally:
            _restore(target, self.pristine / base.name / base.target, undo)


def _patch(path: Path, script: bytes) -> list[tuple[int, bytes]]:
    """Apply the patch records of ``script`` to ``path``; return what to write back (see the docstring)."""
    undo: list[tuple[int, bytes]] = []
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        for _ in range(MAX_PATCHES):
            if pos + PATCH.size > len(script):
                break
            op, offset = PATCH.unpack_from(script, pos)
            pos += PATCH.size
            if op >= 0x80:
                size = offset % (size + 1)
                os.ftruncate(fd, size)
                continue
            payload = script[pos : pos + op]
            pos += op
            if not payload or size == 0:
                continue
            at = offset % size
            payload = payload[: size - at]
            undo.append((at, os.pread(fd, len(payload), at)))
            os.pwrite(fd, payload, at)
    finally:
        os.close(fd)
    return undo


def _restore(path: Path, pristine: Path, undo: list[tuple[int, bytes]]) -> None:
    """Undo the patches; a cut file gets its tail back from the pristine copy."""
    fd = os.open(path, os.O_RDWR)
    try:
        for at, original in reversed(undo):
            os.pwrite(fd, original, at)
        size, full = os.fstat(fd).st_size, pristine.stat().st_size
        if size != full:
            with open(pristine, "rb") as source:
                source.seek(size)
                os.pwrite(fd, source.read(), size)
            os.ftruncate(fd, full)
    finally:
        os.close(fd)


def run_input(workspace: Workspace, data: bytes):
    """Run one fuzz input through the pipeline; MemfsError from any step is an accepted answer."""
    from memfs.exceptions import MemfsError
    from tests.fuzz.pipeline import run_pipeline

    with workspace.materialise(data) as opened:
        if opened is None:
            return None
        path, options = opened
        try:
            return run_pipeline(path, options, scratch=str(workspace.scratch))  # type: ignore[arg-type]
        except MemfsError as exc:
            if "\n" in str(exc):
                raise AssertionError(f"error message spans lines: {exc!r}") from None
            return None


def _import_memfs() -> None:
    """Import every memfs module the pipeline can reach (memfs imports readers lazily)."""
    import pkgutil

    import memfs

    for module in pkgutil.walk_packages(memfs.__path__, "memfs."):
        if module.name != "memfs.__main__" and not module.name.startswith("memfs.fuse"):
            __import__(module.name)


def main(argv: list[str]) -> None:
    import logging

    import atheris

    with atheris.instrument_imports(include=["memfs"]):
        _import_memfs()
    logging.disable(logging.CRITICAL)  # decode failures are logged once each: noise at this rate
    work = Path(os.environ.get("MEMFS_FUZZ_WORK", "/dev/shm/memfs-fuzz-target"))
    bases = Path(os.environ.get("MEMFS_FUZZ_BASES", str(work.parent / "bases")))
    workspace = Workspace(work, bases)

    def one(data: bytes) -> None:
        run_input(workspace, data)

    # libFuzzer re-runs argv[0] to minimise a crash; "python -m" leaves a path it cannot execute there.
    launcher = os.environ.get("MEMFS_FUZZ_LAUNCHER")
    atheris.Setup([launcher or argv[0], *argv[1:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
