"""``memfs convert`` writes exactly what a live mount serves, for every input format available."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import scripts.make_crashdump_fixtures as mk
from tests.integration.conftest import run_memfs
from tests.integration.test_mount import sha256

INPUTS = ["raw", "full64.dmp", "bitmap64_kernel.dmp", "rdmp64_kernel.dmp", "summary32_bitmap.dmp"]


def _hiberfil_fixture(out: Path) -> Path:
    try:
        import scripts.make_hiberfil_fixtures as mh
    except ImportError:
        pytest.skip(
            "the hibernation reader (branch hiberfil, scripts/make_hiberfil_fixtures.py) is not merged"
        )
    return Path(mh.build_fixture("win10-1809-x64", out).path)


@pytest.fixture
def image(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name = request.param
    if name == "raw":
        path = tmp_path / "image.raw"
        rng = random.Random(11)
        path.write_bytes(rng.randbytes(1 << 20) + bytes(1 << 20) + rng.randbytes(4097))
        return path
    if name == "hiberfil":
        return _hiberfil_fixture(tmp_path)
    path = tmp_path / name
    mk.build_dump(path, **mk.FIXTURES[name])
    return path


@pytest.mark.parametrize("image", [*INPUTS, "hiberfil"], indirect=True)
@pytest.mark.parametrize("to", ["raw", "dmp"])
def test_convert_output_equals_the_mounted_file(image: Path, to: str, tmp_path: Path, mount_image) -> None:
    mnt = mount_image(image)
    name = {"raw": "physmem.bin", "dmp": "memory.dmp"}[to]
    if name not in os.listdir(mnt):
        pytest.skip("the memory.dmp view (branch memdmp, memfs/views/memory_dmp.py) is not merged yet")
    out = tmp_path / f"out.{to}"
    result = run_memfs("convert", str(image), str(out), "--to", to)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split()[0]
    assert printed == sha256(out) == sha256(mnt / name)
    assert out.stat().st_size == (mnt / name).stat().st_size
