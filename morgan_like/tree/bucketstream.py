"""The streaming push: a sync into a bucket sends each project up as soon as it is
finished, so the working tree holds only what is in flight instead of every file a
first sync fetches.

A thread beside the run follows the projects the sync commits as finished (the state's
``sync_finished`` log, read through a second, read-only sqlite connection: the run's
writer is never blocked by it).  For each one it takes what the run changed under that
project and no diff-file carried yet (the state's ``unsent`` rows: a page and the files
it newly lists are noted there before the page changes) and uploads, in the push's
ranks: the distribution files and provenance the pages list that the bucket lacks, then
their ``.metadata``, then the project pages (``simple/<p>/``, ``json/<p>``), each page's
bytes read once and those exact bytes uploaded after every object they list.  A page
that lists a file that is neither in the working tree nor known to be in the bucket is
left to the end push.  The distribution files are then evicted: each one's path is
appended to ``.morgan-like/evicted.log`` (fsynced) before it is unlinked, and the log is
folded into the state (rows marked EVICTED) by the end push or, after a kill, before
the next run reads the state (fold_evictions).

Root pages, top-level files, ``manifest.json`` and every deletion stay with the end push
(tree.bucketpush), which skips what streamed with the bytes the working tree still has
(``StreamingPush.sent``).  Nothing is ever deleted here, so a run killed at any point
leaves a bucket whose pages list only objects it holds (an old page lists old files,
which stay until the end push of a run that rewrote every page listing them).

The precondition is that the bucket already holds every path the working tree
published (modes.bucket catches up with a push first when a run or a push was cut
short): what the bucket lacks is then exactly what the state's ``unsent`` rows name.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from morgan_like.tree import crashpoints
from morgan_like.tree.bucketpush import (
    FILES,
    METADATA,
    PROJECT_PAGES,
    Sent,
    cache_control,
    content_type,
    is_distribution,
    rank,
)
from morgan_like.tree.layout import (
    JSON_DIR,
    METADATA_SUFFIX,
    PACKAGES_DIR,
    PROVENANCE_SUFFIX,
    SIMPLE_DIR,
    STATE_DIR,
)
from morgan_like.tree.state import TreeState
from morgan_like.tree.statereader import StateReader
from morgan_like.tree.storage import Storage

EVICTION_LOG = f"{STATE_DIR}/evicted.log"
# Left by a streaming run until it ends: a run killed while streaming may have cut a
# multipart upload short, which only a sweep (under the tree lock) removes.
STREAMING_MARK = f"{STATE_DIR}/streaming"
# Projects uploaded side by side (each small PUT waits on a round trip, so many overlap);
# each project's objects go one rank after the other.
WORKERS = 16
POLL = 0.2  # seconds between two reads of the finished log when it had nothing new
_HREF = re.compile(r'href="([^"]*)"')


@dataclass(frozen=True)
class StreamResult:
    """What streamed during the run: projects, objects, bytes, local files evicted; and
    why streaming stopped early (the end push then sends the rest)."""

    projects: int = 0
    objects: int = 0
    bytes: int = 0
    evicted: int = 0
    problem: str | None = None


class StreamingPush:
    """While a sync runs on ``root``, push each finished project to ``storage`` (see
    the module docstring); a context manager around the run.  ``evict``: drop each
    uploaded distribution file from the working tree."""

    def __init__(
        self,
        root: Path,
        storage: Storage,
        *,
        evict: bool = True,
        workers: int = WORKERS,
        cursor: int | None = None,
        on_handled: Callable[[], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.storage = storage
        self.evict = evict
        self.workers = workers
        self.sent: dict[str, Sent] = {}
        self._evicted: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._room = threading.Semaphore(2 * workers)  # projects read but not done, at most
        self._reader: StateReader | None = None
        self._cursor = cursor or 0
        self._known = cursor is not None
        self._on_handled = on_handled  # each finished project taken (sent or left), once
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._projects = self._objects = self._bytes = self._evictions = 0
        self._problem: str | None = None

    # --- lifetime --------------------------------------------------------------------

    def __enter__(self) -> StreamingPush:
        # Only what the run finishes from now on: the log's older rows are a previous
        # run's (the end push, or the catch-up before this run, sent them).
        reader = None if self._known else self._open()
        if reader is not None:
            with contextlib.suppress(sqlite3.Error):
                self._cursor = reader.last_finished()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stream")
        self._thread = threading.Thread(target=self._follow, name="stream", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop following; projects being uploaded finish their current object first
        (what is left of them goes with the end push)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def result(self) -> StreamResult:
        with self._lock:
            return StreamResult(
                self._projects, self._objects, self._bytes, self._evictions, self._problem
            )

    # --- following the run ------------------------------------------------------------

    def _open(self) -> StateReader | None:
        """The state read-only; None until the run has created it."""
        if self._reader is None:
            try:
                self._reader = StateReader(self.root)
            except sqlite3.Error:
                return None
        return self._reader

    def _follow(self) -> None:
        try:
            self._follow_log()
        except Exception as exc:  # never a traceback from a thread: the end push does it all
            with self._lock:
                self._problem = self._problem or str(exc) or exc.__class__.__name__

    def _follow_log(self) -> None:
        while not self._stop.is_set():
            reader = self._open()
            rows: list[tuple[int, str]] = []
            if reader is not None:
                try:
                    rows = reader.finished_since(self._cursor, 4 * self.workers)
                except sqlite3.Error:  # the run has not made the table yet
                    rows = []
            if not rows:
                self._stop.wait(POLL)
                continue
            for seq, name in rows:
                while not self._room.acquire(timeout=POLL):
                    if self._stop.is_set():
                        return
                if self._stop.is_set() or self._pool is None:
                    self._room.release()
                    return
                self._cursor = seq
                future = self._pool.submit(self._project, reader, name)
                future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self._room.release()
        if self._on_handled is not None:
            self._on_handled()
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            with self._lock:
                if self._problem is None:
                    self._problem = str(exc) or exc.__class__.__name__
            self._stop.set()  # the store fails: the end push tries again, and says why

    # --- one project -------------------------------------------------------------------

    def _project(self, reader: StateReader | None, name: str) -> None:
        if reader is None or self._stop.is_set():
            return
        news = set(
            reader.unsent_changed(
                [f"{PACKAGES_DIR}/{name}/", f"{SIMPLE_DIR}/{name}/", f"{JSON_DIR}/{name}"]
            )
        )
        pages: dict[str, bytes] = {}
        for relpath in sorted(p for p in news if rank(p) == PROJECT_PAGES):
            try:
                pages[relpath] = (self.root / relpath).read_bytes()
            except OSError:
                continue  # gone since (the project left): nothing to vouch for
        if not pages:
            return
        files: list[str] = []
        metadata: list[str] = []
        for key in sorted(listed_keys(pages)):
            if (self.root / key).is_file():
                if is_distribution(key) or key in news:
                    files.append(key)
            elif not self._in_bucket(reader, key):
                return  # its pages would list an object the bucket may lack: end push
            for extra, into in ((METADATA_SUFFIX, metadata), (PROVENANCE_SUFFIX, files)):
                if key + extra in news and (self.root / (key + extra)).is_file():
                    into.append(key + extra)
        for key in files:
            if self._stop.is_set():
                return
            self._put_file(key)
        if self.evict:
            self._evict([k for k in files if is_distribution(k)])
        for key in metadata:
            if self._stop.is_set():
                return
            self._put_file(key)
        for relpath, data in pages.items():
            if self._stop.is_set():
                return
            self._put_bytes(relpath, data)
        with self._lock:
            self._projects += 1

    def _in_bucket(self, reader: StateReader, key: str) -> bool:
        """A listed file the working tree lacks: evicted (by this run, or recorded)."""
        with self._lock:
            if key in self._evicted:
                return True
        return rank(key) == FILES and reader.is_verified(key)

    def _put_file(self, key: str) -> None:
        path = self.root / key
        size = path.stat().st_size
        crashpoints.step()
        self.storage.put_file(
            key, path, content_type=content_type(key), cache_control=cache_control(key)
        )
        md5 = None if rank(key) in (FILES, METADATA) else _md5(path.read_bytes())
        self._note(key, Sent(size, md5))

    def _put_bytes(self, key: str, data: bytes) -> None:
        crashpoints.step()
        self.storage.put_bytes(
            key, data, content_type=content_type(key), cache_control=cache_control(key)
        )
        self._note(key, Sent(len(data), _md5(data)))

    def _note(self, key: str, sent: Sent) -> None:
        with self._lock:
            self.sent[key] = sent
            self._objects += 1
            self._bytes += sent.size

    def _evict(self, keys: list[str]) -> None:
        """Each file's path made durable in the eviction log, then the file unlinked."""
        if not keys:
            return
        append_evictions(self.root, keys)
        count = 0
        for key in keys:
            crashpoints.step()
            with contextlib.suppress(FileNotFoundError):
                (self.root / key).unlink()
                count += 1
        with self._lock:
            self._evicted.update(keys)
            self._evictions += count


# --- room for the run: a sync waits while the stream is too far behind ------------------

# The stream serving each working tree of this process (modes.bucket_stream registers the
# one it starts): given how many fetched projects wait for the writer, whether the sync's
# fetchers should wait (modes.sync_run asks before handing over each project).
_THROTTLES: dict[Path, Callable[[int], bool]] = {}
_throttles_lock = threading.Lock()


def register_throttle(root: Path, behind: Callable[[int], bool] | None) -> None:
    """Set (or, None, drop) the throttle of the stream serving ``root``."""
    key = Path(root).resolve()
    with _throttles_lock:
        if behind is None:
            _THROTTLES.pop(key, None)
        else:
            _THROTTLES[key] = behind


def stream_throttle(root: Path) -> Callable[[int], bool] | None:
    """The throttle of the stream serving ``root`` in this process; None: no stream."""
    with _throttles_lock:
        return _THROTTLES.get(Path(root).resolve())


def listed_keys(pages: dict[str, bytes]) -> set[str]:
    """The ``packages/`` keys these pages link (JSON ``url`` fields, HTML ``href``s),
    each resolved against its page's place in the tree."""
    keys: set[str] = set()
    for relpath, data in pages.items():
        base = "http://tree/" + relpath
        for url in _urls(relpath, data):
            full = urljoin(base, url)
            if full.startswith("http://tree/"):
                key = unquote(urlsplit(full).path).lstrip("/")
                if key.startswith(PACKAGES_DIR + "/"):
                    keys.add(key)
    return keys


def _urls(relpath: str, data: bytes) -> Iterable[str]:
    if relpath.endswith(".html"):
        return [html.unescape(m) for m in _HREF.findall(data.decode("utf-8", "replace"))]
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    urls: list[str] = []
    if isinstance(doc, dict):
        entries = list(doc.get("files") or []) + list(doc.get("urls") or [])
        for release in (doc.get("releases") or {}).values():
            entries += list(release or [])
        urls = [str(e["url"]) for e in entries if isinstance(e, dict) and "url" in e]
    return urls


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# --- the eviction log --------------------------------------------------------------------


def append_evictions(root: Path, keys: list[str]) -> None:
    """Note, durably, that these files are about to leave the working tree (uploaded)."""
    path = Path(root) / EVICTION_LOG
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(f"{k}\n" for k in keys).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def fold_evictions(root: Path, state: TreeState, commit: Callable[[], None]) -> int:
    """Mark EVICTED in ``state`` each logged file the working tree no longer holds, commit
    (``commit``), then drop the log; returns how many were marked.  A line cut short by
    a kill (no newline) is ignored: its file was not unlinked yet."""
    path = Path(root) / EVICTION_LOG
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return 0
    lines = text.split("\n")[:-1]
    gone = sorted({k for k in lines if k and not (Path(root) / k).exists()})
    if gone:
        state.mark_evicted(gone)
    commit()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return len(gone)


__all__ = [
    "EVICTION_LOG",
    "STREAMING_MARK",
    "StreamResult",
    "StreamingPush",
    "fold_evictions",
    "listed_keys",
    "register_throttle",
    "stream_throttle",
]
