"""Build requirements: what pip needs offline to build each sdist in the tree.

pip builds an sdist in an isolated environment that it fills from the same
index, so every sdist's ``build-system.requires`` (or setuptools + wheel for a
legacy sdist) must be resolvable from the tree too, per env.  Each distinct
set is resolved on its own, as pip does, and the sdists that brings in are
followed in turn until nothing new appears.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from morgan_like.errors import MorganLikeError
from morgan_like.fetch.download import SdistCache
from morgan_like.index.finder import Finder
from morgan_like.resolve.plan import Plan, PlannedFile, add_resolution
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions, resolve_env


def _read_build_requires(
    entries: list[PlannedFile], cache: SdistCache, root: Path, problems: list[str]
) -> dict[str, list[Requirement]]:
    """Fetch (once, into the cache) and read every sdist's build requirements in parallel.

    The cache's reader answers from the pass that read the sdist's metadata during
    resolution, so no archive is read twice.
    """

    def read(entry: PlannedFile) -> tuple[str, list[Requirement]]:
        try:
            path = cache.get(entry.file, existing=root / entry.relpath)
            return entry.relpath, cache.sdists.build_requires(path)
        except (MorganLikeError, OSError, ValueError) as exc:
            problems.append(f"cannot read the build requirements of {entry.file.filename}: {exc}")
            return entry.relpath, []

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(read, entries))


def add_build_requirements(
    plan: Plan,
    resolutions: list[EnvResolution],
    finder: Finder,
    options: ResolveOptions,
    cache: SdistCache,
    root: Path,
    *,
    fetch_sdists: bool = True,
) -> int:
    """Extend ``plan`` with the build requirements of its sdists; return how many were not read.

    With ``fetch_sdists`` False (dry run) only sdists already fetched for their
    metadata or already in the tree are read.
    """
    skipped: set[str] = set()
    requires: dict[str, list[Requirement]] = {}
    for resolution in resolutions:
        env = resolution.env
        done: set[tuple[str, ...]] = set()
        pending = plan.sdists_for(env.name)
        while pending:
            readable = [
                e
                for e in pending
                if fetch_sdists or cache.take(e.file) is not None or (root / e.relpath).exists()
            ]
            kept = {e.relpath for e in readable}
            skipped.update(e.relpath for e in pending if e.relpath not in kept)
            todo = [e for e in readable if e.relpath not in requires]
            requires.update(_read_build_requires(todo, cache, root, plan.problems))
            pending = []
            for entry in readable:
                reqs = [r for r in requires.get(entry.relpath, []) if env.evaluate(r.marker)]
                key = tuple(sorted(str(r) for r in reqs))
                if not reqs or key in done:
                    continue
                done.add(key)
                roots: dict[str, str] = {
                    canonicalize_name(r.name): f"build requirement of {entry.file.filename}"
                    for r in reqs
                }
                try:
                    extra = resolve_env(env, reqs, finder, options, roots)
                except MorganLikeError as exc:
                    plan.problems.append(
                        f"env {env.name}: cannot bundle the build requirements of {entry.file.filename}: {exc}"
                    )
                    continue
                added = add_resolution(plan, extra, top_level=set(), build=True)
                pending.extend(e for e in added if e.file.is_sdist)
    return len(skipped)
