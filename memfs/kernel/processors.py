"""Processors: KiProcessorBlock, each KPRCB's saved CONTEXT, and the WinDbg selector fix-ups.

KiProcessorBlock (KDBG+0x218) is an array of KPRCB pointers (u64 on x64, u32 on x86); the count is
the number of non-NULL entries before the first NULL, bounded at 64 / 32 (crashdump.md §12).  Each
KPRCB embeds a CONTEXT at OffsetPrcbProcStateContext (KDBG+0x2BC) and, on Windows 7 and later,
points to one at OffsetPrcbContext (KDBG+0x338) (§9.1).  WinDbg needs kernel segment selectors in
those records (§8, §9.1), so memory.dmp overlays them; this module says where and with what.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from memfs.kernel.kdbg import KI_PROCESSOR_BLOCK, OFFSET_PRCB_CONTEXT, OFFSET_PRCB_PROC_STATE_CONTEXT, Kdbg
from memfs.kernel.paging import AddressSpace

CONTEXT_SIZE = {"x64": 0x4D0, "x86": 0x2CC}
MAX_PROCESSORS = {"x64": 64, "x86": 32}
CONTEXT_FULL = {"x64": 0x0010000B, "x86": 0x00010007}

# Selector fix-ups (crashdump.md §15.1 step 7, §15.3 step 5): (offset in CONTEXT, packed bytes).
# x64: SegCs, SegDs, SegEs, SegFs, SegGs, SegSs are consecutive u16 at +0x38.
# x86: SegGs, SegFs, SegEs, SegDs are consecutive u32 at +0x8C; SegCs u32 +0xBC; SegSs u32 +0xC8.
SELECTOR_PATCHES = {
    "x64": ((0x38, struct.pack("<6H", 0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)),),
    "x86": (
        (0x8C, struct.pack("<4I", 0, 0x30, 0x23, 0x23)),
        (0xBC, struct.pack("<I", 0x08)),
        (0xC8, struct.pack("<I", 0x10)),
    ),
}

_X64_REGS = (
    ("rax", 0x78),
    ("rcx", 0x80),
    ("rdx", 0x88),
    ("rbx", 0x90),
    ("rsp", 0x98),
    ("rbp", 0xA0),
    ("rsi", 0xA8),
    ("rdi", 0xB0),
    ("r8", 0xB8),
    ("r9", 0xC0),
    ("r10", 0xC8),
    ("r11", 0xD0),
    ("r12", 0xD8),
    ("r13", 0xE0),
    ("r14", 0xE8),
    ("r15", 0xF0),
    ("rip", 0xF8),
)
_X86_REGS = (
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
)


@dataclass
class Processor:
    """One CPU: its KPRCB and the CONTEXT records it holds or points to."""

    index: int
    prcb: int
    embedded_context_va: int | None
    context_ptr_va: int | None
    context: bytes | None  # the pointed-to CONTEXT if readable, else the embedded one


def proc_state_context_offset(kdbg: Kdbg, build: int | None) -> tuple[int, str]:
    """OffsetPrcbProcStateContext from the KDBG, else the fixed offsets B2D uses (§9.1, §13)."""
    value = kdbg.u16(OFFSET_PRCB_PROC_STATE_CONTEXT)
    if value:
        return value, "KDBG.OffsetPrcbProcStateContext"
    if kdbg.arch == "x64":
        return 0x40 + 0xE0, "fixed x64 offset KPRCB+0x120 (KDBG too old to carry it)"
    if build is not None and build >= 7000:
        return 0x18, "fixed x86 offset KPRCB+0x18 (build >= 7000)"
    return 0x1C, "fixed x86 offset KPRCB+0x1C (before Windows 7)"


def read_processors(space: AddressSpace, kdbg: Kdbg, build: int | None) -> tuple[list[Processor], str]:
    """Every processor listed in KiProcessorBlock, and a sentence on how contexts were located."""
    arch = kdbg.arch
    block = kdbg.ptr(KI_PROCESSOR_BLOCK)
    if not space.pointer_ok(block):
        return [], "KDBG.KiProcessorBlock is not a kernel pointer"
    embedded_off, how = proc_state_context_offset(kdbg, build)
    ptr_off = kdbg.u16(OFFSET_PRCB_CONTEXT) if kdbg.size >= OFFSET_PRCB_CONTEXT + 2 else None
    size = CONTEXT_SIZE[arch]
    processors = []
    for index in range(MAX_PROCESSORS[arch]):
        prcb = space.read_ptr(block + index * space.ptr_size)
        if not prcb or not space.pointer_ok(prcb):
            break
        embedded_va = prcb + embedded_off
        ctx_va = space.read_ptr(prcb + ptr_off) if ptr_off else None
        if ctx_va is not None and not space.pointer_ok(ctx_va):
            ctx_va = None
        context = space.read(ctx_va, size) if ctx_va is not None else None
        if context is None:
            context = space.read(embedded_va, size)
        processors.append(Processor(index, prcb, embedded_va, ctx_va, context))
    if ptr_off:
        how += f"; KPRCB.Context pointer at +{ptr_off:#x} (KDBG.OffsetPrcbContext)"
    return processors, how


def registers(context: bytes, arch: str) -> dict[str, int]:
    """Register values of a CONTEXT record, by lower-case name."""
    if arch == "x64":
        regs = {name: struct.unpack_from("<Q", context, off)[0] for name, off in _X64_REGS}
        regs["eflags"] = struct.unpack_from("<I", context, 0x44)[0]
        for name, off in (("cs", 0x38), ("ds", 0x3A), ("es", 0x3C), ("fs", 0x3E), ("gs", 0x40), ("ss", 0x42)):
            regs[name] = struct.unpack_from("<H", context, off)[0]
        return regs
    regs = {name: struct.unpack_from("<I", context, off)[0] for name, off in _X86_REGS}
    for name, off in (("gs", 0x8C), ("fs", 0x90), ("es", 0x94), ("ds", 0x98), ("cs", 0xBC), ("ss", 0xC8)):
        regs[name] = struct.unpack_from("<I", context, off)[0]
    return regs


def context_from_registers(regs: dict[str, int], arch: str) -> bytes:
    """A CONTEXT record holding the named registers a reader stated (e.g. a hibernation file's
    KPROCESSOR_STATE, hibernation.md §5); unnamed fields stay zero."""
    ctx = bytearray(CONTEXT_SIZE[arch])
    table, fmt = (_X64_REGS, "<Q") if arch == "x64" else (_X86_REGS, "<I")
    mask = (1 << (8 * struct.calcsize(fmt))) - 1
    for name, off in table:
        if name in regs:
            struct.pack_into(fmt, ctx, off, regs[name] & mask)
    flags = regs.get("eflags", regs.get("rflags"))
    if flags is not None:
        struct.pack_into("<I", ctx, 0x44 if arch == "x64" else 0xC0, flags & 0xFFFFFFFF)
    struct.pack_into("<I", ctx, 0x30 if arch == "x64" else 0, CONTEXT_FULL[arch])
    return bytes(ctx)


def header_context(context: bytes | None, arch: str) -> bytes:
    """The CONTEXT for the dump header: kernel selectors, valid flags, kdmp-parser's MxCsr rule (§4.3)."""
    ctx = bytearray(context if context is not None else bytes(CONTEXT_SIZE[arch]))
    for off, data in SELECTOR_PATCHES[arch]:
        ctx[off : off + len(data)] = data
    (flags,) = struct.unpack_from("<I", ctx, 0x30 if arch == "x64" else 0)
    if flags & 0xFFFF0000 != CONTEXT_FULL[arch] & 0xFFFF0000:
        struct.pack_into("<I", ctx, 0x30 if arch == "x64" else 0, CONTEXT_FULL[arch])
    if arch == "x64":
        (fltsave_mxcsr,) = struct.unpack_from("<I", ctx, 0x118)
        struct.pack_into("<I", ctx, 0x34, fltsave_mxcsr)  # CONTEXT.MxCsr must equal FltSave.MxCsr
    return bytes(ctx)
