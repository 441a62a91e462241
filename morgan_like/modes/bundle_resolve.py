"""Bundle mode's resolution: every env of the config, concurrently, with its own options.

Each env gets the config's constraints and ``--hash`` pins as they apply under
its markers.  When envs fail, an error that is the same in several envs is
printed once, naming them, and a project that does not exist upstream gets
the closest existing names.
"""

from __future__ import annotations

import difflib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Protocol

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from morgan_like.config.ini import Config
from morgan_like.errors import (
    MissingWheel,
    MorganLikeError,
    NoWheelError,
    ProjectNotFound,
    ResolutionError,
)
from morgan_like.index.finder import Finder
from morgan_like.modes.bundle_locks import LockedEnv, check_resolved
from morgan_like.modes.resolving import ResolveSession
from morgan_like.output import Reporter
from morgan_like.resolve.candidates import group_by_version, usable_files
from morgan_like.resolve.plan import Plan, PlannedFile, add_resolution
from morgan_like.resolve.report import EnvResolutionError, env_label
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions, resolve_env
from morgan_like.targets.environments import Environment


class ResolvedEnvs(Protocol):
    """Where ``resolve_all`` hands each env the moment it resolves, while the others
    still resolve: the run puts its files in the plan and starts their downloads."""

    def resolved(self, results: list[EnvResolution]) -> None:
        """One env's resolutions: its main one, then one per extra requirement line."""


@dataclass(frozen=True)
class QueuedEnvs:
    """Each env, as it resolves, into the plan with its files queued for download
    (a ResolvedEnvs), once its pins are checked against the locks."""

    session: ResolveSession
    plan: Plan
    locked: list[LockedEnv]
    roots: dict[str, str]
    top_level: set[NormalizedName]
    all_wheels: bool

    def resolved(self, results: list[EnvResolution]) -> None:
        check_resolved(self.locked, results, self.roots)  # before this env's downloads start
        for resolution in results:
            self.session.submit(
                add_resolution(
                    self.plan, resolution, top_level=self.top_level, all_wheels=self.all_wheels
                )
            )


def env_options(base: ResolveOptions, config: Config, env: Environment) -> ResolveOptions:
    """``base`` with the constraints and hashes that hold under ``env``'s markers."""
    return replace(base, constraints=config.constraints_for(env), hashes=config.hashes_for(env))


def roots_of(config: Config) -> dict[str, str]:
    return {canonicalize_name(line.requirement.name): line.source for line in config.requirements}


def _split_lines(requirements: list[Requirement]) -> tuple[list[Requirement], list[Requirement]]:
    """Morgan reads each line of a multi-line value as its own request: the first line of
    each project resolves with the rest of the config, later lines each resolve alone."""
    primary: dict[str, Requirement] = {}
    later: list[Requirement] = []
    for req in requirements:
        name = canonicalize_name(req.name)
        if name in primary:
            later.append(req)
        else:
            primary[name] = req
    return list(primary.values()), later


def _resolve_one(
    env: Environment,
    requirements: list[Requirement],
    finder: Finder,
    ropts: ResolveOptions,
    roots: dict[str, str],
) -> list[EnvResolution]:
    primary, later = _split_lines(requirements)
    try:
        results = [resolve_env(env, primary, finder, ropts, roots)]
        results.extend(resolve_env(env, [req], finder, ropts, roots) for req in later)
    except ResolutionError:
        if env.binary_only:
            _missing_wheels(env, requirements, finder, ropts, roots)
        raise
    return results


def _missing_wheels(
    env: Environment,
    requirements: list[Requirement],
    finder: Finder,
    ropts: ResolveOptions,
    roots: dict[str, str],
) -> None:
    """A binary-only env failed: resolve again with sdists allowed, and when that works,
    raise NoWheelError listing every project it took as an sdist (resolvelib stops at the
    first one).  Returns when sdists do not help either: the first error stands."""
    relaxed = replace(env, binary_only=False)
    missing: dict[str, MissingWheel] = {}
    primary, later = _split_lines(requirements)
    try:
        found = [resolve_env(relaxed, primary, finder, ropts, roots)]
        found.extend(resolve_env(relaxed, [req], finder, ropts, roots) for req in later)
    except MorganLikeError:
        return
    for resolution in found:
        for name, reason in resolution.sdist_only.items():
            version = str(resolution.pins[name].version)
            missing.setdefault(f"{name} {version}", MissingWheel(name, version, reason))
    if missing:
        raise NoWheelError(env.name, tuple(missing[key] for key in sorted(missing)))


def resolve_all(
    config: Config,
    finder: Finder,
    ropts: ResolveOptions,
    reporter: Reporter,
    done: ResolvedEnvs,
) -> list[list[EnvResolution]]:
    """Resolve every env concurrently; report every failing env, not just the first.

    ``done`` is handed each env as soon as it resolves, until one fails.
    """
    roots = roots_of(config)
    errors: list[tuple[Environment, MorganLikeError]] = []
    results: dict[str, list[EnvResolution]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, len(config.environments)))
    with pool, reporter.counting("Resolving", total=len(config.environments)) as counter:
        futures = {
            pool.submit(
                _resolve_one,
                env,
                config.requirements_for(env),
                finder,
                env_options(ropts, config, env),
                roots,
            ): env
            for env in config.environments
        }
        for future in as_completed(futures):
            env = futures[future]
            try:
                results[env.name] = future.result()
            except MorganLikeError as exc:
                errors.append((env, exc))
            else:
                reporter.detail(f"resolved env {env.name}")
                if not errors:
                    done.resolved(results[env.name])
            counter.advance()
    if errors:
        order = {env.name: i for i, env in enumerate(config.environments)}
        errors.sort(key=lambda item: order[item[0].name])
        raise ResolutionError(merge_env_errors(errors, finder))
    return [results[env.name] for env in config.environments]


def add_all_versions(
    config: Config,
    resolutions: list[EnvResolution],
    finder: Finder,
    ropts: ResolveOptions,
    plan: Plan,
    reporter: Reporter,
) -> None:
    """``-a``: every matching version of the top-level requirements, each with its own closure."""
    for resolution in resolutions:
        env = resolution.env
        for req in config.requirements_for(env):
            name = canonicalize_name(req.name)
            page = finder.page(name)
            versions = group_by_version(usable_files(page.files, env, ropts.file_filter))
            pinned = resolution.pins[name].version if name in resolution.pins else None
            matching = req.specifier.filter(
                [v for v, files in versions.items() if any(not f.is_yanked for f in files)],
                prereleases=True if ropts.pre else None,
            )
            for version in sorted(matching, reverse=True):
                if version == pinned or (
                    env.binary_only and not any(f.is_wheel for f in versions[version])
                ):
                    continue
                extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
                pin = Requirement(f"{req.name}{extras}=={version}")
                try:
                    extra = resolve_env(
                        env, [pin], finder, env_options(ropts, config, env), {name: f"-a {pin}"}
                    )
                except MorganLikeError as exc:
                    reporter.warn(f"skipping {pin} for env {env.name}: {exc}")
                    continue
                add_resolution(plan, extra, top_level={name})


def suggest(finder: Finder, name: str) -> list[str]:
    """The existing project names closest to ``name`` (fetched only when one is missing)."""
    try:
        names = finder.upstream.project_names()
    except MorganLikeError:
        return []
    wanted = canonicalize_name(name)
    by_norm: dict[str, str] = {canonicalize_name(n): n for n in names}
    return [by_norm[n] for n in difflib.get_close_matches(wanted, list(by_norm), n=3, cutoff=0.75)]


def merge_env_errors(errors: list[tuple[Environment, MorganLikeError]], finder: Finder) -> str:
    """One message per distinct error, naming every env it happened in: errors are
    grouped by what they say apart from where (an EnvResolutionError's body), then each
    group is rendered once."""
    grouped: dict[str, list[Environment]] = {}
    suggestions: dict[str, str] = {}
    for env, exc in errors:
        said = exc.body if isinstance(exc, EnvResolutionError) else str(exc)
        if isinstance(exc, ProjectNotFound) and said not in suggestions:
            close = suggest(finder, exc.project)
            suggestions[said] = f"\n  did you mean: {', '.join(close)}?" if close else ""
        grouped.setdefault(said, []).append(env)
    messages = []
    for said, envs in grouped.items():
        if len(envs) == 1:
            where = env_label(envs[0])
        else:
            where = "envs " + ", ".join(f"'{e.name}'" for e in envs)
        messages.append(f"{where}: {said}{suggestions.get(said, '')}")
    return "\n".join(messages)


def add_local_build_requirements(
    config: Config,
    resolutions: list[EnvResolution],
    finder: Finder,
    ropts: ResolveOptions,
    plan: Plan,
) -> list[PlannedFile]:
    """The listed local projects' ``[build-system] requires``, resolved per env on their own
    (as pip's isolated build does), so ``pip install ./project`` builds offline."""
    added: list[PlannedFile] = []
    for resolution in resolutions:
        env = resolution.env
        reqs = config.build_requirements_for(env)
        if not reqs:
            continue
        roots: dict[str, str] = {
            canonicalize_name(r.name): "the local project's [build-system]" for r in reqs
        }
        try:
            extra = resolve_env(env, reqs, finder, env_options(ropts, config, env), roots)
        except MorganLikeError as exc:
            plan.problems.append(
                f"env {env.name}: cannot bundle the local project's build requirements: {exc}"
            )
            continue
        added += add_resolution(plan, extra, top_level=set(), build=True)
    return added
