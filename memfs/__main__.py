"""``python -m memfs`` is the ``memfs`` command."""

import sys

from memfs.cli import main

sys.exit(main())
