"""Shared check for bad-input tests: opening fails with one clear, single-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from memfs.detect import open_image
from memfs.exceptions import CorruptionError


def open_error(path: Path, error: type[Exception] = CorruptionError) -> str:
    """Open ``path``, expect ``error`` naming the file and a hex offset on one line; return its message."""
    with pytest.raises(error) as info:
        open_image(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: offset 0x"), message
    assert "\n" not in message
    return message
