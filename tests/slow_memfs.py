"""The memfs CLI with slow ``physmem.bin`` reads and small convert chunks, for interrupt and progress tests.

``python3 -m tests.slow_memfs convert IMAGE OUT --to raw``: every chunk read sleeps
``MEMFS_TEST_READ_DELAY`` seconds (default 0.05) and chunks are ``MEMFS_TEST_CHUNK`` bytes (default
256 KiB), so a few MiB take long enough to interrupt or to watch the progress bar redraw.
"""

from __future__ import annotations

import os
import sys
import time

from memfs import cli, convert
from memfs.views.physmem import PhysmemFile

DELAY = float(os.environ.get("MEMFS_TEST_READ_DELAY", "0.05"))
CHUNK = int(os.environ.get("MEMFS_TEST_CHUNK", str(256 << 10)))

_read = PhysmemFile.read


def _slow_read(self: PhysmemFile, offset: int, length: int) -> bytes:
    time.sleep(DELAY)
    return _read(self, offset, length)


PhysmemFile.read = _slow_read  # type: ignore[method-assign]
convert.convert_file.__kwdefaults__["chunk_size"] = CHUNK

if __name__ == "__main__":
    sys.exit(cli.main())
