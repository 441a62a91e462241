"""Project pages fetched and parsed in worker processes, for syncs of many projects.

Fetching a page and parsing it costs a few milliseconds of CPU each (HTTP client,
JSON, filename checks), and under the GIL threads cannot spread that over more
than one core.  A full mirror's first sync reads hundreds of thousands of pages,
so past a threshold the pages are fetched by a pool of processes (each with its
own Upstream and a few threads to hide latency) while the calling process writes
the tree.  Each result is one small tuple: what happened and the parsed page.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from morgan_like.dists.links import ProjectPage
from morgan_like.errors import ProjectNotFound, UpstreamError
from morgan_like.index.upstream import Upstream

CHUNK = 64  # projects per task: big enough to amortise pickling, small enough to stream


@dataclass(frozen=True)
class PageJob:
    """How to fetch pages: picklable, so worker processes build their own client."""

    index_url: str
    options: Mapping[str, str]
    stale_retries: int = 3
    stale_delay: float = 2.0
    threads: int = 8


# One outcome per project: ("page", name, (page, listed)), ("gone", name, None),
# ("error", name, message) or ("stale", name, the stale page's serial).
Outcome = tuple[str, str, Any]


def fetch_one(upstream: Upstream, job: PageJob, name: str, listed: int) -> Outcome:
    """A page, fetched again after a pause while older than the list promised (stale)."""
    delay = job.stale_delay
    page: ProjectPage | None = None
    for attempt in range(job.stale_retries + 1):
        try:
            page = upstream.project_page(name)
        except ProjectNotFound:
            return ("gone", name, None)
        except (UpstreamError, OSError) as exc:
            return ("error", name, str(exc))
        if page.last_serial is None or page.last_serial >= listed:
            return ("page", name, (page, listed))
        if attempt < job.stale_retries:
            time.sleep(delay)
            delay *= 2
    return ("stale", name, page.last_serial if page else None)


_worker: tuple[Upstream, PageJob, ThreadPoolExecutor] | None = None


def _init(job: PageJob) -> None:
    global _worker
    upstream = Upstream(job.index_url, options=job.options, pool_size=job.threads)
    _worker = (upstream, job, ThreadPoolExecutor(job.threads))


def _chunk(items: list[tuple[str, int]]) -> list[Outcome]:
    assert _worker is not None
    upstream, job, threads = _worker
    return list(threads.map(lambda item: fetch_one(upstream, job, *item), items))


def fetch_in_processes(
    job: PageJob,
    items: Iterable[tuple[str, int]],
    processes: int,
    deliver: Callable[[Outcome], None],
) -> None:
    """Fetch every (name, listed serial) in ``processes`` workers; ``deliver`` each outcome
    (from this thread) as chunks complete."""
    work = list(items)
    chunks = [work[i : i + CHUNK] for i in range(0, len(work), CHUNK)]
    # spawn: the caller has threads (downloads); forking them is unsafe.
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_init, initargs=(job,)) as pool:
        for outcomes in pool.imap_unordered(_chunk, chunks):
            for outcome in outcomes:
                deliver(outcome)


def fetch_in_threads(
    upstream: Upstream,
    job: PageJob,
    items: Iterable[tuple[str, int]],
    threads: int,
    deliver: Callable[[Outcome], None],
) -> None:
    """The same in this process (for small syncs, where starting processes costs more);
    ``deliver`` is called from the pool's threads as each page completes."""
    with ThreadPoolExecutor(threads, thread_name_prefix="sync-page") as pool:
        for name, listed in items:
            pool.submit(_fetch_and_deliver, upstream, job, name, listed, deliver)


def _fetch_and_deliver(
    upstream: Upstream, job: PageJob, name: str, listed: int, deliver: Callable[[Outcome], None]
) -> None:
    deliver(fetch_one(upstream, job, name, listed))
