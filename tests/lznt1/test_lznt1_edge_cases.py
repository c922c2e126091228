"""Named edge cases of the LZNT1 decoder (docs/formats/lznt1.md §2, §3), each with a hand-built stream."""

from __future__ import annotations

import pytest

import memfs.lznt1 as lz
from memfs.exceptions import DecompressionError

from .lz_streams import CHUNK, body, compressed_chunk, displacement_bits, stored_chunk, token

TEXT = b"0123456789abcdefghijklmnopqrstuvwxyz" * 200  # 7200 bytes, no 3-byte repeats within 36


def fails(stream: bytes, out_size: int, offset: int, words: str) -> DecompressionError:
    with pytest.raises(DecompressionError) as info:
        lz.decompress(stream, out_size)
    assert info.value.offset == offset, str(info.value)
    assert words in str(info.value)
    return info.value


# -- chunk headers (§2.1) ----------------------------------------------------------------------------


def test_stored_chunk_is_copied_verbatim():
    data = TEXT[:CHUNK]
    assert lz.decompress(stored_chunk(data), CHUNK) == data


def test_compressed_flag_changes_the_meaning_of_the_same_body():
    """The same bytes behind a stored header are data; behind a compressed one, flag groups."""
    raw = bytes([0x00]) + b"abcdefgh"  # a flag byte of eight literals, then the literals
    assert lz.decompress(stored_chunk(raw), 9) == raw
    assert lz.decompress(compressed_chunk(raw), 8) == b"abcdefgh"


def test_signature_other_than_3_is_an_error_at_the_header():
    good = stored_chunk(b"abc")
    for signature in (0, 1, 2, 4, 7):
        bad = bytes([good[0], (good[1] & 0x8F) | signature << 4]) + good[2:]
        fails(good + bad, CHUNK + 3, len(good), "signature")


def test_zero_header_ends_the_stream_and_later_bytes_are_ignored():
    stream = stored_chunk(b"hello") + b"\x00\x00" + b"\xff\xfe garbage that is not a chunk"
    assert lz.decompress(stream, 5) == b"hello"


def test_a_single_trailing_byte_is_not_a_header():
    assert lz.decompress(stored_chunk(b"hello") + b"\x07", 5) == b"hello"


def test_empty_stream_decodes_to_nothing():
    assert lz.decompress(b"", 0) == b""
    assert lz.decompress(b"\x00\x00", 0) == b""
    fails(b"", 1, 0, "ends before")


# -- flag groups and tokens (§2.2, §2.3) ----------------------------------------------------------------


def test_flag_bits_are_read_from_bit_0_and_groups_hold_eight_items():
    b, decoded = body(b"abcdefgh", b"ijk", (3, 3), b"l", (12, 12))
    assert b[0] == 0x00 and b[9] == 0b0010_1000  # second group: 3 literals, token, literal, token
    assert lz.decompress(compressed_chunk(b), len(decoded)) == decoded


def test_overlapping_copy_repeats_the_last_bytes():
    b, decoded = body(b"ab", (2, 40), b"c", (1, 100))
    assert decoded == b"ab" * 21 + b"c" * 101
    assert lz.decompress(compressed_chunk(b), len(decoded)) == decoded


@pytest.mark.parametrize("u", [1] + [b + d for b in (16, 32, 64, 128, 256, 512, 1024, 2048) for d in (0, 1)])
def test_displacement_length_split_follows_the_chunk_position(u):
    """At every split boundary, a token reaching back to the chunk start with the longest length that
    fits both the split and the chunk decodes as the formula says (§2.3)."""
    lbits = 16 - displacement_bits(u)
    length = min((1 << lbits) + 2, CHUNK - u)
    b, decoded = body(TEXT[:u], (u, length))
    assert lz.decompress(compressed_chunk(b), u + length) == decoded


def test_same_token_value_means_different_copies_on_either_side_of_a_boundary():
    """0xF000 at position 16 is 4 displacement bits: distance 16, length 3.  At position 17 the split is
    5/11 bits: distance 31, which reaches before the chunk start."""
    tok = b"\x00\xf0"
    assert token(16, 16, 3) == tok
    at16 = compressed_chunk(b"\x00" + TEXT[:8] + b"\x00" + TEXT[8:16] + b"\x01" + tok)
    assert lz.decompress(at16, 19) == TEXT[:16] + TEXT[:3]
    at17 = compressed_chunk(b"\x00" + TEXT[:8] + b"\x00" + TEXT[8:16] + b"\x02" + TEXT[16:17] + tok)
    fails(at17, 20, 2 + 1 + 8 + 1 + 8 + 1 + 1, "before the start of its chunk")


def test_token_before_any_literal_is_an_error():
    fails(compressed_chunk(b"\x01" + token(1, 1, 3)), 3, 3, "before the start of its chunk")


def test_token_cut_by_the_end_of_its_chunk():
    stream = compressed_chunk(b"\x02a" + b"\x05")  # literal, then a token with only one byte left
    fails(stream, 10, 4, "cut by the end of its chunk")


# -- the 4 KiB rule (§3) ------------------------------------------------------------------------------------


def test_chunks_cannot_reach_into_the_previous_chunk():
    first = stored_chunk(TEXT[:CHUNK])
    second = compressed_chunk(b"\x02" + b"x" + token(1, 2, 3))
    fails(first + second, CHUNK + 4, len(first) + 2 + 2, "before the start of its chunk")


def test_a_chunk_may_decode_to_exactly_4096_bytes_but_not_one_more():
    b, decoded = body(b"z", (1, CHUNK - 1))
    assert lz.decompress(compressed_chunk(b), CHUNK) == decoded == b"z" * CHUNK
    b, _ = body(b"z", (1, CHUNK - 1), b"!")
    fails(compressed_chunk(b), CHUNK + 1, 2 + 1 + 1 + 2, "more than 4096")
    too_long = compressed_chunk(b"\x02" + b"z" + token(1, 1, CHUNK))
    fails(too_long, CHUNK + 1, 4, "more than 4096")


def test_a_short_chunk_is_followed_by_zeros_up_to_the_next_4k():
    """Windows and Linux ntfs3 place chunk i at 4096 * i (§3 rule 3); dissect.util does not (§5.2)."""
    stream = stored_chunk(b"head") + stored_chunk(b"tail")
    assert lz.decompress(stream, CHUNK + 4) == b"head" + bytes(CHUNK - 4) + b"tail"
    b, decoded = body(b"ab", (2, 10))
    stream = compressed_chunk(b) + compressed_chunk(b) + stored_chunk(b"end")
    assert lz.decompress(stream, 2 * CHUNK + 3) == (decoded + bytes(CHUNK - 12)) * 2 + b"end"


def test_multi_chunk_round_trip_across_4k_boundaries():
    for size in (CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17):
        data = (TEXT * 2)[:size]
        assert lz.decompress(lz.compress(data), size) == data


# -- truncation and output bounds --------------------------------------------------------------------------


def test_truncated_chunk_is_an_error_at_its_header():
    stream = stored_chunk(TEXT[:CHUNK]) + stored_chunk(TEXT[:100])
    for cut in (len(stream) - 1, CHUNK + 2 + 3, CHUNK + 2 + 2):
        fails(stream[:cut], CHUNK + 100, CHUNK + 2, "past the end")


def test_stream_cut_at_a_chunk_boundary_is_short():
    stream = stored_chunk(TEXT[:CHUNK]) + stored_chunk(TEXT[:100])
    fails(stream[: CHUNK + 2], CHUNK + 100, CHUNK + 2, "ends before")
    assert lz.decompress_into(stream[: CHUNK + 2], bytearray(CHUNK + 100), True) == CHUNK
    assert lz.decompress(stream[: CHUNK + 2], CHUNK + 100, True) == TEXT[:CHUNK]


def test_more_data_than_the_output_is_an_error_and_nothing_is_written_past_it():
    stream = lz.compress(TEXT[:6000])
    guard = bytearray(b"\xaa" * (16 + 5999 + 16))
    with pytest.raises(DecompressionError, match="more data"):
        lz.decompress_into(stream, memoryview(guard)[16 : 16 + 5999])
    assert guard[:16] == b"\xaa" * 16 and guard[-16:] == b"\xaa" * 16
    with pytest.raises(DecompressionError, match="more data"):
        lz.decompress_into(stream, bytearray(5999), True)
    with pytest.raises(DecompressionError, match="more data"):
        lz.decompress(stream, 5999, True)
    # The gap a short chunk leaves must fit too.
    fails(stored_chunk(b"a") + stored_chunk(b"b"), 2, 3, "more data")


def test_decompress_into_fills_a_memoryview_slice_exactly():
    data = TEXT[:5000]
    buf = bytearray(b"\x55" * 5040)
    assert lz.decompress_into(lz.compress(data), memoryview(buf)[20:5020]) == 5000
    assert buf[20:5020] == data and buf[:20] == b"\x55" * 20 and buf[5020:] == b"\x55" * 20


def test_output_overlapping_the_input_is_refused():
    buf = bytearray(lz.compress(TEXT[:100]) + bytes(200))
    with pytest.raises(ValueError, match="overlaps"):
        lz.decompress_into(memoryview(buf)[:50], memoryview(buf)[40:140])


def test_bad_arguments():
    with pytest.raises(ValueError):
        lz.decompress(b"", -1)
    with pytest.raises(TypeError):
        lz.decompress("text", 4)
    with pytest.raises((TypeError, BufferError)):
        lz.decompress_into(b"", bytes(4))  # read-only output


# -- chunk_offsets: the chunk index (§3) ---------------------------------------------------------------------


def test_chunk_offsets_locate_every_chunk_and_runs_decode_on_their_own():
    data = (TEXT * 2)[: CHUNK * 3] + bytes(CHUNK) + b"tail"
    stream = lz.compress(data)
    offsets = lz.chunk_offsets(stream, 5)
    assert len(offsets) == 6 and offsets[0] == 0 and offsets[5] == len(stream)
    for i in range(5):
        for j in range(i + 1, 6):
            part = lz.decompress(stream[offsets[i] : offsets[j]], len(data[i * CHUNK : j * CHUNK]))
            assert part == data[i * CHUNK : j * CHUNK], (i, j)


def test_chunk_offsets_stop_at_the_end_marker_and_check_headers():
    stream = stored_chunk(b"abc") + stored_chunk(b"def")
    assert list(lz.chunk_offsets(stream + b"\x00\x00junk", 2)) == [0, 5, 10]
    assert list(lz.chunk_offsets(b"", 0)) == [0]
    with pytest.raises(DecompressionError, match="more data") as info:
        lz.chunk_offsets(stream, 1)  # a stream holding more chunks than its output may
    assert info.value.offset == 5
    with pytest.raises(DecompressionError, match="past the end") as info:
        lz.chunk_offsets(stream[:-1], 2)
    assert info.value.offset == 5
    with pytest.raises(DecompressionError, match="signature") as info:
        lz.chunk_offsets(stream[:6] + bytes([stream[6] & 0x8F]) + stream[7:], 2)
    assert info.value.offset == 5
