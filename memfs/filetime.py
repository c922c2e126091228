"""Windows time values: a FILETIME counts 100 ns ticks since 1601-01-01 UTC, an uptime counts 100 ns
ticks since boot (docs/formats/crashdump.md §2/§3 SystemTime and SystemUpTime, §5.5 KUSER_SHARED_DATA).

Both are stored in signed 64-bit header fields (``LARGE_INTEGER``), so a tick count is meaningful only
in ``0 … 2^63 - 1``: a value outside it, as a damaged or hostile image may hold, is unknown, never
wrapped or clamped into a wrong time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
MAX_TICKS = (1 << 63) - 1
"""The largest tick count a crash dump header's signed 64-bit SystemTime / SystemUpTime can hold."""


def fits(ticks: int) -> bool:
    """Whether ``ticks`` is a tick count a Windows header can hold (``0 … 2^63 - 1``)."""
    return 0 <= ticks <= MAX_TICKS


def to_datetime(ticks: int) -> datetime | None:
    """A FILETIME as an aware UTC datetime (microsecond precision); None when a datetime cannot hold it."""
    if not fits(ticks):
        return None
    try:
        return FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def to_timedelta(ticks: int) -> timedelta | None:
    """A count of 100 ns ticks as a timedelta (microsecond precision); None when out of range."""
    return timedelta(microseconds=ticks // 10) if fits(ticks) else None


def from_datetime(when: datetime | None) -> int:
    """The FILETIME of ``when``; 0 (not known) for None or a time a FILETIME cannot hold."""
    return 0 if when is None else from_timedelta(when - FILETIME_EPOCH)


def from_timedelta(span: timedelta | None) -> int:
    """``span`` in 100 ns ticks; 0 (not known) for None or a span outside ``0 … 2^63 - 1`` ticks."""
    if span is None:
        return 0
    ticks = span // timedelta(microseconds=1) * 10
    return ticks if fits(ticks) else 0
