"""Shared test helpers: where ``../shared`` is, and a place for generated fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The team's shared data (``../shared`` beside the repo, or ``$MEMFS_SHARED``), if present."""
    candidate = Path(os.environ.get("MEMFS_SHARED", REPO.parent / "shared"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared``; tests that need it are skipped cleanly where it is absent (a fresh clone)."""
    path = shared_dir()
    if path is None:
        pytest.skip("../shared is absent (fresh clone): shared test data not available")
    return path


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide directory where fixture builders from ``scripts/`` write their images."""
    return tmp_path_factory.mktemp("fixtures")
