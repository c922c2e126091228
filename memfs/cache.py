"""A byte-bounded, thread-safe LRU cache of decoded units, with hit/miss counters.

Compressed sources cache whole decode units (a 64 KiB compression set or Xpress block), not 4 KiB
pages: per-entry overhead stays below 1% (docs/performance.md, "Building blocks").  A unit may also be
cached as a prefix, decoded only as far as a random reader needed (:meth:`UnitCache.get_prefix`).
Decoding happens outside the lock so FUSE threads and convert workers decode in parallel; a unit being
decoded by one thread is waited for, not decoded again, by the others ("single flight").  A unit
that failed to decode is not decoded again either: the input never changes, so its error is kept and
raised again at once (a scan reading a bad 4 MiB unit page by page would otherwise decode it 1,024 times)
— except to a reader needing a shorter prefix than the one that failed, which may still decode.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable

from cachetools import LRUCache

from memfs.exceptions import DecompressionError

DEFAULT_CACHE_SIZE = 256 * 1024 * 1024


def parse_size(text: str) -> int:
    """Parse ``512M``, ``2G``, ``65536``, ``1.5GiB`` into bytes; raise ValueError if malformed."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    number = cleaned.rstrip("KMGT")
    unit = cleaned[len(number) :]
    if unit not in units or not number:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 2G)")
    value = float(number)
    if value < 0:
        raise ValueError(f"not a size: {text!r} (negative)")
    return int(value * units[unit])


class _Pending:
    """A unit some thread is decoding right now.

    ``done`` is a lock the decoding thread holds until it is done: waiters acquire and release it.  A
    plain lock, not a ``threading.Event`` (a condition variable and a lock), because one is made per
    cache miss, on the hot path of random reads.
    """

    __slots__ = ("done", "value", "error")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.value: bytes | None = None
        self.error: BaseException | None = None

    def wait(self) -> None:
        """Block until the decoding thread is done."""
        with self.done:
            pass


class UnitCache:
    """LRU cache of decoded units bounded by the total size of their bytes."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_SIZE) -> None:
        self.max_bytes = max_bytes
        self._lru: LRUCache = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)
        self._lock = threading.Lock()
        self._pending: dict[Hashable, _Pending] = {}
        # key -> (the least ``need`` a load failed for, its error): a shorter prefix may still decode
        self._failed: dict[Hashable, tuple[int, DecompressionError]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, load: Callable[[], bytes]) -> bytes:
        """Return the unit for ``key``, calling ``load()`` (outside the lock) on a miss."""
        return self._get(key, 0, lambda _have: load())

    def get_prefix(self, key: Hashable, need: int, load: Callable[[bytes | None], bytes]) -> bytes:
        """Return at least the first ``need`` bytes of the unit for ``key`` (possibly all of it).

        For units decoded only as far as a reader needed (docs/performance.md, "Random access"): a
        cached prefix shorter than ``need`` counts as a miss, and ``load(prefix)`` — ``load(None)`` when
        nothing is cached — returns a longer one (or the whole unit), which replaces it.
        """
        return self._get(key, need, load)

    def _get(self, key: Hashable, need: int, load: Callable[[bytes | None], bytes]) -> bytes:
        while True:
            with self._lock:
                have = self._lru.get(key)
                if have is not None and len(have) >= need:
                    self.hits += 1
                    return have
                failed = self._failed.get(key)
                if failed is not None and need >= failed[0]:
                    raise copy.copy(failed[1])  # a fresh instance: re-raising one would grow its traceback
                pending = self._pending.get(key)
                owner = pending is None
                if owner:
                    self.misses += 1  # one per load: a reader waiting for another's load is a hit
                    pending = self._pending[key] = _Pending()
            assert pending is not None
            if owner:
                return self._load(key, have, need, load, pending)
            pending.wait()
            if pending.error is not None:
                raise pending.error
            assert pending.value is not None
            if len(pending.value) >= need:
                self.hits += 1
                return pending.value
            # That thread decoded a shorter prefix than this reader needs: look again.

    def _load(
        self,
        key: Hashable,
        have: bytes | None,
        need: int,
        load: Callable[[bytes | None], bytes],
        pending: _Pending,
    ) -> bytes:
        try:
            value = load(have)
        except BaseException as exc:
            pending.error = exc
            if isinstance(exc, DecompressionError):
                with self._lock:
                    known = self._failed.get(key)
                    if known is None or need < known[0]:
                        self._failed[key] = (need, exc)
            raise
        else:
            pending.value = value
            with self._lock:
                if len(value) <= self.max_bytes:
                    self._lru[key] = value
        finally:
            with self._lock:
                del self._pending[key]
            pending.done.release()
        return value

    def resize(self, max_bytes: int) -> None:
        """Change the budget; when it shrinks, the units cached last are the ones kept."""
        with self._lock:
            old, self.max_bytes = self._lru, max_bytes
            self._lru = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)
            for key, value in old.items():  # oldest first: LRUCache evicts the earliest when full
                if len(value) <= max_bytes:
                    self._lru[key] = value

    def clear(self) -> None:
        """Drop every cached unit (the hit/miss counters stay)."""
        with self._lock:
            self._lru.clear()

    @property
    def current_bytes(self) -> int:
        """Bytes held right now."""
        return int(self._lru.currsize)

    def stats(self) -> dict[str, int]:
        """Counters for ``header.txt`` and benchmarks."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._lru),
                "bytes": int(self._lru.currsize),
                "max_bytes": self.max_bytes,
            }
