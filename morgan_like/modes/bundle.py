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
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from morgan_like.config.ini import Config, load_config
from morgan_like.config.options import parse_bool
from morgan_like.errors import Interrupted
from morgan_like.fetch.download import DEFAULT_WORKERS
from morgan_like.index.httputil import redact_url
from morgan_like.index.pagecache import PAGES_NAME, PageCache
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop, on_sigint
from morgan_like.modes import serve
from morgan_like.modes.bundle_locks import add_locked, check_resolved, locked_envs
from morgan_like.modes.bundle_replay import (
    forget_replay,
    load_replay,
    page_digests,
    replay_key,
    save_replay,
    unchanged_upstream,
)
from morgan_like.modes.bundle_report import (
    build_rows,
    print_plan,
    print_summary,
    report_builds,
    report_problems,
)
from morgan_like.modes.bundle_resolve import (
    add_all_versions,
    add_local_build_requirements,
    resolve_all,
    roots_of,
)
from morgan_like.modes.bundle_targets import lock_targets
from morgan_like.modes.bundle_views import env_views, report_view_urls
from morgan_like.modes.resolving import ResolveSession, SessionRequest
from morgan_like.output import Reporter
from morgan_like.resolve.candidates import FileFilter
from morgan_like.resolve.plan import Plan, add_resolution
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions
from morgan_like.tree.diff import check_diff_target
from morgan_like.tree.files import scratch_dir, sweep_scratch
from morgan_like.tree.layout import STATE_DIR, package_relpath
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
    prefer_binary: bool | None = None  # None: [mirror] prefer-binary (default true)
    static_metadata_only: bool = False  # never run a backend hook; refuse instead
    # False: a redirect to another host fails its request (--no-cross-host-redirects);
    # None: [mirror] cross-host-redirects, else followed with one warning per host.
    cross_host_redirects: bool | None = None


def write_projects(
    plan: Plan, prune: bool, writer: TreeWriter, failed: set[str], reporter: Reporter
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
        if prune and not incomplete:
            writer.write_project(project, files, replace=True)
            continue
        if prune:
            reporter.warn(f"{project}: downloads failed, so its previous files stay (no prune)")
        merged = {f.filename: f for f in writer.existing_files(project)}
        merged.update({f.filename: f for f in files})
        writer.write_project(project, list(merged.values()))
    if prune:
        for name in writer.existing_projects():
            if name not in planned:
                writer.remove_project(name)


def run_mirror(options: MirrorOptions, reporter: Reporter) -> int:
    """Build or update the bundle; return the process exit code.

    Raises TreeLockedError when another run holds the tree (see ``wait_lock``).
    """
    root = options.index_path
    config = load_config(options.config_path or root / "morgan.ini")
    stop = Stop()  # Ctrl+C: set before the KeyboardInterrupt, watched by every thread
    if options.dry_run:
        try:
            with on_sigint(stop), tempfile.TemporaryDirectory(prefix="morgan-like-dry") as scratch:
                return _run(options, config, reporter, Path(scratch), stop)
        except KeyboardInterrupt:
            raise Interrupted("interrupted (a dry run: nothing was written)") from None
    root.mkdir(parents=True, exist_ok=True)
    try:
        with (
            on_sigint(stop),
            TreeLock(root, "mirror", wait=options.wait_lock, on_wait=reporter.info),
        ):
            sweep_scratch(root)  # what a killed run left: temp files, cached sdists
            try:
                return _run(options, config, reporter, root, stop)
            finally:
                sweep_scratch(root)
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted before anything was fetched: the tree is unchanged"
        ) from None


def _run(
    options: MirrorOptions, config: Config, reporter: Reporter, scratch: Path, stop: Stop
) -> int:
    """The mirror itself; ``scratch``: the tree (locked), or a dry run's private folder.

    Until the tree is written, any failure (a conflict in one env, Ctrl+C) takes back
    every file and folder the downloads added; the writing itself is shielded from
    Ctrl+C, which then ends the run once the tree is whole.
    """
    started = time.monotonic()
    root = options.index_path
    mirror_opts = config.options
    index_url = options.index_url or config.index_url or configured_index_url()
    regex = options.package_type_regex or mirror_opts.get("package-type-regex")
    prefer_binary = config.prefer_binary if options.prefer_binary is None else options.prefer_binary
    ropts = ResolveOptions(
        file_filter=FileFilter(regex) if regex else FileFilter(),
        pre=options.pre,
        prefer_binary=prefer_binary,
        dependency_overrides=config.dependency_overrides,
    )
    workers = options.workers or int(mirror_opts.get("workers", DEFAULT_WORKERS))
    diff_file = options.diff_file or mirror_opts.get("diff-file")
    append_epoch = options.diff_append_epoch or bool(
        parse_bool(mirror_opts.get("diff-append-epoch"))
    )
    if diff_file and not options.dry_run:
        check_diff_target(root, diff_file)  # refused before anything is fetched

    for warning in config.warnings:
        reporter.warn(warning)
    locks = f" and {len(config.locks)} locks" if config.locks else ""
    reporter.info(
        f"Resolving {len(config.requirements)} requirements{locks} for "
        f"{len(config.environments)} envs from {redact_url(index_url)}"
    )
    state = None if options.dry_run else TreeState(root)
    if state is not None and state.load_problem:
        reporter.warn(state.load_problem)
    # Pages kept from the last run are revalidated (304) instead of fetched again.
    pages = None if state is None else PageCache(root / STATE_DIR / PAGES_NAME)
    upstream = Upstream(
        index_url,
        options=mirror_opts,
        pages=pages,
        on_warning=reporter.warn,
        cross_host_redirects=options.cross_host_redirects,
    )
    session = ResolveSession(
        SessionRequest(
            root,
            scratch,
            tuple(config.environments),
            workers,
            options.static_metadata_only,
            dry_run=options.dry_run,
        ),
        upstream,
        state,
        ropts,
        reporter,
        stop,
    )
    finder, downloader = session.finder, session.downloader
    plan = Plan(env_names=[e.name for e in config.environments])
    top_level = {canonicalize_name(r.requirement.name) for r in config.requirements}

    def on_env(results: list[EnvResolution]) -> None:
        for resolution in results:
            session.submit(
                add_resolution(
                    plan, resolution, top_level=top_level, all_wheels=options.mirror_all_wheels
                )
            )

    key = replay_key(
        config,
        (
            index_url,
            regex,
            options.pre,
            prefer_binary,
            options.static_metadata_only,
            options.mirror_all_versions,
            options.mirror_all_wheels,
        ),
    )
    kept = None if state is None else load_replay(root, key)
    resolved: list[EnvResolution] | None = None  # None: a replayed plan (no chains)
    try:
        try:
            if kept is not None and unchanged_upstream(kept, finder):
                # Same config, and every page the last plan was made from is the same.
                reporter.detail("config and upstream pages unchanged: the last plan is used")
                plan, builds, read = kept.plan, kept.builds, list(kept.pages)
            else:
                if state is not None:
                    forget_replay(root)  # what this run learns replaces it, or nothing does
                resolved = _resolve(options, config, reporter, session, plan, on_env)
                if resolved is None:  # a dry run: the plan is printed
                    return 0
                builds, read = build_rows(resolved), finder.page_names()
            assert downloader is not None and state is not None  # not a dry run
            results = session.await_downloads(plan, reporter)
        except BaseException as exc:
            if downloader is not None:
                downloader.abandon()  # the tree as it was: no file, no folder of this run
            if isinstance(exc, KeyboardInterrupt) and downloader is not None:
                raise Interrupted(
                    "interrupted: the files this run fetched were taken back, the tree is as "
                    "it was (run again to finish)"
                ) from None
            raise
        reporter.detail(f"build requirements in place at {time.monotonic() - started:.2f}s")
        report_problems(plan, reporter)
        try:
            with stop.shielded():  # a Ctrl+C now waits until the tree is whole
                # serials: each page the tree's own, moved when it changes (tree/writer.py)
                writer = TreeWriter(root, state, on_problem=reporter.warn, serials=True)
                write_projects(
                    plan, options.prune, writer, {r.relpath for r in results if not r.ok}, reporter
                )
                from morgan_like.config.inputs import carry_inputs
                from morgan_like.tree.layout import INPUTS_DIR

                # The config travels with the tree; an outside one (-c) with the files it read.
                carried = carry_inputs(config, root, INPUTS_DIR)
                done = publish(
                    writer,
                    server=None if options.skip_server_copy else serve.server_source().read_bytes(),
                    config=carried.config,
                    inputs=carried.inputs,
                    diff=DiffRequest(diff_file, append_epoch) if diff_file else None,
                    # A replayed plan is the one the envs/ views, lock files and SBOM
                    # were last written from: they stay as they are.
                    views=None if resolved is None else env_views(plan),
                    targets=lock_targets(config, plan, resolved),  # lock files, SBOM
                    serial_list=True,  # local.json, local.db.serial: a mirror's upstream too
                    synced_serial=writer.published_serial(),
                )
        except KeyboardInterrupt:
            raise Interrupted("interrupted once the tree was written: it is complete") from None
        if done.diff_file is not None:
            reporter.info(
                f"diff-file: {done.diff_file} ({len(done.changed)} changed), "
                f"{done.removed_file} ({len(done.removed)} removed)"
            )
        report_builds(builds, reporter)
        print_summary(plan, results, reporter, time.monotonic() - started, upstream)
        report_view_urls(root, plan.env_names, reporter)
        if any(not r.ok for r in results):
            return 1
        save_replay(root, key, plan, page_digests(finder, read), builds, scratch_dir(root))
        return 0
    finally:
        session.close()
        upstream.close()
        if pages is not None:
            pages.close()
        if state is not None:
            state.close()


def _resolve(
    options: MirrorOptions,
    config: Config,
    reporter: Reporter,
    session: ResolveSession,
    plan: Plan,
    on_env: Callable[[list[EnvResolution]], None],
) -> list[EnvResolution] | None:
    """Fill ``plan``: every env, -a, local build requirements, the sdists' build requirements.

    Returns the main resolutions, or None for a dry run (its plan is printed here).
    """
    started = time.monotonic()
    finder, ropts, downloader = session.finder, session.options, session.downloader
    # The locks' files are looked up first: one upstream no longer has stops the run
    # before any download starts (bundle_locks).
    locked = locked_envs(config, finder, plan.problems)
    roots = roots_of(config)

    def checked(results: list[EnvResolution]) -> None:
        check_resolved(locked, results, roots)  # before this env's downloads start
        on_env(results)

    per_env = resolve_all(config, finder, ropts, reporter, checked)
    reporter.detail(f"resolved in {time.monotonic() - started:.2f}s")
    resolutions = [results[0] for results in per_env]
    session.submit(add_locked(plan, locked))  # before the build requirements are read
    if options.mirror_all_versions:
        add_all_versions(config, resolutions, finder, ropts, plan, reporter)
    local = add_local_build_requirements(config, resolutions, finder, ropts, plan)
    if downloader is None:
        skipped_builds = session.build_requirements(plan, resolutions)
        report_problems(plan, reporter)
        print_plan(plan, reporter)
        report_builds(build_rows(resolutions), reporter)
        if skipped_builds:
            reporter.info(
                f"(dry run: build requirements of {skipped_builds} sdists are read once they are downloaded)"
            )
        return None
    for entry in local:
        downloader.submit(entry.file, entry.relpath)
    # Each sdist's build requirements are read as soon as its download ends, while
    # the rest of the files still arrive; what they add is queued as it is found.
    session.await_downloads(
        plan,
        reporter,
        during=lambda: session.build_requirements(plan, resolutions),
    )
    return resolutions
