"""The libraries of the container layers (memfs dependencies), imported on first use.

A container whose library is absent fails with one line naming the package to install
(:class:`~memfs.exceptions.MissingDependencyError`); every other format keeps working.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from memfs.exceptions import MissingDependencyError


def require(module: str, package: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the PyPI ``package`` and why it is needed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the Python package {package!r} ({exc}); install it with: pip install {package}"
        ) from None
