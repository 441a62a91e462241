"""A sync at PyPI's scale holds neither the whole serial list nor the tree's whole map of
projects through the run: only what the plan fetches.  (bench/bench_scale.py gives the
figures at 900,000 projects.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.dists.serials import SerialList
from morgan_like.modes import sync as sync_mode
from morgan_like.modes.sync_plan import NameFilter, make_plan
from morgan_like.modes.sync_run import ProjectRun

from ..fakeindex import FakeIndex
from .sync_support import sync


def test_the_project_stage_is_given_only_the_projects_it_fetches(
    fake_index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two", "three", "four"):
        fake_index.add_project(name)
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, "--index-only").rc == 0
    fake_index.touch("two")
    fake_index.add_project("five")
    given: list[dict[str, int | None]] = []

    class Recording(ProjectRun):
        def __init__(self, *args: object) -> None:
            given.append(dict(args[-1]))  # type: ignore[call-overload]
            super().__init__(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sync_mode, "ProjectRun", Recording)
    assert sync(tree, fake_index, "--index-only").rc == 0
    (local,) = given
    assert set(local) == {"two"}  # "five" is new: not in the tree's map either


def test_a_whole_mirror_asks_no_name_whether_it_is_wanted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(NameFilter, "wanted", lambda self, name: asked.append(name) or True)
    listed = SerialList("simple", {"a": 1, "b": 2}, 2)
    plan = make_plan(listed, {"a": 1, "c": 1}, NameFilter())
    assert (plan.add, plan.remove, plan.unchanged) == ({"b": 2}, ("c",), 1)
    assert asked == []
