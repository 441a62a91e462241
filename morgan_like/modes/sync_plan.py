"""What a sync will do, decided before anything is written: pure and testable.

The upstream's serial list against the serials the tree holds gives the
projects to add, to update and to remove.  The deletion guard refuses a plan
that would empty or gut the tree (an empty or truncated list looks exactly like
a mass deletion), and the file rules say which of a project's files a filtered
mirror keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.serials import SerialList
from morgan_like.targets.environments import Environment

# With no --max-deletions: refuse to remove more than this share of the tree's projects
# in one run (at least DELETIONS_FLOOR): a truncated list must not empty a mirror.
DELETIONS_SHARE = 0.01
DELETIONS_FLOOR = 10


@dataclass(frozen=True)
class NameFilter:
    """``--exclude`` patterns, matched at the start of the normalized name, any case."""

    excludes: tuple[re.Pattern[str], ...] = ()

    def wanted(self, name: str) -> bool:
        return not any(p.match(name) for p in self.excludes)


@dataclass(frozen=True)
class FileRules:
    """Which files of a project a filtered mirror keeps.

    ``prerelease_excludes``: projects (name patterns) whose prereleases are left out.
    ``environments``: when given, wheels only if one of these envs can install them
    (its tags); sdists always, since any env can build them.
    """

    prerelease_excludes: tuple[re.Pattern[str], ...] = ()
    environments: tuple[Environment, ...] = ()

    def keep(self, project: str, files: list[RemoteFile]) -> list[RemoteFile]:
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
    for name, serial in listed.serials.items():
        if not names.wanted(name):
            excluded += 1
            continue
        if name not in local:
            add[name] = serial
        elif every or local[name] is None or serial > (local[name] or 0) or name in left:
            update[name] = serial
        else:
            unchanged += 1
    remove = tuple(sorted(n for n in local if n not in listed.serials or not names.wanted(n)))
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
