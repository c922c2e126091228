"""Build synthetic Windows-like raw memory images for the kernel-discovery and memory.dmp tests.

Each image holds what memfs's symbol-free discovery looks for, laid out the way docs/formats/crashdump.md
describes a real system (all offsets cite that document):

- real page-table hierarchies: x64 4-level with a self-map entry (§11 item 2), x86 PAE with the
  PD self-map in the fourth page directory (§13), x86 non-PAE with the self-map at index 0x300;
  kernel pages mapped out of physical order, pool mapped by one large page;
- an x64 low stub / PROCESSOR_START_BLOCK at PA 0x1000 (§11 item 1) unless disabled;
- a kernel image with an "MZ"/PE header at KernBase, an export table naming it ``ntoskrnl.exe``
  with KeSetTimer/KeSetTimerEx, sections ``.text``/``.rdata``/``.data`` (``.data`` full of random
  bytes so scans meet noise);
- a KDDEBUGGER_DATA64 block in ``.data`` (§10.1), straddling a page boundary, plain or (x64)
  encoded the Windows 8+ way with KiWaitNever/KiWaitAlways/KdpDataBlockEncoded (§10.4), whose
  rip-relative loads sit in KiSetTimerEx, called by the exported KeSetTimerEx (the B2D pattern);
- KdpDebuggerDataListHead, DBGKD_GET_VERSION64 (§10.2), PsLoadedModuleList with one entry,
  PsActiveProcessHead, MmPfnDatabase, KiProcessorBlock with KPRCBs whose embedded and pointed-to
  CONTEXT records carry zero segment selectors (so the WinDbg fix-ups of §9.1 are visible);
- KUSER_SHARED_DATA (§12) with system time, interrupt time, product type and suite mask.

Usage: ``python3 -m scripts.make_windows_image OUT [--mode x64|pae|x86] [--encoded] [--no-stub]``.
:func:`build_image` returns a :class:`WindowsImage` with every placed value so tests can compare.
"""

from __future__ import annotations

import argparse
import random
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

PAGE = 0x1000
MIB = 1 << 20
KDBG_TAG = 0x4742444B
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)

# Physical layout shared by all modes (the image is 32 MiB by default).
STUB_PA = 0x1000
DTB_PAGE = 0x1AB000
PDPT_OFFSET = 0x7A0  # PAE: the PDPT sits 32-byte aligned inside a page, as Windows allocates it
TABLES_PA = 0x200000
KERNEL_PA = 0x400000
POOL_PA = 0xC00000  # 2 MiB aligned (x64/PAE large page)
POOL_PA_X86 = 0x1000000  # 4 MiB aligned (non-PAE large page)
KUSER_PA = 0xE00000
NOISE_PA = 0x1400000

# Kernel image layout (RVAs).
IMAGE_SIZE = 0x200000
TEXT_RVA, TEXT_SIZE = 0x1000, 0x6F000
RDATA_RVA, RDATA_SIZE = 0x70000, 0x10000
DATA_RVA, DATA_SIZE = 0x80000, 0x80000
KE_SET_TIMER_RVA = 0x2000
KE_SET_TIMER_EX_RVA = 0x2100
KI_SET_TIMER_EX_RVA = 0x3000
LM_STUB_RVA = 0x3500
LIST_HEAD_RVA = 0x80100
VERSION_BLOCK_RVA = 0xBE200  # within 8 pages of the KDBG, where V2 searches (§10.2)
KI_WAIT_NEVER_RVA = 0x80300
KDP_ENCODED_RVA = 0x80400
LOADED_MODULES_RVA = 0x80500
ACTIVE_PROCESS_RVA = 0x80510
PFN_VAR_RVA = 0x80520
DECOY_RVA = 0x80540
PROCESSOR_BLOCK_RVA = 0x80600
KI_WAIT_ALWAYS_RVA = 0x80A48
KDBG_RVA = 0xC0D00  # the block crosses the page boundary at 0xC1000

CONTEXT_SIZE = {"x64": 0x4D0, "x86": 0x2CC}


@dataclass
class Profile:
    """Per-mode kernel constants (values from docs/formats/crashdump.md §9.1, §10.1, §12, §13)."""

    mode: str
    arch: str
    kernel_base: int
    pool_va: int
    kuser_va: int
    build: int
    kdbg_size: int
    prcb_in_pcr: int
    proc_state_context: int
    prcb_context: int | None
    pfn_database: int


PROFILES = {
    "x64": Profile(
        "x64",
        "x64",
        0xFFFFF80002A00000,
        0xFFFFE00012400000,
        0xFFFFF78000000000,
        7601,
        0x340,
        0x180,
        0x40 + 0xE0,
        0x4BD8,
        0xFFFFFA8000000000,
    ),
    "x64enc": Profile(
        "x64",
        "x64",
        0xFFFFF8034E800000,
        0xFFFFB08612400000,
        0xFFFFF78000000000,
        19041,
        0x368,
        0x180,
        0x100 + 0xF0,
        0x6F80,
        0xFFFFD38000000000,
    ),
    "pae": Profile(
        "pae", "x86", 0x82A00000, 0x84000000, 0xFFDF0000, 7601, 0x340, 0x120, 0x18, 0x3618, 0x86A00000
    ),
    "x86": Profile(
        "x86",
        "x86",
        0x804D7000 & ~0xFFFFF,
        0x84000000,
        0xFFDF0000,
        3790,
        0x318,
        0x120,
        0x1C,
        None,
        0x81C00000,
    ),
}


@dataclass
class WindowsImage:
    """Every value the builder placed, for tests to compare with what discovery finds."""

    path: Path | None
    mode: str
    arch: str
    pae: bool
    size: int
    dtb: int
    encoded: bool
    low_stub: bool
    kernel_base: int
    kernel_size: int
    kdbg_va: int
    kdbg_pa: int
    kdbg_size: int
    kdbg_plain: bytes
    kdp_data_block_encoded_va: int | None
    ki_wait_never: int | None
    ki_wait_always: int | None
    ps_loaded_module_list: int
    ps_active_process_head: int
    mm_pfn_database_va: int
    pfn_database: int
    ki_processor_block: int
    prcbs: list[int]
    context_ptrs: list[int | None]
    embedded_contexts: list[int]
    contexts: list[dict[str, int]]
    build: int
    system_time: datetime
    system_uptime: timedelta
    product_type: int
    suite_mask: int
    kuser_va: int
    va_to_pa: dict[int, int] = field(repr=False, default_factory=dict)
    memory: bytes = field(repr=False, default=b"")

    def translate(self, va: int) -> int | None:
        """The builder's own mapping of a VA (for tests)."""
        page = self.va_to_pa.get(va & ~0xFFF)
        return None if page is None else page | (va & 0xFFF)


def _sx(value: int, arch: str) -> int:
    """A pointer as KDDEBUGGER_DATA64 stores it: 64-bit, sign-extended on x86 (docs/formats/crashdump.md
    §10.1)."""
    if arch == "x86" and value & 0x80000000:
        return value | 0xFFFFFFFF00000000
    return value


def _rotl(value: int, count: int) -> int:
    count &= 63
    return ((value << count) | (value >> (64 - count))) & 0xFFFFFFFFFFFFFFFF if count else value


def _bswap(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "big")


def encode_kdbg(plain: bytes, wait_never: int, wait_always: int, encoded_flag_va: int) -> bytes:
    """Encode a KDBG the Windows 8+ way: the inverse of docs/formats/crashdump.md §10.4's decode.

    Decode is ``bswap(rotl(q ^ W_N, W_N & 0xFF) ^ E) ^ W_A``; so encoding is
    ``rotr(bswap(p ^ W_A) ^ E, W_N & 0xFF) ^ W_N``.
    """
    out = bytearray()
    rot = wait_never & 0xFF
    for (p,) in struct.iter_unpack("<Q", plain):
        t = _bswap(p ^ wait_always) ^ encoded_flag_va
        t = _rotl(t, 64 - (rot & 63))
        out += struct.pack("<Q", t ^ wait_never)
    return bytes(out)


class _Machine:
    """Physical memory plus a page-table builder for one paging mode."""

    def __init__(self, mode: str, size: int) -> None:
        self.mode = mode
        self.mem = bytearray(size)
        self.next_table = TABLES_PA
        self.va_to_pa: dict[int, int] = {}
        if mode == "x64":
            self.dtb = DTB_PAGE
            self._put(self.dtb + 0x1ED * 8, 8, self.dtb | 0x8000000000000063)  # self-map (§11 item 2)
        elif mode == "pae":
            self.dtb = DTB_PAGE + PDPT_OFFSET
            pds = [self.alloc() for _ in range(4)]
            for i, pd in enumerate(pds):
                self._put(self.dtb + i * 8, 8, pd | 0x1)
                self._put(pds[3] + i * 8, 8, pd | 0x63)  # PD self-map at 0xC0600000 (§13)
        else:
            self.dtb = DTB_PAGE
            self._put(self.dtb + 0x300 * 4, 4, self.dtb | 0x63)  # self-map at index 0x300 (§13)

    def alloc(self) -> int:
        pa = self.next_table
        self.next_table += PAGE
        assert self.next_table <= KERNEL_PA, "page-table pool exhausted"
        return pa

    def _put(self, pa: int, size: int, value: int) -> None:
        self.mem[pa : pa + size] = value.to_bytes(size, "little")

    def _get(self, pa: int, size: int) -> int:
        return int.from_bytes(self.mem[pa : pa + size], "little")

    def _table(self, entry_pa: int, size: int) -> int:
        entry = self._get(entry_pa, size)
        if entry & 1:
            return entry & (0x000FFFFFFFFFF000 if size == 8 else 0xFFFFF000)
        table = self.alloc()
        self._put(entry_pa, size, table | 0x63)
        return table

    def map(self, va: int, pa: int, large: bool = False, nx: bool = False) -> None:
        """Map one 4 KiB page, or one large page (2 MiB; 4 MiB on non-PAE) when ``large``."""
        flags = (0xE3 if large else 0x63) | ((1 << 63) if nx and self.mode != "x86" else 0)
        if self.mode == "x64":
            pdpt = self._table(self.dtb + ((va >> 39) & 0x1FF) * 8, 8)
            pd = self._table(pdpt + ((va >> 30) & 0x1FF) * 8, 8)
            if large:
                self._put(pd + ((va >> 21) & 0x1FF) * 8, 8, pa | flags)
            else:
                pt = self._table(pd + ((va >> 21) & 0x1FF) * 8, 8)
                self._put(pt + ((va >> 12) & 0x1FF) * 8, 8, pa | flags)
        elif self.mode == "pae":
            pd = self._get(self.dtb + ((va >> 30) & 3) * 8, 8) & 0x000FFFFFFFFFF000
            if large:
                self._put(pd + ((va >> 21) & 0x1FF) * 8, 8, pa | flags)
            else:
                pt = self._table(pd + ((va >> 21) & 0x1FF) * 8, 8)
                self._put(pt + ((va >> 12) & 0x1FF) * 8, 8, pa | flags)
        elif large:
            self._put(self.dtb + ((va >> 22) & 0x3FF) * 4, 4, pa | flags)
        else:
            pt = self._table(self.dtb + ((va >> 22) & 0x3FF) * 4, 4)
            self._put(pt + ((va >> 12) & 0x3FF) * 4, 4, pa | flags)
        span = (0x400000 if self.mode == "x86" else 0x200000) if large else PAGE
        for off in range(0, span, PAGE):
            self.va_to_pa[va + off] = pa + off

    def write(self, va: int, data: bytes) -> None:
        """Write through the builder's own mapping (pages may be physically scattered)."""
        pos = 0
        while pos < len(data):
            page_pa = self.va_to_pa[(va + pos) & ~0xFFF]
            off = (va + pos) & 0xFFF
            take = min(len(data) - pos, PAGE - off)
            self.mem[page_pa + off : page_pa + off + take] = data[pos : pos + take]
            pos += take

    def pa(self, va: int) -> int:
        return self.va_to_pa[va & ~0xFFF] | (va & 0xFFF)


def _pe_image(arch: str, exports: dict[str, int]) -> tuple[bytes, bytes]:
    """Headers of a minimal PE image: MZ, PE, optional header, three sections, export table."""
    head = bytearray(PAGE)
    head[0:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x80)
    head[0x80:0x84] = b"PE\0\0"
    pe64 = arch == "x64"
    opt_size = 0xF0 if pe64 else 0xE0
    struct.pack_into("<HHIIIHH", head, 0x84, 0x8664 if pe64 else 0x14C, 3, 0x5F000000, 0, 0, opt_size, 0x22)
    opt = 0x98
    struct.pack_into("<H", head, opt, 0x20B if pe64 else 0x10B)
    struct.pack_into("<I", head, opt + 0x38, IMAGE_SIZE)
    dirs = opt + (0x70 if pe64 else 0x60)
    struct.pack_into("<I", head, dirs - 4, 16)  # NumberOfRvaAndSizes
    struct.pack_into("<II", head, dirs, RDATA_RVA, 0x400)  # export directory
    sections = opt + opt_size
    for i, (name, rva, size) in enumerate(
        ((b".text", TEXT_RVA, TEXT_SIZE), (b".rdata", RDATA_RVA, RDATA_SIZE), (b".data", DATA_RVA, DATA_SIZE))
    ):
        struct.pack_into("<8sIIII", head, sections + i * 40, name, size, rva, size, rva)
    return bytes(head), _export_table(exports)


def _export_table(exports: dict[str, int]) -> bytes:
    names = sorted(exports)
    table = bytearray(0x400)
    funcs_off, names_off, ords_off, strings_off = 0x40, 0x80, 0xC0, 0x100
    strings = bytearray(b"ntoskrnl.exe\0")
    name_rvas = []
    for name in names:
        name_rvas.append(RDATA_RVA + strings_off + len(strings))
        strings += name.encode() + b"\0"
    struct.pack_into(
        "<IIHHIIIIIII",
        table,
        0,
        0,
        0,
        0,
        0,
        RDATA_RVA + strings_off,
        1,
        len(names),
        len(names),
        RDATA_RVA + funcs_off,
        RDATA_RVA + names_off,
        RDATA_RVA + ords_off,
    )
    for i, name in enumerate(names):
        struct.pack_into("<I", table, funcs_off + 4 * i, exports[name])
        struct.pack_into("<I", table, names_off + 4 * i, name_rvas[i])
        struct.pack_into("<H", table, ords_off + 2 * i, i)
    table[strings_off : strings_off + len(strings)] = strings
    return bytes(table)


def _rip_mov(insn_va: int, opcode: bytes, target: int) -> bytes:
    return opcode + struct.pack("<i", target - (insn_va + len(opcode) + 4))


def _context(arch: str, rng: random.Random, rip: int, rsp: int) -> tuple[bytes, dict[str, int]]:
    """A saved CONTEXT with plausible registers and zero segment selectors (docs/formats/crashdump.md
    §4.3)."""
    if arch == "x64":
        ctx = bytearray(0x4D0)
        regs = {name: rng.getrandbits(64) for name in ("rax", "rcx", "rdx", "rbx", "rsi", "rdi")}
        regs.update(rip=rip, rsp=rsp, rbp=rsp + 0x80, eflags=0x246)
        struct.pack_into("<II", ctx, 0x30, 0x0010001F, 0x1F80)
        struct.pack_into("<I", ctx, 0x118, 0x1F80)
        struct.pack_into("<I", ctx, 0x44, regs["eflags"])
        for name, off in (
            ("rax", 0x78),
            ("rcx", 0x80),
            ("rdx", 0x88),
            ("rbx", 0x90),
            ("rsp", 0x98),
            ("rbp", 0xA0),
            ("rsi", 0xA8),
            ("rdi", 0xB0),
            ("rip", 0xF8),
        ):
            struct.pack_into("<Q", ctx, off, regs[name])
    else:
        ctx = bytearray(0x2CC)
        regs = {name: rng.getrandbits(32) for name in ("eax", "ecx", "edx", "ebx", "esi", "edi")}
        regs.update(eip=rip, esp=rsp, ebp=rsp + 0x40, eflags=0x246)
        struct.pack_into("<I", ctx, 0, 0x00010007)
        for name, off in (
            ("edi", 0x9C),
            ("esi", 0xA0),
            ("ebx", 0xA4),
            ("edx", 0xA8),
            ("ecx", 0xAC),
            ("eax", 0xB0),
            ("ebp", 0xB4),
            ("eip", 0xB8),
            ("eflags", 0xC0),
            ("esp", 0xC4),
        ):
            struct.pack_into("<I", ctx, off, regs[name])
    return bytes(ctx), regs


def build_image(
    path: str | Path | None = None,
    *,
    mode: str = "x64",
    encoded: bool = False,
    low_stub: bool = True,
    size: int = 32 * MIB,
    cpus: int = 2,
    seed: int = 1,
) -> WindowsImage:
    """Build an image (and write it to ``path`` when given); return every value placed."""
    if encoded and mode != "x64":
        raise ValueError("only x64 Windows 8+ encodes its KDBG (docs/formats/crashdump.md §10.4)")
    prof = PROFILES["x64enc" if encoded else mode]
    arch = prof.arch
    rng = random.Random(seed)
    m = _Machine(mode, size)
    ptr = 8 if arch == "x64" else 4
    pack_ptr = (lambda v: struct.pack("<Q", v)) if ptr == 8 else (lambda v: struct.pack("<I", v))
    kb = prof.kernel_base

    # Kernel image: pages mapped in a scrambled physical order (so VA != PA + constant).
    pages = IMAGE_SIZE // PAGE
    for i in range(pages):
        m.map(kb + i * PAGE, KERNEL_PA + ((i * 173) % pages) * PAGE, nx=i * PAGE >= DATA_RVA)
    # Pool: one large page; KUSER_SHARED_DATA: one page; noise: unmapped random data.
    pool_pa = POOL_PA_X86 if mode == "x86" else POOL_PA
    m.map(prof.pool_va, pool_pa, large=True, nx=True)
    m.map(prof.kuser_va, KUSER_PA, nx=True)
    m.mem[NOISE_PA : NOISE_PA + MIB] = rng.randbytes(MIB)

    exports = {"KeSetTimer": KE_SET_TIMER_RVA, "KeSetTimerEx": KE_SET_TIMER_EX_RVA, "KeBugCheckEx": 0x4000}
    headers, export_table = _pe_image(arch, exports)
    m.write(kb, headers)
    m.write(kb + RDATA_RVA, export_table)
    m.write(kb + TEXT_RVA + 0x8000, rng.randbytes(0x4000))  # some code-like noise
    m.write(kb + DATA_RVA, rng.randbytes(DATA_SIZE))  # .data noise: scans must cope with it
    for rva in (LIST_HEAD_RVA, VERSION_BLOCK_RVA, KDP_ENCODED_RVA, LOADED_MODULES_RVA, PROCESSOR_BLOCK_RVA):
        m.write(kb + rva, bytes(0x100))

    # Timer routines: KeSetTimerEx calls KiSetTimerEx, which loads KiWaitNever, a decoy, KiWaitAlways.
    wait_never = rng.getrandbits(64) if encoded else None
    wait_always = rng.getrandbits(64) if encoded else None
    ki = kb + KI_SET_TIMER_EX_RVA
    code = bytearray(b"\x48\x89\x5c\x24\x08\x48\x83\xec\x20")
    code += _rip_mov(ki + len(code), b"\x48\x8b\x05", kb + KI_WAIT_NEVER_RVA)
    code += _rip_mov(ki + len(code), b"\x48\x8b\x0d", kb + DECOY_RVA)
    code += _rip_mov(ki + len(code), b"\x4c\x8b\x05", kb + KI_WAIT_ALWAYS_RVA)
    code += b"\x48\x33\xc1\x48\x83\xc4\x20\x5b\xc3"
    m.write(ki, bytes(code))
    ex = kb + KE_SET_TIMER_EX_RVA
    m.write(ex, b"\x48\x83\xec\x38" + b"\xe8" + struct.pack("<i", ki - (ex + 9)) + b"\x48\x83\xc4\x38\xc3")
    ks = kb + KE_SET_TIMER_RVA
    m.write(ks, b"\x45\x33\xc9\xe9" + struct.pack("<i", ex - (ks + 8)))
    if encoded:
        m.write(kb + KI_WAIT_NEVER_RVA, struct.pack("<Q", wait_never))
        m.write(kb + KI_WAIT_ALWAYS_RVA, struct.pack("<Q", wait_always))

    # Processors: KPCR/KPRCB in pool, an embedded CONTEXT and (Win7+) a pointed-to CONTEXT each.
    prcbs, ctx_ptrs, embedded, contexts = [], [], [], []
    for i in range(cpus):
        kpcr = prof.pool_va + 0x20000 * i
        prcb = kpcr + prof.prcb_in_pcr
        rip = kb + TEXT_RVA + 0x5000 + 0x10 * i
        rsp = prof.pool_va + 0x180000 + 0x2000 * i
        ctx, regs = _context(arch, rng, rip, rsp)
        contexts.append(regs)
        m.write(prcb + prof.proc_state_context, ctx)
        embedded.append(prcb + prof.proc_state_context)
        if prof.prcb_context is not None:
            ctx_va = prof.pool_va + 0x100000 + 0x1000 * i
            m.write(ctx_va, ctx)
            m.write(prcb + prof.prcb_context, pack_ptr(ctx_va))
            ctx_ptrs.append(ctx_va)
        else:
            ctx_ptrs.append(None)
        prcbs.append(prcb)
        m.write(kb + PROCESSOR_BLOCK_RVA + ptr * i, pack_ptr(prcb))

    # Lists: PsLoadedModuleList with one KLDR_DATA_TABLE_ENTRY; PsActiveProcessHead empty.
    head = kb + LOADED_MODULES_RVA
    entry = prof.pool_va + 0x140000
    name_va = entry + 0x200
    name = "ntoskrnl.exe".encode("utf-16-le")
    m.write(name_va, name)
    if arch == "x64":
        ldr = struct.pack("<QQ", head, head) + bytes(0x20) + struct.pack("<QQI", kb, kb + 0x1000, IMAGE_SIZE)
        ldr = ldr.ljust(0x48, b"\0") + struct.pack("<HHIQ", len(name), len(name), 0, name_va) * 2
    else:
        ldr = struct.pack("<II", head, head) + bytes(0x10) + struct.pack("<III", kb, kb + 0x1000, IMAGE_SIZE)
        ldr = ldr.ljust(0x24, b"\0") + struct.pack("<HHI", len(name), len(name), name_va) * 2
    m.write(entry, ldr)
    m.write(head, pack_ptr(entry) * 2)
    active = kb + ACTIVE_PROCESS_RVA
    m.write(active, pack_ptr(active) * 2)
    m.write(kb + PFN_VAR_RVA, pack_ptr(prof.pfn_database))

    # KDDEBUGGER_DATA64 (docs/formats/crashdump.md §10.1) and its debugger list head.
    kdbg_va = kb + KDBG_RVA
    list_head = kb + LIST_HEAD_RVA
    block = bytearray(prof.kdbg_size)
    if arch == "x64":
        struct.pack_into("<QQ", block, 0, list_head, list_head)
    else:
        struct.pack_into("<IIQ", block, 0, list_head, list_head, 0)  # a 32-bit LIST_ENTRY (§10.3 item 4)
    struct.pack_into("<II", block, 0x10, KDBG_TAG, prof.kdbg_size)
    for off, value in (
        (0x18, kb),
        (0x48, head),
        (0x50, active),
        (0xC0, kb + PFN_VAR_RVA),
        (0x218, kb + PROCESSOR_BLOCK_RVA),
        (0x1D0, 0xFFFF080000000000 if arch == "x64" else 0x80000000),
    ):
        struct.pack_into("<Q", block, off, _sx(value, arch))
    struct.pack_into("<H", block, 0x2BC, prof.proc_state_context)
    if prof.prcb_context is not None:
        struct.pack_into("<H", block, 0x338, prof.prcb_context)
    plain = bytes(block)
    m.write(list_head, pack_ptr(kdbg_va) * 2)
    encoded_flag_va = kb + KDP_ENCODED_RVA if encoded else None
    if encoded:
        m.write(kdbg_va, encode_kdbg(plain, wait_never, wait_always, encoded_flag_va))
        m.write(encoded_flag_va, b"\x01")
    else:
        m.write(kdbg_va, plain)

    # DBGKD_GET_VERSION64 (§10.2).
    machine = 0x8664 if arch == "x64" else 0x14C
    version = struct.pack(
        "<HHBBHHBBBBHQQQ",
        0xF,
        prof.build,
        6,
        2 if arch == "x64" else 0,
        0x47 if arch == "x64" else 0x43,
        machine,
        0x0C,
        0x03,
        0x2F,
        0,
        0,
        _sx(kb, arch),
        _sx(head, arch),
        _sx(list_head, arch),
    )
    m.write(kb + VERSION_BLOCK_RVA, version)

    # KUSER_SHARED_DATA (§12): InterruptTime +0x08, SystemTime +0x14, product +0x264, suite +0x2D0.
    system_time = datetime(2024, 5, 17, 13, 37, 42, 123456, tzinfo=timezone.utc)
    uptime = timedelta(hours=5, minutes=4, seconds=3, microseconds=250000)
    ticks = (system_time - FILETIME_EPOCH) // timedelta(microseconds=1) * 10
    up_ticks = uptime // timedelta(microseconds=1) * 10
    kuser = bytearray(PAGE)
    struct.pack_into("<IiI", kuser, 0x08, up_ticks & 0xFFFFFFFF, up_ticks >> 32, up_ticks >> 32)
    struct.pack_into("<IiI", kuser, 0x14, ticks & 0xFFFFFFFF, ticks >> 32, ticks >> 32)
    struct.pack_into("<I", kuser, 0x264, 1)
    struct.pack_into("<I", kuser, 0x2D0, 0x110)
    struct.pack_into("<I", kuser, 0x3C0, cpus)
    m.write(prof.kuser_va, bytes(kuser))

    # x64 low stub: PROCESSOR_START_BLOCK (§11 item 1).
    if mode == "x64" and low_stub:
        stub = bytearray(0x100)
        struct.pack_into("<Q", stub, 0, 0x00000001000600E9 | 0x4D00)
        struct.pack_into("<Q", stub, 0x70, kb + LM_STUB_RVA)
        struct.pack_into("<Q", stub, 0xA0, m.dtb)
        m.mem[STUB_PA : STUB_PA + len(stub)] = stub

    image = WindowsImage(
        path=Path(path) if path is not None else None,
        mode=mode,
        arch=arch,
        pae=mode == "pae" if arch == "x86" else None,
        size=size,
        dtb=m.dtb,
        encoded=encoded,
        low_stub=mode == "x64" and low_stub,
        kernel_base=kb,
        kernel_size=IMAGE_SIZE,
        kdbg_va=kdbg_va,
        kdbg_pa=m.pa(kdbg_va),
        kdbg_size=prof.kdbg_size,
        kdbg_plain=plain,
        kdp_data_block_encoded_va=encoded_flag_va,
        ki_wait_never=wait_never,
        ki_wait_always=wait_always,
        ps_loaded_module_list=head,
        ps_active_process_head=active,
        mm_pfn_database_va=kb + PFN_VAR_RVA,
        pfn_database=prof.pfn_database,
        ki_processor_block=kb + PROCESSOR_BLOCK_RVA,
        prcbs=prcbs,
        context_ptrs=ctx_ptrs,
        embedded_contexts=embedded,
        contexts=contexts,
        build=prof.build,
        system_time=system_time,
        system_uptime=uptime,
        product_type=1,
        suite_mask=0x110,
        kuser_va=prof.kuser_va,
        va_to_pa=m.va_to_pa,
        memory=bytes(m.mem),
    )
    if path is not None:
        Path(path).write_bytes(image.memory)
    return image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mode", choices=("x64", "pae", "x86"), default="x64")
    parser.add_argument("--encoded", action="store_true", help="x64 only: Windows 8+ encoded KDBG")
    parser.add_argument("--no-stub", action="store_true", help="x64: omit the low stub")
    parser.add_argument("--size-mib", type=int, default=32)
    args = parser.parse_args(argv)
    image = build_image(
        args.out, mode=args.mode, encoded=args.encoded, low_stub=not args.no_stub, size=args.size_mib * MIB
    )
    print(
        f"{args.out}: {image.mode} dtb={image.dtb:#x} kernel={image.kernel_base:#x} kdbg={image.kdbg_va:#x}"
    )


if __name__ == "__main__":
    main()
