"""``header.txt``: everything known about the image, in a fixed order, for humans.

Rendered from the source's metadata merged with the caller's kernel discovery (the field table of
:mod:`memfs.report` and :func:`~memfs.kernel.discover.merge_metadata`, as ``info --json``), its run
table and the sections its reader and ``memory.dmp`` contribute.  Decode failures happen while the
mount serves reads, in any layer of the stack, so the text is re-rendered when their count changes.
"""

from __future__ import annotations

import threading

from memfs.kernel.discover import Discovery, merge_metadata
from memfs.memory import PAGE_SIZE, MemorySource, Section
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


def _failure_rows(source: MemorySource) -> list[tuple[str, str]]:
    """How many units failed to decode and each one's message (at most 50), per layer when stacked."""
    rows = [("Units that failed to decode", str(source.failure_count))]
    room = MAX_LISTED_FAILURES
    for number, layer in enumerate(source.layers, 1):
        if layer.failures is None:
            continue
        failures = layer.failures.items()
        if len(source.layers) > 1:
            rows.append((f"Layer {number} ({layer.format})", f"{len(failures)} units"))
        rows += [("", message) for _, message in failures[:room]]
        if len(failures) > room:
            rows.append(("", f"... and {len(failures) - room} more"))
        room = max(room - len(failures), 0)
    return rows


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
    lines += _section("Source", source_file_rows(source, sha256) + format_rows)
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
    lines += _section("Decode failures", _failure_rows(source))
    stats = source.cache_stats()
    if stats is not None:
        lines += _section("Cache", [("Budget", f"{stats['max_bytes']} bytes")])
    if meta.notes:
        lines += _section("Notes", [("", note) for note in meta.notes])
    return "\n".join(lines)


class HeaderTextFile(VirtualFile):
    """The rendered header; re-rendered when the decode-failure count changes."""

    name = "header.txt"
    cacheable = False

    def __init__(
        self, source: MemorySource, discovery: Discovery | None, extra_sections: list[Section] | None = None
    ) -> None:
        self.source = source
        self.discovery = discovery
        self.extra_sections = extra_sections or []
        self._lock = threading.Lock()
        self._rendered_for = -1
        self._content = b""

    def _current(self) -> bytes:
        with self._lock:
            count = self.source.failure_count
            if count != self._rendered_for:
                self._content = self.render().encode()
                self._rendered_for = count
            return self._content

    def render(self, sha256: str | None = None) -> str:
        """The text as mounted now; ``memfs info`` adds the image's SHA-256 when asked for it."""
        return render_header(self.source, self.discovery, self.extra_sections, sha256)

    @property
    def size(self) -> int:
        return len(self._current())

    def read(self, offset: int, length: int) -> bytes:
        return self._current()[offset : offset + length]
