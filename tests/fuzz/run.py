"""Fuzz memfs for a time budget on every core, then minimise and save what was found (``make fuzz``).

    python -m tests.fuzz.run [--seconds S] [--jobs N] [--work DIR] [--corpus DIR]

One atheris worker per job (libFuzzer's own ``-fork`` mode cannot restart a Python target), all
sharing one corpus directory, so each picks up what the others found.  A worker that stops early (an
uncaught exception, a rule of :mod:`tests.fuzz.pipeline` broken, a run over :data:`TIMEOUT` seconds
or over :data:`RSS_LIMIT_MB` of memory) leaves its input as an artifact and is restarted for the time
left.  At the end every artifact is minimised and saved under ``tests/fuzz/crashers/`` (once per
distinct failure), where ``tests/fuzz/test_corpus.py`` replays it as a regression test, and the
figures the brief asks for are printed: executions, rate, uncaught exceptions, hangs, peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CRASHERS = REPO / "tests" / "fuzz" / "crashers"
TIMEOUT = 10
RSS_LIMIT_MB = 1024
MAX_LEN = 140_000  # the largest seed (a 128 KiB triage dump) plus its selector byte
MINIMISE_SECONDS = 60


@dataclass
class Totals:
    """What the workers reported, summed."""

    executions: int = 0
    peak_rss_mb: int = 0
    crashes: int = 0
    timeouts: int = 0
    ooms: int = 0
    artifacts: list[Path] = field(default_factory=list)
    signatures: dict[str, Path] = field(default_factory=dict)


def _target(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.target", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )


def _read_stats(log: Path, totals: Totals) -> None:
    text = log.read_text(errors="replace")
    executed = re.findall(r"stat::number_of_executed_units: (\d+)", text)
    status = re.findall(r"^#(\d+)\s.*?rss: (\d+)Mb", text, re.M)
    if executed:
        totals.executions += int(executed[-1])
    elif status:
        totals.executions += int(status[-1][0])
    peaks = [int(v) for v in re.findall(r"stat::peak_rss_mb:\s+(\d+)", text)] + [int(r) for _, r in status]
    totals.peak_rss_mb = max([totals.peak_rss_mb, *peaks])
    if "ERROR: libFuzzer: timeout" in text or "ALARM: working on the last Unit" in text:
        totals.timeouts += 1
    elif "out-of-memory" in text:
        totals.ooms += 1
    elif "Uncaught Python exception" in text or "deadly signal" in text:
        totals.crashes += 1


def _signature(log: Path) -> str:
    """The failure's kind and where memfs raised it (one saved crasher per signature)."""
    text = log.read_text(errors="replace")
    if "ALARM: working on the last Unit" in text:
        return "timeout"
    if "out-of-memory" in text:
        return "out-of-memory"
    found = re.search(r"=== Uncaught Python exception: ===\n([^\n]*)\n(.*?)\n\S", text, re.S)
    if not found:
        return "crash"
    what, trace = found.group(1), found.group(2)
    frames = re.findall(r'File "[^"]*/(memfs/[^"]+)", line (\d+)', trace)
    if frames:
        return f"{what.split(':')[0]} at {frames[-1][0]}:{frames[-1][1]}"
    return re.sub(r"0x[0-9a-f]+|\d+", "N", what)  # a broken pipeline rule: its message, numbers elided


def _launcher(work: Path) -> Path:
    """An executable that starts the target: what libFuzzer runs again when it minimises a crash."""
    path = work / "memfs-fuzz-target"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.fuzz.target "$@"\n')
    path.chmod(0o755)
    return path


def _environment(work: Path, index: int) -> dict[str, str]:
    env = dict(os.environ)
    env["MEMFS_FUZZ_LAUNCHER"] = str(_launcher(work))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MEMFS_FUZZ_WORK"] = str(work / f"worker{index}")
    env["MEMFS_FUZZ_BASES"] = str(work / "bases")
    return env


def prepare(work: Path, corpus: Path) -> Path:
    """Build seeds and bases under ``work``; return the directory of seed inputs."""
    from memfs.formats.hiberfil import LAYOUT_NAMES as LAYOUT_KEYS
    from tests.fuzz.seeds import BASES, build_bases, build_small
    from tests.fuzz.target import LAYOUT_LIMIT, RAW_LIMIT

    build_bases(work / "bases")
    inputs = work / "seed-inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    for path in build_small(work / "small"):
        (inputs / path.name).write_bytes(b"\0" + path.read_bytes())
    # A user's --hiber-layout that does not fit the file: each family read with the other's layout.
    for name, layout in (("hiberfil-win7-x64", "win10-1809-x64"), ("hiberfil-win10-1809-x64", "win7-x64")):
        data = (work / "small" / name).read_bytes()
        selector = RAW_LIMIT + LAYOUT_KEYS.index(layout)
        (inputs / f"{name}-as-{layout}").write_bytes(bytes([selector]) + data)
    for index, base in enumerate(BASES):
        (inputs / f"base-{base.name}").write_bytes(bytes([LAYOUT_LIMIT + index]))
    corpus.mkdir(parents=True, exist_ok=True)
    return inputs


def fuzz(seconds: float, jobs: int, work: Path, corpus: Path) -> Totals:
    """Run ``jobs`` workers until ``seconds`` have passed; restart the ones that stop early."""
    inputs = prepare(work, corpus)
    artifacts = work / "artifacts"
    artifacts.mkdir(exist_ok=True)
    CRASHERS.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    totals = Totals()
    running: dict[int, tuple[subprocess.Popen, Path]] = {}
    starts = 0

    def start(index: int) -> None:
        nonlocal starts
        left = int(deadline - time.monotonic())
        if left < 5:
            return
        starts += 1
        flags = [
            f"-max_total_time={left}",
            f"-timeout={TIMEOUT}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-max_len={MAX_LEN}",
            "-len_control=0",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/w{index}-{starts}-",
        ]
        log = work / f"log-w{index}-{starts}.txt"
        running[index] = (
            _target([*flags, str(corpus), str(inputs), str(CRASHERS)], _environment(work, index), log, work),
            log,
        )

    for index in range(jobs):
        start(index)
    while running:
        time.sleep(1)
        for index, (process, log) in list(running.items()):
            if process.poll() is None:
                continue
            del running[index]
            _read_stats(log, totals)
            found = sorted(artifacts.glob(f"w{index}-*"))
            for artifact in found:
                if artifact not in totals.artifacts:
                    totals.artifacts.append(artifact)
                    totals.signatures.setdefault(_signature(log), artifact)
            start(index)
    return totals


def minimise(artifact: Path, work: Path) -> Path:
    """A smaller input that fails the same way (libFuzzer's ``-minimize_crash``), or the artifact itself."""
    out = work / f"min-{artifact.name}"
    log = work / f"min-{artifact.name}.txt"
    process = _target(
        [
            "-minimize_crash=1",
            f"-max_total_time={MINIMISE_SECONDS}",
            f"-timeout={TIMEOUT}",
            f"-exact_artifact_path={out}",
            str(artifact),
        ],
        _environment(work, 99),
        log,
        work,
    )
    process.wait()
    return out if out.exists() and out.stat().st_size <= artifact.stat().st_size else artifact


def save(totals: Totals, work: Path) -> list[Path]:
    """Minimise one artifact per distinct failure and copy it into tests/fuzz/crashers/."""
    saved = []
    for signature, artifact in totals.signatures.items():
        data = (minimise(artifact, work) if "timeout" not in signature else artifact).read_bytes()
        target = CRASHERS / f"crash-{hashlib.sha1(data).hexdigest()[:12]}"
        target.write_bytes(data)
        print(f"memfs fuzz: {signature}: saved {target.relative_to(REPO)} ({len(data)} bytes)")
        saved.append(target)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    default_work = Path("/dev/shm/memfs-fuzz") if os.access("/dev/shm", os.W_OK) else REPO / "build" / "fuzz"
    parser.add_argument("--work", type=Path, default=default_work, help="scratch (default: /dev/shm)")
    parser.add_argument(
        "--corpus", type=Path, default=REPO / "build" / "fuzz-corpus", help="kept between runs"
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    started = time.monotonic()
    totals = fuzz(args.seconds, args.jobs, args.work, args.corpus)
    elapsed = time.monotonic() - started
    saved = save(totals, args.work)
    rate = totals.executions / max(elapsed, 1)
    print(
        f"memfs fuzz: {totals.executions} executions in {elapsed:.0f} s, {args.jobs} workers ({rate:.0f}/s); "
        f"uncaught exceptions or broken rules: {totals.crashes}; hangs over {TIMEOUT} s: {totals.timeouts}; "
        f"over {RSS_LIMIT_MB} MiB: {totals.ooms}; peak RSS {totals.peak_rss_mb} MiB; "
        f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    return 1 if saved else 0


if __name__ == "__main__":
    sys.exit(main())
