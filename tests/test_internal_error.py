"""The last line of defence: a bug (an exception that is not a MemfsError) still ends in one line.

In the CLI: ``memfs: internal error: <what> at <file:line>; please report it with --debug output`` and
exit status 2 (``--debug`` shows the traceback).  In a mount: EIO for that read, logged once.
"""

from __future__ import annotations

import errno
import logging
import re

import pytest

from memfs import cli
from memfs.exceptions import internal_error
from memfs.fuse.operations import FuseOSError, MemfsOperations
from memfs.views.base import VirtualFile


def _explode(args) -> int:
    import struct

    # The kind of bug issue 12 found: a header value that does not fit.  Its own message, because
    # struct's wording differs between Python versions.
    raise struct.error("argument out of range")


def test_cli_reports_a_bug_in_one_line(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setitem(cli.COMMANDS, "info", _explode)
    image = tmp_path / "x.raw"
    image.write_bytes(b"x")
    assert cli.main(["info", str(image)]) == cli.INTERNAL_ERROR == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert re.fullmatch(
        r"memfs: internal error: struct\.error: argument out of range at memfs/cli\.py:\d+; "
        r"please report it with --debug output\n",
        err,
    ), err


def test_cli_debug_shows_the_traceback(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(cli.COMMANDS, "info", _explode)
    with pytest.raises(Exception, match="argument out of range"):
        cli.main(["--debug", "info", str(tmp_path / "x.raw")])


def test_internal_error_names_the_memfs_frame() -> None:
    from memfs.filetime import fits

    try:
        fits("not a number")  # type: ignore[arg-type]
    except TypeError as exc:
        line = internal_error(exc)
    assert line.startswith("internal error: TypeError: ") and re.search(r" at memfs/filetime\.py:\d+$", line)


class _Broken(VirtualFile):
    name = "broken.bin"
    size = 4096

    def __init__(self) -> None:
        self.offsets = iter(range(100))

    def read(self, offset: int, length: int) -> bytes:
        raise ValueError(f"bad value at {next(self.offsets):#x}")  # a different message every time

    def read_into(self, offset: int, buffer) -> int:
        return len(self.read(offset, len(buffer)))


def test_mount_read_is_eio_and_logged_once(caplog) -> None:
    operations = MemfsOperations({"broken.bin": _Broken()})
    with caplog.at_level(logging.DEBUG, logger="memfs.fuse.operations"):
        for offset in (0, 512, 1024):
            with pytest.raises(FuseOSError) as raised:
                operations.read("/broken.bin", 16, offset, 0)
            assert raised.value.errno == errno.EIO
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert re.search(r"internal error: ValueError: bad value at 0x0 at memfs/\S+:\d+", errors[0].getMessage())
