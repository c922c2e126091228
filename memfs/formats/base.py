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
from memfs.exceptions import DecompressionError
from memfs.memory import CONTAINER, MEMORY, MemorySource

HEAD_SIZE = 0x10000
"""Bytes of a source every probe sees without reading (``ProbeInput.head``)."""
PROBE_STEP = 0x1000
"""When a decoded stream's head does not decode, probes see it up to the first bad step of this size."""


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
    neighbouring files to look at).  A decoded stream whose first bytes do not all decode (a corrupt
    chunk) is seen up to the damage: ``head`` is shorter than it would be and ``damage`` says why; the
    reads of the bad unit keep failing (EIO in a mount) while the rest of the stream is served.
    """

    name: str
    size: int
    head: bytes
    source: ByteSource
    path: str | None = None
    damage: str | None = None

    @classmethod
    def of(cls, source: ByteSource) -> ProbeInput:
        """The probe input of ``source``: its first :data:`HEAD_SIZE` bytes read once."""
        try:
            return cls(source.name, source.size, source.pread(0, HEAD_SIZE), source, source.path)
        except DecompressionError as exc:
            head = bytearray()
            while len(head) < min(HEAD_SIZE, source.size):
                try:
                    piece = source.pread(len(head), PROBE_STEP)
                except DecompressionError:
                    break
                head += piece
            return cls(source.name, source.size, bytes(head), source, source.path, str(exc))

    def pread(self, offset: int, n: int) -> bytes:
        """Read up to ``n`` bytes at ``offset`` (short only at the end of the source).  Bytes that do not
        decode read as zeros here: a probe takes them as "not my format", the reader then fails on them."""
        try:
            return self.source.pread(offset, n)
        except DecompressionError:
            return bytes(max(0, min(n, self.size - offset)))


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
    holds: str | None = None
    """For a container that always holds one format (go-winpmem's Snappy and S2 streams hold raw
    images): that format's name, used when the stream's first bytes do not decode, so nothing can be
    detected.  Other containers then refuse to open (one line naming the damage)."""

    def __post_init__(self) -> None:
        if self.kind not in (MEMORY, CONTAINER):
            raise ValueError(f"format {self.name!r}: kind {self.kind!r} is not {MEMORY!r} or {CONTAINER!r}")


__all__ = ["CONTAINER", "HEAD_SIZE", "MEMORY", "FormatSpec", "OpenOptions", "ProbeInput"]
