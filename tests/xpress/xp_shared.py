"""Shared helpers for the Xpress codec tests: where the test vectors live, and how to load them."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared/ directory: $MEMFS_SHARED, else <repo root>/../shared (also tried one level up,
    for git worktrees kept in a subdirectory).  None if absent."""
    env = os.environ.get("MEMFS_SHARED")
    candidates = [Path(env)] if env else [REPO_ROOT / ".." / "shared", REPO_ROOT / ".." / ".." / "shared"]
    for path in candidates:
        if (path / "data" / "xpress" / "manifest.json").is_file():
            return path.resolve()
    return None


def vector_dir() -> Path:
    """shared/data/xpress, or skip the calling test when the shared directory is absent."""
    shared = shared_dir()
    if shared is None:
        pytest.skip("shared test data (shared/data/xpress) not found; set MEMFS_SHARED")
    return shared / "data" / "xpress"


@cache
def manifest() -> list[dict]:
    shared = shared_dir()
    if shared is None:
        return []
    return json.loads((shared / "data" / "xpress" / "manifest.json").read_text())


def manifest_params():
    """pytest params, one per manifest entry (a single skipping param when the data is absent)."""
    entries = manifest()
    if not entries:
        return [pytest.param(None, marks=pytest.mark.skip(reason="shared/data/xpress not found"))]
    return [pytest.param(e, id=e["compressed"]) for e in entries]


def read_vector(name: str) -> tuple[bytes, bytes]:
    """(compressed, expected) for a manifest entry whose compressed path ends with `name`."""
    root = vector_dir()
    for e in manifest():
        if e["compressed"].endswith(name):
            return (root / e["compressed"]).read_bytes(), (root / e["expected"]).read_bytes()
    raise LookupError(name)
