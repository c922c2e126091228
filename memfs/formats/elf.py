"""ELF core files of whole machines: QEMU ``dump-guest-memory``, VirtualBox ``dumpvmcore``, kdump.

Structure relied on (sources in brackets):

* ELF header: ``e_ident`` = 0x7f "ELF", class (1 = 32-bit, 2 = 64-bit), data (1 = little, 2 = big
  endian); then ``e_type`` (4 = ET_CORE), ``e_machine`` (3 = EM_386, 62 = EM_X86_64,
  183 = EM_AARCH64), ``e_phoff``, ``e_phentsize``, ``e_phnum``.  Elf32_Ehdr is 52 bytes, Elf64_Ehdr
  64; program headers are 32 / 56 bytes [System V gABI, "ELF Header" and "Program Header";
  volatility3 ``symbols/linux/elf.json``].  When ``e_phnum`` is PN_XNUM (0xffff) the real count is
  ``sh_info`` of section header 0 [gABI, "Section Header", extended numbering; QEMU ``dump.c``
  writes it that way for guests with more than 65534 blocks].
* Memory is in PT_LOAD (1) segments: ``p_filesz`` bytes at ``p_offset`` are the physical memory at
  ``p_paddr`` [QEMU ``dump.c`` ``write_elf64_load``; VirtualBox ``DBGFCoreWrite.cpp``
  ``Elf64WriteProgHdr(..., GCPhysStart)``; volatility3 ``layers/elf.py`` maps p_paddr].  A PT_LOAD
  with ``p_filesz`` 0 is a range with no data: VirtualBox writes its MMIO ranges that way
  (``cbFileRange = fIsMmio ? 0 : cbMemRange``), and ``p_memsz`` beyond ``p_filesz`` reads as zeros.
* Notes (PT_NOTE, 4): ``n_namesz``, ``n_descsz``, ``n_type`` (u32 each, for both classes), then the
  name and the descriptor, each padded to 4 bytes [gABI "Note Section"].
* QEMU writes, per CPU, a "CORE" NT_PRSTATUS (type 1) note, then per CPU a "QEMU" note of type 0
  holding ``QEMUCPUState``: u32 version, u32 size, u64 rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip
  rflags, ten segments {u32 selector, limit, flags, pad; u64 base} (cs ds es fs gs ss ldt tr gdt
  idt), u64 cr[5]; 432 bytes in version 1 [QEMU ``target/i386/arch_dump.c``].  QEMU writes
  EM_X86_64 exactly when the first CPU is in long mode (``cpu_get_dump_info``), else EM_386.
* VirtualBox writes one "VBCORE" note of type 0xb00 with DBGFCOREDESCRIPTOR {u32 magic 0xc01ac0de,
  u32 format version, u32 cbSelf, u32 VBox version (major<<24 | minor<<16 | build), u32 revision,
  u32 cCpus}, then per CPU a "VBCPU" note of type 0xb01 with DBGFCORECPU: u64 rax rbx rcx rdx rsi
  rdi r8..r15 rip rsp rbp rflags, six 24-byte selectors (cs ds es fs gs ss), u64 cr0 cr2 cr3 cr4,
  u64 dr[8], gdtr/idtr {u64 addr; u32 limit; u32 pad}, ldtr, tr, sysenter {cs, eip, esp}, u64
  msrEFER, ... [VirtualBox ``include/VBox/vmm/dbgfcorefmt.h``; note names and types from
  ``DBGFCoreWrite.cpp`` and Volatility 2 ``vboxelf.py``].  Its ``e_machine`` is the *host* build's,
  so the guest mode comes from EFER.LMA (bit 10) instead.

From a QEMU or VirtualBox register note, CPU 0's CR3 becomes ``metadata.directory_table_base`` and
its registers ``metadata.context`` (what ``memory.dmp`` needs).  Cores without physical addresses
(every ``p_paddr`` 0, i.e. process cores) are refused rather than mounted wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from memfs.byte_source import ByteSource
from memfs.exceptions import CorruptionError, FormatError, at
from memfs.formats.base import FormatSpec, OpenOptions, ProbeInput
from memfs.formats.segmented import Segment, SegmentedFileSource
from memfs.memory import MAX_PROCESSORS, PHYSICAL_LIMIT, Section

ELF_MAGIC = b"\x7fELF"
ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
PN_XNUM = 0xFFFF
MACHINES = {3: ("x86", "EM_386"), 62: ("x64", "EM_X86_64"), 183: ("arm64", "EM_AARCH64")}
ELF_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}

NT_QEMUCPUSTATE = 0  # name "QEMU"
NT_VBOXCORE = 0xB00  # name "VBCORE"
NT_VBOXCPU = 0xB01  # name "VBCPU"
DBGFCORE_MAGIC = 0xC01AC0DE

MAX_NOTES_BYTES = 16 << 20  # notes are a few KiB per CPU; refuse to read absurd PT_NOTE sizes
MAX_NOTES = 1 << 14
MAX_PHNUM = 1 << 20  # QEMU writes one PT_LOAD per guest memory block: thousands at most
MAX_LISTED_NOTES = 64

QEMU_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp") + tuple(f"r{i}" for i in range(8, 16))
QEMU_SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt")
QEMU_STATE_SIZE = 8 + 18 * 8 + 10 * 24 + 5 * 8  # 432, arch_dump.c QEMUCPUState version 1
VBOX_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi") + tuple(f"r{i}" for i in range(8, 16))
VBOX_GPRS += ("rip", "rsp", "rbp", "eflags")
VBOX_CR_OFFSET = 18 * 8 + 6 * 24  # cr0 follows 18 u64 and six DBGFCORESEL
VBOX_EFER_OFFSET = VBOX_CR_OFFSET + 4 * 8 + 8 * 8 + 2 * 16 + 2 * 24 + 3 * 8
EFER_LMA = 1 << 10
CR4_PAE = 1 << 5
# metadata.context uses the register names of the crash-dump CONTEXT (lower case): 32-bit names for
# a 32-bit guest, whose upper register halves (and r8-r15) mean nothing.
X86_NAMES = {f"r{n}": f"e{n}" for n in ("ax", "bx", "cx", "dx", "si", "di", "sp", "bp", "ip")}


def _context(regs: dict[str, int], arch: str | None) -> dict[str, int]:
    if arch != "x86":
        return dict(regs)
    return {
        X86_NAMES.get(name, name): value & 0xFFFFFFFF if name in X86_NAMES else value
        for name, value in regs.items()
        if not (name[:1] == "r" and name[1:].isdigit())
    }


@dataclass
class _Layout:
    """Struct layouts for one ELF class and byte order."""

    ehdr: struct.Struct
    phdr: struct.Struct
    shdr_info_offset: int
    shdr_size: int
    endian: str


def _layout(elf_class: int, endian: str) -> _Layout:
    if elf_class == 1:
        # e_type e_machine e_version e_entry e_phoff e_shoff e_flags e_ehsize e_phentsize e_phnum
        # e_shentsize e_shnum e_shstrndx
        return _Layout(
            ehdr=struct.Struct(endian + "16xHHIIIIIHHHHHH"),
            # p_type p_offset p_vaddr p_paddr p_filesz p_memsz p_flags p_align
            phdr=struct.Struct(endian + "IIIIIIII"),
            shdr_info_offset=28,
            shdr_size=40,
            endian=endian,
        )
    return _Layout(
        ehdr=struct.Struct(endian + "16xHHIQQQIHHHHHH"),
        # p_type p_flags p_offset p_vaddr p_paddr p_filesz p_memsz p_align
        phdr=struct.Struct(endian + "IIQQQQQQ"),
        shdr_info_offset=44,
        shdr_size=64,
        endian=endian,
    )


@dataclass
class _Note:
    offset: int
    name: str
    type: int
    desc: bytes


@dataclass
class _CpuState:
    producer: str
    regs: dict[str, int] = field(default_factory=dict)


class ElfSource(SegmentedFileSource):
    """An ELF core whose PT_LOAD segments are physical memory."""

    format_name = "elf"

    def __init__(self, data: ByteSource) -> None:
        super().__init__(data)
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    # -- parsing ----------------------------------------------------------------------------

    def _parse(self) -> None:
        ident = self._header_bytes(0, 16, "ELF identification")
        elf_class, data = ident[4], ident[5]
        if elf_class not in (1, 2):
            raise FormatError(at(self.name, 4, f"unknown ELF class {elf_class} (expected 1 or 2)"))
        if data not in (1, 2):
            raise FormatError(at(self.name, 5, f"unknown ELF data encoding {data} (expected 1 or 2)"))
        lay = _layout(elf_class, "<" if data == 1 else ">")
        self._layout = lay
        self.bits = 32 if elf_class == 1 else 64
        ehdr = lay.ehdr.unpack(self._header_bytes(0, lay.ehdr.size, f"ELF{self.bits} header"))
        e_type, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, _, e_shnum, _ = ehdr
        self.e_machine = e_machine
        if e_type != ET_CORE:
            kind = ELF_TYPES.get(e_type, f"type {e_type}")
            raise FormatError(at(self.name, 16, f"ELF file of {kind}, not a core dump (ET_CORE)"))
        if e_phnum == PN_XNUM:
            e_phnum = self._extended_phnum(e_shoff, e_shnum)
        if e_phentsize < lay.phdr.size:
            raise CorruptionError(
                at(
                    self.name,
                    16,
                    f"e_phentsize {e_phentsize} is smaller than a program header ({lay.phdr.size})",
                )
            )
        if e_phnum == 0:
            raise CorruptionError(at(self.name, 16, "ELF core has no program headers"))
        if e_phnum > MAX_PHNUM:
            raise CorruptionError(at(self.name, 16, f"{e_phnum} program headers (more than {MAX_PHNUM})"))
        table_len = e_phnum * e_phentsize
        if e_phoff + table_len > self.file_size:
            raise CorruptionError(
                at(
                    self.name,
                    e_phoff,
                    f"{e_phnum} program headers of {e_phentsize} bytes run past the end of the file "
                    f"({self.file_size:#x})",
                )
            )
        table = self._pread(e_phoff, table_len)
        segments: list[Segment] = []
        self._loads: list[tuple[int, int, int, int, int]] = []  # (pa, offset, filesz, memsz, origin)
        self._notes: list[_Note] = []
        self._note_problems: list[str] = []
        for index in range(e_phnum):
            origin = e_phoff + index * e_phentsize
            fields = lay.phdr.unpack_from(table, index * e_phentsize)
            if self.bits == 32:
                p_type, p_offset, _, p_paddr, p_filesz, p_memsz, _, _ = fields
            else:
                p_type, _, p_offset, _, p_paddr, p_filesz, p_memsz, _ = fields
            if p_type == PT_LOAD:
                end = p_paddr + max(p_filesz, p_memsz)
                if end > PHYSICAL_LIMIT:
                    raise CorruptionError(
                        at(
                            self.name,
                            origin,
                            f"PT_LOAD #{index} maps physical {p_paddr:#x}-{end:#x}, beyond the 52-bit "
                            "physical address space",
                        )
                    )
                self._loads.append((p_paddr, p_offset, p_filesz, p_memsz, origin))
                segments.append(Segment(p_paddr, p_offset, p_filesz, origin, f"PT_LOAD #{index}"))
            elif p_type == PT_NOTE:
                self._read_notes(p_offset, p_filesz, origin)
        with_data = [s for s in segments if s.length > 0]
        if len(with_data) > 1 and all(s.pa == 0 for s in with_data):
            raise FormatError(
                at(
                    self.name,
                    e_phoff,
                    "every PT_LOAD segment has physical address 0: a process core (or /proc/kcore), "
                    "not a physical memory dump",
                )
            )
        self._install_segments(segments)
        self._fill_metadata()

    def _header_bytes(self, offset: int, n: int, what: str) -> bytes:
        if self.file_size < offset + n:
            raise CorruptionError(at(self.name, offset, f"{what} truncated: file is {self.file_size} bytes"))
        return self._pread(offset, n)

    def _extended_phnum(self, e_shoff: int, e_shnum: int) -> int:
        """PN_XNUM: the real program header count is ``sh_info`` of section header 0 (gABI)."""
        lay = self._layout
        if e_shoff == 0:
            raise CorruptionError(at(self.name, 16, "e_phnum is PN_XNUM but there is no section header 0"))
        raw = self._header_bytes(e_shoff, lay.shdr_size, "section header 0")
        return struct.unpack_from(lay.endian + "I", raw, lay.shdr_info_offset)[0]

    def _read_notes(self, offset: int, size: int, origin: int) -> None:
        if size > MAX_NOTES_BYTES or offset + size > self.file_size:
            self._note_problems.append(
                at(
                    self.name,
                    origin,
                    f"PT_NOTE of {size:#x} bytes at {offset:#x} lies outside the file; skipped",
                )
            )
            return
        blob = self._pread(offset, size)
        endian = self._layout.endian
        pos = 0
        while pos + 12 <= size:
            namesz, descsz, ntype = struct.unpack_from(endian + "III", blob, pos)
            name_at = pos + 12
            desc_at = name_at + ((namesz + 3) & ~3)
            end = desc_at + ((descsz + 3) & ~3)
            if desc_at + descsz > size:
                self._note_problems.append(
                    at(
                        self.name,
                        offset + pos,
                        f"note of {descsz:#x} bytes runs past its PT_NOTE; rest skipped",
                    )
                )
                return
            if len(self._notes) == MAX_NOTES:
                self._note_problems.append(
                    at(self.name, offset + pos, f"more than {MAX_NOTES} notes; rest skipped")
                )
                return
            name = blob[name_at : name_at + namesz].split(b"\0", 1)[0].decode("ascii", "replace")
            self._notes.append(_Note(offset + pos, name, ntype, blob[desc_at : desc_at + descsz]))
            pos = end

    # -- metadata --------------------------------------------------------------------------

    def _cpu_states(self) -> list[_CpuState]:
        """Register state per CPU from QEMU or VirtualBox notes, in CPU order."""
        qemu = [n for n in self._notes if n.name == "QEMU" and n.type == NT_QEMUCPUSTATE]
        vbox = [n for n in self._notes if n.name == "VBCPU" and n.type == NT_VBOXCPU]
        states = []
        for note in qemu:
            if len(note.desc) < QEMU_STATE_SIZE:
                self._note_problems.append(
                    at(
                        self.name,
                        note.offset,
                        f"QEMU CPU state of {len(note.desc)} bytes is too short; ignored",
                    )
                )
                continue
            words = struct.unpack_from("<" + "Q" * 18, note.desc, 8)
            regs = dict(zip(QEMU_GPRS + ("rip", "eflags"), words, strict=True))
            for i, seg in enumerate(QEMU_SEGMENTS):
                selector, _, _, _, base = struct.unpack_from("<IIIIQ", note.desc, 152 + 24 * i)
                if seg in ("gdt", "idt"):
                    regs[f"{seg}r_base"] = base
                elif seg in ("fs", "gs"):
                    regs[seg] = selector
                    regs[f"{seg}_base"] = base
                else:
                    regs[seg] = selector
            for i, value in enumerate(struct.unpack_from("<5Q", note.desc, 392)):
                if i != 1:
                    regs[f"cr{i}"] = value
            states.append(_CpuState("QEMU", regs))
        for note in vbox:
            if len(note.desc) < VBOX_EFER_OFFSET + 8:
                self._note_problems.append(
                    at(
                        self.name,
                        note.offset,
                        f"VirtualBox CPU note of {len(note.desc)} bytes is too short; ignored",
                    )
                )
                continue
            regs = dict(zip(VBOX_GPRS, struct.unpack_from("<18Q", note.desc, 0), strict=True))
            cr0, cr2, cr3, cr4 = struct.unpack_from("<4Q", note.desc, VBOX_CR_OFFSET)
            regs.update(cr0=cr0, cr2=cr2, cr3=cr3, cr4=cr4)
            regs["efer"] = struct.unpack_from("<Q", note.desc, VBOX_EFER_OFFSET)[0]
            states.append(_CpuState("VirtualBox", regs))
        return states

    def _vbox_descriptor(self) -> tuple[int, ...] | None:
        for note in self._notes:
            if note.name == "VBCORE" and note.type == NT_VBOXCORE and len(note.desc) >= 24:
                fields = struct.unpack_from("<6I", note.desc)
                if fields[0] == DBGFCORE_MAGIC:
                    return fields
                self._note_problems.append(
                    at(
                        self.name,
                        note.offset,
                        f"VBCORE descriptor magic {fields[0]:#x} is not {DBGFCORE_MAGIC:#x}",
                    )
                )
        return None

    def _fill_metadata(self) -> None:
        meta = self.metadata
        self._states = self._cpu_states()
        self._vbox = self._vbox_descriptor()
        producer = "QEMU" if any(s.producer == "QEMU" for s in self._states) else None
        if self._vbox is not None or any(s.producer == "VirtualBox" for s in self._states):
            producer = "VirtualBox"
        self.producer = producer
        arch, machine_name = MACHINES.get(self.e_machine, (None, f"e_machine {self.e_machine}"))
        cpu0 = self._states[0].regs if self._states else None
        if producer == "VirtualBox" and cpu0 is not None:
            # e_machine is the host build's; the guest is in long mode when EFER.LMA is set.
            arch = "x64" if cpu0["efer"] & EFER_LMA else "x86"
        if arch is not None:
            meta.arch = arch
        else:
            meta.unknown("arch", f"ELF {machine_name} is not an architecture memfs knows")
        if cpu0 is not None:
            meta.directory_table_base = cpu0["cr3"]
            meta.context = _context(cpu0, arch)
            meta.number_processors = len(self._states)
            if arch == "x86":
                meta.pae = bool(cpu0["cr4"] & CR4_PAE)
        else:
            meta.unknown("directory_table_base", "the ELF core has no QEMU or VirtualBox register notes")
        if self._vbox is not None and meta.number_processors is None and 0 < self._vbox[5] <= MAX_PROCESSORS:
            meta.number_processors = self._vbox[5]
        reason = "an ELF core holds physical memory and registers only, no Windows kernel values"
        for name in ("os_build", "kd_debugger_data_block"):
            meta.unknown(name, reason)
        by = f" written by {producer}" if producer else ""
        meta.format_detail = f"ELF{self.bits} core ({machine_name}){by}, {len(self._loads)} PT_LOAD segments"
        meta.notes.extend(self._note_problems)

    # -- header.txt ------------------------------------------------------------------------

    def describe(self) -> list[Section]:
        arch_name = MACHINES.get(self.e_machine, (None, f"{self.e_machine}"))[1]
        elf_rows = [
            ("Class", f"ELF{self.bits}, {'little' if self._layout.endian == '<' else 'big'} endian"),
            ("Machine", arch_name),
            ("Producer", self.producer or "unknown (no QEMU or VirtualBox notes)"),
            ("PT_LOAD segments", str(len(self._loads))),
        ]
        load_rows = [
            (
                f"at {origin:#x}",
                f"physical {pa:#x}-{pa + memsz:#x}, {filesz:#x} bytes in file at {offset:#x}"
                + _memsz_remark(filesz, memsz),
            )
            for pa, offset, filesz, memsz, origin in self._loads[:MAX_LISTED_NOTES]
        ]
        if len(self._loads) > MAX_LISTED_NOTES:
            load_rows.append(("", f"... and {len(self._loads) - MAX_LISTED_NOTES} more"))
        note_rows = [
            (f"at {n.offset:#x}", f"{n.name!r} type {n.type:#x}, {len(n.desc)} bytes")
            for n in self._notes[:MAX_LISTED_NOTES]
        ]
        if len(self._notes) > MAX_LISTED_NOTES:
            note_rows.append(("", f"... and {len(self._notes) - MAX_LISTED_NOTES} more"))
        sections = [Section("ELF core", elf_rows), Section("ELF PT_LOAD segments", load_rows)]
        sections.append(Section("ELF notes", note_rows or [("", "none")]))
        if self._vbox is not None:
            _, fmt, _, version, revision, cpus = self._vbox
            sections.append(
                Section(
                    "VirtualBox core descriptor (VBCORE)",
                    [
                        ("Format version", f"{fmt:#x}"),
                        (
                            "VirtualBox version",
                            f"{version >> 24}.{(version >> 16) & 0xFF}.{version & 0xFFFF}",
                        ),
                        ("Revision", str(revision)),
                        ("CPUs", str(cpus)),
                    ],
                )
            )
        for index, state in enumerate(self._states):
            regs = state.regs
            rows = [("Source", f"{state.producer} note")]
            rows += [
                (name, f"{regs[name]:#x}") for name in ("cr0", "cr3", "cr4", "rip", "rsp") if name in regs
            ]
            sections.append(Section(f"CPU {index} registers", rows))
        return sections


def _memsz_remark(filesz: int, memsz: int) -> str:
    if filesz == memsz:
        return ""
    if filesz == 0:
        return f" (memsz {memsz:#x}, no data in the file, e.g. VirtualBox MMIO: reads as zeros)"
    return f" (memsz {memsz:#x}: the rest reads as zeros)"


def _probe(probe: ProbeInput) -> bool:
    return probe.head[:4] == ELF_MAGIC


def _open(data: ByteSource, options: OpenOptions) -> ElfSource:
    return ElfSource(data)


FORMAT = FormatSpec(
    name="elf",
    description="ELF core with physical PT_LOAD segments (QEMU dump-guest-memory, VirtualBox, kdump)",
    probe=_probe,
    open=_open,
)
