"""Containers: compressed or wrapped evidence decoded on demand into a byte stream.

Each module offers a ``probe(head, source)`` that recognises its container from content, an opener that
takes a byte source (the protocol of ``memfs.byte_source``: ``name``, ``size``, ``pread``, ``readinto``,
``close``) and returns the decoded stream as another byte source, and the ``format`` name that
``info --json`` reports.  Format detection runs again on the decoded stream, so containers stack
(a ZIP holding an S2 image, a gzip of a tar holding a crash dump).
"""
