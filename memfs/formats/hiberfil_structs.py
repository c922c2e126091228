"""Hibernation-file layouts as data: per-version header offsets, range-table shapes, processor state.

Nothing here reads a file.  Each layout is keyed by what a header itself says (architecture from the
PageSize position, ``LengthSelf``); the reader picks candidates from these tables and keeps the one whose
structures validate (docs/formats/hibernation.md §1.3).  Offsets come from docs/formats/hibernation.md §2.2,
§2.4, §2.5 (legacy)
and §3.2–§3.4 (modern); a layout's ``key`` is what ``OpenOptions.hiber_layout`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import Int32ul, Int64sl, Int64ul, Pointer, Struct

SIGNATURES = {
    b"hibr": "valid image (XP era, lower case)",
    b"HIBR": "valid image",
    b"wake": "system already resumed from this image (XP era)",
    b"WAKE": "system already resumed from this image",
    b"RSTR": "restore in progress or failed resume",
    b"BRKP": "debug break request (semantics undocumented)",
    b"HORM": "hibernate once, resume many",
}
"""First four bytes of a hibernation file and what they mean (docs/formats/hibernation.md §1.2)."""

XPRESS_MAGIC = b"\x81\x81xpress"
"""Legacy Xpress block header magic (docs/formats/hibernation.md §2.6)."""

# Architecture test (docs/formats/hibernation.md §1.3 step 2): PageSize sits at 0x18 on x64 and at 0x14 on
# x86.
PAGE_SIZE_OFFSET = {"x64": 0x18, "x86": 0x14}


@dataclass(frozen=True)
class TableLayout:
    """Shape of one legacy PO_MEMORY_RANGE_ARRAY page (docs/formats/hibernation.md §2.5)."""

    link_size: int  # the first range record starts here
    next_off: int
    count_off: int
    range_size: int
    start_off: int
    end_off: int
    wide: bool  # NextTable / StartPage / EndPage are u64 (x64) instead of u32
    max_entries: int  # a full table has exactly this many entries; only a full table chains on


T_X86_OLD = TableLayout(0x10, 0x4, 0xC, 0x10, 0x4, 0x8, False, 0xFF)  # XP/2003 x86, Vista SP0/SP1 x86
T_X86_VISTA_SP2 = TableLayout(0xC, 0x4, 0x8, 0x8, 0x0, 0x4, False, 0x1FE)
T_X86_WIN7 = TableLayout(0x8, 0x0, 0x4, 0x8, 0x0, 0x4, False, 0x1FF)
T_X64_OLD = TableLayout(0x20, 0x8, 0x14, 0x20, 0x8, 0x10, True, 0x7F)  # 2003/XP x64, Vista SP0/SP1 x64
T_X64_VISTA_SP2 = TableLayout(0x18, 0x8, 0x10, 0x10, 0x0, 0x8, True, 0xFE)
T_X64_WIN7 = TableLayout(0x10, 0x0, 0x8, 0x10, 0x0, 0x8, True, 0xFF)

ALL_TABLE_LAYOUTS = (T_X86_OLD, T_X86_VISTA_SP2, T_X86_WIN7, T_X64_OLD, T_X64_VISTA_SP2, T_X64_WIN7)


@dataclass(frozen=True)
class LegacyLayout:
    """PO_MEMORY_IMAGE of XP … 7 (docs/formats/hibernation.md §2.2) plus its table shape and processor page
    (§2.4)."""

    key: str
    name: str
    arch: str
    length_self: int
    os_version: tuple[int, int]
    system_time: int
    first_table_page: int
    table: TableLayout
    proc_page: int

    @property
    def wide(self) -> bool:
        return self.arch == "x64"


# fmt: off
LEGACY_LAYOUTS = (
    LegacyLayout("xp-x86", "Windows XP / Server 2003 x86", "x86", 0xA8, (5, 1), 0x20, 0x58, T_X86_OLD, 2),
    LegacyLayout("2003-x64", "Windows XP x64 / 2003 x64", "x64", 0xC0, (5, 2), 0x20, 0x68, T_X64_OLD, 2),
    LegacyLayout("vista-sp0-x86", "Windows Vista SP0 x86", "x86", 0xE0, (6, 0), 0x18, 0x50, T_X86_OLD, 4),
    LegacyLayout("vista-sp1-x86", "Windows Vista SP1 x86", "x86", 0xF0, (6, 0), 0x18, 0x50, T_X86_OLD, 1),
    LegacyLayout(
        "vista-sp2-x86", "Windows Vista SP2 x86", "x86", 0xF0, (6, 0), 0x18, 0x50, T_X86_VISTA_SP2, 1
    ),
    LegacyLayout("vista-sp0-x64", "Windows Vista SP0 x64", "x64", 0x128, (6, 0), 0x20, 0x68, T_X64_OLD, 4),
    LegacyLayout("vista-sp1-x64", "Windows Vista SP1 x64", "x64", 0x140, (6, 0), 0x20, 0x68, T_X64_OLD, 1),
    LegacyLayout(
        "vista-sp2-x64", "Windows Vista SP2 x64", "x64", 0x138, (6, 0), 0x20, 0x68, T_X64_VISTA_SP2, 1
    ),
    LegacyLayout("win7-x86", "Windows 7 / 2008 R2 x86", "x86", 0xE0, (6, 1), 0x18, 0x4C, T_X86_WIN7, 1),
    LegacyLayout("win7-x64", "Windows 7 / 2008 R2 x64", "x64", 0x128, (6, 1), 0x20, 0x60, T_X64_WIN7, 1),
)
# fmt: on


@dataclass(frozen=True)
class ModernLayout:
    """PO_MEMORY_IMAGE of Windows 8 … 11 24H2: the fields the index needs (docs/formats/hibernation.md §3.2,
    §3.3).

    ``builds`` lists the builds known to write this LengthSelf; ``os_build`` is set only when it is one.
    """

    key: str
    name: str
    arch: str
    length_self: int
    builds: tuple[int, ...]
    os_version: tuple[int, int]
    system_time: int
    num_pages_for_loader: int  # u64 on both architectures
    first_boot_page: int
    first_kernel_page: int
    kernel_pages_processed: int  # u64, inside PerfInfo
    boot_pages_processed: int | None
    highest_physical_page: int
    hv_cr3: int | None  # HvCr3 / HvPageTableRoot: hypervisor resume value, shown but never trusted
    processor_count: int | None = None  # 24H2 PerfInfo.ProcessorCount (u32)

    @property
    def wide(self) -> bool:
        """Page-number fields are u64 on x64 and u32 on x86 (LC's ``f32``)."""
        return self.arch == "x64"


# fmt: off
_W10 = (10, 0)
MODERN_LAYOUTS = (
    ModernLayout(
        "win8-x64", "Windows 8 / 8.1 x64", "x64", 0x360, (9200, 9600), (6, 2), 0x20, 0x58, 0x60, 0x68,
        0x1C8, 0x1C0, 0x330, 0x300,
    ),
    ModernLayout(
        "win10-1507-x64", "Windows 10 1507 / 1511 x64", "x64", 0x3B0, (10240, 10586), _W10, 0x20, 0x58,
        0x68, 0x70, 0x218, 0x210, 0x380, 0x350,
    ),
    ModernLayout(
        "win10-1607-x64", "Windows 10 1607 x64", "x64", 0x3C8, (14393,), _W10, 0x20, 0x58, 0x68, 0x70,
        0x220, 0x218, 0x388, 0x358,
    ),
    ModernLayout(
        "win10-1703-x64", "Windows 10 1703 - 1803 x64", "x64", 0x3D8, (15063, 16299, 17134), _W10, 0x20,
        0x58, 0x68, 0x70, 0x230, 0x228, 0x398, 0x368,
    ),
    ModernLayout(
        "win10-1809-x64", "Windows 10 1809 - 22H2 x64", "x64", 0x3E0, (17763, 18362, 18363, 19041), _W10,
        0x20, 0x58, 0x68, 0x70, 0x230, 0x228, 0x398, 0x368,
    ),
    ModernLayout(
        "win11-21h2-x64", "Windows 11 21H2 - 23H2 / Server 2022 x64", "x64", 0x448,
        (20348, 22000, 22621, 22631), _W10, 0x20, 0x58, 0x68, 0x70, 0x230, None, 0x400, 0x3D0,
    ),
    ModernLayout(
        "win11-24h2-x64", "Windows 11 24H2 x64", "x64", 0x4D8, (26100,), _W10, 0x20, 0x58, 0x68, 0x70,
        0x238, 0x230, 0x498, 0x468, processor_count=0x88 + 0x108,
    ),
    ModernLayout(
        "win8-x86", "Windows 8 / 8.1 x86", "x86", 0x2C8, (9200, 9600), (6, 2), 0x18, 0x48, 0x50, 0x54,
        0x1B0, 0x1A8, 0x2B0, 0x280,
    ),
    ModernLayout(
        "win10-1507-x86", "Windows 10 1507 / 1511 x86", "x86", 0x310, (10240, 10586), _W10, 0x18, 0x48,
        0x50, 0x54, 0x1F8, 0x1F0, 0x2F8, 0x2C8,
    ),
    ModernLayout(
        "win10-1607-x86", "Windows 10 1607 x86", "x86", 0x328, (14393,), _W10, 0x18, 0x48, 0x50, 0x54,
        0x200, 0x1F8, 0x300, 0x2D0,
    ),
    ModernLayout(
        "win10-1703-x86", "Windows 10 1703 - 1803 x86", "x86", 0x338, (15063, 16299, 17134), _W10, 0x18,
        0x48, 0x50, 0x54, 0x210, 0x208, 0x310, 0x2E0,
    ),
    ModernLayout(
        "win10-1809-x86", "Windows 10 1809 - 22H2 x86", "x86", 0x340, (17763, 18362, 18363, 19041), _W10,
        0x18, 0x48, 0x50, 0x54, 0x210, 0x208, 0x310, 0x2E0,
    ),
)

# fmt: on

LAYOUT_KEYS = tuple(lay.key for lay in LEGACY_LAYOUTS + MODERN_LAYOUTS)


def _word(wide: bool):
    return Int64ul if wide else Int32ul


def legacy_header_struct(layout: LegacyLayout) -> Struct:
    """construct definition of the legacy header fields memfs reads (docs/formats/hibernation.md §2.2)."""
    return Struct(
        "signature" / Pointer(0x0, Int32ul),
        "length_self" / Pointer(0xC, Int32ul),
        "page_size" / Pointer(PAGE_SIZE_OFFSET[layout.arch], Int32ul),
        "system_time" / Pointer(layout.system_time, Int64sl),
        # InterruptTime follows SystemTime in every legacy column of §2.2 (100 ns since boot).
        "interrupt_time" / Pointer(layout.system_time + 8, Int64ul),
        "first_table_page" / Pointer(layout.first_table_page, _word(layout.wide)),
    )


def modern_header_struct(layout: ModernLayout) -> Struct:
    """construct definition of the modern header fields memfs reads (docs/formats/hibernation.md §3.2,
    §3.3)."""
    fields = [
        "signature" / Pointer(0x0, Int32ul),
        "length_self" / Pointer(0xC, Int32ul),
        "page_size" / Pointer(PAGE_SIZE_OFFSET[layout.arch], Int32ul),
        "system_time" / Pointer(layout.system_time, Int64sl),
        "num_pages_for_loader" / Pointer(layout.num_pages_for_loader, Int64ul),
        "first_boot_page" / Pointer(layout.first_boot_page, _word(layout.wide)),
        "first_kernel_page" / Pointer(layout.first_kernel_page, _word(layout.wide)),
        "kernel_pages_processed" / Pointer(layout.kernel_pages_processed, Int64ul),
        "highest_physical_page" / Pointer(layout.highest_physical_page, _word(layout.wide)),
    ]
    if layout.boot_pages_processed is not None:
        fields.append("boot_pages_processed" / Pointer(layout.boot_pages_processed, Int64ul))
    if layout.hv_cr3 is not None:
        fields.append("hv_cr3" / Pointer(layout.hv_cr3, Int64ul))
    if layout.processor_count is not None:
        fields.append("processor_count" / Pointer(layout.processor_count, Int32ul))
    return Struct(*fields)


# -- KPROCESSOR_STATE (docs/formats/hibernation.md §2.4) -----------------------------------------------------

# x86: SpecialRegisters follow the CONTEXT (at +0x2cc); x64: SpecialRegisters first, CONTEXT at +0xe0
# (2003 … 10 1607) — the legacy pages memfs reads are always the first x64 variant.
KSTATE_X86_CR = {"cr0": 0x2CC, "cr2": 0x2D0, "cr3": 0x2D4, "cr4": 0x2D8}
KSTATE_X86_CONTEXT = 0x0
# fmt: off
# Registers read from the CONTEXT, in display order; their offsets: windows_structs.CONTEXT_FIELDS.
KSTATE_X86_REGISTERS = (
    "eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags",
    "cs", "ss", "ds", "es", "fs", "gs",
)  # all u32
KSTATE_X64_CR = {"cr0": 0x00, "cr2": 0x08, "cr3": 0x10, "cr4": 0x18}
KSTATE_X64_CONTEXT = 0xE0
KSTATE_X64_GENERAL = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip",
)  # u64, then EFlags (u32, shown as rflags) and the u16 selectors
KSTATE_X64_SELECTORS = ("cs", "ds", "es", "fs", "gs", "ss")
# fmt: on
