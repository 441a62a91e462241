"""Worker processes for the steps that hold the GIL the resolver threads need.

Two steps of a bundle run are CPU work the main process's threads pay for twice:
reading a tar (tarfile parses each member's header in pure Python; a large sdist
has thousands) and unpacking an sdist or a build environment (hundreds of small
writes, each of which waits for the GIL again behind every busy thread, so an
unpack that takes milliseconds alone takes a second during a resolution).
``WorkerProcesses`` runs such a step in a spawned worker process, and falls back to
running it here where processes cannot start or a worker dies.

A pool of these is a run's ``processes``; ``workers`` elsewhere (``--workers``, the
configs' ``workers`` key, the downloader's and finder's pools) counts threads.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


def default_processes() -> int:
    """One per core, at most 4 (each worker costs ~25 MB).  While the workers read and
    unpack, the main process mostly waits for the network: on 2 cores, one worker
    left the build step's sdist reads queued behind each other."""
    return max(1, min(4, os.cpu_count() or 2))


def _init_worker() -> None:
    # Ctrl+C reaches the whole process group: the run stops its workers itself, and a
    # worker's own KeyboardInterrupt would print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A run killed outright (kill -9, the OOM killer) cannot stop its workers: each
    # leaves when its parent is gone, instead of idling on with the run's stdout.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


@contextlib.contextmanager
def no_sigint() -> Iterator[None]:
    """SIGINT blocked in this thread while it may spawn a worker: the worker inherits
    the mask, so a Ctrl+C during its start-up (before ``_init_worker`` runs) cannot reach
    it either; the run's main thread still gets it."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class WorkerProcesses:
    """A lazily started pool of ``processes`` spawned workers (0: everything runs here).

    ``run`` takes a module-level function and picklable arguments; its exceptions
    come back as raised there.  ``close`` stops the workers; later calls run here.

    Steps wait their turn here, lowest ``priority`` first, with only as many handed
    to the pool as it has workers: the pool itself serves in arrival order, where a
    small sdist whose build requirements start a chain of downloads would wait
    behind large ones read for nothing more.
    """

    def __init__(self, processes: int = 0) -> None:
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)
        self._waiting: list[tuple[float, int]] = []  # heap of (priority, ticket)
        self._tickets = itertools.count()
        self._running = 0

    def warm(self) -> None:
        """Start the workers now (a spawned interpreter takes a few hundred ms to import
        what it runs), e.g. while the first sdist downloads."""
        self._started()

    def _started(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None and self._processes > 0:
                try:
                    pool = ProcessPoolExecutor(
                        self._processes,
                        # spawn: the run has threads, and forking them is unsafe.
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_init_worker,
                    )
                    with no_sigint():
                        # One task each: the pool starts a worker per task no idle one
                        # takes, so every worker starts now, not at the first time two
                        # reads run at once (a read that then waits out a start-up).
                        for _ in range(self._processes):
                            pool.submit(int)
                except (OSError, RuntimeError, NotImplementedError, BrokenProcessPool):
                    self._processes = 0  # no processes here (a sandbox): run in this one
                else:
                    self._pool = pool
            return self._pool

    def run(self, fn: Callable[..., T], *args: Any, priority: float = 0.0) -> T:
        pool = self._started()
        if pool is not None:
            with self._turn:
                ticket = (priority, next(self._tickets))
                heapq.heappush(self._waiting, ticket)
                while self._waiting[0] != ticket or self._running >= max(1, self._processes):
                    self._turn.wait()
                heapq.heappop(self._waiting)
                self._running += 1
            try:
                with no_sigint():  # a submit may start a worker
                    future = pool.submit(fn, *args)
                return future.result()
            except (BrokenProcessPool, RuntimeError) as exc:
                if not isinstance(exc, BrokenProcessPool) and pool is self._pool:
                    raise  # the function's own RuntimeError
                with self._lock:  # a worker died, or the pool was closed meanwhile
                    self._processes = 0
            finally:
                with self._turn:
                    self._running -= 1
                    self._turn.notify_all()
        return fn(*args)

    def close(self) -> None:
        with self._lock:
            pool, self._pool, self._processes = self._pool, None, 0
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
