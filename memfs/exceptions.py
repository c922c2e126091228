"""The one place memfs errors are defined.

Every error a user can see is a :class:`MemfsError`.  Messages name the file, the offset (in hex)
and the value that was wrong, so that the CLI can print ``str(error)`` as one line.
"""

from __future__ import annotations


class MemfsError(Exception):
    """Base class of every error memfs reports to a user."""


class UnknownFormatError(MemfsError):
    """The file carries no signature of a format memfs reads."""


class FormatError(MemfsError):
    """The file has a known signature but a header or table memfs cannot accept."""


class CorruptionError(FormatError):
    """A structure inside a recognised file is inconsistent (counts past EOF, loops, ...)."""


class DecompressionError(MemfsError):
    """A compressed unit could not be decoded.

    ``offset`` is the offset inside the compressed input where decoding failed, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class SourceChangedError(MemfsError):
    """The image file changed (shrank, was rewritten, replaced or deleted) after memfs opened it.

    memfs then reads nothing more from it: the bytes it would read are no longer the image it opened.
    """


class MissingDependencyError(MemfsError):
    """An optional component (a library, a system tool) that this operation needs is absent."""


def at(path: str, offset: int, what: str) -> str:
    """Format the standard ``file: offset 0x..: what`` message used by every reader."""
    return f"{path}: offset {offset:#x}: {what}"
