"""Windows time values: a FILETIME counts 100 ns ticks since 1601-01-01 UTC, an uptime counts 100 ns
ticks since boot (docs/formats/crashdump.md §2/§3 SystemTime and SystemUpTime, §5.5 KUSER_SHARED_DATA)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def to_datetime(ticks: int) -> datetime | None:
    """A FILETIME as an aware UTC datetime (microsecond precision); None when a datetime cannot hold it."""
    try:
        return FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def to_timedelta(ticks: int) -> timedelta | None:
    """A count of 100 ns ticks as a timedelta (microsecond precision); None when out of range."""
    try:
        return timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def from_datetime(when: datetime | None) -> int:
    """The FILETIME of ``when``; 0 for None (not known)."""
    return 0 if when is None else from_timedelta(when - FILETIME_EPOCH)


def from_timedelta(span: timedelta | None) -> int:
    """``span`` in 100 ns ticks; 0 for None (not known)."""
    return 0 if span is None else span // timedelta(microseconds=1) * 10
