"""A shared, read-ahead cache of project pages and distribution metadata.

Resolution is sequential by nature, but the network need not be: every env
resolves in its own thread against this one cache, and each time a candidate's
dependencies become known their pages (and the metadata of their newest
files) are fetched ahead in a thread pool.  That is what keeps a 150-project
graph behind a slow index to a few round trips of wall time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import DistMetadata
from morgan_like.dists.sdistread import SdistReader
from morgan_like.index.remote import wheel_metadata
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop


class FinderRequests(Protocol):
    """What the Finder asks of the run it reads for (modes/resolving.py answers).

    The Finder knows pages and metadata; which files are worth reading ahead, which
    dependencies apply, where an sdist is on disk and what a previous run kept are the
    run's to say.
    """

    def sdist(self, file: RemoteFile) -> Path:
        """Read sdist: the archive on disk (fetched once for the run), for its metadata."""

    def likely_metadata(self, page: ProjectPage) -> Iterable[RemoteFile]:
        """The files of a fresh page whose metadata a resolution will likely want: read ahead."""

    def applies(self, requirement: Requirement) -> bool:
        """Does a dependency of fresh metadata apply to the run (its page is then read ahead)?"""

    def kept_metadata(self, file: RemoteFile) -> DistMetadata | None:
        """What a previous run kept of ``file``'s metadata (the tree's own ``.metadata`` of
        a verified wheel), so a re-run asks upstream only for pages; None: nothing kept."""


class Finder:
    """Pages by project name and metadata by file URL, each fetched at most once."""

    def __init__(
        self,
        upstream: Upstream,
        requests: FinderRequests,
        *,
        workers: int = 32,
        on_problem: Callable[[str], None] | None = None,
        sdists: SdistReader | None = None,
        stop: Stop | None = None,
    ) -> None:
        """``requests``: the run's answers to what the Finder asks (FinderRequests);
        ``on_problem`` hears, once per page, the entries a page had to leave out;
        ``sdists`` reads each sdist once for the whole run (share it with the build step);
        ``stop`` is the run's Ctrl+C flag: once set, no fetch starts and every wait for
        one gives up (Stopped), so the resolutions end instead of fetching on."""
        self.upstream = upstream
        self._stop = stop
        self._requests = requests
        self._on_problem = on_problem
        self.sdists = sdists or SdistReader()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finder")
        self._lock = threading.Lock()
        self._pages: dict[str, Future] = {}
        self._metadata: dict[str, Future] = {}
        self._closed = False
        self._reading = threading.local()  # recording(): the names this thread asked for

    def _future(
        self, cache: dict[str, Future], key: str, fn: Callable[..., Any], *args: Any
    ) -> Future:
        if self._stop is not None:
            self._stop.check()
        with self._lock:
            future = cache.get(key)
            if future is None:
                if self._closed:
                    # A read-ahead that races close(): nobody will read it, so skip the fetch
                    # (and never do network I/O while holding the lock).
                    future = Future()
                    future.cancel()
                    return future
                else:
                    future = self._pool.submit(fn, *args)
                cache[key] = future
            return future

    def _load_page(self, name: str) -> ProjectPage:
        page = self.upstream.project_page(name)
        if self._on_problem is not None:
            for problem in page.problems:
                self._on_problem(problem)
        for file in self._requests.likely_metadata(page):
            self.prefetch_metadata(file)
        return page

    def _result(self, future: Future) -> Any:
        return self._stop.result(future) if self._stop is not None else future.result()

    def page(self, name: str) -> ProjectPage:
        names = getattr(self._reading, "names", None)
        if names is not None:
            names.add(name)
        return self._result(self._future(self._pages, name, self._load_page, name))

    @contextlib.contextmanager
    def recording(self) -> Iterator[set[str]]:
        """The set of project pages this thread reads until the block ends: what one
        resolution depended on (resolvelib runs in its caller's thread; read-ahead in
        the pool is not reading).  A curated sync re-resolves a closure only when one of
        these pages changed."""
        names: set[str] = set()
        outer = getattr(self._reading, "names", None)
        self._reading.names = names
        try:
            yield names
        finally:
            self._reading.names = outer
            if outer is not None:
                outer |= names

    def page_names(self) -> list[str]:
        """Every project whose page has been read successfully so far."""
        with self._lock:
            futures = list(self._pages.items())
        return sorted(
            name
            for name, future in futures
            if future.done() and not future.cancelled() and future.exception() is None
        )

    def prefetch_page(self, name: str) -> None:
        self._future(self._pages, name, self._load_page, name)

    def _load_metadata(self, file: RemoteFile) -> DistMetadata:
        known = self._requests.kept_metadata(file)
        if known is not None:
            meta = known
        elif file.is_wheel:
            meta = wheel_metadata(self.upstream, file)
        else:
            meta = self.sdists.metadata(self._requests.sdist(file))
        for req in meta.requires_dist:
            if self._requests.applies(req):
                self.prefetch_page(canonicalize_name(req.name))
        return meta

    def metadata(self, file: RemoteFile) -> DistMetadata:
        return self._result(self._future(self._metadata, file.url, self._load_metadata, file))

    def prefetch_metadata(self, file: RemoteFile) -> None:
        self._future(self._metadata, file.url, self._load_metadata, file)

    def close(self) -> None:
        """Cancel the fetches not started; wait for those running unless the run is
        stopping (then they end in the background: they write nothing to the tree)."""
        with self._lock:
            self._closed = True
        stopping = self._stop is not None and self._stop.is_set()
        self._pool.shutdown(wait=not stopping, cancel_futures=True)
