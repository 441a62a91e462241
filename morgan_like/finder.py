"""A shared, read-ahead cache of project pages and distribution metadata.

Resolution is sequential by nature, but the network need not be: every env
resolves in its own thread against this one cache, and each time a candidate's
dependencies become known their pages (and the metadata of their newest
files) are fetched ahead in a thread pool.  That is what keeps a 150-project
graph behind a slow index to a few round trips of wall time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from morgan_like.links import ProjectPage, RemoteFile
from morgan_like.metadata import DistMetadata, sdist_metadata, wheel_metadata
from morgan_like.upstream import Upstream


class Finder:
    """Pages by project name and metadata by file URL, each fetched at most once."""

    def __init__(
        self,
        upstream: Upstream,
        fetch_sdist: Callable[[RemoteFile], Path],
        *,
        workers: int = 16,
    ) -> None:
        self.upstream = upstream
        self._fetch_sdist = fetch_sdist
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finder")
        self._lock = threading.Lock()
        self._pages: dict[str, Future] = {}
        self._metadata: dict[str, Future] = {}
        self._closed = False

    def _future(
        self, cache: dict[str, Future], key: str, fn: Callable[..., Any], *args: Any
    ) -> Future:
        with self._lock:
            future = cache.get(key)
            if future is None:
                if self._closed:
                    future = Future()
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # noqa: BLE001 - stored for the caller
                        future.set_exception(exc)
                else:
                    future = self._pool.submit(fn, *args)
                cache[key] = future
            return future

    def page(self, name: str) -> ProjectPage:
        return self._future(self._pages, name, self.upstream.project_page, name).result()

    def prefetch_page(self, name: str) -> None:
        self._future(self._pages, name, self.upstream.project_page, name)

    def _load_metadata(self, file: RemoteFile) -> DistMetadata:
        if file.is_wheel:
            return wheel_metadata(self.upstream, file)
        return sdist_metadata(self._fetch_sdist(file))

    def metadata(self, file: RemoteFile) -> DistMetadata:
        return self._future(self._metadata, file.url, self._load_metadata, file).result()

    def prefetch_metadata(self, file: RemoteFile) -> None:
        self._future(self._metadata, file.url, self._load_metadata, file)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
