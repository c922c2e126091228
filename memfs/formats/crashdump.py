"""Windows kernel crash dumps (MEMORY.DMP): 32-bit 'PAGEDUMP' and 64-bit 'PAGEDU64', every DumpType.

At open the reader parses the header (docs/formats/crashdump.md §2/§3) and the DumpType-specific page index
(§6): the run table (1), the bitmap (5, 6, and 2 in either of its layouts), the RDMP range list
(8, 9, 0xA); a triage dump (4) holds no physical memory.  The index is a list of physical runs,
each with the file offset of its first page, so a read is one bisect plus one ``pread``.  Page data
is stored uncompressed, so there is no decode cache.
"""

from __future__ import annotations

import bisect
import re
import struct
from datetime import datetime, timedelta
from itertools import accumulate

from construct import Container

from memfs.byte_source import ByteSource
from memfs.exceptions import CorruptionError, FormatError, UnknownFormatError, at
from memfs.filetime import to_datetime, to_timedelta
from memfs.formats import crashdump_structs as cs
from memfs.formats.base import FormatSpec, OpenOptions, ProbeInput
from memfs.memory import PAGE_SIZE, PHYSICAL_LIMIT, MemorySource, Rows, Section
from memfs.windows_structs import (
    ARCH_BY_MACHINE,
    CONTEXT_AMD64,
    CONTEXT_AMD64_REGISTERS,
    CONTEXT_X86,
    CONTEXT_X86_REGISTERS,
    MACHINE_TYPES,
)

MAX_PFN = PHYSICAL_LIMIT // PAGE_SIZE  # 52-bit physical addresses: the architectural maximum
NOT_WRITTEN = "not written ('PAGE' filler)"

# -- bitmap scanning (docs/formats/crashdump.md §6.4) --------------------------------------------------------

BITMAP_STEP = 4 << 20
"""Bitmap bytes read and scanned at a time: :func:`bitmap_runs`'s big-integer temporaries stay a few
times this, whatever the bitmap's size (16 Mi pages, 64 GiB of memory, per step)."""
_BIT_POSITIONS = [tuple(bit for bit in range(8) if value >> bit & 1) for value in range(256)]
_NONZERO_BYTE = re.compile(rb"[^\x00]")


def bitmap_runs(bitmap: bytes, bits: int) -> list[tuple[int, int]]:
    """Runs of set bits in an LSB-first bitmap of ``bits`` bits, as ``(first bit, count)``.

    Works on the bitmap as one big integer: ``value ^ (value << 1)`` has a bit set exactly where
    a run starts or ends, so starts and ends alternate in its set-bit positions.  Those are found
    by a C-speed scan for non-zero bytes; Python touches only run boundaries, so a 16 M-bit bitmap
    with a few thousand runs takes milliseconds (docs/formats/crashdump.md §6.4).
    """
    value = int.from_bytes(bitmap, "little") & ((1 << bits) - 1)
    toggles = (value ^ (value << 1)).to_bytes(bits // 8 + 1, "little")
    positions: list[int] = []
    append = positions.append
    table = _BIT_POSITIONS
    for match in _NONZERO_BYTE.finditer(toggles):
        index = match.start()
        base = index << 3
        for bit in table[toggles[index]]:
            append(base + bit)
    starts = positions[0::2]
    return [(start, end - start) for start, end in zip(starts, positions[1::2], strict=True)]


# -- value formatting for header.txt -------------------------------------------------------------


def _is_filler(value: int, nbytes: int) -> bool:
    return (nbytes == 4 and value == cs.FILLER32) or (nbytes == 8 and value == cs.FILLER64)


def _num(value: int, nbytes: int, *, decimal: bool = False, names: dict[int, str] | None = None) -> str:
    """A header number as text; the 'PAGE' filler is reported as not written (§7)."""
    if _is_filler(value, nbytes):
        return NOT_WRITTEN
    text = str(value) if decimal else f"{value:#x}"
    if names and value in names:
        text += f" ({names[value]})"
    return text


def _text(raw: bytes) -> str | None:
    """A NUL-terminated ASCII field; None when it is 'PAGE' filler."""
    if raw.startswith(cs.SIGNATURE * 2):
        return None
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _filetime(value: int) -> datetime | None:
    return None if value <= 0 or _is_filler(value, 8) else to_datetime(value)


def _uptime(value: int) -> timedelta | None:
    return None if value < 0 or _is_filler(value, 8) else to_timedelta(value)


def _attributes(value: int) -> str:
    if _is_filler(value, 4):
        return NOT_WRITTEN + "; older header without Attributes"
    names = [name for bit, name in enumerate(cs.ATTRIBUTE_BITS) if value >> bit & 1]
    if value >> len(cs.ATTRIBUTE_BITS):
        names.append("reserved bits")
    return f"{value:#x}" + (f" ({', '.join(names)})" if names else "")


def _sig(raw: bytes) -> str:
    return repr(raw.decode("latin-1"))


class CrashDumpSource(MemorySource):
    """A Windows kernel crash dump of any DumpType memfs knows (see the module docstring).

    After opening, ``width`` is 32 or 64, ``header_size`` 0x1000 or 0x2000, and ``header`` the
    parsed DUMP_HEADER32/64 (construct container, Windows field names).
    """

    format_name = "crashdump"

    def __init__(self, data: ByteSource) -> None:
        super().__init__(data)
        self._sections: list[Section] = []
        self._run_offsets: list[int] = []
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    # -- MemorySource --------------------------------------------------------------------------

    def _runs_mergeable(self) -> bool:
        # Runs are merged here only where their file data is contiguous too (see _install).
        return False

    def _read_mapped(self, pa: int, n: int) -> bytes:
        index = bisect.bisect_right(self._run_starts, pa) - 1
        return self._pread(self._run_offsets[index] + (pa - self.runs[index][0]), n)

    def _read_mapped_into(self, pa: int, out: memoryview) -> None:
        index = bisect.bisect_right(self._run_starts, pa) - 1
        self._pread_into(self._run_offsets[index] + (pa - self.runs[index][0]), out)

    def describe(self) -> list[Section]:
        return list(self._sections)

    def dump_header(self) -> bytes:
        """The DUMP_HEADER32/64 as stored (``header_size`` bytes), for memory.dmp to keep."""
        return self._header_bytes

    # -- parsing -------------------------------------------------------------------------------

    def _error(self, offset: int, what: str, cls: type[FormatError] = CorruptionError) -> FormatError:
        return cls(at(self.name, offset, what))

    def _parse(self) -> None:
        size = self.file_size
        if size == 0:
            raise UnknownFormatError(at(self.name, 0, "file is empty"))
        magic = self._read_at_most(0, 8)
        if magic[:4] != cs.SIGNATURE:
            raise self._error(
                0, f"not a Windows crash dump: signature {magic[:4]!r}, expected 'PAGE'", FormatError
            )
        valid = magic[4:8]
        if valid == cs.VALID_DUMP64:
            self.width, hdr_size, struct_ = 64, cs.HEADER64_SIZE, cs.DUMP_HEADER64
        elif valid == cs.VALID_DUMP32:
            self.width, hdr_size, struct_ = 32, cs.HEADER32_SIZE, cs.DUMP_HEADER32
        else:
            raise self._error(
                4,
                f"crash dump signature 'PAGE' followed by ValidDump {valid!r}: expected 'DUMP' (32-bit) "
                "or 'DU64' (64-bit); not a kernel dump memfs can read",
                FormatError,
            )
        if size < hdr_size:
            raise self._error(
                size,
                f"truncated header: the file has {size:#x} bytes, "
                f"DUMP_HEADER{self.width} needs {hdr_size:#x}",
            )
        self.header_size = hdr_size
        self.offsets = cs.OFFSETS64 if self.width == 64 else cs.OFFSETS32
        self._header_bytes = self._pread(0, hdr_size)
        header = struct_.parse(self._header_bytes)
        self.header = header
        self._fill_metadata(header)
        header_rows = self._header_rows(header)
        self._sections.append(Section("Crash dump header", header_rows))

        attributes = header.Attributes
        if not _is_filler(attributes, 4) and attributes & cs.ATTRIBUTE_ENCRYPTED:
            raise self._error(
                self.offsets["Attributes"],
                f"Attributes {attributes:#x} has EncryptedDumpData (bit 8) set: the page data is encrypted, "
                "memfs cannot read it",
                FormatError,
            )
        dump_type = header.DumpType
        handlers = {
            1: self._index_runs,
            2: self._index_summary,
            4: self._index_triage,
            5: self._index_bitmap,
            6: self._index_bitmap,
            8: self._index_rdmp,
            9: self._index_rdmp,
            0xA: self._index_rdmp,
        }
        handler = handlers.get(dump_type)
        if handler is None:
            name = cs.DUMP_TYPE_NAMES.get(dump_type, "unknown")
            shown = NOT_WRITTEN if _is_filler(dump_type, 4) else f"{dump_type:#x} ({name})"
            raise self._error(self.offsets["DumpType"], f"unsupported DumpType {shown}", FormatError)
        handler(header)

    def _read_at_most(self, offset: int, n: int) -> bytes:
        return self.byte_source.pread(offset, n)

    # -- metadata and header rows --------------------------------------------------------------

    def _fill_metadata(self, h: Container) -> None:
        meta = self.metadata
        nbytes = self.width // 8
        machine = h.MachineImageType
        arch = ARCH_BY_MACHINE.get(machine)
        expected = ("x86",) if self.width == 32 else ("x64", "arm64")
        if arch not in expected:
            arch = expected[0]
            meta.notes.append(
                f"MachineImageType {_num(machine, 4)} does not match the {self.width}-bit header; "
                f"assuming {arch} from the signature"
            )
        meta.arch = arch
        if not _is_filler(machine, 4):
            meta.machine_image_type = machine
        meta.dump_type = h.DumpType if not _is_filler(h.DumpType, 4) else None
        if not _is_filler(h.MinorVersion, 4) and h.MinorVersion:
            meta.os_build = h.MinorVersion
        meta.unknown("os_build", "MinorVersion in the header is not written")
        meta.unknown(
            "os_major", "a crash dump's MajorVersion is 0xF/0xC (free/checked build), not the NT version"
        )
        meta.unknown("os_minor", "a crash dump header does not record the NT minor version")
        if self.width == 32:
            if h.PaeEnabled in (0, 1):
                meta.pae = bool(h.PaeEnabled)
            meta.unknown("pae", f"PaeEnabled byte is {h.PaeEnabled:#x}, neither 0 nor 1")
        else:
            meta.unknown("pae", "PAE is a 32-bit x86 setting; not applicable to a 64-bit dump")
        pointers = [
            ("directory_table_base", "DirectoryTableBase"),
            ("pfn_database", "PfnDataBase"),
            ("ps_loaded_module_list", "PsLoadedModuleList"),
            ("ps_active_process_head", "PsActiveProcessHead"),
            ("kd_debugger_data_block", "KdDebuggerDataBlock"),
        ]
        for attr, field in pointers:
            value = h[field]
            if _is_filler(value, nbytes):
                meta.unknown(attr, f"{field} in the header is {NOT_WRITTEN}")
            elif value == 0:
                meta.unknown(attr, f"{field} in the header is 0 (not filled in by the writer)")
            else:
                setattr(meta, attr, value)
        for attr in ("kernel_base", "ki_processor_block"):
            meta.unknown(attr, "not stored in a crash dump header")
        if not _is_filler(h.NumberProcessors, 4) and h.NumberProcessors:
            meta.number_processors = h.NumberProcessors
        meta.unknown("number_processors", "NumberProcessors in the header is 0 or not written")
        if not _is_filler(h.BugCheckCode, 4):
            meta.bugcheck_code = h.BugCheckCode
            meta.bugcheck_parameters = [h[f"BugCheckParameter{i}"] for i in range(1, 5)]
        meta.unknown("bugcheck_code", f"BugCheckCode is {NOT_WRITTEN}")
        meta.unknown("bugcheck_parameters", f"BugCheckCode is {NOT_WRITTEN}")
        meta.system_time = _filetime(h.SystemTime)
        meta.unknown("system_time", "SystemTime in the header is 0, not written or out of range")
        meta.system_uptime = _uptime(h.SystemUpTime)
        meta.unknown("system_uptime", "SystemUpTime in the header is not written or out of range")
        if not _is_filler(h.ProductType, 4):
            meta.product_type = h.ProductType
        meta.unknown("product_type", f"ProductType is {NOT_WRITTEN}")
        if not _is_filler(h.SuiteMask, 4):
            meta.suite_mask = h.SuiteMask
        meta.unknown("suite_mask", f"SuiteMask is {NOT_WRITTEN}")
        comment = _text(h.Comment)
        meta.comment = comment or None
        meta.unknown("comment", "the header's Comment is empty or not written")
        self._decode_context(h.ContextRecord)
        dump_type = h.DumpType
        name = cs.DUMP_TYPE_NAMES.get(dump_type, "unknown")
        meta.format_detail = (
            f"Windows kernel crash dump, {self.width}-bit header ('PAGE{h.ValidDump.decode()}'), "
            f"DumpType {_num(dump_type, 4, decimal=True)} ({name})"
        )

    def _decode_context(self, raw: bytes) -> None:
        """The header ContextRecord as ``metadata.context`` (docs/formats/crashdump.md §4.3)."""
        if self.width == 64:
            struct_, registers = CONTEXT_AMD64, CONTEXT_AMD64_REGISTERS
        else:
            struct_, registers = CONTEXT_X86, CONTEXT_X86_REGISTERS
        record = raw[: struct_.sizeof()]
        if record.startswith(cs.SIGNATURE * 2):
            self.metadata.unknown("context", f"the header ContextRecord is {NOT_WRITTEN}")
            return
        if not any(record):
            self.metadata.unknown("context", "the header ContextRecord is all zero (not written)")
            return
        context = struct_.parse(record)
        self.metadata.context = {name: context[field] for name, field in registers}
        if self.width == 64 and context.MxCsr != context.FltSave.MxCsr:
            self.metadata.notes.append(
                f"CONTEXT.MxCsr {context.MxCsr:#x} differs from FltSave.MxCsr {context.FltSave.MxCsr:#x}: "
                "kdmp-parser refuses such a dump"
            )

    def _header_rows(self, h: Container) -> Rows:
        """Every DUMP_HEADER field the format doc lists, 'PAGE' filler shown as not written."""
        p = self.width // 8  # pointer size
        desc = h.PhysicalMemoryBlock
        rows: Rows = [
            (
                "Signature",
                f"{_sig(h.Signature)} {_sig(h.ValidDump)} ({self.width}-bit DUMP_HEADER{self.width})",
            ),
            ("MajorVersion", _num(h.MajorVersion, 4, names={0xF: "free build", 0xC: "checked build"})),
            ("MinorVersion", _num(h.MinorVersion, 4, decimal=True) + " (build number)"),
            ("DirectoryTableBase", _num(h.DirectoryTableBase, p)),
            ("PfnDataBase", _num(h.PfnDataBase, p)),
            ("PsLoadedModuleList", _num(h.PsLoadedModuleList, p)),
            ("PsActiveProcessHead", _num(h.PsActiveProcessHead, p)),
            ("MachineImageType", _num(h.MachineImageType, 4, names=MACHINE_TYPES)),
            ("NumberProcessors", _num(h.NumberProcessors, 4, decimal=True)),
            ("BugCheckCode", _num(h.BugCheckCode, 4)),
        ]
        rows += [(f"BugCheckParameter{i}", _num(h[f"BugCheckParameter{i}"], p)) for i in range(1, 5)]
        version_user = _text(h.VersionUser)
        rows.append(("VersionUser", NOT_WRITTEN if version_user is None else repr(version_user) or "(empty)"))
        if self.width == 32:
            pae = h.PaeEnabled
            rows.append(("PaeEnabled", {0: "0 (no)", 1: "1 (yes)", 0x50: NOT_WRITTEN}.get(pae, f"{pae:#x}")))
        kd = h.KdSecondaryVersion
        rows.append(
            ("KdSecondaryVersion", "not written ('A' of the 'PAGE' filler)" if kd == 0x41 else str(kd))
        )
        rows.append(("KdDebuggerDataBlock", _num(h.KdDebuggerDataBlock, p)))
        runs_text = _num(desc.NumberOfRuns, 4, decimal=True)
        rows.append(("PhysicalMemoryBlock.NumberOfRuns", runs_text))
        rows.append(("PhysicalMemoryBlock.NumberOfPages", _num(desc.NumberOfPages, p, decimal=True)))
        context = self.metadata.context
        if context is None:
            context_text = self.metadata.unknown_reasons.get("context", "not decoded")
        else:
            context_text = f"ContextFlags {context['context_flags']:#x} (registers under [Register context])"
        rows.append(("ContextRecord", context_text))
        rows += self._exception_rows(h.Exception)
        comment = _text(h.Comment)
        rows.append(("Comment", NOT_WRITTEN if comment is None else repr(comment)))
        rows.append(("Attributes", _attributes(h.Attributes)))
        rows.append(("BootId", _num(h.BootId, 4)))
        dump_type = h.DumpType
        rows.append(("DumpType", _num(dump_type, 4, decimal=True, names=cs.DUMP_TYPE_NAMES)))
        rows.append(("MiniDumpFields", _num(h.MiniDumpFields, 4)))
        rows.append(("SecondaryDataState", _num(h.SecondaryDataState, 4)))
        rows.append(("ProductType", _num(h.ProductType, 4, decimal=True, names=cs.PRODUCT_TYPES)))
        rows.append(("SuiteMask", _num(h.SuiteMask, 4)))
        rows.append(("WriterStatus", _num(h.WriterStatus, 4)))
        required = h.RequiredDumpSpace
        required_text = _num(required, 8)
        if not _is_filler(required, 8):
            required_text += f" ({required} bytes; the file has {self.file_size})"
        rows.append(("RequiredDumpSpace", required_text))
        uptime = _uptime(h.SystemUpTime)
        rows.append(
            (
                "SystemUpTime",
                NOT_WRITTEN
                if _is_filler(h.SystemUpTime, 8)
                else f"{h.SystemUpTime:#x}" + (f" ({uptime})" if uptime is not None else ""),
            )
        )
        when = _filetime(h.SystemTime)
        rows.append(
            (
                "SystemTime",
                NOT_WRITTEN
                if _is_filler(h.SystemTime, 8)
                else f"{h.SystemTime:#x}" + (f" ({when.isoformat()})" if when else " (not a valid time)"),
            )
        )
        return rows

    def _exception_rows(self, e: Container) -> Rows:
        p = self.width // 8
        prefix = "Exception."
        if _is_filler(e.ExceptionCode, 4):
            return [
                (
                    prefix + "ExceptionCode",
                    NOT_WRITTEN + " (WinDbg reports 'Unknown exception - code 45474150')",
                )
            ]
        count = e.NumberParameters
        params = " ".join(f"{v:#x}" for v in e.ExceptionInformation[: min(count, 15)]) or "none"
        return [
            (prefix + "ExceptionCode", f"{e.ExceptionCode:#x}"),
            (prefix + "ExceptionFlags", f"{e.ExceptionFlags:#x}"),
            (prefix + "ExceptionRecord", _num(e.ExceptionRecord, p)),
            (prefix + "ExceptionAddress", _num(e.ExceptionAddress, p)),
            (prefix + "NumberParameters", _num(count, 4, decimal=True)),
            (prefix + "ExceptionInformation", params),
        ]

    # -- page indexes --------------------------------------------------------------------------

    def _install(self, entries: list[tuple[int, int, int, int]]) -> None:
        """Install ``(pfn, page count, file offset, table offset)`` entries as the run table.

        Entries are sorted by PFN, checked for overlaps and for data past the end of the file,
        and merged where both the physical range and the file data are contiguous.
        """
        entries.sort()
        runs: list[list[int]] = []  # [pfn, count, file offset]
        for pfn, count, file_offset, where in entries:
            if count == 0:
                continue
            if pfn + count > MAX_PFN:
                raise self._error(
                    where, f"PFN range {pfn:#x} + {count:#x} pages lies beyond the 52-bit physical space"
                )
            end = file_offset + count * PAGE_SIZE
            if end > self.file_size:
                raise self._error(
                    where,
                    f"pages of PFN {pfn:#x} + {count:#x} would lie at file offsets "
                    f"{file_offset:#x}..{end:#x}, "
                    f"past the end of the file ({self.file_size:#x})",
                )
            if runs:
                last_pfn, last_count, last_offset = runs[-1]
                if pfn < last_pfn + last_count:
                    raise self._error(
                        where,
                        f"PFN range {pfn:#x} + {count:#x} pages overlaps or duplicates the range "
                        f"{last_pfn:#x} + {last_count:#x}",
                    )
                if pfn == last_pfn + last_count and file_offset == last_offset + last_count * PAGE_SIZE:
                    runs[-1][1] += count
                    continue
            runs.append([pfn, count, file_offset])
        self._set_runs((pfn * PAGE_SIZE, count * PAGE_SIZE) for pfn, count, _ in runs)
        self._run_offsets = [offset for _, _, offset in runs]

    def _index_runs(self, h: Container) -> None:
        """DumpType 1: the header's run table, pages packed from the end of the header (§6.1)."""
        desc = h.PhysicalMemoryBlock
        where = self.offsets["PhysicalMemoryBlock"]
        limit = cs.MAX_RUNS64 if self.width == 64 else cs.MAX_RUNS32
        count = desc.NumberOfRuns
        if _is_filler(count, 4):
            raise self._error(where, "NumberOfRuns is 'PAGE' filler: this DumpType 1 dump has no run table")
        if count > limit:
            raise self._error(
                where, f"NumberOfRuns {count} is absurd: at most {limit} runs fit in the header"
            )
        if count == 0:
            self.metadata.notes.append("PhysicalMemoryBlock.NumberOfRuns is 0: this dump stores no pages")
        table = cs.RUN_TABLE_OFFSET[self.width]
        entries = []
        file_offset = self.header_size
        rows: Rows = []
        for index in range(count):
            run = desc.Run[index]
            entries.append(
                (run.BasePage, run.PageCount, file_offset, table + index * cs.RUN_SIZE[self.width])
            )
            rows.append(
                (
                    f"Run[{index}]",
                    f"BasePage {run.BasePage:#x} PageCount {run.PageCount:#x} "
                    f"at file offset {file_offset:#x}",
                )
            )
            file_offset += run.PageCount * PAGE_SIZE
        total = sum(entry[1] for entry in entries)
        if desc.NumberOfPages != total:
            self.metadata.notes.append(
                f"PhysicalMemoryBlock.NumberOfPages "
                f"{_num(desc.NumberOfPages, self.width // 8, decimal=True)} "
                f"differs from the sum of the run page counts ({total}); the runs are used"
            )
        self._install(entries)
        self._sections.append(Section("Physical memory descriptor (DumpType 1)", rows))

    def _index_bitmap(self, h: Container) -> None:
        """DumpTypes 5 and 6: bitmap header right after the dump header (§6.4)."""
        self._index_bitmap_layout(self.header_size, "Bitmap header")

    def _index_bitmap_layout(self, base: int, title: str) -> None:
        if self.file_size < base + cs.BITMAP_DUMP.sizeof():
            raise self._error(
                base, f"the file ends at {self.file_size:#x}, inside the bitmap header at {base:#x}"
            )
        b = cs.BITMAP_DUMP.parse(self._pread(base, cs.BITMAP_DUMP.sizeof()))
        if b.Signature not in cs.BITMAP_SIGNATURES or b.ValidDump != cs.BITMAP_VALID:
            raise self._error(
                base,
                f"bitmap header signature {_sig(b.Signature)} {_sig(b.ValidDump)}, expected 'SDMP' or 'FDMP' "
                "followed by 'DUMP'",
            )
        rows: Rows = [
            ("Signature", f"{_sig(b.Signature)} {_sig(b.ValidDump)} ({cs.BITMAP_SIGNATURES[b.Signature]})"),
            ("DumpOptions", f"{b.DumpOptions:#x}"),
            ("FirstPage", f"{b.FirstPage:#x} (file offset of the first stored page)"),
            ("TotalPresentPages", str(b.TotalPresentPages)),
            ("Pages", f"{b.Pages} (bits in the bitmap)"),
        ]
        self._index_from_bitmap(
            base,
            base + 0x38,
            b.Pages,
            b.FirstPage,
            b.TotalPresentPages,
            fields=(base + 0x30, base + 0x20),
            title=title,
            rows=rows,
        )
        self.metadata.format_detail += f", bitmap {_sig(b.Signature)}"

    def _index_from_bitmap(
        self,
        base: int,
        bitmap_at: int,
        bits: int,
        first_page: int,
        declared: int,
        *,
        fields: tuple[int, int],
        title: str,
        rows: Rows,
    ) -> None:
        """Validate and index a bitmap of ``bits`` bits at ``bitmap_at`` whose pages start at
        ``first_page``; ``fields`` are the offsets of the bit count and first-page fields."""
        bits_field, first_field = fields
        if bits > MAX_PFN:
            raise self._error(bits_field, f"bitmap of {bits} bits covers more than the 52-bit physical space")
        nbytes = (bits + 7) // 8
        if bitmap_at + nbytes > self.file_size:
            raise self._error(
                bits_field,
                f"bitmap of {bits} bits ({nbytes:#x} bytes) at {bitmap_at:#x} is larger than the file "
                f"({self.file_size:#x} bytes)",
            )
        if first_page > self.file_size:
            raise self._error(
                first_field,
                f"first page offset {first_page:#x} lies past the end of the file ({self.file_size:#x})",
            )
        if first_page < bitmap_at + nbytes:
            raise self._error(
                first_field,
                f"first page offset {first_page:#x} lies inside the bitmap headers "
                f"(they end at {bitmap_at + nbytes:#x})",
            )
        found = self._read_bitmap(bitmap_at, bits, (self.file_size - first_page) // PAGE_SIZE)
        runs = [(pfn * PAGE_SIZE, count * PAGE_SIZE) for pfn, count in found]
        # Pages are packed in PFN order from first_page: each run's data starts where the previous ends.
        offsets = list(accumulate((length for _, length in runs), initial=first_page))
        end = offsets.pop()
        present = (end - first_page) // PAGE_SIZE
        if end > self.file_size:
            raise self._error(
                first_field,
                f"the bitmap marks {present} pages present; stored from {first_page:#x} they need the "
                f"file to extend to {end:#x}, but it ends at {self.file_size:#x}",
            )
        if present != declared:
            # The bitmap decides where pages are (§6.4); a wrong count alone does not misplace them,
            # so this is a warning in header.txt, not an error.
            self.metadata.notes.append(
                f"{title}: the bitmap has {present} bits set but the header declares {declared} "
                "present pages; the bitmap is used"
            )
        # Runs of set bits are sorted, disjoint and never adjacent (a clear bit separates them), so
        # the base class's per-run checks and merging have nothing to do: install them directly,
        # which keeps opening a bitmap with hundreds of thousands of runs fast.
        self.runs = tuple(runs)
        self._run_starts = [start for start, _ in runs]
        self._run_offsets = offsets
        rows.append(("Set bits (pages present)", f"{present} in {len(runs)} runs"))
        self._sections.append(Section(title, rows))

    def _read_bitmap(self, bitmap_at: int, bits: int, storable: int) -> list[tuple[int, int]]:
        """The runs of set bits, read and scanned BITMAP_STEP bytes at a time (bounded memory, however
        large the file); the scan stops once more than ``storable`` pages are marked (the file cannot
        hold them: the caller reports it), so a hostile bitmap cannot build millions of runs first."""
        runs: list[tuple[int, int]] = []
        marked = 0
        for first in range(0, (bits + 7) // 8, BITMAP_STEP):
            step = self._pread(bitmap_at + first, min(BITMAP_STEP, (bits + 7) // 8 - first))
            for start, count in bitmap_runs(step, min(bits - 8 * first, 8 * len(step))):
                start += 8 * first
                if runs and runs[-1][0] + runs[-1][1] == start:  # a run across the step boundary
                    runs[-1] = (runs[-1][0], runs[-1][1] + count)
                else:
                    runs.append((start, count))
                marked += count
            if marked > storable:
                break
        return runs

    def _index_summary(self, h: Container) -> None:
        """DumpType 2: the type-5 bitmap layout if it validates, else the MS2 ULONG SUMMARY_DUMP (§6.2)."""
        base = self.header_size
        try:
            self._index_bitmap_layout(base, "Summary dump header (bitmap layout, as DumpType 5)")
            return
        except CorruptionError as exc:
            bitmap_problem = str(exc)[len(self.name) + 2 :]
        struct_ = cs.SUMMARY_DUMP64 if self.width == 64 else cs.SUMMARY_DUMP32
        fixed = struct_.sizeof()
        if self.file_size < base + fixed:
            raise self._error(base, f"the file ends at {self.file_size:#x}, inside the summary dump header")
        s = struct_.parse(self._pread(base, fixed))
        try:
            if s.Signature != b"SDMP" or s.ValidDump != cs.BITMAP_VALID:
                raise self._error(
                    base, f"signature {_sig(s.Signature)} {_sig(s.ValidDump)}, expected 'SDMP' 'DUMP'"
                )
            end = s.HeaderSize + s.Pages * PAGE_SIZE
            if end > self.file_size:
                raise self._error(
                    base + 0x0C,
                    f"HeaderSize {s.HeaderSize:#x} + Pages {s.Pages} x 0x1000 = {end:#x} exceeds the "
                    "file size "
                    f"{self.file_size:#x}",
                )
            rows: Rows = [
                (
                    "Layout",
                    "MS2 SUMMARY_DUMP (ULONG fields) [unconfirmed layout, docs/formats/crashdump.md §6.2]",
                ),
                ("Signature", f"{_sig(s.Signature)} {_sig(s.ValidDump)}"),
                ("DumpOptions", f"{s.DumpOptions:#x}"),
                ("HeaderSize", f"{s.HeaderSize:#x} (file offset of the first stored page)"),
                ("BitmapSize", f"{s.BitmapSize} (bits in the bitmap)"),
                ("Pages", f"{s.Pages} (bits set)"),
                ("SizeOfBitMap", str(s.SizeOfBitMap)),
            ]
            self._index_from_bitmap(
                base,
                base + fixed,
                s.BitmapSize,
                s.HeaderSize,
                s.Pages,
                fields=(base + 0x10, base + 0x0C),
                title="Summary dump header",
                rows=rows,
            )
        except CorruptionError as exc:
            ms2_problem = str(exc)[len(self.name) + 2 :]
            raise self._error(
                base,
                f"DumpType 2 summary header fits neither the bitmap layout ({bitmap_problem}) "
                f"nor the MS2 ULONG layout ({ms2_problem})",
            ) from None
        self.metadata.format_detail += ", MS2 SUMMARY_DUMP layout"

    def _index_rdmp(self, h: Container) -> None:
        """DumpTypes 8, 9, 0xA: 'RDMP' header and PFN range list, pages packed (§6.5)."""
        dump_type = h.DumpType
        if self.width != 64:
            raise self._error(
                self.offsets["DumpType"],
                f"DumpType {dump_type:#x} (RDMP) is only known in 64-bit dumps; this one is 32-bit",
                FormatError,
            )
        base = self.header_size
        fixed = cs.RDMP_HEADER.sizeof()
        if self.file_size < base + fixed:
            raise self._error(
                base, f"the file ends at {self.file_size:#x}, inside the RDMP header at {base:#x}"
            )
        r = cs.RDMP_HEADER.parse(self._pread(base, fixed))
        if r.Marker != cs.RDMP_MARKER or r.Signature != cs.RDMP_SIGNATURE or r.ValidDump != cs.RDMP_VALID:
            raise self._error(
                base,
                f"RDMP header reads marker {r.Marker:#x} {_sig(r.Signature)} {_sig(r.ValidDump)}, "
                "expected 0x40 'RDMP' 'DUMP'",
            )
        first = r.FirstPageOffset
        if r.MetadataSize - 0x20 != first - (base + 0x40):
            raise self._error(
                base + 0x10,
                f"RDMP MetadataSize {r.MetadataSize:#x} and FirstPageOffset {first:#x} break the size "
                "relation "
                f"MetadataSize - 0x20 == FirstPageOffset - {base + 0x40:#x}",
            )
        if r.MetadataSize % 16:
            raise self._error(base + 0x10, f"RDMP MetadataSize {r.MetadataSize:#x} is not a multiple of 16")
        if first > self.file_size:
            raise self._error(
                base + 0x18,
                f"RDMP FirstPageOffset {first:#x} lies past the end of the file ({self.file_size:#x})",
            )
        complete = dump_type == 0xA
        # Each range holds at least one page, so the list cannot usefully be longer than this (bounded read).
        list_at = base + fixed
        most = (self.file_size - first) // PAGE_SIZE + 1
        list_bytes = min(max(first - list_at, 0), most * 16)
        raw = self._pread(list_at, list_bytes)
        entries = []
        file_offset = first
        pages = 0
        for index, (pfn, count) in enumerate(struct.iter_unpack("<QQ", raw)):
            if count == 0 or (complete and pages >= r.TotalNumberOfPages):
                break  # an all-zero entry (padding) ends the list; 0xA: all declared pages consumed
            entries.append((pfn, count, file_offset, list_at + 16 * index))
            file_offset += count * PAGE_SIZE
            pages += count
        rows: Rows = [
            ("Marker", f"{r.Marker:#x}"),
            ("Signature", f"{_sig(r.Signature)} {_sig(r.ValidDump)}"),
            ("MetadataSize", f"{r.MetadataSize:#x}"),
            ("FirstPageOffset", f"{first:#x} (file offset of the first stored page)"),
        ]
        if complete:
            rows += [
                ("NumberOfRanges", str(r.NumberOfRanges)),
                ("TotalNumberOfPages", str(r.TotalNumberOfPages)),
            ]
            if r.NumberOfRanges != len(entries) or r.TotalNumberOfPages != pages:
                self.metadata.notes.append(
                    f"RDMP header declares {r.NumberOfRanges} ranges / {r.TotalNumberOfPages} pages, "
                    "the range "
                    f"list holds {len(entries)} ranges / {pages} pages; the list is used"
                )
        else:
            unknown = self._pread(base + 0x20, 16)
            rows.append(
                (
                    "Fields at +0x20, +0x28",
                    " ".join(f"{v:#x}" for v in struct.unpack("<QQ", unknown))
                    + " (meaning unknown in kernel RDMP dumps)",
                )
            )
        rows.append(("Ranges", f"{len(entries)} holding {pages} pages"))
        self._install(entries)
        self._sections.append(Section("RDMP header", rows))

    def _index_triage(self, h: Container) -> None:
        """DumpType 4: a triage (mini kernel) dump holds no physical memory image (§6.3)."""
        struct_ = cs.TRIAGE_DUMP64 if self.width == 64 else cs.TRIAGE_DUMP32
        base = self.header_size
        self.metadata.notes.append(
            "DumpType 4 is a triage (small / mini kernel) dump: it holds only registers, a stack and "
            "blobs addressed by virtual address, no physical memory, so the mount shows header.txt only"
        )
        self._set_runs([])
        if self.file_size < base + struct_.sizeof():
            self.metadata.notes.append(f"the file ends at {self.file_size:#x}, before the TRIAGE_DUMP header")
            return
        t = struct_.parse(self._pread(base, struct_.sizeof()))
        rows: Rows = []
        for sub in struct_.subcons:
            if sub.name == "ArchitectureSpecific":
                continue
            value = t[sub.name]
            rows.append(
                (sub.name, str(value) if sub.name in ("ServicePackBuild", "DriverCount") else f"{value:#x}")
            )
        valid = self._read_at_most(t.ValidOffset, 4) if t.ValidOffset else b""
        rows.append(
            (
                "Valid marker",
                f"{_sig(valid)} at {t.ValidOffset:#x}"
                + (" (ok)" if valid == cs.TRIAGE_VALID else " (expected 'TRGD')"),
            )
        )
        self._sections.append(Section("Triage dump header (TRIAGE_DUMP)", rows))


def _probe(probe: ProbeInput) -> bool:
    # Any file starting with 'PAGE' is claimed, so that a crash dump with an unknown ValidDump
    # fails with a clear error instead of being served as raw memory (§6.7 step 1).
    return probe.head[:4] == cs.SIGNATURE


FORMAT = FormatSpec(
    name="crashdump",
    description="Windows kernel crash dump (MEMORY.DMP: PAGEDUMP / PAGEDU64; DumpTypes 1, 2, 4, 5, 6, 8-0xA)",
    probe=_probe,
    open=lambda data, options: CrashDumpSource(data),
)

__all__ = ["FORMAT", "CrashDumpSource", "OpenOptions", "bitmap_runs"]
