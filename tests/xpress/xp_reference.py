"""A slow, literal Python transcription of the docs/formats/xpress.md decoders and plain writer, used as an
oracle.

It follows docs/formats/xpress.md §2.2, §2.4 and §3.3-§3.4 step by step (32-bit window, one refill per
consume) and
reports the structure it saw (block sizes, last symbol, escapes), so tests can check what an encoder
emitted, not only that it round-trips.  Independent of the C code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ReferenceError(Exception):
    """The stream is invalid according to docs/formats/xpress.md."""


@dataclass
class HuffmanTrace:
    output: bytes
    block_sizes: list[int] = field(default_factory=list)
    last_symbol: int = -1
    next_symbol: int = -1  # what the window would decode next when decoding stopped (EOF: 256)
    end_pos: int = 0  # format byte position when decoding stopped (after the words pulled in)
    escapes: set[str] = field(default_factory=set)


def _u16(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise ReferenceError(f"u16 past end at {pos}")
    return int.from_bytes(data[pos : pos + 2], "little")


def _u32(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise ReferenceError(f"u32 past end at {pos}")
    return int.from_bytes(data[pos : pos + 4], "little")


def huffman_decode(data: bytes, out_size: int) -> HuffmanTrace:
    """Decode an LZ77+Huffman stream into exactly out_size bytes (docs/formats/xpress.md §3.4)."""
    out = bytearray()
    trace = HuffmanTrace(b"")
    pos = 0
    while len(out) < out_size:
        if pos + 256 > len(data):
            raise ReferenceError("table past end")
        lens = []
        for b in data[pos : pos + 256]:
            lens += [b & 15, b >> 4]
        order = sorted((n, s) for s, n in enumerate(lens) if n)
        if sum(1 << (15 - n) for n, _ in order) != 1 << 15:
            raise ReferenceError("incomplete code")
        table = []
        for n, s in order:
            table += [(s, n)] * (1 << (15 - n))
        pos += 256

        def word(p: int) -> int:
            return int.from_bytes(data[p : p + 2].ljust(2, b"\0"), "little") if p < len(data) else 0

        window = (word(pos) << 16) | word(pos + 2)
        valid = 32
        pos += 4

        def consume(n: int) -> None:
            nonlocal window, valid, pos
            window = (window << n) & 0xFFFFFFFF
            valid -= n
            if valid < 16:
                window |= word(pos) << (16 - valid)
                valid += 16
                pos += 2

        start = len(out)
        while len(out) - start < 65536 and len(out) < out_size:
            sym, n = table[window >> 17]
            consume(n)
            trace.last_symbol = sym
            if sym < 256:
                out.append(sym)
                continue
            length = sym & 15
            dbits = (sym >> 4) & 15
            if length == 15:
                if pos >= len(data):
                    raise ReferenceError("length byte past end")
                length = data[pos]
                pos += 1
                if length == 255:
                    length = _u16(data, pos)
                    pos += 2
                    trace.escapes.add("u16")
                    if length == 0:
                        length = _u32(data, pos)
                        pos += 4
                        trace.escapes.add("u32")
                    if length < 15:
                        raise ReferenceError("bad escape")
                    length -= 15
                else:
                    trace.escapes.add("byte")
                length += 15
            length += 3
            distance = (1 << dbits) | (window >> (32 - dbits) if dbits else 0)
            consume(dbits)
            if distance > len(out):
                raise ReferenceError("distance")
            if len(out) + length > out_size:
                raise ReferenceError("overrun")
            for _ in range(length):
                out.append(out[-distance])
        trace.block_sizes.append(len(out) - start)
        trace.next_symbol = table[window >> 17][0]
        trace.end_pos = pos
    trace.output = bytes(out)
    return trace


def plain_stream(symbols) -> bytes:
    """Write a Plain LZ77 stream (docs/formats/xpress.md §2.4).

    Each symbol is an int (a literal byte) or a (length, distance) match.
    """
    out = bytearray(4)
    slot = 0
    flags = nflags = 0
    nibble = None
    for sym in symbols:
        if isinstance(sym, int):
            out.append(sym)
            bit = 0
        else:
            length, distance = sym
            lv = length - 3
            out += (((distance - 1) << 3) | min(lv, 7)).to_bytes(2, "little")
            if lv >= 7:
                lv -= 7
                if nibble is None:
                    nibble = len(out)
                    out.append(min(lv, 15))
                else:
                    out[nibble] |= min(lv, 15) << 4
                    nibble = None
                if lv >= 15:
                    lv -= 15
                    out.append(min(lv, 255))
                    if lv >= 255:
                        lv += 22
                        if lv < 65536:
                            out += lv.to_bytes(2, "little")
                        else:
                            out += b"\0\0" + lv.to_bytes(4, "little")
            bit = 1
        flags = (flags << 1) | bit
        nflags += 1
        if nflags == 32:
            out[slot : slot + 4] = flags.to_bytes(4, "little")
            slot = len(out)
            out += bytes(4)
            flags = nflags = 0
    pad = 32 - nflags
    out[slot : slot + 4] = ((flags << pad) | ((1 << pad) - 1)).to_bytes(4, "little")
    return bytes(out)
