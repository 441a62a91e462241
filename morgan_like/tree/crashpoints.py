"""Steps at which a test can kill the process, to prove a kill -9 at any moment is survivable.

Every change the tree writer makes to disk (an atomic write about to land, an unlink,
a state commit, a download recorded) is one step.  With ``MORGAN_LIKE_CRASH_AFTER=N``
in the environment the process kills itself (SIGKILL: no ``finally``, no atexit, no
flush) on reaching the Nth step, so a crash test can stop a real run at every point
of its write sequence, deterministically, instead of guessing delays.  Unset, which is
always outside those tests, a step costs one integer comparison.
"""

from __future__ import annotations

import os
import signal
import threading

CRASH_ENV = "MORGAN_LIKE_CRASH_AFTER"


def _limit_from_env() -> int:
    try:
        return max(0, int(os.environ.get(CRASH_ENV) or 0))
    except ValueError:
        return 0


_limit = _limit_from_env()
_count = 0
_lock = threading.Lock()


def step() -> None:
    """One change to the tree is about to happen (or just happened); maybe die here."""
    global _count
    if not _limit:
        return
    with _lock:
        _count += 1
        due = _count == _limit
    if due:
        kill = getattr(signal, "SIGKILL", None)
        if kill is not None:
            os.kill(os.getpid(), kill)
        os._exit(137)  # Windows: no SIGKILL, but the same abrupt end
