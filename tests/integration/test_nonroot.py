"""Mount life cycle for an ordinary user: mount, umount, and what --allow-other needs.

Runs :mod:`tests.integration.nonroot_helper` in a private mount namespace (see its docstring), so
the machine's /dev/fuse and /etc/fuse.conf are never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture
def workdir() -> Path:
    if os.getuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs root, unshare and setpriv to play an ordinary user in a private namespace")
    path = Path(tempfile.mkdtemp(prefix="memfs-nonroot-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ordinary_user_mounts_and_unmounts(workdir: Path) -> None:
    image = workdir / "image.raw"
    data = random.Random(9).randbytes(1 << 20)
    image.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private"]
        + [sys.executable, "-m", "tests.integration.nonroot_helper", str(workdir), str(image)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if result.returncode != 0 and "unshare failed" in result.stderr:
        pytest.skip(f"no private mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    not_owner = report["not_owner"]
    assert not_owner["rc"] == 1 and "no permission to mount here" in not_owner["stderr"], not_owner

    refused = report["allow_other_refused"]
    assert refused["rc"] == 1 and "user_allow_other" in refused["stderr"], refused
    assert len(refused["stderr"].strip().splitlines()) == 1

    assert report["mount"]["rc"] == 0, report["mount"]
    assert report["mounted"]
    assert report["nobody_reads"] == expected
    # Without allow_other FUSE refuses everyone else, root included (and so smbd).
    assert report["root_reads_private_mount"] == "error: Permission denied"
    assert report["umount"]["rc"] == 0, report["umount"]
    assert report["unmounted"]
    assert report["root_umount"] == {"rc": 0, "stderr": "", "gone": True}  # root may unmount it too

    assert report["allow_other_mount"]["rc"] == 0, report["allow_other_mount"]
    assert report["root_reads_shared_mount"] == expected
    assert "Permission denied" in report["stranger_reads_shared_mount"]  # not in nobody's group
    assert report["member_reads_shared_mount"] == expected
    assert report["stranger_reads_world_readable_mount"] == expected
    assert report["allow_other_umount"]["rc"] == 0
