"""Our LZNT1 against an independent decoder, dissect.util's (docs/formats/lznt1.md §5.2).

dissect.util decodes every stream our encoder writes, and where our decoder accepts a mutated stream,
dissect.util decoding it chunk by chunk (placed at 4 KiB steps, lz_streams.reference_decode) agrees.
"""

from __future__ import annotations

from dissect.util.compression import lznt1 as dissect_lznt1
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memfs.lznt1 as lz
from memfs.exceptions import DecompressionError
from tests.xpress.xp_memlike import KINDS, memory_like
from tests.xpress.xp_shared import manifest, vector_dir

from .lz_streams import reference_decode

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 7000), st.integers(0, 999)), max_size=4))
def test_dissect_decodes_what_we_encode(segments):
    data = memory_like(segments)
    assert dissect_lznt1.decompress(lz.compress(data)) == data


def test_dissect_decodes_our_encoding_of_every_xpress_vector_original():
    """The 127 originals of shared/data/xpress (text, binaries, edge cases) as LZNT1 inputs."""
    entries = manifest()
    if not entries:
        vector_dir()  # skips: no shared data
    root = vector_dir()
    for entry in entries:
        original = (root / entry["expected"]).read_bytes()
        stream = lz.compress(original)
        assert dissect_lznt1.decompress(stream) == original, entry["expected"]
        assert lz.decompress(stream, len(original)) == original, entry["expected"]


@st.composite
def mutated(draw):
    kind = draw(st.sampled_from(KINDS))
    data = memory_like([(kind, draw(st.integers(1, 12000)), draw(st.integers(0, 999))), ("text", 3000, 1)])
    stream = bytearray(lz.compress(data))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(stream) - 1))
        if draw(st.booleans()):
            stream[pos] ^= 1 << draw(st.integers(0, 7))
        else:
            stream[pos] = draw(st.integers(0, 255))
    return bytes(stream), len(data)


@SETTINGS
@given(mutated())
def test_accepted_mutations_decode_as_the_reference_does(case):
    stream, size = case
    out = bytearray(size + 3 * 4096)
    try:
        n = lz.decompress_into(stream, out, True)
    except DecompressionError:
        return
    assert bytes(out[:n]) == reference_decode(stream)
