"""A sync's per-project fetch: the project page, then the files of it the tree lacks.

Each project costs a few milliseconds of CPU (HTTP client, JSON, filename checks,
hashing), and under the GIL threads cannot spread that over more than one core.
So past a threshold a pool of processes does it (each with its own Upstream, a
read-only view of the tree state, and a few threads to hide latency), while the
calling process records the files and writes the pages.  Files land exactly as the
Downloader's do (``fetch_verified``: verified, fsynced, renamed into place); a
file the tree state holds as verified, or one already on disk with the page's
size and sha256, is not fetched again.  A file's PEP 740 provenance comes with it
when upstream offers one the tree lacks (fetch/provenance.py), recorded as a file.

A page older than the serial list promised (a CDN cache) is fetched again after
a pause, and reported stale if it stays so.  Each project's outcome is one small
record (PageFetched, ProjectGone, ProjectFailed, ProjectStale), and a pool that
breaks says so once (PoolBroken); all of them pickle, as they come back from the
worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.errors import DownloadError, ProjectNotFound, UpstreamError
from morgan_like.fetch.download import fetch_verified
from morgan_like.fetch.provenance import fetch_provenance, provenance_path
from morgan_like.index.upstream import Upstream
from morgan_like.tree.files import scratch_dir, sha256_file
from morgan_like.tree.layout import PROVENANCE_SUFFIX, package_relpath
from morgan_like.tree.statereader import StateReader

CHUNK = 32  # projects per task: big enough to amortise pickling, small enough to stream
IN_FLIGHT = 8  # chunks per worker process fetched ahead of the writer


@dataclass(frozen=True)
class Fetched:
    """A file of the project now in the tree (to record), or why it is not."""

    relpath: str
    size: int = 0
    sha256: str = ""
    fetched: bool = True  # False: it was on disk already, unrecorded (a killed run's)
    error: str | None = None


@dataclass(frozen=True)
class ProjectJob:
    """How to fetch projects: picklable, so worker processes build their own client.

    ``keep``: which of a page's files the tree wants (a sync's FileRules.keep);
    ``root``: the tree to put them in, or None for an index-only sync (pages only).
    """

    index_url: str
    options: Mapping[str, str]
    keep: Callable[[str, list[RemoteFile]], list[RemoteFile]]
    root: Path | None = None
    stale_retries: int = 3
    stale_delay: float = 2.0
    threads: int = 8


@dataclass(frozen=True)
class PageFetched:
    """The project's page as read (its serial at least the listed one), the files of it
    the tree keeps, and what became of each of those the tree lacked."""

    name: str
    page: ProjectPage
    listed: int
    kept: tuple[RemoteFile, ...] = ()
    fetched: tuple[Fetched, ...] = ()


@dataclass(frozen=True)
class ProjectGone:
    """Listed, but its page answers 404: deleted before we got to it."""

    name: str


@dataclass(frozen=True)
class ProjectFailed:
    """Its page could not be read (the message says why)."""

    name: str
    message: str


@dataclass(frozen=True)
class ProjectStale:
    """Its page stayed older than the serial list promised (a CDN cache), at ``serial``."""

    name: str
    serial: int | None


@dataclass(frozen=True)
class PoolBroken:
    """The pool itself broke: every project not yet delivered fails with it."""

    message: str


Outcome = Union[PageFetched, ProjectGone, ProjectFailed, ProjectStale]


def _page(upstream: Upstream, job: ProjectJob, name: str, listed: int) -> Outcome:
    delay = job.stale_delay
    page: ProjectPage | None = None
    for attempt in range(job.stale_retries + 1):
        try:
            page = upstream.project_page(name)
        except ProjectNotFound:
            return ProjectGone(name)
        except (UpstreamError, OSError) as exc:
            return ProjectFailed(name, str(exc))
        if page.last_serial is None or page.last_serial >= listed:
            return PageFetched(name, page, listed)
        if attempt < job.stale_retries:
            time.sleep(delay)
            delay *= 2
    return ProjectStale(name, page.last_serial if page else None)


def _file(upstream: Upstream, root: Path, state: StateReader, name: str, rf: RemoteFile) -> Fetched:
    relpath = package_relpath(name, rf.filename)
    if state.is_verified(relpath, rf.sha256):
        return Fetched(relpath, fetched=False)  # verified already: nothing to record
    dest = root / relpath
    if rf.sha256 and dest.is_file() and (rf.size is None or dest.stat().st_size == rf.size):
        size, sha256 = sha256_file(dest)
        if sha256 == rf.sha256.lower():
            return Fetched(relpath, size, sha256, fetched=False)
    try:
        size, sha256 = fetch_verified(upstream, rf, dest, scratch_dir(root))
    except DownloadError as exc:
        return Fetched(relpath, error=str(exc))
    return Fetched(relpath, size, sha256)


def _provenance(upstream: Upstream, root: Path, rf: RemoteFile, file: Fetched) -> Fetched | None:
    """The file's PEP 740 provenance, fetched when upstream offers one and the tree lacks
    it (to record as a file of the project); None otherwise, or when it is refused."""
    sha256 = file.sha256 or rf.sha256
    dest = provenance_path(root / file.relpath)
    if not rf.provenance or file.error is not None or not sha256 or dest.exists():
        return None
    placed = fetch_provenance(upstream, rf, sha256, dest, scratch_dir(root), _moved)
    if placed is None:
        return None
    return Fetched(file.relpath + PROVENANCE_SUFFIX, *placed)


def _moved(tmp: Path, dest: Path, _size: int, _sha256: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def fetch_project(
    upstream: Upstream, job: ProjectJob, state: StateReader | None, name: str, listed: int
) -> Outcome:
    """The page (stale ones fetched again later), then the kept files the tree lacks."""
    outcome = _page(upstream, job, name, listed)
    if not isinstance(outcome, PageFetched):
        return outcome
    kept = job.keep(name, outcome.page.files)
    fetched: list[Fetched] = []
    if job.root is not None and state is not None:
        for rf in kept:
            fetched.append(_file(upstream, job.root, state, name, rf))
            found = _provenance(upstream, job.root, rf, fetched[-1])
            if found is not None:
                fetched.append(found)
    return PageFetched(name, outcome.page, listed, tuple(kept), tuple(fetched))


_worker: tuple[Upstream, ProjectJob, StateReader | None, ThreadPoolExecutor] | None = None


def _init(job: ProjectJob) -> None:
    global _worker
    upstream = Upstream(job.index_url, options=job.options, pool_size=job.threads)
    state = StateReader(job.root) if job.root is not None else None
    _worker = (upstream, job, state, ThreadPoolExecutor(job.threads))


def _chunk(items: list[tuple[str, int]]) -> list[Outcome]:
    assert _worker is not None
    upstream, job, state, threads = _worker
    return list(threads.map(lambda item: fetch_project(upstream, job, state, *item), items))


def fetch_in_processes(
    job: ProjectJob,
    items: Iterable[tuple[str, int]],
    processes: int,
    deliver: Callable[[Outcome], None],
) -> None:
    """Fetch every (name, listed serial) in ``processes`` workers; ``deliver`` each outcome
    (from this thread) as chunks complete."""
    work = list(items)
    chunks = [work[i : i + CHUNK] for i in range(0, len(work), CHUNK)]
    # At most this many chunks fetched and not yet delivered: when the writer is slower
    # than the workers, they wait, instead of parsed pages piling up in memory.
    room = threading.Semaphore(processes * IN_FLIGHT)
    failure: list[BaseException] = []

    def done(outcomes: list[Outcome]) -> None:
        try:
            for outcome in outcomes:
                deliver(outcome)
        finally:
            room.release()

    def failed(exc: BaseException) -> None:
        failure.append(exc)
        room.release()

    # spawn: the caller has threads; forking them is unsafe.
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_init, initargs=(job,)) as pool:
        for chunk in chunks:
            room.acquire()
            if failure:
                raise failure[0]
            pool.apply_async(_chunk, (chunk,), callback=done, error_callback=failed)
        pool.close()
        pool.join()
    if failure:
        raise failure[0]


def fetch_in_threads(
    upstream: Upstream,
    job: ProjectJob,
    items: Iterable[tuple[str, int]],
    threads: int,
    deliver: Callable[[Outcome], None],
) -> None:
    """The same in this process: ``threads`` threads each take the next project from
    ``items``, fetch it and ``deliver`` it (from that thread), then take another.

    Each thread holds one project at a time, and ``deliver`` blocks while the writer is
    behind, so a full mirror's hundreds of thousands of projects are never queued.  No
    pool's work queue nor feeder thread in between: a project costs the interpreter lock
    no hand-off but the delivery.  A thread that fails stops the others taking more;
    the first failure is raised once they are done.
    """
    state = StateReader(job.root) if job.root is not None else None
    todo = iter(items)
    taking = threading.Lock()
    failure: list[BaseException] = []

    def work() -> None:
        while not failure:
            with taking:  # a generator may not be resumed from two threads at once
                item = next(todo, None)
            if item is None:
                return
            try:
                deliver(fetch_project(upstream, job, state, *item))
            except BaseException as exc:
                failure.append(exc)

    pool = [
        threading.Thread(target=work, name=f"sync-project-{i}", daemon=True)
        for i in range(max(1, threads))
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failure:
        raise failure[0]
