"""memfs.parallel: the units of one bulk read spread over idle helper threads (both cores for one reader).

Checked here: every job runs exactly once and helpers really take part; the first error reaches the caller
after every job ran; one usable core (``taskset``) runs inline; a forked child gets a pool of its own; and
through a hibernation source, reads split over helpers give the same bytes as reads decoded on one thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from memfs import parallel
from memfs.detect import open_image
from memfs.parallel import Helpers
from scripts import make_hiberfil_fixtures as mk


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)


def test_every_job_runs_once_and_helpers_join_in(two_cores):
    helpers = Helpers()
    ran: list[str] = []
    lock = threading.Lock()

    def job(number: int):
        def run() -> None:
            time.sleep(0.01)  # long enough for the helper to wake up and take some
            with lock:
                ran.append(f"{number}:{threading.current_thread().name}")

        return run

    helpers.run([job(n) for n in range(20)])
    assert sorted(int(entry.split(":")[0]) for entry in ran) == list(range(20))
    assert {entry.split(":")[1] for entry in ran} == {threading.current_thread().name, "memfs-helper"}
    assert helpers.batches == 1


def test_the_first_error_is_raised_after_all_jobs_ran(two_cores):
    ran = []

    def fail(number: int):
        def run() -> None:
            ran.append(number)
            if number in (3, 5):
                raise ValueError(f"job {number}")

        return run

    with pytest.raises(ValueError, match="job [35]"):
        Helpers().run([fail(n) for n in range(8)])
    assert sorted(ran) == list(range(8))


def test_a_request_arriving_while_another_is_served_is_not_split(two_cores):
    """On two cores a second reader's request finds no idle core: it runs on its own thread."""
    helpers = Helpers()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(5)

    first = threading.Thread(target=helpers.run, args=([hold, lambda: None],))
    first.start()
    inside.wait(5)
    names = []
    helpers.run([lambda: names.append(threading.current_thread().name)] * 4)
    release.set()
    first.join(5)
    assert names == [threading.current_thread().name] * 4
    assert helpers.batches == 1  # the first request only


def test_one_core_runs_inline(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    helpers = Helpers()
    names = []
    helpers.run([lambda: names.append(threading.current_thread().name)] * 4)
    assert names == [threading.current_thread().name] * 4
    assert helpers.batches == 0 and helpers._threads == []


def test_usable_cores_follows_the_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert parallel.usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_helpers(two_cores):
    parallel.HELPERS.run([lambda: None] * 4)  # the parent's helper thread exists now
    pid = os.fork()
    if pid == 0:  # the child: its pool must work although the parent's threads are gone
        status = 1
        try:
            done = []
            parallel.HELPERS.run([lambda: done.append(1)] * 8)
            status = 0 if len(done) == 8 and parallel.HELPERS._threads else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("name", ["win10-1809-x64", "win11-24h2-x64", "win7-x64"])
def test_split_reads_equal_reads_on_one_thread(tmp_path, monkeypatch, two_cores, name):
    """Pipelined (split) bulk reads give the bytes of unsplit ones, in odd-sized chunks too."""
    info = mk.build_fixture(name, tmp_path)
    chunks = (1 << 20, 0x23000 + 0x456)
    split = Helpers()
    monkeypatch.setattr("memfs.formats.hiberfil.HELPERS", split)
    with open_image(str(info.path)) as src:
        got = {chunk: _read_all(src, chunk) for chunk in chunks}
    assert split.batches > 0, "no request was split"
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    with open_image(str(info.path)) as src:
        for chunk in chunks:
            assert got[chunk] == _read_all(src, chunk)
            assert hashlib.sha256(got[chunk]).hexdigest() == info.sha256


def _read_all(src, chunk: int) -> bytes:
    out = bytearray(src.size)
    view = memoryview(out)
    for pa in range(0, src.size, chunk):
        src.read_into(pa, view[pa : pa + chunk])
    return bytes(out)
