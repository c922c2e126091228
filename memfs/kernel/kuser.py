"""KUSER_SHARED_DATA: system time, uptime, product type and suite mask (docs/formats/crashdump.md §5.5, §12).

The page sits at a fixed VA (x86 0xFFDF0000, x64 0xFFFFF78000000000).  Offsets: InterruptTime
+0x08 and SystemTime +0x14 (KSYSTEM_TIME: LowPart u32, High1Time i32, High2Time i32; 100 ns units),
NtProductType +0x264, SuiteMask +0x2D0, ActiveProcessorCount +0x3C0 (Win7+).  The build number is
not read here: its KUSER offset is not in the format documents (see :mod:`memfs.kernel.version`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from memfs.filetime import to_datetime
from memfs.kernel.dtb import KUSER_VA
from memfs.kernel.paging import AddressSpace

_EARLIEST = datetime(1995, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


@dataclass
class KUserData:
    """Values read from KUSER_SHARED_DATA; each None when absent or implausible."""

    va: int
    system_time: datetime | None = None
    system_time_raw: int | None = None
    uptime: timedelta | None = None
    uptime_raw: int | None = None
    product_type: int | None = None
    suite_mask: int | None = None
    active_processors: int | None = None


def _ksystem_time(page: bytes, off: int) -> int | None:
    low, high1, high2 = struct.unpack_from("<IiI", page, off)
    if high1 != struct.unpack("<i", struct.pack("<I", high2))[0] or high1 < 0:
        return None  # torn or garbage: the two high halves must agree
    return (high1 << 32) | low


def filetime_to_datetime(ticks: int) -> datetime | None:
    """A FILETIME (100 ns since 1601-01-01 UTC) as an aware datetime, None when out of range."""
    value = to_datetime(ticks)
    return value if value is not None and _EARLIEST <= value < _LATEST else None


def read_kuser(space: AddressSpace) -> KUserData | None:
    """Read KUSER_SHARED_DATA through ``space``; None when the page is not mapped."""
    va = KUSER_VA[space.mode]
    page = space.read(va, 0x400)
    if page is None:
        return None
    data = KUserData(va=va)
    ticks = _ksystem_time(page, 0x14)
    if ticks is not None:
        data.system_time = filetime_to_datetime(ticks)
        data.system_time_raw = ticks if data.system_time is not None else None
    up = _ksystem_time(page, 0x08)
    if up is not None and up < 100 * 365 * 86400 * 10**7:
        data.uptime = timedelta(microseconds=up // 10)
        data.uptime_raw = up
    (product,) = struct.unpack_from("<I", page, 0x264)
    data.product_type = product if product in (1, 2, 3) else None
    (data.suite_mask,) = struct.unpack_from("<I", page, 0x2D0)
    if data.suite_mask >> 16:
        data.suite_mask = None
    (count,) = struct.unpack_from("<I", page, 0x3C0)
    data.active_processors = count if 1 <= count <= 2048 else None
    return data
