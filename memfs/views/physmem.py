"""``physmem.bin``: the linear physical memory of the image, holes read as zeros."""

from __future__ import annotations

from memfs.memory import MemorySource
from memfs.views.base import VirtualFile


class PhysmemFile(VirtualFile):
    """File offset = physical address; size = end of the highest run."""

    name = "physmem.bin"

    def __init__(self, source: MemorySource) -> None:
        self.source = source

    @property
    def size(self) -> int:
        return self.source.size

    def read(self, offset: int, length: int) -> bytes:
        return self.source.read(offset, length)

    def read_into(self, offset: int, buffer: memoryview | bytearray) -> int:
        return self.source.read_into(offset, buffer)

    def data_extents(self) -> list[tuple[int, int]]:
        """The source's runs: everything between them is a hole that reads as zeros."""
        return list(self.source.runs)
