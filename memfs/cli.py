"""The command line: the only module that knows about argv, exit codes and the terminal.

Every error a user can cause ends in one line on stderr and exit status 1; ``--debug`` shows the
traceback instead.  Anything else is a bug: it too ends in one line (``memfs: internal error: <what>
at <file:line>; ...``), with exit status 2, never a traceback unless ``--debug`` asks for one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memfs import __version__
from memfs.cache import DEFAULT_CACHE_SIZE, parse_size
from memfs.detect import OpenOptions, format_names, open_image
from memfs.exceptions import MemfsError, internal_error
from memfs.formats.hiberfil import LAYOUT_NAMES
from memfs.memory import MemorySource

if TYPE_CHECKING:
    from memfs.kernel.discover import Discovery

log = logging.getLogger("memfs")

FAILURES_LOGGER = "memfs.memory"
"""Where :class:`memfs.memory.FailureLog` logs a unit that failed to decode, once per unit."""


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="hiberfil.sys, MEMORY.DMP, a raw image, ...")
    parser.add_argument(
        "--format",
        choices=format_names(),
        help="skip detection and read the image file as this format (e.g. raw); when it names a "
        "container, what the container holds is still detected",
    )
    parser.add_argument(
        "--hiber-layout",
        choices=LAYOUT_NAMES,
        metavar="LAYOUT",
        help="expert override for hibernation files: use this layout instead of detecting it "
        f"({', '.join(LAYOUT_NAMES)})",
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
    parser.add_argument(
        "--no-discovery",
        action="store_true",
        help="do not search memory for kernel values (CR3, KDBG, processors, OS build): the image opens "
        "at once, and memory.dmp then holds only what the image itself states (header.txt says what "
        "it lacks); physmem.bin is the same either way",
    )
    parser.add_argument(
        "--member",
        metavar="PATH",
        help="in a ZIP or tar archive, the member to open (default: the one memory image found by content)",
    )


class _VersionAction(argparse.Action):
    """``--version``: memfs, Python, and the libfuse a mount would use (found only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import platform

        from memfs.fuse.libfuse import find_libfuse

        try:
            fuse = find_libfuse().describe()
        except MemfsError as exc:
            fuse = f"libfuse: none usable ({exc})"
        print(f"memfs {__version__}\nPython {platform.python_version()} ({sys.executable})\n{fuse}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``memfs`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="memfs",
        description="Mount a Windows memory image as physmem.bin, memory.dmp and header.txt.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the versions of memfs, Python and libfuse, and exit"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    mount = commands.add_parser("mount", help="mount an image (read-only)")
    _add_image_options(mount)
    mount.add_argument("mountpoint", help="an empty directory")
    mount.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground")
    mount.add_argument(
        "--allow-other",
        action="store_true",
        help="let other users (e.g. Samba) in: the files are then readable by you and one group only",
    )
    mount.add_argument(
        "--group",
        metavar="NAME",
        help="with --allow-other: the group whose members may read the files (default: your group)",
    )
    mount.add_argument(
        "--world-readable",
        action="store_true",
        help="with --allow-other: let every user read the files (physical memory holds passwords and keys)",
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
    info.add_argument("--hash", action="store_true", help="also compute the SHA-256 of the image file")
    info.add_argument(
        "--verify",
        action="store_true",
        help="check every unit of each layer whose format stores a checksum of its stored bytes, without "
        "decoding it (a .zdmp: every block's CRC32), report how many are bad or missing, and exit 1 if "
        "any is; the other formats (crash dumps, hibernation files, raw images, ...) have no such checksum "
        "and are checked only as their pages are read",
    )

    convert = commands.add_parser(
        "convert", help="write the image as a raw physical image or a crash dump (no FUSE needed)"
    )
    _add_image_options(convert)
    convert.add_argument("output", help="the file to write")
    convert.add_argument(
        "--to",
        choices=("raw", "dmp"),
        required=True,
        help="raw: physmem.bin (holes as zeros, sparse); dmp: memory.dmp (WinDbg-loadable)",
    )
    convert.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    convert.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="decode on N threads (default: the number of CPUs)",
    )
    convert.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    convert.add_argument(
        "--no-hash",
        action="store_true",
        help="skip the SHA-256 of the output (hashing runs on one core and can cap the rate)",
    )

    share = commands.add_parser("share", help="print a Samba share definition for a memfs mount")
    share.add_argument("mountpoint", help="a memfs mount point")
    share.add_argument("--name", help="share name (default: memfs-<mount point name>)")
    share.add_argument("--user", help="let only this Samba user connect (valid users)")
    share.add_argument("--guest", action="store_true", help="allow guest access without a password")
    share.add_argument("--write", metavar="FILE", help="write the definition to FILE instead of stdout")

    commands.add_parser("doctor", help="check whether this machine can mount, and say how to fix it")
    return parser


def _open(args: argparse.Namespace) -> MemorySource:
    options = OpenOptions(
        cache_size=args.cache_size,
        format=args.format,
        vmware_meta=args.vmware_meta,
        hiber_layout=args.hiber_layout,
        member=args.member,
    )
    return open_image(args.image, options)


def _discover(args: argparse.Namespace, source: MemorySource) -> Discovery:
    """Kernel discovery of ``source``, or the Discovery that says it was not run (``--no-discovery``)."""
    from memfs.kernel.discover import discover, not_requested

    return not_requested(source) if args.no_discovery else discover(source)


def cmd_info(args: argparse.Namespace) -> int:
    """``memfs info``: header.txt on stdout, or the JSON object."""
    from memfs.memory import Section
    from memfs.report import info_dict, verify_dict, verify_failures, verify_layers, verify_rows
    from memfs.views.tree import build_files

    with _open(args) as source:
        verified = verify_layers(source) if args.verify else None
        discovery = _discover(args, source)
        # The same files a mount would show, from the same discovery.
        header = build_files(source, discovery)["header.txt"]
        digest = _hash_image(args.image) if args.hash else None
        if args.json:
            result = info_dict(source, discovery)
            if args.hash:
                result["sha256"] = digest
            if verified is not None:
                result["verify"] = verify_dict(verified)
            print(json.dumps(result, indent=2))
        else:
            # header.txt as the mount shows it, plus the image's SHA-256 and the checks when asked for.
            if verified is not None:
                header.extra_sections.append(Section("Verify", verify_rows(verified)))
            print(header.render(sha256=digest))
    failed = verify_failures(verified or [])
    for line in failed:
        print(f"memfs: verify failed: {line}", file=sys.stderr)
    return 1 if failed else 0


def _hash_image(path: str) -> str:
    """SHA-256 of the image file, with progress on a terminal (hashing 16 GiB takes a while)."""
    from memfs.progress import Progress
    from memfs.report import sha256_file

    progress = Progress(os.path.getsize(path), "sha256", mode="tty" if sys.stderr.isatty() else "off")
    digest = sha256_file(path, progress=progress.update)
    progress.finish()
    return digest


def cmd_convert(args: argparse.Namespace) -> int:
    """``memfs convert``: the mount's physmem.bin or memory.dmp written to a file, SHA-256 on stdout."""
    import signal

    from memfs.allocator import tune_malloc
    from memfs.convert import check_output, convert_file, select_file
    from memfs.progress import Progress, format_bytes

    check_output(args.output, args.image, args.force)  # before the (possibly slow) open
    tune_malloc()  # 8 MiB chunks would otherwise be fresh mmaps, page-faulted on every read
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    progress = None
    try:
        with _open(args) as source:
            file = select_file(source, args.to, discovery=not args.no_discovery)
            progress = Progress(
                file.size,
                f"{file.name} -> {os.path.basename(args.output)}",
                mode="off" if args.quiet else "auto",
            )
            result = convert_file(
                file,
                args.output,
                jobs=args.jobs,
                progress=progress,
                force=args.force,
                input_path=args.image,
                hash_output=not args.no_hash,
            )
    except BaseException as exc:
        if progress is not None:
            progress.finish()  # clear the bar so the error line reads cleanly
        if isinstance(exc, KeyboardInterrupt):
            print(f"memfs: convert interrupted; {args.output} was not written", file=sys.stderr)
            return 130
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    rate = result.data_bytes / result.seconds if result.seconds > 0 else 0.0
    progress.finish(
        f"memfs: wrote {args.output}: {format_bytes(result.size)} in {result.seconds:.1f} s "
        f"({format_bytes(rate)}/s decoded; {format_bytes(result.size - result.written_bytes)} left sparse)"
    )
    if result.sha256 is not None:
        print(f"{result.sha256}  {args.output}")
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_share(args: argparse.Namespace) -> int:
    """``memfs share``: the Samba share definition for a mount, on stdout or into a file."""
    from memfs.share import readers_problem, share_for_mount, unreachable_ancestors

    text = share_for_mount(os.path.abspath(args.mountpoint), name=args.name, user=args.user, guest=args.guest)
    problem = readers_problem(os.path.abspath(args.mountpoint), user=args.user, guest=args.guest)
    if problem is not None:
        print(f"memfs: warning: {problem}", file=sys.stderr)
    for directory in unreachable_ancestors(args.mountpoint):
        print(
            f"memfs: warning: {directory} is not searchable by other users (chmod o+x): "
            "Samba users other than its owner will be refused",
            file=sys.stderr,
        )
    if args.write:
        with open(args.write, "w") as handle:
            handle.write(text)
        print(f"memfs: wrote the share definition to {args.write}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """``memfs doctor``: one screen saying whether this machine can mount, with the fixes."""
    from memfs.fuse.doctor import report

    text, can_mount = report()
    print(text)
    return 0 if can_mount else 1


def _absolute_paths(args: argparse.Namespace) -> None:
    """Make every path argument absolute: libfuse moves the serving process to ``/``."""
    for name in ("image", "mountpoint", "vmware_meta", "log_file"):
        if getattr(args, name, None):
            setattr(args, name, os.path.abspath(getattr(args, name)))


def cmd_mount(args: argparse.Namespace) -> int:
    """``memfs mount``: open and check everything first, then mount."""
    from memfs.allocator import release_free_memory, tune_malloc
    from memfs.fuse.libfuse import select_libfuse
    from memfs.fuse.mount import (
        MountOptions,
        check_allow_other,
        check_mountpoint,
        clear_dead_mount,
        mount_background,
        mount_section,
        open_descriptors,
        open_log_file,
        resolve_group,
        run_fuse,
    )
    from memfs.views.header_txt import HeaderTextFile
    from memfs.views.tree import build_files

    if (args.group or args.world_readable) and not args.allow_other:
        raise MemfsError(
            "--group and --world-readable say who may read a shared mount: add --allow-other "
            "(without it only you can read the files)"
        )
    if args.group and args.world_readable:
        raise MemfsError("--world-readable lets every user read the files: --group would restrict nothing")
    group = resolve_group(args.group) if args.group else None
    inherited = open_descriptors()  # before memfs opens anything of its own
    _absolute_paths(args)
    mountpoint = args.mountpoint
    if clear_dead_mount(mountpoint):
        print(f"memfs: cleared a dead memfs mount from {mountpoint} (its daemon had died)", file=sys.stderr)
    check_mountpoint(mountpoint)
    if args.allow_other:
        check_allow_other()
    log_fd = None
    if args.log_file and args.foreground:
        _log_to_file(args.log_file)
    elif args.log_file:
        log_fd = open_log_file(args.log_file)
    # Before the first unit is decoded: discovery fills the cache the daemon inherits (tune_malloc).
    tune_malloc()
    source = _open(args)
    files = build_files(source, _discover(args, source))
    files[HeaderTextFile.name].extra_sections.append(mount_section(select_libfuse()))
    # Kernel discovery (above) decoded up to a cache-full of units, interleaved in the heap with its own
    # temporaries; once those are freed, the gaps between kept units are too small for a unit and
    # would stay resident for the life of the mount (+30 MiB at --cache-size 512M).  Start empty.
    source.drop_cache()
    release_free_memory()
    failures_log = logging.getLogger(FAILURES_LOGGER)
    failures_log.setLevel(logging.NOTSET)  # from now on the daemon logs each one
    for layer in source.layers:  # and the ones discovery already met (recorded while it was quiet)
        for _, message in layer.failures.items() if layer.failures is not None else ():
            failures_log.error("%s", message)
    options = MountOptions(
        foreground=args.foreground,
        allow_other=args.allow_other,
        group=group,
        world_readable=args.world_readable,
        single_threaded=args.single_threaded,
        debug=args.debug,
        extra=args.fuse_options,
        fsname=f"memfs:{os.path.basename(args.image)}",
    )
    if args.foreground:
        run_fuse(files, mountpoint, options)
        source.close()
        return 0
    try:
        pid = mount_background(files, mountpoint, options, log_fd=log_fd, inherited=inherited)
    finally:
        if log_fd is not None:
            os.close(log_fd)  # the daemon has its own copy
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
    try:
        handler = logging.FileHandler(path)
    except OSError as exc:
        raise MemfsError(f"--log-file {path}: cannot open it for writing: {exc.strerror}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)


COMMANDS = {
    "info": cmd_info,
    "mount": cmd_mount,
    "umount": cmd_umount,
    "convert": cmd_convert,
    "share": cmd_share,
    "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memfs`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="memfs: %(levelname)s: %(message)s",
    )
    if not args.debug:
        # A unit that fails while a command opens or reads the image is reported once: by the error line
        # when that ends the command, else in header.txt.  Only a mount's daemon logs them (cmd_mount).
        logging.getLogger(FAILURES_LOGGER).setLevel(logging.CRITICAL)
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
    except Exception as exc:  # the last line of defence: a bug still ends in one line
        if args.debug:
            raise
        print(f"memfs: {internal_error(exc)}; please report it with --debug output", file=sys.stderr)
        return INTERNAL_ERROR


INTERNAL_ERROR = 2
"""Exit status for a bug (an exception that is not a MemfsError); user errors exit 1."""
