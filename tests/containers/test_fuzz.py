"""Mutated and truncated containers: opening and reading everything gives a MemfsError or data, never
another exception (a traceback), whatever the damage — each layer alone, and through the whole pipeline
(detection, the container, the memory format on top, header.txt)."""

from __future__ import annotations

import random

import pytest

from memfs.containers import archive, avml, ewf, gzip_stream, snappy_stream
from memfs.detect import open_image, recognise
from memfs.exceptions import MemfsError
from memfs.formats.base import OpenOptions
from memfs.views.header_txt import render_header
from tests.containers.file_source import FileSource

CASES = 30
OPENERS = {
    "raw.snappy": snappy_stream.open_stream,
    "raw-index-64k.s2": snappy_stream.open_stream,
    "image.avml": avml.open_stream,
    "crash.dmp.gz": gzip_stream.open_stream,
    "triage.zip": lambda source: archive.open_member(source, "zip", recognise),
    "image.tar": lambda source: archive.open_member(source, "tar", recognise),
    "image.E01": lambda source: ewf.open_stream([source]),
}


def _mutations(data: bytes, rng: random.Random):
    for _ in range(CASES):
        choice = rng.random()
        if choice < 0.3:
            yield data[: rng.randrange(len(data))]
        elif choice < 0.6:
            out = bytearray(data)
            for _ in range(rng.randrange(1, 8)):
                out[rng.randrange(min(len(out), 4096))] = rng.randrange(256)  # headers, tables, first chunks
            yield bytes(out)
        else:
            out = bytearray(data)
            start = rng.randrange(len(out))
            out[start : start + rng.randrange(1, 64)] = rng.randbytes(rng.randrange(1, 64))
            yield bytes(out)


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_damage_is_a_memfs_error(fixtures, tmp_path, name):
    built = fixtures.get(name)
    if built is None:
        pytest.skip(f"{name} not built (tool missing)")
    data = built.path.read_bytes()
    rng = random.Random(name)
    for n, mutated in enumerate(_mutations(data, rng)):
        path = tmp_path / f"{n}-{built.path.name}"
        path.write_bytes(mutated)
        try:
            stream = OPENERS[name](FileSource(path))
        except MemfsError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            continue
        try:
            for offset in range(0, stream.size, 1 << 20):
                try:
                    stream.pread(offset, 1 << 20)
                except MemfsError as exc:
                    assert "\n" not in str(exc)
        finally:
            stream.close()


PIPELINE = ["raw.snappy", "raw-index.s2", "image.avml", "crash.dmp.gz", "triage.zip", "image.tar"]
PIPELINE += ["image.E01"]


@pytest.mark.parametrize("name", PIPELINE)
def test_damage_through_the_pipeline_is_a_memfs_error(fixtures, tmp_path, name):
    built = fixtures.get(name)
    if built is None:
        pytest.skip(f"{name} not built (tool missing)")
    data = built.path.read_bytes()
    rng = random.Random(f"pipeline {name}")
    buf = memoryview(bytearray(1 << 20))
    for n, mutated in enumerate(_mutations(data, rng)):
        path = tmp_path / f"{n}-{built.path.name}"
        path.write_bytes(mutated)
        try:
            source = open_image(str(path), OpenOptions(cache_size=4 << 20))
        except MemfsError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            continue
        with source:
            for pa in range(0, min(source.size, 64 << 20), len(buf)):
                try:
                    source.read_into(pa, buf)
                except MemfsError as exc:
                    assert "\n" not in str(exc) and str(path) in str(exc)
            assert "Units that failed to decode" in render_header(source)
        path.unlink()
