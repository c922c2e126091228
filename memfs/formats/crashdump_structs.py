"""On-disk structures of Windows kernel crash dumps (MEMORY.DMP), as construct definitions.

Offsets and field names follow ``docs/formats/crashdump.md`` (§2 DUMP_HEADER32, §3 DUMP_HEADER64,
§4 embedded structures, §6 per-DumpType headers); field names are the Windows ones, verbatim.
These are parsed once per open; nothing here is on a per-page path.

The structs are the single statement of every offset: the byte offsets other modules need (the
reader's error messages, the ``memory.dmp`` writer) are computed from them with
:func:`~memfs.windows_structs.offset_of` / :func:`~memfs.windows_structs.size_of` at import time.
The CONTEXT record and the machine types, which the kernel and hibernation code use too, live in
:mod:`memfs.windows_structs`.
"""

from __future__ import annotations

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Int64sl, Int64ul, Padding, Struct

from memfs.windows_structs import offset_of

# -- constants (docs/formats/crashdump.md §5.1, §5.2, §4.4, §5.5) ------------------------------------------

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
