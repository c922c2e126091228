"""Hand-built LZNT1 streams for the codec tests, written from docs/formats/lznt1.md (§2, §3), not from
the C sources, plus an independent reference decoder built on dissect.util's.

The reference decodes each chunk on its own with dissect.util and places chunk i at 4096 * i with zeros
in the gaps (docs/formats/lznt1.md §3 rules 2-3): dissect.util decodes the tokens; where it differs from
Windows
(§5.2: it joins short chunks without a gap) only the placement is ours.
"""

from __future__ import annotations

import struct

from dissect.util.compression import lznt1 as dissect_lznt1

CHUNK = 4096


def displacement_bits(u: int) -> int:
    """§2.3: at chunk position ``u`` a token spends the fewest bits >= 4 whose range reaches ``u`` back."""
    bits = 4
    while (1 << bits) < u:
        bits += 1
    return bits


def token(u: int, dist: int, length: int) -> bytes:
    """A copy token written when ``u`` bytes of its chunk are decoded."""
    lbits = 16 - displacement_bits(u)
    assert 1 <= dist <= (1 << (16 - lbits)) and 3 <= length <= (1 << lbits) + 2
    return struct.pack("<H", ((dist - 1) << lbits) | (length - 3))


def compressed_chunk(body: bytes) -> bytes:
    """Header (compressed flag, signature 3, size - 1) and ``body`` (§2.1)."""
    assert 1 <= len(body) <= CHUNK
    return struct.pack("<H", 0xB000 | (len(body) - 1)) + body


def stored_chunk(data: bytes) -> bytes:
    """An uncompressed chunk: header without the compressed flag, then the data itself (§2.1)."""
    assert 1 <= len(data) <= CHUNK
    return struct.pack("<H", 0x3000 | (len(data) - 1)) + data


def body(*items: bytes | tuple[int, int]) -> tuple[bytes, bytes]:
    """A compressed chunk body from items: ``bytes`` are literals, ``(dist, length)`` copy tokens.

    Returns ``(body, decoded)``; flag bytes are inserted every eight items (§2.2), and the decoded
    bytes are computed here byte by byte, independently of any decoder.
    """
    flat: list[bytes | tuple[int, int]] = []
    for item in items:
        if isinstance(item, bytes):
            flat.extend(item[i : i + 1] for i in range(len(item)))
        else:
            flat.append(item)
    out = bytearray()
    decoded = bytearray()
    for group in range(0, len(flat), 8):
        flags = 0
        payload = bytearray()
        for bit, item in enumerate(flat[group : group + 8]):
            if isinstance(item, tuple):
                dist, length = item
                flags |= 1 << bit
                payload += token(len(decoded), dist, length)
                for _ in range(length):
                    decoded.append(decoded[-dist])
            else:
                payload += item
                decoded += item
        out.append(flags)
        out += payload
    return bytes(out), bytes(decoded)


def iter_chunks(stream: bytes):
    """``(header offset, header, body)`` for each chunk until the end marker or end of input."""
    pos = 0
    while len(stream) - pos >= 2:
        (header,) = struct.unpack_from("<H", stream, pos)
        if header == 0:
            return
        size = (header & 0xFFF) + 1
        yield pos, header, stream[pos + 2 : pos + 2 + size]
        pos += 2 + size


def reference_decode(stream: bytes) -> bytes:
    """dissect.util's LZNT1 per chunk, chunk i placed at 4096 * i (zeros between)."""
    out = bytearray()
    for index, (_, header, chunk_body) in enumerate(iter_chunks(stream)):
        out += bytes(index * CHUNK - len(out))
        out += dissect_lznt1.decompress(struct.pack("<H", header) + chunk_body)
    return bytes(out)
