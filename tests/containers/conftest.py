"""Container fixtures, built once per session by scripts/make_container_fixtures.py."""

from __future__ import annotations

import pytest

from scripts import make_container_fixtures as make


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory):
    """``{name: Built(path, expected, member)}`` for every container fixture."""
    for module in ("cramjam", "crc32c", "rapidgzip"):  # memfs's container libraries
        pytest.importorskip(module, reason="memfs's container libraries are not installed (pip install .)")
    return make.build_all(tmp_path_factory.mktemp("containers"))


@pytest.fixture(scope="session")
def raw_image():
    """The memory-like image the raw-image fixtures compress."""
    return make.raw_image()
