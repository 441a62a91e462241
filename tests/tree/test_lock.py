"""tree.lock: one writing run per tree; the holder named; a dead holder's lock taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from morgan_like.errors import TreeLockedError
from morgan_like.tree.lock import TreeLock, read_holder

HOLD = """
import sys, time
from morgan_like.tree.lock import TreeLock
with TreeLock(sys.argv[1], "mirror"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_lock_names_its_holder_and_refuses_a_second(tmp_path: Path) -> None:
    with TreeLock(tmp_path, "mirror") as lock:
        assert lock.held
        holder = read_holder(tmp_path)
        assert holder is not None and holder.pid == os.getpid() and holder.command == "mirror"
        with pytest.raises(TreeLockedError) as refused:
            TreeLock(tmp_path, "copy_server").acquire()
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "mirror since" in message
    assert "--wait-lock" in message and "\n" not in message
    assert not lock.held
    with TreeLock(tmp_path, "mirror"):  # released: free again
        pass


def test_waiting_run_gets_the_lock_when_the_holder_ends(tmp_path: Path) -> None:
    """The waiter says once whom it waits for; the holder ends only after that, so the
    test orders the two by events, not by time."""
    first = TreeLock(tmp_path, "mirror")
    first.acquire()
    told: list[str] = []
    waiting = threading.Event()

    def on_wait(message: str) -> None:
        told.append(message)
        waiting.set()

    def release_when_waited_for() -> None:
        waiting.wait(30)
        first.release()

    releaser = threading.Thread(target=release_when_waited_for)
    releaser.start()
    with TreeLock(tmp_path, "mirror", wait=float("inf"), on_wait=on_wait):
        holder = read_holder(tmp_path)
        assert holder is not None and holder.pid == os.getpid()
    releaser.join()
    assert len(told) == 1 and f"pid {os.getpid()}" in told[0]


def test_wait_gives_up_after_its_time(tmp_path: Path) -> None:
    with TreeLock(tmp_path, "mirror"), pytest.raises(TreeLockedError, match="still in use"):
        TreeLock(tmp_path, "mirror", wait=0.3).acquire()


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    """flock dies with its process: the pid left in the file is only informational."""
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(TreeLockedError, match=f"pid {proc.pid}"):
            TreeLock(tmp_path, "mirror").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    holder = read_holder(tmp_path)
    assert holder is not None and holder.pid == proc.pid  # what the dead run left
    with TreeLock(tmp_path, "mirror"):
        holder = read_holder(tmp_path)
        assert holder is not None and holder.pid == os.getpid()


def test_read_holder_of_odd_files(tmp_path: Path) -> None:
    assert read_holder(tmp_path) is None
    lock_file = tmp_path / ".morgan-like" / "lock"
    lock_file.parent.mkdir()
    for text in ("", "not json", "[1]", '{"pid": true}'):
        lock_file.write_text(text)
        holder = read_holder(tmp_path)
        assert holder is None or holder.pid is None
