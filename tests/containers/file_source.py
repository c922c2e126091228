"""The file-backed byte source the container tests read through (memfs/byte_source.py), and the probe
input the format registry would give a file."""

from __future__ import annotations

from memfs.byte_source import FileByteSource
from memfs.formats.base import ProbeInput

FileSource = FileByteSource
"""The name the snappy/S2/AVML/gzip/archive/EWF tests use."""


def probe_input(path) -> ProbeInput:
    """What the registry's probes see of the file at ``path`` (its first 64 KiB, its size, its path)."""
    with FileByteSource(str(path)) as source:
        return ProbeInput.of(source)


__all__ = ["FileByteSource", "FileSource", "probe_input"]
