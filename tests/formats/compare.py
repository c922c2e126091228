"""Compare a memory source (memfs or Volatility 3) with a fixture's known physical memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from scripts.make_other_fixtures import PAGE, Fixture

WHOLE_RUN_LIMIT = 16 << 20  # runs up to this size are compared byte for byte in one read
SAMPLES_PER_LARGE_RUN = 64


def pages_to_check(fixture: Fixture) -> Iterator[int]:
    """Every page of small runs; for large (sparse) runs the written pages, both ends and a sample."""
    for start, length in fixture.runs:
        if length <= WHOLE_RUN_LIMIT:
            yield from range(start, start + length, PAGE)
        else:
            step = max(PAGE, (length // SAMPLES_PER_LARGE_RUN) // PAGE * PAGE)
            sample = set(range(start, start + length, step)) | {start, start + length - PAGE}
            sample |= {pa for pa in fixture.pages if start <= pa < start + length}
            yield from sorted(sample)


def mismatches(read: Callable[[int, int], bytes], fixture: Fixture) -> list[int]:
    """Pages where ``read(pa, 4096)`` differs from the fixture."""
    return [pa for pa in pages_to_check(fixture) if read(pa, PAGE) != fixture.read(pa, PAGE)]


def assert_source_matches(source, fixture: Fixture) -> None:
    """Runs equal, every run's bytes equal, reads across run edges and holes equal, clamping right."""
    assert list(source.runs) == fixture.runs
    assert source.size == fixture.size
    for start, length in fixture.runs:
        if length <= WHOLE_RUN_LIMIT:
            assert source.read(start, length) == fixture.read(start, length), f"run {start:#x}"
        # Straddle both edges of the run (into the hole before/after it).
        for pa in (max(start - 8, 0), start + length - 8):
            assert source.read(pa, 24) == fixture.read(pa, 24), f"edge {pa:#x}"
    assert mismatches(source.read, fixture) == []
    assert source.read(source.size - 4, 100) == fixture.read(source.size - 4, 4)
    assert source.read(source.size, 100) == b""
