"""Shared test helpers: where ``../shared`` is, a place for generated fixtures, children a test interrupts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def default_sigint() -> None:
    """``preexec_fn`` for a child a test interrupts: SIGINT back to its default action.

    A shell starts background jobs with SIGINT ignored, and a Python started that way keeps it ignored
    (as it should): the test would then measure how it was launched, not memfs.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
