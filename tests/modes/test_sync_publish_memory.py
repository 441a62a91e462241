"""A sync's publish at PyPI's scale: the plan's map of every project it fetched is let
go before publish writes the root pages and the landing page of the whole tree."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from morgan_like.modes import sync as sync_mode
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
