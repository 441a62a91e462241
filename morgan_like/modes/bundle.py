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
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from morgan_like.config.ini import Config, load_config
from morgan_like.errors import Interrupted
from morgan_like.index.httputil import redact_url
from morgan_like.index.pagecache import PAGES_NAME, PageCache
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop, Stopped, on_sigint
from morgan_like.modes import serve
from morgan_like.modes.bundle_replay import (
    PageCheck,
    Replay,
    forget_replay,
    load_replay,
    page_digests,
    publish_key,
    save_replay,
)
from morgan_like.modes.bundle_report import (
    BuildRows,
    build_rows,
    print_plan,
    print_summary,
    report_builds,
    report_problems,
)
from morgan_like.modes.bundle_settings import BundleSettings, MirrorOptions
from morgan_like.output import Reporter
from morgan_like.resolve.plan import Plan
from morgan_like.tree.files import scratch_dir, sweep_scratch
from morgan_like.tree.layout import STATE_DIR
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.state import TreeState

if TYPE_CHECKING:
    # A no-op re-run (a replayed plan, nothing to write) never imports the resolver,
    # the hooks, the writer or publish: the modules for those steps are imported
    # where they are used (tests/modes/test_bundle_startup.py).
    from morgan_like.fetch.download import DownloadResult
    from morgan_like.resolve.resolver import EnvResolution
    from morgan_like.tree.publish import Published


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
    """The mirror itself; ``scratch``: the tree (locked), or a dry run's private folder."""
    kind = DryBundleRun if options.dry_run else TreeBundleRun
    with kind(options, config, reporter, scratch, stop) as run:
        return run.run()


@dataclass(frozen=True)
class Planned:
    """A run's plan in place: its resolutions (None: a replayed plan, which has no
    chains), the build rows of the summary, the pages it was made from, each file's
    download result, and for a replayed plan the publish_key its last publish left."""

    resolved: list[EnvResolution] | None
    builds: BuildRows
    read: list[str]
    results: list[DownloadResult]
    published: str | None = None


class BundleRun:
    """One ``mirror`` run: the flags settled over the config once, every options record
    made whole, and the resources the run owns (tree state and page cache when it
    writes, upstream, the resolving session) made in order and closed in one ExitStack.

    Its steps are methods: ``resolve`` fills the plan (each env's files queued as it
    resolves), the subclass's ``run`` goes on: a dry run (``DryBundleRun``) prints the
    plan, a run into the tree (``TreeBundleRun``) replays or resolves, downloads,
    writes and reports.
    """

    dry_run: bool

    def __init__(
        self, options: MirrorOptions, config: Config, reporter: Reporter, scratch: Path, stop: Stop
    ) -> None:
        self.started = time.monotonic()
        self.options, self.config, self.reporter, self.stop = options, config, reporter, stop
        self.root = root = options.index_path
        self.settings = settings = BundleSettings.settle(options, config)
        if settings.diff is not None and not self.dry_run:
            from morgan_like.tree.diff import check_diff_target

            check_diff_target(root, settings.diff.path)  # refused before anything is fetched
        for warning in config.warnings:
            reporter.warn(warning)
        locks = f" and {len(config.locks)} locks" if config.locks else ""
        reporter.info(
            f"Resolving {len(config.requirements)} requirements{locks} for "
            f"{len(config.environments)} envs from {redact_url(settings.index_url)}"
        )
        self._stack = ExitStack()
        try:
            state, pages = self._open_tree()
            self.upstream = self._stack.enter_context(
                Upstream(
                    settings.index_url,
                    options=config.options,
                    pages=pages,
                    on_warning=reporter.warn,
                    cross_host_redirects=options.cross_host_redirects,
                )
            )
            self._upstream_ready()
            from morgan_like.modes.files_ahead import locked_pins
            from morgan_like.modes.resolving import ResolveSession, SessionRequest

            request = SessionRequest(
                root,
                scratch,
                tuple(config.environments),
                settings.workers,
                options.static_metadata_only,
                dry_run=self.dry_run,
                requirements=(
                    *(line.requirement for line in config.requirements),
                    *locked_pins(config.locks),
                ),
            )
            self.session = self._stack.enter_context(
                ResolveSession(request, self.upstream, state, settings.policy, reporter, stop)
            )
        except BaseException:
            self._stack.close()
            raise
        self.finder = self.session.finder
        self.plan = Plan(env_names=[e.name for e in config.environments])
        self.top_level = {canonicalize_name(r.requirement.name) for r in config.requirements}

    def _open_tree(self) -> tuple[TreeState | None, PageCache | None]:
        """The tree state and the page cache, for a run that writes the tree."""
        return None, None

    def _upstream_ready(self) -> None:
        """The upstream exists, the resolving session not yet: a run that may replay its
        last plan sends the page check now (TreeBundleRun)."""

    def __enter__(self) -> BundleRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self) -> int:
        raise NotImplementedError

    def resolve(self) -> list[EnvResolution]:
        """Fill the plan with every env, the locks, -a, the local projects' build
        requirements; each env's files are queued for download as soon as it resolves.
        Returns the main resolutions."""
        from morgan_like.modes.bundle_locks import add_locked, locked_envs
        from morgan_like.modes.bundle_resolve import (
            QueuedEnvs,
            add_all_versions,
            add_local_build_requirements,
            resolve_all,
            roots_of,
        )

        started = time.monotonic()
        self.session.resolving()
        config, finder, ropts, plan = self.config, self.finder, self.session.options, self.plan
        # The locks' files are looked up first: one upstream no longer has stops the run
        # before any download starts (bundle_locks).
        locked = locked_envs(config, finder, plan.problems)
        queued = QueuedEnvs(
            self.session,
            plan,
            locked,
            roots_of(config),
            self.top_level,
            self.options.mirror_all_wheels,
        )
        per_env = resolve_all(config, finder, ropts, self.reporter, queued)
        self.reporter.detail(f"resolved in {time.monotonic() - started:.2f}s")
        resolutions = [results[0] for results in per_env]
        self.session.submit(add_locked(plan, locked))  # before the build requirements are read
        if self.options.mirror_all_versions:
            add_all_versions(config, resolutions, finder, ropts, plan, self.reporter)
        local = add_local_build_requirements(config, resolutions, finder, ropts, plan)
        self.session.sdists.want(local)
        return resolutions


class DryBundleRun(BundleRun):
    """A dry run: resolves and prints the plan; no tree state, nothing downloaded, the
    build requirements read only of the sdists already on disk."""

    dry_run = True

    def run(self) -> int:
        resolutions = self.resolve()
        plan, reporter = self.plan, self.reporter
        skipped_builds = self.session.build_requirements(plan, resolutions)
        report_problems(plan, reporter)
        print_plan(plan, reporter)
        report_builds(build_rows(resolutions), reporter)
        if skipped_builds:
            reporter.info(
                f"(dry run: build requirements of {skipped_builds} sdists are read once they are downloaded)"
            )
        return 0


class TreeBundleRun(BundleRun):
    """A run into the (locked) tree: the last plan replayed when nothing it read moved,
    else resolved; the files downloaded; the tree written and published.

    Until the tree is written, any failure (a conflict in one env, Ctrl+C) takes back
    every file and folder the downloads added; the writing itself is shielded from
    Ctrl+C, which then ends the run once the tree is whole.
    """

    dry_run = False
    state: TreeState
    published: str | None = None  # publish_key of what this run's tree holds
    kept: Replay | None = None  # the last run's plan, if made with this run's config
    check: PageCheck | None = None  # its pages asked for again

    def _open_tree(self) -> tuple[TreeState | None, PageCache | None]:
        self.state = self._stack.enter_context(TreeState(self.root))
        if self.state.load_problem:
            self.reporter.warn(self.state.load_problem)
        # Pages kept from the last run are revalidated (304) instead of fetched again.
        pages = PageCache(self.root / STATE_DIR / PAGES_NAME)
        self._stack.callback(pages.close)
        return self.state, pages

    def _upstream_ready(self) -> None:
        """Every page the kept plan read is asked for again before the session is built:
        the answers arrive while the run imports and builds it."""
        self.kept = load_replay(self.root, self.settings.replay_key)
        if self.kept is not None:
            self.check = PageCheck(self.kept, self.upstream)
            self._stack.callback(self.check.close)

    def run(self) -> int:
        try:
            planned = self.plan_and_download()
        except BaseException as exc:
            self.session.abandon()  # the tree as it was: no file, no folder of this run
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(
                    "interrupted: the files this run fetched were taken back, the tree is as "
                    "it was (run again to finish)"
                ) from None
            raise
        self.reporter.detail(
            f"build requirements in place at {time.monotonic() - self.started:.2f}s"
        )
        report_problems(self.plan, self.reporter)
        try:
            with self.stop.shielded():  # a Ctrl+C now waits until the tree is whole
                done = self.write(planned)
        except KeyboardInterrupt:
            raise Interrupted("interrupted once the tree was written: it is complete") from None
        return self.report(planned, done)

    def plan_and_download(self) -> Planned:
        """The plan (the last one, when the config and every page it was made from are the
        same; else resolved), and every file of it downloaded."""
        kept = self.kept
        if kept is not None and self.check is not None and self.check.unchanged(self.finder):
            # Same config, and every page the last plan was made from is the same.
            self.reporter.detail("config and upstream pages unchanged: the last plan is used")
            self.plan = kept.plan
            results = self.session.await_downloads(self.plan, self.reporter)
            return Planned(None, kept.builds, list(kept.pages), results, kept.published)
        forget_replay(self.root)  # what this run learns replaces it, or nothing does
        resolved = self.resolve()
        threading.Thread(target=self._ahead_of_the_end, name="end-ahead", daemon=True).start()
        # Each sdist's build requirements are read as soon as its download ends, while
        # the rest of the files still arrive; what they add is queued as it is found.
        self.session.await_downloads(
            self.plan,
            self.reporter,
            during=lambda: self.session.build_requirements(self.plan, resolved),
        )
        builds, read = build_rows(resolved), self.finder.page_names()
        results = self.session.await_downloads(self.plan, self.reporter)
        return Planned(resolved, builds, read, results)

    def _ahead_of_the_end(self) -> None:
        """While the files arrive, what the end of a resolved run does anyway: import the
        SBOM's library (cyclonedx, ~0.1 s) and digest the pages read so far for the kept
        plan (save_replay), instead of after the last download.  Whatever fails here is
        done (and said) again at the end."""
        try:
            import morgan_like.tree.sbom  # noqa: F401

            page_digests(self.finder, self.finder.page_names())
        except (Exception, Stopped):  # a head start only; a Ctrl+C is the main thread's
            pass

    def write(self, planned: Planned) -> Published | None:
        """Each project's pages, then publish: root pages, env views, locks, SBOM, the
        server, the config (and what it read), manifest, state, diff-file.  Nothing at
        all (None) for a replayed plan whose files were all in place when the tree, the
        config and the server are as its last publish left them (bundle_replay.publish_key)."""
        from morgan_like.config.inputs import carry_inputs
        from morgan_like.tree.layout import INPUTS_DIR

        options, plan = self.options, self.plan
        # The config travels with the tree; an outside one (-c) with the files it read.
        carried = carry_inputs(self.config, self.root, INPUTS_DIR)
        server = None if options.skip_server_copy else serve.server_source().read_bytes()
        unchanged = planned.resolved is None and self.settings.diff is None
        unchanged = unchanged and all(r.ok and r.skipped for r in planned.results)

        def key() -> str | None:
            return publish_key(self.state, options.prune, carried.config, carried.inputs, server)

        if unchanged and planned.published is not None and key() == planned.published:
            self.published = planned.published
            self.reporter.detail("nothing to write: the tree is as the last run left it")
            return None
        from morgan_like.modes.bundle_pages import write_projects
        from morgan_like.modes.bundle_targets import lock_targets
        from morgan_like.modes.bundle_views import env_views
        from morgan_like.tree.licences import note_sdists
        from morgan_like.tree.publish import publish
        from morgan_like.tree.writer import TreeWriter

        # serials: each page the tree's own, moved when it changes (tree/writer.py)
        writer = TreeWriter(self.root, self.state, on_problem=self.reporter.warn, serials=True)
        failed = {r.relpath for r in planned.results if not r.ok}
        write_projects(plan, options.prune, writer, failed, self.reporter)
        # What the run read of its sdists gives the SBOM their licences: none is read again.
        note_sdists(self.state, self.session.sdists_read(plan))
        done = publish(
            writer,
            server=server,
            config=carried.config,
            inputs=carried.inputs,
            diff=self.settings.diff,
            # A replayed plan is the one the envs/ views, lock files and SBOM
            # were last written from: they stay as they are.
            views=None if planned.resolved is None else env_views(plan),
            targets=lock_targets(self.config, plan, planned.resolved),  # lock files, SBOM
            serial_list=True,  # local.json, local.db.serial: a mirror's upstream too
            synced_serial=writer.published_serial(),
        )
        self.published = key()
        return done

    def report(self, planned: Planned, done: Published | None) -> int:
        """The summary; the plan is kept for a replay only when every file arrived."""
        from morgan_like.modes.bundle_views import report_view_urls

        reporter, plan, results = self.reporter, self.plan, planned.results
        if done is not None and done.diff_file is not None:
            reporter.info(
                f"diff-file: {done.diff_file} ({len(done.changed)} changed), "
                f"{done.removed_file} ({len(done.removed)} removed)"
            )
        report_builds(planned.builds, reporter)
        print_summary(plan, results, reporter, time.monotonic() - self.started, self.upstream)
        report_view_urls(self.root, plan.env_names, reporter)
        if any(not r.ok for r in results):
            return 1
        save_replay(
            self.root,
            self.settings.replay_key,
            plan,
            page_digests(self.finder, planned.read),
            planned.builds,
            scratch_dir(self.root),
            self.published,
        )
        return 0
