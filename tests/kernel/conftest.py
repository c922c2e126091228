"""Synthetic Windows images shared by the kernel-discovery and memory.dmp tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.make_windows_image import WindowsImage, build_image

VARIANTS = {
    "x64": {"mode": "x64"},
    "x64_encoded": {"mode": "x64", "encoded": True},
    "x64_encoded_nostub": {"mode": "x64", "encoded": True, "low_stub": False},
    "pae": {"mode": "pae"},
    "x86": {"mode": "x86"},
}


@pytest.fixture(scope="session")
def windows_images(fixture_dir: Path) -> dict[str, WindowsImage]:
    """Every variant, built once per session into the fixture directory."""
    return {name: build_image(fixture_dir / f"windows_{name}.raw", **kw) for name, kw in VARIANTS.items()}
