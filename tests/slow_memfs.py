"""The memfs CLI with slow ``physmem.bin`` reads and small convert chunks, for interrupt and progress tests.

``python3 -m tests.slow_memfs convert IMAGE OUT --to raw``: every chunk read (``read`` or
``read_into``) sleeps ``MEMFS_TEST_READ_DELAY`` seconds (default 0.05) and chunks are
``MEMFS_TEST_CHUNK`` bytes (default 256 KiB), so a few MiB take long enough to interrupt or to watch
the progress bar redraw.
``MEMFS_TEST_FAIL_AT=OFFSET``: the read covering that offset fails like an undecodable unit.
"""

from __future__ import annotations

import os
import sys
import time

from memfs import cli, convert
from memfs.exceptions import DecompressionError
from memfs.views.physmem import PhysmemFile

DELAY = float(os.environ.get("MEMFS_TEST_READ_DELAY", "0.05"))
CHUNK = int(os.environ.get("MEMFS_TEST_CHUNK", str(256 << 10)))
FAIL_AT = int(os.environ.get("MEMFS_TEST_FAIL_AT", "-1"), 0)

_read, _read_into = PhysmemFile.read, PhysmemFile.read_into


def _delay(self: PhysmemFile, offset: int, length: int) -> None:
    time.sleep(DELAY)
    if offset <= FAIL_AT < offset + length:
        raise DecompressionError(f"{self.source.name}: offset {FAIL_AT:#x}: injected decode failure")


def _slow_read(self: PhysmemFile, offset: int, length: int) -> bytes:
    _delay(self, offset, length)
    return _read(self, offset, length)


def _slow_read_into(self: PhysmemFile, offset: int, buffer) -> int:
    _delay(self, offset, len(buffer))
    return _read_into(self, offset, buffer)


PhysmemFile.read = _slow_read  # type: ignore[method-assign]
PhysmemFile.read_into = _slow_read_into  # type: ignore[method-assign]
convert.convert_file.__kwdefaults__["chunk_size"] = CHUNK

if __name__ == "__main__":
    sys.exit(cli.main())
