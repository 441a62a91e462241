"""A sync into a bucket streams its projects up as it goes (tree.bucketstream); this is
the run-level part: what must hold before the stream starts, and its mark.

The stream runs in a process of its own (StreamProcess): its uploads cost CPU in the
S3 client (signing, parsing) that would otherwise take the run's own interpreter lock
from the writer.  It reads the state and the working tree itself; it hands back what it
sent when told to stop, leaves as soon as the run's process is gone (even killed), and
ignores Ctrl+C (the run stops it).

The stream uploads only what the state's ``unsent`` rows name, so the bucket must
already hold everything the working tree published before.  Before the run, under the
working tree's lock: the evictions a killed streaming run logged go into the state (so
the sync neither fetches those files again nor takes them for lost); a push cut short,
or a publish never pushed, is pushed first (the catch-up); and when the last streaming
run was killed (its mark is still there) the uploads it cut short are swept.  The mark
stands while the stream runs.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from morgan_like.output import Reporter
from morgan_like.tree.bucketpush import Sent
from morgan_like.tree.bucketstream import StreamResult
from morgan_like.workers import no_sigint

if TYPE_CHECKING:
    from morgan_like.modes.bucket import BucketRun
    from morgan_like.tree.state import TreeState
    from morgan_like.tree.statereader import StateReader
    from morgan_like.tree.storage import Storage

# Fetched projects not yet streamed that a sync may hold on local disk before its fetchers
# wait for the stream: a store slower than upstream then bounds the run, not the disk.
BACKLOG = 64


def behind(run: BucketRun) -> bool:
    """Whether the bucket may lack something the working tree holds outside the state's
    ``unsent`` rows: a push's journal is left, or the working tree's generation is not
    the one last pushed to this bucket (a publish never pushed; never pushed there at
    all, e.g. a working tree rebuilt or given to another bucket)."""
    from morgan_like.modes.bucket import pushed_generation
    from morgan_like.tree.bucketpush import read_journal
    from morgan_like.tree.generations import current
    from morgan_like.tree.state import TreeState

    root = run.working_tree
    if read_journal(root) is not None:
        return True
    with TreeState(root) as state:
        gen = current(state)
        return pushed_generation(state, run.target) != gen


def finished_before(state: TreeState) -> int:
    """The last sequence number of the state's finished-projects log (0: none)."""
    return int(state.query("SELECT COALESCE(MAX(seq), 0) FROM sync_finished")[0][0])


@contextlib.contextmanager
def streaming(run: BucketRun, reporter: Reporter) -> Iterator[StreamProcess]:
    """The stream around a sync on ``run``'s working tree (see the module docstring)."""
    from morgan_like.modes.bucket import describe_push, open_storage, push_locked
    from morgan_like.tree.bucketstream import STREAMING_MARK, fold_evictions
    from morgan_like.tree.files import atomic_write_bytes
    from morgan_like.tree.layout import STATE_DIR
    from morgan_like.tree.lock import TreeLock
    from morgan_like.tree.state import STATE_NAME, TreeState

    root = run.working_tree
    storage = open_storage(run.target, run.storage)
    mark = root / STREAMING_MARK
    with TreeLock(root, "push", wait=run.wait_lock, on_wait=reporter.info):
        fresh = not (root / STATE_DIR / STATE_NAME).is_file()  # a first sync: nothing to catch up
        with TreeState(root) as state:
            fold_evictions(root, state, state.commit)
            # Only what this run finishes streams: the log's older rows are a killed run's
            # (the end push sends them; this run may be rewriting those projects).
            cursor = finished_before(state)
        if not fresh and behind(run):
            caught_up = push_locked(run)
            reporter.info(
                f"Brought {run.target.url} up to its working tree first: {describe_push(caught_up)}"
            )
        if mark.is_file():
            storage.sweep()  # a killed stream's cut-short multipart uploads
        mark.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(mark, b"", durable=True)
    stream = StreamProcess(root, functools.partial(open_storage, run.target, run.storage), cursor)
    try:
        with stream:
            yield stream
    finally:
        stream.close()
        if stream.ended_cleanly:  # every upload it started has ended: nothing to sweep
            with contextlib.suppress(FileNotFoundError):
                mark.unlink()


class StreamProcess:
    """tree.bucketstream.StreamingPush in a spawned process of its own (see the module
    docstring), started once the run has finished a first project (a run that finishes
    none, a no-op re-sync, pays no process start).  ``close`` stops it and takes back what
    it sent (``sent``, ``result``)."""

    def __init__(
        self, root: Path, opener: Callable[[], Storage], cursor: int, backlog: int | None = None
    ) -> None:
        self.root, self.opener, self.cursor = root, opener, cursor
        self.backlog = BACKLOG if backlog is None else backlog
        self.sent: dict[str, Sent] = {}
        self.result = StreamResult()
        self.ended_cleanly = False
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None
        self._handled: Any = None  # a shared counter: finished projects the stream took
        self._stopped: Any = None  # set by the stream when a problem stopped it
        self._reader: StateReader | None = None
        self._reader_lock = threading.Lock()
        self._closing = threading.Event()
        self._start_lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> StreamProcess:
        from morgan_like.tree.bucketstream import register_throttle

        register_throttle(self.root, self.behind)
        self._watcher = threading.Thread(target=self._start_when_needed, daemon=True)
        self._watcher.start()
        return self

    def _finished(self) -> int | None:
        """Projects the run committed as finished since the stream's cursor (None: the
        state cannot be read yet)."""
        import sqlite3

        from morgan_like.tree.statereader import StateReader

        with self._reader_lock:
            try:
                if self._reader is None:
                    self._reader = StateReader(self.root)
                return self._reader.last_finished() - self.cursor
            except sqlite3.Error:
                return None

    def _start_when_needed(self) -> None:
        from morgan_like.tree.bucketstream import POLL

        while not self._closing.wait(POLL):
            finished = self._finished()
            if finished is not None and finished > 0:
                with self._start_lock:
                    if not self._closing.is_set():
                        self._spawn()
                return

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        self._handled = ctx.Value("q", 0)
        self._stopped = ctx.Event()
        process = ctx.Process(
            target=stream_child,
            args=(self.root, self.opener, self.cursor, theirs, self._handled, self._stopped),
            name="morgan-like-stream",
            daemon=True,
        )
        with no_sigint():
            process.start()
        theirs.close()
        self._conn, self._process = ours, process

    def behind(self, queued: int) -> bool:
        """Whether the run should wait before handing over another fetched project: the
        projects fetched and not yet streamed (``queued`` waiting for the writer, plus
        those finished that the stream has not taken yet) are more than ``backlog``.
        Never while the stream is not running (not started, stopped, failed, gone)."""
        process = self._process
        if process is None or not process.is_alive() or self._stopped.is_set():
            return False
        finished = self._finished()
        if finished is None:
            return False
        return queued + max(0, finished - self._handled.value) > self.backlog

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        from morgan_like.tree.bucketstream import register_throttle

        self._closing.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        register_throttle(self.root, None)
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._start_lock:
            conn, process = self._conn, self._process
            self._conn = self._process = None
        if conn is None or process is None:
            self.ended_cleanly = self.ended_cleanly or self._handled is None  # never started
            return
        with contextlib.suppress(OSError):  # gone already: what it said is still there
            conn.send("stop")
        try:
            sent, result = conn.recv()
            self.sent, self.result, self.ended_cleanly = sent, result, True
        except (EOFError, OSError):
            self.result = StreamResult(problem="the streaming process ended early")
        finally:
            conn.close()
            process.join()


def stream_child(
    root: Path,
    opener: Callable[[], Storage],
    cursor: int,
    conn: Connection,
    handled: Any,
    stopped: Any,
) -> None:
    """The streaming process: stream until the run says stop, then hand back what was sent
    (the objects the working tree still has: an evicted file's record serves nothing)."""
    from morgan_like.tree.bucketstream import StreamingPush

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run stops it
    parent = multiprocessing.parent_process()
    if parent is not None:  # the run killed outright: leave at once, mid-upload or not
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    try:

        def took() -> None:
            with handled.get_lock():
                handled.value += 1

        with StreamingPush(root, opener(), cursor=cursor, on_handled=took) as stream:
            while not conn.poll(0.2):
                if stream.result.problem is not None:
                    stopped.set()  # the run must not wait for a stream that stopped
            conn.recv()
        sent = {k: v for k, v in stream.sent.items() if (root / k).exists()}
        conn.send((sent, stream.result))
    except EOFError:
        os._exit(0)
    except Exception as exc:  # handed to the run: one line, never a traceback
        stopped.set()
        with contextlib.suppress(OSError):
            conn.send(({}, StreamResult(problem=str(exc) or exc.__class__.__name__)))


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)
