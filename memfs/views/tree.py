"""The one place that decides which files a mount shows."""

from __future__ import annotations

from memfs.memory import MemorySource
from memfs.views.base import VirtualFile
from memfs.views.header_txt import HeaderTextFile
from memfs.views.memory_dmp import MemoryDmpFile
from memfs.views.physmem import PhysmemFile

MEMORY_FILES: dict[str, type[PhysmemFile] | type[MemoryDmpFile]] = {
    PhysmemFile.name: PhysmemFile,
    MemoryDmpFile.name: MemoryDmpFile,
}
"""The files that present the image's physical memory, shown when it has any."""


def build_memory_file(source: MemorySource, name: str) -> VirtualFile | None:
    """The memory file ``name`` alone, exactly as a mount serves it; None when the image has no memory.

    ``memfs convert --to raw`` uses this so that it does not pay for the kernel discovery that only
    ``memory.dmp`` needs.
    """
    if not source.runs:
        return None
    return MEMORY_FILES[name](source)


def build_files(source: MemorySource) -> dict[str, VirtualFile]:
    """Files for the mount root, by name.

    An image with no physical memory (a triage dump) shows ``header.txt`` only, and the header says why.
    ``memory.dmp`` runs kernel discovery once (at mount) and adds its sections to ``header.txt``.
    """
    files: dict[str, VirtualFile] = {}
    extra = []
    if source.runs:
        files = {name: kind(source) for name, kind in MEMORY_FILES.items()}
        extra = files[MemoryDmpFile.name].describe()
    header = HeaderTextFile(source, extra)
    return {**files, header.name: header}
