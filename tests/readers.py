"""Independent readers used as references in tests: Volatility 3's layers, run standalone.

Volatility 3 stacks a translation layer (LiME, ELF, VMware, crash dump...) on a ``FileLayer`` of
the image; :func:`vol3_layer` builds that stack without the automagic, so a test can compare the
bytes Volatility reads at each physical address with what memfs serves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest


def vol3_layer(
    layer_class: Any,
    path: str | Path,
    extra_config: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | Path] | None = None,
) -> Any:
    """Return ``layer_class`` stacked on a file layer of ``path`` (config key ``base_layer``).

    ``extra_files`` maps further requirement names to files (VMware's ``meta_layer``: the .vmss);
    each gets its own file layer.  ``extra_config`` sets more config values of the new layer.
    Skips the test when Volatility 3 is not installed.
    """
    pytest.importorskip("volatility3")
    from volatility3.framework import contexts
    from volatility3.framework.layers import physical

    logging.getLogger("volatility3").setLevel(logging.WARNING)
    context = contexts.Context()
    files = {"base_layer": path, **(extra_files or {})}
    for key, file_path in files.items():
        name = f"file_{key}"
        context.config[f"{name}.location"] = Path(file_path).resolve().as_uri()
        context.layers.add_layer(physical.FileLayer(context, name, name))
        context.config[f"stacked.{key}"] = name
    for key, value in (extra_config or {}).items():
        context.config[f"stacked.{key}"] = value
    layer = layer_class(context, "stacked", "stacked")
    context.layers.add_layer(layer)
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


def merged_runs(runs: Any) -> list[tuple[int, int]]:
    """``runs`` with adjacent ranges merged."""
    merged: list[list[int]] = []
    for start, length in runs:
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1][1] += length
        else:
            merged.append([start, length])
    return [(start, length) for start, length in merged]
