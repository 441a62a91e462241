"""resolve.builddeps: the build step asks the run for sdists and reports failures as records."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

from morgan_like.resolve.builddeps import BuildFacts, BuildRequirements, BuildSetFailure
from morgan_like.resolve.plan import Plan, PlannedFile, add_resolution
from morgan_like.resolve.resolver import ResolveOptions, resolve_env

from ..fakeindex import FakeIndex
from ..helpers import Resolving, env, sdist, wheel


class Recording:
    """An SdistSource that reads from the sdist cache and notes every request."""

    def __init__(self, res: Resolving) -> None:
        self.res = res
        self.read: list[str] = []
        self.wanted: list[str] = []

    def path(self, entry: PlannedFile) -> Path:
        self.read.append(entry.file.filename)
        return self.res.cache.get(entry.file)

    def here(self, entry: PlannedFile) -> bool:
        return False

    def want(self, entries: list[PlannedFile]) -> None:
        self.wanted.extend(e.file.filename for e in entries)


def _planned(res: Resolving, *reqs: str) -> tuple[Plan, list]:
    target = env("e", "3.12.1")
    resolution = resolve_env(target, [Requirement(r) for r in reqs], res.finder, ResolveOptions())
    plan = Plan(env_names=["e"])
    add_resolution(plan, resolution, top_level={Requirement(r).name for r in reqs})
    return plan, [resolution]


def test_the_build_step_asks_the_run_for_sdists_and_downloads(
    fake_index: FakeIndex, dists: Path, res: Resolving
) -> None:
    sdist(fake_index, dists, "app", "1.0", build_requires=["helper"])
    wheel(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "helper", "2.0")
    plan, resolutions = _planned(res, "app")
    source = Recording(res)
    facts = BuildFacts(source, res.cache.sdists)
    assert BuildRequirements(plan, res.finder, ResolveOptions(), facts).add(resolutions) == 0
    assert source.read == ["app-1.0.tar.gz"]
    assert source.wanted == ["helper-2.0-py3-none-any.whl"]
    assert "packages/helper/helper-2.0-py3-none-any.whl" in plan.files


def test_a_dry_run_reads_only_what_is_on_disk(
    fake_index: FakeIndex, dists: Path, res: Resolving
) -> None:
    sdist(fake_index, dists, "app", "1.0", build_requires=["helper"])
    plan, resolutions = _planned(res, "app")
    source = Recording(res)
    step = BuildRequirements(
        plan, res.finder, ResolveOptions(), BuildFacts(source, res.cache.sdists), fetch_sdists=False
    )
    assert step.add(resolutions) == 1
    assert source.read == [] and source.wanted == []


def test_a_set_that_does_not_resolve_is_a_record_rendered_once(
    fake_index: FakeIndex, dists: Path, res: Resolving
) -> None:
    sdist(fake_index, dists, "app", "1.0", build_requires=["helper>=9"])
    wheel(fake_index, dists, "helper", "2.0")
    plan, resolutions = _planned(res, "app")
    facts = BuildFacts(Recording(res), res.cache.sdists)
    BuildRequirements(plan, res.finder, ResolveOptions(), facts).add(resolutions)
    failures = [p for p in plan.problems if "cannot bundle the build requirements" in p]
    assert len(failures) == 1
    assert failures[0].startswith("env e: cannot bundle the build requirements of app-1.0.tar.gz: ")
    record = BuildSetFailure("e", "app-1.0.tar.gz", "no")
    assert record.message() == "env e: cannot bundle the build requirements of app-1.0.tar.gz: no"
