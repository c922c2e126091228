"""Containers: byte sources whose bytes are another image, decoded on demand (docs/architecture.md).

A container opener takes a byte source and returns a byte source of the decoded stream; format detection
then runs again on what it returns.
"""
