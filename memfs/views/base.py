"""What every file in a mount is: a size known at open time and a stateless ``read``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memfs.byte_source import SourceChange
    from memfs.memory import MemorySource


class VirtualFile:
    """A synthetic read-only file.

    ``cacheable`` says the content never changes while mounted, so the kernel page cache may keep
    it (``kernel_cache``); files whose content can change (``header.txt`` counts decode failures)
    say False and are served with ``direct_io``.
    """

    name = ""
    cacheable = True
    source: MemorySource | None = None
    """The image the file presents, when it presents one."""

    def changed(self, now: bool = False) -> SourceChange | None:
        """How the image file behind this file changed since it was opened (None: it did not).

        Cheap enough to ask per request: the source looks at the file at most once a second, or at
        once with ``now`` (two ``stat`` calls).
        """
        return self.source.source_change(now) if self.source is not None else None

    @property
    def size(self) -> int:
        """Size in bytes."""
        raise NotImplementedError

    def read(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes at ``offset`` (short or empty at the end)."""
        raise NotImplementedError

    def read_into(self, offset: int, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` with the bytes at ``offset``; return how many (fewer only at the end).

        For bulk readers that reuse buffers (``memfs convert``).  The default copies :meth:`read`;
        views whose source can fill a buffer directly override it.
        """
        view = memoryview(buffer).cast("B")
        data = self.read(offset, len(view))
        view[: len(data)] = data
        return len(data)

    def data_extents(self) -> list[tuple[int, int]]:
        """``(offset, length)`` ranges that may hold non-zero bytes; the rest of the file reads as zeros.

        Converters use this to leave holes sparse without reading them.  The default claims the
        whole file.
        """
        return [(0, self.size)] if self.size else []
