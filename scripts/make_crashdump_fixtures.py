"""Write small synthetic Windows kernel crash dumps (MEMORY.DMP) of every DumpType memfs reads.

Each stored page's content is derived from its PFN (:func:`page_bytes`), so a test can regenerate
the expected bytes; one page is all zeros and one is pseudo-random.  Headers are written the way
Windows writes them (docs/formats/crashdump.md §7): the header is pre-filled with 'PAGE', then the known
fields,
a zeroed CONTEXT carrying consistent MxCsr copies (kdmp-parser checks +0x34 == +0x118, §4.3), a
sane exception record and a comment.  Offsets here are written out literally from the format doc
rather than taken from memfs's construct definitions, so the reader is checked against the doc.

    python3 -m scripts.make_crashdump_fixtures OUT_DIR

:func:`build_dump` writes one dump and returns ``{pfn: page bytes}``; :data:`FIXTURES` names the
set the CLI writes; :func:`build_sparse_bitmap_dump` makes a large sparse dump for benchmarks.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

PAGE = 0x1000
FILLER = b"PAGE"

# (BasePage, PageCount): several runs, holes in between, two PA-adjacent runs (0x30 and 0x40).
# PFN 0 is left out because kdmp-parser ends an RDMP range list at a range whose PFN is 0 (§6.5).
DEFAULT_RUNS = [(0x2, 0x1E), (0x30, 0x10), (0x40, 0x8), (0x100, 0x41), (0x1FF, 1)]
PAE_HIGH_RUN = (0x100000, 4)  # above 4 GiB: normal on PAE systems (§13)
ZERO_PFN = 0x31
RANDOM_PFN = 0x101
HOLE_PFNS = [0x0, 0x1, 0x20, 0x2F, 0x48, 0xFF, 0x141, 0x1FE]

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
SYSTEM_TIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
SYSTEM_UPTIME = timedelta(hours=3, minutes=25, seconds=7)


def to_filetime(when: datetime) -> int:
    """100-ns ticks since 1601-01-01 UTC."""
    delta = when - FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


HEADER_VALUES = {
    64: {
        "MajorVersion": 0xF,
        "MinorVersion": 19041,
        "DirectoryTableBase": 0x1AD000,
        "PfnDataBase": 0xFFFFFA8000000000,
        "PsLoadedModuleList": 0xFFFFF8031E8A5E50,
        "PsActiveProcessHead": 0xFFFFF8031E8A2F60,
        "MachineImageType": 0x8664,
        "NumberProcessors": 4,
        "BugCheckCode": 0x161,
        "BugCheckParameters": [0x1, 0x2, 0x3, 0x4],
        "KdDebuggerDataBlock": 0xFFFFF8031E800B20,
        "ProductType": 1,
        "SuiteMask": 0x110,
        "Comment": "memfs synthetic crash dump",
        "context": {
            "rip": 0xFFFFF8031E4C5A10,
            "rsp": 0xFFFFF8031F0A7E88,
            "rbp": 0xFFFFF8031F0A7F00,
            "rax": 0x1234,
            "cs": 0x10,
            "ds": 0x2B,
            "es": 0x2B,
            "fs": 0x53,
            "gs": 0x2B,
            "ss": 0x18,
            "eflags": 0x202,
            "mxcsr": 0x1F80,
            "context_flags": 0x0010001F,
        },
    },
    32: {
        "MajorVersion": 0xF,
        "MinorVersion": 7601,
        "DirectoryTableBase": 0x185000,
        "PfnDataBase": 0x8397A700,
        "PsLoadedModuleList": 0x8298C850,
        "PsActiveProcessHead": 0x82984F18,
        "MachineImageType": 0x14C,
        "NumberProcessors": 2,
        "BugCheckCode": 0xE2,
        "BugCheckParameters": [0x0, 0x0, 0x0, 0x0],
        "KdDebuggerDataBlock": 0x82976C28,
        "ProductType": 1,
        "SuiteMask": 0x100,
        "Comment": "memfs synthetic crash dump (x86)",
        "context": {
            "eip": 0x828C1A74,
            "esp": 0x8DD37C30,
            "ebp": 0x8DD37C44,
            "eax": 0x55,
            "cs": 0x08,
            "ds": 0x23,
            "es": 0x23,
            "fs": 0x30,
            "gs": 0x0,
            "ss": 0x10,
            "eflags": 0x202,
            "context_flags": 0x00010007,
        },
    },
}

# Where each CONTEXT register lives (docs/formats/crashdump.md §4.3): name -> (offset, struct format).
CONTEXT64_LAYOUT = {
    "context_flags": (0x30, "<I"),
    "mxcsr": (0x34, "<I"),
    "cs": (0x38, "<H"),
    "ds": (0x3A, "<H"),
    "es": (0x3C, "<H"),
    "fs": (0x3E, "<H"),
    "gs": (0x40, "<H"),
    "ss": (0x42, "<H"),
    "eflags": (0x44, "<I"),
    "rax": (0x78, "<Q"),
    "rsp": (0x98, "<Q"),
    "rbp": (0xA0, "<Q"),
    "rip": (0xF8, "<Q"),
}
CONTEXT32_LAYOUT = {
    "context_flags": (0x00, "<I"),
    "gs": (0x8C, "<I"),
    "fs": (0x90, "<I"),
    "es": (0x94, "<I"),
    "ds": (0x98, "<I"),
    "eax": (0xB0, "<I"),
    "ebp": (0xB4, "<I"),
    "eip": (0xB8, "<I"),
    "cs": (0xBC, "<I"),
    "eflags": (0xC0, "<I"),
    "esp": (0xC4, "<I"),
    "ss": (0xC8, "<I"),
}


def page_bytes(pfn: int) -> bytes:
    """The content a fixture stores for ``pfn``: 512 little-endian words ``pfn << 16 | index``."""
    if pfn == ZERO_PFN:
        return bytes(PAGE)
    if pfn == RANDOM_PFN:
        return random.Random(pfn).randbytes(PAGE)
    base = pfn << 16
    return struct.pack("<512Q", *range(base, base + 512))


def default_runs(pae: bool = False) -> list[tuple[int, int]]:
    """The run layout fixtures use (plus a run above 4 GiB for x86 PAE)."""
    return DEFAULT_RUNS + ([PAE_HIGH_RUN] if pae else [])


def _align(value: int, to: int = PAGE) -> int:
    return (value + to - 1) // to * to


def _pfns(runs: list[tuple[int, int]]) -> list[int]:
    return sorted(pfn for base, count in runs for pfn in range(base, base + count))


def _bitmap(pfns: list[int]) -> tuple[bytes, int]:
    """Bitmap of ``pfns`` and its bit count: a multiple of 64 (LeechCore reads whole QWORDs, §6.4)
    with at least one all-zero 32-bit word at the end (Volatility 3 mis-sizes a final all-ones word)."""
    bits = _align(max(pfns) + 1 + 64, 64)
    value = 0
    for pfn in pfns:
        value |= 1 << pfn
    return value.to_bytes(bits // 8, "little"), bits


_HEAD_FIELDS = (
    "DirectoryTableBase",
    "PfnDataBase",
    "PsLoadedModuleList",
    "PsActiveProcessHead",
    "MachineImageType",
    "NumberProcessors",
    "BugCheckCode",
)


def _header(width: int, dump_type: int, pae: bool, attributes: int | None) -> bytearray:
    values = HEADER_VALUES[width]
    size = 0x2000 if width == 64 else 0x1000
    hdr = bytearray(FILLER * (size // 4))
    ptr = "<Q" if width == 64 else "<I"
    struct.pack_into(
        "<4s4sII",
        hdr,
        0,
        b"PAGE",
        b"DU64" if width == 64 else b"DUMP",
        values["MajorVersion"],
        values["MinorVersion"],
    )
    # DirectoryTableBase .. BugCheckCode from +0x10: pointer-sized, then ULONGs (§2, §3).
    head = [values[name] for name in _HEAD_FIELDS]
    uptime = SYSTEM_UPTIME // timedelta(microseconds=1) * 10
    if width == 64:
        struct.pack_into("<QQQQIIII", hdr, 0x10, *head, 0)
        struct.pack_into("<4Q", hdr, 0x40, *values["BugCheckParameters"])
        hdr[0x60:0x80] = bytes(32)  # VersionUser
        struct.pack_into("<Q", hdr, 0x80, values["KdDebuggerDataBlock"])
        context_at, context_len, layout, exception_at, exception_len = (
            0x348,
            3000,
            CONTEXT64_LAYOUT,
            0xF00,
            0x98,
        )
        struct.pack_into("<II", hdr, 0xF98, dump_type, 0)
        struct.pack_into("<q", hdr, 0xFA8, to_filetime(SYSTEM_TIME))
        comment_at = 0xFB0
        struct.pack_into("<q", hdr, 0x1030, uptime)
        struct.pack_into("<IIIII", hdr, 0x1038, 0, 0, values["ProductType"], values["SuiteMask"], 0)
        attributes_at = 0x1050
    else:
        struct.pack_into("<IIIIIII4I", hdr, 0x10, *head, *values["BugCheckParameters"])
        hdr[0x3C:0x5C] = bytes(32)  # VersionUser
        hdr[0x5C] = 1 if pae else 0  # PaeEnabled; KdSecondaryVersion and Spare3 stay filler ('AGE')
        struct.pack_into("<I", hdr, 0x60, values["KdDebuggerDataBlock"])
        context_at, context_len, layout, exception_at, exception_len = (
            0x320,
            1200,
            CONTEXT32_LAYOUT,
            0x7D0,
            0x50,
        )
        comment_at = 0x820
        attributes_at = 0x8A0
        struct.pack_into(
            "<IIIIII", hdr, 0xF88, dump_type, 0, 0, values["ProductType"], values["SuiteMask"], 0
        )
        struct.pack_into("<q", hdr, 0xFB8, uptime)
        struct.pack_into("<q", hdr, 0xFC0, to_filetime(SYSTEM_TIME))
    # A CONTEXT as Windows writes it: the CONTEXT-sized start is meaningful, the rest zero.
    hdr[context_at : context_at + context_len] = bytes(context_len)
    for name, value in values["context"].items():
        offset, fmt = layout[name]
        struct.pack_into(fmt, hdr, context_at + offset, value)
    if width == 64:
        struct.pack_into("<I", hdr, context_at + 0x118, values["context"]["mxcsr"])  # FltSave.MxCsr
    # Exception record: STATUS_BREAKPOINT, EXCEPTION_NONCONTINUABLE (what bin2dmp writes, §8).
    hdr[exception_at : exception_at + exception_len] = bytes(exception_len)
    struct.pack_into("<II", hdr, exception_at, 0x80000003, 1)
    struct.pack_into(
        ptr,
        hdr,
        exception_at + (0x10 if width == 64 else 0x0C),
        values["context"].get("rip", 0) or values["context"].get("eip", 0),
    )
    comment = values["Comment"].encode()
    hdr[comment_at : comment_at + 128] = comment + bytes(128 - len(comment))
    if attributes is not None:
        struct.pack_into("<II", hdr, attributes_at, attributes, 0)
    return hdr


def _write_runs(hdr: bytearray, width: int, runs: list[tuple[int, int]]) -> None:
    # PHYSICAL_MEMORY_DESCRIPTOR (§4.1): NumberOfRuns (ULONG), NumberOfPages and the runs (pointer-sized).
    desc, size, ptr, pages_at, runs_at = (
        (0x88, 0x2C0, "Q", 8, 0x10) if width == 64 else (0x64, 700, "I", 4, 8)
    )
    hdr[desc : desc + size] = bytes(size)
    struct.pack_into("<I", hdr, desc, len(runs))
    struct.pack_into("<" + ptr, hdr, desc + pages_at, sum(count for _, count in runs))
    run = struct.Struct("<2" + ptr)  # BasePage, PageCount
    for index, (base, count) in enumerate(runs):
        run.pack_into(hdr, desc + runs_at + run.size * index, base, count)


def build_dump(
    path: str | os.PathLike,
    *,
    width: int = 64,
    dump_type: int = 1,
    pae: bool = False,
    runs: list[tuple[int, int]] | None = None,
    bitmap_signature: bytes = b"FDMP",
    summary_layout: str = "bitmap",
    attributes: int | None = 0,
) -> dict[int, bytes]:
    """Write a crash dump to ``path`` and return the stored pages ``{pfn: bytes}``.

    ``dump_type`` 1 (runs), 2 (summary: ``summary_layout`` "bitmap" = the type-5 header with
    'SDMP', or "ms2" = the old ULONG SUMMARY_DUMP), 4 (triage: no pages), 5/6 (bitmap with
    ``bitmap_signature``), 8/9/0xA (RDMP, 64-bit only).  ``attributes`` None leaves the
    Attributes/BootId DWORDs as 'PAGE' filler (pre-Windows 10 headers).
    """
    if runs is None:
        runs = default_runs(pae)
    hdr = _header(width, dump_type, pae, attributes)
    hdr_size = len(hdr)
    pfns = _pfns(runs)
    pages = {pfn: page_bytes(pfn) for pfn in pfns}
    extra = bytearray()  # the type-specific block that follows the header
    if dump_type == 1:
        _write_runs(hdr, width, runs)
        first_page = hdr_size
    elif dump_type in (5, 6) or (dump_type == 2 and summary_layout == "bitmap"):
        bitmap, bits = _bitmap(pfns)
        signature = b"SDMP" if dump_type == 2 else bitmap_signature
        first_page = _align(hdr_size + 0x38 + len(bitmap))
        extra += struct.pack("<4s4sI20sQQQ", signature, b"DUMP", 1, bytes(20), first_page, len(pfns), bits)
        extra += bitmap
    elif dump_type == 2:  # MS2 SUMMARY_DUMP with ULONG fields (§6.2): bitmap at +0x20 / +0x28
        bitmap, bits = _bitmap(pfns)
        fixed = 0x28 if width == 64 else 0x20
        first_page = _align(hdr_size + fixed + len(bitmap))
        extra += struct.pack("<4s4sIIIII", b"SDMP", b"DUMP", 1, first_page, bits, len(pfns), bits)
        extra += bytes(fixed - len(extra)) + bitmap
    elif dump_type in (8, 9, 0xA):
        if width != 64:
            raise ValueError("RDMP dumps (DumpType 8/9/0xA) are 64-bit only")
        ranges = b"".join(struct.pack("<QQ", base, count) for base, count in runs)
        first_page = _align(hdr_size + 0x30 + len(ranges) + 16)  # >= one all-zero terminating range
        metadata_size = first_page - (hdr_size + 0x20)  # kdmp-parser: MetadataSize - 0x20 == First - 0x2040
        if dump_type == 0xA:
            tail = struct.pack("<IHHQ", len(runs), 0, 0, len(pfns))
        else:
            tail = struct.pack("<QQ", 0x1, len(pfns))  # meaning unknown (§6.5); any value
        extra += (
            struct.pack("<I4s4sIQQ", 0x40, b"RDMP", b"DUMP", 0, metadata_size, first_page) + tail + ranges
        )
    elif dump_type == 4:
        pages = {}
        size_of_dump = 0x10000 if width == 32 else 0x20000  # TRIAGE_DUMP_SIZE32/64 (MS2)
        valid_offset = size_of_dump - 4
        triage = [
            7,
            size_of_dump,
            valid_offset,
            0x348 if width == 64 else 0x320,
            0xF00 if width == 64 else 0x7D0,
        ] + [0] * 13
        if width == 64:
            extra += struct.pack(
                "<18IQ16sQIIIIII", *triage, 0xFFFFF8031F0A8000, bytes(16), 0, 0, 0, 0, 0, 0, 0
            )
        else:
            extra += struct.pack("<18I8I", *triage, 0x8DD38000, 0, 0, 0, 0, 0, 0, 0)
        extra += bytes(valid_offset - hdr_size - len(extra)) + b"TRGD"
        first_page = hdr_size + len(extra)
    else:
        raise ValueError(f"no builder for DumpType {dump_type}")
    if dump_type in (1, 8, 9, 0xA):  # pages packed in run / range-list order
        body = b"".join(pages[pfn] for base, count in runs for pfn in range(base, base + count))
    else:  # bitmap: ascending PFN order
        body = b"".join(pages[pfn] for pfn in sorted(pages))
    file_size = first_page + len(body)
    struct.pack_into("<q", hdr, 0xFA0, file_size)  # RequiredDumpSpace, same offset in both headers
    with open(path, "wb") as handle:
        handle.write(hdr)
        handle.write(extra)
        handle.write(bytes(first_page - hdr_size - len(extra)))
        handle.write(body)
    return pages


def run_dump_header(runs: list[tuple[int, int]], width: int = 64) -> bytes:
    """The header of a DumpType 1 dump of ``runs`` whose pages follow it in run order: for large
    benchmark inputs whose page data is written by the caller."""
    hdr = _header(width, 1, False, 0)
    _write_runs(hdr, width, runs)
    struct.pack_into("<q", hdr, 0xFA0, len(hdr) + PAGE * sum(count for _, count in runs))
    return bytes(hdr)


def build_sparse_bitmap_dump(path: str | os.PathLike, ram_bytes: int, *, hole_every: int = 4099) -> int:
    """A large bitmap (type 5) dump whose page data is a sparse hole: only header and bitmap are
    written.  Every ``hole_every``-th page is absent, giving many runs.  Returns the run count."""
    bits = _align(ram_bytes // PAGE, 64)
    bitmap = bytearray(b"\xff" * (bits // 8))
    holes = range(0, bits, hole_every)
    for pfn in holes:
        bitmap[pfn >> 3] &= ~(1 << (pfn & 7))
    present = bits - len(holes)
    hdr = _header(64, 5, False, 0)
    first_page = _align(len(hdr) + 0x38 + len(bitmap))
    struct.pack_into("<q", hdr, 0xFA0, first_page + present * PAGE)
    with open(path, "wb") as handle:
        handle.write(hdr)
        handle.write(struct.pack("<4s4sI20sQQQ", b"FDMP", b"DUMP", 1, bytes(20), first_page, present, bits))
        handle.write(bitmap)
        handle.truncate(first_page + present * PAGE)
    return len(holes)


FIXTURES: dict[str, dict] = {
    "full64.dmp": {"width": 64, "dump_type": 1},
    "summary64_bitmap.dmp": {"width": 64, "dump_type": 2, "summary_layout": "bitmap"},
    "summary64_ms2.dmp": {"width": 64, "dump_type": 2, "summary_layout": "ms2"},
    "triage64.dmp": {"width": 64, "dump_type": 4},
    "bitmap64_full.dmp": {"width": 64, "dump_type": 5, "bitmap_signature": b"FDMP"},
    "bitmap64_kernel.dmp": {"width": 64, "dump_type": 5, "bitmap_signature": b"SDMP"},
    "bitmap64_type6.dmp": {"width": 64, "dump_type": 6, "bitmap_signature": b"FDMP"},
    "rdmp64_kernel.dmp": {"width": 64, "dump_type": 8},
    "rdmp64_kernel_user.dmp": {"width": 64, "dump_type": 9},
    "rdmp64_complete.dmp": {"width": 64, "dump_type": 0xA},
    "full32.dmp": {"width": 32, "dump_type": 1},
    "full32_pae.dmp": {"width": 32, "dump_type": 1, "pae": True, "attributes": None},
    "summary32_ms2.dmp": {"width": 32, "dump_type": 2, "summary_layout": "ms2", "attributes": None},
    "summary32_bitmap.dmp": {"width": 32, "dump_type": 2, "summary_layout": "bitmap"},
    "triage32.dmp": {"width": 32, "dump_type": 4, "attributes": None},
    "bitmap32_full.dmp": {"width": 32, "dump_type": 5, "bitmap_signature": b"FDMP"},
    "bitmap32_pae_kernel.dmp": {"width": 32, "dump_type": 5, "pae": True, "bitmap_signature": b"SDMP"},
    "bitmap32_type6.dmp": {"width": 32, "dump_type": 6, "bitmap_signature": b"FDMP"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the fixtures into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, kwargs in FIXTURES.items():
        pages = build_dump(args.out / name, **kwargs)
        print(f"{name}: {len(pages)} pages, {(args.out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
