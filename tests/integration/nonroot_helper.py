"""Run memfs as an ordinary user inside a private mount namespace and report what happened (JSON).

Started by ``test_nonroot.py`` as root under ``unshare --mount --propagation private``, so nothing it
mounts or binds is visible outside: it binds a 0666 FUSE device node over ``/dev/fuse`` (some
containers make it 0600, which stops every non-root mount) and, for the second half, a
``fuse.conf`` with ``user_allow_other`` over ``/etc/fuse.conf``.  The ordinary user is ``nobody``
with only CAP_DAC_READ_SEARCH kept (to read the Python installation and the image wherever they
are); FUSE's permission checks look at uids, which that capability does not touch.

    python3 -m tests.integration.nonroot_helper WORKDIR IMAGE
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from memfs.mounts import is_mounted

NOBODY = 65534
AS_NOBODY = [
    "setpriv",
    f"--reuid={NOBODY}",
    f"--regid={NOBODY}",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
    "env",
    "HOME=/tmp",
]


def memfs_as_nobody(*args: str) -> dict:
    result = subprocess.run(
        [*AS_NOBODY, sys.executable, "-m", "memfs", *args], capture_output=True, text=True, timeout=60
    )
    return {"rc": result.returncode, "stdout": result.stdout, "stderr": result.stderr}


STRANGER = 4242


def reads_as(mountpoint: str, uid: int, group: int | None = None) -> str:
    """What ``uid`` (also in ``group``, if given; no capabilities) sees: physmem.bin's digest or the error."""
    groups = f"--groups={group}" if group is not None else "--clear-groups"
    physmem = os.path.join(mountpoint, "physmem.bin")
    result = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", groups, "sha256sum", physmem],
        capture_output=True,
        text=True,
    )
    return result.stdout.split(" ")[0] if result.returncode == 0 else "error: " + result.stderr.strip()


def root_reads(mountpoint: str) -> str:
    """What root sees in the mount: the physmem.bin digest, or the error."""
    try:
        with open(os.path.join(mountpoint, "physmem.bin"), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        return f"error: {exc.strerror}"


def main(workdir: str, image: str) -> dict:
    report: dict = {}
    device = os.path.join(workdir, "fuse")
    os.mknod(device, 0o666 | 0o020000, os.makedev(10, 229))
    os.chmod(device, 0o666)
    subprocess.run(["mount", "--bind", device, "/dev/fuse"], check=True)
    mountpoint = os.path.join(workdir, "mnt")
    os.mkdir(mountpoint)
    os.chown(mountpoint, NOBODY, NOBODY)
    foreign = os.path.join(workdir, "roots")  # root's directory, 0755: not nobody's to mount on
    os.mkdir(foreign)
    try:
        report["not_owner"] = memfs_as_nobody("mount", image, foreign)
        report["allow_other_refused"] = memfs_as_nobody("mount", "--allow-other", image, mountpoint)
        report["mount"] = memfs_as_nobody("mount", image, mountpoint)
        report["mounted"] = is_mounted(mountpoint)
        report["root_reads_private_mount"] = root_reads(mountpoint)
        report["nobody_reads"] = subprocess.run(
            [*AS_NOBODY, "sha256sum", os.path.join(mountpoint, "physmem.bin")], capture_output=True, text=True
        ).stdout.split(" ")[0]
        report["umount"] = memfs_as_nobody("umount", mountpoint)
        report["unmounted"] = not is_mounted(mountpoint)
        memfs_as_nobody("mount", image, mountpoint)
        root = subprocess.run(
            [sys.executable, "-m", "memfs", "umount", mountpoint], capture_output=True, text=True, timeout=60
        )
        report["root_umount"] = {
            "rc": root.returncode,
            "stderr": root.stderr,
            "gone": not is_mounted(mountpoint),
        }

        conf = os.path.join(workdir, "fuse.conf")
        with open(conf, "w") as handle:
            handle.write("# test\nuser_allow_other\n")
        subprocess.run(["mount", "--bind", conf, "/etc/fuse.conf"], check=True)
        report["allow_other_mount"] = memfs_as_nobody("mount", "--allow-other", image, mountpoint)
        report["root_reads_shared_mount"] = root_reads(mountpoint)
        # Shared with nobody's own group only: a user outside it is refused, a member reads.
        report["stranger_reads_shared_mount"] = reads_as(mountpoint, STRANGER)
        report["member_reads_shared_mount"] = reads_as(mountpoint, STRANGER, NOBODY)
        report["allow_other_umount"] = memfs_as_nobody("umount", mountpoint)
        memfs_as_nobody("mount", "--allow-other", "--world-readable", image, mountpoint)
        report["stranger_reads_world_readable_mount"] = reads_as(mountpoint, STRANGER)
        memfs_as_nobody("umount", mountpoint)
    finally:
        if is_mounted(mountpoint):
            subprocess.run(["fusermount3", "-uz", mountpoint], capture_output=True)
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
