"""The decode-unit LRU cache: byte bound, counters, single flight, errors not cached."""

from __future__ import annotations

import threading
import time

import pytest

from memfs.cache import UnitCache, parse_size


def test_hits_and_misses_are_counted() -> None:
    cache = UnitCache(1 << 20)
    assert cache.get("a", lambda: b"x" * 10) == b"x" * 10
    assert cache.get("a", lambda: pytest.fail("must be cached")) == b"x" * 10
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1


def test_bounded_in_bytes_evicting_least_recently_used() -> None:
    cache = UnitCache(3000)
    for key in range(5):
        cache.get(key, lambda: bytes(1000))
    assert cache.current_bytes <= 3000
    loads = []
    cache.get(0, lambda: loads.append(0) or bytes(1000))
    assert loads == [0]  # the oldest entry was evicted


def test_unit_larger_than_budget_is_returned_but_not_kept() -> None:
    cache = UnitCache(100)
    assert cache.get("big", lambda: bytes(1000)) == bytes(1000)
    assert cache.current_bytes == 0


def test_errors_propagate_and_are_not_cached() -> None:
    cache = UnitCache(1 << 20)

    def fail() -> bytes:
        raise ValueError("bad unit")

    with pytest.raises(ValueError):
        cache.get("k", fail)
    assert cache.get("k", lambda: b"ok") == b"ok"


def test_concurrent_misses_decode_once() -> None:
    cache = UnitCache(1 << 20)
    calls = []

    def slow() -> bytes:
        calls.append(1)
        time.sleep(0.1)
        return b"v"

    threads = [threading.Thread(target=cache.get, args=("k", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [("65536", 65536), ("512M", 512 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29), ("64k", 64 << 10)],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "abc", "12Q", "-5M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)
