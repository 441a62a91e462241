"""A curated slice: ``sync`` of an allowlist with its dependencies, per env.

For each allowlisted entry (``django ~= 4.2``, ``fastapi[standard]``) the kept
releases are chosen from its page (the specifier, the prerelease rule, the file
filters, ``keep-latest``: modes/sync_plan.FileRules.releases).  Each kept release
V is then resolved alone for each env, ``name[extras]==V``, by the bundle
resolver (binary first, the env's tags and Python), and the slice is the union
of what those closures pick plus the build requirements of the sdists each env
must build (resolve/builddeps.py).  The tree is written like a bundle's: the
union at ``simple/``, one view per env at ``envs/<env>/simple/`` listing what that
env's closures picked, so ``pip install "name[extras]==V"`` against an env's
view finds every file it needs.

Staying current (modes/slice_state.py): a closure remembers the pages it read;
a sync re-resolves only the closures that read a project whose serial moved,
and re-reads only the allowlisted pages that moved (a new release may push the
oldest out under keep-latest).  A no-op sync reads the serial list and stops.
Whatever no kept closure picks any more leaves the tree at publish, behind the
deletion guard; a file two closures share stays while either lists it.  A
closure that fails to resolve is reported (its env and conflict) and keeps its
last good files, so the release stays installable and the run exits 1.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from morgan_like.config.syncconf import SyncConfig
from morgan_like.dists.serials import SerialList
from morgan_like.errors import Interrupted
from morgan_like.index.pagecache import PAGES_NAME, PageCache
from morgan_like.index.serials import NAMES
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop, on_sigint
from morgan_like.modes import serve
from morgan_like.modes.bundle_pages import write_projects
from morgan_like.modes.bundle_views import env_views
from morgan_like.modes.resolving import ResolveSession, SessionRequest
from morgan_like.modes.slice_closures import moved_since
from morgan_like.modes.slice_report import (
    SliceTally,
    print_slice_plan,
    report_closures,
    report_slice,
)
from morgan_like.modes.slice_state import Closure, SliceRecord, load_record, mark_slice, save_record
from morgan_like.modes.slice_steps import SliceSteps
from morgan_like.output import Reporter
from morgan_like.resolve.candidates import FileFilter
from morgan_like.resolve.plan import Plan
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions
from morgan_like.tree.layout import STATE_DIR
from morgan_like.tree.licences import note_sdists
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

if TYPE_CHECKING:
    from morgan_like.modes.sync import SyncSettings


@dataclass(frozen=True)
class SliceRequest:
    """Everything one curated sync needs, complete before it starts (modes/sync.py)."""

    root: Path
    config: SyncConfig
    settings: SyncSettings
    dry_run: bool = False
    skip_server_copy: bool = False


def run_slice(request: SliceRequest, reporter: Reporter) -> int:
    """Sync the curated slice; the caller holds the tree lock (not for a dry run)."""
    stop = Stop()
    try:
        with on_sigint(stop):
            if request.dry_run:
                with (
                    tempfile.TemporaryDirectory(prefix="morgan-like-dry") as scratch,
                    DrySliceRun(request, reporter, stop, Path(scratch)) as dry,
                ):
                    return dry.run()
            with TreeSliceRun(request, reporter, stop, request.root) as run:
                return run.run()
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted: files this run fetched were taken back unless the tree was being "
            "written, which finished first (run again to finish)"
        ) from None


@dataclass(frozen=True)
class Survey:
    """Where the slice stands against upstream: the serial list, the last run's record,
    this run's key, whether every closure is resolved again (no record, another key, or
    a list of names without serials) and else the pages that moved since the record."""

    listed: SerialList
    record: SliceRecord | None
    key: str
    every: bool
    moved: set[str]

    @property
    def previous(self) -> SliceRecord | None:
        """The record this run builds on (None: every closure is resolved again)."""
        return None if self.every else self.record


@dataclass(frozen=True)
class Resolved:
    """The slice's plan: every closure (reused, resolved or failed), each entry's kept
    releases, the union plan, and one empty resolution per env for the build step."""

    kept: dict[str, list[Version]]
    closures: list[Closure]
    plan: Plan
    env_res: list[EnvResolution]


class SliceRun(SliceSteps):
    """One curated sync: owns its resources in one ExitStack (tree state and page cache
    when it writes, upstream, the resolving session), closed in reverse however it ends.

    Its steps are methods: ``survey`` reads the serial list against the record,
    ``resolve`` reuses or resolves each closure into the plan; the subclass's ``run``
    goes on: a dry run (``DrySliceRun``) prints the plan, a run into the tree
    (``TreeSliceRun``) downloads, writes, publishes and reports.
    """

    dry_run: bool
    state: TreeState | None = None

    def __init__(self, request: SliceRequest, reporter: Reporter, stop: Stop, scratch: Path):
        self.started = time.monotonic()
        self.request = request
        self.config = request.config
        self.settings = request.settings
        self.reporter = reporter
        self.stop = stop
        self.scratch = scratch
        self.root = request.root
        self.envs = tuple(self.config.environments)
        self.tally = SliceTally()
        self._stack = ExitStack()
        try:
            pages = self._open_tree()
            self.upstream = self._stack.enter_context(
                Upstream(
                    self.settings.index_url,
                    options=self.settings.mirror_options,
                    pages=pages,
                    on_warning=reporter.warn,
                )
            )
        except BaseException:
            self._stack.close()
            raise

    def _open_tree(self) -> PageCache | None:
        """The tree state and the page cache, for a run that writes the tree."""
        return None

    def __enter__(self) -> SliceRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self) -> int:
        raise NotImplementedError

    def survey(self) -> Survey:
        listed = self.serial_list(self.upstream, self.state)
        record = load_record(self.root)
        key = self.run_key(self.upstream.index_url)
        every = record is None or record.key != key or listed.source == NAMES
        moved = set() if every or record is None else moved_since(record, listed)
        return Survey(listed, record, key, every, moved)

    def open_session(self) -> ResolveSession:
        policy = ResolveOptions(file_filter=FileFilter(selection=self.config.selection))
        request = SessionRequest(
            self.root, self.scratch, self.envs, self.settings.workers, dry_run=self.dry_run
        )
        return self._stack.enter_context(
            ResolveSession(request, self.upstream, self.state, policy, self.reporter, self.stop)
        )

    def resolve(
        self, survey: Survey, session: ResolveSession, writer: TreeWriter | None
    ) -> Resolved:
        """Each entry's kept releases; each closure reused (``writer``: read back from our
        own pages) or resolved, its files queued for download as it is taken."""
        prev = survey.previous
        kept = self.kept_releases(session.finder, prev, survey.moved)
        plan = Plan(env_names=[e.name for e in self.envs])
        closures, jobs = self.reuse(prev, kept, survey.moved, writer, plan)
        if jobs:
            session.resolving()  # the worker processes start beside the first pages
        outcomes = self.resolve_jobs(jobs, session.finder, session.options)
        env_res = [EnvResolution(env, {}, {}, []) for env in self.envs]
        for outcome in outcomes:
            closures.append(self.take(outcome, prev, writer, plan, session))
        return Resolved(kept, closures, plan, env_res)


class DrySliceRun(SliceRun):
    """A dry run: no tree state, nothing downloaded; every closure resolved and the
    slice's plan printed (build requirements read only of the sdists already on disk)."""

    dry_run = True

    def run(self) -> int:
        survey = self.survey()
        session = self.open_session()
        done = self.resolve(survey, session, writer=None)
        session.build_requirements(done.plan, done.env_res)
        print_slice_plan(self.root, done.kept, done.closures, done.plan, self.reporter)
        return 1 if any(c.error for c in done.closures) else 0


class TreeSliceRun(SliceRun):
    """A run into the (locked) tree: nothing at all when no page the slice depends on
    moved; else the closures resolved, the files downloaded (taken back if anything
    fails before the writing), the tree written and published behind the deletion guard."""

    dry_run = False
    state: TreeState

    def _open_tree(self) -> PageCache | None:
        self.state = self._stack.enter_context(TreeState(self.root))
        if self.state.load_problem:
            self.reporter.warn(self.state.load_problem)
        pages = PageCache(self.root / STATE_DIR / PAGES_NAME)
        self._stack.callback(pages.close)
        return pages

    def run(self) -> int:
        survey = self.survey()
        record = survey.record
        current = record is not None and not survey.every and not survey.moved
        if record is not None and current and not any(c.retry for c in record.failed):
            # A failed closure is tried again only when a page it read moves: until
            # then it keeps its last good files and is reported again, from the record.
            report_closures(record.failed, self.reporter)
            if not record.failed:
                self.reporter.info(
                    "Nothing the slice depends on moved upstream: the tree is current"
                )
            return 1 if record.failed else 0
        state = self.state
        state.set_sync_value("upstream", self.upstream.index_url)
        if record is None:
            mark_slice(self.root)  # a sync's tree from now on (tree/kind.py)
        state.commit()
        session = self.open_session()
        writer = TreeWriter(
            self.root, state, on_problem=self.reporter.warn, warehouse=True, serials=True
        )
        done = self.resolve(survey, session, writer)
        plan = done.plan
        try:
            results = session.await_downloads(
                plan, self.reporter, during=lambda: session.build_requirements(plan, done.env_res)
            )
            self.guard(writer, plan)
        except BaseException:
            session.abandon()  # no file of this run stays unlisted
            raise
        failed = {r.relpath for r in results if not r.ok}
        with self.stop.shielded():  # a Ctrl+C now waits until the tree is whole
            write_projects(plan, True, writer, failed, self.reporter)
            # What the run read of its sdists gives the SBOM their licences.
            note_sdists(state, session.sdists_read(plan))
            published = publish(
                writer,
                server=None
                if self.request.skip_server_copy
                else serve.server_source().read_bytes(),
                config=self.settings.config_bytes,
                diff=self.settings.diff,
                views=env_views(plan),
                serial_list=True,
                synced_serial=writer.published_serial(),
            )
            if not failed:
                record = self.slice_record(
                    survey.key, survey.listed, done.kept, done.closures, plan
                )
                save_record(self.root, record)
        self.tally.downloaded = sum(1 for r in results if r.ok and not r.skipped)
        self.tally.failed_files = sorted(failed)
        report_slice(
            self.root, done.closures, done.env_res, plan, published, self.tally, self.reporter,
            time.monotonic() - self.started,
        )  # fmt: skip
        return 1 if failed or any(c.error for c in done.closures) else 0
