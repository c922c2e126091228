"""Format detection: decide from a file's own bytes (never its name) which reader opens it.

Each reader module exposes a :class:`FormatSpec`; :data:`FORMATS` lists them in probe order, strong
signatures first.  A file that matches a signature is opened by that reader, and if the reader finds
it corrupt that is an error — it never silently becomes raw.  Raw is used when the user asks for it
or when no probe matches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.exceptions import MemfsError, UnknownFormatError
from memfs.memory import MemorySource, open_image_file

HEAD_SIZE = 0x10000


@dataclass
class OpenOptions:
    """Options a user may give that readers honour (none of them picks offsets)."""

    cache_size: int = DEFAULT_CACHE_SIZE
    format: str | None = None
    hiber_layout: str | None = None
    vmware_meta: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ProbeInput:
    """What a probe may look at: the first 64 KiB, the size, and (sparingly) more bytes."""

    path: str
    size: int
    head: bytes
    fd: int

    def pread(self, offset: int, n: int) -> bytes:
        """Read up to ``n`` bytes at ``offset`` (short at the end of the file)."""
        return os.pread(self.fd, n, offset)


@dataclass(frozen=True)
class FormatSpec:
    """A reader: its ``info --json`` name, a cheap probe and an opener."""

    name: str
    description: str
    probe: Callable[[ProbeInput], bool]
    open: Callable[[str, OpenOptions], MemorySource]


def _format_specs() -> list[FormatSpec]:
    # Imported here so that importing memfs.detect stays cheap and cycle-free.
    from memfs.formats import crashdump, elf, hiberfil, lime, raw, vmware

    # Strong signatures first; vmware's .vmem rule looks at neighbouring files, not at a signature;
    # hiberfil's weak zeroed-header probe (structure scan) goes last before raw.
    return [
        crashdump.FORMAT,
        hiberfil.FORMAT,
        lime.FORMAT,
        elf.FORMAT,
        vmware.FORMAT,
        hiberfil.FORMAT_ZEROED,
        raw.FORMAT,
    ]


def format_names() -> list[str]:
    """Names accepted by ``--format``."""
    return [spec.name for spec in _format_specs()]


def _probe_input(path: str, fd: int) -> ProbeInput:
    size = os.fstat(fd).st_size
    return ProbeInput(path=path, size=size, head=os.pread(fd, HEAD_SIZE, 0), fd=fd)


def detect_format(path: str) -> FormatSpec:
    """Return the reader whose probe matches ``path``; raw when none does."""
    specs = _format_specs()
    fd = open_image_file(path)
    try:
        probe = _probe_input(path, fd)
        if probe.size == 0:
            raise UnknownFormatError(f"{path}: offset 0x0: file is empty")
        for spec in specs:
            if spec.name != "raw" and spec.probe(probe):
                return spec
    finally:
        os.close(fd)
    return next(spec for spec in specs if spec.name == "raw")


def open_image(path: str, options: OpenOptions | None = None) -> MemorySource:
    """Open ``path`` as a memory source, detecting its format unless ``options.format`` says."""
    options = options or OpenOptions()
    if options.format:
        by_name = {spec.name: spec for spec in _format_specs()}
        if options.format not in by_name:
            raise MemfsError(f"unknown format {options.format!r}; known: {', '.join(by_name)}")
        spec = by_name[options.format]
        if os.path.isdir(path):
            raise MemfsError(f"{path}: is a directory, not an image file")
    elif options.vmware_meta:
        spec = next(spec for spec in _format_specs() if spec.name == "vmware")
    else:
        spec = detect_format(path)
    return spec.open(path, options)
