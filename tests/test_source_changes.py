"""The evidence file changing under an open source: noticed, said once, and never passed off as the image.

Each way a file can change (shrink, grow, rewrite in place, status change, replacement, deletion) is
made to a real file here; the real-mount tests are in tests/integration/test_source_changes_mount.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from memfs import memory
from memfs.byte_source import FileByteSource
from memfs.cli import main as memfs_main
from memfs.detect import open_image
from memfs.exceptions import CorruptionError, SourceChangedError
from memfs.formats.raw import RawSource
from memfs.kernel.discover import discover
from memfs.views.tree import build_files
from scripts import make_hiberfil_fixtures as mk

MIB = 1 << 20


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(4 * MIB)
    path = tmp_path / "image.raw"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def look_every_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources look at their file on every read instead of once a second."""
    monkeypatch.setattr(memory, "CHANGE_CHECK_SECONDS", 0.0)


def _shrink(path: Path) -> None:
    os.truncate(path, MIB)


def _grow(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"more")


def _rewrite(path: Path) -> None:
    with open(path, "r+b") as handle:  # same size, same inode, other bytes
        handle.seek(MIB)
        handle.write(b"\0" * 4096)


def _chmod(path: Path) -> None:
    os.chmod(path, 0o400)


def _replace(path: Path) -> None:
    other = path.with_name("other.raw")
    other.write_bytes(path.read_bytes())  # the very same bytes, but another file
    os.replace(other, path)


def _delete(path: Path) -> None:
    path.unlink()


def _move(path: Path) -> None:
    path.rename(path.with_name("moved.raw"))


CHANGES = {
    "shrink": (_shrink, "shrank from 0x400000 to 0x100000 bytes"),
    "grow": (_grow, "grew from 0x400000 to 0x400004 bytes"),
    "rewrite": (_rewrite, "was modified in place"),
    "chmod": (_chmod, "changed status"),
    "replace": (_replace, "was replaced (its path names another file)"),
    "delete": (_delete, "was deleted or moved away"),
    "move": (_move, "was deleted or moved away"),
}


def test_an_unchanged_file_reports_no_change(image) -> None:
    path, _ = image
    with FileByteSource(str(path)) as data:
        os.utime(path.parent)  # what happens beside the file does not count
        (path.parent / "neighbour").write_bytes(b"x")
        assert data.changes() is None


@pytest.mark.parametrize("how", CHANGES)
def test_each_change_is_named_and_kept(image, how) -> None:
    path, _ = image
    change, words = CHANGES[how]
    with FileByteSource(str(path)) as data:
        time.sleep(0.01)  # a later timestamp than the file's, even on coarse clocks
        change(path)
        first = data.changes()
        assert first is not None and words in first.what
        assert first.path == str(path)
        assert str(path) in str(first) and "reads nothing more" in str(first)
        assert data.changes() is first  # kept, even if the file came back


def test_a_relative_path_is_still_found_after_chdir(image, monkeypatch) -> None:
    path, _ = image
    monkeypatch.chdir(path.parent)
    with FileByteSource(path.name) as data:
        monkeypatch.chdir("/")  # as the mount daemon does
        assert data.changes() is None


@pytest.mark.parametrize("how", CHANGES)
def test_reads_fail_once_the_file_changed(image, look_every_read, how) -> None:
    path, data = image
    with RawSource(FileByteSource(str(path))) as source:
        assert source.read(0, 4096) == data[:4096]
        CHANGES[how][0](path)
        with pytest.raises(SourceChangedError, match=str(path)):
            source.read(0, 4096)  # below the new end too: the file is no longer the image
        with pytest.raises(SourceChangedError):
            source.read_into(2 * MIB, bytearray(4096))
        assert source.change is not None and source.source_change() is source.change


def test_every_read_checks_the_bytes_it_read(image) -> None:
    """A look at the path is due once per CHANGE_CHECK_SECONDS, but every read ends with an ``fstat`` of
    the file it read: a rewrite in place (or a replace or delete, which changes the status-change time of
    the file memfs holds) is refused by the very next read, never served as the image."""
    path, data = image
    for change, words in ((_rewrite, "modified in place"), (_replace, "replaced")):
        path.write_bytes(data)
        with RawSource(FileByteSource(str(path))) as source:
            source._next_look = time.monotonic() + 60
            assert source.read(0, 4096) == data[:4096]
            change(path)
            with pytest.raises(SourceChangedError, match=words):
                source.read(0, 4096)
            with pytest.raises(SourceChangedError, match=words):
                source.read_into(0, bytearray(4096))


def test_a_short_read_looks_at_once(image) -> None:
    path, _ = image
    with RawSource(FileByteSource(str(path))) as source:
        source._next_look = time.monotonic() + 60
        os.truncate(path, MIB)
        with pytest.raises(SourceChangedError, match="shrank"):  # cut short: looked at once
            source.read(3 * MIB, 4096)


def test_a_short_read_of_an_unchanged_file_is_still_corruption(image) -> None:
    """Tables that point past the end of a file that did not change keep the one-line CorruptionError."""
    path, _ = image
    data = FileByteSource(str(path))
    data.size += MIB  # as a reader's tables would claim
    with RawSource(data) as source:
        with pytest.raises(CorruptionError, match="file ends 0x1000 bytes before"):
            source.read(4 * MIB, 4096)
        assert source.change is None


def test_the_decode_cache_is_dropped_and_header_txt_says_when(tmp_path, look_every_read) -> None:
    info = mk.build_fixture("win10-1809-x64", tmp_path)
    with open_image(str(info.path)) as source:
        files = build_files(source, discover(source))
        source.read(0, source.size)
        assert source.cache.current_bytes > 0
        header = files["header.txt"]
        assert "Source changed" not in header.read(0, 1 << 20).decode()
        os.truncate(info.path, 3 * 4096)
        with pytest.raises(SourceChangedError):
            files["physmem.bin"].read(0, 4096)
        assert source.cache.current_bytes == 0  # nothing decoded from the old file is served again
        with pytest.raises(SourceChangedError):
            files["memory.dmp"].read(0x2000, 4096)
        text = header.read(0, 1 << 20).decode()
        assert "Source changed  : shrank from" in text and "noticed 20" in text
        assert f"Source size     : {info.path.stat().st_size}" not in text  # the size as opened stays
        assert files["physmem.bin"].changed() is source.change


def test_convert_stops_with_one_line(image, tmp_path, capsys, look_every_read, monkeypatch) -> None:
    path, _ = image
    from memfs import convert

    real = convert._copy

    def copy_after_deleting(*args, **kwargs):
        path.unlink()
        return real(*args, **kwargs)

    monkeypatch.setattr(convert, "_copy", copy_after_deleting)
    out = tmp_path / "out.raw"
    assert memfs_main(["convert", str(path), str(out), "--to", "raw", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"memfs: error: {path}: the image file was deleted or moved away")
    assert not out.exists() and not list(tmp_path.glob(".out.raw.*"))
