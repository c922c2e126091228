"""Build recipe for the C parts of memfs (pyproject.toml holds everything else).

The Xpress codecs (memfs/xpress/*.c) are compiled into ``memfs.xpress._xpress`` and the S2 block decoder
(memfs/containers/_s2.c) into ``memfs.containers._s2`` by ``pip install``.
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
        ),
        Extension(
            "memfs.containers._s2",
            sources=["memfs/containers/_s2.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
        ),
    ],
)
