"""What a sync will do, decided before anything is written: pure and testable.

The upstream's serial list against the serials the tree holds gives the
projects to add, to update and to remove.  The deletion guard refuses a plan
that would empty or gut the tree (an empty or truncated list looks exactly like
a mass deletion), and the file rules say which of a project's files a filtered
mirror keeps: a curated slice's allowlist narrows the names, its file filters
(dists.selection), specifiers and ``keep-latest`` narrow the releases.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.selection import FileSelection
from morgan_like.dists.serials import SerialList
from morgan_like.targets.environments import Environment

# With no --max-deletions: refuse to remove more than this share of the tree's projects
# in one run (at least DELETIONS_FLOOR): a truncated list must not empty a mirror.
DELETIONS_SHARE = 0.01
DELETIONS_FLOOR = 10


@dataclass(frozen=True)
class NameFilter:
    """``--exclude`` patterns, matched at the start of the normalized name, any case;
    ``allow``: the only names wanted (normalized; None: every name), for an allowlist
    synced without its dependencies."""

    excludes: tuple[re.Pattern[str], ...] = ()
    allow: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        """No filter at all: a whole mirror asks ``wanted`` of no name."""
        return self.allow is None and not self.excludes

    def wanted(self, name: str) -> bool:
        if self.allow is not None and name not in self.allow:
            return False
        return not any(p.match(name) for p in self.excludes)


@dataclass(frozen=True)
class FileRules:
    """Which files of a project a filtered mirror keeps.

    ``prerelease_excludes``: projects (name patterns) whose prereleases are left out.
    ``environments``: when given, wheels only if one of these envs can install them
    (its tags); sdists always, since any env can build them.
    ``selection``: the config's file filters (dists.selection).
    ``keep_latest``: the newest N releases of each project (None: all).
    ``specifiers``: normalized name -> the allowlist's specifier, narrowing its releases.
    With neither of the last two for a project, every release the per-file rules keep
    stays, yanked ones and files whose version cannot be read included (a full mirror).
    """

    prerelease_excludes: tuple[re.Pattern[str], ...] = ()
    environments: tuple[Environment, ...] = ()
    selection: FileSelection = FileSelection()
    keep_latest: int | None = None
    specifiers: Mapping[str, SpecifierSet] = field(default_factory=dict)

    def keep(self, project: str, files: list[RemoteFile]) -> list[RemoteFile]:
        """The files of ``releases(project, files, its allowlist specifier)``."""
        kept = self._each(project, files)
        specifier = self.specifiers.get(project)
        if self.keep_latest is None and specifier is None:
            return kept
        wanted = set(self.releases(project, files, specifier))
        return [rf for rf in kept if rf.version in wanted]

    def releases(
        self, project: str, files: list[RemoteFile], specifier: SpecifierSet | None = None
    ) -> list[Version]:
        """The releases kept, newest first: versions of the files the per-file rules keep
        (selection, prerelease-exclude, env tags), a release whose every such file is
        yanked left out; with ``specifier`` (an allowlist entry's), PEP 440's rule
        (prereleases only when it names one or no final release matches it); then the
        newest ``keep_latest``."""
        by_version: dict[Version, list[RemoteFile]] = defaultdict(list)
        for rf in self._each(project, files):
            if rf.version is not None:
                by_version[rf.version].append(rf)
        versions = [v for v, kept in by_version.items() if not all(f.is_yanked for f in kept)]
        if specifier is not None:
            versions = list(specifier.filter(versions))
        versions.sort(reverse=True)
        return versions if self.keep_latest is None else versions[: self.keep_latest]

    def left_out(self, project: str, files: list[RemoteFile]) -> list[tuple[RemoteFile, str]]:
        """The files ``keep`` would have kept but for max-file-size, each with why (for
        the run's report: a limit that costs a wanted file is worth a line)."""
        if self.selection.max_file_size is None:
            return []
        unbounded = replace(self, selection=replace(self.selection, max_file_size=None))
        out = []
        for rf in unbounded.keep(project, files):
            reason = self.selection.too_large(rf)
            if reason is not None:
                out.append((rf, reason))
        return out

    def _each(self, project: str, files: list[RemoteFile]) -> list[RemoteFile]:
        """The files the per-file rules keep: selection, prerelease-exclude, env tags."""
        no_pre = any(p.match(project) for p in self.prerelease_excludes)
        kept = []
        for rf in files:
            if no_pre and rf.version is not None and rf.version.is_prerelease:
                continue
            if (
                self.environments
                and rf.is_wheel
                and not any(env.tag_priority(rf.tags) is not None for env in self.environments)
            ):
                continue
            if self.selection.why_left_out(rf) is not None:
                continue
            kept.append(rf)
        return kept


@dataclass(frozen=True)
class SyncPlan:
    """Projects to add and update (name -> the serial the list promises), and to remove.

    ``target``: the serial the tree is synced up to once every project here is done
    (None when the list has no serials).
    """

    target: int | None
    add: Mapping[str, int]
    update: Mapping[str, int]
    remove: tuple[str, ...]
    unchanged: int
    excluded: int

    @property
    def todo(self) -> dict[str, int]:
        return {**self.add, **self.update}


def make_plan(
    listed: SerialList,
    local: Mapping[str, int | None],
    names: NameFilter,
    left: Mapping[str, int] | None = None,
) -> SyncPlan:
    """Compare the list with the tree: new projects, serials that moved, projects gone.

    A project the tree has with an unknown serial (a failed first attempt, a tree from
    elsewhere) is updated; one the filters now exclude leaves the tree like a deleted one.
    ``left``: what the last run set out to do and did not finish (it was killed before
    its publish): done again, whatever its serial says.
    """
    left = left or {}
    every = listed.source == "names"  # no serials: nothing tells a page unchanged
    add: dict[str, int] = {}
    update: dict[str, int] = {}
    unchanged = excluded = 0
    wanted = None if names.everything else names.wanted  # PyPI's scale: 900,000 calls saved
    for name, serial in listed.serials.items():
        if wanted is not None and not wanted(name):
            excluded += 1
            continue
        if name not in local:
            add[name] = serial
        elif every or local[name] is None or serial > (local[name] or 0) or name in left:
            update[name] = serial
        else:
            unchanged += 1
    remove = tuple(
        sorted(
            n for n in local if n not in listed.serials or (wanted is not None and not wanted(n))
        )
    )
    target = listed.last_serial
    if target is None and listed.serials and not every:
        target = max(listed.serials.values())
    # Names alone: the list promises no serial (the sync claims the tree's own instead).
    return SyncPlan(target, add, update, remove, unchanged, excluded)


def default_max_deletions(tree_projects: int) -> int:
    return max(DELETIONS_FLOOR, int(tree_projects * DELETIONS_SHARE))


def deletion_refusal(
    plan: SyncPlan, listed: SerialList, tree_projects: int, max_deletions: int | None
) -> str | None:
    """Why the plan must not run (nothing is deleted, nothing written), or None.

    An empty list for a tree that has projects is refused whatever the limit: no
    upstream deletes everything, but a broken one lists nothing.
    """
    if not listed.serials and tree_projects:
        return (
            f"the upstream's serial list ({listed.source}) is empty, and the tree has "
            f"{tree_projects} projects: refusing to delete them all (nothing was changed)"
        )
    limit = default_max_deletions(tree_projects) if max_deletions is None else max_deletions
    if len(plan.remove) > limit:
        shown = ", ".join(plan.remove[:5]) + (", ..." if len(plan.remove) > 5 else "")
        truncated = (
            f"; the list also had {listed.malformed} malformed entries" if listed.malformed else ""
        )
        return (
            f"{len(plan.remove)} of the tree's {tree_projects} projects would be removed "
            f"({shown}), more than the limit of {limit}{truncated}; nothing was changed. "
            "If upstream really removed them, re-run with --max-deletions "
            f"{len(plan.remove)} (or [sync] max-deletions)"
        )
    return None
