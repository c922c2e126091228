"""The synthetic Windows images of ``tests/kernel`` are reused by the memory.dmp tests."""

from tests.kernel.conftest import VARIANTS, windows_images  # noqa: F401
