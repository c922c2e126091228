"""Windows structures shared by more than one layer: the CONTEXT record and the machine types.

The kernel-discovery code (:mod:`memfs.kernel`), the crash dump reader and writer, and the hibernation
reader all read or write a processor CONTEXT (``docs/formats/crashdump.md`` §4.3) and name an
architecture by its IMAGE_FILE_MACHINE_* value (§5.5), so these live here, below all of them, instead
of in one format's module.  Field names are the Windows ones, verbatim; the byte offsets other modules
need are computed from the construct definitions with :func:`offset_of` / :func:`size_of` at import.
"""

from __future__ import annotations

import struct

from construct import Bytes, Int8ul, Int16ul, Int32ul, Int64ul, Struct


def offset_of(struct_: Struct, name: str) -> int:
    """Byte offset of the field ``name`` in the fixed-size ``struct_`` (the sizes of the fields before it)."""
    offset = 0
    for sub in struct_.subcons:
        if sub.name == name:
            return offset
        offset += sub.sizeof()
    raise KeyError(name)


def size_of(struct_: Struct, name: str) -> int:
    """Byte size of the field ``name`` in ``struct_``."""
    for sub in struct_.subcons:
        if sub.name == name:
            return sub.sizeof()
    raise KeyError(name)


# -- machine types (docs/formats/crashdump.md §5.5) ----------------------------------------------------------

MACHINE_TYPES = {0x014C: "I386", 0x8664: "AMD64", 0xAA64: "ARM64"}
MACHINE_BY_ARCH = {"x86": 0x014C, "x64": 0x8664, "arm64": 0xAA64}
"""MachineImageType (IMAGE_FILE_MACHINE_*) of each ``Metadata.arch``."""
ARCH_BY_MACHINE = {machine: arch for arch, machine in MACHINE_BY_ARCH.items()}


# -- §4.3 CONTEXT records --------------------------------------------------------------------

XMM_SAVE_AREA32 = Struct(
    "ControlWord" / Int16ul,
    "StatusWord" / Int16ul,
    "TagWord" / Int8ul,
    "Reserved1" / Int8ul,
    "ErrorOpcode" / Int16ul,
    "ErrorOffset" / Int32ul,
    "ErrorSelector" / Int16ul,
    "Reserved2" / Int16ul,
    "DataOffset" / Int32ul,
    "DataSelector" / Int16ul,
    "Reserved3" / Int16ul,
    "MxCsr" / Int32ul,  # CONTEXT + 0x118: kdmp-parser requires it to equal CONTEXT.MxCsr (§4.3)
    "MxCsr_Mask" / Int32ul,
    "FloatRegisters" / Bytes(8 * 16),
    "XmmRegisters" / Bytes(16 * 16),
    "Reserved4" / Bytes(96),
)

CONTEXT_AMD64 = Struct(
    "P1Home" / Int64ul,
    "P2Home" / Int64ul,
    "P3Home" / Int64ul,
    "P4Home" / Int64ul,
    "P5Home" / Int64ul,
    "P6Home" / Int64ul,
    "ContextFlags" / Int32ul,
    "MxCsr" / Int32ul,
    "SegCs" / Int16ul,
    "SegDs" / Int16ul,
    "SegEs" / Int16ul,
    "SegFs" / Int16ul,
    "SegGs" / Int16ul,
    "SegSs" / Int16ul,
    "EFlags" / Int32ul,
    "Dr0" / Int64ul,
    "Dr1" / Int64ul,
    "Dr2" / Int64ul,
    "Dr3" / Int64ul,
    "Dr6" / Int64ul,
    "Dr7" / Int64ul,
    "Rax" / Int64ul,
    "Rcx" / Int64ul,
    "Rdx" / Int64ul,
    "Rbx" / Int64ul,
    "Rsp" / Int64ul,
    "Rbp" / Int64ul,
    "Rsi" / Int64ul,
    "Rdi" / Int64ul,
    "R8" / Int64ul,
    "R9" / Int64ul,
    "R10" / Int64ul,
    "R11" / Int64ul,
    "R12" / Int64ul,
    "R13" / Int64ul,
    "R14" / Int64ul,
    "R15" / Int64ul,
    "Rip" / Int64ul,
    "FltSave" / XMM_SAVE_AREA32,
    "VectorRegister" / Bytes(26 * 16),
    "VectorControl" / Int64ul,
    "DebugControl" / Int64ul,
    "LastBranchToRip" / Int64ul,
    "LastBranchFromRip" / Int64ul,
    "LastExceptionToRip" / Int64ul,
    "LastExceptionFromRip" / Int64ul,
)

FLOATING_SAVE_AREA = Struct(
    "ControlWord" / Int32ul,
    "StatusWord" / Int32ul,
    "TagWord" / Int32ul,
    "ErrorOffset" / Int32ul,
    "ErrorSelector" / Int32ul,
    "DataOffset" / Int32ul,
    "DataSelector" / Int32ul,
    "RegisterArea" / Bytes(80),
    "Cr0NpxState" / Int32ul,
)

CONTEXT_X86 = Struct(
    "ContextFlags" / Int32ul,
    "Dr0" / Int32ul,
    "Dr1" / Int32ul,
    "Dr2" / Int32ul,
    "Dr3" / Int32ul,
    "Dr6" / Int32ul,
    "Dr7" / Int32ul,
    "FloatSave" / FLOATING_SAVE_AREA,
    "SegGs" / Int32ul,
    "SegFs" / Int32ul,
    "SegEs" / Int32ul,
    "SegDs" / Int32ul,
    "Edi" / Int32ul,
    "Esi" / Int32ul,
    "Ebx" / Int32ul,
    "Edx" / Int32ul,
    "Ecx" / Int32ul,
    "Eax" / Int32ul,
    "Ebp" / Int32ul,
    "Eip" / Int32ul,
    "SegCs" / Int32ul,
    "EFlags" / Int32ul,
    "Esp" / Int32ul,
    "SegSs" / Int32ul,
    "ExtendedRegisters" / Bytes(512),
)

# Register names exposed as ``Metadata.context`` (lower case), in display order, per CONTEXT field.
CONTEXT_AMD64_REGISTERS = [
    ("rip", "Rip"), ("rsp", "Rsp"), ("rbp", "Rbp"),
    ("rax", "Rax"), ("rbx", "Rbx"), ("rcx", "Rcx"), ("rdx", "Rdx"), ("rsi", "Rsi"), ("rdi", "Rdi"),
    ("r8", "R8"), ("r9", "R9"), ("r10", "R10"), ("r11", "R11"),
    ("r12", "R12"), ("r13", "R13"), ("r14", "R14"), ("r15", "R15"),
    ("cs", "SegCs"), ("ds", "SegDs"), ("es", "SegEs"), ("fs", "SegFs"), ("gs", "SegGs"), ("ss", "SegSs"),
    ("eflags", "EFlags"), ("mxcsr", "MxCsr"), ("context_flags", "ContextFlags"),
    ("dr0", "Dr0"), ("dr1", "Dr1"), ("dr2", "Dr2"), ("dr3", "Dr3"), ("dr6", "Dr6"), ("dr7", "Dr7"),
]  # fmt: skip
CONTEXT_X86_REGISTERS = [
    ("eip", "Eip"), ("esp", "Esp"), ("ebp", "Ebp"),
    ("eax", "Eax"), ("ebx", "Ebx"), ("ecx", "Ecx"), ("edx", "Edx"), ("esi", "Esi"), ("edi", "Edi"),
    ("cs", "SegCs"), ("ds", "SegDs"), ("es", "SegEs"), ("fs", "SegFs"), ("gs", "SegGs"), ("ss", "SegSs"),
    ("eflags", "EFlags"), ("context_flags", "ContextFlags"),
    ("dr0", "Dr0"), ("dr1", "Dr1"), ("dr2", "Dr2"), ("dr3", "Dr3"), ("dr6", "Dr6"), ("dr7", "Dr7"),
]  # fmt: skip

_INT_FORMATS = {2: "<H", 4: "<I", 8: "<Q"}


def _register_fields(struct_: Struct, registers: list[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    return {
        name: (offset_of(struct_, field), _INT_FORMATS[size_of(struct_, field)]) for name, field in registers
    }


CONTEXT_FIELDS = {
    "x64": _register_fields(CONTEXT_AMD64, CONTEXT_AMD64_REGISTERS),
    "x86": _register_fields(CONTEXT_X86, CONTEXT_X86_REGISTERS),
}
"""Where each register (lower-case name) sits in a CONTEXT record, per arch: ``(offset, struct format)``."""
CONTEXT_SIZE = {"x64": CONTEXT_AMD64.sizeof(), "x86": CONTEXT_X86.sizeof()}
FLTSAVE_MXCSR = offset_of(CONTEXT_AMD64, "FltSave") + offset_of(XMM_SAVE_AREA32, "MxCsr")
"""Offset of FltSave.MxCsr in an x64 CONTEXT (0x118, §4.3)."""


def unpack_registers(data: bytes, base: int, arch: str, names: tuple[str, ...]) -> dict[str, int]:
    """The registers ``names``, in that order, of the CONTEXT record at ``data[base:]``."""
    fields = CONTEXT_FIELDS[arch]
    return {name: struct.unpack_from(fields[name][1], data, base + fields[name][0])[0] for name in names}
