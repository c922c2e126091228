"""The memfs CLI with the test-only TBOX container registered (tests/stacking.py).

``python3 -m tests.stacked_memfs info IMAGE.tbox --json`` (or ``mount``, ``convert``): what memfs
does with a container, before memfs ships one.
"""

from __future__ import annotations

import sys

from memfs import cli
from memfs.detect import register_format
from tests.stacking import TBOX

register_format(TBOX)

if __name__ == "__main__":
    sys.exit(cli.main())
