"""Format detection: decide from a source's own bytes (never its name) which reader opens it.

Each reader module exposes a :class:`~memfs.formats.base.FormatSpec`; :func:`_format_specs` lists them
in probe order, strong signatures first.  A source that matches a signature is opened by that reader,
and if the reader finds it corrupt that is an error — it never silently becomes raw.  Raw is used when
the user asks for it or when no probe matches.

Containers stack: when a container matches, :func:`open_source` opens it and detects again on the
stream it yields, up to :data:`MAX_CONTAINERS` deep (docs/architecture.md, "Sources and containers").
The layers that keep decoded units share the user's cache budget (:class:`_CacheBudget`).
"""

from __future__ import annotations

import dataclasses

from memfs.byte_source import ByteSource, FileByteSource
from memfs.cache import UnitCache
from memfs.exceptions import FormatError, MemfsError, UnknownFormatError, at
from memfs.formats.base import CONTAINER, FormatSpec, OpenOptions, ProbeInput
from memfs.memory import Layer, MemorySource

MAX_CONTAINERS = 4
"""Containers nested deeper than this are refused (real evidence nests two at most: a zip of a .zdmp)."""

_registered: list[FormatSpec] = []


def register_format(spec: FormatSpec) -> None:
    """Add ``spec`` to the registry, probed before the built-in formats; a test hook.

    memfs ships every format it reads in :func:`_format_specs`; this lets tests stack containers of
    their own.  :func:`unregister_format` takes it out again.
    """
    if any(s.name == spec.name for s in _format_specs()):
        raise ValueError(f"a format named {spec.name!r} is already registered")
    _registered.append(spec)


def unregister_format(name: str) -> None:
    """Remove a format added by :func:`register_format`."""
    _registered[:] = [spec for spec in _registered if spec.name != name]


def _format_specs() -> list[FormatSpec]:
    # Imported here so that importing memfs.detect stays cheap.
    from memfs.containers import archive, avml, ewf, gzip_stream, snappy_stream, zdmp
    from memfs.formats import crashdump, elf, hiberfil, lime, raw, vmware

    # Strong signatures first (memory formats, then containers; tar's is at offset 257); vmware's .vmem
    # rule looks at neighbouring files, not at a signature; hiberfil's weak zeroed-header probe
    # (structure scan) goes last before raw.  Archives find their image with this same list.
    return [
        *_registered,
        zdmp.FORMAT,
        crashdump.FORMAT,
        hiberfil.FORMAT,
        lime.FORMAT,
        elf.FORMAT,
        snappy_stream.SNAPPY,
        snappy_stream.S2,
        avml.FORMAT,
        gzip_stream.FORMAT,
        ewf.FORMAT,
        archive.format_spec(archive.FORMAT_ZIP, recognise),
        archive.format_spec(archive.FORMAT_TAR, recognise),
        vmware.FORMAT,
        hiberfil.FORMAT_ZEROED,
        raw.FORMAT,
    ]


def format_names() -> list[str]:
    """Names accepted by ``--format``: memory formats and containers."""
    return [spec.name for spec in _format_specs()]


def _spec_named(name: str) -> FormatSpec:
    by_name = {spec.name: spec for spec in _format_specs()}
    if name not in by_name:
        raise MemfsError(f"unknown format {name!r}; known: {', '.join(by_name)}")
    return by_name[name]


def recognise(probe: ProbeInput) -> FormatSpec | None:
    """The first format whose probe matches ``probe``, or None when only raw would (no signature)."""
    return next((spec for spec in _format_specs() if spec.name != "raw" and spec.probe(probe)), None)


def detect(probe: ProbeInput) -> FormatSpec:
    """The first format whose probe matches ``probe``; raw when none does."""
    if probe.size == 0:
        raise UnknownFormatError(at(probe.name, 0, "file is empty"))
    return recognise(probe) or _spec_named("raw")


def detect_format(path: str) -> FormatSpec:
    """The format of the file at ``path`` (its outermost layer when it is a container); raw when none."""
    with FileByteSource(path) as data:
        return detect(ProbeInput.of(data))


def open_image(path: str, options: OpenOptions | None = None) -> MemorySource:
    """Open the file at ``path`` as a memory source (see :func:`open_source`)."""
    if options is not None and options.format:
        _spec_named(options.format)  # an unknown name is the error, whatever the file
    return open_source(FileByteSource(path), options)


class _CacheBudget:
    """The user's cache budget, shared equally by the layers of a stack that keep decoded units.

    A layer is opened with the share it would have if it keeps a cache (the layers opened before it
    shrink to make room), so the stack never holds more than the budget, not even while it opens; once
    the last layer is open, the shares are settled among the layers that do keep one.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.caches: list[UnitCache] = []

    def share_for_next(self) -> int:
        """Shrink the caches so far to make room for one more; return that one's share."""
        share = max(self.total // (len(self.caches) + 1), 1)
        for cache in self.caches:
            cache.resize(share)
        return share

    def add(self, cache: UnitCache | None) -> None:
        if cache is not None:
            self.caches.append(cache)

    def settle(self) -> None:
        """Give the layers that keep a cache equal shares of the whole budget."""
        for cache in self.caches:
            cache.resize(max(self.total // len(self.caches), 1))


def open_source(data: ByteSource, options: OpenOptions | None = None) -> MemorySource:
    """Open ``data`` as a memory source, opening the containers it is wrapped in on the way.

    The outermost layer's format is ``options.format`` when given (``vmware`` when only
    ``options.vmware_meta`` is), else detected; each container's stream is detected again.
    ``options.member`` picks the member of the outermost archive (the inner ones find their image by
    content).  The result owns ``data`` and knows its stack (``source.layers``).  On failure ``data``
    is closed.
    """
    options = options or OpenOptions()
    budget = _CacheBudget(options.cache_size)
    member = options.member  # for the outermost archive, then spent
    top = data  # the outermost byte source not yet owned by another layer: closed on failure
    containers: list[Layer] = []
    try:
        probe = ProbeInput.of(data)
        if options.format:
            spec = _spec_named(options.format)
        elif options.vmware_meta:
            spec = _spec_named("vmware")
        else:
            spec = detect(probe)
        seen = [probe]  # a stream of the same size and first 64 KiB as an outer one is a loop
        damaged: list[str] = []  # notes on decoded streams whose first bytes do not all decode
        while spec.kind == CONTAINER:
            if len(containers) == MAX_CONTAINERS:
                chain = " -> ".join(layer.format for layer in containers)
                raise FormatError(
                    at(
                        top.name,
                        0,
                        f"{spec.name} container inside {len(containers)} others ({chain}): memfs opens "
                        f"at most {MAX_CONTAINERS} nested containers",
                    )
                )
            layer_options = dataclasses.replace(
                options, cache_size=budget.share_for_next(), member=member if spec.archive else None
            )
            container = spec
            inner = spec.open(top, layer_options)
            assert isinstance(inner, ByteSource), f"container {spec.name} must open into a ByteSource"
            budget.add(inner.cache)
            member = None if spec.archive else member
            containers.append(Layer(CONTAINER, spec.name, top.name, top.size, top.path, inner.facts(), inner))
            top = inner
            probe = ProbeInput.of(top)
            same = next((p for p in seen if (p.size, p.head) == (probe.size, probe.head)), None)
            if same is not None:
                raise FormatError(
                    at(
                        top.name,
                        0,
                        f"the {spec.name} container decodes to the same bytes as {same.name}: "
                        "a container loop",
                    )
                )
            seen.append(probe)
            if probe.damage and not probe.head:
                if container.holds is None:
                    raise FormatError(
                        at(top.name, 0, f"the format inside cannot be detected: its first bytes do not "
                           f"decode ({probe.damage})")
                    )  # fmt: skip
                spec = _spec_named(container.holds)
            else:
                spec = detect(probe)
            if probe.damage:
                damaged.append(
                    f"{probe.name}: format detected as {spec.name} from its first {len(probe.head):#x} "
                    f"bytes, the ones before a unit that does not decode ({probe.damage})"
                )
        if member is not None:
            chain = " -> ".join([layer.format for layer in containers] + [spec.name])
            raise MemfsError(at(data.name, 0, f"--member {member} names an archive member, but the stack "
                                f"holds no archive ({chain})"))  # fmt: skip
        source = spec.open(top, dataclasses.replace(options, cache_size=budget.share_for_next()))
    except BaseException:
        top.close()
        raise
    assert isinstance(source, MemorySource), f"format {spec.name} must open into a MemorySource"
    source.containers = containers
    source.metadata.notes += damaged
    budget.add(source.cache)
    budget.settle()
    return source


__all__ = [
    "MAX_CONTAINERS",
    "FormatSpec",
    "OpenOptions",
    "ProbeInput",
    "detect",
    "detect_format",
    "format_names",
    "open_image",
    "open_source",
    "recognise",
    "register_format",
    "unregister_format",
]
