"""LZNT1 streams made by Windows (docs/formats/lznt1.md §5.1).

1. [MS-XCA] §3.3: the spec's example, "produced by the algorithm using the standard compression engine"
   (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-xca/94164d22-2928-4417-876e-d193766c4db6).
2. A block of a real DumpIt ``.zdmp`` (block 0: the crash dump header and its first pages), published as
   ``block1.test`` in the first commit (7dfc7cf) of github.com/JakePeralta7/z2dmp-rust, a mirror of
   MagnetForensics/z2dmp-rust.  The repository states no licence, so the file is not committed here: the
   test reads it from ``shared/data/lznt1/dumpit_block0.lznt1`` and skips when it is absent.
"""

from __future__ import annotations

import hashlib

import pytest
from dissect.util.compression import lznt1 as dissect_lznt1

import memfs.lznt1 as lz
from tests.conftest import shared_dir

from .lz_streams import iter_chunks

MSXCA_TEXT = (
    b"F# F# G A A G F# E D D E F# F# E E F# F# G A A G F# E D D E F# E D D E E F# D E F# G F# D E F# G F# "
    b"E D E A F# F# G A A G F# E D D E F# E D D\x00"
)
MSXCA_STREAM = bytes.fromhex(
    "38b08846232000204720410010a24701a045204400084501507900c045200524138805b4024a44ef0358028c0916014845"
    "00be009e000401189000"
)

DUMPIT_BLOCK = "data/lznt1/dumpit_block0.lznt1"
DUMPIT_SHA256 = "8d2598d729eee2d392a7b7cd8edbce21f36b9e6a5e4d92535667bfbf580ff838"
DUMPIT_DECODED_SIZE = 0x200000
DUMPIT_DECODED_SHA256 = "c16ae1a433058a2d8d616da6d8a93d1a44a6f112e0392aeb570735e11344557b"


def test_msxca_example_decodes_to_the_documented_text():
    assert len(MSXCA_TEXT) == 142 and len(MSXCA_STREAM) == 59
    assert lz.decompress(MSXCA_STREAM, 142) == MSXCA_TEXT


def test_our_encoding_of_the_msxca_text_is_no_larger_than_windows():
    ours = lz.compress(MSXCA_TEXT)
    assert len(ours) <= len(MSXCA_STREAM)
    assert dissect_lznt1.decompress(ours) == MSXCA_TEXT


@pytest.fixture(scope="module")
def dumpit_block() -> bytes:
    shared = shared_dir()
    path = shared / DUMPIT_BLOCK if shared else None
    if path is None or not path.is_file():
        pytest.skip(f"{DUMPIT_BLOCK} not found in ../shared (see this module's docstring)")
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == DUMPIT_SHA256
    return data


def test_dumpit_block_decodes_to_its_known_digest(dumpit_block):
    out = lz.decompress(dumpit_block, DUMPIT_DECODED_SIZE)
    assert hashlib.sha256(out).hexdigest() == DUMPIT_DECODED_SHA256
    assert out[:8] == b"PAGEDU64"  # a 64-bit crash dump header, as a .zdmp holds (docs/formats/zdmp.md §1)
    assert out == dissect_lznt1.decompress(dumpit_block)


def test_dumpit_block_shape_matches_what_rtlcompressbuffer_writes(dumpit_block):
    """512 chunks, all with signature 3, some stored, no end marker (docs/formats/lznt1.md §4)."""
    chunks = list(iter_chunks(dumpit_block))
    assert len(chunks) == 512
    assert {header >> 12 & 7 for _, header, _ in chunks} == {3}
    assert sum(1 for _, header, _ in chunks if not header & 0x8000) == 8
    last_offset, _, last_body = chunks[-1]
    assert last_offset + 2 + len(last_body) == len(dumpit_block)


def test_our_encoder_is_within_10_percent_of_windows_on_the_dumpit_block(dumpit_block):
    original = lz.decompress(dumpit_block, DUMPIT_DECODED_SIZE)
    ours = lz.compress(original)
    assert len(ours) <= 1.10 * len(dumpit_block), (len(ours), len(dumpit_block))
    assert lz.decompress(ours, DUMPIT_DECODED_SIZE) == original
