"""Containers: compressed or wrapped evidence decoded on demand into a byte stream.

Each module exports the registry entry of its container (a :class:`~memfs.formats.base.FormatSpec` of
kind ``CONTAINER``, listed in :mod:`memfs.detect`): a probe that recognises it from content, and an
opener that takes a byte source and returns the decoded stream as another byte source
(:class:`~memfs.byte_source.ByteSource`, with ``facts()`` for ``header.txt`` and ``info --json``).
Format detection runs again on the decoded stream, so containers stack (a ZIP holding an S2 image, a
gzip of a tar holding a crash dump).
"""
