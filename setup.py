"""Build recipe for the C parts of memfs (pyproject.toml holds everything else).

``pip install`` compiles the Xpress codecs (memfs/xpress/*.c) into ``memfs.xpress._xpress``, the LZNT1
codec (memfs/lznt1/*.c, whose encoder shares the Xpress match finder) into ``memfs.lznt1._lznt1``, the
S2 block decoder (memfs/containers/_s2.c) into ``memfs.containers._s2``, and the modern hibernation
walk's hot loop (memfs/formats/_hiberwalk.c) into ``memfs.formats._hiberwalk``.
"""

import glob

from setuptools import Extension, setup

XPRESS_SOURCES = sorted(glob.glob("memfs/xpress/*.c"))
LZNT1_SOURCES = sorted(glob.glob("memfs/lznt1/*.c")) + ["memfs/xpress/matcher.c"]
CFLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "memfs.xpress._xpress",
            sources=XPRESS_SOURCES,
            depends=glob.glob("memfs/xpress/*.h"),
            extra_compile_args=CFLAGS,
        ),
        Extension(
            "memfs.lznt1._lznt1",
            sources=LZNT1_SOURCES,
            include_dirs=["memfs/xpress"],
            depends=glob.glob("memfs/lznt1/*.h") + glob.glob("memfs/xpress/*.h"),
            extra_compile_args=CFLAGS,
        ),
        Extension(
            "memfs.containers._s2",
            sources=["memfs/containers/_s2.c"],
            extra_compile_args=CFLAGS,
        ),
        Extension(
            "memfs.formats._hiberwalk",
            sources=["memfs/formats/_hiberwalk.c"],
            extra_compile_args=CFLAGS,
        ),
    ],
)
