"""The decode-unit LRU cache: byte bound, counters, single flight, decode failures kept, other errors not."""

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


def test_prefix_shorter_than_needed_is_a_miss_and_replaced() -> None:
    cache = UnitCache(1 << 20)
    seen = []

    def load(have):
        seen.append(have)
        return b"abcdefgh" if have else b"abc"

    assert cache.get_prefix("u", 2, load) == b"abc"
    assert cache.get_prefix("u", 3, lambda have: pytest.fail("a long enough prefix is cached")) == b"abc"
    assert cache.get_prefix("u", 5, load) == b"abcdefgh"  # load() is handed the short prefix
    assert seen == [None, b"abc"]
    assert cache.get("u", lambda: pytest.fail("cached")) == b"abcdefgh"
    assert cache.current_bytes == 8
    assert cache.stats()["hits"] == 2 and cache.stats()["misses"] == 2


def test_a_reader_needing_more_than_a_pending_prefix_loads_again() -> None:
    cache = UnitCache(1 << 20)
    started, release = threading.Event(), threading.Event()
    results = {}

    def slow_short(have):
        started.set()
        release.wait(5)
        return b"ab"

    first = threading.Thread(target=lambda: results.setdefault("short", cache.get_prefix("u", 1, slow_short)))
    first.start()
    started.wait(5)
    second = threading.Thread(
        target=lambda: results.setdefault(
            "long", cache.get_prefix("u", 4, lambda have: (have or b"") + b"cdef")
        )
    )
    second.start()
    time.sleep(0.05)  # the second reader now waits for the first one's load
    release.set()
    first.join(5)
    second.join(5)
    assert results == {"short": b"ab", "long": b"abcdef"}
    assert cache.get_prefix("u", 6, lambda have: pytest.fail("cached")) == b"abcdef"


def test_prefixes_stay_within_the_budget() -> None:
    cache = UnitCache(10_000)
    for key in range(50):
        cache.get_prefix(key, 100, lambda have: bytes(1000 if have is None else 4000))
        cache.get_prefix(key, 2000, lambda have: bytes(1000 if have is None else 4000))
        assert cache.current_bytes <= 10_000


def test_decode_failures_are_remembered_not_decoded_again() -> None:
    """The input never changes, so a unit that failed to decode fails again at once with the same error
    (found by the fuzzer: a page-by-page scan decoded one bad 4 MiB S2 unit a thousand times, 8 s)."""
    from memfs.exceptions import DecompressionError

    cache = UnitCache(1 << 20)
    calls = []

    def fail() -> bytes:
        calls.append(1)
        raise DecompressionError("image: offset 0x40: bad unit", 0x40)

    for _ in range(3):
        with pytest.raises(DecompressionError, match="offset 0x40: bad unit") as raised:
            cache.get("k", fail)
        assert raised.value.offset == 0x40
    assert calls == [1]
    with pytest.raises(DecompressionError):
        cache.get_prefix("k", 10, lambda _have: b"not asked")


def test_a_failed_unit_still_serves_a_shorter_prefix() -> None:
    """A unit damaged past its first pages: a reader of those pages still gets them (the failure was for
    more), a reader needing as much as failed or more gets the error without a decode."""
    from memfs.exceptions import DecompressionError

    cache = UnitCache(1 << 20)
    calls = []

    def load(_have, need):
        calls.append(need)
        if need > 100:
            raise DecompressionError("image: offset 0x10: damaged after byte 100", 0x10)
        return bytes(need)

    with pytest.raises(DecompressionError):
        cache.get_prefix("k", 200, lambda have: load(have, 200))
    with pytest.raises(DecompressionError):
        cache.get_prefix("k", 300, lambda have: load(have, 300))
    assert cache.get_prefix("k", 50, lambda have: load(have, 50)) == bytes(50)
    assert cache.get_prefix("k", 40, lambda have: load(have, 40)) == bytes(50)  # the cached prefix
    assert calls == [200, 50]
