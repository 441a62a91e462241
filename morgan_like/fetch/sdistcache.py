"""The run's sdist cache: files fetched before the download step, once.

Resolution reads sdists (metadata, build requirements) and build environments
install wheels before the plan exists, and a run fetches likely files ahead
(modes/files_ahead.py).  They wait here, under the hidden state dir, and the
download step takes the ones the plan keeps (``take``), so no byte crosses the
network twice.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from morgan_like.dists.links import RemoteFile
from morgan_like.errors import DownloadError
from morgan_like.fetch.download import fetch_verified, scratch_folder
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop, Stopped
from morgan_like.tree.layout import STATE_DIR

if TYPE_CHECKING:
    from morgan_like.dists.sdistread import SdistReader


class SdistCache:
    """Sdists (and build environments' wheels) fetched before the download step, once.

    They wait under the hidden state dir, and the download step places the ones
    the plan keeps from there, so no byte is fetched twice.  A cached name stays
    until the run's end (the scratch sweep): the paths ``get`` gave out are read
    on other threads and in worker processes at any time.
    """

    def __init__(
        self,
        upstream: Upstream,
        root: Path,
        sdists: SdistReader | None = None,
        *,
        stop: Stop | None = None,
    ) -> None:
        """``stop``: the run's flag; once set, downloads and waits give up (Stopped)."""
        self.upstream = upstream
        self.stop = stop
        # What each sdist says (metadata, build requirements), read once per run.
        if sdists is None:
            from morgan_like.dists.sdistread import SdistReader

            sdists = SdistReader()
        self.sdists = sdists
        self.dir = root / STATE_DIR / "cache"
        self.tmp = scratch_folder(root)
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Path]] = {}

    def path_for(self, file: RemoteFile) -> Path:
        return self.dir / file.filename

    def get(self, file: RemoteFile, existing: Path | None = None) -> Path:
        if existing is not None and existing.exists():
            return existing
        with self._lock:
            known = self._futures.get(file.url)
            future: Future[Path] = known if known is not None else Future()
            owner = known is None
            if owner:
                self._futures[file.url] = future
        if owner:
            self.sdists.processes.warm()  # worker processes start while this downloads
            try:
                dest = self.path_for(file)
                self.dir.mkdir(parents=True, exist_ok=True)
                stopped = self.stop.is_set if self.stop is not None else None
                fetch_verified(self.upstream, file, dest, self.tmp, stopped=stopped)
                future.set_result(dest)
            except BaseException as exc:
                future.set_exception(exc)
        return self.stop.result(future) if self.stop is not None else future.result()

    def cached(self, file: RemoteFile) -> bool:
        return self.path_for(file).exists()

    def take(self, file: RemoteFile) -> Path | None:
        """A new name of the cached ``file`` in tmp/, for the download step to move into
        the tree; None when it is not cached.

        The cached name is never moved away: a build environment unpacks its wheels in a
        worker process after waiting its turn, and a wheel renamed into the tree meanwhile
        would be missing there (its hook skipped, so one run's tree would differ from the
        next's).  A hard link copies nothing and keeps the file's identity (SdistReader's
        key); without hard links, the bytes are copied.

        A fetch of ``file`` still arriving (the run fetched it ahead) is waited for, not
        started again beside it: the file crosses the network once.  If that fetch gave
        up (DownloadError: every retry spent, the deadline passed), its error is the
        file's: asking again would double the wait on a failing upstream.
        """
        with self._lock:
            pending = self._futures.get(file.url)
        if pending is not None:
            try:
                self.stop.result(pending) if self.stop is not None else pending.result()
            except (DownloadError, Stopped):
                raise
            except Exception:
                return None  # failed for its own reasons (its folder, its size cap): ask again
        path = self.path_for(file)
        handoff = self.tmp / f"{uuid.uuid4().hex}.take"
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)  # the scratch folder may have been swept
            os.link(path, handoff)
        except FileNotFoundError:
            return None
        except OSError:
            try:
                shutil.copyfile(path, handoff)
            except OSError:
                handoff.unlink(missing_ok=True)
                return None  # fetched again by the caller
        return handoff
