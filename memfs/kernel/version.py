"""DBGKD_GET_VERSION64 (nt!KdVersionBlock): the OS build number and machine type (docs/formats/crashdump.md
§10.2).

As Volatility 2's raw2dmp does, the structure is found near the KDBG (its page, then ±8 pages) as
the place whose KernBase (+0x10) and PsLoadedModuleList (+0x18) equal the KDBG's; on x86 the
pointers are compared on their low 32 bits.  MinorVersion is the build, MajorVersion 0xF (free) or
0xC (checked) (§5.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from memfs.kernel.paging import AddressSpace
from memfs.memory import PAGE_SIZE
from memfs.windows_structs import ARCH_BY_MACHINE


@dataclass
class VersionBlock:
    """The fields of DBGKD_GET_VERSION64 a dump header uses."""

    va: int
    major: int
    minor: int
    kd_secondary_version: int
    machine_type: int


def find_version_block(
    space: AddressSpace, kdbg_va: int, kern_base: int, module_list: int
) -> VersionBlock | None:
    """Search the KDBG's page and the 8 pages either side for DBGKD_GET_VERSION64."""
    x86 = space.mode != "x64"
    key = struct.pack("<I", kern_base & 0xFFFFFFFF) if x86 else struct.pack("<Q", kern_base)
    page0 = kdbg_va & ~(PAGE_SIZE - 1)
    for delta in [0] + [d for k in range(1, 9) for d in (k, -k)]:
        page_va = page0 + delta * PAGE_SIZE
        page = space.read(page_va, PAGE_SIZE)
        if page is None:
            continue
        pos = page.find(key, 0x10)
        while pos != -1:
            start = pos - 0x10
            if start % 4 == 0 and pos + 0x10 <= PAGE_SIZE:
                major, minor, _, secondary, _, machine = struct.unpack_from("<HHBBHH", page, start)
                (modules,) = struct.unpack_from("<Q", page, pos + 8)
                if x86:
                    modules &= 0xFFFFFFFF
                if modules == module_list and major in (0xF, 0xC) and machine in ARCH_BY_MACHINE and minor:
                    return VersionBlock(page_va + start, major, minor, secondary, machine)
            pos = page.find(key, pos + 1)
    return None
