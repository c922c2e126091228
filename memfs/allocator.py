"""glibc allocator tuning shared by every long-running reader: the FUSE daemon and ``memfs convert``.

Both decode units of up to a few MiB and copy them into request or chunk buffers many times a second;
with glibc's defaults those buffers are fresh mmaps, trimmed and page-faulted again on every
request.  Neither the FUSE layer nor the converter owns this policy, so it lives here, below both.
Everything is best effort: without glibc these calls do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes


def tune_malloc() -> None:
    """Keep glibc from trimming and re-faulting buffers on every request (docs/performance.md, malloc
    trap)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_trim_threshold, 512 * 1024 * 1024)
    libc.mallopt(m_mmap_threshold, 64 * 1024 * 1024)
    # One arena: decoded units are allocated on one FUSE thread and freed on others; with an
    # arena per thread each keeps its own untrimmed free pool.  Measured on a 2 GiB Huffman hiberfil,
    # cache 512M, one reader: peak RSS 920-984 -> 587 MiB and daemon CPU 4.7-5.3 -> 3.9 s.
    libc.mallopt(m_arena_max, 1)


def release_free_memory() -> None:
    """Return the free pages inside glibc's heap to the system (``malloc_trim(0)``); best effort."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
