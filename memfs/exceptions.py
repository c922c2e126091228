"""The one place memfs errors are defined.

Every error a user can see is a :class:`MemfsError`.  Messages name the file, the offset (in hex)
and the value that was wrong, so that the CLI can print ``str(error)`` as one line.
"""

from __future__ import annotations

import os
import traceback


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


def internal_error(exc: BaseException) -> str:
    """One line for an exception that is not a MemfsError (a bug): ``internal error: <what> at <file:line>``.

    ``<file:line>`` is the innermost frame inside the memfs package (where memfs let it escape), else
    the innermost frame of all; the CLI and the mount both report a bug this way.
    """
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    message = " ".join(str(exc).split())[:200]
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [frame for frame in frames if os.path.abspath(frame.filename).startswith(_PACKAGE + os.sep)]
    where = "?"
    if frames:
        frame = (ours or frames)[-1]
        path = os.path.relpath(frame.filename, os.path.dirname(_PACKAGE)) if ours else frame.filename
        where = f"{path}:{frame.lineno}"
    return f"internal error: {name}{': ' + message if message else ''} at {where}"


_PACKAGE = os.path.dirname(os.path.abspath(__file__))
