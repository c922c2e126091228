"""Processors: KiProcessorBlock, each KPRCB's saved CONTEXT, and the WinDbg selector fix-ups.

KiProcessorBlock (KDBG+0x218) is an array of KPRCB pointers (u64 on x64, u32 on x86); the count is
the number of non-NULL entries before the first NULL, bounded at 64 / 32 (docs/formats/crashdump.md §12).
Each
KPRCB embeds a CONTEXT at OffsetPrcbProcStateContext (KDBG+0x2BC) and, on Windows 7 and later,
points to one at OffsetPrcbContext (KDBG+0x338) (§9.1).  WinDbg needs kernel segment selectors in
those records (§8, §9.1), so memory.dmp overlays them; this module says where and with what.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from memfs.kernel.kdbg import KI_PROCESSOR_BLOCK, OFFSET_PRCB_CONTEXT, OFFSET_PRCB_PROC_STATE_CONTEXT, Kdbg
from memfs.kernel.paging import AddressSpace
from memfs.windows_structs import CONTEXT_FIELDS, CONTEXT_SIZE, FLTSAVE_MXCSR, unpack_registers

MAX_PROCESSORS = {"x64": 64, "x86": 32}
CONTEXT_FULL = {"x64": 0x0010000B, "x86": 0x00010007}
_X64, _X86 = CONTEXT_FIELDS["x64"], CONTEXT_FIELDS["x86"]

# Selector fix-ups (docs/formats/crashdump.md §15.1 step 7, §15.3 step 5): (offset in CONTEXT, packed bytes).
# x64: SegCs, SegDs, SegEs, SegFs, SegGs, SegSs are consecutive u16.
# x86: SegGs, SegFs, SegEs, SegDs are consecutive u32; SegCs and SegSs u32 elsewhere.
SELECTOR_PATCHES = {
    "x64": ((_X64["cs"][0], struct.pack("<6H", 0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)),),
    "x86": (
        (_X86["gs"][0], struct.pack("<4I", 0, 0x30, 0x23, 0x23)),
        (_X86["cs"][0], struct.pack("<I", 0x08)),
        (_X86["ss"][0], struct.pack("<I", 0x10)),
    ),
}

# The registers registers() reads into ``metadata.context``, in display order: the general ones
# (those context_from_registers writes back), then flags and selectors.
_GENERAL = {
    "x64": (
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
    ),
    "x86": ("edi", "esi", "ebx", "edx", "ecx", "eax", "ebp", "eip", "eflags", "esp"),
}  # fmt: skip
_REGISTERS = {
    "x64": (*_GENERAL["x64"], "eflags", "cs", "ds", "es", "fs", "gs", "ss"),
    "x86": (*_GENERAL["x86"], "gs", "fs", "es", "ds", "cs", "ss"),
}


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
    return unpack_registers(context, 0, arch, _REGISTERS[arch])


def context_from_registers(regs: dict[str, int], arch: str) -> bytes:
    """A CONTEXT record holding the named registers a reader stated (e.g. a hibernation file's
    KPROCESSOR_STATE, docs/formats/hibernation.md §5); unnamed fields stay zero."""
    ctx = bytearray(CONTEXT_SIZE[arch])
    fields = CONTEXT_FIELDS[arch]
    for name in _GENERAL[arch]:
        if name in regs:
            off, fmt = fields[name]
            struct.pack_into(fmt, ctx, off, regs[name] & ((1 << (8 * struct.calcsize(fmt))) - 1))
    flags = regs.get("eflags", regs.get("rflags"))
    if flags is not None:
        struct.pack_into("<I", ctx, fields["eflags"][0], flags & 0xFFFFFFFF)
    struct.pack_into("<I", ctx, fields["context_flags"][0], CONTEXT_FULL[arch])
    return bytes(ctx)


def header_context(context: bytes | None, arch: str) -> bytes:
    """The CONTEXT for the dump header: kernel selectors, valid flags, kdmp-parser's MxCsr rule (§4.3)."""
    ctx = bytearray(context if context is not None else bytes(CONTEXT_SIZE[arch]))
    for off, data in SELECTOR_PATCHES[arch]:
        ctx[off : off + len(data)] = data
    flags_at = CONTEXT_FIELDS[arch]["context_flags"][0]
    (flags,) = struct.unpack_from("<I", ctx, flags_at)
    if flags & 0xFFFF0000 != CONTEXT_FULL[arch] & 0xFFFF0000:
        struct.pack_into("<I", ctx, flags_at, CONTEXT_FULL[arch])
    if arch == "x64":
        (fltsave_mxcsr,) = struct.unpack_from("<I", ctx, FLTSAVE_MXCSR)
        struct.pack_into("<I", ctx, _X64["mxcsr"][0], fltsave_mxcsr)  # CONTEXT.MxCsr must equal FltSave.MxCsr
    return bytes(ctx)
