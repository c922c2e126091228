"""Build recipe for the C parts of memfs (pyproject.toml holds everything else).

The Xpress codecs (memfs/xpress/*.c) are compiled into ``memfs.xpress._xpress`` by ``pip install``.
"""

import glob

from setuptools import Extension, setup

XPRESS_SOURCES = sorted(glob.glob("memfs/xpress/*.c"))

setup(
    ext_modules=[
        Extension(
            "memfs.xpress._xpress",
            sources=XPRESS_SOURCES,
            depends=glob.glob("memfs/xpress/*.h"),
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
        )
    ],
)
