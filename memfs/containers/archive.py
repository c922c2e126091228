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
* Other ZIP methods (bzip2, LZMA, deflate64) and encrypted members are refused with one line.

Which member: ``member`` (``--member PATH``) names it; otherwise the one member whose first bytes carry
a memory-image or container signature, or whose name says raw image (``.raw``, ``.dd``, ``.mem``, …).
None or several is an error that lists the members or candidates.
"""

from __future__ import annotations

import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers import gzip_stream
from memfs.containers.slices import ConcatSource, SliceSource, SourceFile
from memfs.exceptions import FormatError, MemfsError, at

FORMAT_ZIP = "zip"
FORMAT_TAR = "tar"
ZIP_LOCAL = b"PK\x03\x04"
ZIP_EMPTY = b"PK\x05\x06"
STORED, DEFLATED = 0, 8
ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
SNIFF = 64
MAX_LISTED = 20
IMAGE_SIGNATURES = (
    b"PAGEDU64", b"PAGEDUMP",  # crash dumps
    b"hibr", b"HIBR", b"wake", b"WAKE", b"RSTR",  # hibernation files
    b"EMiL", b"AVML", b"\x7fELF",  # LiME, AVML, ELF core
    b"\xff\x06\x00\x00sNaPpY", b"\xff\x06\x00\x00S2sTwO", b"\x1f\x8b\x08",  # compressed images
    b"EVF\x09\x0d\x0a\xff\x00", b"PMDM", b"KDMV",  # EWF, VMware .vmss/.vmsn
)  # fmt: skip
RAW_SUFFIXES = {".raw", ".dd", ".mem", ".vmem", ".img", ".bin", ".lime", ".dmp", ".e01", ".aff4", ".zdmp"}
RAW_NAMES = {"hiberfil.sys"}


def probe_zip(head: bytes, source) -> bool:
    """A ZIP archive starts with a local file header (or is an empty archive)."""
    return head.startswith((ZIP_LOCAL, ZIP_EMPTY))


def probe_tar(head: bytes, source) -> bool:
    """A POSIX/GNU tar archive has ``ustar`` at offset 257 of its first header block."""
    return len(head) >= 263 and head[257:262] == b"ustar"


@dataclass
class Member:
    """An archive member: its path, decoded size, and how to reach its bytes."""

    path: str
    size: int
    method: int  # ZIP compression method; STORED for tar members
    data_offset: int  # where its (compressed) bytes start in the archive
    data_size: int
    crc: int = 0
    encrypted: bool = False


def list_members(source, kind: str) -> list[Member]:
    """Every regular-file member of a ``zip`` or ``tar`` archive, in archive order."""
    file = SourceFile(source)
    try:
        if kind == FORMAT_ZIP:
            with zipfile.ZipFile(file) as archive:
                return [_zip_member(source, info) for info in archive.infolist() if not info.is_dir()]
        with tarfile.open(fileobj=file, mode="r:") as archive:
            return [
                Member(info.name, info.size, STORED, info.offset_data, info.size)
                for info in archive.getmembers()
                if info.isreg() and not info.issparse()
            ]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as exc:
        raise FormatError(at(source.name, 0, f"{kind} archive does not list its members: {exc}")) from None


def _zip_member(source, info: zipfile.ZipInfo) -> Member:
    """The data offset comes from the *local* header: its extra field may differ from the central one."""
    local = source.pread(info.header_offset, ZIP_LOCAL_HEADER.size) if info.header_offset >= 0 else b""
    if len(local) < ZIP_LOCAL_HEADER.size or not local.startswith(ZIP_LOCAL):
        raise FormatError(
            at(source.name, info.header_offset, f"no local header for member {info.filename!r}")
        )
    name_len, extra_len = ZIP_LOCAL_HEADER.unpack(local)[-2:]
    data_offset = info.header_offset + ZIP_LOCAL_HEADER.size + name_len + extra_len
    return Member(
        info.filename, info.file_size, info.compress_type, data_offset, info.compress_size, info.CRC,
        bool(info.flag_bits & 1),
    )  # fmt: skip


def candidates(source, kind: str, members: list[Member] | None = None) -> list[Member]:
    """Members that look like a memory image: a known signature in their first bytes, or a raw-image name."""
    found = []
    for member in members if members is not None else list_members(source, kind):
        name = PurePosixPath(member.path.lower())
        if name.name in RAW_NAMES or name.suffix in RAW_SUFFIXES:
            found.append(member)
            continue
        if member.encrypted or member.method not in (STORED, DEFLATED) or member.size < SNIFF:
            continue
        if _head(source, member).startswith(IMAGE_SIGNATURES):
            found.append(member)
    return found


def _head(source, member: Member) -> bytes:
    """The first SNIFF decoded bytes of a stored or deflated member (inflating a few KiB at most)."""
    raw = source.pread(member.data_offset, min(member.data_size, 1 << 16 if member.method else SNIFF))
    if member.method == STORED:
        return raw
    try:
        return zlib.decompressobj(-15).decompress(raw, SNIFF)
    except zlib.error:
        return b""


def open_member_source(source, member: Member, cache_size: int = DEFAULT_CACHE_SIZE):
    """The decoded bytes of ``member`` as a byte source (closing it leaves ``source`` open)."""
    name = f"{source.name}[{member.path}]"
    if member.encrypted:
        raise FormatError(at(source.name, member.data_offset, f"member {member.path!r} is encrypted"))
    data = SliceSource(source, member.data_offset, member.data_size, name)
    if data.size < member.data_size:
        raise FormatError(
            at(source.name, member.data_offset, f"member {member.path!r} needs {member.data_size} bytes, "
               f"the archive has {data.size}")
        )  # fmt: skip
    if member.method == STORED:
        return data
    if member.method != DEFLATED:
        raise FormatError(
            at(source.name, member.data_offset, f"member {member.path!r} uses ZIP compression method "
               f"{member.method}; only stored (0) and deflate (8) members can be read in place")
        )  # fmt: skip
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip: deflate, no flags, no mtime, OS unknown
    trailer = struct.pack("<II", member.crc, member.size & 0xFFFFFFFF)
    wrapped = ConcatSource([header, data, trailer], name)
    return gzip_stream.open_stream(wrapped, cache_size, name=name)


def pick(source, kind: str, member: str | None = None) -> Member:
    """The member to open: ``member`` when given, else the single image candidate; else a one-line error."""
    members = list_members(source, kind)
    if member is not None:
        wanted = member.strip("/")
        for item in members:
            if item.path.strip("/") == wanted:
                return item
        raise MemfsError(at(source.name, 0, f"no member {member!r}; members: {_names(members)}"))
    found = candidates(source, kind, members)
    if len(found) == 1:
        return found[0]
    if not found:
        raise MemfsError(
            at(source.name, 0, f"{kind} archive holds no memory image; members: {_names(members)}")
        )
    raise MemfsError(
        at(source.name, 0, f"{kind} archive holds {len(found)} candidate images: {_names(found)}; "
           "choose one with --member PATH")
    )  # fmt: skip


def _names(members: list[Member]) -> str:
    names = [m.path for m in members[:MAX_LISTED]]
    more = f" and {len(members) - MAX_LISTED} more" if len(members) > MAX_LISTED else ""
    return (", ".join(names) or "(none)") + more


def open_member(source, kind: str, member: str | None = None, cache_size: int = DEFAULT_CACHE_SIZE):
    """Open the chosen member of a ``zip``/``tar`` archive as a byte source (format detection runs on it)."""
    return open_member_source(source, pick(source, kind, member), cache_size)
