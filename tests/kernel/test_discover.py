"""Symbol-free discovery: every value found equals what the image builder placed."""

from __future__ import annotations

import random
import struct
import time

import pytest

from memfs.byte_source import FileByteSource
from memfs.exceptions import CorruptionError
from memfs.formats.raw import RawSource
from memfs.kernel import kdbg as kdbg_mod
from memfs.kernel.discover import Discovery, discover, merge_metadata
from memfs.kernel.dtb import find_dtb, find_low_stubs
from memfs.memory import BufferSource, Metadata
from memfs.report import info_dict
from scripts.make_windows_image import encode_kdbg
from tests.kernel.conftest import VARIANTS


@pytest.fixture(scope="module")
def discovered(windows_images):
    """Discovery run once per variant on a raw source over the built file."""
    results = {}
    for name, image in windows_images.items():
        source = RawSource(FileByteSource(str(image.path)))
        results[name] = (image, source, discover(source))
    yield results
    for _, source, _ in results.values():
        source.close()


@pytest.mark.parametrize("name", VARIANTS)
def test_every_value_equals_what_the_builder_placed(discovered, name) -> None:
    image, source, found = discovered[name]
    meta = merge_metadata(source.metadata, found)
    assert meta.arch == image.arch
    assert meta.pae == image.pae
    assert meta.directory_table_base == image.dtb
    assert meta.kernel_base == image.kernel_base
    assert meta.kd_debugger_data_block == image.kdbg_va
    assert meta.ps_loaded_module_list == image.ps_loaded_module_list
    assert meta.ps_active_process_head == image.ps_active_process_head
    assert meta.pfn_database == image.pfn_database
    assert meta.ki_processor_block == image.ki_processor_block
    assert meta.number_processors == len(image.prcbs)
    assert meta.os_build == image.build
    assert meta.machine_image_type == (0x8664 if image.arch == "x64" else 0x14C)
    assert meta.system_time == image.system_time
    assert meta.system_uptime == image.system_uptime
    assert meta.product_type == image.product_type
    assert meta.suite_mask == image.suite_mask
    pc = "rip" if image.arch == "x64" else "eip"
    sp = "rsp" if image.arch == "x64" else "esp"
    assert meta.context[pc] == image.contexts[0][pc]
    assert meta.context[sp] == image.contexts[0][sp]
    assert found.kdbg.plain == image.kdbg_plain
    assert found.kdbg.pa == image.kdbg_pa
    assert found.kdbg.encoded == image.encoded
    assert [cpu.prcb for cpu in found.processors] == image.prcbs
    assert [cpu.context_ptr_va for cpu in found.processors] == image.context_ptrs
    assert [cpu.embedded_context_va for cpu in found.processors] == image.embedded_contexts
    assert found.missing == []
    for key in ("directory_table_base", "kd_debugger_data_block", "arch", "os_build"):
        assert key not in meta.unknown_reasons  # stale "raw image carries no header" reasons are gone
    assert found.complete
    info = info_dict(source, found)
    assert info["kd_debugger_data_block"] == f"{image.kdbg_va:#x}"
    assert info["directory_table_base"] == f"{image.dtb:#x}"


def test_dtb_method_depends_on_what_the_image_offers(discovered) -> None:
    rows = {name: dict(found.rows)["DirectoryTableBase"] for name, (_, _, found) in discovered.items()}
    assert "low stub" in rows["x64"]
    assert "self-referencing PML4" in rows["x64_encoded_nostub"]
    assert "PAE page directory self-map" in rows["pae"]
    assert "non-PAE" in rows["x86"]


@pytest.mark.parametrize("name", ["x64_encoded", "x64_encoded_nostub"])
def test_encoded_kdbg_values_and_overlays(discovered, name) -> None:
    image, source, found = discovered[name]
    kdbg = found.kdbg
    assert (kdbg.wait_never, kdbg.wait_always) == (image.ki_wait_never, image.ki_wait_always)
    assert kdbg.encoded_flag_va == image.kdp_data_block_encoded_va
    assert kdbg.encoded_flag_value == 1
    patched = bytearray(source.read(0, image.size))
    for pa, data, _ in found.overlays:
        patched[pa : pa + len(data)] = data
    assert bytes(patched[image.kdbg_pa : image.kdbg_pa + 0x10]) == image.kdbg_plain[:0x10]
    flag_pa = image.translate(image.kdp_data_block_encoded_va)
    assert patched[flag_pa] == 0 and image.memory[flag_pa] == 1
    # the block crosses a page boundary: the second part lands on its own (scattered) physical page
    second_va = (image.kdbg_va | 0xFFF) + 1
    second_pa = image.translate(second_va)
    offset = second_va - image.kdbg_va
    assert bytes(patched[second_pa : second_pa + 0x40]) == image.kdbg_plain[offset : offset + 0x40]


@pytest.mark.parametrize("name", VARIANTS)
def test_selector_overlays_hit_every_context(discovered, name) -> None:
    image, _, found = discovered[name]
    patched = bytearray(image.memory)
    for pa, data, _ in found.overlays:
        patched[pa : pa + len(data)] = data
    for ctx_va in image.embedded_contexts + [va for va in image.context_ptrs if va is not None]:
        if image.arch == "x64":
            pa = image.translate(ctx_va + 0x38)
            assert struct.unpack_from("<6H", patched, pa) == (0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)
        else:
            assert struct.unpack_from("<I", patched, image.translate(ctx_va + 0xBC))[0] == 0x08
            assert struct.unpack_from("<I", patched, image.translate(ctx_va + 0xC8))[0] == 0x10
            assert struct.unpack_from("<4I", patched, image.translate(ctx_va + 0x8C)) == (0, 0x30, 0x23, 0x23)


def test_header_context_obeys_the_mxcsr_rule(discovered) -> None:
    _, _, found = discovered["x64"]
    ctx = found.header_context
    assert len(ctx) == 0x4D0
    assert struct.unpack_from("<I", ctx, 0x34) == struct.unpack_from("<I", ctx, 0x118)
    assert struct.unpack_from("<H", ctx, 0x38)[0] == 0x10


def test_decode_inverts_encode_and_the_low_dword_trick_holds() -> None:
    rng = random.Random(3)
    for _ in range(200):
        plain = rng.randbytes(64)
        wn, wa = rng.getrandbits(64), rng.getrandbits(64)
        e = 0xFFFFF80000000000 | rng.getrandbits(40)
        encoded = encode_kdbg(plain, wn, wa, e)
        assert kdbg_mod.decode_block(encoded, wn, wa, e) == plain
        wrong_low = kdbg_mod.decode_block(encoded, wn, wa, e & 0xFFFFFFFF00000000)
        for i in range(0, 64, 8):  # low DWORDs survive an unknown low half of E (§10.4)
            assert wrong_low[i : i + 4] == plain[i : i + 4]


def test_dtb_hint_from_metadata_is_validated(windows_images) -> None:
    image = windows_images["x64_encoded_nostub"]
    good = BufferSource([(0, image.memory)], Metadata(arch="x64", directory_table_base=image.dtb))
    result, _ = find_dtb(good, lambda: find_low_stubs(good))
    assert result.dtb == image.dtb and "stated by the image" in result.method
    bad = BufferSource([(0, image.memory)], Metadata(arch="x64", directory_table_base=0x5000))
    result, log = find_dtb(bad, lambda: find_low_stubs(bad))
    assert result.dtb == image.dtb and "does not map KUSER_SHARED_DATA" in log[0]


@pytest.mark.parametrize("kind", ["zeros", "random", "x64_without_kdbg"])
def test_garbage_gives_reasons_not_errors(windows_images, kind) -> None:
    if kind == "zeros":
        memory = bytes(8 << 20)
    elif kind == "random":
        memory = random.Random(5).randbytes(8 << 20)
    else:
        image = windows_images["x64"]
        memory = bytearray(image.memory)
        tag_pa = image.kdbg_pa + 0x10
        memory[tag_pa : tag_pa + 4] = b"XXXX"
        memory = bytes(memory)
    source = BufferSource([(0, memory)])
    started = time.monotonic()
    found = discover(source)
    assert time.monotonic() - started < 10
    meta = merge_metadata(source.metadata, found)
    assert meta.kd_debugger_data_block is None
    assert "kd_debugger_data_block" in meta.unknown_reasons
    assert any("KdDebuggerDataBlock" in text for text in found.missing)
    if kind == "x64_without_kdbg":
        assert meta.directory_table_base == windows_images["x64"].dtb
        assert meta.system_time is not None
        assert "KDBG not found" in meta.unknown_reasons["kd_debugger_data_block"]
    else:
        assert meta.directory_table_base is None
        assert "no valid page-table root" in meta.unknown_reasons["directory_table_base"]


def test_discovery_never_writes_into_the_source(windows_images) -> None:
    """The caller owns the result: the source's metadata stays what the image states."""
    image = windows_images["x64_encoded"]
    stated = Metadata(format="raw", notes=["stated note"])
    stated.unknown("directory_table_base", "a raw image carries no header")
    source = BufferSource([(0, image.memory)], stated)
    before = repr(source.metadata)
    first, second = discover(source), discover(source)
    assert repr(source.metadata) == before
    assert first is not second and first.values == second.values and first.overlays == second.overlays
    merged = merge_metadata(source.metadata, first)
    assert merged.directory_table_base == image.dtb and merged is not source.metadata
    assert "directory_table_base" not in merged.unknown_reasons  # the stale reason is replaced
    assert merged.notes[0] == "stated note"
    # what the source states wins over what discovery finds
    source.metadata.os_build = 1234
    assert merge_metadata(source.metadata, discover(source)).os_build == 1234


def test_skipped_discovery_says_why(windows_images, tmp_path) -> None:
    empty = discover(BufferSource([]))
    assert empty.skipped and not empty.complete and empty.values == {}
    assert [section.rows for section in empty.sections()] == [[("Not run", empty.skipped)]]
    arm = BufferSource([(0, windows_images["x64"].memory)], Metadata(arch="arm64"))
    found = discover(arm)
    assert found.skipped == "kernel discovery does not support this arch"
    assert found.missing == [found.skipped]
    assert merge_metadata(arm.metadata, found) == arm.metadata


class _Broken(BufferSource):
    """A source whose reads of ``bad`` (a range of physical addresses) fail, as undecodable units do."""

    def __init__(self, memory: bytes, bad: range) -> None:
        super().__init__([(0, memory)])
        self.bad = bad

    def _read_mapped(self, pa: int, n: int) -> bytes:
        if pa < self.bad.stop and pa + n > self.bad.start:
            raise CorruptionError(f"<memory>: offset {max(pa, self.bad.start):#x}: unit does not decode")
        return super()._read_mapped(pa, n)


def test_failing_reads_are_skipped_and_said(windows_images) -> None:
    """The 2 MiB holding the kernel image fail to decode: discovery steps over them, keeps the DTB it
    found elsewhere, and says what it skipped and what is missing because of it."""
    image = windows_images["x64"]
    kernel_pa = image.translate(image.kernel_base)
    source = _Broken(image.memory, range(kernel_pa, kernel_pa + (2 << 20)))
    assert image.kdbg_pa in source.bad
    found = discover(source)
    assert found.complete and found.skipped_units
    assert all("does not decode" in message for message in found.skipped_units)
    assert found.values["directory_table_base"] == image.dtb  # below the damage: found
    assert found.kdbg is None and "kd_debugger_data_block" in found.reasons
    merged = merge_metadata(source.metadata, found)
    assert any("kernel discovery skipped" in note for note in merged.notes)
    assert not source.metadata.notes
    assert isinstance(found, Discovery) and found.missing


@pytest.mark.parametrize("name", ["x64_encoded", "pae", "x86"])
@pytest.mark.parametrize("seed", range(4))
def test_corrupted_structures_never_raise(windows_images, name, seed) -> None:
    """Random damage to page tables, PE headers, exports, KDBG and processor block: no exception."""
    image = windows_images[name]
    rng = random.Random(seed)
    memory = bytearray(image.memory)
    targets = [
        image.dtb & ~0xFFF,
        0x200000,
        0x201000,
        image.translate(image.kernel_base),
        image.translate(image.kernel_base + 0x70000),
        image.kdbg_pa & ~0xFFF,
        image.translate(image.ki_processor_block) & ~0xFFF,
    ]
    for page in targets:
        for _ in range(rng.randrange(4, 64)):
            memory[page + rng.randrange(0x1000)] = rng.randrange(256)
    source = BufferSource([(0, bytes(memory))])
    started = time.monotonic()
    found = discover(source)
    assert time.monotonic() - started < 20
    assert isinstance(found.missing, list)
    meta = merge_metadata(source.metadata, found)
    if meta.kd_debugger_data_block is not None:  # whatever was accepted passed validation
        assert found.kdbg.plain[0x10:0x14] == b"KDBG"


def test_the_low_stub_is_parsed_once(windows_images, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DTB search and the kernel search share one parse of the x64 PROCESSOR_START_BLOCK."""
    from memfs.kernel import dtb

    calls = []
    real = dtb.find_low_stubs
    monkeypatch.setattr(dtb, "find_low_stubs", lambda source: calls.append(source) or real(source))
    found = discover(BufferSource([(0, windows_images["x64"].memory)]))
    assert "low stub" in dict(found.rows)["DirectoryTableBase"] and found.kernel is not None
    assert len(calls) == 1
