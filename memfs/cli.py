"""The command line: the only module that knows about argv, exit codes and the terminal.

Every error a user can cause ends in one line on stderr and exit status 1; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from memfs import __version__
from memfs.cache import DEFAULT_CACHE_SIZE, parse_size
from memfs.detect import OpenOptions, format_names, open_image
from memfs.exceptions import MemfsError
from memfs.formats.hiberfil_structs import LAYOUT_KEYS
from memfs.memory import MemorySource

log = logging.getLogger("memfs")


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="hiberfil.sys, MEMORY.DMP, a raw image, ...")
    parser.add_argument(
        "--format",
        choices=format_names(),
        help="skip detection and read the image as this format (e.g. raw)",
    )
    parser.add_argument(
        "--hiber-layout",
        choices=LAYOUT_KEYS,
        metavar="LAYOUT",
        help="expert override for hibernation files: use this layout instead of detecting it "
        f"({', '.join(LAYOUT_KEYS)})",
    )
    parser.add_argument(
        "--cache-size",
        type=_size_arg,
        default=DEFAULT_CACHE_SIZE,
        metavar="SIZE",
        help=f"budget for decoded pages kept in memory (default {DEFAULT_CACHE_SIZE >> 20}M)",
    )
    parser.add_argument(
        "--vmware-meta",
        metavar="FILE",
        help="the .vmss/.vmsn of a .vmem (default: the one beside it with the same name)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``memfs`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="memfs",
        description="Mount a Windows memory image as physmem.bin, memory.dmp and header.txt.",
    )
    parser.add_argument("--version", action="version", version=f"memfs {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    mount = commands.add_parser("mount", help="mount an image (read-only)")
    _add_image_options(mount)
    mount.add_argument("mountpoint", help="an empty directory")
    mount.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground")
    mount.add_argument(
        "--allow-other", action="store_true", help="let other users (e.g. Samba) read the mount"
    )
    mount.add_argument("--single-threaded", action="store_true", help="serve requests from one thread")
    mount.add_argument(
        "-o", dest="fuse_options", action="append", default=[], metavar="OPTS", help="extra FUSE options"
    )
    mount.add_argument("--log-file", help="write the daemon's log here (default: stderr)")

    umount = commands.add_parser("umount", help="unmount a memfs mount")
    umount.add_argument("mountpoint")

    info = commands.add_parser("info", help="print what memfs knows about an image")
    _add_image_options(info)
    info.add_argument("--json", action="store_true", help="one JSON object instead of header.txt")
    return parser


def _open(args: argparse.Namespace) -> MemorySource:
    options = OpenOptions(
        cache_size=args.cache_size,
        format=args.format,
        vmware_meta=args.vmware_meta,
        hiber_layout=args.hiber_layout,
    )
    return open_image(args.image, options)


def cmd_info(args: argparse.Namespace) -> int:
    """``memfs info``: header.txt on stdout, or the JSON object."""
    from memfs.report import info_dict
    from memfs.views.tree import build_files

    with _open(args) as source:
        # The same files a mount would show: building them runs kernel discovery once.
        header = build_files(source)["header.txt"]
        if args.json:
            print(json.dumps(info_dict(source), indent=2))
        else:
            print(header.read(0, header.size).decode())
    return 0


def cmd_mount(args: argparse.Namespace) -> int:
    """``memfs mount``: open and check everything first, then mount."""
    from memfs.fuse.mount import MountOptions, check_mountpoint, mount_background, run_fuse
    from memfs.views.tree import build_files

    mountpoint = os.path.abspath(args.mountpoint)
    check_mountpoint(mountpoint)
    source = _open(args)
    files = build_files(source)
    options = MountOptions(
        foreground=args.foreground,
        allow_other=args.allow_other,
        single_threaded=args.single_threaded,
        debug=args.debug,
        extra=args.fuse_options,
        fsname=f"memfs:{os.path.basename(args.image)}",
    )
    if args.foreground:
        if args.log_file:
            _log_to_file(args.log_file)
        run_fuse(files, mountpoint, options)
        source.close()
        return 0
    pid = mount_background(files, mountpoint, options, log_file=args.log_file)
    source.close()  # the daemon has its own copy of the descriptor
    print(f"memfs: {args.image} mounted on {mountpoint} (daemon pid {pid})")
    print(f"memfs: stop it with: memfs umount {mountpoint}")
    return 0


def cmd_umount(args: argparse.Namespace) -> int:
    """``memfs umount``."""
    from memfs.fuse.mount import unmount

    unmount(os.path.abspath(args.mountpoint))
    return 0


def _log_to_file(path: str) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)


COMMANDS = {"info": cmd_info, "mount": cmd_mount, "umount": cmd_umount}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memfs`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="memfs: %(levelname)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except MemfsError as exc:
        if args.debug:
            raise
        print(f"memfs: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"memfs: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
