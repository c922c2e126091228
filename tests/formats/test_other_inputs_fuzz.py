"""Hostile headers for LiME, ELF and VMware: a mutated file opens (and reads) or raises a MemfsError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfs.detect import open_image
from memfs.exceptions import MemfsError

# (fixture, file to mutate, bytes of it worth mutating): headers and tables, not page contents.
TARGETS = {
    "lime": ("path", 0x40),
    "elf64_qemu": ("path", 0x700),
    "elf32_qemu": ("path", 0x300),
    "elf64_vbox": ("path", 0x600),
    "vmware_small": ("meta", 0x300),
}

mutations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=0x6FF), st.integers(min_value=0, max_value=255)),
    min_size=1,
    max_size=6,
)


def _open_and_read(path: Path) -> None:
    try:
        source = open_image(str(path))
    except MemfsError:
        return
    with source:
        for start, length in source.runs[:8]:
            source.read(start, min(length, 0x2000))
            source.read(start + length - 1, 2)


@pytest.fixture(scope="module")
def targets(other_fixtures) -> dict[str, tuple[Path, Path | None]]:
    """Image and metadata paths only (so Hypothesis reports stay short)."""
    return {name: (other_fixtures[name].path, other_fixtures[name].extra.get("meta")) for name in TARGETS}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(TARGETS)), edits=mutations, cut=st.none() | st.integers(0, 0x800))
def test_mutated_headers_never_escape(targets, tmp_path_factory, name, edits, cut) -> None:
    image_src, meta_src = targets[name]
    which, span = TARGETS[name]
    work = tmp_path_factory.mktemp("fuzz")
    image = work / image_src.name
    shutil.copy(image_src, image)
    victim = image
    if which == "meta":
        assert meta_src is not None
        victim = work / meta_src.name
        shutil.copy(meta_src, victim)
    data = bytearray(victim.read_bytes())
    span = min(span, len(data))
    for offset, value in edits:
        data[offset % span] = value
    if cut is not None:
        data = data[:cut]
    victim.write_bytes(bytes(data))
    _open_and_read(image)
