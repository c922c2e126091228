"""On-disk structures of Windows kernel crash dumps (MEMORY.DMP), as construct definitions.

Offsets and field names follow ``docs/formats/crashdump.md`` (§2 DUMP_HEADER32, §3 DUMP_HEADER64,
§4 embedded structures, §6 per-DumpType headers); field names are the Windows ones, verbatim.
These are parsed once per open; nothing here is on a per-page path.

The structs are the single statement of every offset: the byte offsets other modules need (the
reader's error messages, the ``memory.dmp`` writer, CONTEXT register tables) are computed from them
with :func:`offset_of` / :func:`size_of` at import time.
"""

from __future__ import annotations

import struct

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Int64sl, Int64ul, Padding, Struct


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


# -- constants (crashdump.md §5.1, §5.2, §4.4, §5.5) ------------------------------------------

SIGNATURE = b"PAGE"
VALID_DUMP32 = b"DUMP"
VALID_DUMP64 = b"DU64"
HEADER32_SIZE = 0x1000
HEADER64_SIZE = 0x2000

FILLER32 = 0x45474150  # 'PAGE' read as a little-endian DWORD (§7)
FILLER64 = 0x4547415045474150

MAX_RUNS32 = 86  # (700 - 8) / 8 (§4.1)
MAX_RUNS64 = 43  # 42 inside the declared 700 bytes, 43 using the 4 alignment bytes (§4.1, §16 q.10)

DUMP_TYPE_NAMES = {
    1: "DUMP_TYPE_FULL",
    2: "DUMP_TYPE_SUMMARY",
    3: "DUMP_TYPE_HEADER",
    4: "DUMP_TYPE_TRIAGE",
    5: "DUMP_TYPE_BITMAP_FULL",
    6: "DUMP_TYPE_BITMAP_KERNEL",
    7: "DUMP_TYPE_AUTOMATIC",
    8: "KernelMemoryDump (RDMP, .dump /k)",
    9: "KernelAndUserMemoryDump (RDMP, .dump /ka)",
    0xA: "CompleteMemoryDump (RDMP, .dump /f)",
}

MACHINE_TYPES = {0x014C: "I386", 0x8664: "AMD64", 0xAA64: "ARM64"}
MACHINE_BY_ARCH = {"x86": 0x014C, "x64": 0x8664, "arm64": 0xAA64}
"""MachineImageType (IMAGE_FILE_MACHINE_*) of each ``Metadata.arch``."""
ARCH_BY_MACHINE = {machine: arch for arch, machine in MACHINE_BY_ARCH.items()}
PRODUCT_TYPES = {1: "VER_NT_WORKSTATION", 2: "VER_NT_DOMAIN_CONTROLLER", 3: "VER_NT_SERVER"}

ATTRIBUTE_BITS = [
    "HiberCrash",
    "DumpDevicePowerOff",
    "InsufficientDumpfileSize",
    "KernelGeneratedTriageDump",
    "LiveDumpGeneratedDump",
    "DumpIsGeneratedOffline",
    "FilterDumpFile",
    "EarlyBootCrash",
    "EncryptedDumpData",
    "DecryptedDump",
]
ATTRIBUTE_ENCRYPTED = 1 << 8

BITMAP_SIGNATURES = {b"SDMP": "summary (kernel) bitmap", b"FDMP": "full bitmap"}
BITMAP_VALID = b"DUMP"
RDMP_MARKER = 0x40
RDMP_SIGNATURE = b"RDMP"
RDMP_VALID = b"DUMP"
TRIAGE_VALID = b"TRGD"  # 'DGRT' as a DWORD

# -- §4.1 physical memory descriptor ---------------------------------------------------------

PHYSICAL_MEMORY_RUN32 = Struct("BasePage" / Int32ul, "PageCount" / Int32ul)
PHYSICAL_MEMORY_RUN64 = Struct("BasePage" / Int64ul, "PageCount" / Int64ul)

PHYSICAL_MEMORY_DESCRIPTOR32 = Struct(
    "NumberOfRuns" / Int32ul,
    "NumberOfPages" / Int32ul,
    "Run" / Array(MAX_RUNS32, PHYSICAL_MEMORY_RUN32),
    Padding(4),
)  # the 700-byte PhysicalMemoryBlockBuffer union

PHYSICAL_MEMORY_DESCRIPTOR64 = Struct(
    "NumberOfRuns" / Int32ul,
    Padding(4),
    "NumberOfPages" / Int64ul,
    "Run" / Array(MAX_RUNS64, PHYSICAL_MEMORY_RUN64),
)  # the 700-byte union plus its 4 alignment bytes (0x2C0 in all)

# -- §4.2 exception records ------------------------------------------------------------------

EXCEPTION_RECORD32 = Struct(
    "ExceptionCode" / Int32ul,
    "ExceptionFlags" / Int32ul,
    "ExceptionRecord" / Int32ul,
    "ExceptionAddress" / Int32ul,
    "NumberParameters" / Int32ul,
    "ExceptionInformation" / Array(15, Int32ul),
)

EXCEPTION_RECORD64 = Struct(
    "ExceptionCode" / Int32ul,
    "ExceptionFlags" / Int32ul,
    "ExceptionRecord" / Int64ul,
    "ExceptionAddress" / Int64ul,
    "NumberParameters" / Int32ul,
    "_alignment" / Int32ul,
    "ExceptionInformation" / Array(15, Int64ul),
)

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


# -- §2 DUMP_HEADER32 (0x1000 bytes) ---------------------------------------------------------

DUMP_HEADER32 = Struct(
    "Signature" / Bytes(4),
    "ValidDump" / Bytes(4),
    "MajorVersion" / Int32ul,
    "MinorVersion" / Int32ul,
    "DirectoryTableBase" / Int32ul,
    "PfnDataBase" / Int32ul,
    "PsLoadedModuleList" / Int32ul,
    "PsActiveProcessHead" / Int32ul,
    "MachineImageType" / Int32ul,
    "NumberProcessors" / Int32ul,
    "BugCheckCode" / Int32ul,
    "BugCheckParameter1" / Int32ul,
    "BugCheckParameter2" / Int32ul,
    "BugCheckParameter3" / Int32ul,
    "BugCheckParameter4" / Int32ul,
    "VersionUser" / Bytes(32),
    "PaeEnabled" / Int8ul,
    "KdSecondaryVersion" / Int8ul,
    "Spare3" / Bytes(2),
    "KdDebuggerDataBlock" / Int32ul,
    "PhysicalMemoryBlock" / PHYSICAL_MEMORY_DESCRIPTOR32,  # 0x064
    "ContextRecord" / Bytes(1200),  # 0x320
    "Exception" / EXCEPTION_RECORD32,  # 0x7D0
    "Comment" / Bytes(128),  # 0x820
    "Attributes" / Int32ul,  # 0x8A0 (current SDK only)
    "BootId" / Int32ul,
    "_reserved0" / Bytes(1760),
    "DumpType" / Int32ul,  # 0xF88
    "MiniDumpFields" / Int32ul,
    "SecondaryDataState" / Int32ul,
    "ProductType" / Int32ul,
    "SuiteMask" / Int32ul,
    "WriterStatus" / Int32ul,
    "RequiredDumpSpace" / Int64sl,  # 0xFA0
    "_reserved2" / Bytes(16),
    "SystemUpTime" / Int64sl,  # 0xFB8
    "SystemTime" / Int64sl,  # 0xFC0
    "_reserved3" / Bytes(56),
)

# -- §3 DUMP_HEADER64 (0x2000 bytes) ---------------------------------------------------------

DUMP_HEADER64 = Struct(
    "Signature" / Bytes(4),
    "ValidDump" / Bytes(4),
    "MajorVersion" / Int32ul,
    "MinorVersion" / Int32ul,
    "DirectoryTableBase" / Int64ul,
    "PfnDataBase" / Int64ul,
    "PsLoadedModuleList" / Int64ul,
    "PsActiveProcessHead" / Int64ul,
    "MachineImageType" / Int32ul,
    "NumberProcessors" / Int32ul,
    "BugCheckCode" / Int32ul,
    "_padding0" / Int32ul,
    "BugCheckParameter1" / Int64ul,
    "BugCheckParameter2" / Int64ul,
    "BugCheckParameter3" / Int64ul,
    "BugCheckParameter4" / Int64ul,
    "VersionUser" / Bytes(32),
    "KdDebuggerDataBlock" / Int64ul,  # 0x080
    "PhysicalMemoryBlock" / PHYSICAL_MEMORY_DESCRIPTOR64,  # 0x088
    "ContextRecord" / Bytes(3000),  # 0x348
    "Exception" / EXCEPTION_RECORD64,  # 0xF00
    "DumpType" / Int32ul,  # 0xF98
    "_padding2" / Int32ul,
    "RequiredDumpSpace" / Int64sl,  # 0xFA0
    "SystemTime" / Int64sl,
    "Comment" / Bytes(128),  # 0xFB0
    "SystemUpTime" / Int64sl,  # 0x1030
    "MiniDumpFields" / Int32ul,
    "SecondaryDataState" / Int32ul,
    "ProductType" / Int32ul,
    "SuiteMask" / Int32ul,
    "WriterStatus" / Int32ul,
    "Unused1" / Int8ul,
    "KdSecondaryVersion" / Int8ul,  # 0x104D
    "Unused" / Bytes(2),
    "Attributes" / Int32ul,  # 0x1050 (current SDK only)
    "BootId" / Int32ul,
    "_reserved0" / Bytes(4008),
)

# Byte offsets the reader quotes in error messages, and where the run table sits (§4.1).
_QUOTED = ("PhysicalMemoryBlock", "ContextRecord", "DumpType", "Attributes")
OFFSETS32 = {name: offset_of(DUMP_HEADER32, name) for name in _QUOTED}
OFFSETS64 = {name: offset_of(DUMP_HEADER64, name) for name in _QUOTED}
RUN_TABLE_OFFSET = {
    32: OFFSETS32["PhysicalMemoryBlock"] + offset_of(PHYSICAL_MEMORY_DESCRIPTOR32, "Run"),
    64: OFFSETS64["PhysicalMemoryBlock"] + offset_of(PHYSICAL_MEMORY_DESCRIPTOR64, "Run"),
}
RUN_SIZE = {32: PHYSICAL_MEMORY_RUN32.sizeof(), 64: PHYSICAL_MEMORY_RUN64.sizeof()}

# -- §6.4 bitmap header of DumpTypes 5 and 6 (also the type-5-style DumpType 2) ----------------

BITMAP_DUMP = Struct(
    "Signature" / Bytes(4),  # 'SDMP' or 'FDMP'
    "ValidDump" / Bytes(4),  # 'DUMP'
    "DumpOptions" / Int32ul,
    "_reserved" / Bytes(0x14),
    "FirstPage" / Int64ul,  # V3: HeaderSize; absolute file offset of the first stored page
    "TotalPresentPages" / Int64ul,  # V3: Pages; number of set bits
    "Pages" / Int64ul,  # V3: BitmapSize; number of bits
)  # the bitmap follows at +0x38

# -- §6.2 the MS2 (Windows 2000/XP DDK) SUMMARY_DUMP with ULONG fields ------------------------

SUMMARY_DUMP32 = Struct(
    "Signature" / Bytes(4),
    "ValidDump" / Bytes(4),
    "DumpOptions" / Int32ul,
    "HeaderSize" / Int32ul,  # file offset of the first stored page
    "BitmapSize" / Int32ul,  # number of bits
    "Pages" / Int32ul,  # number of set bits
    "SizeOfBitMap" / Int32ul,  # RTL_BITMAP.SizeOfBitMap
    "_reserved0" / Int32ul,
)  # the bitmap follows at +0x20

SUMMARY_DUMP64 = Struct(
    "Signature" / Bytes(4),
    "ValidDump" / Bytes(4),
    "DumpOptions" / Int32ul,
    "HeaderSize" / Int32ul,
    "BitmapSize" / Int32ul,
    "Pages" / Int32ul,
    "SizeOfBitMap" / Int32ul,
    Padding(4),
    "_reserved0" / Int64ul,
)  # MS2's 64-bit variant (ULONG fields, ULONG64 reserved): the bitmap follows at +0x28 [unconfirmed]

# -- §6.5 RDMP header of DumpTypes 8, 9, 0xA -------------------------------------------------

RDMP_HEADER = Struct(
    "Marker" / Int32ul,  # 0x40
    "Signature" / Bytes(4),  # 'RDMP'
    "ValidDump" / Bytes(4),  # 'DUMP'
    "Unused" / Int32ul,
    "MetadataSize" / Int64ul,  # bytes from +0x20 to FirstPageOffset
    "FirstPageOffset" / Int64ul,  # absolute file offset of the first stored page
    # 0x20..0x2F: in complete (0xA) dumps these are the four fields below; in kernel dumps (8, 9)
    # their meaning is unknown (kdmp-parser calls them __Unknown1/2) [unconfirmed].
    "NumberOfRanges" / Int32ul,
    "Unknown1" / Int16ul,
    "Unknown2" / Int16ul,
    "TotalNumberOfPages" / Int64ul,
)  # the {BasePage, PageCount} range list follows at +0x30

# -- §6.3 TRIAGE_DUMP of DumpType 4 ----------------------------------------------------------

_TRIAGE_COMMON = [
    "ServicePackBuild" / Int32ul,
    "SizeOfDump" / Int32ul,
    "ValidOffset" / Int32ul,
    "ContextOffset" / Int32ul,
    "ExceptionOffset" / Int32ul,
    "MmOffset" / Int32ul,
    "UnloadedDriversOffset" / Int32ul,
    "PrcbOffset" / Int32ul,
    "ProcessOffset" / Int32ul,
    "ThreadOffset" / Int32ul,
    "CallStackOffset" / Int32ul,
    "SizeOfCallStack" / Int32ul,
    "DriverListOffset" / Int32ul,
    "DriverCount" / Int32ul,
    "StringPoolOffset" / Int32ul,
    "StringPoolSize" / Int32ul,
    "BrokenDriverOffset" / Int32ul,
    "TriageOptions" / Int32ul,
]

TRIAGE_DUMP32 = Struct(
    *_TRIAGE_COMMON,
    "TopOfStack" / Int32ul,
    "DataPageAddress" / Int32ul,
    "DataPageOffset" / Int32ul,
    "DataPageSize" / Int32ul,
    "DebuggerDataOffset" / Int32ul,
    "DebuggerDataSize" / Int32ul,
    "DataBlocksOffset" / Int32ul,
    "DataBlocksCount" / Int32ul,
)

TRIAGE_DUMP64 = Struct(
    *_TRIAGE_COMMON,
    "TopOfStack" / Int64ul,
    "ArchitectureSpecific" / Bytes(16),  # IA64 BStore; unused on x64
    "DataPageAddress" / Int64ul,
    "DataPageOffset" / Int32ul,
    "DataPageSize" / Int32ul,
    "DebuggerDataOffset" / Int32ul,
    "DebuggerDataSize" / Int32ul,
    "DataBlocksOffset" / Int32ul,
    "DataBlocksCount" / Int32ul,
)
