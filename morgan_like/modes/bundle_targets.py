"""What a bundle tells publish about each env beyond its view, for the lock files and
the SBOM (tree/lockfiles.py, tree/sbom.py): the env's Python, the release each project
is pinned to (a view's other releases are build requirements), and which top-level
requirement pulled each project in.

The pins come from the plan (a replayed one too): an env's files that are not only
build requirements.  The chains come from the resolutions' parents, so a replayed
plan has none (None: the SBOM keeps what it said last time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.utils import NormalizedName, canonicalize_name

from morgan_like.config.ini import Config
from morgan_like.resolve.plan import Plan
from morgan_like.resolve.resolver import EnvResolution
from morgan_like.tree.lockfiles import LockTarget


def _top_of(
    name: NormalizedName, parents: Mapping[NormalizedName, str], roots: set[str]
) -> str | None:
    """Follow the first parent recorded for ``name`` up to a top-level requirement."""
    seen: set[str] = set()
    while name not in roots:
        parent = parents.get(name)
        if parent is None or name in seen:
            return None
        seen.add(name)
        name = canonicalize_name(parent.split()[0])
    return name


def lock_targets(
    config: Config, plan: Plan, resolutions: Sequence[EnvResolution] | None
) -> list[LockTarget]:
    """One LockTarget per env of the config."""
    top: dict[str, list[str]] = {}
    for line in config.requirements:
        top.setdefault(canonicalize_name(line.requirement.name), []).append(str(line.requirement))
    by_env = {r.env.name: r for r in resolutions or ()}
    targets = []
    for env in config.environments:
        pins: dict[str, str] = {
            e.project: str(e.file.version)
            for e in plan.for_env(env.name)
            if not e.build and e.file.version is not None
        }
        required_by: dict[str, tuple[str, ...]] | None = None
        resolution = by_env.get(env.name)
        if resolution is not None:
            required_by = {}
            for name in resolution.pins:
                root = _top_of(name, resolution.parents, set(top))
                required_by[name] = tuple(top[root]) if root else ()
        version = env.python_full_version
        targets.append(LockTarget(env.name, f"{version.major}.{version.minor}", pins, required_by))
    return targets
