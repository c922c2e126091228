"""Raw images: the file offset is the physical address; no holes, no metadata."""

from __future__ import annotations

from memfs.byte_source import ByteSource
from memfs.exceptions import UnknownFormatError
from memfs.formats.base import FormatSpec, OpenOptions, ProbeInput
from memfs.memory import MemorySource


class RawSource(MemorySource):
    """A linear physical image of any size."""

    format_name = "raw"

    def __init__(self, data: ByteSource) -> None:
        super().__init__(data)
        if self.file_size == 0:
            self.close()
            raise UnknownFormatError(f"{self.name}: offset 0x0: file is empty")
        self._set_runs([(0, self.file_size)])
        self.metadata.format_detail = "raw physical memory image (file offset = physical address)"
        for name in ("arch", "os_build", "directory_table_base", "kd_debugger_data_block"):
            self.metadata.unknown(name, "a raw image carries no header")

    def _read_mapped(self, pa: int, n: int) -> bytes:
        return self._pread(pa, n)

    def _read_mapped_into(self, pa: int, out: memoryview) -> None:
        self._pread_into(pa, out)


def _probe(_: ProbeInput) -> bool:
    return True


FORMAT = FormatSpec(
    name="raw",
    description="raw physical memory (dd, winpmem raw, .vmem without metadata)",
    probe=_probe,
    open=lambda data, options: RawSource(data),
)

__all__ = ["FORMAT", "RawSource", "OpenOptions"]
