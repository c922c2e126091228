"""LeechCore, an independent reader, against memfs on every hibernation fixture it can open.

LeechCore reads the modern layouts (Windows 8 … 11 24H2 x64, 8 … 10 19041 x86); every page it returns must
equal memfs's physmem.bin, and the pages it is known not to return (tests/leechcore.py: sets of more than
16 pages, runs ending at HighestPhysicalPage) are excluded with that reason and checked for exactly that
behaviour.  The legacy layouts and zeroed headers are outside what it reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from memfs.detect import open_image
from scripts import make_hiberfil_fixtures as mk
from tests import leechcore

leechcorepyc = leechcore.require_leechcore()  # pytest.importorskip, with the reason


def _leechcore_reads(name: str) -> bool:
    recipe = mk.FIXTURES[name]
    length_self = None if recipe.zero_header else mk.LAYOUTS[recipe.layout].length_self
    return leechcore.reads(recipe.signature, length_self)


READ = [name for name in mk.FIXTURES if _leechcore_reads(name)]
NOT_READ = [name for name in mk.FIXTURES if not _leechcore_reads(name)]


def test_leechcore_covers_every_modern_layout():
    modern = {name for name, recipe in mk.FIXTURES.items() if recipe.layout in mk.MODERN}
    assert set(READ) == {name for name in modern if not mk.FIXTURES[name].zero_header}
    assert {mk.LAYOUTS[mk.FIXTURES[name].layout].length_self for name in READ} == leechcore.LENGTH_SELF


@pytest.mark.parametrize("name", READ)
def test_every_page_leechcore_returns_equals_physmem(fixture_dir: Path, tmp_path: Path, name: str):
    info = mk.build_fixture(name, fixture_dir)
    image = leechcore.padded_copy(info.path, tmp_path)  # memfs reads the same 16 MiB file
    with open_image(str(image)) as src:
        physmem = src.read(0, src.size)
    assert hashlib.sha256(physmem).hexdigest() == info.sha256
    result = leechcore.compare(image, physmem, info.sets, info.header["HighestPhysicalPage"])
    assert result.compared == info.pages - result.unserved - result.zeroed
    # Each fixture holds sets of more than 16 pages (§3.6); the "-top" one stores the highest page.
    assert result.unserved > 0
    assert (result.zeroed > 0) == (name == "win10-1809-x64-top")


@pytest.mark.parametrize("name", NOT_READ)
def test_leechcore_refuses_legacy_and_zeroed_files(fixture_dir: Path, tmp_path: Path, name: str):
    image = leechcore.padded_copy(mk.build_fixture(name, fixture_dir).path, tmp_path)
    with pytest.raises(TypeError, match="Unable to initialize"):
        leechcorepyc.LeechCore(f"hibr://file={image}")
