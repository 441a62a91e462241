"""fetch.projects: one typed record per project, the same from threads and processes."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from morgan_like.fetch.projects import (
    PageFetched,
    ProjectGone,
    ProjectJob,
    ProjectStale,
    fetch_in_processes,
    fetch_in_threads,
    fetch_project,
)
from morgan_like.index.upstream import Upstream
from morgan_like.tree.state import TreeState
from morgan_like.tree.statereader import StateReader

from ..fakeindex import FakeIndex
from ..helpers import wheel


def _keep_all(_name: str, files: list) -> list:
    return list(files)


def test_outcomes_are_records_that_pickle(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    fake_index.add_project("empty")
    root = tmp_path / "tree"
    root.mkdir()
    TreeState(root).close()
    job = ProjectJob(fake_index.url, {}, _keep_all, root, stale_retries=0, stale_delay=0.0)
    upstream = Upstream(fake_index.url)
    try:
        got = fetch_project(upstream, job, StateReader(root), "lib", 0)
        assert isinstance(got, PageFetched) and got.name == "lib"
        assert [rf.filename for rf in got.kept] == ["lib-1.0-py3-none-any.whl"]
        assert [f.relpath for f in got.fetched] == ["packages/lib/lib-1.0-py3-none-any.whl"]
        assert fetch_project(upstream, job, None, "nope", 0) == ProjectGone("nope")
        stale = fetch_project(upstream, job, None, "lib", 10**6)
        assert isinstance(stale, ProjectStale) and stale.serial is not None
    finally:
        upstream.close()
    for outcome in (got, ProjectGone("nope"), stale):
        assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_processes_and_threads_deliver_the_same_records(fake_index: FakeIndex, dists: Path) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    job = ProjectJob(fake_index.url, {}, _keep_all, None, stale_retries=0, stale_delay=0.0)
    items = [("lib", 0), ("nope", 0)]
    by_threads: list = []
    upstream = Upstream(fake_index.url)
    try:
        fetch_in_threads(upstream, job, items, 2, by_threads.append)
    finally:
        upstream.close()
    by_processes: list = []
    fetch_in_processes(job, items, 2, by_processes.append)
    key = lambda o: o.name  # noqa: E731
    assert sorted(by_threads, key=key) == sorted(by_processes, key=key)
    assert {type(o) for o in by_threads} == {PageFetched, ProjectGone}


def test_each_thread_holds_one_project_at_a_time(fake_index: FakeIndex) -> None:
    """Threads take projects from the list themselves: none waits in a queue between
    the list and a thread (a hand-off of the interpreter lock per project)."""
    threads, total = 3, 200
    lock = threading.Lock()
    delivered: list[object] = []
    leads: list[int] = []

    def items() -> Iterator[tuple[str, int]]:
        for i in range(total):
            with lock:
                leads.append(i - len(delivered))  # taken from the list, not yet delivered
            yield f"gone{i}", 0

    def deliver(outcome: object) -> None:
        with lock:
            delivered.append(outcome)

    job = ProjectJob(fake_index.url, {}, _keep_all, None, stale_retries=0, stale_delay=0.0)
    with Upstream(fake_index.url, retries=0) as upstream:
        fetch_in_threads(upstream, job, items(), threads, deliver)
    assert len(delivered) == total and max(leads) <= threads
    assert all(isinstance(o, ProjectGone) for o in delivered)


def test_a_thread_that_fails_fails_the_fetch_instead_of_losing_its_project(
    fake_index: FakeIndex,
) -> None:
    """A project whose delivery raised was lost without a word, and the sync's loop
    waited for it for ever: the failure now ends the fetch (the sync reports it)."""
    delivered: list[str] = []

    def deliver(outcome: ProjectGone) -> None:
        if outcome.name == "gone5":
            raise RuntimeError("the writer broke")
        delivered.append(outcome.name)

    job = ProjectJob(fake_index.url, {}, _keep_all, None, stale_retries=0, stale_delay=0.0)
    items = [(f"gone{i}", 0) for i in range(50)]
    broke = pytest.raises(RuntimeError, match="the writer broke")
    with Upstream(fake_index.url, retries=0) as upstream, broke:
        fetch_in_threads(upstream, job, items, 2, deliver)  # type: ignore[arg-type]
    assert "gone5" not in delivered and len(delivered) < 50
