"""The plan: from each env's pins to the exact files the tree must hold.

A plan is the union over envs; each entry remembers which envs wanted it and
why (a requirement, or a build requirement of an sdist), so the dry-run table
and the summary can show it per env.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from packaging.utils import NormalizedName

from morgan_like.dists.links import RemoteFile
from morgan_like.resolve.candidates import pick_files
from morgan_like.resolve.records import EnvResolution
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import package_relpath


@dataclass(eq=False)
class PlannedFile:
    project: NormalizedName
    file: RemoteFile
    envs: set[str] = field(default_factory=set)
    build: bool = False

    @property
    def relpath(self) -> str:
        return package_relpath(self.project, self.file.filename)


@dataclass
class Plan:
    """Every file the tree needs, keyed by tree path."""

    files: dict[str, PlannedFile] = field(default_factory=dict)
    env_names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(
        self, project: NormalizedName, file: RemoteFile, env: str, *, build: bool = False
    ) -> bool:
        """Add ``file`` for ``env``; True if the tree gains a file it did not have in the plan."""
        relpath = package_relpath(project, file.filename)
        entry = self.files.get(relpath)
        if entry is None:
            entry = self.files[relpath] = PlannedFile(project, file, build=build)
            new = True
        else:
            entry.build = entry.build and build
            new = False
        entry.envs.add(env)
        return new

    def by_project(self) -> dict[NormalizedName, list[RemoteFile]]:
        grouped: dict[NormalizedName, list[RemoteFile]] = defaultdict(list)
        for entry in self.files.values():
            grouped[entry.project].append(entry.file)
        return dict(grouped)

    def for_env(self, env: str) -> list[PlannedFile]:
        return sorted(
            (e for e in self.files.values() if env in e.envs),
            key=lambda e: (e.project, e.file.filename),
        )

    def sdists_for(self, env: str) -> list[PlannedFile]:
        return [e for e in self.for_env(env) if e.file.is_sdist]

    def must_build(self, env: str) -> set[str]:
        """Relpaths of the sdists ``env`` has no wheel of the same release for: pip there
        builds them."""
        entries = self.for_env(env)
        wheels = {(e.project, e.file.version) for e in entries if e.file.is_wheel}
        return {
            e.relpath
            for e in entries
            if e.file.is_sdist and (e.project, e.file.version) not in wheels
        }

    @property
    def total_size(self) -> int:
        return sum(e.file.size or 0 for e in self.files.values())


def resolution_files(
    resolution: EnvResolution,
    *,
    top_level: set[NormalizedName] | frozenset[NormalizedName] = frozenset(),
    all_wheels: bool = False,
    include_sdist: bool = True,
) -> list[tuple[NormalizedName, RemoteFile]]:
    """The files ``resolution``'s env needs of each pin: the wheel pip there would pick
    and the release's sdist (no sdist for a binary-only env)."""
    env: Environment = resolution.env
    chosen = []
    for name, candidate in sorted(resolution.pins.items()):
        for file in pick_files(
            candidate.files,
            env,
            all_wheels=all_wheels and name in top_level,
            include_sdist=include_sdist,
        ):
            if env.binary_only and not file.is_wheel:
                continue  # no sdist enters a binary-only env's view
            chosen.append((name, file))
    return chosen


def add_resolution(
    plan: Plan,
    resolution: EnvResolution,
    *,
    top_level: set[NormalizedName],
    all_wheels: bool = False,
    include_sdist: bool = True,
    build: bool = False,
) -> list[PlannedFile]:
    """Add the files of every pin of ``resolution``; return the newly planned entries."""
    added = []
    for name, file in resolution_files(
        resolution, top_level=top_level, all_wheels=all_wheels, include_sdist=include_sdist
    ):
        if plan.add(name, file, resolution.env.name, build=build):
            added.append(plan.files[package_relpath(name, file.filename)])
    plan.problems.extend(p for p in resolution.problems if p not in plan.problems)
    return added
