"""The kernel values memfs reports, in one table shared by ``header.txt`` and ``info --json``.

Keeping the list here means the text view and the JSON view can never disagree about what is
known: both walk :data:`FIELDS` over the source's :class:`~memfs.memory.Metadata` merged with what
kernel discovery found (:func:`~memfs.kernel.discover.merge_metadata`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from memfs import __version__
from memfs.kernel.discover import Discovery, merge_metadata
from memfs.memory import Layer, MemorySource, Metadata

if TYPE_CHECKING:
    from memfs.byte_source import VerifyResult


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _duration(value: timedelta | None) -> str | None:
    return None if value is None else str(value)


ARCH_NAMES = {"x64": "x64 (AMD64)", "x86": "x86", "arm64": "ARM64"}

# (json key, header.txt label, text formatter, json formatter)
FIELDS: list[tuple[str, str, Callable[[Any], str | None], Callable[[Any], Any]]] = [
    ("arch", "Architecture", lambda v: ARCH_NAMES.get(v, v), lambda v: v),
    ("pae", "PAE", lambda v: None if v is None else ("yes" if v else "no"), lambda v: v),
    ("os_build", "OS build", lambda v: None if v is None else str(v), lambda v: v),
    ("dump_type", "Dump type", lambda v: None if v is None else str(v), lambda v: v),
    ("machine_image_type", "MachineImageType", _hex, lambda v: v),
    ("directory_table_base", "DirectoryTableBase (CR3)", _hex, _hex),
    ("kd_debugger_data_block", "KdDebuggerDataBlock", _hex, _hex),
    ("kernel_base", "Kernel base", _hex, _hex),
    ("ps_loaded_module_list", "PsLoadedModuleList", _hex, _hex),
    ("ps_active_process_head", "PsActiveProcessHead", _hex, _hex),
    ("pfn_database", "MmPfnDatabase", _hex, _hex),
    ("ki_processor_block", "KiProcessorBlock", _hex, _hex),
    ("number_processors", "Processors", lambda v: None if v is None else str(v), lambda v: v),
    ("bugcheck_code", "Bugcheck code", _hex, lambda v: v),
    (
        "bugcheck_parameters",
        "Bugcheck parameters",
        lambda v: None if v is None else " ".join(f"{p:#x}" for p in v),
        lambda v: v,
    ),
    ("system_time", "System time (UTC)", _iso, _iso),
    ("system_uptime", "System uptime", _duration, lambda v: None if v is None else v.total_seconds()),
    ("product_type", "ProductType", lambda v: None if v is None else str(v), lambda v: v),
    ("suite_mask", "SuiteMask", _hex, lambda v: v),
    ("comment", "Comment", lambda v: v, lambda v: v),
]


def metadata_rows(meta: Metadata) -> list[tuple[str, str]]:
    """Rows for ``header.txt``: every field, with the reason where it is unknown."""
    rows = []
    for key, label, as_text, _ in FIELDS:
        text = as_text(getattr(meta, key))
        if text is None:
            reason = meta.unknown_reasons.get(key)
            text = f"unknown ({reason})" if reason else "unknown"
        rows.append((label, text))
    return rows


def source_file_rows(source: MemorySource, sha256: str | None = None) -> list[tuple[str, str]]:
    """Rows that let a report cite exactly which file was examined (``sha256`` if it was hashed).

    The file is the outermost layer's: the evidence file itself when the image sits in containers.
    Its size and modification time are those it had when memfs opened it (the file may have changed
    since: ``header.txt`` then says so).
    """
    outer = source.layers[0]
    if outer.path is None:  # an image that is not a file (in-memory test sources)
        return [("memfs version", __version__), ("Source file", outer.name)]
    rows = [("memfs version", __version__), ("Source file", os.path.abspath(outer.path))]
    try:
        st = _stat_when_opened(source) or os.stat(outer.path)
    except OSError:
        return rows
    mtime = datetime.fromtimestamp(st.st_mtime).astimezone().isoformat()
    rows += [("Source size", f"{st.st_size} bytes ({st.st_size:#x})"), ("Source modified", mtime)]
    if sha256 is not None:
        rows.append(("Source SHA-256", sha256))
    return rows


def _stat_when_opened(source: MemorySource) -> os.stat_result | None:
    """The evidence file's status as memfs opened it: the file at the bottom of the byte-source stack."""
    data = source.byte_source
    while getattr(data, "base", None) is not None:  # slices of a source are not ByteSource subclasses
        data = data.base
    return getattr(data, "opened", None)  # a FileByteSource's; None for bytes held in memory


def info_dict(source: MemorySource, discovery: Discovery | None = None) -> dict[str, Any]:
    """The ``memfs info --json`` object: unknown values are ``null``, never 0.

    ``discovery`` (None: not run) fills in the values the source leaves unknown.
    """
    meta = merge_metadata(source.metadata, discovery)
    result: dict[str, Any] = {"format": meta.format, "format_detail": meta.format_detail}
    for key, _, _, as_json in FIELDS:
        result[key] = as_json(getattr(meta, key))
    result["context"] = None if meta.context is None else {k: _hex(v) for k, v in meta.context.items()}
    result["runs"] = [[start, length] for start, length in source.runs]
    result["size"] = source.size
    result["present_bytes"] = source.present_bytes
    result["layers"] = [
        {
            "kind": layer.kind,
            "format": layer.format,
            "name": layer.name,
            "size": layer.size,
            "facts": dict(layer.rows),
            "failures": [
                {"offset": offset, "message": message}
                for offset, message in (layer.failures.items() if layer.failures is not None else [])
            ],
        }
        for layer in source.layers
    ]
    result["discovery"] = None if discovery is None else discovery.summary()
    result["unknown_reasons"] = dict(meta.unknown_reasons)
    result["notes"] = list(meta.notes)
    result["memfs_version"] = __version__
    return result


Verified = list[tuple[int, Layer, "VerifyResult | None"]]
"""``(layer number, layer, what its verify() found or None)``, outermost first."""


def verify_layers(source: MemorySource) -> Verified:
    """``memfs info --verify``: run ``verify()`` of every layer that offers one, outermost first.

    A layer's verify checks its units without decoding them where its format stores checksums of the
    stored bytes (a ``.zdmp`` block's CRC32) and records bad ones in its failure log; a layer without
    one (None) is checked only as it is read.
    """
    results: Verified = []
    for number, layer in enumerate(source.layers, 1):
        verify = getattr(layer.opened, "verify", None)
        results.append((number, layer, verify() if verify is not None else None))
    return results


def _verify_text(result: VerifyResult | None) -> str:
    if result is None:
        return "nothing to check without decoding: its units are checked as they are read"
    total = result.good + result.bad + result.missing
    state = "all good" if result.ok else "FAILED"
    return (
        f"{total} {result.units}: {result.good} good, {result.bad} bad, {result.missing} missing "
        f"({result.check}): {state}"
    )


def verify_rows(results: Verified) -> list[tuple[str, str]]:
    """Rows of the ``[Verify]`` section of ``header.txt`` that ``info --verify`` prints."""
    return [(f"Layer {number} ({layer.format})", _verify_text(result)) for number, layer, result in results]


def verify_failures(results: Verified) -> list[str]:
    """One line per layer whose check failed, naming what it read."""
    return [
        f"{layer.name}: {_verify_text(result)}"
        for _, layer, result in results
        if result is not None and not result.ok
    ]


def verify_dict(results: Verified) -> list[dict[str, Any]]:
    """The ``verify`` list of ``info --verify --json``: one entry per layer, outermost first."""
    entries = []
    for number, layer, result in results:
        entry: dict[str, Any] = {"layer": number, "format": layer.format, "checked": result is not None}
        if result is not None:
            entry.update(
                units=result.units, check=result.check, good=result.good, bad=result.bad,
                missing=result.missing, ok=result.ok,
            )  # fmt: skip
        entries.append(entry)
    return entries


def sha256_file(path: str, chunk: int = 1 << 20, progress: Callable[[int], None] | None = None) -> str:
    """SHA-256 of a whole file, read in 1 MiB pieces; ``progress(bytes_done)`` after each piece."""
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done)
    return digest.hexdigest()
