"""The ``mirror`` command: config -> resolve -> plan -> download -> write the tree.

A bad config stops the run before any request.  Each env's files start
downloading as soon as that env has resolved; if another env then fails, the
files this run added are taken back, so the tree stays as it was.  The indexes
are written last and list only files that are in place; a failed file is
reported by name and makes the run exit non-zero without hiding the rest.

A run holds the tree lock (``tree.lock``) from start to end, sweeps the scratch
folder a killed run may have left, and sweeps it again when done.  A dry run
writes nothing to the tree: no lock, and its scratch lives in a private folder.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from morgan_like.config.ini import Config, load_config
from morgan_like.config.options import parse_bool
from morgan_like.dists.links import RemoteFile
from morgan_like.errors import MorganLikeError, ResolutionError
from morgan_like.fetch.download import DEFAULT_WORKERS, Downloader, DownloadResult, SdistCache
from morgan_like.index.finder import Finder
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.index.upstream import Upstream
from morgan_like.modes import serve
from morgan_like.output import Reporter, human_size
from morgan_like.resolve.builddeps import add_build_requirements
from morgan_like.resolve.candidates import (
    FileFilter,
    group_by_version,
    likely_metadata_files,
    usable_files,
)
from morgan_like.resolve.plan import Plan, add_resolution
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions, resolve_env
from morgan_like.targets.environments import Environment
from morgan_like.tree.files import sweep_scratch
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.publish import DiffRequest, publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter


@dataclass
class MirrorOptions:
    index_path: Path
    config_path: Path | None = None
    index_url: str | None = None
    mirror_all_versions: bool = False
    mirror_all_wheels: bool = False
    package_type_regex: str | None = None
    pre: bool = False
    dry_run: bool = False
    workers: int | None = None
    diff_file: str | None = None
    diff_append_epoch: bool = False
    prune: bool = False
    skip_server_copy: bool = False
    wait_lock: float | None = None  # seconds to wait for another run's tree lock (None: refuse)


def _roots(config: Config) -> dict[str, str]:
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
    results = [resolve_env(env, primary, finder, ropts, roots)]
    results.extend(resolve_env(env, [req], finder, ropts, roots) for req in later)
    return results


def _resolve_all(
    config: Config,
    finder: Finder,
    ropts: ResolveOptions,
    reporter: Reporter,
    on_env: Callable[[list[EnvResolution]], None],
) -> list[list[EnvResolution]]:
    """Resolve every env concurrently; report every failing env, not just the first.

    ``on_env`` sees each env's resolutions (its main one, then one per extra
    requirement line) as soon as that env is done, so its downloads can start.
    """
    roots = _roots(config)
    errors: list[str] = []
    results: dict[str, list[EnvResolution]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, len(config.environments)))
    with pool, reporter.counting("Resolving", total=len(config.environments)) as counter:
        futures = {
            pool.submit(_resolve_one, env, config.requirements_for(env), finder, ropts, roots): env
            for env in config.environments
        }
        for future in as_completed(futures):
            env = futures[future]
            try:
                results[env.name] = future.result()
            except MorganLikeError as exc:
                errors.append(str(exc))
            else:
                reporter.detail(f"resolved env {env.name}")
                if not errors:
                    on_env(results[env.name])
            counter.advance()
    if errors:
        raise ResolutionError("\n".join(errors))
    return [results[env.name] for env in config.environments]


def _all_versions(
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
                if version == pinned:
                    continue
                extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
                pin = Requirement(f"{req.name}{extras}=={version}")
                try:
                    extra = resolve_env(env, [pin], finder, ropts, {name: f"-a {pin}"})
                except MorganLikeError as exc:
                    reporter.warn(f"skipping {pin} for env {env.name}: {exc}")
                    continue
                add_resolution(plan, extra, top_level={name})


def _print_plan(plan: Plan, reporter: Reporter) -> None:
    for env in plan.env_names:
        entries = plan.for_env(env)
        rows = [
            (
                str(e.project),
                str(e.file.version),
                e.file.filename + (" (build)" if e.build else ""),
                human_size(e.file.size) if e.file.size is not None else "?",
            )
            for e in entries
        ]
        reporter.table(f"env {env}", ("project", "version", "file", "size"), rows)
        size = sum(e.file.size or 0 for e in entries)
        reporter.info(
            f"env {env}: {len({e.project for e in entries})} projects, {len(entries)} files, {human_size(size)}"
        )
    reporter.info(
        f"total: {len(plan.by_project())} projects, {len(plan.files)} files, {human_size(plan.total_size)}"
    )


def _download_log(reporter: Reporter) -> Callable[[DownloadResult], None]:
    def done(result: DownloadResult) -> None:
        if result.skipped:
            reporter.detail(f"present {result.relpath}")
        elif result.ok:
            reporter.detail(f"fetched {result.relpath} ({human_size(result.size)})")
        else:
            reporter.error(result.error or result.relpath)

    return done


def _await_downloads(
    plan: Plan, downloader: Downloader, reporter: Reporter
) -> list[DownloadResult]:
    """Queue whatever the plan has that is not queued yet, then wait, with a progress bar."""
    for entry in plan.files.values():
        downloader.submit(entry.file, entry.relpath)
    with reporter.transferring("Downloading", plan.total_size) as counter:
        downloader.attach(counter.advance)
        return downloader.results()


def _write_projects(
    plan: Plan, options: MirrorOptions, writer: TreeWriter, failed: set[str], reporter: Reporter
) -> None:
    """Each planned project's page; with ``--prune`` each page lists exactly the plan, and
    the projects the plan no longer has leave the tree (the writer deletes nothing before
    publish, where they leave the root pages before losing their pages and files).

    A project with a failed download keeps what its page listed next to what arrived,
    even with ``--prune``: a failed download never makes a project (or a version) vanish.
    """
    planned = plan.by_project()
    for project, files in sorted(planned.items()):
        incomplete = any(package_relpath(project, f.filename) in failed for f in files)
        if options.prune and not incomplete:
            writer.write_project(project, files, replace=True)
            continue
        if options.prune:
            reporter.warn(f"{project}: downloads failed, so its previous files stay (no prune)")
        merged = {f.filename: f for f in writer.existing_files(project)}
        merged.update({f.filename: f for f in files})
        writer.write_project(project, list(merged.values()))
    if options.prune:
        for name in writer.existing_projects():
            if name not in planned:
                writer.remove_project(name)


def _summary(
    plan: Plan,
    results: list[DownloadResult],
    reporter: Reporter,
    elapsed: float,
    upstream: Upstream,
) -> None:
    failed = {r.relpath for r in results if not r.ok}
    rows = []
    for env in plan.env_names:
        entries = [e for e in plan.for_env(env) if e.relpath not in failed]
        rows.append(
            (
                env,
                str(len({e.project for e in entries})),
                str(len(entries)),
                human_size(sum(e.file.size or 0 for e in entries)),
            )
        )
    reporter.table("Bundle", ("env", "projects", "files", "size"), rows)
    fetched = sum(r.size for r in results if r.ok and not r.skipped)
    reporter.info(
        f"{sum(1 for r in results if r.ok and not r.skipped)} files fetched ({human_size(fetched)}), "
        f"{sum(1 for r in results if r.skipped)} already present, {len(failed)} failed; "
        f"{human_size(upstream.bytes_fetched)} from upstream in {elapsed:.1f}s"
    )


def run_mirror(options: MirrorOptions, reporter: Reporter) -> int:
    """Build or update the bundle; return the process exit code.

    Raises TreeLockedError when another run holds the tree (see ``wait_lock``).
    """
    root = options.index_path
    config = load_config(options.config_path or root / "morgan.ini")
    if options.dry_run:
        with tempfile.TemporaryDirectory(prefix="morgan-like-dry-run-") as scratch:
            return _run(options, config, reporter, Path(scratch))
    root.mkdir(parents=True, exist_ok=True)
    with TreeLock(root, "mirror", wait=options.wait_lock, on_wait=reporter.info):
        sweep_scratch(root)  # what a killed run left: temp files, cached sdists
        try:
            return _run(options, config, reporter, root)
        finally:
            sweep_scratch(root)


def _run(options: MirrorOptions, config: Config, reporter: Reporter, scratch: Path) -> int:
    """The mirror itself; ``scratch``: the tree (locked), or a dry run's private folder."""
    started = time.monotonic()
    root = options.index_path
    mirror_opts = config.options
    index_url = options.index_url or config.index_url or configured_index_url()
    regex = options.package_type_regex or mirror_opts.get("package-type-regex")
    ropts = ResolveOptions(
        file_filter=FileFilter(regex) if regex else FileFilter(), pre=options.pre
    )
    workers = options.workers or int(mirror_opts.get("workers", DEFAULT_WORKERS))
    diff_file = options.diff_file or mirror_opts.get("diff-file")
    append_epoch = options.diff_append_epoch or bool(
        parse_bool(mirror_opts.get("diff-append-epoch"))
    )

    reporter.info(
        f"Resolving {len(config.requirements)} requirements for {len(config.environments)} envs from {index_url}"
    )
    upstream = Upstream(index_url, options=mirror_opts)
    cache = SdistCache(upstream, scratch)
    envs = config.environments
    finder = Finder(
        upstream,
        lambda f: cache.get(f, existing=_in_tree(root, f)),
        workers=max(workers, 16),
        lookahead=lambda page: likely_metadata_files(page.files, envs, ropts.file_filter),
        follow=lambda req: any(env.evaluate(req.marker) for env in envs),
        on_problem=reporter.warn,
        sdists=cache.sdists,
    )
    plan = Plan(env_names=[e.name for e in config.environments])
    top_level = {canonicalize_name(r.requirement.name) for r in config.requirements}
    state = None if options.dry_run else TreeState(root)
    if state is not None and state.load_problem:
        reporter.warn(state.load_problem)
    downloader = None
    if state is not None:
        downloader = Downloader(
            upstream, root, state, cache=cache, workers=workers, on_done=_download_log(reporter)
        )

    def on_env(results: list[EnvResolution]) -> None:
        for resolution in results:
            added = add_resolution(
                plan, resolution, top_level=top_level, all_wheels=options.mirror_all_wheels
            )
            if downloader is not None:
                for entry in added:
                    downloader.submit(entry.file, entry.relpath)

    try:
        try:
            per_env = _resolve_all(config, finder, ropts, reporter, on_env)
        except BaseException:
            if downloader:
                downloader.abandon()
            raise
        reporter.detail(f"resolved in {time.monotonic() - started:.2f}s")
        resolutions = [results[0] for results in per_env]
        if options.mirror_all_versions:
            _all_versions(config, resolutions, finder, ropts, plan, reporter)
        if downloader is None or state is None:
            skipped_builds = add_build_requirements(
                plan, resolutions, finder, ropts, cache, root, fetch_sdists=False
            )
            _report_problems(plan, reporter)
            _print_plan(plan, reporter)
            if skipped_builds:
                reporter.info(
                    f"(dry run: build requirements of {skipped_builds} sdists are read once they are downloaded)"
                )
            return 0
        # The sdists whose build requirements we read arrive with the rest.
        results = _await_downloads(plan, downloader, reporter)
        reporter.detail(f"downloaded at {time.monotonic() - started:.2f}s")
        add_build_requirements(plan, resolutions, finder, ropts, cache, root)
        results = _await_downloads(plan, downloader, reporter)
        reporter.detail(f"build requirements in place at {time.monotonic() - started:.2f}s")
        _report_problems(plan, reporter)
        writer = TreeWriter(root, state, on_problem=reporter.warn)
        _write_projects(plan, options, writer, {r.relpath for r in results if not r.ok}, reporter)
        done = publish(
            writer,
            server=None if options.skip_server_copy else serve.server_source().read_bytes(),
            config=config.path.read_bytes(),  # the config travels with the tree
            diff=DiffRequest(diff_file, append_epoch) if diff_file else None,
        )
        if done.diff_file is not None:
            reporter.info(
                f"diff-file: {done.diff_file} ({len(done.changed)} changed), "
                f"{done.removed_file} ({len(done.removed)} removed)"
            )
        _summary(plan, results, reporter, time.monotonic() - started, upstream)
        return 1 if any(not r.ok for r in results) else 0
    finally:
        if downloader:
            downloader.close()
        finder.close()
        upstream.close()
        if state is not None:
            state.close()


def _report_problems(plan: Plan, reporter: Reporter) -> None:
    for problem in plan.problems:
        reporter.warn(problem)


def _in_tree(root: Path, file: RemoteFile) -> Path | None:
    """A file a previous run already placed in the tree is read there, not fetched again."""
    if file.project is None:
        return None
    return root / package_relpath(file.project, file.filename)
