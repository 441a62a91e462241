"""Ctrl+C: one flag a run's threads watch, raised before the main thread's KeyboardInterrupt.

Python delivers SIGINT to the main thread alone.  The threads that resolve,
read ahead and download would go on until their work ran out (a resolution
fetching page after page, a large wheel to its last byte), and the main
thread, leaving, would wait for them.  So a run installs ``on_sigint``: the
signal first sets the run's ``Stop``, then raises KeyboardInterrupt as Python
would.  Each wait of those threads polls the flag, each download checks it
between chunks and once more under the lock that places a file, and nothing
waits for a thread that is still blocked in a socket read: once stopped it can
no longer put anything into the tree.

A writing phase (pages, root pages, publish) is ``shielded``: a Ctrl+C there
is held until it ends, so a tree is never left half-written by one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

T = TypeVar("T")
# How often a waiting thread looks at the flag: well inside the 2 s a Ctrl+C may take.
POLL_SECONDS = 0.1


class Stopped(KeyboardInterrupt):
    """Raised in a run's threads once it is stopping (a KeyboardInterrupt, so no
    ``except Exception`` on the way swallows it)."""


class Stop:
    """A run's stop flag: set by Ctrl+C (``on_sigint``), polled by its threads."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._shielded = 0
        self._held = False
        self._lock = threading.Lock()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Stopped once the run is stopping."""
        if self._event.is_set():
            raise Stopped()

    def result(self, future: Future[T]) -> T:
        """``future.result()``, given up (Stopped) within POLL_SECONDS of the run stopping."""
        while True:
            self.check()
            try:
                return future.result(timeout=POLL_SECONDS)
            except FutureTimeout:
                continue

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """A Ctrl+C inside is held until the block ends, then raised (KeyboardInterrupt)."""
        with self._lock:
            self._shielded += 1
        try:
            yield
        finally:
            with self._lock:
                self._shielded -= 1
                raise_now = self._held and not self._shielded
                if raise_now:
                    self._held = False
        if raise_now:
            raise KeyboardInterrupt

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.set()
        with self._lock:
            if self._shielded:
                self._held = True
                return
        raise KeyboardInterrupt


@contextlib.contextmanager
def on_sigint(stop: Stop) -> Iterator[None]:
    """While inside, SIGINT sets ``stop`` and then interrupts the main thread.

    Off the main thread (a test calling ``main`` from a thread) signals cannot be
    handled, and a process started with SIGINT ignored keeps ignoring it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, stop._on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
