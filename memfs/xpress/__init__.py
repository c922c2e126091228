"""[MS-XCA] Xpress codecs: Plain LZ77 and LZ77+Huffman (docs/formats/xpress.md).

The work is done by the C extension ``memfs.xpress._xpress``; these functions only document it.
Every function accepts any bytes-like object (bytes, bytearray, memoryview, mmap, ...) without copying
it, and releases the GIL while it decodes or encodes, so several threads can decode in parallel.

Decoders produce exactly the requested number of bytes or raise
:class:`memfs.exceptions.DecompressionError`, whose message names the problem and whose ``offset`` is
the input offset where it was found.  They stop as soon as the requested size is reached, ignoring any
remaining input (the Huffman EOF symbol, padding); a stream that encodes fewer bytes than requested, or
a match that would run past the requested size, is an error (docs/formats/xpress.md §2.2, §3.4, §4).

LZ77+Huffman streams do not record their length: the EOF symbol is also an ordinary match symbol and
the final bits are zero padding, so a request a few bytes longer than the stream encodes can decode
those as data (docs/formats/xpress.md §4 row 3).  Callers must pass the true size, as hibernation files
provide.
"""

from __future__ import annotations

from memfs.xpress import _xpress

__all__ = [
    "compress_huffman",
    "compress_plain",
    "decompress_huffman",
    "decompress_huffman_into",
    "decompress_huffman_prefix",
    "decompress_plain",
    "decompress_plain_into",
]

_decompress_plain = _xpress.decompress_plain
_decompress_huffman = _xpress.decompress_huffman
_decompress_plain_into = _xpress.decompress_plain_into
_decompress_huffman_into = _xpress.decompress_huffman_into
_decompress_huffman_prefix = _xpress.decompress_huffman_prefix
_compress_plain = _xpress.compress_plain
_compress_huffman = _xpress.compress_huffman


def decompress_plain(data, out_size: int) -> bytes:
    """Decode a Plain LZ77 stream (docs/formats/xpress.md §2) into exactly ``out_size`` bytes.

    Raises DecompressionError if the stream is invalid or does not produce exactly ``out_size`` bytes.
    """
    return _decompress_plain(data, out_size)


def decompress_huffman(data, out_size: int) -> bytes:
    """Decode an LZ77+Huffman stream (docs/formats/xpress.md §3) into exactly ``out_size`` bytes.

    Raises DecompressionError if the stream is invalid or does not produce exactly ``out_size`` bytes.
    """
    return _decompress_huffman(data, out_size)


def decompress_plain_into(data, out) -> int:
    """Decode a Plain LZ77 stream into the writable buffer ``out``, filling all ``len(out)`` bytes.

    ``out`` may be a bytearray, a writable memoryview (slice) or any writable contiguous buffer that
    does not overlap ``data``.  Returns the number of bytes written.  On DecompressionError the content
    of ``out`` is unspecified.
    """
    return _decompress_plain_into(data, out)


def decompress_huffman_into(data, out) -> int:
    """Decode an LZ77+Huffman stream into the writable buffer ``out``, filling all ``len(out)`` bytes.

    Same contract as :func:`decompress_plain_into`.
    """
    return _decompress_huffman_into(data, out)


def decompress_huffman_prefix(data, out_size: int, need: int) -> bytes:
    """The first bytes of an LZ77+Huffman stream whose whole output is ``out_size`` bytes: decoding stops
    once at least ``need`` bytes (``0 <= need <= out_size``) are produced.

    Returns between ``need`` and ``out_size`` bytes (a match may run past ``need``), equal to the start of
    what :func:`decompress_huffman` returns for ``out_size``.  Decoding is sequential, so a random read of
    an early page pays only for the bytes up to it (docs/performance.md, "Random access").  Raises
    DecompressionError if the stream is invalid before that point; damage after it goes unseen.
    """
    return _decompress_huffman_prefix(data, out_size, need)


def compress_plain(data) -> bytes:
    """Encode ``data`` (any length) as a Plain LZ77 stream (docs/formats/xpress.md §2.4)."""
    return _compress_plain(data)


def compress_huffman(data) -> bytes:
    """Encode ``data`` (any length) as an LZ77+Huffman stream (docs/formats/xpress.md §3.5).

    Blocks cover 64 KiB of input each; the EOF symbol ends the last block.
    """
    return _compress_huffman(data)
