"""Deterministic generators of memory-like data (what hibernation files compress).

Used by the property tests and by scripts/bench_xpress.py.  Each kind of segment imitates one kind of
page content: zero pages, ASCII text, UTF-16LE strings, x86-64 code, pointer tables, random bytes.
"""

from __future__ import annotations

import random
import struct

KINDS = ("zero", "text", "utf16", "code", "pointers", "random")

_WORDS = " ".join(
    [
        "the system kernel driver memory page table process thread object handle registry value key",
        "windows file device service network buffer pool allocation user session security token",
        "\\Device\\HarddiskVolume3 C:\\Windows\\System32\\ntoskrnl.exe HKEY_LOCAL_MACHINE svchost.exe",
    ]
).split()

# Common x86-64 instruction byte sequences (prologues, moves, calls, padding).
_CODE = [
    bytes.fromhex(h)
    for h in " ".join(
        [
            "4883ec28 48895c2408 4889742410 57 4883c428 c3 cc cc cc cc e8 ff15 488b05 488d0d",
            "33c0 85c0 7405 750a 4c8bc1 488bd9 0f1f440000 90 4533c9 ba01000000 b9 48 8b 4c 24 30",
        ]
    ).split()
]


def segment(kind: str, length: int, seed: int) -> bytes:
    """`length` bytes of content `kind`, fully determined by `seed`."""
    rng = random.Random(seed)
    if kind == "zero":
        return bytes(length)
    if kind == "random":
        return rng.randbytes(length)
    out = bytearray()
    if kind == "text":
        while len(out) < length:
            out += rng.choice(_WORDS).encode() + rng.choice((b" ", b" ", b", ", b".\n"))
    elif kind == "utf16":
        while len(out) < length:
            out += (rng.choice(_WORDS) + rng.choice((" ", "\0"))).encode("utf-16-le")
    elif kind == "code":
        while len(out) < length:
            out += rng.choice(_CODE)
            if rng.random() < 0.3:
                out += struct.pack("<i", rng.randrange(-4096, 4096))
    elif kind == "pointers":
        base = rng.choice((0xFFFFF80000000000, 0xFFFF800000000000, 0x00007FF600000000))
        base += rng.randrange(1 << 32) & ~0xFFF
        while len(out) < length:
            r = rng.random()
            value = 0 if r < 0.2 else base + rng.randrange(1 << 20) * 8
            out += struct.pack("<Q", value)
    else:
        raise ValueError(kind)
    return bytes(out[:length])


def memory_like(segments) -> bytes:
    """Concatenate segments given as (kind, length, seed) tuples."""
    return b"".join(segment(kind, length, seed) for kind, length, seed in segments)


def corpus(total: int, seed: int = 1, page: int = 4096) -> bytes:
    """About `total` bytes of page-granular memory-like data with a realistic mix of page kinds."""
    rng = random.Random(seed)
    weights = {"zero": 30, "pointers": 15, "code": 20, "text": 12, "utf16": 12, "random": 11}
    kinds = list(weights)
    pages = []
    size = 0
    while size < total:
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        n = rng.randint(1, 4) * page
        pages.append(segment(kind, n, rng.randrange(1 << 30)))
        size += n
    return b"".join(pages)[:total]
