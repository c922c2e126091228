"""Real klauspost/compress output (the library go-winpmem and Velociraptor write with) read by memfs, and the
fixture builder's S2 encoder read by klauspost's decoder.

Needs Go and Debian's ``golang-github-klauspost-compress-dev`` (GOPATH source); skips without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from memfs.containers import snappy_stream
from tests.containers.file_source import FileSource

GOPATH = Path("/usr/share/gocode")
SOURCE = Path(__file__).with_name("go_s2")


@pytest.fixture(scope="module")
def go_s2(tmp_path_factory):
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/github.com/klauspost/compress/s2").is_dir():
        pytest.skip("needs go and golang-github-klauspost-compress-dev (apt)")
    out = tmp_path_factory.mktemp("go") / "go_s2"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": "",
           "GOCACHE": str(out.parent / "cache")}  # fmt: skip
    subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE, env=env, check=True)
    return out


@pytest.mark.parametrize("mode", ["snappy", "s2", "s2index"])
def test_memfs_reads_what_go_winpmem_writes(go_s2, tmp_path, raw_image, mode):
    raw = tmp_path / "raw"
    raw.write_bytes(raw_image * 3)  # > 12 MiB: several 4 MiB writes, more than one index entry
    packed = tmp_path / f"image.{mode}"
    subprocess.run([go_s2, "write", mode, raw, packed], check=True)
    stream = snappy_stream.open_stream(FileSource(packed))
    try:
        assert stream.format_name == ("snappy" if mode == "snappy" else "s2")
        assert ("seek index" in stream.how) == (mode == "s2index")
        assert stream.pread(0, stream.size + 1) == raw_image * 3
    finally:
        stream.close()


@pytest.mark.parametrize("name", ["raw.snappy", "raw.s2", "raw-index.s2", "raw-index-64k.s2"])
def test_klauspost_decodes_the_fixtures(go_s2, fixtures, tmp_path, name):
    out = tmp_path / "decoded"
    subprocess.run([go_s2, "decode", fixtures[name].path, out], check=True)
    assert out.read_bytes() == fixtures[name].expected


@pytest.mark.parametrize("name", ["raw-index.s2", "raw-index-64k.s2"])
def test_klauspost_seeks_through_the_fixture_index(go_s2, fixtures, tmp_path, name):
    raw = tmp_path / "raw"
    raw.write_bytes(fixtures[name].expected)
    done = subprocess.run(
        [go_s2, "seek", fixtures[name].path, raw], check=True, capture_output=True, text=True
    )
    assert done.stdout.strip() == "ok"
