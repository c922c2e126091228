"""[MS-XCA] LZNT1 codec (docs/formats/lznt1.md): what DumpIt's ``.zdmp`` blocks and NTFS use.

Written in C (``memfs.lznt1._lznt1``) because the one maintained PyPI decoder, dissect.util's, is pure
Python: some 80 times slower per core than this one on memory-like data (scripts/bench_lznt1.py), and it
neither bounds its output nor places a short chunk's successor 4 KiB on as Windows does (docs/formats/lznt1.md
§5.2).

Every function accepts any bytes-like object (bytes, bytearray, memoryview, mmap, ...) without copying it
and releases the GIL while it works, so several threads decode in parallel.  Decoding errors raise
:class:`memfs.exceptions.DecompressionError`, whose message names the problem and whose ``offset`` is the
input offset of the chunk header, copy token or byte at fault.  The decoder never writes past the output
it was given: a stream holding more data than that is an error, not a truncation.
"""

from __future__ import annotations

from memfs.lznt1 import _lznt1

__all__ = ["CHUNK_SIZE", "chunk_offsets", "compress", "decompress", "decompress_into"]

CHUNK_SIZE = 4096
"""Decoded bytes one LZNT1 chunk stands for; the last chunk may be shorter (docs/formats/lznt1.md §3)."""

_decompress = _lznt1.decompress
_decompress_into = _lznt1.decompress_into
_compress = _lznt1.compress
_chunk_offsets = _lznt1.chunk_offsets


def decompress(data, out_size: int, allow_short: bool = False) -> bytes:
    """Decode an LZNT1 stream into exactly ``out_size`` bytes.

    Raises DecompressionError if the stream is invalid, holds more than ``out_size`` bytes, or ends
    before ``out_size`` bytes — unless ``allow_short``: then the bytes the stream holds are returned.
    """
    return _decompress(data, out_size, allow_short)


def decompress_into(data, out, allow_short: bool = False) -> int:
    """Decode an LZNT1 stream into the writable buffer ``out``; return the number of bytes decoded.

    Without ``allow_short`` the stream must fill all of ``out``.  With it, a stream that ends early is
    accepted and the bytes of ``out`` after the returned count are unspecified (the caller decides what
    they mean; ``.zdmp`` blocks read them as zeros, docs/formats/zdmp.md §4.3).  A stream holding more than
    ``len(out)``
    bytes is always an error.  ``out`` must not overlap ``data``; on error its content is unspecified.
    """
    return _decompress_into(data, out, allow_short)


def chunk_offsets(data, max_chunks: int) -> memoryview:
    """Where each chunk of an LZNT1 stream starts, found from the chunk headers alone (nothing decoded).

    Returns ``count + 1`` unsigned 32-bit offsets: chunk ``i``'s header is at ``offsets[i]`` and the last
    chunk ends at ``offsets[count]``.  Chunk ``i`` decodes to output bytes ``4096 i .. 4096 (i + 1)``
    (docs/formats/lznt1.md §3), so ``data[offsets[i]:offsets[j]]`` is itself a stream: chunks ``i .. j - 1``,
    decoding to
    the output from ``4096 i`` on.  A bad chunk header or more than ``max_chunks`` chunks (a stream longer
    than its output may hold) raises DecompressionError with the header's offset.
    """
    return memoryview(_chunk_offsets(data, max_chunks)).cast("I")


def compress(data) -> bytes:
    """Encode ``data`` as an LZNT1 stream: one chunk per 4 KiB, stored when it does not shrink (§4)."""
    return _compress(data)
