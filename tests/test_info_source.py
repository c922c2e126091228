"""header.txt and ``memfs info`` identify the file examined: version, size, mtime, SHA-256 on request."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from memfs import __version__
from memfs.detect import open_image
from memfs.kernel.discover import discover
from memfs.views.tree import build_files
from tests.conftest import REPO

MTIME = datetime(2024, 3, 1, 12, 30, 45, tzinfo=timezone.utc)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "image.raw"
    path.write_bytes(random.Random(2).randbytes(0x23000))
    os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    return path


def memfs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memfs", *args], capture_output=True, text=True, cwd=REPO)


def rows(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        label, sep, value = line.partition(" : ")
        if sep:
            found.setdefault(label.strip(), value)
    return found


def test_header_names_version_size_and_mtime(image: Path) -> None:
    with open_image(str(image)) as source:
        header = build_files(source, discover(source))["header.txt"]
        fields = rows(header.read(0, header.size).decode())
    assert fields["memfs version"] == __version__
    assert fields["Source file"] == str(image)
    assert fields["Source size"] == "143360 bytes (0x23000)"
    assert datetime.fromisoformat(fields["Source modified"]) == MTIME  # local time, offset included
    assert "Source SHA-256" not in fields  # hashing a 16 GiB image is opt-in


def test_info_hash(image: Path) -> None:
    expected = hashlib.sha256(image.read_bytes()).hexdigest()
    text = memfs("info", str(image), "--hash")
    assert text.returncode == 0, text.stderr
    fields = rows(text.stdout)
    assert fields["Source SHA-256"] == expected
    assert fields["Source size"] == "143360 bytes (0x23000)"
    as_json = memfs("info", str(image), "--json", "--hash")
    assert json.loads(as_json.stdout)["sha256"] == expected
    plain = memfs("info", str(image))
    assert "Source SHA-256" not in plain.stdout
    assert "sha256" not in json.loads(memfs("info", str(image), "--json").stdout)
