"""One writing run per tree: an exclusive lock on ``.morgan-like/lock``.

Two runs writing one tree corrupt each other: each sweeps the scratch folder the
other's temp files and cached sdists live in, and with ``--prune`` one deletes
what the other is about to list.  So every command that writes the tree (mirror,
copy_server; sync, import and verify --repair as they come) runs inside
:class:`TreeLock`; read-only commands (verify, serve, a dry run) never take it.

The lock is an OS lock on an open file (``fcntl.flock``; ``msvcrt.locking`` on
Windows): the kernel releases it when its holder dies, however it dies, so a
killed run never leaves a lock to clean up.  The pid, command and start time
written into the file only serve to tell the user who holds it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from morgan_like.errors import TreeLockedError
from morgan_like.tree.layout import LOCK_NAME

# How the one line a refused run prints ends: the commands that lock share the flag.
WAIT_HINT = "try again when it ends, or pass --wait-lock to wait for it"
_POLL = 0.1  # seconds between two tries while waiting
_WIN_LOCK_OFFSET = 1 << 20  # Windows locks a byte range: one far past the holder's text


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a tree's lock, as written in the lock file."""

    pid: int | None
    command: str | None
    started: str | None

    def describe(self) -> str:
        """``pid 1234, mirror since 2024-05-01 12:00:00 UTC``, with what is known."""
        words = [f"pid {self.pid}" if self.pid is not None else "pid unknown"]
        if self.command:
            words.append(self.command + (f" since {self.started}" if self.started else ""))
        return ", ".join(words)


def read_holder(root: Path) -> LockHolder | None:
    """What the lock file says (None: no file, or nothing readable in it)."""
    try:
        with open(Path(root) / LOCK_NAME, "rb") as fh:
            doc = json.loads(fh.read(4096).decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    pid, command, started = doc.get("pid"), doc.get("command"), doc.get("started")
    return LockHolder(
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        command if isinstance(command, str) else None,
        started if isinstance(started, str) else None,
    )


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


class TreeLock:
    """Hold a tree's lock for a ``with`` block; see the module docstring.

    ``wait``: None refuses at once when another run holds the lock; a number of
    seconds (``math.inf``: as long as it takes) waits for it, telling ``on_wait``
    once whom it waits for.  Refusing (or waiting in vain) raises TreeLockedError
    with one line naming the holder's pid; ``hint`` ends that line (how to wait).
    """

    def __init__(
        self,
        root: Path,
        command: str,
        *,
        wait: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        hint: str | None = WAIT_HINT,
    ) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.command = command
        self.wait = wait
        self.on_wait = on_wait
        self.hint = hint
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._wait_for(fd)
            self._write_holder(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _wait_for(self, fd: int) -> None:
        deadline = None if self.wait is None else time.monotonic() + self.wait
        announced = False
        while not _try_lock(fd):
            holder = self._holder()
            if deadline is None or (not math.isinf(deadline) and time.monotonic() >= deadline):
                raise TreeLockedError(self._refusal(holder, waited=deadline is not None))
            if not announced and self.on_wait is not None:
                self.on_wait(f"waiting for the run holding {self.root} ({holder.describe()})")
                announced = True
            time.sleep(_POLL)

    def _holder(self) -> LockHolder:
        """The holder's record; it writes it just after locking, so an empty file gets
        a few short retries before the pid is called unknown."""
        for _ in range(10):
            holder = read_holder(self.root)
            if holder is not None:
                return holder
            time.sleep(0.02)
        return LockHolder(None, None, None)

    def _refusal(self, holder: LockHolder, waited: bool) -> str:
        how = "is still in use" if waited else "is in use"
        line = f"{self.root} {how} by another morgan-like run ({holder.describe()})"
        return line + (f"; {self.hint}" if self.hint else "")

    def _write_holder(self, fd: int) -> None:
        started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        text = json.dumps({"pid": os.getpid(), "command": self.command, "started": started})
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, text.encode("utf-8") + b"\n")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no stale pid for the next reader to misreport
            _unlock(fd)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> TreeLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
