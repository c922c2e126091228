"""One named test per edge case of docs/formats/xpress.md (§2.1-§2.4, §3.1-§3.5, §4 table rows).

Synthetic streams are built either by hand or with the independent Python writer/decoder in
xp_reference.py, so these tests run without the shared vectors; vector-based checks skip without them.
"""

from __future__ import annotations

import random
import sys
import threading
import time

import pytest

import memfs.xpress as xp
from memfs.exceptions import DecompressionError

from . import xp_reference as ref
from .xp_shared import read_vector

# [MS-XCA] 3.1 example 2, docs/formats/xpress.md §2.3
MSXCA_PLAIN_ABC = bytes.fromhex("ffffff1f61626317000fff2601")
ABC300 = b"abc" * 100


def rand(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def check_huffman(data: bytes) -> ref.HuffmanTrace:
    """Encode with our encoder, decode with ours and with the reference; return the reference trace."""
    stream = xp.compress_huffman(data)
    assert xp.decompress_huffman(stream, len(data)) == data
    trace = ref.huffman_decode(stream, len(data))
    assert trace.output == data
    return trace


# --- Plain LZ77 (docs/formats/xpress.md §2) -----------------------------------------------------------------


def test_plain_msxca_example_16bit_length_escape():
    """docs/formats/xpress.md §2.3: nibble 15, byte 255, u16 294 = length - 3 -> one 297-byte match."""
    assert xp.decompress_plain(MSXCA_PLAIN_ABC, 300) == ABC300
    assert xp.compress_plain(ABC300) == MSXCA_PLAIN_ABC


def test_plain_32bit_length_escape():
    """docs/formats/xpress.md §2.1 rule 4: u16 0 then u32 holding length - 3 when length - 3 >= 65536."""
    length = 70000
    stream = ref.plain_stream([0x41, (length, 1)])
    assert b"\xff\x00\x00" + (length - 3).to_bytes(4, "little") in stream
    assert xp.decompress_plain(stream, 1 + length) == b"A" * (1 + length)
    ours = xp.compress_plain(b"A" * (1 + length))
    assert b"\xff\x00\x00" + (length - 3).to_bytes(4, "little") in ours
    assert xp.decompress_plain(ours, 1 + length) == b"A" * (1 + length)


def test_plain_16bit_escape_boundary_lengths():
    """Lengths at each escape boundary: 9/10 (nibble), 24/25 (byte), 279/280 (u16), 65538/65539 (u32)."""
    for length in (3, 9, 10, 24, 25, 279, 280, 65535, 65538, 65539, 65540):
        data = b"xy" + b"y" * length
        stream = ref.plain_stream([0x78, 0x79, (length, 1)])
        assert xp.decompress_plain(stream, len(data)) == data, length
        assert xp.decompress_plain(xp.compress_plain(data), len(data)) == data, length


def test_plain_escape_below_minimum_is_an_error():
    """docs/formats/xpress.md §2.2: the u16/u32 form must hold >= 22."""
    stream = bytearray(ref.plain_stream([0x41, (400, 1)]))
    i = stream.index(b"\xff", 7)
    stream[i + 1 : i + 3] = (21).to_bytes(2, "little")
    with pytest.raises(DecompressionError, match="length"):
        xp.decompress_plain(bytes(stream), 401)


def test_plain_shared_length_nibble():
    """docs/formats/xpress.md §2.1 rule 2: the second nibble match uses the high half of the first one's
    byte."""
    data = b"abcd" + b"abcd" * 4 + b"efgh" + b"efgh" * 5
    symbols = [*b"abcd", (16, 4), *b"efgh", (20, 4)]
    stream = ref.plain_stream(symbols)
    # 4-byte flag word, 4 literals, token, nibble byte (low = 16-10, high = 20-10), 4 literals, token.
    assert len(stream) == 4 + 4 + 2 + 1 + 4 + 2
    assert stream[10] == (20 - 10) << 4 | (16 - 10)
    assert xp.decompress_plain(stream, len(data)) == data
    assert xp.compress_plain(data) == stream


def test_plain_trailing_all_ones_flag_word():
    """docs/formats/xpress.md §2.1/§4 row 8: 32 symbols -> a final flag word 0xFFFFFFFF that describes
    nothing."""
    data = bytes(range(32))
    stream = xp.compress_plain(data)
    assert len(stream) == 4 + 32 + 4 and stream.endswith(b"\xff\xff\xff\xff")
    assert xp.decompress_plain(stream, 32) == data


def test_plain_padding_flag_bits_stop_decoding():
    """docs/formats/xpress.md §4 row 9: match bits with no input left are padding."""
    stream = bytes.fromhex("3f000000") + b"abcdefghijklmnopqrstuvwxyz"
    assert xp.decompress_plain(stream, 26) == b"abcdefghijklmnopqrstuvwxyz"


def test_plain_flag_word_filling_up_right_after_a_match():
    """docs/formats/xpress.md §2.4 step 2: a match's bytes (and its nibble byte) come before the next flag
    word."""
    symbols = [*range(65, 65 + 31), (20, 1), 0x7A]  # the 32nd symbol is a match needing a nibble
    stream = ref.plain_stream(symbols)
    data = bytes(range(65, 65 + 31)) + bytes([65 + 30]) * 20 + b"z"
    assert stream[4 + 31 + 2] == 20 - 10  # nibble byte right after the token, before the flag word
    assert xp.decompress_plain(stream, len(data)) == data
    stream, expected = read_vector("samba_inline/plain_test_lzxpress3.lzplain")
    assert xp.decompress_plain(stream, len(expected)) == expected


@pytest.mark.parametrize("size", [65535, 65536, 65537])
def test_plain_single_long_match_around_64k(size):
    """docs/formats/xpress.md §4 row 7: plain has no blocks; one match can produce 64 KiB or more."""
    data = bytes(size)
    assert xp.decompress_plain(xp.compress_plain(data), size) == data
    name = {65535: "64k-minus-one-zeros", 65536: "64k-zeros", 65537: "64k-plus-one-zeros"}[size]
    stream, expected = read_vector(f"compressed-plain/{name}.lzplain")
    assert xp.decompress_plain(stream, size) == expected


def test_plain_32bit_escape_windows_vectors():
    for name in ("repeating", "fuzzing-3591f9dc02bb00a54b60", "fuzzing-a3115a81d1ac500318f9"):
        stream, expected = read_vector(f"compressed-plain/{name}.lzplain")
        assert xp.decompress_plain(stream, len(expected)) == expected


# --- LZ77+Huffman (docs/formats/xpress.md §3) ---------------------------------------------------------------


def test_huffman_16bit_length_escape():
    trace = check_huffman(b"Q" + b"z" * 1000)
    assert "u16" in trace.escapes and "u32" not in trace.escapes


def test_huffman_32bit_length_escape():
    """docs/formats/xpress.md §3.1: byte 255, u16 0, u32 = length - 3 (Windows: length - 3 >= 65536)."""
    trace = check_huffman(b"Q" + b"z" * 70000)
    assert "u32" in trace.escapes
    for name in ("repeating", "fuzzing-3591f9dc02bb00a54b60", "fuzzing-a3115a81d1ac500318f9"):
        stream, expected = read_vector(f"compressed-huffman/{name}.lzhuff")
        assert xp.decompress_huffman(stream, len(expected)) == expected


def test_huffman_extra_length_bytes_at_word_boundaries():
    """docs/formats/xpress.md §3.3 step 4 / §3.5 step 5: many long matches put extra bytes at every bit
    phase."""
    rng = random.Random(5)
    parts = []
    for _ in range(400):
        chunk = rng.randbytes(rng.randint(1, 9))
        parts.append(chunk + chunk[-1:] * rng.randint(18, 600))
    check_huffman(b"".join(parts))


def test_huffman_64k_blocks_chain_tables():
    """docs/formats/xpress.md §3.4 step 5: every 64 KiB of output starts a new 256-byte table."""
    data = rand(200000, 1)
    trace = check_huffman(data)
    assert trace.block_sizes == [65536, 65536, 65536, 200000 - 3 * 65536]


def test_huffman_match_crossing_block_boundary():
    """docs/formats/xpress.md §4 row 5: a match overrunning 65536 makes the block longer; the next table
    follows."""
    data = rand(65000, 2) + bytes(2000) + rand(3000, 3)
    trace = check_huffman(data)
    assert trace.block_sizes[0] > 65536 and sum(trace.block_sizes) == len(data)
    assert len(trace.block_sizes) == 2
    stream, expected = read_vector("compressed-huffman/64k-plus-one-zeros.lzhuff")
    assert ref.huffman_decode(stream, len(expected)).block_sizes == [65537]
    assert xp.decompress_huffman(stream, len(expected)) == expected


def test_huffman_output_exactly_64k_keeps_eof_in_same_block():
    """docs/formats/xpress.md §4 row 4: EOF after the 65536th byte, in the same block; no extra table."""
    data = rand(65536, 4)
    trace = check_huffman(data)
    assert trace.block_sizes == [65536]
    # The EOF code (not consumed: the decoder stops at out_size) sits in the words left over.
    assert trace.next_symbol == 256 and 0 <= len(xp.compress_huffman(data)) - trace.end_pos <= 4
    for name in ("64k-zeros", "repeating-exactly-64k", "trigram_64k"):
        stream, expected = read_vector(f"compressed-huffman/{name}.lzhuff")
        assert len(expected) == 65536
        assert xp.decompress_huffman(stream, 65536) == expected


def test_huffman_eof_symbol_ends_last_block():
    """docs/formats/xpress.md §3.1/§4 row 3: the encoder appends symbol 256; the decoder stops at out_size."""
    stream = xp.compress_huffman(ABC300)
    trace = ref.huffman_decode(stream, 300)
    assert trace.next_symbol == 256 and 0 <= len(stream) - trace.end_pos <= 4
    assert ref.huffman_decode(stream, 303).last_symbol == 256  # a size-unaware decoder: match (3, 1)
    assert xp.decompress_huffman(stream, 300) == ABC300


@pytest.mark.parametrize("extra", [1, 2, 100, 5000])
def test_huffman_asking_for_more_than_encoded_is_an_error(extra):
    """docs/formats/xpress.md §4 rows 1 and 3: the EOF symbol read as a (3, 1) match overruns 1-2 extra bytes;
    asking for much more consumes bits past the end of the input (§3.3 step 5)."""
    stream = xp.compress_huffman(ABC300)
    with pytest.raises(DecompressionError) as info:
        xp.decompress_huffman(stream, 300 + extra)
    assert info.value.offset is not None and info.value.offset <= len(stream)


def test_huffman_eof_symbol_is_not_needed_to_stop():
    """docs/formats/xpress.md §4 row 3: with the size known, the EOF symbol is never decoded; a decoder that
    read
    it would get a (length 3, distance 1) match and 3 spurious bytes, as size-unaware decoders do."""
    stream = xp.compress_huffman(ABC300)
    assert xp.decompress_huffman(stream, 303) == ABC300 + b"ccc"


@pytest.mark.parametrize(
    "data",
    [b"abcdzzzz", b"hello world, zzzz", bytes(range(200)) + b"qqqq"],
    ids=["abcdzzzz", "hello-zzzz", "range200-qqqq"],
)
def test_huffman_final_symbol_256_is_a_real_match(data):
    """Symbol 256 doubles as EOF (§3.1) but is a valid match too: here the last data symbol is a
    (3, 1) match decoded after the last input word was read, with the EOF code still in the window."""
    stream = xp.compress_huffman(data)
    assert ref.huffman_decode(stream, len(data)).last_symbol == 256
    assert xp.decompress_huffman(stream, len(data)) == data


def test_plain_asking_for_more_than_encoded_is_an_error():
    """docs/formats/xpress.md §2.2 step 6."""
    with pytest.raises(DecompressionError, match="stream ends") as info:
        xp.decompress_plain(MSXCA_PLAIN_ABC, 301)
    assert info.value.offset == len(MSXCA_PLAIN_ABC)


def test_decode_to_less_than_encoded_stops_at_out_size():
    """docs/formats/xpress.md §2.2 step 1 / §3.4 step 6: stop exactly at out_size when it falls between
    symbols."""
    text = bytes(range(256)) * 2
    assert xp.decompress_plain(xp.compress_plain(text[:256]), 100) == text[:100]
    assert xp.decompress_huffman(xp.compress_huffman(text[:256]), 100) == text[:100]


def test_match_past_out_size_is_an_error():
    """docs/formats/xpress.md §2.2 step 5 and §3.4 step 7 (strict): never write past the requested size."""
    with pytest.raises(DecompressionError, match="past the expected output size"):
        xp.decompress_plain(MSXCA_PLAIN_ABC, 299)
    with pytest.raises(DecompressionError, match="past the expected output size"):
        xp.decompress_huffman(xp.compress_huffman(ABC300), 299)


def test_huffman_output_shorter_than_one_block():
    """docs/formats/xpress.md §4 row 2: hibernation sets of < 16 pages; one 4096-byte page."""
    check_huffman(rand(2048, 6) + bytes(2048))
    stream, expected = read_vector("compressed-huffman/9e0b6a12febf38e98f13.lzhuff")
    assert len(expected) == 4096
    assert xp.decompress_huffman(stream, 4096) == expected


def test_huffman_refill_past_end_reads_zeros():
    """docs/formats/xpress.md §3.3 step 5 / §4 row 10: the final reserved word is pure prefetch; without it
    the
    decoder reads zeros and still succeeds."""
    data = b"abc" * 500 + rand(5000, 9)
    stream = xp.compress_huffman(data)
    assert stream[-2:] == b"\0\0"
    assert xp.decompress_huffman(stream[:-2], len(data)) == data


def test_huffman_single_symbol_block_gets_dummy_symbol():
    """docs/formats/xpress.md §3.2 step 5 / §3.5 step 3: a one-symbol block still has a complete code."""
    check_huffman(b"\x00")
    check_huffman(b"")


def test_huffman_stream_shorter_than_260_bytes_is_an_error():
    """docs/formats/xpress.md §3.4 step 2: table plus the initial two words must be present."""
    stream = xp.compress_huffman(b"abc")
    with pytest.raises(DecompressionError, match="truncated"):
        xp.decompress_huffman(stream[:259], 3)


def test_huffman_incomplete_code_is_an_error():
    """docs/formats/xpress.md §3.2 step 5: Kraft sum must be exactly 1."""
    table = bytearray(256)
    table[0] = 0x11  # symbols 0 and 1 with length 1: complete
    assert xp.decompress_huffman(bytes(table) + bytes(4), 4) == bytes(4)
    table[0] = 0x21  # lengths 1 and 2: incomplete
    with pytest.raises(DecompressionError, match="complete prefix code") as info:
        xp.decompress_huffman(bytes(table) + bytes(4), 4)
    assert info.value.offset == 0


def test_huffman_truncated_bit_stream_is_an_error():
    """docs/formats/xpress.md §3.3 step 5: zeros fill prefetch only; consuming bits past the end fails."""
    data = rand(3000, 7)
    stream = xp.compress_huffman(data)
    with pytest.raises(DecompressionError):
        xp.decompress_huffman(stream[: len(stream) - 40], len(data))


def test_distance_before_start_is_an_error():
    stream = ref.plain_stream([0x41, (5, 2)])
    with pytest.raises(DecompressionError, match="distance") as info:
        xp.decompress_plain(stream, 6)
    assert info.value.offset == 5


@pytest.mark.parametrize("decode", [xp.decompress_plain, xp.decompress_huffman])
def test_zero_out_size_returns_empty(decode):
    assert decode(b"", 0) == b""


@pytest.mark.parametrize("decode", [xp.decompress_plain, xp.decompress_huffman])
def test_negative_out_size_is_rejected(decode):
    with pytest.raises(ValueError):
        decode(b"", -1)


# --- Python API ---------------------------------------------------------------------------------


def test_inputs_accept_any_bytes_like_object():
    stream = xp.compress_plain(bytearray(ABC300))
    assert xp.compress_plain(memoryview(ABC300)) == stream
    assert xp.decompress_plain(bytearray(stream), 300) == ABC300
    assert xp.decompress_plain(memoryview(b"xx" + stream)[2:], 300) == ABC300
    with pytest.raises(TypeError):
        xp.decompress_plain("text", 3)


def test_decode_into_requires_writable_non_overlapping_buffer():
    stream = xp.compress_huffman(ABC300)
    with pytest.raises(BufferError):
        xp.decompress_huffman_into(stream, bytes(300))
    buf = bytearray(stream) + bytearray(300)
    with pytest.raises(ValueError, match="overlaps"):
        xp.decompress_huffman_into(memoryview(buf)[: len(stream)], memoryview(buf)[10 : 10 + 300])
    out = bytearray(300)
    assert xp.decompress_huffman_into(stream, out) == 300 and out == ABC300


def test_decoders_run_in_parallel_threads():
    """The GIL is released: concurrent decodes in several threads give correct results."""
    data = rand(40000, 8) + bytes(40000)
    streams = (xp.compress_plain(data), xp.compress_huffman(data))
    errors = []

    def work():
        for _ in range(20):
            if xp.decompress_plain(streams[0], len(data)) != data:
                errors.append("plain")
            if xp.decompress_huffman(streams[1], len(data)) != data:
                errors.append("huffman")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def ran_during(call) -> bool:
    """True if a waiting Python thread got to run while `call` was executing.

    With a very long switch interval the interpreter never forces a GIL hand-over, so the waiter can
    only run inside `call` if `call` releases the GIL itself."""
    state = {"finished": False, "ran_during": False}
    go = threading.Event()

    def waiter():
        go.wait()
        state["ran_during"] = not state["finished"]

    thread = threading.Thread(target=waiter)
    thread.start()
    go.set()
    call()
    state["finished"] = True
    thread.join()
    return state["ran_during"]


@pytest.mark.parametrize(
    "name", ["decompress_plain", "decompress_huffman", "compress_plain", "compress_huffman"]
)
def test_gil_is_released_during_a_call(name):
    # Decoding is fast, so its input is larger: each call lasts a few milliseconds either way.
    size = 1 << 23 if name.startswith("decompress") else 1 << 21
    data = rand(size, 10) + bytes(size // 2)
    fn = getattr(xp, name)
    if name.startswith("decompress"):
        stream = (xp.compress_plain if name == "decompress_plain" else xp.compress_huffman)(data)
        args = (stream, len(data))
    else:
        args = (data,)
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        # A busy machine may not schedule the waiter within one call: any attempt proves the release,
        # and a function that keeps the GIL can never pass, however long it is given.
        deadline = time.monotonic() + 30
        while not ran_during(lambda: fn(*args)):
            assert time.monotonic() < deadline, f"{name} never let another thread run during a call"
    finally:
        sys.setswitchinterval(old)
