"""Registry types every reader and container imports: :class:`FormatSpec`, :class:`OpenOptions`,
:class:`ProbeInput`.

This module is a leaf of the format layer (docs/architecture.md, "Sources and containers"): readers
import it, :mod:`memfs.detect` imports the readers and it, and it imports neither (only the layers
below it: byte sources and memory sources).

A format is one of two kinds:

* a **memory format** (``MEMORY``) opens a :class:`~memfs.byte_source.ByteSource` into a
  :class:`~memfs.memory.MemorySource` (crash dump, hibernation file, raw, ...);
* a **container** (``CONTAINER``) opens a byte source into the byte source of the stream it holds
  (a compressed dump, an archive member, ...); detection then runs again on that stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.memory import CONTAINER, MEMORY, MemorySource

HEAD_SIZE = 0x10000
"""Bytes of a source every probe sees without reading (``ProbeInput.head``)."""


@dataclass
class OpenOptions:
    """Options a user may give that readers honour (none of them picks offsets)."""

    cache_size: int = DEFAULT_CACHE_SIZE
    format: str | None = None
    hiber_layout: str | None = None
    vmware_meta: str | None = None
    member: str | None = None
    """``--member PATH``: the member of the outermost archive to open (else it is found by content)."""


@dataclass
class ProbeInput:
    """What a probe may look at: the first 64 KiB, the size, and (sparingly) more bytes.

    ``path`` is the file's path when the source is a plain file, else None (a decoded stream has no
    neighbouring files to look at).
    """

    name: str
    size: int
    head: bytes
    source: ByteSource
    path: str | None = None

    @classmethod
    def of(cls, source: ByteSource) -> ProbeInput:
        """The probe input of ``source``: its first :data:`HEAD_SIZE` bytes read once."""
        return cls(source.name, source.size, source.pread(0, HEAD_SIZE), source, source.path)

    def pread(self, offset: int, n: int) -> bytes:
        """Read up to ``n`` bytes at ``offset`` (short at the end of the source)."""
        return self.source.pread(offset, n)


@dataclass(frozen=True)
class FormatSpec:
    """A reader or a container: its name (``--format``, ``info --json``), a cheap probe and an opener.

    ``open(source, options)`` returns a :class:`~memfs.memory.MemorySource` for a memory format and
    the decoded :class:`~memfs.byte_source.ByteSource` for a container.  The opener owns ``source``
    from then on: what it returns closes it, and if opening fails the caller closes it.
    """

    name: str
    description: str
    probe: Callable[[ProbeInput], bool]
    open: Callable[[ByteSource, OpenOptions], MemorySource | ByteSource]
    kind: str = MEMORY
    """``MEMORY`` or ``CONTAINER`` (:mod:`memfs.memory`)."""
    archive: bool = False
    """A container of several files (ZIP, tar): it opens the one ``OpenOptions.member`` names."""

    def __post_init__(self) -> None:
        if self.kind not in (MEMORY, CONTAINER):
            raise ValueError(f"format {self.name!r}: kind {self.kind!r} is not {MEMORY!r} or {CONTAINER!r}")


__all__ = ["CONTAINER", "HEAD_SIZE", "MEMORY", "FormatSpec", "OpenOptions", "ProbeInput"]
