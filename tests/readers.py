"""Independent readers used to cross-check memfs: kdmp-parser and Volatility 3's crash layers.

Kept small and shared by the test modules.  Both libraries are test dependencies; a test that
needs one skips when it is not installed.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest


def kdmp_read_pages(path: str | Path) -> dict[int, bytes]:
    """Every page kdmp-parser finds in a 64-bit kernel dump, as ``{physical address: bytes}``."""
    kdmp_parser = pytest.importorskip("kdmp_parser")
    parser = kdmp_parser.KernelDumpParser(str(path))
    return {pa: bytes(data) for pa, data in parser.pages.items()}


@functools.lru_cache(maxsize=8)
def _vol3_layer(path: str):
    """A Volatility 3 crash layer standing alone: a context, a FileLayer, the crash layer on top."""
    pytest.importorskip("volatility3")
    from volatility3.framework import contexts
    from volatility3.framework.layers import crash, physical

    with open(path, "rb") as handle:
        valid_dump = handle.read(8)[4:]
    layer_class = crash.WindowsCrashDump64Layer if valid_dump == b"DU64" else crash.WindowsCrashDump32Layer
    context = contexts.Context()
    context.config["file.location"] = Path(path).resolve().as_uri()
    context.add_layer(physical.FileLayer(context, "file", "file"))
    context.config["crash.base_layer"] = "file"
    layer = layer_class(context, "crash", "crash")
    context.add_layer(layer)
    return layer


def vol3_crash_read(path: str | Path, pa: int, n: int) -> bytes:
    """``n`` bytes at physical address ``pa`` through Volatility 3 (absent pages read as zeros)."""
    return bytes(_vol3_layer(str(path)).read(pa, n, pad=True))


def vol3_is_present(path: str | Path, pa: int) -> bool:
    """Whether Volatility 3 maps physical address ``pa``."""
    return bool(_vol3_layer(str(path)).is_valid(pa))
