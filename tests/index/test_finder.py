"""index.finder.Finder and its requests to the run (FinderRequests): what it asks, and
what it does with each answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import DistMetadata
from morgan_like.fetch.sdistcache import SdistCache
from morgan_like.index.finder import Finder
from morgan_like.index.upstream import Upstream

from ..distbuilder import make_sdist
from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel

WAIT = 60  # seconds a read-ahead may take on a loaded machine before the test gives up


class Recording:
    """FinderRequests that say what they are told to and note what they are asked."""

    def __init__(
        self,
        cache: SdistCache,
        *,
        likely: tuple[str, ...] = (),
        applies: tuple[str, ...] = (),
        kept: dict[str, DistMetadata] | None = None,
        sdist_at: Path | None = None,
    ) -> None:
        self.cache = cache
        self.likely, self.applying, self.kept, self.sdist_at = likely, applies, kept or {}, sdist_at
        self.pages: dict[str, threading.Event] = {}
        self.metadata_asked: dict[str, threading.Event] = {}
        self.sdists: list[str] = []
        self.asked_applies: list[str] = []
        self._lock = threading.Lock()

    def _event(self, events: dict[str, threading.Event], key: str) -> threading.Event:
        with self._lock:
            return events.setdefault(key, threading.Event())

    def sdist(self, file: RemoteFile) -> Path:
        self.sdists.append(file.filename)
        return self.sdist_at if self.sdist_at is not None else self.cache.get(file)

    def likely_metadata(self, page: ProjectPage) -> list[RemoteFile]:
        self._event(self.pages, page.name).set()
        return [f for f in page.files if f.filename in self.likely]

    def applies(self, requirement: Requirement) -> bool:
        self.asked_applies.append(requirement.name)
        return requirement.name in self.applying

    def kept_metadata(self, file: RemoteFile) -> DistMetadata | None:
        self._event(self.metadata_asked, file.filename).set()
        return self.kept.get(file.filename)


@pytest.fixture
def upstream(fake_index: FakeIndex) -> Iterator[Upstream]:
    with Upstream(fake_index.url, retries=1, backoff=0.01) as up:
        yield up


def _file(finder: Finder, project: str, filename: str) -> RemoteFile:
    return next(f for f in finder.page(project).files if f.filename == filename)


def _paths(index: FakeIndex) -> list[str]:
    return [r.path for r in index.requests]


def test_the_files_a_page_names_likely_are_read_ahead(
    fake_index: FakeIndex, dists: Path, upstream: Upstream, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "lib", "2.0")
    requests = Recording(SdistCache(upstream, tmp_path), likely=("lib-2.0-py3-none-any.whl",))
    finder = Finder(upstream, requests)
    try:
        finder.page("lib")
        # Nobody asked for lib 2.0's metadata: the Finder reads it ahead on its own.
        assert requests._event(requests.metadata_asked, "lib-2.0-py3-none-any.whl").wait(WAIT)
        assert finder.metadata(_file(finder, "lib", "lib-2.0-py3-none-any.whl")).version
    finally:
        finder.close()
    assert "lib-1.0-py3-none-any.whl" not in requests.metadata_asked
    assert sum(p.endswith("lib-2.0-py3-none-any.whl.metadata") for p in _paths(fake_index)) == 1


def test_only_the_dependencies_the_run_takes_have_their_pages_read_ahead(
    fake_index: FakeIndex, dists: Path, upstream: Upstream, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["taken", "left"])
    wheel(fake_index, dists, "taken", "1.0")
    wheel(fake_index, dists, "left", "1.0")
    requests = Recording(SdistCache(upstream, tmp_path), applies=("taken",))
    finder = Finder(upstream, requests)
    try:
        finder.metadata(_file(finder, "app", "app-1.0-py3-none-any.whl"))
        assert requests._event(requests.pages, "taken").wait(WAIT)
    finally:
        finder.close()
    assert sorted(requests.asked_applies) == ["left", "taken"]
    assert not any("/left/" in p for p in _paths(fake_index))


def test_metadata_a_previous_run_kept_is_not_asked_upstream(
    fake_index: FakeIndex, dists: Path, upstream: Upstream, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0", requires_dist=["upstream-says"])
    kept = DistMetadata(name="lib", version="1.0", requires_dist=[Requirement("kept-says")])
    requests = Recording(SdistCache(upstream, tmp_path), kept={"lib-1.0-py3-none-any.whl": kept})
    finder = Finder(upstream, requests)
    try:
        meta = finder.metadata(_file(finder, "lib", "lib-1.0-py3-none-any.whl"))
    finally:
        finder.close()
    assert meta is kept
    assert [p for p in _paths(fake_index) if "lib-1.0" in p] == []


def test_an_sdist_is_read_where_the_run_says_it_is(
    fake_index: FakeIndex, dists: Path, upstream: Upstream, tmp_path: Path
) -> None:
    sdist(fake_index, dists, "lib", "1.0", requires_dist=["from-upstream"])
    local = make_sdist(tmp_path / "local", "lib", "1.0", requires_dist=["from-the-run"])
    requests = Recording(SdistCache(upstream, tmp_path / "cache"), sdist_at=local)
    finder = Finder(upstream, requests)
    try:
        meta = finder.metadata(_file(finder, "lib", "lib-1.0.tar.gz"))
    finally:
        finder.close()
    assert requests.sdists == ["lib-1.0.tar.gz"]
    assert [r.name for r in meta.requires_dist] == ["from-the-run"]
    assert not any(p.endswith("lib-1.0.tar.gz") for p in _paths(fake_index))
