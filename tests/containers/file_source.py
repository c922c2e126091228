"""The file-backed byte source the container tests read through (memfs/byte_source.py)."""

from __future__ import annotations

from memfs.byte_source import FileByteSource

FileSource = FileByteSource
"""The name the snappy/S2/AVML/gzip/archive/EWF tests use."""

__all__ = ["FileByteSource", "FileSource"]
