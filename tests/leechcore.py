"""LeechCore (``pip install leechcorepyc``) as an independent reader of modern hibernation files.

LeechCore's ``hibr://file=PATH`` device reads Windows 8 … 11 24H2 files (x64, and x86 up to build 19041)
with its own per-build offset table and set parser, and decodes Xpress with its own library
(libMSCompression, from ms-compress, shipped in the wheel).  It shares nothing with memfs or with
``scripts/make_hiberfil_fixtures.py``, so a page it returns equal to memfs's physmem.bin checks the
layout, the set walk and the codec at once.

What it is known not to give back is stated here from its source (ufrisk/LeechCore
``leechcore/device_hibr.c``, v2.22.12 … v2.23.3; docs/formats/hibernation.md §3.3), so that the tests
exclude exactly those pages, with the reason, and compare all the others:

- a compression set of more than 16 pages is decoded into a 64 KiB buffer (``HIBR_MAX_COMPRESS_DATA``)
  and only slots 0–15 are ever served (``DeviceHibr_ReadPage``: ``iPG >= 0x10`` fails).  A stored set
  thus gives its first 16 pages; a compressed one fails whole, because the Xpress library reports an
  error when the decoded stream does not fit in 64 KiB;
- a descriptor run is indexed only when ``pfn + count < HighestPhysicalPage + 1``: a run that ends at
  the highest physical page is never indexed, and LeechCore reads its pages as zeros.

A page LeechCore fails to read is missing from ``read_scatter``'s answer; MemProcFS's zero-padding read
shows it as zeros.  Opening needs a file of at least 16 MiB, ``HIBR``/``WAKE``, a known ``LengthSelf``,
``HighestPhysicalPage + 1 >= 0x1000`` and at least 16 compression sets.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import pytest

PAGE = 0x1000
MIN_VERSION = (2, 22, 12)  # sets of more than 16 pages read as described above (4f6e9e0); 24H2 since 2.22.2
MIN_FILE_SIZE = 16 << 20  # DeviceHIBR_Open refuses smaller files
SIGNATURES = (b"HIBR", b"WAKE")
# HIBR_OFFSET_PROFILES: the LengthSelf values LeechCore knows (x64 26100 … 9200, x86 19041 … 9200).
LENGTH_SELF = frozenset({0x4D8, 0x448, 0x3E0, 0x3D8, 0x3C8, 0x3B0, 0x360, 0x340, 0x338, 0x328, 0x310, 0x2C8})
SET_LIMIT = 16  # slots LeechCore serves per compression set


class StoredSet(Protocol):
    runs: tuple[tuple[int, int], ...]  # (first pfn, pages) in slot order
    raw: bool


def require_leechcore():
    """The leechcorepyc module, or skip: it is a test dependency (Linux x86_64 wheel; needs libusb-1.0)."""
    module = pytest.importorskip(
        "leechcorepyc",
        reason="LeechCore (pip leechcorepyc; apt libusb-1.0-0) is the independent hiberfil reader",
        exc_type=ImportError,  # also when its libusb-1.0 is missing
    )
    found = tuple(int(part) for part in version("leechcorepyc").split(".")[:3])
    if found < MIN_VERSION:
        pytest.skip(
            f"leechcorepyc {found} predates {MIN_VERSION}, whose behaviour these tests state",
            allow_module_level=True,
        )
    return module


def reads(signature: bytes, length_self: int | None) -> bool:
    """Whether LeechCore opens a hibernation file with this signature and header ``LengthSelf``."""
    return signature in SIGNATURES and length_self in LENGTH_SELF


def padded_copy(path: Path, out_dir: Path) -> Path:
    """A copy of ``path`` grown to LeechCore's minimum file size with a hole (slack after the sets)."""
    out = out_dir / f"{path.stem}.lc{path.suffix}"
    shutil.copyfile(path, out)
    if out.stat().st_size < MIN_FILE_SIZE:
        os.truncate(out, MIN_FILE_SIZE)
    return out


@dataclass
class Exclusions:
    """Pages LeechCore is known not to give back: pfn → reason."""

    unserved: dict[int, str] = field(default_factory=dict)  # read fails (zeros with a zero-padding read)
    zeroed: dict[int, str] = field(default_factory=dict)  # read succeeds with a zero page


def exclusions(sets: Iterable[StoredSet], highest_page: int) -> Exclusions:
    """What LeechCore will not return for a file holding ``sets`` (see the module docstring)."""
    out = Exclusions()
    for stored in sets:
        slot = 0
        for pfn, count in stored.runs:
            indexed = pfn + count < highest_page + 1
            for page in range(pfn, pfn + count):
                if not indexed:
                    out.zeroed[page] = "its descriptor run ends at HighestPhysicalPage: not indexed"
                elif slot >= SET_LIMIT:
                    out.unserved[page] = f"slot {slot} of a set of more than {SET_LIMIT} pages"
                elif not stored.raw and sum(n for _, n in stored.runs) > SET_LIMIT:
                    out.unserved[page] = f"compressed set of more than {SET_LIMIT} pages: does not fit 64 KiB"
                slot += 1
    return out


@dataclass
class Comparison:
    compared: int  # stored pages LeechCore returned, each equal to physmem.bin
    holes: int  # pages of physmem.bin no set holds, which LeechCore reads as zeros too
    unserved: int
    zeroed: int
    beyond: int  # pages past physmem.bin's end, up to HighestPhysicalPage, that LeechCore reads as zeros


def compare(image: Path, physmem: bytes, sets: Iterable[StoredSet], highest_page: int) -> Comparison:
    """Read every page of ``image`` (a :func:`padded_copy`) through LeechCore and check it against
    ``physmem`` (memfs's physmem.bin); pages in :func:`exclusions` are checked for that behaviour instead."""
    leechcore = require_leechcore()
    sets = list(sets)
    known = exclusions(sets, highest_page)
    stored = {pfn + j for s in sets for pfn, n in s.runs for j in range(n)}
    count = highest_page + 1
    device = leechcore.LeechCore(f"hibr://file={image}")
    try:
        assert device.maxaddr == count * PAGE
        everything = list(range(0, count * PAGE, PAGE))
        served = {item["addr"] // PAGE: item["data"] for item in device.read_scatter(everything)}
        padded = {pfn: device.read(pfn * PAGE, PAGE, True) for pfn in known.unserved}
    finally:
        device.close()
    assert set(range(count)) - served.keys() == known.unserved.keys(), "LeechCore failed other pages"
    assert all(data == bytes(PAGE) for data in padded.values()), "zero-padding reads of failed pages"
    for pfn, data in served.items():
        expected = physmem[pfn * PAGE : (pfn + 1) * PAGE].ljust(PAGE, b"\0")
        if pfn in known.zeroed:
            assert data == bytes(PAGE), f"page {pfn:#x}: {known.zeroed[pfn]}"
        else:
            assert data == expected, f"page {pfn:#x} differs from physmem.bin"
    end = len(physmem) // PAGE
    compared = len(stored - known.unserved.keys() - known.zeroed.keys())
    return Comparison(compared, end - len(stored), len(known.unserved), len(known.zeroed), count - end)
