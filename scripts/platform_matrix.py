"""The platform matrix: memfs on the Pythons, libfuse versions and stock setups analysts have.

Run by ``make test-platforms`` and by .ci/run after ``make test``; needs root, the standard library
only, and Debian's tools (apt-get, dpkg-deb, dpkg-source, unshare, ldconfig, git, gcc).  Cells:

- **Python 3.10–3.13**: ``make test`` with ``PYTHON=`` each interpreter found (pyenv's or the
  system's) in a venv of its own, every test but the FUSE tests (which the libfuse cells run).
- **libfuse 2.9, 3.10, 3.14, 3.17**: the FUSE tests, with ``FUSE_LIBRARY_PATH`` naming the library,
  each under another Python so that every Python mounts once too.
  The libraries come from the Debian archive by package name (bookworm's libfuse2, bullseye's and
  bookworm's libfuse3-3) through an apt configuration of our own — its own sources list, state and
  cache under the work directory, ``apt-get download`` and ``dpkg-deb -x`` — so the machine's apt
  sources and installed packages are never touched.  Trixie's libfuse3-4 (3.17) needs glibc 2.38,
  newer than Debian 12's, so 3.17 is built from trixie's source package with meson and ninja from PyPI.
- **packaging**: an sdist built with the oldest and the newest setuptools pyproject.toml allows
  carries the C headers, builds a wheel, and the wheel's memfs runs.
- **stock make run**: a clean clone of HEAD, ``env -i HOME=$HOME PATH=/usr/local/bin:/usr/bin:/bin
  make run`` (Debian's own python3, PEP 668 and all) while libfuse 2 is "installed" beside libfuse 3:
  in a private mount namespace an ld.so.cache that also lists the extracted libfuse.so.2 is bound
  over /etc/ld.so.cache, so ``find_library('fuse')`` (what mfusepy loads by itself) finds libfuse 2
  there and nowhere else.  The three files must be served.
- **Debian 12 chroot**: the same ``make run`` in a debootstrap'd Debian 12 (minbase plus python3,
  make and libfuse2): a stock machine lacks python3-venv, python3-dev, fuse3 and gcc, and ``make``
  must install them.

Prints the matrix as a markdown table (with the machine's load) and exits 1 if any cell failed.

    python3 -m scripts.platform_matrix [--only TEXT ...] [--work DIR] [--list]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
ARCHIVE_SUITES = ("bullseye", "bookworm", "trixie")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
REQUIRE_FUSE = {"MEMFS_TEST_REQUIRE_FUSE": "1"}  # FUSE tests fail, not skip, where they cannot mount
STOCK_PATH = "/usr/local/bin:/usr/bin:/bin"
SETUPTOOLS_FLOOR = re.compile(r'requires = \["setuptools>=([0-9.]+)"')


class CellFailed(Exception):
    """A cell's one-line reason for failing (its log holds the rest)."""


@dataclass
class Result:
    cell: str
    what: str
    ok: bool | None  # None: not run here (an interpreter that is not installed)
    detail: str
    seconds: float


class Runner:
    """Runs commands for one cell, appending their output to the cell's log."""

    def __init__(self, log: Path) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")

    def run(
        self,
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        timeout: float = 1800,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        with self.log.open("a") as out:
            out.write(f"\n$ {' '.join(command)}\n")
            out.flush()
            result = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
            )
            out.write(result.stdout)
        if check and result.returncode != 0:
            last = [line for line in result.stdout.splitlines() if line.strip()][-1:] or ["no output"]
            raise CellFailed(f"`{' '.join(command[:3])} ...` exited {result.returncode}: {last[0][:160]}")
        return result


def pytest_summary(output: str) -> str:
    """pytest's closing counts (``955 passed, 3 skipped``), or '' if it printed none."""
    found = re.findall(
        r"^=*\s*(\d+ (?:passed|failed|error|errors|skipped|deselected)[^=\n]*?)\s*=*\s*$", output, re.M
    )
    return found[-1].split(" in ")[0] if found else ""


# -- interpreters and venvs ------------------------------------------------------------------------


def find_python(minor: str) -> str | None:
    """An interpreter for Python ``minor`` (``"3.12"``) that really runs, newest patch release first."""
    candidates = sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python{minor}")),
        key=lambda path: [
            int(part) for part in re.findall(r"\d+", path.split("/versions/")[1].split("/")[0])
        ],
        reverse=True,
    )
    candidates += [f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
    for path in candidates:
        if os.access(path, os.X_OK):
            probe = subprocess.run([path, "-c", "import sys; print(sys.version)"], capture_output=True)
            if probe.returncode == 0:
                return path
    return None


def make_venv(runner: Runner, python: str, venv: Path) -> Path:
    """The Makefile's own venv recipe, with the test extras, at ``venv``; returns its python."""
    runner.run(
        ["make", "--no-print-directory", f"PYTHON={python}", f"VENV={venv}", f"{venv}/.installed-test"]
    )
    return venv / "bin" / "python"


# -- libfuse from the Debian archive --------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (so that no host is named here), or $MEMFS_DEBIAN_MIRROR."""
    if os.environ.get("MEMFS_DEBIAN_MIRROR"):
        return os.environ["MEMFS_DEBIAN_MIRROR"]
    texts = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
        if path.endswith((".list", ".sources")) and os.path.isfile(path):
            texts.append(Path(path).read_text(errors="replace"))
    uris = re.findall(r"^URIs:\s*(\S+)", "\n".join(texts), re.M)
    uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", "\n".join(texts), re.M)
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise CellFailed("no Debian archive in this machine's apt sources: set MEMFS_DEBIAN_MIRROR")


class DebianArchive:
    """apt with a configuration of its own under ``root``: the machine's apt is never touched."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.updated = False

    def _options(self) -> list[str]:
        r = self.root
        return [
            f"-oDir::Etc::SourceList={r}/sources.list",
            f"-oDir::Etc::SourceParts={r}/sources.list.d",
            f"-oDir::Etc::Preferences={r}/preferences",
            f"-oDir::Etc::PreferencesParts={r}/preferences.d",
            f"-oDir::State={r}/state",
            f"-oDir::State::status={r}/status",
            f"-oDir::Cache={r}/cache",
            "-oDebug::NoLocking=1",
            "-oAcquire::Languages=none",
            "-oAPT::Sandbox::User=root",  # our directories are root's
        ]

    def update(self, runner: Runner) -> None:
        if self.updated:
            return
        if not os.path.exists(KEYRING):
            raise CellFailed(f"{KEYRING} is missing (apt package debian-archive-keyring)")
        mirror = debian_mirror()
        for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        lines = [
            f"{kind} [signed-by={KEYRING}] {mirror} {suite} main"
            for suite in ARCHIVE_SUITES
            for kind in ("deb", "deb-src")
        ]
        (self.root / "sources.list").write_text("\n".join(lines) + "\n")
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
        runner.run(["apt-get", *self._options(), f"-oAPT::Architectures::={arch}", "-qq", "update"])
        self.updated = True

    def binary(self, runner: Runner, package: str, suite: str) -> Path:
        """``package`` from ``suite``, extracted (downloaded once per work directory); returns where."""
        debs = self.root / "debs" / suite
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            self.update(runner)
            debs.mkdir(parents=True, exist_ok=True)
            runner.run(["apt-get", *self._options(), "-qq", "download", f"{package}/{suite}"], cwd=debs)
            found = sorted(debs.glob(f"{package}_*.deb"))
        target = self.root / "extracted" / found[-1].stem
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            runner.run(["dpkg-deb", "-x", str(found[-1]), str(target)])
        return target

    def source(self, runner: Runner, package: str, suite: str) -> Path:
        """The unpacked source package (Debian's patches applied)."""
        self.update(runner)
        work = self.root / "src" / f"{package}-{suite}"
        unpacked = work / "tree"
        if not unpacked.exists():
            work.mkdir(parents=True, exist_ok=True)
            runner.run(
                ["apt-get", *self._options(), "-qq", "source", "--download-only", f"{package}/{suite}"],
                cwd=work,
            )
            dsc = sorted(work.glob("*.dsc"))[0]
            runner.run(["dpkg-source", "--no-check", "-x", dsc.name, "tree"], cwd=work)
        return unpacked


def library_in(tree: Path, pattern: str) -> Path:
    found = sorted(path for path in tree.rglob(pattern) if path.is_file() or path.is_symlink())
    if not found:
        raise CellFailed(f"no {pattern} in {tree}")
    return found[0]


def build_libfuse_317(runner: Runner, archive: DebianArchive, work: Path) -> Path:
    """libfuse 3.17 built from trixie's fuse3 source package (its binary needs glibc >= 2.38)."""
    build = work / "libfuse-3.17-build"
    built = build / "lib" / "libfuse3.so.4"
    if built.exists():
        return built
    tree = archive.source(runner, "fuse3", "trixie")
    tools = work / "venv-meson"
    if not (tools / "bin" / "meson").exists():
        runner.run([sys.executable, "-m", "venv", str(tools)])
        runner.run(
            [str(tools / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "meson", "ninja"]
        )
    env = {**os.environ, "PATH": f"{tools / 'bin'}:{os.environ['PATH']}"}
    options = ["-Dutils=false", "-Dexamples=false", "-Dtests=false", "-Dbuildtype=release"]
    runner.run(["meson", "setup", str(build), *options], cwd=tree, env=env)
    runner.run(["ninja", "-C", str(build)], env=env)
    return built


# -- cells ----------------------------------------------------------------------------------------


@dataclass
class Context:
    work: Path
    archive: DebianArchive
    python: str  # the interpreter FUSE and packaging cells use (this script's)
    venvs: dict[str, Path]  # Python minor version (or "default") -> the python of its venv

    def venv_for(self, runner: Runner, minor: str) -> Path:
        """The python of a venv of Python ``minor`` (its Python cell's), else of this script's Python."""
        if minor not in self.venvs:
            python = find_python(minor)
            if python is None:
                minor, python = "default", self.python
            if minor not in self.venvs:
                self.venvs[minor] = make_venv(runner, python, self.work / f"venv-{minor}")
        return self.venvs[minor]


def python_cell(minor: str) -> tuple[str, str, Callable[[Context, Runner], str]]:
    def run(ctx: Context, runner: Runner) -> str:
        python = find_python(minor)
        if python is None:
            raise LookupError(f"Python {minor} is not installed here")
        venv = ctx.work / f"venv-{minor}"
        command = ["make", "--no-print-directory", "test", f"PYTHON={python}", f"VENV={venv}"]
        result = runner.run([*command, "PYTEST_ARGS=-m 'not fuse'"], timeout=3600)
        ctx.venvs[minor] = venv / "bin" / "python"
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"Python {version}: {pytest_summary(result.stdout)}"

    return f"Python {minor}", "make test, all but the FUSE tests", run


LIBFUSES = [
    ("2.9", "libfuse2", "bookworm", "libfuse.so.2", "3.10"),
    ("3.10", "libfuse3-3", "bullseye", "libfuse3.so.3", "3.12"),
    ("3.14", "libfuse3-3", "bookworm", "libfuse3.so.3", "3.13"),
    ("3.17", None, "trixie", "libfuse3.so.4", "3.11"),
]
"""(version, binary package or None to build from source, Debian suite, soname, Python to run under).

Each libfuse runs the FUSE tests once and each Python runs them once (with a different libfuse),
instead of the whole cross product: the rest of the suite does not touch FUSE.
"""


def libfuse_cell(version: str, package: str | None, suite: str, soname: str, minor: str):
    source = f"{package}/{suite}" if package else f"fuse3/{suite} built from source"
    what = f"FUSE tests, {source}, Python {minor}"

    def run(ctx: Context, runner: Runner) -> str:
        if package:
            library = library_in(ctx.archive.binary(runner, package, suite), soname)
        else:
            library = build_libfuse_317(runner, ctx.archive, ctx.work)
        python = ctx.venv_for(runner, minor)
        env = {**os.environ, "FUSE_LIBRARY_PATH": str(library), **REQUIRE_FUSE}
        said = runner.run([str(python), "-m", "memfs", "--version"], env=env).stdout.splitlines()[-1]
        if not said.startswith(f"libfuse {version}."):
            raise CellFailed(f"memfs loaded the wrong library: {said}")
        result = runner.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "fuse"], env=env, timeout=3600
        )
        return f"{said.split(' (')[0]}: {pytest_summary(result.stdout)}"

    return f"libfuse {version}", what, run


def sdist_cell(which: str):
    def run(ctx: Context, runner: Runner) -> str:
        floor = SETUPTOOLS_FLOOR.search((REPO / "pyproject.toml").read_text())
        if floor is None:
            raise CellFailed("pyproject.toml: no setuptools>= requirement found")
        spec = f"setuptools=={floor.group(1)}" if which == "oldest" else "setuptools"
        venv = ctx.work / f"venv-sdist-{which}"
        if venv.exists():
            shutil.rmtree(venv)
        runner.run([ctx.python, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        runner.run([*pip, "--upgrade", spec])
        tree = clean_clone(runner, ctx.work / f"clone-sdist-{which}")
        out = ctx.work / f"dist-{which}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        build = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
        name = runner.run([str(venv / "bin" / "python"), "-c", build, str(out)], cwd=tree).stdout.split()[-1]
        sdist = out / name
        with tarfile.open(sdist) as archive:
            members = archive.getnames()
        headers = [m for m in members if m.endswith(".h") and "/memfs/xpress/" in m]
        if len(headers) < 3:
            raise CellFailed(f"{name} lacks the C headers: {headers}")
        runner.run([*pip, "--no-build-isolation", "--no-deps", "--no-cache-dir", str(sdist)])
        requires = "import importlib.metadata as m; print('\\n'.join(m.requires('memfs')))"
        needs = runner.run([str(venv / "bin" / "python"), "-c", requires], cwd=ctx.work).stdout.splitlines()
        runner.run([*pip, *[need for need in needs if "extra ==" not in need]])
        if not any(need.replace(" ", "").startswith("mfusepy") and "<4" in need for need in needs):
            raise CellFailed(f"mfusepy is not pinned below 4: {needs}")
        check = (
            "import memfs.xpress as x, importlib.metadata as m; data = b'memfs' * 999; "
            "assert x.decompress_plain(x.compress_plain(data), len(data)) == data; "
            "meta = m.metadata('memfs'); print(meta['License-Expression'], m.version('setuptools'))"
        )
        said = runner.run([str(venv / "bin" / "python"), "-c", check], cwd=ctx.work).stdout.split()
        if said[0] != "Apache-2.0":
            raise CellFailed(f"License-Expression is {said[0]}")
        return f"setuptools {said[1]}: {len(headers)} headers in the sdist, wheel built and decoding"

    return f"sdist, {which} setuptools", "sdist -> wheel -> import", run


def clean_clone(runner: Runner, target: Path) -> Path:
    """A clone of this repository's HEAD (committed work only), made fresh."""
    if target.exists():
        shutil.rmtree(target)
    runner.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)])
    return target


MAKE_RUN_AND_CHECK = r"""
set -eu
# What mfusepy would load by itself here: libfuse 2, or the cell proves nothing.
found=$(/usr/bin/python3 -c 'import ctypes.util; print(ctypes.util.find_library("fuse"))')
echo "find_library('fuse') here: $found"
[ "$found" = libfuse.so.2 ]
cd "$CLONE"
trap 'env -i HOME="$HOME" PATH="$STOCK_PATH" make --no-print-directory stop || true' EXIT
env -i HOME="$HOME" PATH="$STOCK_PATH" make --no-print-directory run
ls -l sample/mnt
[ "$(head -c 8 sample/mnt/memory.dmp)" = PAGEDU64 ]
grep -E '^Served by +: libfuse 3\.' sample/mnt/header.txt
grep -E '^Format +: hiberfil' sample/mnt/header.txt
/usr/bin/python3 - <<'EOF'
import re
header = open("sample/mnt/header.txt").read()
size = int(re.search(r"physmem.bin size +: (\d+)", header).group(1))
with open("sample/mnt/physmem.bin", "rb") as physmem:
    data = physmem.read()
assert len(data) == size and data.count(0) < size, "physmem.bin is empty or all zeros"
print(f"physmem.bin: {size} bytes served")
EOF
"""
"""Run by bash with CLONE, HOME and STOCK_PATH set: `make run`, then the three files must be served."""

STOCK_RUN = 'set -eu\nmount --bind "$LDCACHE" /etc/ld.so.cache\n' + MAKE_RUN_AND_CHECK
"""The stock cell, inside a private mount namespace: libfuse 2 visible to the dynamic linker there."""

CHROOT_RUN = r"""
set -eu
mount --rbind /dev "$ROOT/dev"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
exec chroot "$ROOT" env -i HOME=/root PATH="$STOCK_PATH" CLONE=/root/memfs STOCK_PATH="$STOCK_PATH" \
  bash -c "$MAKE_RUN_AND_CHECK"
"""
"""The Debian 12 cell, inside a private mount namespace (so /dev, /proc and /sys leave with it)."""


def _served(output: str) -> str:
    installed = re.search(r"make: installing system packages: (.*)", output)
    served = re.search(r"physmem.bin: (\d+) bytes served", output)
    size = served.group(1) if served else "?"
    packages = installed.group(1) if installed else "nothing"
    return f"make installed {packages}; 3 files served (physmem.bin {size} B)"


def stock_run_cell():
    def run(ctx: Context, runner: Runner) -> str:
        libfuse2 = library_in(ctx.archive.binary(runner, "libfuse2", "bookworm"), "libfuse.so.2")
        conf = ctx.work / "ld.so.conf"
        conf.write_text(f"include /etc/ld.so.conf\n{libfuse2.parent}\n")
        cache = ctx.work / "ld.so.cache"
        runner.run(["ldconfig", "-X", "-C", str(cache), "-f", str(conf)])  # -X: no symlinks touched
        clone = clean_clone(runner, ctx.work / "clone-stock")
        env = {**os.environ, "LDCACHE": str(cache), "CLONE": str(clone), "STOCK_PATH": STOCK_PATH}
        command = ["unshare", "--mount", "--propagation", "private", "bash", "-c", STOCK_RUN]
        result = runner.run(command, env=env, timeout=1800)
        python = subprocess.run(
            ["/usr/bin/python3", "--version"], capture_output=True, text=True
        ).stdout.strip()
        return f"{python}, libfuse.so.2 beside 3: {_served(result.stdout)}"

    return "stock make run", "clean clone, env -i make run, libfuse 2 + 3", run


def debian12_cell():
    """`make run` on a truly stock Debian 12 (debootstrap) with libfuse2 installed, in a chroot."""

    def run(ctx: Context, runner: Runner) -> str:
        root = ctx.work / "debian12-root"
        if root.exists():
            shutil.rmtree(root)
        cache = ctx.work / "debootstrap-cache"  # the .debs, reused by later runs
        cache.mkdir(exist_ok=True)
        # minbase + python3 (every stock install has it) + make (which cannot install itself) + libfuse2.
        packages = "--include=python3,make,ca-certificates,libfuse2"
        runner.run(
            [
                "debootstrap",
                "--variant=minbase",
                packages,
                f"--cache-dir={cache}",
                "bookworm",
                str(root),
                debian_mirror(),
            ],
            timeout=1800,
        )
        # The host's network plumbing, not memfs prerequisites: DNS, and the CA bundle pip must trust
        # where the network intercepts TLS.
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        shutil.copy(
            "/etc/ssl/certs/ca-certificates.crt", root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
        )
        (root / "etc" / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        clean_clone(runner, root / "root" / "memfs")
        env = {
            **os.environ,
            "ROOT": str(root),
            "STOCK_PATH": STOCK_PATH,
            "MAKE_RUN_AND_CHECK": MAKE_RUN_AND_CHECK,
        }
        command = ["unshare", "--mount", "--propagation", "private", "bash", "-c", CHROOT_RUN]
        try:
            result = runner.run(command, env=env, timeout=1800)
        finally:
            shutil.rmtree(root, ignore_errors=True)  # 0.8 GB; its mounts left with the namespace
        return f"Debian 12 minbase + python3, make, libfuse2: {_served(result.stdout)}"

    return "Debian 12 chroot", "debootstrap, then make run alone", run


def all_cells():
    cells = [python_cell(minor) for minor in PYTHONS]
    cells += [libfuse_cell(*spec) for spec in LIBFUSES]
    cells += [sdist_cell("oldest"), sdist_cell("newest"), stock_run_cell(), debian12_cell()]
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only cells whose name contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--work", type=Path, default=REPO / "build" / "platform", help="downloads, venvs, logs"
    )
    parser.add_argument("--list", action="store_true", help="list the cells and exit")
    args = parser.parse_args(argv)
    cells = [cell for cell in all_cells() if not args.only or any(t in cell[0] for t in args.only)]
    if args.list:
        for name, what, _ in cells:
            print(f"{name}: {what}")
        return 0
    if os.geteuid() != 0:
        print(
            "platform_matrix: needs root (FUSE as root, unshare, the non-root test's namespace)",
            file=sys.stderr,
        )
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        work=args.work.resolve(),
        archive=DebianArchive(args.work.resolve() / "apt"),
        python=sys.executable,
        venvs={},
    )
    results: list[Result] = []
    started = time.monotonic()
    for name, what, run in cells:
        log = ctx.work / "logs" / (re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-") + ".log")
        runner = Runner(log)
        print(f"platform_matrix: {name}: {what} ...", flush=True)
        begin = time.monotonic()
        try:
            detail, ok = run(ctx, runner), True
        except LookupError as exc:
            detail, ok = str(exc), None
        except (CellFailed, subprocess.TimeoutExpired, OSError) as exc:
            detail, ok = f"{exc} (log: {log})", False
        results.append(Result(name, what, ok, detail, time.monotonic() - begin))
        print(
            f"platform_matrix: {name}: {'pass' if ok else 'FAIL' if ok is False else 'not run'}: {detail}",
            flush=True,
        )
        if ok is False:
            tail = log.read_text(errors="replace").splitlines()[-25:]
            print("\n".join(f"    | {line}" for line in tail), flush=True)
    print(render_table(results, time.monotonic() - started))
    return 1 if any(result.ok is False for result in results) else 0


def render_table(results: list[Result], seconds: float) -> str:
    load = Path("/proc/loadavg").read_text().split()[:3] if os.path.exists("/proc/loadavg") else ["?"] * 3
    lines = [
        "",
        f"memfs platform matrix ({os.uname().machine}, {os.cpu_count()} CPUs, "
        f"load {' '.join(load)} at the end, {seconds / 60:.1f} min)",
        "",
        "| cell | what ran | result | time |",
        "|---|---|---|---|",
    ]
    for r in results:
        status = {True: "pass", False: "**FAIL**", None: "not run"}[r.ok]
        lines.append(f"| {r.cell} | {r.what} | {status}: {r.detail} | {r.seconds:.0f} s |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
