"""DumpIt compressed dumps (``.zdmp``): the decoded stream of LZNT1 blocks (docs/formats/zdmp.md).

A container, not a memory format: :class:`ZdmpSource` takes a byte source (the ``.zdmp`` file) and is
itself a byte source of the decoded stream — normally a crash dump, which format detection then hands to
the crash dump reader (docs/formats/zdmp.md §5).  :data:`FORMAT` registers it (``memfs.detect``).

Open: check the header, walk the block chain reading only the 12-byte block headers (§4.1).
Read: a :class:`~memfs.containers.chunked.UnitStream` (index units, decode on demand through the cache,
failure log, whole units decoded straight into the caller's buffer) whose units are computed: offset →
block (``offset // BlockSize``) → the 256 KiB unit of the block holding it, decoded from just its LZNT1
chunks (they are independent 4 KiB slices, docs/formats/lznt1.md §3) once the block's *layout* is
known.  The layout is made once per block: payload read, CRC checked, chunks located from their headers.
Layouts and units share one byte-bounded LRU cache (§4.2), so a random 4 KiB read decodes 256 KiB, not a
2 MiB block.  A bad block fails only the reads that touch it (§4.4); a truncated chain leaves earlier
blocks readable (§4.5).
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

from memfs import lznt1
from memfs.byte_source import ByteSource, Rows, VerifyResult
from memfs.cache import DEFAULT_CACHE_SIZE
from memfs.containers.chunked import UnitStream
from memfs.exceptions import CorruptionError, DecompressionError, FormatError, at
from memfs.formats.base import CONTAINER, FormatSpec, OpenOptions, ProbeInput

try:  # the same CRC-32 as zlib's (docs/formats/zdmp.md §3), 15x faster per core (scripts/bench_zdmp.py)
    from zlib_ng.zlib_ng import crc32
except ImportError:  # zlib-ng is in memfs's "containers" extra; without it zlib's is used
    from zlib import crc32

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


def probe(p: ProbeInput) -> bool:
    """The ``ZDMP`` signature at offset 0 (docs/formats/zdmp.md §2), never the file name.

    A file with the signature belongs to this opener; a header it cannot accept is then an error, not
    raw data.
    """
    return bytes(p.head[:4]) == MAGIC


def open_zdmp(base: ByteSource, options: OpenOptions | None = None) -> ZdmpSource:
    """Opener for the registry: ``options.cache_size`` bounds the decoded units kept."""
    return ZdmpSource(base, cache_size=options.cache_size if options else DEFAULT_CACHE_SIZE)


class ZdmpSource(UnitStream):
    """The decoded stream of a ``.zdmp`` file, as a byte source; it owns ``base`` and closes it.

    A :class:`~memfs.containers.chunked.UnitStream` whose units follow from the header: unit
    ``block * units_per_block + k`` is the ``k``-th :data:`UNIT` of block ``block``.  ``failures``
    records each bad block once (docs/formats/zdmp.md §4.4); :meth:`facts` states the container for
    ``header.txt`` and ``info --json``; :meth:`verify` checks every block's CRC without decoding.
    """

    format_name = FORMAT_NAME

    def __init__(self, base: ByteSource, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(base, f"{base.name}[decoded]", cache_size)
        self.decoded_bytes = 0  # bytes LZNT1 produced, for tests and benchmarks
        self._short_blocks: set[int] = set()
        self._bad_blocks: set[int] = set()  # the failure log also holds the missing tail (§4.5)
        self._recent: tuple[int, bytes] = (-1, b"")  # the payload of the last layout made
        self.header = self._read_header()
        self.size = self.header.file_size
        self.block_size = self.header.block_size
        self.blocks_expected = -(-self.size // self.block_size)
        self.units_per_block = -(-self.block_size // UNIT)
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

    def drop_cache(self) -> None:
        """Let go of decoded units, block layouts and the payload kept aside."""
        self._recent = (-1, b"")
        super().drop_cache()

    # -- units (docs/formats/zdmp.md §4.2): computed, not listed ------------------------------------------

    @property
    def units(self) -> int:
        """Number of units in the stream."""
        last = self._block_length(self.blocks_expected - 1)
        return (self.blocks_expected - 1) * self.units_per_block + -(-last // UNIT)

    def _unit_at(self, offset: int) -> int:
        block, inner = divmod(offset, self.block_size)
        return block * self.units_per_block + inner // UNIT

    def unit_span(self, i: int) -> tuple[int, int]:
        block, k = divmod(i, self.units_per_block)
        start = k * UNIT
        return block * self.block_size + start, min(UNIT, self._block_length(block) - start)

    def _block_length(self, index: int) -> int:
        """Decoded bytes of block ``index``: BlockSize, or the rest of FileSize for the last."""
        return min(self.block_size, self.size - index * self.block_size)

    # -- blocks (docs/formats/zdmp.md §4.2-§4.4)
    # ----------------------------------------------------------------------

    def _layout(self, index: int) -> tuple[bytes, bytes | None]:
        """Block ``index``'s chunk offsets (lznt1.chunk_offsets, packed uint32), or b"" when it is stored;
        and its payload when it is at hand (None: read the chunks from the file).

        Made once per block and cached: the payload is read whole and its CRC checked (§4.4).  The last
        payload read is kept aside (one block, at most 1/16 of the cache budget) for the reads that
        follow it: a mount's 1 MiB reads each take part of a 2 MiB block, and reading those chunks
        again cost about 7% of the daemon's CPU (scripts/bench_zdmp.py).  Keeping every payload in the
        cache measured slower: the compressed bytes go cold there, while a re-read comes from the page
        cache.
        """
        made: list[bytes] = []
        layout = self.cache.get(("layout", index), lambda: self._make_layout(index, made))
        if made:
            if len(made[0]) <= self.cache.max_bytes // 16:  # one payload, outside the budget: keep it small
                self._recent = (index, made[0])
            return layout, made[0]
        recent = self._recent
        return layout, recent[1] if recent[0] == index else None

    def _make_layout(self, index: int, made: list[bytes]) -> bytes:
        if index >= self.blocks_present:
            raise self._unreachable(index)
        data_at, data_size = self._payload(index)
        payload = self.base.pread(data_at, data_size)
        if len(payload) != data_size:
            raise self._bad(index, data_at + len(payload), "the file ends inside this block (did it shrink?)")
        self._check_crc(index, payload)
        made.append(payload)
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

    def _decode_unit(self, i: int, out: memoryview | None = None) -> bytes:
        """Unit ``i``: into ``out`` (exactly its length; returns b"") or as new bytes (§4.2, §4.3)."""
        index, k = divmod(i, self.units_per_block)
        start = k * UNIT
        return self._decode(index, start, min(UNIT, self._block_length(index) - start), out)

    def _decode_units(self, i: int, j: int, out: memoryview) -> None:
        """Units ``i .. j - 1`` into ``out``: the units of one block in one LZNT1 call (fewer calls and
        reads than unit by unit: a few percent on bulk reads, scripts/bench_zdmp.py)."""
        pos = 0
        while i < j:
            index, k = divmod(i, self.units_per_block)
            last = min(j, (index + 1) * self.units_per_block)  # the run's end inside this block
            start = k * UNIT
            size = min((last - i) * UNIT, self._block_length(index) - start)
            self._decode(index, start, size, out[pos : pos + size])
            pos, i = pos + size, last

    def _read_part(self, i: int, inside: int, out: memoryview) -> None:
        """Part of unit ``i``: whole LZNT1 chunks are decoded straight into ``out`` (chunks are
        independent, docs/formats/lznt1.md §3), anything else is copied from the cached unit.

        Reads through a mount are page-aligned, and so are the pages of the crash dump inside, but its
        header shifts them against the units: without this, two units in five of a 1 MiB read went
        through the cache (decoded into new bytes, then copied), about 6% of the per-core rate (20% for
        128 KiB reads; scripts/bench_zdmp.py, docs/formats/zdmp.md §4.2).
        """
        index, k = divmod(i, self.units_per_block)
        start = k * UNIT + inside
        if start % CHUNK or (len(out) % CHUNK and start + len(out) != self._block_length(index)):
            super()._read_part(i, inside, out)
        else:
            self._decode(index, start, len(out), out)

    def _decode(self, index: int, start: int, size: int, out: memoryview | None = None) -> bytes:
        """Bytes ``start .. start + size`` of block ``index`` (a run of whole chunks, or up to the block's
        end); with ``out`` (exactly ``size`` bytes) they are written there and b"" is returned."""
        layout, payload = self._layout(index)
        data_at = self._offsets[index] + BLOCK_HEADER.size
        if not layout:  # stored: the payload is the data, checked by its CRC in _layout
            if payload is not None:
                piece = memoryview(payload)[start : start + size]
                got = len(piece)
                if out is not None:
                    out[:got] = piece
                else:
                    data = bytes(piece)
            elif out is not None:
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
            if payload is not None:
                stream = memoryview(payload)[offsets[first] : offsets[last]]
            else:
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
        crc = crc32(payload)
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
        self._bad_blocks.add(index)
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
        """Check every present block's CRC without decoding any (the CRC covers the stored payload, §4.6).

        Bad blocks are recorded in ``failures``; blocks past a broken chain count as missing.
        """
        good = bad = 0
        for index in range(self.blocks_present):
            data_at, data_size = self._payload(index)
            try:
                self._check_crc(index, self.base.pread(data_at, data_size))
            except DecompressionError:
                bad += 1
            else:
                good += 1
        missing = self.blocks_expected - self.blocks_present
        return VerifyResult("blocks", "CRC32 of each stored payload", good, bad, missing)

    @property
    def compressed_bytes(self) -> int:
        """Payload bytes of the present blocks."""
        return self._offsets[-1] - FIRST_BLOCK - BLOCK_HEADER.size * self.blocks_present

    def facts(self) -> Rows:
        """This layer's rows in ``header.txt`` and ``info --json``, as of now (short and bad blocks are
        found by reading)."""
        present, expected = self.blocks_present, self.blocks_expected
        decoded_present = min(present * self.block_size, self.size)
        ratio = self.compressed_bytes / max(decoded_present, 1)
        rows = [
            ("Container", "DumpIt compressed dump (.zdmp): LZNT1 blocks, each with a CRC32"),
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
        if self._bad_blocks:
            rows.append(("Bad blocks found so far", str(len(self._bad_blocks))))
        return rows


FORMAT = FormatSpec(
    name=FORMAT_NAME,
    description="DumpIt compressed dump (.zdmp): a crash dump in LZNT1 blocks with CRC32s",
    probe=probe,
    open=open_zdmp,
    kind=CONTAINER,
)
