"""The curated slice's guarantee, on the fake upstream, through a night-after-night story.

Five allowlisted projects (tests/modes/slice_support.py ``scenario``: deep and diamond
dependencies, an extra, markers, an sdist-only dependency, Requires-Python that splits
the two envs) are synced with ``keep-latest = 2``; then upstream publishes a new release
of an allowlisted project, a new release of a dependency, yanks an allowlisted release,
yanks a dependency, and deletes a dependency's file an old kept release still needs.
After each re-sync:

* every env's view lists exactly the files the model's resolutions of the kept
  releases pick (plus the build backend of the sdists), the union ``simple/`` and
  ``packages/`` exactly their union: so a release that left the slice took its files
  with it, and a file another kept release still needs stayed;
* ``server.py --verify`` is clean and the diff-file names exactly the paths that changed;
* a release that can no longer resolve is reported naming it and the env, exit 1;
* (e2e) every kept release installs offline from its env's view with that env's own
  pip and with uv, through server.py and through file://, picking what the model picks.

A no-op re-sync at the end reads the serial list and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..clients import need, pyenv_python
from ..fakeindex import FakeIndex
from .slice_support import (
    ALLOWLIST,
    CHANGES,
    ENVS,
    KEEP_LATEST,
    Case,
    Change,
    Clients,
    Leg,
    SyncRun,
    Upstream,
    cases,
    check_installs,
    expected_views,
    listed,
    on_disk,
    scenario,
    sync_slice,
    union,
    verify,
    write_config,
)
from .sync_support import snapshot

FIRST = Change("the first sync", lambda up: None)


@dataclass(frozen=True)
class Step:
    change: Change
    run: SyncRun
    before: dict[str, str]
    after: dict[str, str]
    cases: list[Case]
    previous: list[Case]


class Story:
    """The upstream, the config and the tree of one run through every change."""

    def __init__(self, index: FakeIndex, work: Path, tiny_backend_wheel: Path) -> None:
        index.add(tiny_backend_wheel)
        self.index = index
        self.up = Upstream(index, work / "dists", scenario())
        self.tree = work / "tree"
        self.config = write_config(work / "slice.ini", ALLOWLIST, KEEP_LATEST)

    def sync(self) -> SyncRun:
        return sync_slice(self.tree, self.index.url, self.config)

    def steps(self) -> Iterator[Step]:
        previous: list[Case] = []
        for change in (FIRST, *CHANGES):
            before = snapshot(self.tree) if self.tree.exists() else {}
            change.apply(self.up)
            run = self.sync()
            now = cases(self.up, ALLOWLIST, KEEP_LATEST)
            yield Step(change, run, before, snapshot(self.tree), now, previous)
            previous = now


def last_good(step: Step) -> list[Case]:
    """The cases that resolved before this step and cannot now, as they were."""
    now = {(c.project, c.version, c.env) for c in step.cases if c.pins is None}
    return [c for c in step.previous if (c.project, c.version, c.env) in now and c.pins]


def assert_tree(story: Story, step: Step) -> None:
    what, run = step.change.what, step.run
    unresolvable = {(c.project, c.version, c.env) for c in step.cases if c.pins is None}
    assert unresolvable == set(step.change.fails), f"the scenario itself: {unresolvable}"
    assert run.rc == (1 if unresolvable else 0), f"{what}: exit {run.rc}\n{run.output}"
    for project, version, env in unresolvable:
        lines = [line for line in run.output.splitlines() if project in line and env in line]
        assert any(version in line for line in lines), (
            f"{what}: the run does not name {project} {version} in {env}:\n{run.output}"
        )
    assert "Traceback" not in run.output and "unexpected" not in run.output, run.output

    problems = verify(story.tree)
    assert problems == "", f"{what}: server.py --verify:\n{problems}"
    changed = {p for p, digest in step.after.items() if step.before.get(p) != digest}
    assert run.changed == changed, (
        f"{what}: diff-file extra {sorted(run.changed - changed)}, "
        f"missing {sorted(changed - run.changed)}"
    )
    assert run.removed == set(step.before) - set(step.after), what

    # A release that cannot resolve now keeps its last closure (the engine's rule: its
    # files are in the tree, and the run said so); nothing else may differ from the model.
    expected = expected_views([*step.cases, *last_good(step)])
    for env in ENVS:
        got = listed(story.tree / "envs" / env / "simple")
        for name in sorted(set(got) | set(expected[env])):
            extra = got.get(name, set()) - expected[env].get(name, set())
            missing = expected[env].get(name, set()) - got.get(name, set())
            assert not missing, f"{what}: {env}'s view lacks {sorted(missing)}"
            assert not extra, f"{what}: {env}'s view lists {sorted(extra)}, which nothing needs"
    views = {env: listed(story.tree / "envs" / env / "simple") for env in ENVS}
    assert listed(story.tree / "simple") == union(views), what
    assert on_disk(story.tree) == union(views), what


def assert_noop(story: Story, failed: bool = False) -> None:
    """Nothing moved upstream: the serial list is read and nothing else, and the tree
    does not change; a closure that failed last time (a conflict) is reported again
    from the record, not resolved again, until a page it read moves."""
    before = snapshot(story.tree)
    story.index.reset_log()
    run = story.sync()
    assert run.rc == (1 if failed else 0), run.output
    if failed:
        assert "cannot keep bravo==2.0 for env py311" in run.output, run.output
    requests = [(r.method, r.path.split("?")[0]) for r in story.index.requests]
    assert requests == [("GET", "/simple/")], requests
    assert (run.changed, run.removed) == (set(), set())
    assert snapshot(story.tree) == before


def test_the_slice_holds_exactly_what_each_kept_release_needs_through_every_change(
    fake_index: FakeIndex, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    story = Story(fake_index, tmp_path, tiny_backend_wheel)
    for step in story.steps():
        assert_tree(story, step)
        if step.change is FIRST:
            assert_noop(story)
    # The last change left bravo 2.0 unresolvable in py311: with nothing moved since,
    # the no-op reads the serial list only, reports it again and exits 1.
    assert_noop(story, failed=True)


def test_the_first_sync_keeps_the_newest_releases_and_their_closures_only(
    fake_index: FakeIndex, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    """The model's reading of the scenario, spelled out once (so a wrong model cannot
    make the tree test above pass by agreeing with a wrong engine)."""
    story = Story(fake_index, tmp_path, tiny_backend_wheel)
    kept = sorted({(c.project, c.version) for c in cases(story.up, ALLOWLIST, KEEP_LATEST)})
    assert kept == [
        ("alpha", "1.1"), ("alpha", "2.0"), ("bravo", "2.0"), ("bravo", "3.0"),
        ("charlie", "0.9"), ("charlie", "1.0"), ("echo", "2.0"), ("echo", "2.5"),
        ("hotel", "1.0"), ("hotel", "2.0"),
    ]  # fmt: skip
    views = expected_views(cases(story.up, ALLOWLIST, KEEP_LATEST))
    assert views["py311"]["gamma"] == {"gamma-1.0-py3-none-any.whl"}
    assert views["py312"]["gamma"] == {"gamma-1.1-py3-none-any.whl"}
    assert views["py311"]["delta"] == {"delta-1.5-py3-none-any.whl", "delta-2.0-py3-none-any.whl"}
    assert "legacyshim" in views["py311"] and "legacyshim" not in views["py312"]
    assert "bravo-2.0-py3-none-any.whl" not in views["py312"]["bravo"]
    assert (
        "winhelper" not in union(views)
        and "alpha-1.0-py3-none-any.whl" not in views["py311"]["alpha"]
    )
    assert views["py312"]["srconly"] == {"srconly-1.1.tar.gz"}
    assert views["py312"]["tinybackend"] == {"tinybackend-1.0-py3-none-any.whl"}
    assert views["py311"]["charlie"] == {
        "charlie-0.9-py3-none-any.whl", "charlie-0.9.tar.gz",
        "charlie-1.0-py3-none-any.whl", "charlie-1.0.tar.gz",
    }  # fmt: skip
    run = story.sync()
    assert run.rc == 0, run.output
    got = listed(story.tree / "envs" / "py311" / "simple")
    assert got == views["py311"]


# --- real clients ---------------------------------------------------------------------

EACH = (Leg("pip", "file"), Leg("uv", "file"), Leg("uv", "server", True))


@pytest.mark.e2e
def test_every_kept_release_installs_offline_with_pip_and_uv_through_every_change(
    fake_index: FakeIndex, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    """Each step, every case: pip --dry-run over file:// (resolves and builds sdist
    metadata from the view alone), uv over file:// (dry run) and through server.py (a
    real install), and pip through server.py: a real install for each project's newest
    kept release and every case new or moved since the last step, else a dry run."""
    pythons = {env: pyenv_python(version) for env, version in ENVS.items()}
    for python in pythons.values():
        need(python)
    story = Story(fake_index, tmp_path, tiny_backend_wheel)
    clients = Clients(tmp_path, pythons)
    for step in story.steps():
        assert_tree(story, step)
        newest = {(c.project, c.env): c for c in reversed(step.cases)}
        install = set(newest.values()) | (set(step.cases) - set(step.previous))

        def legs(case: Case, install: set[Case] = install) -> list[Leg]:
            return [*EACH, Leg("pip", "server", install=case in install)]

        # A release that failed to resolve still installs as it did (its files stayed).
        checked = [*step.cases, *last_good(step)]
        failures = check_installs(story.tree, checked, legs, clients)
        assert not failures, f"{step.change.what}:\n" + "\n".join(map(str, failures))
