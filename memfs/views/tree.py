"""The one place that decides which files a mount shows."""

from __future__ import annotations

from collections.abc import Callable

from memfs.kernel.discover import Discovery
from memfs.memory import MemorySource
from memfs.views.base import VirtualFile
from memfs.views.header_txt import HeaderTextFile
from memfs.views.memory_dmp import MemoryDmpFile
from memfs.views.physmem import PhysmemFile

MEMORY_FILES: dict[str, Callable[[MemorySource, Discovery | None], VirtualFile]] = {
    PhysmemFile.name: lambda source, _discovery: PhysmemFile(source),
    MemoryDmpFile.name: lambda source, discovery: MemoryDmpFile(source, _required(discovery)),
}
"""The files that present the image's physical memory, shown when it has any."""

DISCOVERY_FILES = frozenset({MemoryDmpFile.name})
"""The memory files built from kernel discovery: a caller building one alone runs ``discover`` first."""


def _required(discovery: Discovery | None) -> Discovery:
    if discovery is None:
        raise ValueError("memory.dmp is built from kernel discovery: pass discover(source)")
    return discovery


def build_memory_file(source: MemorySource, name: str, discovery: Discovery | None) -> VirtualFile | None:
    """The memory file ``name`` alone, exactly as a mount serves it; None when the image has no memory.

    ``discovery`` is needed for the files in :data:`DISCOVERY_FILES` only: ``memfs convert --to raw``
    passes None so that it does not pay for the kernel discovery that only ``memory.dmp`` needs.
    """
    if not source.runs:
        return None
    return MEMORY_FILES[name](source, discovery)


def build_files(source: MemorySource, discovery: Discovery) -> dict[str, VirtualFile]:
    """Files for the mount root, by name, from the source and the caller's kernel discovery of it.

    An image with no physical memory (a triage dump) shows ``header.txt`` only, and the header says why.
    ``memory.dmp`` adds its sections (discovery's among them) to ``header.txt``.
    """
    files: dict[str, VirtualFile] = {}
    extra = []
    if source.runs:
        files = {name: build(source, discovery) for name, build in MEMORY_FILES.items()}
        extra = files[MemoryDmpFile.name].describe()
    header = HeaderTextFile(source, discovery, extra)
    return {**files, header.name: header}
