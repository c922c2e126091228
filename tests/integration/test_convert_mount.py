"""``memfs convert`` writes exactly what a live mount serves, for every input format memfs reads."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import scripts.make_crashdump_fixtures as mk
import scripts.make_other_fixtures as mo
from scripts import make_hiberfil_fixtures
from tests.digest import sha256
from tests.integration.conftest import run_memfs

CRASHDUMPS = ["full64.dmp", "bitmap64_kernel.dmp", "rdmp64_kernel.dmp", "summary32_bitmap.dmp"]
OTHERS = {
    "lime": lambda out: mo.build_lime(out / "basic.lime", mo.LIME_RANGES),
    "elf64_vbox": lambda out: mo.build_elf(out / "vbox.elf", mo.ELF_SEGMENTS[:2], notes="vbox", cpus=2),
    "vmware_small": lambda out: mo.build_vmware(out / "vm_small", "Win7-Snapshot1", mo.SMALL_REGIONS),
}


@pytest.fixture
def image(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name = request.param
    if name == "raw":
        path = tmp_path / "image.raw"
        rng = random.Random(11)
        path.write_bytes(rng.randbytes(1 << 20) + bytes(1 << 20) + rng.randbytes(4097))
        return path
    if name == "hiberfil":
        return Path(make_hiberfil_fixtures.build_fixture("win10-1809-x64", tmp_path).path)
    if name in OTHERS:
        return Path(OTHERS[name](tmp_path).path)
    path = tmp_path / name
    mk.build_dump(path, **mk.FIXTURES[name])
    return path


@pytest.mark.parametrize("image", ["raw", *CRASHDUMPS, *OTHERS, "hiberfil"], indirect=True)
def test_convert_output_equals_the_mounted_file(image: Path, tmp_path: Path, mount_image) -> None:
    mnt = mount_image(image)
    for to, name in (("raw", "physmem.bin"), ("dmp", "memory.dmp")):
        out = tmp_path / f"out.{to}"
        result = run_memfs("convert", str(image), str(out), "--to", to)
        assert result.returncode == 0, result.stderr
        printed = result.stdout.split()[0]
        assert printed == sha256(out) == sha256(mnt / name), name
        assert out.stat().st_size == (mnt / name).stat().st_size
