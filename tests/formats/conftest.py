"""Fixtures for the LiME, ELF and VMware reader tests: the standard set, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.make_other_fixtures import Fixture, build_all
from tests.kernel.conftest import windows_images  # noqa: F401 (synthetic Windows images, for memory.dmp)


@pytest.fixture(scope="session")
def other_fixtures(fixture_dir: Path) -> dict[str, Fixture]:
    """The images of :func:`scripts.make_other_fixtures.build_all`, by name."""
    return build_all(fixture_dir / "other")
