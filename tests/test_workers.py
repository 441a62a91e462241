"""morgan_like/workers.py: steps run in worker processes, and here when they cannot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from morgan_like import workers as workers_module
from morgan_like.cli import main
from morgan_like.dists import sdistread
from morgan_like.errors import MetadataError
from morgan_like.workers import WorkerProcesses

from .distbuilder import make_sdist, make_wheel
from .fakeindex import FakeIndex
from .helpers import ini_env_block


def _refuse(message: str) -> None:
    raise MetadataError(message)


def _die_unless_in(pid: int) -> str:
    if os.getpid() != pid:
        os._exit(3)  # a worker killed mid-step (OOM killer, signal)
    return "ran here"


def _blocked_signals() -> set[int]:
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])}


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_ctrl_c_never_reaches_a_worker_even_while_it_starts() -> None:
    """A terminal's Ctrl+C goes to the whole process group; a worker interrupted while
    it imports would print a traceback.  Worker processes are started with SIGINT blocked."""
    processes = WorkerProcesses(1)
    try:
        assert int(signal.SIGINT) in processes.run(_blocked_signals)
    finally:
        processes.close()
    assert int(signal.SIGINT) not in _blocked_signals()  # this thread's mask is restored


def test_a_step_runs_in_a_worker_process_and_its_errors_come_back() -> None:
    processes = WorkerProcesses(1)
    try:
        assert processes.run(os.getpid) != os.getpid()
        with pytest.raises(MetadataError, match="x.tar.gz: refused"):
            processes.run(_refuse, "x.tar.gz: refused")
    finally:
        processes.close()
    assert processes.run(os.getpid) == os.getpid()  # closed: runs here


def test_without_processes_everything_runs_here() -> None:
    assert WorkerProcesses(0).run(os.getpid) == os.getpid()


def test_a_dead_worker_falls_back_to_this_process() -> None:
    processes = WorkerProcesses(1)
    try:
        assert processes.run(_die_unless_in, os.getpid()) == "ran here"
        assert processes.run(os.getpid) == os.getpid()
    finally:
        processes.close()


def test_where_processes_cannot_start_steps_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_processes(*args, **kwargs):
        raise OSError("[Errno 38] Function not implemented")  # e.g. no sem_open

    monkeypatch.setattr(workers_module, "ProcessPoolExecutor", no_processes)
    processes = WorkerProcesses(2)
    processes.warm()
    assert processes.run(os.getpid) == os.getpid()


@pytest.mark.processes
def test_a_bundle_reads_and_unpacks_in_workers(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    """An sdist-only project: its metadata, its build requirements and its hook's
    environment all come through the worker; the tree is the one an in-process run makes."""
    fake_index.add(tiny_backend_wheel)
    fake_index.add(make_wheel(dists, "dep", "1.0"))
    fake_index.add(
        make_sdist(
            dists,
            "src",
            "1.0",
            requires_dist=["dep"],
            build_requires=["tinybackend"],
            build_backend="tinybackend",
        )
    )
    trees = []
    for processes in (1, 0):
        root = tmp_path / f"tree{processes}"
        root.mkdir()
        (root / "morgan.ini").write_text(
            ini_env_block("py312", "3.12.1") + "[requirements]\nsrc =\n"
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("morgan_like.modes.resolving.default_processes", lambda p=processes: p)
            if processes:  # nothing is read here: a worker reads (its module is unpatched)
                patch.setattr(sdistread, "read_archive", _refuse)
            assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
        trees.append(sorted(p.name for p in (root / "packages").rglob("*") if p.is_file()))
    assert trees[0] == trees[1]
    assert {
        "src-1.0.tar.gz",
        "dep-1.0-py3-none-any.whl",
        "tinybackend-1.0-py3-none-any.whl",
    } <= set(trees[0])


def test_workers_leave_when_the_run_is_killed_outright(tmp_path: Path) -> None:
    """kill -9 (or the OOM killer) gives the run no chance to stop its workers: they
    must not idle on, holding the run's stdout open for whoever waits on it."""
    out = tmp_path / "out"
    code = (
        "import os\n"
        "from morgan_like.workers import WorkerProcesses\n"
        "print(WorkerProcesses(1).run(os.getpid), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    with open(out, "w") as sink:
        subprocess.run([sys.executable, "-c", code], stdout=sink, timeout=60)
    worker = int(out.read_text().split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        stat = Path(f"/proc/{worker}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return  # exited; waits for its new parent to reap it
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"worker {worker} outlived its killed parent")


def _note(order_file: str, label: str) -> str:
    with open(order_file, "a") as out:
        out.write(label + "\n")
    return label


def test_waiting_steps_go_lowest_priority_first(tmp_path: Path) -> None:
    """The pool serves in arrival order; WorkerProcesses hands it the lowest priority first
    (the smallest sdist, or an unpack a hook waits for)."""
    import threading

    order = tmp_path / "order"
    processes = WorkerProcesses(1)
    try:
        processes.run(int)  # the worker is up
        first = threading.Thread(target=lambda: processes.run(time.sleep, 0.5))
        first.start()  # holds the only worker while the others queue
        time.sleep(0.1)
        threads = [
            threading.Thread(
                target=processes.run, args=(_note, str(order), label), kwargs={"priority": p}
            )
            for label, p in (("big", 5_000_000), ("small", 16_000), ("unpack", -1))
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        first.join()
        for thread in threads:
            thread.join()
    finally:
        processes.close()
    assert order.read_text().split() == ["unpack", "small", "big"]


def test_a_run_has_a_worker_process_per_core_up_to_four(monkeypatch: pytest.MonkeyPatch) -> None:
    """The main process mostly waits for the network while the workers read sdists:
    on 2 cores, 2 workers (one left the build step's reads queued)."""
    for cores, expected in ((None, 2), (1, 1), (2, 2), (3, 3), (16, 4)):
        monkeypatch.setattr(workers_module.os, "cpu_count", lambda c=cores: c)
        assert workers_module.default_processes() == expected


def test_warm_starts_every_worker_at_once() -> None:
    """Two reads at once find two workers running: none waits out a start-up then."""
    processes = WorkerProcesses(2)
    try:
        processes.warm()
        pool = processes._pool
        assert pool is not None
        deadline = 600  # a guard against a hang (x 0.05 s), not a measurement
        while len(pool._processes or {}) < 2 and deadline:
            time.sleep(0.05)
            deadline -= 1
        assert len(pool._processes or {}) == 2
    finally:
        processes.close()
