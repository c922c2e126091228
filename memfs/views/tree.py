"""The one function that decides which files a mount shows."""

from __future__ import annotations

from memfs.memory import MemorySource
from memfs.views.base import VirtualFile
from memfs.views.header_txt import HeaderTextFile
from memfs.views.physmem import PhysmemFile


def build_files(source: MemorySource) -> dict[str, VirtualFile]:
    """Files for the mount root, by name.

    An image with no physical memory (a triage dump) shows ``header.txt`` only, and the header says why.
    """
    files: list[VirtualFile] = []
    if source.runs:
        files.append(PhysmemFile(source))
    files.append(HeaderTextFile(source))
    return {f.name: f for f in files}
