"""Parallel, verified downloads: nothing partial or unverified ever lands in the tree.

Each file streams to a temp name under the tree's hidden state directory while
its sha256 is computed, and is renamed into place only when size and hash
match what the index promised (and its bytes are on disk: fsync before the
rename).  A file the tree state holds as verified, with the same hash, is
skipped without re-hashing.  Every attempt at one file shares one deadline
(index/limits.py: a floor plus the size at a minimum rate), so a drip-fed file
is given up once, not once per retry.  A file's PEP 740 provenance follows it in
(fetch/provenance.py) when upstream offers one the tree lacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from morgan_like.dists.links import RemoteFile
from morgan_like.errors import DownloadError, LimitExceeded, UpstreamError
from morgan_like.fetch.provenance import fetch_provenance, provenance_path
from morgan_like.index.httputil import redact_url
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop, Stopped
from morgan_like.tree.files import sha256_file, write_all
from morgan_like.tree.layout import PROVENANCE_SUFFIX, STATE_DIR

if TYPE_CHECKING:  # a sync's fetching processes import fetch_verified alone: not these
    from morgan_like.fetch.sdistcache import SdistCache
    from morgan_like.tree.state import TreeState

CHUNK = 256 * 1024
_PARTS = itertools.count()
# Downloads wait on the network, not the CPU; uv defaults to 50 concurrent downloads.
DEFAULT_WORKERS = 32
# Folders under the state dir that hold only this run's scratch files.
SCRATCH_DIRS = ("tmp", "cache")


@dataclass
class DownloadResult:
    file: RemoteFile
    relpath: str
    ok: bool
    skipped: bool = False
    size: int = 0
    error: str | None = None


def scratch_folder(root: Path) -> Path:
    """The tree's folder for downloads in flight, made if missing."""
    path = root / STATE_DIR / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_verified(
    upstream: Upstream,
    file: RemoteFile,
    dest: Path,
    tmp_dir: Path,
    *,
    on_bytes: Callable[[int], None] | None = None,
    attempts: int = 3,
    stopped: Callable[[], bool] | None = None,
    place: Callable[[Path, Path, int, str], None] | None = None,
) -> tuple[int, str]:
    """Stream ``file`` to ``dest`` via a temp name, verifying sha256; return (size, sha256).

    A size cap, a Content-Length that disagrees with the index, or the deadline
    ends the attempts at once: another try would cost the same and end the same.
    ``stopped`` is asked between chunks: once true, the download is given up
    (Stopped) and its temp file removed.  ``place(tmp, dest, size, sha256)`` moves
    the verified file into place (default: a rename, its folder made if missing).  The
    temp folder is made again if it was swept.
    """
    last_error = ""
    deadline = upstream.limits.deadline(file.size)
    # Plain strings and a bare descriptor: a sync downloads thousands of small files in a
    # row, and a file object's open adds an fstat, an ioctl and an lseek to each (every
    # syscall a turn at the interpreter lock), pathlib's joins their own CPU.
    folder = os.fspath(tmp_dir)
    for _attempt in range(attempts):
        # pid + counter: unique among the run's processes, and no syscall (uuid4 reads urandom).
        tmp = os.path.join(folder, f"{os.getpid()}_{next(_PARTS):08d}.part")
        received = 0
        placed = False
        try:
            digest = hashlib.sha256()
            body = upstream.iter_file(file.url, CHUNK, size=file.size, deadline=deadline)
            with contextlib.closing(body):
                fd = _create(tmp)
                try:
                    for chunk in body:
                        if stopped is not None and stopped():
                            raise Stopped()
                        write_all(fd, chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            expected_size = file.size
            if expected_size is not None and received != expected_size:
                last_error = f"truncated: got {received} of {expected_size} bytes"
                continue
            actual = digest.hexdigest()
            if file.sha256 and actual != file.sha256.lower():
                last_error = f"sha256 mismatch: index says {file.sha256}, got {actual}"
                continue
            if place is None:
                _rename(tmp, os.fspath(dest))
            else:
                place(Path(tmp), dest, received, actual)
            placed = True
            return received, actual
        except LimitExceeded as exc:
            last_error = str(exc)
            break
        except (UpstreamError, OSError) as exc:
            last_error = str(exc) or exc.__class__.__name__
        finally:
            if on_bytes and received and not placed:
                on_bytes(-received)
            if not placed or place is not None:  # a caller's place may copy, not move
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    raise DownloadError(f"{file.filename}: {last_error} ({redact_url(file.url)})")


_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
# open(..., "wb")'s mode: the umask decides, as for any file the user's tools write.
_MODE = 0o666


def _create(tmp: str) -> int:
    try:
        return os.open(tmp, _FLAGS, _MODE)
    except FileNotFoundError:  # the scratch folder was swept since: make it again
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        return os.open(tmp, _FLAGS, _MODE)


def _rename(tmp: str, dest: str) -> None:
    try:
        os.replace(tmp, dest)
    except FileNotFoundError:
        if not os.path.exists(tmp):
            raise
        os.makedirs(os.path.dirname(dest), exist_ok=True)  # the project's first file
        os.replace(tmp, dest)


class Downloader:
    """A download pool that takes work while the run goes on.

    The mirror submits each env's files as soon as that env has resolved, so the
    network works while the other envs still resolve.  Each tree path is fetched
    once, however many envs want it.

    Files land under one lock, each with its state row, and ``abandon`` takes the
    same lock to stop: a failed or interrupted run takes back every file and folder
    it added, and no download still in flight can place one after that.
    """

    def __init__(
        self,
        upstream: Upstream,
        root: Path,
        state: TreeState,
        *,
        cache: SdistCache | None = None,
        workers: int = DEFAULT_WORKERS,
        on_done: Callable[[DownloadResult], None] | None = None,
        stop: Stop | None = None,
    ) -> None:
        """``workers``: download threads (``--workers``); ``stop``: the run's flag (Ctrl+C);
        once set, downloads end at their next chunk."""
        self.upstream = upstream
        self.stop = stop
        self.root = root
        self.state = state
        self.cache = cache
        self.on_done = on_done
        self.on_bytes: Callable[[int], None] | None = None
        self.bytes_done = 0
        self._tmp_dir = scratch_folder(root)
        self._lock = threading.Lock()
        self._futures: dict[str, Future] = {}
        self._new: list[str] = []  # files this run added, to take back when it fails
        self._made: list[Path] = []  # folders it made for them
        self._abandoned = False
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="download")

    def _advance(self, amount: int) -> None:
        with self._lock:
            self.bytes_done += amount
            callback = self.on_bytes
        if callback is not None:
            callback(amount)

    def _stopped(self) -> bool:
        return self._abandoned or (self.stop is not None and self.stop.is_set())

    def _place(self, tmp: Path, dest: Path, record: Callable[[], object]) -> None:
        """Rename a verified file into the tree and ``record`` it, unless the run is
        stopping; what it adds (the file, new folders) is noted for ``abandon``."""
        with self._lock:
            if self._stopped():
                raise Stopped()
            new = not dest.exists()
            missing = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
            self._made += missing
            if new:
                self._new.append(dest.relative_to(self.root).as_posix())
            record()

    def _one(self, file: RemoteFile, relpath: str) -> DownloadResult:
        dest = self.root / relpath
        if dest.exists() and self.state.is_verified(relpath, file.sha256):
            result = DownloadResult(file, relpath, ok=True, skipped=True, size=dest.stat().st_size)
            self._advance(result.size)
        else:
            result = self._fetch(file, relpath, dest)
        if result.ok and file.provenance:
            self._provenance(file, relpath, dest)
        if self.on_done is not None:
            self.on_done(result)
        return result

    def _provenance(self, file: RemoteFile, relpath: str, dest: Path) -> None:
        """The file's PEP 740 provenance beside it, unless it is there already; checked
        against the file's verified sha256 (fetch/provenance.py)."""
        target = provenance_path(dest)
        record = self.state.get(relpath)
        sha256 = record.sha256 if record is not None else file.sha256
        if target.exists() or not sha256:
            return
        prov_rel = relpath + PROVENANCE_SUFFIX

        def place(tmp: Path, dest: Path, size: int, digest: str) -> None:
            self._place(tmp, dest, lambda: self.state.record(prov_rel, size, digest))

        fetch_provenance(self.upstream, file, sha256, target, self._tmp_dir, place)

    def _fetch(self, file: RemoteFile, relpath: str, dest: Path) -> DownloadResult:
        try:
            cached = self.cache.take(file) if self.cache else None
        except DownloadError as exc:  # fetched ahead, and that fetch gave up
            return DownloadResult(file, relpath, ok=False, error=str(exc))
        if cached is not None:
            try:
                size, sha256 = sha256_file(cached)
                self._place(cached, dest, lambda: self.state.record(relpath, size, sha256))
            finally:
                cached.unlink(missing_ok=True)  # when not placed (stopped): the handed-off name
            self._advance(size)
            return DownloadResult(file, relpath, ok=True, size=size)

        def place(tmp: Path, dest: Path, size: int, sha256: str) -> None:
            self._place(tmp, dest, lambda: self.state.record(relpath, size, sha256))

        try:
            size, _sha256 = fetch_verified(
                self.upstream,
                file,
                dest,
                self._tmp_dir,
                on_bytes=self._advance,
                stopped=self._stopped,
                place=place,
            )
        except DownloadError as exc:
            return DownloadResult(file, relpath, ok=False, error=str(exc))
        return DownloadResult(file, relpath, ok=True, size=size)

    def attach(self, on_bytes: Callable[[int], None]) -> None:
        """Report progress to ``on_bytes`` from now on, starting with the bytes already done."""
        with self._lock:
            self.on_bytes = on_bytes
            done = self.bytes_done
        on_bytes(done)

    def submit(self, file: RemoteFile, relpath: str) -> Future:
        with self._lock:
            future = self._futures.get(relpath)
            if future is None:
                future = self._futures[relpath] = self._pool.submit(self._one, file, relpath)
            return future

    def submit_all(self, entries: Iterable[tuple[RemoteFile, str]]) -> None:
        """``submit`` each (file, relpath); those the tree already has, verified, are
        done here at once (one state query for all, TreeState.verified_all) instead of
        each taking a turn in the pool to ask the state alone.  A file with provenance
        still goes through the pool, which fetches its provenance when missing."""
        with self._lock:
            fresh = {relpath: file for file, relpath in entries if relpath not in self._futures}
        present = self.state.verified_all(
            [(relpath, file.sha256) for relpath, file in fresh.items() if not file.provenance]
        )
        for relpath, file in fresh.items():
            record = present.get(relpath)
            if record is None:
                self.submit(file, relpath)
                continue
            future: Future = Future()
            with self._lock:
                if relpath in self._futures:
                    continue  # submitted meanwhile
                self._futures[relpath] = future
            result = DownloadResult(file, relpath, ok=True, skipped=True, size=record.size)
            self._advance(result.size)
            if self.on_done is not None:
                self.on_done(result)
            future.set_result(result)

    def now(self, file: RemoteFile, relpath: str) -> DownloadResult:
        """``relpath`` fetched first, in the caller's thread, if it is still queued (or
        not yet asked for): someone waits on it (build requirements are read from it),
        so it does not wait behind the bulk of the wheels.  Already running or done:
        wait for that one, never a second fetch."""
        with self._lock:
            queued = self._futures.get(relpath)
            if queued is not None and not queued.cancel():
                mine = None
            else:
                mine = self._futures[relpath] = Future()
                mine.set_running_or_notify_cancel()  # running: no later caller cancels it
        if mine is None:
            assert queued is not None
            return self._wait(queued)
        try:
            result = self._one(file, relpath)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        mine.set_result(result)
        return result

    def _wait(self, future: Future) -> DownloadResult:
        return self.stop.result(future) if self.stop is not None else future.result()

    def result(self, relpath: str) -> DownloadResult | None:
        """Wait for one submitted path (None if it was never submitted)."""
        with self._lock:
            future = self._futures.get(relpath)
        return self._wait(future) if future is not None else None

    def results(self) -> list[DownloadResult]:
        """Wait for everything submitted so far."""
        with self._lock:
            futures = list(self._futures.values())
        return [self._wait(f) for f in futures]

    def abandon(self) -> None:
        """Stop, and take back the files and folders this run added: a failed or
        interrupted run leaves the tree as it found it.

        Nothing waits for the downloads still in flight: each ends at its next chunk
        (or when its socket read returns), and none can place a file any more.
        """
        with self._lock:
            self._abandoned = True
            new, made = list(self._new), list(self._made)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for relpath in new:
            with contextlib.suppress(OSError):
                (self.root / relpath).unlink()
            self.state.discard(relpath)
        for folder in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty: something else is in it
                folder.rmdir()

    def close(self) -> None:
        self._pool.shutdown(wait=not self._abandoned)
