"""Build requirements: what pip needs offline to build each sdist in the tree.

pip builds an sdist in an isolated environment that it fills from the same
index, so every sdist's ``build-system.requires`` (or setuptools + wheel for a
legacy sdist) must be resolvable from the tree too, per env; for an sdist the
env must build (no wheel of that release for it), so must what its backend's
``get_requires_for_build_wheel`` adds on the env's platform (resolve/hooks.py).  Each distinct
set is resolved on its own, as pip does, and the sdists that brings in are
followed in turn until nothing new appears.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Union

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.sdistread import SdistReader
from morgan_like.errors import MetadataError, MorganLikeError
from morgan_like.index.finder import Finder
from morgan_like.resolve.buildenv import BuildEnvs
from morgan_like.resolve.hooks import Platform
from morgan_like.resolve.plan import Plan, PlannedFile, add_resolution
from morgan_like.resolve.report import BuildSdist
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions, resolve_env
from morgan_like.targets.environments import Environment
from morgan_like.tree.state import TreeState


class SdistSource(Protocol):
    """What the build step asks of the run for the sdists of the plan.

    The run answers from the tree, the sdist cache or the network (modes/resolving.py);
    the build step never downloads into the tree itself, it asks.
    """

    def path(self, entry: PlannedFile) -> Path:
        """Read sdist: the archive on disk, fetched now (ahead of the queue) if need be."""

    def here(self, entry: PlannedFile) -> bool:
        """Is the archive on disk without fetching it (cached by resolution, or in the tree)?"""

    def want(self, entries: list[PlannedFile]) -> None:
        """Download files: the plan grew by ``entries`` (a dry run fetches nothing)."""


@dataclass(frozen=True)
class BuildSetFailure:
    """An sdist's build requirements that do not resolve in an env."""

    env: str
    filename: str
    error: str

    def message(self) -> str:
        return (
            f"env {self.env}: cannot bundle the build requirements of {self.filename}: {self.error}"
        )


@dataclass
class BuildFacts:
    """Where an sdist's build requirements come from, and where they are remembered.

    The static ``[build-system] requires`` come from the archive (read in the same
    pass as its metadata); what the backend adds on a platform comes from its
    ``get_requires_for_build_wheel`` hook (``buildenvs``; None runs no hook); both
    are remembered in the tree state by the sdist's sha256, so a re-run reads no
    archive and runs no hook.  Archives come from ``source``: with a run that
    downloads, an sdist of the plan is read from the tree the moment its own download
    ends (asked for first if not queued yet), so reading build requirements overlaps
    the rest of the downloads and nothing is fetched twice.
    """

    source: SdistSource
    reader: SdistReader
    state: TreeState | None = None
    buildenvs: BuildEnvs | None = None
    problems: list[str] = field(default_factory=list)

    def _key(self, target: Platform | None) -> str:
        if self.buildenvs is None or target is None:
            return "build-requires:static"
        return f"build-requires:{target.sys_platform}:{target.platform_system}:{target.platform_machine}"

    def requires(self, entry: PlannedFile, target: Platform | None) -> list[Requirement]:
        """The build requirements of ``entry``; with a ``target``, its backend is asked too.

        Without ``buildenvs`` (--static-metadata-only: no hook runs) an sdist the env
        builds gets its static requires only, and the plan's problems say so.
        """
        if target is not None and self.buildenvs is None:
            self.problems.append(
                f"{entry.file.filename}: built on the target, but its backend was not asked "
                "what it adds to its [build-system] requires (--static-metadata-only runs "
                "no hook): only those are bundled"
            )
        sha256, key = entry.file.sha256, self._key(target)
        if self.state is not None and sha256:
            known = self.state.fact(sha256, key)
            if known is not None:
                return [Requirement(line) for line in json.loads(known)]
        filename = entry.file.filename
        try:
            path = self.source.path(entry)
            reqs = list(self.reader.build_requires(path))
        except (MorganLikeError, OSError, ValueError) as exc:
            self.problems.append(f"cannot read the build requirements of {filename}: {exc}")
            return []
        if self.buildenvs is not None and target is not None:
            try:
                added = self.buildenvs.build_requires(path, filename, target)
            except MetadataError as exc:
                self.problems.append(f"{exc}; only its static [build-system] requires are bundled")
                return reqs  # not remembered: the next run asks the backend again
            seen = {str(r) for r in reqs}
            reqs += [r for r in added if str(r) not in seen]
        if self.state is not None and sha256:
            self.state.set_fact(sha256, key, json.dumps([str(r) for r in reqs]))
        return reqs

    def foresee(self, file: RemoteFile, env: Environment) -> None:
        """An env reads the metadata of an sdist it has no wheel of: it will most likely
        build it, so its backend is asked now, unless the tree state knows the answer."""
        target = Platform.from_markers(env.markers)
        if self.buildenvs is not None and not self._answered(file, target):
            self.buildenvs.foresee(file, target)

    def _answered(self, file: RemoteFile, target: Platform) -> bool:
        """Does the tree state already hold what the backend adds on ``target``?"""
        if self.state is None or not file.sha256:
            return False
        return self.state.fact(file.sha256, self._key(target)) is not None

    def prepare(self, entry: PlannedFile, target: Platform) -> None:
        """Fetch, unpack and lay out the build environment of an sdist whose hook will be
        asked on ``target``, unless the tree state already has the answer."""
        if self.buildenvs is None or self._answered(entry.file, target):
            return
        # A failure is said when its hook is asked for (requires).
        with contextlib.suppress(MorganLikeError, OSError, ValueError):
            self.buildenvs.prepare(self.source.path(entry), entry.file.filename)

    def prefetch_pages(self, entries: list[PlannedFile], finder: Finder) -> None:
        """Ask now for the pages of the build requirements a previous run learnt, so
        they arrive while the rest resolves."""
        if self.state is None:
            return
        for entry in entries:
            if not entry.file.is_sdist or not entry.file.sha256:
                continue
            known = self.state.fact(entry.file.sha256, "build-requires:static")
            for line in json.loads(known) if known else ():
                finder.prefetch_page(canonicalize_name(Requirement(line).name))


class BuildRequirements:
    """Extends a plan with the build requirements of its sdists, per env.

    ``add`` first lays out the build environments of the sdists envs must build
    (``prepare_builds``), then runs every env side by side (``_EnvBuilds``); each
    sdist is read, and its requirement set resolved, as soon as it is known, and the
    sdists a set brings in are read in turn until nothing new appears.  A re-run,
    whose answers all come from the tree state, costs a few round trips.  With
    ``fetch_sdists`` False (dry run) only sdists already on disk are read.
    """

    def __init__(
        self,
        plan: Plan,
        finder: Finder,
        options: ResolveOptions,
        facts: BuildFacts,
        *,
        fetch_sdists: bool = True,
    ) -> None:
        self.plan = plan
        self.finder = finder
        self.options = options
        self.facts = facts
        self.fetch_sdists = fetch_sdists
        self.lock = threading.Lock()  # the plan is shared by the envs' threads
        self.skipped: set[str] = set()

    def add(self, resolutions: list[EnvResolution]) -> int:
        """Extend the plan; return how many sdists were not read (a dry run's not on disk).

        Each resolution's ``build_sdists`` is set to the build requirements its env
        must compile too, for the summary.
        """
        self.prepare_builds(resolutions)
        with ThreadPoolExecutor(max_workers=max(1, len(resolutions))) as envs:
            list(envs.map(lambda r: _EnvBuilds(self, r).run(), resolutions))
        self.plan.problems.extend(dict.fromkeys(self.facts.problems))
        self.facts.problems.clear()
        return len(self.skipped)

    def readable(self, entry: PlannedFile) -> bool:
        return self.fetch_sdists or self.facts.source.here(entry)

    def prepare_builds(self, resolutions: list[EnvResolution]) -> None:
        """The sdists envs must build go first, alone: unpacking one and laying out its
        build environment is hundreds of file writes, each of which waits for the GIL
        behind every busy thread; then its hooks run as processes while the rest is read."""
        builds: dict[tuple[str, Platform], PlannedFile] = {}
        for resolution in resolutions:
            built = self.plan.must_build(resolution.env.name)
            target = Platform.from_markers(resolution.env.markers)
            for entry in self.plan.sdists_for(resolution.env.name):
                if entry.relpath in built and self.readable(entry):
                    builds[(entry.relpath, target)] = entry
        if builds:
            with ThreadPoolExecutor(max_workers=min(8, len(builds))) as pool:
                list(pool.map(lambda item: self.facts.prepare(item[1], item[0][1]), builds.items()))

    def merge(self, env: str, result: EnvResolution | BuildSetFailure) -> list[PlannedFile]:
        """One requirement set's answer into the plan; returns every sdist ``env`` now has
        (not only those new to the plan: one another env brought in first still needs
        reading here, where its build requirements may resolve to other versions)."""
        if isinstance(result, BuildSetFailure):
            with self.lock:
                self.plan.problems.append(result.message())
            return []
        with self.lock:
            added = add_resolution(self.plan, result, top_level=set(), build=True)
            mine = self.plan.sdists_for(env)
        self.facts.source.want(added)
        return mine


SetResult = Union[EnvResolution, BuildSetFailure, None]


class _EnvBuilds:
    """One env's share of the build step: its sdists read and their sets resolved."""

    def __init__(self, step: BuildRequirements, resolution: EnvResolution) -> None:
        self.step = step
        self.resolution = resolution
        self.env = resolution.env
        self.platform = Platform.from_markers(self.env.markers)
        self.done: set[tuple[str, ...]] = set()  # requirement sets resolved (or under way)
        self.seen: set[str] = set()  # sdists read (or under way)
        # For the report: the sdists this env builds by their requirement set, and what
        # each set resolved to (a set is resolved once, whichever sdist brought it).
        self.builds: dict[tuple[str, ...], list[PlannedFile]] = {}
        self.resolved: dict[tuple[str, ...], EnvResolution] = {}
        self.running: set[Future[SetResult]] = set()

    def run(self) -> None:
        step = self.step
        with ThreadPoolExecutor(max_workers=16) as pool:
            with step.lock:
                first = step.plan.sdists_for(self.env.name)
            self.start(pool, first)
            while self.running:
                finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
                for future in finished:
                    self.running.discard(future)
                    result = future.result()
                    if result is not None:
                        self.start(pool, step.merge(self.env.name, result))
        self.resolution.build_sdists = _build_sdists(self.builds, self.resolved)

    def start(self, pool: ThreadPoolExecutor, entries: list[PlannedFile]) -> None:
        """Read each sdist not seen yet.  The sdists the env builds first: their backend
        hook (a process, a build environment) is the slowest step, so it starts while
        the rest is read.  Then the smallest first: reads queue for one worker, and a
        build requirement found early brings its own sdists in early."""
        step = self.step
        with step.lock:
            built = step.plan.must_build(self.env.name)
        for entry in sorted(entries, key=lambda e: (e.relpath not in built, e.file.size or 0)):
            if entry.relpath in self.seen:
                continue
            self.seen.add(entry.relpath)
            if not step.readable(entry):
                with step.lock:
                    step.skipped.add(entry.relpath)
                continue
            # The backend is asked only about the sdists pip on this env really builds
            # (no wheel of that release for it): a hook costs a process and an import of
            # the backend, which for every sdist adds up.
            target = self.platform if entry.relpath in built else None
            self.running.add(pool.submit(self.read_and_resolve, entry, target))

    def read_and_resolve(self, entry: PlannedFile, target: Platform | None) -> SetResult:
        """The sdist's requirements under this env; its set resolved unless empty or done."""
        step = self.step
        reqs = [r for r in step.facts.requires(entry, target) if self.env.evaluate(r.marker)]
        key = tuple(sorted(str(r) for r in reqs))
        with step.lock:
            if reqs and target is not None:
                self.builds.setdefault(key, []).append(entry)
            if not reqs or key in self.done:
                return None
            self.done.add(key)
        for req in reqs:
            step.finder.prefetch_page(canonicalize_name(req.name))
        result = _resolve_set(self.env, entry, reqs, step.finder, step.options)
        if isinstance(result, EnvResolution):
            with step.lock:
                self.resolved[key] = result
        return result


def _build_sdists(
    builds: dict[tuple[str, ...], list[PlannedFile]], resolved: dict[tuple[str, ...], EnvResolution]
) -> list[BuildSdist]:
    """The build requirements an env can only get as sdists, each with the sdists it
    builds that need them: the target must compile those first (maturin before
    pydantic-core)."""
    found: dict[tuple[NormalizedName, Version], tuple[str, set[str]]] = {}
    for key, entries in builds.items():
        result = resolved.get(key)
        if result is None:
            continue  # unresolvable: said in the plan's problems
        for name, reason in result.sdist_only.items():
            slot = found.setdefault((name, result.pins[name].version), (reason, set()))
            slot[1].update(f"{e.project} {e.file.version}" for e in entries)
    return [
        BuildSdist(name, version, reason, tuple(sorted(needed_by)))
        for (name, version), (reason, needed_by) in sorted(found.items())
    ]


def _resolve_set(
    env: Environment,
    entry: PlannedFile,
    reqs: list[Requirement],
    finder: Finder,
    options: ResolveOptions,
) -> EnvResolution | BuildSetFailure:
    """One sdist's build requirements resolved on their own, as pip's isolated build does."""
    roots: dict[str, str] = {
        canonicalize_name(r.name): f"build requirement of {entry.file.filename}" for r in reqs
    }
    try:
        return resolve_env(env, reqs, finder, options, roots)
    except MorganLikeError as exc:
        return BuildSetFailure(env.name, entry.file.filename, str(exc))
