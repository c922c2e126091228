"""A tiny container format that exists only in the tests, to check that containers stack for real.

memfs ships no container yet, so the stacking machinery (detection on a decoded stream, nesting
limits, error naming, layers in ``header.txt`` and ``info --json``, reads through several levels) is
exercised with "TBOX", defined here and registered through :func:`memfs.detect.register_format`:

    offset 0   magic  b"TBOX"
    offset 4   u32    block size (a power of two, at least 16)
    offset 8   u64    decoded size
    offset 16  u8     key
    offset 17  15 bytes of zeros
    offset 32  the stream, byte i XOR-ed with (key + i // block size) & 0xFF

The XOR changes per block so that a read mapped to the wrong offset cannot pass by accident.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from memfs.byte_source import ByteSource
from memfs.detect import register_format, unregister_format
from memfs.exceptions import CorruptionError, at
from memfs.formats.base import CONTAINER, FormatSpec, ProbeInput

MAGIC = b"TBOX"
HEADER = struct.Struct("<4sIQB15x")
DATA_AT = HEADER.size
_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]


def wrap(data: bytes, key: int = 0x5A, block: int = 0x1000) -> bytes:
    """``data`` as a TBOX file (the encoder; the reader below is written separately)."""
    out = bytearray(HEADER.pack(MAGIC, block, len(data), key))
    for start in range(0, len(data), block):
        chunk = data[start : start + block]
        mask = bytes([(key + start // block) & 0xFF]) * len(chunk)
        masked = int.from_bytes(chunk, "little") ^ int.from_bytes(mask, "little")
        out += masked.to_bytes(len(chunk), "little")
    return bytes(out)


class TboxStream(ByteSource):
    """The decoded stream of a TBOX container over ``base``."""

    def __init__(self, base: ByteSource) -> None:
        if base.size < DATA_AT:
            raise CorruptionError(at(base.name, 0, f"TBOX header truncated: {base.size} of {DATA_AT} bytes"))
        magic, block, size, key = HEADER.unpack(base.pread(0, DATA_AT))
        if magic != MAGIC:
            raise CorruptionError(at(base.name, 0, f"not a TBOX container (magic {magic!r})"))
        if block < 16 or block & (block - 1):
            raise CorruptionError(at(base.name, 4, f"block size {block:#x} is not a power of two >= 16"))
        if DATA_AT + size > base.size:
            needs = f"decoded size {size:#x} needs the file to reach {DATA_AT + size:#x}"
            raise CorruptionError(at(base.name, 8, f"{needs}, it ends at {base.size:#x}"))
        self.base, self.block, self.key = base, block, key
        self.name = f"{base.name}[decoded]"
        self.size = size
        self.reads = 0

    def _unmask(self, offset: int, data: bytes | memoryview) -> bytes:
        pieces, pos = [], 0
        while pos < len(data):
            index = (offset + pos) // self.block
            take = min(len(data) - pos, (index + 1) * self.block - offset - pos)
            pieces.append(bytes(data[pos : pos + take]).translate(_TABLES[(self.key + index) & 0xFF]))
            pos += take
        return b"".join(pieces)

    def pread(self, offset: int, n: int) -> bytes:
        self.reads += 1
        n = max(min(n, self.size - offset), 0)
        return self._unmask(offset, self.base.pread(DATA_AT + offset, n))

    def readinto(self, offset: int, out: memoryview) -> int:
        self.reads += 1
        n = max(min(len(out), self.size - offset), 0)
        got = self.base.readinto(DATA_AT + offset, out[:n])
        out[:got] = self._unmask(offset, out[:got])
        return got

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Block size", f"{self.block:#x}"),
            ("Decoded size", f"{self.size} bytes"),
            ("Key", f"{self.key:#04x}"),
        ]

    def close(self) -> None:
        self.base.close()


def _probe(probe: ProbeInput) -> bool:
    return probe.head[:4] == MAGIC


TBOX = FormatSpec(
    name="tbox",
    description="test-only container (tests/stacking.py)",
    probe=_probe,
    open=lambda data, options: TboxStream(data),
    kind=CONTAINER,
)


class Mirror(ByteSource):
    """A "container" whose stream is its own bytes: a container loop."""

    def __init__(self, base: ByteSource) -> None:
        self.base, self.name, self.size = base, f"{base.name}[decoded]", base.size

    def pread(self, offset: int, n: int) -> bytes:
        return self.base.pread(offset, n)

    def close(self) -> None:
        self.base.close()


MIRROR = FormatSpec(
    name="mirror",
    description="test-only container that decodes to itself",
    probe=lambda probe: probe.head[:4] == b"MIRR",
    open=lambda data, options: Mirror(data),
    kind=CONTAINER,
)


@contextmanager
def registered(*specs: FormatSpec) -> Iterator[None]:
    """The test containers ``specs`` (default: TBOX) in memfs's registry for the ``with`` block."""
    specs = specs or (TBOX,)
    for spec in specs:
        register_format(spec)
    try:
        yield
    finally:
        for spec in specs:
            unregister_format(spec.name)


__all__ = ["MIRROR", "TBOX", "TboxStream", "registered", "wrap"]
