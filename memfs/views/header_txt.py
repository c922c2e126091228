"""``header.txt``: everything known about the image, in a fixed order, for humans.

Rendered from the source's metadata merged with the caller's kernel discovery (the field table of
:mod:`memfs.report` and :func:`~memfs.kernel.discover.merge_metadata`, as ``info --json``), its run
table and the sections its reader and ``memory.dmp`` contribute.  Decode failures happen while the
mount serves reads — in the memory format's reader or in any container below it — and the image file
may change under the mount, so the text is re-rendered when the failure count changes or the change is
first seen.
"""

from __future__ import annotations

import threading

from memfs.kernel.discover import Discovery, merge_metadata
from memfs.memory import PAGE_SIZE, FailureLog, Layer, MemorySource, Section
from memfs.report import metadata_rows, source_file_rows
from memfs.views.base import VirtualFile

MAX_LISTED_FAILURES = 50


def _section(title: str, rows: list[tuple[str, str]]) -> list[str]:
    lines = [f"[{title}]"]
    width = max((len(label) for label, _ in rows), default=0)
    lines += [f"{label.ljust(width)} : {value}" if label else value for label, value in rows]
    lines.append("")
    return lines


def _run_table(source: MemorySource) -> list[str]:
    runs = source.runs
    lines = ["[Physical memory runs]"]
    lines.append(f"{'#':>5}  {'start':>18}  {'end':>18}  {'pages':>10}  {'bytes':>14}")
    for index, (start, length) in enumerate(runs):
        pages = (length + PAGE_SIZE - 1) // PAGE_SIZE
        lines.append(f"{index:>5}  {start:#18x}  {start + length:#18x}  {pages:>10}  {length:>14}")
    lines.append("")
    return lines


def _memory_rows(source: MemorySource) -> list[tuple[str, str]]:
    size = source.size
    present = source.present_bytes
    holes = size - present
    return [
        ("physmem.bin size", f"{size} bytes ({size:#x})"),
        ("Present", f"{present} bytes ({present // PAGE_SIZE} pages) in {len(source.runs)} runs"),
        ("Holes (read as zeros)", f"{holes} bytes ({holes // PAGE_SIZE} pages)"),
    ]


def _layer_sections(source: MemorySource) -> list[str]:
    """One section per layer, outermost first, when the image sits inside containers."""
    layers = source.layers
    if len(layers) == 1:
        return []  # a plain file: the [Source] section already says it all
    lines: list[str] = []
    for number, layer in enumerate(layers, 1):
        rows = [("Reads", f"{layer.name} ({layer.size} bytes, {layer.size:#x})")] + layer.rows
        lines += _section(f"Layer {number} of {len(layers)}: {layer.format} ({layer.kind})", rows)
    return lines


def _failure_logs(layers: list[Layer]) -> list[tuple[int, Layer, FailureLog]]:
    """``(layer number, layer, its failure log)`` for every layer that keeps one, outermost first."""
    logs = [(number, layer, layer.failures) for number, layer in enumerate(layers, 1)]
    return [(number, layer, log) for number, layer, log in logs if log is not None]


def _failure_rows(layers: list[Layer]) -> list[tuple[str, str]]:
    """The decode failures of every layer: the total, per layer when the image is stacked, then the
    first :data:`MAX_LISTED_FAILURES` messages (labelled with the unit's offset in that layer's input)."""
    logs = _failure_logs(layers)
    total = sum(log.count for _, _, log in logs)
    rows = [("Units that failed to decode", str(total))]
    stacked = len(layers) > 1
    if stacked:
        rows += [(f"in layer {number} ({layer.format})", str(log.count)) for number, layer, log in logs]
    listed = []
    for number, _, log in logs:
        for offset, message in log.items()[: MAX_LISTED_FAILURES - len(listed)]:
            listed.append((f"layer {number}, {offset:#x}" if stacked else f"{offset:#x}", message))
    rows += listed
    if total > len(listed):
        rows.append(("", f"... and {total - len(listed)} more"))
    return rows


def _cache_stats(source: MemorySource) -> dict[str, int] | None:
    """The decode cache's counters: the reader's own, else the first container's that has one."""
    stats = source.cache_stats()
    for layer in source.containers:
        if stats is not None:
            break
        get = getattr(layer.opened, "cache_stats", None)
        stats = get() if get is not None else None
    return stats


def render_header(
    source: MemorySource,
    discovery: Discovery | None = None,
    extra_sections: list[Section] | None = None,
    sha256: str | None = None,
) -> str:
    """The full text of ``header.txt`` (``sha256``: the image file's, when the caller computed it).

    ``discovery`` (None: not run) fills in the values the source leaves unknown.
    """
    meta = merge_metadata(source.metadata, discovery)
    lines = ["memfs header", "============", ""]
    format_rows = [("Format", meta.format)]
    if meta.format_detail:
        format_rows.append(("Detail", meta.format_detail))
    if len(source.layers) > 1:
        format_rows.append(("Layers", " -> ".join(layer.format for layer in source.layers)))
    source_rows = source_file_rows(source, sha256)
    if source.change is not None:
        source_rows.append(
            (
                "Source changed",
                f"{source.change.what} (noticed {source.change.noticed.isoformat(timespec='seconds')}): "
                "since then every read of physmem.bin or memory.dmp that needs the image fails (EIO); "
                "remount to read the file as it is now",
            )
        )
    lines += _section("Source", source_rows + format_rows)
    lines += _layer_sections(source)
    lines += _section("System", metadata_rows(meta))
    lines += _section("Physical memory", _memory_rows(source))
    if source.runs:
        lines += _run_table(source)
    else:
        lines += _section(
            "Physical memory runs",
            [("", "none: this image carries no physical memory, so the mount shows header.txt only")],
        )
    for section in source.describe() + (extra_sections or []):
        lines += _section(section.title, section.rows)
    if meta.context:
        lines += _section("Register context", [(name, f"{value:#x}") for name, value in meta.context.items()])
    lines += _section("Decode failures", _failure_rows(source.layers))
    stats = _cache_stats(source)
    if stats is not None:
        lines += _section("Cache", [("Budget", f"{stats['max_bytes']} bytes")])
    if meta.notes:
        lines += _section("Notes", [("", note) for note in meta.notes])
    return "\n".join(lines)


class HeaderTextFile(VirtualFile):
    """The rendered header; re-rendered when the decode-failure count of any layer changes."""

    name = "header.txt"
    cacheable = False

    def __init__(
        self, source: MemorySource, discovery: Discovery | None, extra_sections: list[Section] | None = None
    ) -> None:
        self.source = source
        self.discovery = discovery
        self.extra_sections = extra_sections or []
        self._lock = threading.Lock()
        self._failure_logs = [log for _, _, log in _failure_logs(source.layers)]
        self._rendered_for: tuple[int, bool] | None = None
        self._content = b""

    def _current(self) -> bytes:
        with self._lock:
            state = (sum(log.count for log in self._failure_logs), self.source.source_change() is not None)
            if state != self._rendered_for:
                self._content = self.render().encode()
                self._rendered_for = state
            return self._content

    def render(self, sha256: str | None = None) -> str:
        """The text as mounted now; ``memfs info`` adds the image's SHA-256 when asked for it."""
        return render_header(self.source, self.discovery, self.extra_sections, sha256)

    @property
    def size(self) -> int:
        return len(self._current())

    def read(self, offset: int, length: int) -> bytes:
        return self._current()[offset : offset + length]
