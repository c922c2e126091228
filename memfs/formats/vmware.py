"""VMware snapshots and suspended VMs: ``.vmem`` + ``.vmss``/``.vmsn``, or memory inside the ``.vmsn``.

Structure relied on (sources in brackets; "crash" is crash-utility ``vmware_vmss.c``/``.h``, written
by VMware, "vol3" is volatility3 ``layers/vmware.py``):

* Checkpoint header: u32 magic, u32 version, u32 group count.  Magics 0xbed2bed2, 0xbed3bed3
  (partial), 0xbad1bad1 (restored), 0xbad2bad2 (no-restore) and the old 32-bit 0xbed0bed0
  [crash ``CPTDUMP_*_MAGIC_NUMBER``; vol3 accepts the same set minus 0xbad2bad2].
* Group table right after the header: per group char name[64], u64 position of its first tag,
  u64 size [crash ``cptgroupdesc``; vol3 ``64sQQ``].
* A group is a list of tags ended by a zero u16.  Tag u16: bits 0-5 value size, bits 6-7 number
  of u32 indices, bits 8-15 name length; then the name, the indices and the value [crash
  "TAG: | NAMELEN | NINDX | VALSIZE |"].  Value size 63 is a block and 62 a compressed block:
  u64 size on disk, u64 size in memory, u16 padding length, padding, then the bytes [crash
  ``IS_BLOCK_TAG``; vol3 reads the same two sizes, 4 bytes wide for the old magic, and assumes no
  padding].
* Group "memory": ``regionsCount``; per region i ``regionPageNum[i]`` (first 4 KiB page in the
  memory file), ``regionPPN[i]`` (first physical page) and ``regionSize[i]`` (pages).  With no
  regions the memory file is physical memory from 0 [crash ``read_vmware_vmss``; vol3 maps
  PPN*4096 -> PageNum*4096].  This is what skips the PCI hole: a 4 GiB guest has region 0 =
  pages 0-0xBFFFF at PPN 0 and region 1 = the rest at PPN 0x100000 (4 GiB).
* The memory file is the ``.vmem`` beside the metadata (same stem), or, when the metadata holds a
  block tag "Memory" in group "memory", that block's data (snapshots taken with memory inline)
  [crash: "Memory" block sets ``memoffset``; otherwise it opens ``<stem>.vmem``].  Compressed
  memory blocks are refused, as crash does.
* Group "cpu": ``cpu:numVCPUs``; ``CR64[cpu][n]`` (u64) or a 72-byte ``CR64[cpu]`` block of
  cr0..cr8; ``rip``, ``rax``... ``[cpu]`` values, or a 128-byte ``gpregs[cpu]`` block in the order
  rax rcx rdx rbx rbp rsp rsi rdi r8..r15 [crash ``vmssregs64``; that order is
  [unconfirmed] beyond crash, so it is only used for ``metadata.context``, never for addresses].

A ``.vmem`` has no signature, so it is recognised by the metadata file beside it (or
``OpenOptions.vmware_meta``); a file named ``*.vmem`` with none mounts as raw with a warning.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from memfs.byte_source import ByteSource, FileByteSource
from memfs.exceptions import CorruptionError, FormatError, MemfsError, at
from memfs.formats.base import FormatSpec, OpenOptions, ProbeInput
from memfs.formats.raw import RawSource
from memfs.formats.segmented import Segment, SegmentedFileSource
from memfs.memory import MAX_PROCESSORS, PAGE_SIZE, PHYSICAL_LIMIT, Section

MAGICS = {
    0xBED0BED0: "old 32-bit checkpoint",
    0xBED2BED2: "checkpoint",
    0xBED3BED3: "partial checkpoint",
    0xBAD1BAD1: "restored checkpoint",
    0xBAD2BAD2: "no-restore checkpoint",
}
OLD_MAGIC = 0xBED0BED0
HEADER = struct.Struct("<III")
GROUP = struct.Struct("<64sQQ")
TAG_BLOCK = 63
TAG_BLOCK_COMPRESSED = 62
MAX_TAGS_PER_GROUP = 1 << 20  # real groups have a few thousand tags
MAX_NUMBER_SIZE = 8
META_SUFFIXES = (".vmss", ".vmsn", ".VMSS", ".VMSN")
VMEM_SUFFIXES = (".vmem", ".VMEM")
GPREGS_ORDER = ("rax", "rcx", "rdx", "rbx", "rbp", "rsp", "rsi", "rdi") + tuple(f"r{i}" for i in range(8, 16))
SCALAR_REGS = set(GPREGS_ORDER) | {"rip", "eflags", "EFLAGS"}
WINDOW = 1 << 16
CR0_PG = 1 << 31
CR4_PAE = 1 << 5


@dataclass
class Tag:
    """One tag of a group: a small value, or a block (``data_offset``/``size``)."""

    offset: int
    name: str
    indices: tuple[int, ...]
    value: int | None = None
    data_offset: int | None = None
    size: int | None = None
    mem_size: int | None = None
    compressed: bool = False


class _Reader:
    """Windowed reads of the metadata file (tags are tiny; one pread per 64 KiB)."""

    def __init__(self, data: ByteSource) -> None:
        self.data, self.path, self.size = data, data.name, data.size
        self._start, self._data = 0, b""

    def get(self, offset: int, n: int, what: str) -> bytes:
        if offset + n > self.size:
            raise CorruptionError(
                at(self.path, offset, f"{what} runs past the end of the file ({self.size:#x})")
            )
        if not (self._start <= offset and offset + n <= self._start + len(self._data)):
            self._start, self._data = offset, self.data.pread(offset, max(n, WINDOW))
        rel = offset - self._start
        return self._data[rel : rel + n]


@dataclass
class Checkpoint:
    """What memfs takes from a ``.vmss``/``.vmsn``: groups, memory layout and registers."""

    path: str
    magic: int
    version: int
    size: int
    groups: list[tuple[str, int, int]]
    regions: list[tuple[int, int, int, int]]  # (page_num, ppn, pages, tag offset)
    memory_block: Tag | None
    cpus: dict[int, dict[str, int]]
    num_vcpus: int | None
    shown: str = ""
    """How ``header.txt`` names the metadata source (a file by its absolute path)."""


def _iter_tags(reader: _Reader, group: str, start: int, wide: bool):
    """Yield the tags of the group whose first tag is at ``start`` (crash's tag walk)."""
    size_len = 8 if wide else 4
    pos = start
    for _ in range(MAX_TAGS_PER_GROUP):
        (tag,) = struct.unpack("<H", reader.get(pos, 2, f"tag of group {group!r}"))
        if tag == 0:
            return
        name_len, n_indices, value_size = tag >> 8, (tag >> 6) & 3, tag & 0x3F
        head = reader.get(pos + 2, name_len + 4 * n_indices, f"tag name of group {group!r}")
        name = head[:name_len].decode("ascii", "replace")
        indices = struct.unpack_from(f"<{n_indices}I", head, name_len)
        body = pos + 2 + name_len + 4 * n_indices
        if value_size in (TAG_BLOCK, TAG_BLOCK_COMPRESSED):
            raw = reader.get(body, 2 * size_len + 2, f"block header of tag {name!r}")
            fmt = "<QQH" if wide else "<IIH"
            size, mem_size, pad = struct.unpack(fmt, raw)
            data = body + 2 * size_len + 2 + pad
            if data + size > reader.size:
                raise CorruptionError(
                    at(reader.path, pos, f"block {name!r} of {size:#x} bytes runs past the end of the file")
                )
            yield Tag(pos, name, indices, None, data, size, mem_size, value_size == TAG_BLOCK_COMPRESSED)
            pos = data + size
        else:
            raw = reader.get(body, value_size, f"value of tag {name!r}")
            # Numbers are 1 to 8 bytes; a longer value is data memfs does not interpret, not a number.
            number = int.from_bytes(raw, "little") if value_size <= MAX_NUMBER_SIZE else None
            yield Tag(pos, name, indices, number)
            pos = body + value_size
    raise CorruptionError(at(reader.path, start, f"group {group!r} has more than {MAX_TAGS_PER_GROUP} tags"))


def parse_checkpoint(data: ByteSource) -> Checkpoint:
    """Read the groups, memory regions, memory block and CPU registers of a metadata file."""
    path, size = data.name, data.size
    reader = _Reader(data)
    if size < HEADER.size:
        raise CorruptionError(at(path, 0, f"VMware checkpoint header truncated: file is {size} bytes"))
    magic, version, count = HEADER.unpack(reader.get(0, HEADER.size, "header"))
    if magic not in MAGICS:
        raise FormatError(at(path, 0, f"not a VMware .vmss/.vmsn file (magic {magic:#x})"))
    if HEADER.size + count * GROUP.size > size:
        raise CorruptionError(
            at(path, 8, f"{count} groups of {GROUP.size} bytes do not fit in the file ({size:#x} bytes)")
        )
    table = reader.get(HEADER.size, count * GROUP.size, "group table")
    groups = []
    for i in range(count):
        raw_name, position, group_size = GROUP.unpack_from(table, i * GROUP.size)
        groups.append((raw_name.split(b"\0", 1)[0].decode("ascii", "replace"), position, group_size))
    cp = Checkpoint(path, magic, version, size, groups, [], None, {}, None, _shown(data))
    wide = magic != OLD_MAGIC
    for name, position, _ in groups:
        if name == "memory":
            _read_memory_group(cp, _iter_tags(reader, name, position, wide))
        elif name == "cpu":
            _read_cpu_group(cp, reader, _iter_tags(reader, name, position, wide))
    return cp


def _read_memory_group(cp: Checkpoint, tags) -> None:
    values: dict[tuple[str, int], Tag] = {}
    blocks = []
    for tag in tags:
        if tag.name == "Memory" and tag.data_offset is not None:
            blocks.append(tag)
        elif (
            tag.value is not None and tag.name in ("regionPageNum", "regionPPN", "regionSize") and tag.indices
        ):
            values[(tag.name, tag.indices[0])] = tag
        elif tag.name == "regionsCount" and tag.value is not None:
            values[("regionsCount", 0)] = tag
    if len(blocks) > 1:
        raise FormatError(
            at(cp.path, blocks[1].offset, f"{len(blocks)} 'Memory' blocks; memfs reads snapshots with one")
        )
    cp.memory_block = blocks[0] if blocks else None
    count_tag = values.get(("regionsCount", 0))
    if count_tag is None or not count_tag.value:
        return
    # Every region needs its own tags, so a count beyond them finds a missing one without looping 2**32 times.
    for i in range(min(count_tag.value, len(values))):
        parts = [values.get((name, i)) for name in ("regionPageNum", "regionPPN", "regionSize")]
        if any(p is None for p in parts):
            raise CorruptionError(
                at(
                    cp.path,
                    count_tag.offset,
                    f"regionsCount is {count_tag.value} but region {i} lacks one of "
                    "regionPageNum/regionPPN/regionSize",
                )
            )
        page_num, ppn, pages = (p.value for p in parts)  # type: ignore[union-attr]
        cp.regions.append((page_num, ppn, pages, parts[0].offset))  # type: ignore[union-attr]


def _read_cpu_group(cp: Checkpoint, reader: _Reader, tags) -> None:
    for tag in tags:
        if tag.name == "cpu:numVCPUs" and tag.value is not None:
            cp.num_vcpus = tag.value
            continue
        if not tag.indices:
            continue
        regs = cp.cpus.setdefault(tag.indices[0], {})
        if tag.name == "CR64" and tag.value is not None and len(tag.indices) > 1:
            regs[f"cr{tag.indices[1]}"] = tag.value
        elif tag.name in SCALAR_REGS and tag.value is not None:
            regs[tag.name.lower()] = tag.value
        elif tag.name in ("CR64", "gpregs") and tag.data_offset is not None and not tag.compressed:
            count = min(tag.size or 0, 18 * 8) // 8
            words = struct.unpack(f"<{count}Q", reader.get(tag.data_offset, count * 8, f"block {tag.name!r}"))
            names = [f"cr{i}" for i in range(count)] if tag.name == "CR64" else GPREGS_ORDER[:count]
            for reg, value in zip(names, words, strict=False):
                regs.setdefault(reg, value)


def find_metadata(path: str) -> str | None:
    """The ``.vmss``/``.vmsn`` beside ``path`` with the same stem and a VMware magic, if any."""
    stem = os.path.splitext(path)[0]
    for suffix in META_SUFFIXES:
        candidate = stem + suffix
        if candidate != path and _has_magic(candidate):
            return candidate
    return None


def _has_magic(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return _is_checkpoint(handle.read(4))
    except OSError:
        return False


def _is_checkpoint(head: bytes) -> bool:
    """Whether ``head`` starts with a checkpoint magic."""
    return len(head) >= 4 and struct.unpack_from("<I", head)[0] in MAGICS


def _open_metadata(path: str) -> FileByteSource:
    try:
        return FileByteSource(path)
    except MemfsError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise MemfsError(f"{path}: cannot open VMware metadata: {reason}") from None


def _shown(data: ByteSource) -> str:
    """How ``header.txt`` names a memory or metadata source: a file by its absolute path."""
    return os.path.abspath(data.path) if data.path else data.name


def _find_vmem(meta_path: str) -> str | None:
    stem = os.path.splitext(meta_path)[0]
    for suffix in VMEM_SUFFIXES:
        if os.path.isfile(stem + suffix):
            return stem + suffix
    return None


class VmwareSource(SegmentedFileSource):
    """Physical memory of a VMware VM: the region table of the metadata over the memory file."""

    format_name = "vmware"

    def __init__(self, data: ByteSource, checkpoint: Checkpoint, inline: bool) -> None:
        super().__init__(data)
        self.checkpoint = checkpoint
        self.inline = inline
        try:
            self._map()
        except BaseException:
            self.close()
            raise
        self._fill_metadata()

    def _map(self) -> None:
        cp = self.checkpoint
        if self.inline:
            block = cp.memory_block
            assert block is not None and block.data_offset is not None and block.size is not None
            base, container = block.data_offset, block.size
            where = f"the 'Memory' block of {cp.path}"
        else:
            base, container = 0, self.file_size
            where = self.name
        if not cp.regions:
            self._install_segments([Segment(0, base, container, 0, "memory file")], cp.path)
            return
        segments = []
        for i, (page_num, ppn, pages, origin) in enumerate(cp.regions):
            if (ppn + pages) * PAGE_SIZE > PHYSICAL_LIMIT:
                raise CorruptionError(
                    at(
                        cp.path,
                        origin,
                        f"region {i} maps physical pages {ppn:#x}-{ppn + pages:#x}, beyond the 52-bit "
                        "physical address space",
                    )
                )
            end = (page_num + pages) * PAGE_SIZE
            if end > container:
                raise CorruptionError(
                    at(
                        cp.path,
                        origin,
                        f"region {i} needs memory-file pages {page_num:#x}-{page_num + pages:#x} but {where} "
                        f"holds {container // PAGE_SIZE:#x} pages: this metadata does not match its "
                        "memory file",
                    )
                )
            segments.append(
                Segment(
                    ppn * PAGE_SIZE, base + page_num * PAGE_SIZE, pages * PAGE_SIZE, origin, f"region {i}"
                )
            )
        self._install_segments(segments, cp.path)
        covered = max((page_num + pages) * PAGE_SIZE for page_num, _, pages, _ in cp.regions)
        if covered < container:
            self.metadata.notes.append(
                f"{where}: {container - covered:#x} bytes after the last region (from offset "
                f"{base + covered:#x}) are not mapped by {cp.path}'s region table; check that the "
                "metadata belongs to this memory file"
            )

    def _fill_metadata(self) -> None:
        cp, meta = self.checkpoint, self.metadata
        kind = MAGICS[cp.magic]
        memory = "memory inline" if self.inline else f"memory in {os.path.basename(self.name)}"
        meta.format_detail = (
            f"VMware {kind} ({os.path.basename(cp.path)}), {memory}, {len(cp.regions) or 'no'} memory regions"
        )
        cpu0 = cp.cpus.get(0)
        if cpu0 and "cr3" in cpu0:
            meta.directory_table_base = cpu0["cr3"]
            meta.context = dict(sorted(cpu0.items()))
        else:
            meta.unknown("directory_table_base", "the checkpoint's cpu group has no CR64 for CPU 0")
        if cp.num_vcpus is not None and 0 < cp.num_vcpus <= MAX_PROCESSORS:
            meta.number_processors = cp.num_vcpus
        elif cp.num_vcpus is not None:
            meta.unknown("number_processors", f"cpu:numVCPUs is {cp.num_vcpus}, not a believable count")
        cr0, cr4 = (cpu0 or {}).get("cr0"), (cpu0 or {}).get("cr4")
        if cr0 is not None and cr4 is not None and cr0 & CR0_PG and not cr4 & CR4_PAE:
            # Paging without PAE exists only in 32-bit mode (long mode requires CR4.PAE).
            meta.arch, meta.pae = "x86", False
        else:
            meta.unknown("arch", "CR0/CR4 leave x64 and 32-bit PAE open, and memfs reads no EFER here")
        reason = "a VMware snapshot holds memory and registers only, no Windows kernel values"
        for name in ("os_build", "kd_debugger_data_block"):
            meta.unknown(name, reason)

    def describe(self) -> list[Section]:
        cp = self.checkpoint
        rows = [
            ("Metadata file", cp.shown),
            ("Memory file", _shown(self.byte_source) + (" ('Memory' block)" if self.inline else "")),
            ("Magic", f"{cp.magic:#x} ({MAGICS[cp.magic]})"),
            ("Version", str(cp.version)),
            ("Groups", ", ".join(name for name, _, _ in cp.groups)),
        ]
        if self.inline and cp.memory_block is not None:
            block = cp.memory_block
            rows.append(
                (
                    "Memory block",
                    f"at {block.data_offset:#x}, {block.size:#x} bytes ({block.mem_size:#x} in memory)",
                )
            )
        region_rows = [
            (
                f"#{i}",
                f"physical {ppn * PAGE_SIZE:#x}-{(ppn + pages) * PAGE_SIZE:#x} <- memory file "
                f"offset {page_num * PAGE_SIZE:#x} ({pages} pages)",
            )
            for i, (page_num, ppn, pages, _) in enumerate(cp.regions)
        ] or [("", "none: the memory file is physical memory from address 0")]
        return [Section("VMware checkpoint", rows), Section("VMware memory regions", region_rows)]


def _probe(probe: ProbeInput) -> bool:
    if _is_checkpoint(probe.head):
        return True
    if probe.path is None:
        return False  # a container's stream has no neighbouring files and no name
    # A .vmem has no signature: it is one when its metadata sits beside it (the one name-based rule),
    # and a file named *.vmem without one is claimed too, so it can be mounted raw with a warning.
    return find_metadata(probe.path) is not None or probe.path.endswith(VMEM_SUFFIXES)


def open_vmware(data: ByteSource, options: OpenOptions) -> VmwareSource | RawSource:
    """Open a ``.vmss``/``.vmsn`` or a ``.vmem`` (its metadata from options or found beside it).

    The ``.vmem`` beside a metadata file, and the metadata beside a ``.vmem``, are looked for only
    when ``data`` is a plain file (``data.path``).
    """
    name = data.name
    if _is_checkpoint(data.pread(0, 4)):
        checkpoint = parse_checkpoint(data)
        if checkpoint.memory_block is not None:
            if checkpoint.memory_block.compressed:
                raise FormatError(
                    at(
                        name,
                        checkpoint.memory_block.offset,
                        "the 'Memory' block is compressed; memfs cannot read it",
                    )
                )
            return VmwareSource(data, checkpoint, inline=True)
        vmem = _find_vmem(data.path) if data.path else None
        if vmem is None:
            stem = os.path.basename(os.path.splitext(name)[0])
            raise FormatError(
                f"{name}: this VMware metadata file holds no memory; its memory is in {stem}.vmem, "
                f"which is not beside it (mount the .vmem with --vmware-meta, or put it beside)"
            )
        source = VmwareSource(FileByteSource(vmem), checkpoint, inline=False)
        data.close()  # everything needed from the metadata file is in the checkpoint
        return source
    meta = options.vmware_meta or (find_metadata(data.path) if data.path else None)
    if meta is None:
        source = RawSource(data)
        source.metadata.notes.append(
            f"{name}: no VMware metadata (.vmss/.vmsn with the same name) found beside this .vmem, so it is "
            "mounted raw: above 3 GiB the physical addresses are likely wrong (the PCI hole is not skipped)"
        )
        return source
    with _open_metadata(meta) as meta_data:
        checkpoint = parse_checkpoint(meta_data)
    source = VmwareSource(data, checkpoint, inline=False)
    if checkpoint.memory_block is not None:
        source.metadata.notes.append(f"{meta}: holds memory inline too; the .vmem {name} is served instead")
    return source


FORMAT = FormatSpec(
    name="vmware",
    description="VMware .vmem with its .vmss/.vmsn, or a .vmsn/.vmss holding memory",
    probe=_probe,
    open=open_vmware,
)
