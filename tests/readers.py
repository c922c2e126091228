"""Independent readers used to cross-check memfs: kdmp-parser and Volatility 3's layers.

Kept small and shared by the test modules.  Every independent reader is a test dependency, but
not every one imports on every supported Python (kdmp-parser's wheels for 3.13 do not), so a test
gets each through :func:`independent_reader`, which skips that test with the reason where the
reader cannot be imported; scripts/platform_matrix.py shows which Python runs them all.

Volatility 3 stacks a translation layer (crash dump, LiME, ELF, VMware...) on a ``FileLayer`` of
the image; :func:`vol3_layer` builds that stack without the automagic, so a test can compare the
bytes Volatility reads at each physical address with what memfs serves.
"""

from __future__ import annotations

import functools
import logging
import platform
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def independent_reader(module: str) -> ModuleType:
    """Import an optional independent reader, or skip the calling test saying it cannot be imported here."""
    return pytest.importorskip(
        module,
        reason=f"independent reader {module} cannot be imported on Python {platform.python_version()}",
        exc_type=ImportError,  # a wheel without its compiled part fails inside the package
    )


def kdmp_read_pages(path: str | Path) -> dict[int, bytes]:
    """Every page kdmp-parser finds in a 64-bit kernel dump, as ``{physical address: bytes}``."""
    parser = independent_reader("kdmp_parser").KernelDumpParser(str(path))
    return {pa: bytes(data) for pa, data in parser.pages.items()}


def vol3_layer(
    layer_class: Any,
    path: str | Path,
    extra_config: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | Path] | None = None,
) -> Any:
    """Return ``layer_class`` stacked on a file layer of ``path`` (config key ``base_layer``).

    ``extra_files`` maps further requirement names to files (VMware's ``meta_layer``: the .vmss);
    each gets its own file layer.  ``extra_config`` sets more config values of the new layer.
    """
    independent_reader("volatility3.framework")
    from volatility3.framework import contexts
    from volatility3.framework.layers import physical

    logging.getLogger("volatility3").setLevel(logging.WARNING)
    context = contexts.Context()
    files = {"base_layer": path, **(extra_files or {})}
    for key, file_path in files.items():
        name = f"file_{key}"
        context.config[f"{name}.location"] = Path(file_path).resolve().as_uri()
        context.add_layer(physical.FileLayer(context, name, name))
        context.config[f"stacked.{key}"] = name
    for key, value in (extra_config or {}).items():
        context.config[f"stacked.{key}"] = value
    layer = layer_class(context, "stacked", "stacked")
    context.add_layer(layer)
    return layer


def vol3_runs(layer: Any) -> list[tuple[int, int]]:
    """The mapped ranges of a Volatility 3 layer, adjacent ones merged (comparable to memfs runs)."""
    merged: list[list[int]] = []
    for offset, length, *_ in layer.mapping(0, layer.maximum_address + 1, ignore_errors=True):
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1][1] += length
        else:
            merged.append([offset, length])
    return [(start, length) for start, length in merged]


@functools.lru_cache(maxsize=8)
def _vol3_crash_layer(path: str):
    """A Volatility 3 crash layer standing alone (64- or 32-bit by the ValidDump signature)."""
    independent_reader("volatility3.framework")
    from volatility3.framework.layers import crash

    with open(path, "rb") as handle:
        valid_dump = handle.read(8)[4:]
    layer_class = crash.WindowsCrashDump64Layer if valid_dump == b"DU64" else crash.WindowsCrashDump32Layer
    return vol3_layer(layer_class, path)


def vol3_crash_read(path: str | Path, pa: int, n: int) -> bytes:
    """``n`` bytes at physical address ``pa`` through Volatility 3 (absent pages read as zeros)."""
    return bytes(_vol3_crash_layer(str(path)).read(pa, n, pad=True))


def vol3_is_present(path: str | Path, pa: int) -> bool:
    """Whether Volatility 3 maps physical address ``pa``."""
    return bool(_vol3_crash_layer(str(path)).is_valid(pa))
