"""DumpIt compressed dumps (``.zdmp``): the decoded stream of LZNT1 blocks (docs/formats/zdmp.md).

A container, not a memory format: :class:`ZdmpSource` takes a byte source (the ``.zdmp`` file) and is
itself a byte source of the decoded stream — normally a crash dump, which format detection then hands to
the crash dump reader (docs/formats/zdmp.md §5).  It lives in ``memfs.containers`` because it maps bytes to
bytes and
knows nothing of physical memory.

Open: check the header, walk the block chain reading only the 12-byte block headers (docs/formats/zdmp.md
§4.1).
Read: offset → block (``offset // BlockSize``) → the block's *layout*, made once per block: its payload
read, its CRC checked and its LZNT1 chunks located from their headers → the 256 KiB unit holding the
offset, decoded from just its chunks (LZNT1 chunks are independent 4 KiB slices, docs/formats/lznt1.md §3).
Layouts
and units share one byte-bounded LRU cache (§4.2), so a random 4 KiB read decodes 256 KiB, not a 2 MiB
block.  A bad
block fails only the reads that touch it (§4.4); a truncated chain leaves earlier blocks readable (§4.5).
"""

from __future__ import annotations

import struct
import zlib
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memfs import lznt1
from memfs.cache import DEFAULT_CACHE_SIZE, UnitCache
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, at
from memfs.memory import FailureLog, Section

if TYPE_CHECKING:  # the protocol core-stack adds (memfs/byte_source.py)
    from memfs.byte_source import ByteSource

FORMAT_NAME = "zdmp"
MAGIC = b"ZDMP"
BLOCK_MAGIC = b"ZBLK"
HEADER = struct.Struct("<4sIQIHH")  # Signature, Version, FileSize, BlockSize, DataType, CompressionFormat
BLOCK_HEADER = struct.Struct("<4sII")  # Signature, DataSize, Crc32 (docs/formats/zdmp.md §3)
FIRST_BLOCK = 0x1000  # the header fills the first page (§2)
VERSION = 0x0100
DATA_COMPRESSED = 1
DATA_ENCRYPTED = 2  # DataType bit (§6)
COMPRESSION_LZNT1 = 2  # COMPRESSION_FORMAT_LZNT1
# memfs's limits (§4.1): a decoded block is held whole; the index is 8 + 4 bytes per block.
MIN_BLOCK_SIZE = 0x1000
MAX_BLOCK_SIZE = 64 << 20
MAX_BLOCKS = 1 << 22
# Decoded bytes per cache unit: 64 LZNT1 chunks.  Small enough that a random read decodes little, large
# enough that the per-unit Python work stays a few percent of the decoding (scripts/bench_zdmp.py).
UNIT = 0x40000
CHUNK = lznt1.CHUNK_SIZE


@dataclass(frozen=True)
class ZdmpHeader:
    """The fields of the file header (docs/formats/zdmp.md §2)."""

    version: int
    file_size: int
    block_size: int
    data_type: int
    compression_format: int


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`ZdmpSource.verify` found: blocks whose CRC matched, did not, or are not in the file."""

    good: int
    bad: int
    missing: int


def probe(p) -> bool:
    """Content check for the container registry: the ``ZDMP`` signature at offset 0 (docs/formats/zdmp.md §2).

    ``p`` is the registry's probe input (anything with ``head``, the first bytes of the file).  A file
    with the signature belongs to this opener; a header it cannot accept is then an error, not raw data.
    """
    return bytes(p.head[:4]) == MAGIC


def open_zdmp(base: ByteSource, options=None) -> ZdmpSource:
    """Opener for the container registry: ``options.cache_size`` bounds the decoded blocks kept."""
    return ZdmpSource(base, cache_size=getattr(options, "cache_size", DEFAULT_CACHE_SIZE))


class ZdmpSource:
    """The decoded stream of a ``.zdmp`` file, as a byte source (``name``, ``size``, ``pread``,
    ``readinto``, ``close``).  It owns ``base`` and closes it.

    ``failures`` records each bad block once (docs/formats/zdmp.md §4.4); :meth:`describe` and :meth:`info`
    give
    the container's facts for ``header.txt`` and ``info --json``.
    """

    format_name = FORMAT_NAME

    def __init__(self, base: ByteSource, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.base = base
        self.name = f"{base.name}[decoded]"
        self.failures = FailureLog()
        self.cache = UnitCache(cache_size)
        self.decoded_bytes = 0  # bytes LZNT1 produced, for tests and benchmarks
        self._short_blocks: set[int] = set()
        self.header = self._read_header()
        self.size = self.header.file_size
        self.block_size = self.header.block_size
        self.blocks_expected = -(-self.size // self.block_size)
        self._walk()

    # -- open (docs/formats/zdmp.md §4.1)
    # ---------------------------------------------------------------------------

    def _read_header(self) -> ZdmpHeader:
        path = self.base.name
        head = self.base.pread(0, HEADER.size)
        if len(head) < HEADER.size:
            raise CorruptionError(at(path, len(head), f"file ends inside the {HEADER.size}-byte zdmp header"))
        magic, version, file_size, block_size, data_type, compression = HEADER.unpack(head)
        if magic != MAGIC:
            raise FormatError(at(path, 0, f"signature {magic!r} is not {MAGIC!r}"))
        if version != VERSION:
            raise FormatError(at(path, 4, f"Version {version:#x} is not {VERSION:#x}, the only one known"))
        if data_type & DATA_ENCRYPTED:
            raise FormatError(
                at(path, 0x14, f"DataType {data_type:#x}: the dump is encrypted, which memfs cannot decrypt")
            )
        if data_type != DATA_COMPRESSED:
            raise FormatError(at(path, 0x14, f"DataType {data_type:#x} is not 1 (compressed blocks)"))
        if compression != COMPRESSION_LZNT1:
            raise FormatError(
                at(path, 0x16, f"CompressionFormat {compression} is not 2 (LZNT1), the only one DumpIt uses")
            )
        if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
            raise CorruptionError(
                at(
                    path,
                    0x10,
                    f"BlockSize {block_size:#x} is outside {MIN_BLOCK_SIZE:#x}..{MAX_BLOCK_SIZE:#x} "
                    "(DumpIt writes 0x200000)",
                )
            )
        if file_size == 0:
            raise CorruptionError(at(path, 8, "FileSize is 0: the zdmp holds no data"))
        blocks = -(-file_size // block_size)
        if blocks > MAX_BLOCKS:
            raise CorruptionError(
                at(
                    path,
                    8,
                    f"FileSize {file_size:#x} in blocks of {block_size:#x} makes {blocks} blocks, "
                    f"more than the {MAX_BLOCKS} memfs accepts",
                )
            )
        return ZdmpHeader(version, file_size, block_size, data_type, compression)

    def _walk(self) -> None:
        """Index the blocks from their headers alone: header offsets, CRCs; stop at the first bad one."""
        path, end, block_size = self.base.name, self.base.size, self.block_size
        offsets, crcs = array("Q"), array("I")
        stop: tuple[int, str] | None = None
        offset = FIRST_BLOCK
        self.stored_blocks = 0
        while len(offsets) < self.blocks_expected:
            index = len(offsets)
            if end - offset < BLOCK_HEADER.size:
                where = "after" if offset >= end else "inside the header of"
                stop = (min(offset, end), f"the file ends {where} block {index}")
                break
            magic, data_size, crc = BLOCK_HEADER.unpack(self.base.pread(offset, BLOCK_HEADER.size))
            if magic != BLOCK_MAGIC:
                stop = (offset, f"block {index} header signature {magic!r} is not {BLOCK_MAGIC!r}")
            elif data_size == 0:
                stop = (offset + 4, f"block {index} has DataSize 0")
            elif data_size > block_size:
                stop = (offset + 4, f"block {index} DataSize {data_size:#x} > BlockSize {block_size:#x}")
            elif offset + BLOCK_HEADER.size + data_size > end:
                missing = offset + BLOCK_HEADER.size + data_size - end
                stop = (offset, f"block {index} is truncated: the file ends {missing:#x} bytes into it")
            if stop:
                break
            offsets.append(offset)
            crcs.append(crc)
            self.stored_blocks += data_size == block_size
            offset += BLOCK_HEADER.size + data_size
        if not offsets:
            assert stop is not None
            raise CorruptionError(at(path, stop[0], f"no complete block: {stop[1]}"))
        offsets.append(offset)  # end of the last block: sizes are differences
        self._offsets, self._crcs = offsets, crcs
        self.blocks_present = len(crcs)
        self.chain_stop = stop
        self.trailing_bytes = end - offset if stop is None else 0

    # -- the byte-source interface -----------------------------------------------------------------------

    def pread(self, offset: int, n: int) -> bytes:
        """``n`` decoded bytes at ``offset`` (short only at the end of the stream).

        Raises DecompressionError for a bad block and CorruptionError past a broken chain (§4.4, §4.5).
        """
        if n < 0:
            raise ValueError(f"{self.name}: negative length {n}")
        buf = bytearray(max(0, min(n, self.size - offset)))
        got = self.readinto(offset, buf)
        return bytes(buf) if got == len(buf) else bytes(buf[:got])

    def readinto(self, offset: int, out) -> int:
        """Fill ``out`` with decoded bytes at ``offset``; return the count (short only at the end).

        Whole units inside ``out`` are decoded straight into it, bypassing the cache (bulk readers read
        each unit once); the partial units at its ends go through the cache.  Errors as :meth:`pread`.
        """
        view = memoryview(out).cast("B")
        if offset < 0:
            raise ValueError(f"{self.name}: negative offset {offset}")
        end = min(offset + len(view), self.size)
        pos = offset
        while pos < end:
            index, a = divmod(pos, self.block_size)
            length = self._block_length(index)
            b = min(end - index * self.block_size, length)
            piece = view[pos - offset : pos - offset + (b - a)]
            whole_from = -(-a // UNIT) * UNIT
            whole_to = b if b == length else b // UNIT * UNIT
            if whole_from < whole_to:
                self._copy_cached(index, a, whole_from, piece[: whole_from - a])
                self._decode(index, whole_from, whole_to - whole_from, piece[whole_from - a : whole_to - a])
                self._copy_cached(index, whole_to, b, piece[whole_to - a :])
            else:
                self._copy_cached(index, a, b, piece)
            pos += b - a
        return max(end - offset, 0)

    def cache_stats(self) -> dict[str, int]:
        """Hit/miss counters of the decoded-unit cache (as MemorySource.cache_stats)."""
        return self.cache.stats()

    def drop_cache(self) -> None:
        """Let go of decoded units and block layouts; later reads decode them again."""
        self.cache.clear()

    def close(self) -> None:
        """Drop the cache and close the base source."""
        self.cache.clear()
        self.base.close()

    # -- blocks (docs/formats/zdmp.md §4.2-§4.4)
    # ----------------------------------------------------------------------

    def _block_length(self, index: int) -> int:
        """Decoded bytes of block ``index``: BlockSize, or the rest of FileSize for the last."""
        return min(self.block_size, self.size - index * self.block_size)

    def _copy_cached(self, index: int, a: int, b: int, out: memoryview) -> None:
        """Copy bytes ``a .. b`` of block ``index`` into ``out`` from its cached units."""
        length = self._block_length(index)
        while a < b:
            unit, inner = divmod(a, UNIT)
            start = unit * UNIT
            size = min(UNIT, length - start)
            data = self.cache.get((index, unit), lambda s=start, n=size: self._decode(index, s, n))
            take = min(b, start + size) - a
            out[:take] = memoryview(data)[inner : inner + take]
            out = out[take:]
            a += take

    def _layout(self, index: int) -> bytes:
        """Block ``index``'s chunk offsets (lznt1.chunk_offsets, packed uint32), or b"" when it is stored.

        Made once per block and cached: the payload is read whole and its CRC checked (§4.4).  Keeping
        the payload instead, to decode units from memory, measured slower (scripts/bench_zdmp.py): the
        compressed bytes go cold in the cache, while a second read comes from the page cache.
        """
        return self.cache.get(("layout", index), lambda: self._make_layout(index))

    def _make_layout(self, index: int) -> bytes:
        if index >= self.blocks_present:
            raise self._unreachable(index)
        data_at, data_size = self._payload(index)
        payload = self.base.pread(data_at, data_size)
        if len(payload) != data_size:
            raise self._bad(index, data_at + len(payload), "the file ends inside this block (did it shrink?)")
        self._check_crc(index, payload)
        if data_size == self.block_size:  # stored (§3)
            return b""
        try:  # the stream may hold up to BlockSize bytes, also in the last block (§4.3)
            return lznt1.chunk_offsets(payload, -(-self.block_size // CHUNK)).obj
        except DecompressionError as exc:
            what = f"the LZNT1 stream at file offset {data_at:#x} is invalid: {exc}"
            raise self._bad(index, data_at + (exc.offset or 0), what) from None

    def _payload(self, index: int) -> tuple[int, int]:
        """File offset and size of block ``index``'s payload."""
        data_at = self._offsets[index] + BLOCK_HEADER.size
        return data_at, self._offsets[index + 1] - data_at

    def _decode(self, index: int, start: int, size: int, out: memoryview | None = None) -> bytes:
        """Bytes ``start .. start + size`` of block ``index`` (a run of whole chunks, or up to the block's
        end); with ``out`` (exactly ``size`` bytes) they are written there and b"" is returned."""
        layout = self._layout(index)
        data_at, _ = self._payload(index)
        if not layout:  # stored: the payload is the data, checked by its CRC in _layout
            if out is not None:
                got = self.base.readinto(data_at + start, out)
            else:
                data = self.base.pread(data_at + start, size)
                got = len(data)
            if got != size:
                raise self._bad(
                    index, data_at + start + got, "the file ends inside this block (did it shrink?)"
                )
            return b"" if out is not None else data
        offsets = memoryview(layout).cast("I")
        count = len(offsets) - 1
        first, last = start // CHUNK, min(count, -(-(start + size) // CHUNK))
        capacity = min((last - first) * CHUNK, self.block_size - start)  # what these chunks may hold
        data, produced = b"", 0
        if first < last:  # chunks first .. last - 1 are a stream of their own (docs/formats/lznt1.md §3)
            stream = self.base.pread(data_at + offsets[first], offsets[last] - offsets[first])
            try:
                if out is not None and capacity == size:
                    produced = lznt1.decompress_into(stream, out, True)
                else:
                    data = lznt1.decompress(stream, capacity, True)
                    produced = len(data)
            except DecompressionError as exc:
                run_at = data_at + offsets[first]
                what = f"LZNT1 chunks {first}..{last - 1} at file offset {run_at:#x} do not decode: {exc}"
                raise self._bad(index, run_at + (exc.offset or 0), what) from None
            self.decoded_bytes += produced
        if produced < size and last == count:  # the stream ended early: the rest reads as zeros (§4.3)
            self._short_blocks.add(index)
        if out is None:
            return data[:size] if produced >= size else data + bytes(size - produced)
        if data:  # decoded into a bytes object (capacity != size): copy what belongs to out
            produced = min(produced, size)
            out[:produced] = data[:produced]
        out[produced:] = bytes(size - produced)
        return b""

    def _check_crc(self, index: int, payload) -> None:
        crc = zlib.crc32(payload)
        if crc != self._crcs[index]:
            raise self._bad(
                index,
                self._offsets[index] + 8,
                f"CRC32 of the {len(payload):#x}-byte payload is {crc:#010x}, the header says "
                f"{self._crcs[index]:#010x}",
            )

    def _bad(self, index: int, offset: int, what: str) -> DecompressionError:
        """Record block ``index`` as bad (once) and return the error to raise."""
        first = index * self.block_size
        message = at(
            self.base.name,
            offset,
            f"block {index} (decoded bytes {first:#x}..{first + self._block_length(index):#x}): {what}",
        )
        self.failures.record(self._offsets[index], message)
        return DecompressionError(message, offset)

    def _unreachable(self, index: int) -> CorruptionError:
        assert self.chain_stop is not None
        where, why = self.chain_stop
        first = self.blocks_present * self.block_size
        message = at(
            self.base.name,
            where,
            f"block {index} is unreadable: {why}, so decoded bytes {first:#x}..{self.size:#x} are missing",
        )
        self.failures.record(where, message)
        return CorruptionError(message)

    # -- checks and facts ---------------------------------------------------------------------------------

    def verify(self) -> VerifyResult:
        """Check every present block's CRC without decoding any (the CRC covers the stored payload, §4.6)."""
        good = bad = 0
        for index in range(self.blocks_present):
            data_at = self._offsets[index] + BLOCK_HEADER.size
            payload = self.base.pread(data_at, self._offsets[index + 1] - data_at)
            try:
                self._check_crc(index, payload)
            except DecompressionError:
                bad += 1
            else:
                good += 1
        return VerifyResult(good, bad, self.blocks_expected - self.blocks_present)

    @property
    def compressed_bytes(self) -> int:
        """Payload bytes of the present blocks."""
        return self._offsets[-1] - FIRST_BLOCK - BLOCK_HEADER.size * self.blocks_present

    def info(self) -> dict[str, object]:
        """This layer's facts for ``info --json`` (an entry of its ``layers`` list)."""
        stop = self.chain_stop
        return {
            "format": FORMAT_NAME,
            "version": self.header.version,
            "decoded_size": self.size,
            "block_size": self.block_size,
            "blocks": self.blocks_expected,
            "blocks_present": self.blocks_present,
            "stored_blocks": self.stored_blocks,
            "compressed_bytes": self.compressed_bytes,
            "chain_stop": None if stop is None else {"offset": stop[0], "reason": stop[1]},
            "trailing_bytes": self.trailing_bytes,
            "bad_blocks": self.failures.count,
        }

    def describe(self) -> list[Section]:
        """This layer's section of ``header.txt``."""
        present, expected = self.blocks_present, self.blocks_expected
        decoded_present = min(present * self.block_size, self.size)
        ratio = self.compressed_bytes / max(decoded_present, 1)
        rows = [
            (
                "Container",
                "DumpIt compressed dump (.zdmp): LZNT1 blocks, each with a CRC32 (docs/formats/zdmp.md)",
            ),
            ("Version", f"{self.header.version:#x}"),
            ("Decoded size (FileSize)", f"{self.size:#x} ({self.size} bytes)"),
            ("BlockSize", f"{self.block_size:#x}"),
            (
                "Blocks",
                f"{present} of {expected} present: {present - self.stored_blocks} LZNT1, "
                f"{self.stored_blocks} stored uncompressed",
            ),
            (
                "Compressed payload",
                f"{self.compressed_bytes:#x} bytes ({ratio:.3f} of the decoded bytes they hold)",
            ),
        ]
        if self.chain_stop is not None:
            where, why = self.chain_stop
            lost = f"decoded bytes {decoded_present:#x}..{self.size:#x} are unreadable"
            rows.append(("Block chain stops", f"at file offset {where:#x}: {why}; {lost}"))
        if self.trailing_bytes:
            rows.append(("Bytes after the last block", f"{self.trailing_bytes:#x} (ignored)"))
        if self._short_blocks:
            rows.append(("Blocks zero-filled after a short LZNT1 stream", str(len(self._short_blocks))))
        rows.append(("Bad blocks found so far", str(self.failures.count)))
        return [Section("DumpIt .zdmp container", rows)]
