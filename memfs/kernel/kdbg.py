"""KDDEBUGGER_DATA64 (the KDBG): locate it, decode it where Windows 8+ x64 encodes it, read it.

Layout and procedures: docs/formats/crashdump.md §10.  Three searches, cheapest first:

1. plain scan of the kernel image (``.data`` first) for the 'KDBG' OwnerTag (§10.3 items 2–4);
2. Windows 8+ x64 encoded block, the disassembly-free B2D way (§10.4): KiWaitNever and KiWaitAlways
   are rip-relative ``mov r64,[rip+disp32]`` targets in KeSetTimerEx/KeSetTimer (following one call
   into KiSetTimerEx); the low-DWORD trick finds the block in ``.data`` with only the high half of
   E (the VA of KdpDataBlockEncoded) known, then E is solved exactly from the KernBase QWORD;
3. plain scan of physical memory (when the kernel image was not found), the VA being recovered
   through the debugger list head the block's LIST_ENTRY points at.

Every candidate is validated (tag, Size, list entry, KernBase) before it is trusted.
"""

from __future__ import annotations

import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from memfs.kernel.paging import AddressSpace
from memfs.kernel.pe import PeImage, exports
from memfs.memory import PAGE_SIZE

KDBG_TAG = 0x4742444B
TAG_BYTES = b"KDBG"
MIN_SIZE = 0x290  # XP (§10.1 Size table)
MAX_SIZE = 0x800  # MemProcFS's sanity limit (§10.1)
MAX_DATA_SCAN = 16 << 20  # bytes of .data the encoded-KDBG search decodes (real kernels: a few MiB)
MASK64 = (1 << 64) - 1

# KDBG field offsets (docs/formats/crashdump.md §10.1).
KERN_BASE = 0x18
PS_LOADED_MODULE_LIST = 0x48
PS_ACTIVE_PROCESS_HEAD = 0x50
MM_PFN_DATABASE = 0xC0
KI_PROCESSOR_BLOCK = 0x218
OFFSET_PRCB_PROC_STATE_CONTEXT = 0x2BC
OFFSET_PRCB_CONTEXT = 0x338


@dataclass
class Kdbg:
    """A validated KDBG: where it is and its plaintext bytes."""

    va: int
    pa: int
    plain: bytes
    arch: str
    method: str
    encoded: bool = False
    wait_never: int | None = None
    wait_always: int | None = None
    encoded_flag_va: int | None = None
    encoded_flag_value: int | None = None

    @property
    def size(self) -> int:
        return len(self.plain)

    def u16(self, off: int) -> int | None:
        return struct.unpack_from("<H", self.plain, off)[0] if off + 2 <= self.size else None

    def ptr(self, off: int) -> int | None:
        """A pointer field: 64-bit, truncated to 32 bits on x86 (pointers are sign-extended there)."""
        if off + 8 > self.size:
            return None
        (value,) = struct.unpack_from("<Q", self.plain, off)
        return value & 0xFFFFFFFF if self.arch == "x86" else value


def rotl64(value: int, count: int) -> int:
    count &= 63
    return ((value << count) | (value >> (64 - count))) & MASK64 if count else value


def rotr64(value: int, count: int) -> int:
    return rotl64(value, 64 - (count & 63))


def bswap64(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "big")


def decode_qword(q: int, wait_never: int, wait_always: int, encoded_flag_va: int) -> int:
    """One QWORD of an encoded KDBG (docs/formats/crashdump.md §10.4 steps 1–5)."""
    t = rotl64(q ^ wait_never, wait_never & 0xFF)
    return bswap64(t ^ encoded_flag_va) ^ wait_always


def decode_block(data: bytes, wait_never: int, wait_always: int, encoded_flag_va: int) -> bytes:
    """Decode a whole encoded block (length a multiple of 8)."""
    out = [
        decode_qword(q, wait_never, wait_always, encoded_flag_va) for (q,) in struct.iter_unpack("<Q", data)
    ]
    return struct.pack(f"<{len(out)}Q", *out)


def header_ok(plain: bytes, arch: str, space: AddressSpace, kernel_base: int | None) -> bool:
    """Tag, Size, list entry and KernBase checks on a plaintext block (§10.3 items 3–4)."""
    if len(plain) < 0x20:
        return False
    tag, size = struct.unpack_from("<II", plain, 0x10)
    if tag != KDBG_TAG or not MIN_SIZE <= size <= MAX_SIZE or size % 8:
        return False
    flink, blink = struct.unpack_from("<QQ", plain, 0)
    (kern_base,) = struct.unpack_from("<Q", plain, KERN_BASE)
    if arch == "x86":
        if blink != 0 or flink & 0xFFFFFFFF != flink >> 32:  # a 32-bit LIST_ENTRY in the first QWORD
            return False
        flink &= 0xFFFFFFFF
        kern_base &= 0xFFFFFFFF
    elif flink != blink:
        return False
    if not space.pointer_ok(flink) or not space.pointer_ok(kern_base) or kern_base & 0xFFF:
        return False
    return kernel_base is None or kern_base == kernel_base


def _make(space: AddressSpace, va: int, plain: bytes, method: str, **extra) -> Kdbg | None:
    pa = space.translate(va)
    if pa is None:
        return None
    return Kdbg(
        va=va, pa=pa, plain=plain, arch="x64" if space.mode == "x64" else "x86", method=method, **extra
    )


def _data_first(image: PeImage) -> list[tuple[int, int]]:
    data = image.section(".data")
    ranges = [data] if data is not None else []
    return ranges + [(image.base, image.size)]


def find_plain_in_image(space: AddressSpace, image: PeImage) -> Kdbg | None:
    """Scan the kernel image (``.data`` first) for a plain, valid KDBG."""
    arch = "x64" if space.mode == "x64" else "x86"
    done: set[int] = set()
    for start, length in _data_first(image):
        for page_va in range(start & ~(PAGE_SIZE - 1), start + length, PAGE_SIZE):
            if page_va in done:
                continue
            done.add(page_va)
            page = space.read(page_va, PAGE_SIZE)
            if page is None:
                continue
            pos = page.find(TAG_BYTES)
            while pos != -1:
                if pos % 8 == 0:
                    va = page_va + pos - 0x10
                    head = space.read(va, 0x20)
                    if head is not None and header_ok(head, arch, space, image.base):
                        (size,) = struct.unpack_from("<I", head, 0x14)
                        plain = space.read(va, size)
                        if plain is not None:
                            return _make(space, va, plain, "plain 'KDBG' tag in the kernel image")
                pos = page.find(TAG_BYTES, pos + 1)
    return None


def _rip_targets(space: AddressSpace, start: int, limit: int = 0x100, follow: int = 1) -> list[int]:
    """Targets of ``mov r64,[rip+disp32]`` (REX.W 8B /r, mod=00 rm=101) in ``limit`` bytes from ``start``.

    There is no disassembler: the byte pattern is matched everywhere in the window, and wrong
    candidates are weeded out later by validation.  If no load precedes the first ``call rel32`` /
    ``jmp rel32``, the callee is searched instead (``follow`` levels deep), as B2D does for
    KeSetTimer → KiSetTimerEx.
    """
    code = space.read(start, limit)
    if code is None:
        return []
    targets: list[int] = []
    followed = False
    for i in range(len(code) - 6):
        if code[i] in (0x48, 0x4C) and code[i + 1] == 0x8B and code[i + 2] & 0xC7 == 0x05:
            (disp,) = struct.unpack_from("<i", code, i + 3)
            targets.append((start + i + 7 + disp) & MASK64)
        elif code[i] in (0xE8, 0xE9) and not targets and not followed and follow > 0:
            followed = True
            (disp,) = struct.unpack_from("<i", code, i + 1)
            targets += _rip_targets(space, (start + i + 5 + disp) & MASK64, limit, follow - 1)
    return targets


def timer_candidates(space: AddressSpace, image: PeImage) -> list[int]:
    """Candidate VAs of KiWaitNever/KiWaitAlways: rip-relative loads in the timer routines (§10.4 B2D)."""
    table = exports(space, image)
    found: list[int] = []
    for name in ("KeSetTimerEx", "KeSetTimer"):
        if name in table:
            for target in _rip_targets(space, table[name]):
                in_image = image.base <= target < image.base + image.size
                if in_image and target % 8 == 0 and target not in found:
                    found.append(target)
    return found[:5]


def _low_dword_hits(qwords: array, wait_never: int, wait_always: int, e_high: int) -> list[int]:
    """Indexes whose decoded low DWORD is 'KDBG' with E's low half unknown (§10.4 low-DWORD trick).

    low32(decode(q)) = bswap32(high32(rotl(q ^ W_N, r)) ^ high32(E)) ^ low32(W_A), so the test is a
    mask-and-compare on 32 rotated bits of q.
    """
    rot = wait_never & 0x3F
    want_high = int.from_bytes(((KDBG_TAG ^ wait_always) & 0xFFFFFFFF).to_bytes(4, "little"), "big") ^ e_high
    mask = rotr64(0xFFFFFFFF00000000, rot)
    value = rotr64(want_high << 32, rot) ^ (wait_never & mask)
    return [i for i, q in enumerate(qwords) if q & mask == value]


def find_encoded(space: AddressSpace, image: PeImage, seconds: float = 10.0) -> tuple[Kdbg | None, str]:
    """Find and decode a Windows 8+ x64 encoded KDBG without symbols (docs/formats/crashdump.md §10.4, B2D
    method)."""
    if space.mode != "x64":
        return None, "only x64 Windows 8+ encodes the KDBG"
    candidates = timer_candidates(space, image)
    if len(candidates) < 2:
        return None, "KeSetTimerEx/KeSetTimer not found or hold fewer than two rip-relative loads"
    values = {va: space.read_uint(va, 8) for va in candidates}
    pairs = [(a, b) for i, a in enumerate(candidates) for b in candidates[i + 1 :] if values[a] and values[b]]
    e_highs = sorted({image.base >> 32, (image.base + image.size - 1) >> 32})
    deadline = time.monotonic() + seconds
    data = image.section(".data") or (image.base, image.size)
    pages: list[tuple[int, array]] = []  # compact: 8 bytes per QWORD, however many passes
    for page_va in range(
        data[0] & ~(PAGE_SIZE - 1), min(data[0] + data[1], data[0] + MAX_DATA_SCAN), PAGE_SIZE
    ):
        page = space.read(page_va, PAGE_SIZE)
        if page is not None:
            qwords = array("Q", page)
            if sys.byteorder == "big":
                qwords.byteswap()
            pages.append((page_va, qwords))
    for never_va, always_va in pairs:
        wait_never, wait_always = values[never_va], values[always_va]
        for e_high in e_highs:
            for page_va, qwords in pages:
                if time.monotonic() > deadline:
                    return None, "time budget exhausted while trying KiWaitNever/KiWaitAlways candidates"
                for index in _low_dword_hits(qwords, wait_never, wait_always, e_high):
                    found = _solve(space, image, page_va + 8 * index - 0x10, wait_never, wait_always)
                    if found is not None:
                        found.method = (
                            f"encoded (Windows 8+): KiWaitNever {never_va:#x}, KiWaitAlways {always_va:#x} "
                            f"from KeSetTimerEx/KeSetTimer loads; low-DWORD scan of .data"
                        )
                        return found, found.method
    return None, f"no encoded KDBG decoded with {len(pairs)} KiWaitNever/KiWaitAlways candidate pairs"


def _solve(space: AddressSpace, image: PeImage, va: int, wait_never: int, wait_always: int) -> Kdbg | None:
    """Solve E from the KernBase QWORD, then decode and validate the whole block (§10.4)."""
    head = space.read(va, 0x20)
    if head is None:
        return None
    (q_kern,) = struct.unpack_from("<Q", head, KERN_BASE)
    e = rotl64(q_kern ^ wait_never, wait_never & 0xFF) ^ bswap64(image.base ^ wait_always)
    if not image.base <= e < image.base + image.size:
        return None
    plain_head = decode_block(head, wait_never, wait_always, e)
    if not header_ok(plain_head, "x64", space, image.base):
        return None
    (size,) = struct.unpack_from("<I", plain_head, 0x14)
    raw = space.read(va, size)
    if raw is None:
        return None
    flag = space.read_uint(e, 1)
    return _make(
        space,
        va,
        decode_block(raw, wait_never, wait_always, e),
        "",
        encoded=True,
        wait_never=wait_never,
        wait_always=wait_always,
        encoded_flag_va=e,
        encoded_flag_value=flag,
    )


def find_plain_physical(
    space: AddressSpace, read_pa: Callable[[int, int], bytes], size: int, budget: int, seconds: float = 10.0
) -> tuple[Kdbg | None, str]:
    """Scan physical memory for a plain KDBG; its VA comes from the debugger list head (§10.3)."""
    arch = "x64" if space.mode == "x64" else "x86"
    deadline = time.monotonic() + seconds
    chunk_size = 1 << 20
    end = min(size, budget)
    for base in range(0, end, chunk_size):
        if time.monotonic() > deadline:
            return None, f"physical KDBG scan stopped at {base:#x} (time budget)"
        chunk = read_pa(base, chunk_size + 0x20)
        pos = chunk.find(TAG_BYTES, 0x10)
        while pos != -1 and pos < chunk_size + 0x10:
            if pos % 8 == 0 and header_ok(chunk[pos - 0x10 : pos + 0x10], arch, space, None):
                (flink,) = struct.unpack_from("<Q", chunk, pos - 0x10)
                head = flink & 0xFFFFFFFF if arch == "x86" else flink
                va = space.read_ptr(head)
                if va is not None and space.translate(va) == base + pos - 0x10:
                    (block_size,) = struct.unpack_from("<I", chunk, pos + 4)
                    plain = space.read(va, block_size)
                    if plain is not None:
                        return _make(space, va, plain, "plain 'KDBG' tag in physical memory"), ""
            pos = chunk.find(TAG_BYTES, pos + 1)
    return None, f"no plain KDBG in the first {end >> 20} MiB of physical memory"
