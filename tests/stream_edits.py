"""Random edits to a compressed stream for the codec fuzz tests (hypothesis draws)."""

from __future__ import annotations

from hypothesis import strategies as st


def edit_stream(draw, stream: bytearray, max_edits: int = 6) -> None:
    """Apply 1..max_edits edits to ``stream`` in place: bit flips, overwrites, truncation, inserted or
    deleted bytes — what a damaged file or a lying header does to a decoder's input."""
    for _ in range(draw(st.integers(1, max_edits))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete")))
        pos = draw(st.integers(0, max(0, len(stream) - 1)))
        if op == "flip" and stream:
            stream[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and stream:
            stream[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del stream[pos:]
        elif op == "insert":
            stream[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del stream[pos : pos + draw(st.integers(1, 8))]
