"""A sync at PyPI's scale: the projects reach the fetchers one (name, serial) at a time,
and the plan's map of every project it fetched is let go before publish writes the root
pages and the landing page of the whole tree."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from morgan_like.modes import sync as sync_mode
from morgan_like.modes import sync_run
from morgan_like.modes.sync_plan import SyncPlan

from ..fakeindex import FakeIndex
from .sync_support import sync


def test_the_plan_is_not_held_through_publish(
    fake_index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two", "three"):
        fake_index.add_project(name)
    held: list[int] = []
    publish = sync_mode.SyncRun.publish

    def watching(self: sync_mode.SyncRun, *args: object) -> object:
        gc.collect()
        held.append(sum(isinstance(o, SyncPlan) for o in gc.get_objects()))
        return publish(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sync_mode.SyncRun, "publish", watching)
    assert sync(tmp_path / "tree", fake_index, "--index-only").rc == 0
    assert held == [0]


def test_the_projects_are_handed_to_the_fetchers_one_pair_at_a_time(
    fake_index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sorted, each (name, serial) made as a fetcher takes it: no list of every pair."""
    for name in ("b", "a", "c"):
        fake_index.add_project(name)
    given: list[object] = []
    fetch = sync_run.fetch_in_threads

    def recording(upstream: object, job: object, items: object, *rest: object) -> None:
        given.append(items)
        pairs = list(items)  # type: ignore[call-overload]
        given.append(pairs)
        fetch(upstream, job, pairs, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(sync_run, "fetch_in_threads", recording)
    assert sync(tmp_path / "tree", fake_index, "--index-only").rc == 0
    items, pairs = given
    assert not isinstance(items, (list, tuple))
    assert [name for name, _ in pairs] == ["a", "b", "c"]  # type: ignore[attr-defined]
