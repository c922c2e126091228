"""Memory images inside ZIP and tar archives (KAPE / Velociraptor collections), read without unpacking.

Members are listed with the standard library (``zipfile``, ``tarfile``) over a file view of the
source; nothing is extracted (docs/formats/archives.md):

* A *stored* ZIP member or any tar member is a range of the archive: reads go straight to it.
* A *deflated* ZIP member is raw deflate data whose CRC-32 and size the archive records
  (docs/formats/archives.md §1.3), which is everything a gzip member has; framed by a made-up 10-byte
  gzip header and that 8-byte trailer it becomes a gzip stream, read at random by
  :mod:`memfs.containers.gzip_stream`.  The standard library's own member reader would inflate from the
  start on every backward seek (docs/formats/archives.md §4), and ratarmountcore does the same for ZIP
  members (it uses zipfile underneath).
* Other ZIP methods (bzip2, LZMA, deflate64), encrypted members and GNU sparse tar members are refused
  with one line.

Which member (docs/formats/archives.md §3): ``OpenOptions.member`` (``--member PATH``) names it;
otherwise members are recognised by content with the format registry's own probes, which
:mod:`memfs.detect` hands to :func:`format_spec` as ``recognise`` (this module keeps no list of
signatures).  The first of these groups that is not empty decides — one member is opened, several
are an error listing them:

1. memory images: members whose content a memory format recognises (a crash dump, a hibernation
   file, ...), and members that no probe recognises whose name says raw image (``.raw``, ``.dd``,
   ``.mem``, ...: raw memory has no signature);
2. members whose content a container recognises (a compressed image, EWF, another archive).
"""

from __future__ import annotations

import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from memfs.byte_source import ByteSource
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers import gzip_stream
from memfs.containers.slices import ConcatSource, SliceSource, SourceFile
from memfs.exceptions import FormatError, MemfsError, at
from memfs.formats.base import CONTAINER, HEAD_SIZE, MEMORY, FormatSpec, OpenOptions, ProbeInput

FORMAT_ZIP = "zip"
FORMAT_TAR = "tar"
ZIP_LOCAL = b"PK\x03\x04"
ZIP_EMPTY = b"PK\x05\x06"
STORED, DEFLATED = 0, 8
ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
METHOD_NAMES = {STORED: "stored", DEFLATED: "deflate"}
MAX_LISTED = 20
RAW_SUFFIXES = {".raw", ".dd", ".mem", ".vmem", ".img", ".bin"}
"""Names that say raw memory image: the third way to find a member (raw memory has no signature)."""
PROBE_LIMIT = 1 << 20
"""Decoded bytes of a deflated member a probe may read (a probe looks at the first 64 KiB, sparingly more)."""

Recognise = Callable[[ProbeInput], "FormatSpec | None"]
"""The registry's detection without the raw fallback: the format whose probe accepts the input, or None."""


def probe_zip(p: ProbeInput) -> bool:
    """A ZIP archive starts with a local file header, or is an empty archive (docs/formats/archives.md
    §1.1)."""
    return p.head.startswith((ZIP_LOCAL, ZIP_EMPTY))


def probe_tar(p: ProbeInput) -> bool:
    """A POSIX/GNU tar archive has ``ustar`` at offset 257 of its first header block (docs/formats/archives.md
    §2)."""
    return len(p.head) >= 263 and p.head[257:262] == b"ustar"


@dataclass
class Member:
    """An archive member: its path, decoded size, and how to reach its bytes."""

    path: str
    size: int
    method: int  # ZIP compression method; STORED for tar members
    data_offset: int  # where its (compressed) bytes start in the archive
    data_size: int
    crc: int = 0
    unreadable: str | None = None
    """Why memfs cannot read it in place (encrypted, another ZIP method, a sparse tar member), or None."""


def list_members(source: ByteSource, kind: str) -> list[Member]:
    """Every regular-file member of a ``zip`` or ``tar`` archive, in archive order."""
    file = SourceFile(source)
    try:
        if kind == FORMAT_ZIP:
            with zipfile.ZipFile(file) as archive:
                # not ZipInfo.is_dir(): it indexes the name, and a hostile member's name can be empty
                infos = archive.infolist()
                return [_zip_member(source, info) for info in infos if not info.filename.endswith("/")]
        with tarfile.open(fileobj=file, mode="r:") as archive:
            return [_tar_member(info) for info in archive.getmembers() if info.isreg()]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, NotImplementedError) as exc:
        # zipfile raises NotImplementedError for a stated "version needed to extract" it does not know
        raise FormatError(at(source.name, 0, f"{kind} archive does not list its members: {exc}")) from None


def _tar_member(info: tarfile.TarInfo) -> Member:
    sparse = "a GNU sparse member" if info.issparse() else None
    return Member(info.name, info.size, STORED, info.offset_data, info.size, unreadable=sparse)


def _zip_member(source: ByteSource, info: zipfile.ZipInfo) -> Member:
    """The data offset comes from the *local* header: its extra field may differ from the central one."""
    local = source.pread(info.header_offset, ZIP_LOCAL_HEADER.size) if info.header_offset >= 0 else b""
    if len(local) < ZIP_LOCAL_HEADER.size or not local.startswith(ZIP_LOCAL):
        raise FormatError(
            at(source.name, info.header_offset, f"no local header for member {info.filename!r}")
        )
    name_len, extra_len = ZIP_LOCAL_HEADER.unpack(local)[-2:]
    data_offset = info.header_offset + ZIP_LOCAL_HEADER.size + name_len + extra_len
    unreadable = None
    if info.flag_bits & 1:
        unreadable = "encrypted"
    elif info.compress_type not in METHOD_NAMES:
        unreadable = (
            f"compressed with ZIP method {info.compress_type}; only stored (0) and deflate (8) members "
            "can be read in place"
        )
    return Member(
        info.filename, info.file_size, info.compress_type, data_offset, info.compress_size, info.CRC,
        unreadable,
    )  # fmt: skip


# -- finding the image among the members ---------------------------------------------------------------


class _InflatedHead(ByteSource):
    """The first :data:`PROBE_LIMIT` decoded bytes of a deflated member, inflated as far as a probe reads."""

    def __init__(self, archive: ByteSource, member: Member) -> None:
        self.name = f"{archive.name}[{member.path}]"
        self.size = min(member.size, PROBE_LIMIT)
        self._archive, self._member = archive, member
        self._inflater = zlib.decompressobj(-15)
        self._taken = 0  # compressed bytes fed to the inflater
        self._data = bytearray()

    def pread(self, offset: int, n: int) -> bytes:
        end = min(offset + n, self.size)
        while len(self._data) < end and not self._inflater.eof:
            piece = self._inflater.unconsumed_tail
            if not piece:
                take = min(HEAD_SIZE, self._member.data_size - self._taken)
                piece = self._archive.pread(self._member.data_offset + self._taken, take) if take > 0 else b""
                if not piece:
                    break
                self._taken += len(piece)
            try:
                self._data += self._inflater.decompress(piece, self.size - len(self._data))
            except zlib.error:
                break  # damage shows when the member is opened; to a probe the member just ends here
        return bytes(self._data[offset:end])


def _probe_input(archive: ByteSource, member: Member) -> ProbeInput:
    """What the registry's probes see of ``member``: its first 64 KiB (and more on request) and its size."""
    if member.method == STORED:
        head_source: ByteSource = SliceSource(archive, member.data_offset, member.data_size, member.path)
    else:
        head_source = _InflatedHead(archive, member)
    name = f"{archive.name}[{member.path}]"
    return ProbeInput(name, member.size, head_source.pread(0, HEAD_SIZE), head_source)


@dataclass
class Candidate:
    """A member that may be the image: the format that recognised it (None: its name says raw image)."""

    member: Member
    format: FormatSpec | None

    def __str__(self) -> str:
        return f"{self.member.path} ({self.format.name if self.format else 'raw image by its name'})"


def candidates(source: ByteSource, members: list[Member], recognise: Recognise) -> list[list[Candidate]]:
    """The members that may be the image, in the two groups of the module docstring (each may be empty)."""
    images: list[Candidate] = []
    containers: list[Candidate] = []
    for member in members:
        if member.unreadable or member.size == 0:
            continue
        spec = recognise(_probe_input(source, member))
        if spec is not None:
            (images if spec.kind == MEMORY else containers).append(Candidate(member, spec))
        elif PurePosixPath(member.path.lower()).suffix in RAW_SUFFIXES:
            images.append(Candidate(member, None))
    return [images, containers]


def pick(
    source: ByteSource, kind: str, members: list[Member], member: str | None, recognise: Recognise
) -> tuple[Member, str]:
    """The member to open and why it was chosen; a one-line error when none or several qualify."""
    if member is not None:
        wanted = member.strip("/")
        for item in members:
            if item.path.strip("/") == wanted:
                return item, "chosen with --member"
        raise MemfsError(at(source.name, 0, f"no member {member!r}; members: {_names(members)}"))
    groups = candidates(source, members, recognise)
    found = next((group for group in groups if group), [])
    if len(found) == 1:
        passed = [str(c) for group in groups for c in group if c is not found[0]]  # only in later groups
        chosen = found[0]
        how = f"recognised by content as {chosen.format.name}" if chosen.format else "named like a raw image"
        why = f"the one memory image {how}" if found is groups[0] else f"the one container {how}"
        return found[0].member, why + (f"; passed over: {', '.join(passed)}" if passed else "")
    if not found:
        raise MemfsError(
            at(source.name, 0, f"{kind} archive holds no memory image memfs recognises; members: "
               f"{_names(members)} (choose one with --member PATH to read it as it is)")
        )  # fmt: skip
    listed = ", ".join(str(c) for c in found[:MAX_LISTED])
    more = f" and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
    raise MemfsError(
        at(source.name, 0, f"{kind} archive holds {len(found)} candidate images: {listed}{more}; "
           "choose one with --member PATH")
    )  # fmt: skip


def _names(members: list[Member]) -> str:
    names = [m.path + (f" ({m.unreadable.split(';')[0]})" if m.unreadable else "") for m in members]
    names = names[:MAX_LISTED]
    more = f" and {len(members) - MAX_LISTED} more" if len(members) > MAX_LISTED else ""
    return (", ".join(names) or "(none)") + more


# -- opening a member -------------------------------------------------------------------------------------


def open_member_source(
    source: ByteSource, member: Member, cache_size: int = DEFAULT_CACHE_SIZE
) -> ByteSource:
    """The decoded bytes of ``member`` as a byte source (closing it leaves ``source`` open)."""
    name = f"{source.name}[{member.path}]"
    if member.unreadable:
        what = f"member {member.path!r} is {member.unreadable}"
        raise FormatError(at(source.name, member.data_offset, what))
    data = SliceSource(source, member.data_offset, member.data_size, name)
    if data.size < member.data_size:
        raise FormatError(
            at(source.name, member.data_offset, f"member {member.path!r} needs {member.data_size} bytes, "
               f"the archive has {data.size}")
        )  # fmt: skip
    if member.method == STORED:
        return data
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip: deflate, no flags, no mtime, OS unknown
    trailer = struct.pack("<II", member.crc, member.size & 0xFFFFFFFF)
    wrapped = ConcatSource([header, data, trailer], name)
    return gzip_stream.open_stream(wrapped, cache_size, name=name)


class MemberStream(ByteSource):
    """The chosen member of an archive, as the byte source format detection runs on next.

    It owns the archive's source (closing it closes the archive); reads go to the member's own stream
    (a range of the archive, or the gzip layer over a deflated member) without a call in between.
    """

    def __init__(
        self, archive: ByteSource, kind: str, data: ByteSource, member: Member, members: int, why: str
    ) -> None:
        self.archive, self.data, self.member = archive, data, member
        self.name, self.size = data.name, data.size
        self.pread = data.pread  # no frame of this class between a reader and the member's bytes
        self.readinto = data.readinto
        self.cache, self.failures = data.cache, data.failures
        self._rows = [
            ("Archive", f"{kind.upper()}, {members} member{'s' if members != 1 else ''} ({archive.name})"),
            ("Member", f"{member.path}: {why}"),
        ]
        if member.method == STORED:
            where = f"archive offset {member.data_offset:#x}"
            self._rows.append(("Stored", f"as is, {member.size:#x} bytes at {where}"))
        else:
            self._rows.append(
                ("Stored", f"deflate, {member.data_size:#x} bytes at archive offset {member.data_offset:#x} "
                 f"inflating to {member.size:#x}; read at random through a rapidgzip index, CRC-32 checked")
            )  # fmt: skip

    def facts(self) -> list[tuple[str, str]]:
        """Rows for header.txt and ``info --json``: the archive, the member and how it is read."""
        failed = self.failures.count if self.failures is not None else 0
        return self._rows + ([("Undecodable units", str(failed))] if failed else [])

    def close(self) -> None:
        self.data.close()
        self.archive.close()


def open_member(
    source: ByteSource,
    kind: str,
    recognise: Recognise,
    member: str | None = None,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> MemberStream:
    """Open the chosen member of a ``zip``/``tar`` archive as a byte source (format detection runs on it).

    ``recognise`` is the registry's detection (:func:`memfs.detect.recognise`); ``member`` a path that
    overrides it.
    """
    members = list_members(source, kind)
    chosen, why = pick(source, kind, members, member, recognise)
    data = open_member_source(source, chosen, cache_size)
    return MemberStream(source, kind, data, chosen, len(members), why)


def format_spec(kind: str, recognise: Recognise) -> FormatSpec:
    """The registry entry of ``zip`` or ``tar``; ``recognise`` is the registry's detection (see above)."""

    def open_archive(source: ByteSource, options: OpenOptions) -> MemberStream:
        return open_member(source, kind, recognise, options.member, options.cache_size)

    description = {
        FORMAT_ZIP: "ZIP archive (KAPE/Velociraptor collection): the memory image member, read in place",
        FORMAT_TAR: "tar archive: the memory image member, read in place",
    }[kind]
    return FormatSpec(
        name=kind,
        description=description,
        probe=probe_zip if kind == FORMAT_ZIP else probe_tar,
        open=open_archive,
        kind=CONTAINER,
        archive=True,
    )
