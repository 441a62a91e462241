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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from packaging.version import Version

from morgan_like.config.syncconf import SyncConfig
from morgan_like.dists.serials import SerialList
from morgan_like.errors import (
    ConfigError,
    Interrupted,
    SyncRefused,
)
from morgan_like.index.finder import Finder
from morgan_like.index.httputil import redact_url
from morgan_like.index.pagecache import PAGES_NAME, PageCache
from morgan_like.index.serials import NAMES, fetch_serials
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop, on_sigint
from morgan_like.modes import serve
from morgan_like.modes.bundle_pages import write_projects
from morgan_like.modes.bundle_views import env_views
from morgan_like.modes.resolving import ResolveSession, SessionRequest
from morgan_like.modes.slice_closures import (
    Job,
    Outcome,
    moved_since,
    own_files,
    resolve_one,
    slice_key,
)
from morgan_like.modes.slice_report import (
    SliceTally,
    print_slice_plan,
    report_closures,
    report_slice,
)
from morgan_like.modes.slice_state import (
    Closure,
    SliceRecord,
    load_record,
    mark_slice,
    save_record,
)
from morgan_like.modes.sync_plan import default_max_deletions
from morgan_like.output import Reporter
from morgan_like.resolve.candidates import FileFilter
from morgan_like.resolve.plan import Plan, resolution_files
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions
from morgan_like.tree.layout import STATE_DIR, package_relpath
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
                with tempfile.TemporaryDirectory(prefix="morgan-like-dry") as scratch:
                    return SliceRun(request, reporter, stop, Path(scratch)).run()
            return SliceRun(request, reporter, stop, request.root).run()
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted: files this run fetched were taken back unless the tree was being "
            "written, which finished first (run again to finish)"
        ) from None


class SliceRun:
    """One curated sync; owns its resources in one ExitStack."""

    def __init__(self, request: SliceRequest, reporter: Reporter, stop: Stop, scratch: Path):
        self.request = request
        self.config = request.config
        self.settings = request.settings
        self.reporter = reporter
        self.stop = stop
        self.scratch = scratch
        self.root = request.root
        self.envs = tuple(self.config.environments)
        self.tally = SliceTally()

    # --- the run -------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        settings = self.settings
        dry = self.request.dry_run
        with ExitStack() as stack:
            state = None if dry else stack.enter_context(TreeState(self.root))
            pages = None
            if state is not None:
                if state.load_problem:
                    self.reporter.warn(state.load_problem)
                pages = PageCache(self.root / STATE_DIR / PAGES_NAME)
                stack.callback(pages.close)
            upstream = stack.enter_context(
                Upstream(
                    settings.index_url,
                    options=settings.mirror_options,
                    pages=pages,
                    on_warning=self.reporter.warn,
                )
            )
            listed = self._serial_list(upstream, state)
            record = load_record(self.root)
            key = self._key(upstream.index_url)
            every = record is None or record.key != key or listed.source == NAMES
            moved = set() if every or record is None else moved_since(record, listed)
            retry = record is not None and any(c.retry for c in record.failed)
            if not dry and not every and record is not None and not moved and not retry:
                # A failed closure is tried again only when a page it read moves: until
                # then it keeps its last good files and is reported again, from the record.
                report_closures(record.failed, self.reporter)
                if not record.failed:
                    self.reporter.info(
                        "Nothing the slice depends on moved upstream: the tree is current"
                    )
                return 1 if record.failed else 0
            if state is not None:
                state.set_sync_value("upstream", upstream.index_url)
                if record is None:
                    mark_slice(self.root)  # a sync's tree from now on (tree/kind.py)
                state.commit()
            policy = ResolveOptions(file_filter=FileFilter(selection=self.config.selection))
            session = stack.enter_context(
                ResolveSession(
                    SessionRequest(
                        self.root, self.scratch, self.envs, settings.workers, dry_run=dry
                    ),
                    upstream,
                    state,
                    policy,
                    self.reporter,
                    self.stop,
                )
            )
            writer = None
            if state is not None:
                writer = TreeWriter(
                    self.root, state, on_problem=self.reporter.warn, warehouse=True, serials=True
                )
            prev = None if every else record
            kept = self._kept(session.finder, prev, moved)
            plan = Plan(env_names=[e.name for e in self.envs])
            closures, jobs = self._reuse(prev, kept, moved, writer, plan)
            if jobs:
                session.resolving()  # the worker processes start beside the first pages
            outcomes = self._resolve(jobs, session.finder, session.options)
            env_res = [EnvResolution(env, {}, {}, []) for env in self.envs]
            for outcome in outcomes:
                closures.append(self._take(outcome, prev, writer, plan, session))
            if dry:
                session.build_requirements(plan, env_res)
                print_slice_plan(self.root, kept, closures, plan, self.reporter)
                return 1 if any(c.error for c in closures) else 0
            assert writer is not None  # made with the state, which only a dry run lacks
            try:
                results = session.await_downloads(
                    plan,
                    self.reporter,
                    during=lambda: session.build_requirements(plan, env_res),
                )
                self._guard(writer, plan)
            except BaseException:
                session.abandon()  # no file of this run stays unlisted
                raise
            failed = {r.relpath for r in results if not r.ok}
            with self.stop.shielded():  # a Ctrl+C now waits until the tree is whole
                write_projects(plan, True, writer, failed, self.reporter)
                # What the run read of its sdists gives the SBOM their licences.
                note_sdists(writer.state, session.sdists_read(plan))
                done = publish(
                    writer,
                    server=None
                    if self.request.skip_server_copy
                    else serve.server_source().read_bytes(),
                    config=settings.config_bytes,
                    diff=settings.diff,
                    views=env_views(plan),
                    serial_list=True,
                    synced_serial=writer.published_serial(),
                )
                if not failed:
                    save_record(self.root, self._record(key, listed, kept, closures, plan))
            self.tally.downloaded = sum(1 for r in results if r.ok and not r.skipped)
            self.tally.failed_files = sorted(failed)
            report_slice(
                self.root, closures, env_res, plan, done, self.tally, self.reporter,
                time.monotonic() - started,
            )  # fmt: skip
            return 1 if failed or any(c.error for c in closures) else 0

    # --- the steps -----------------------------------------------------------------

    def _serial_list(self, upstream: Upstream, state: TreeState | None) -> SerialList:
        """The upstream's serial list; every allowlisted name must be on it (a typo stops
        the run before any change, with the closest names)."""
        remembered = state.sync_value("serial-source") if state is not None else None
        listed = fetch_serials(upstream, self.settings.source, remembered)
        if state is not None and self.settings.source == "auto":
            state.set_sync_value("serial-source", listed.source)
        self.reporter.info(
            f"Serial list from {redact_url(upstream.index_url)} ({listed.source}): "
            f"{len(listed.serials)} projects; {len(self.config.allowlist)} allowlisted"
        )
        missing = [e for e in self.config.allowlist if e.name not in listed.serials]
        if missing:
            import difflib

            names = list(listed.serials)
            lines = []
            for entry in missing:
                close = difflib.get_close_matches(entry.name, names, n=3, cutoff=0.75)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                lines.append(f"{entry.source}: {entry.name} is not on the upstream{hint}")
            raise ConfigError(
                file=missing[0].source.rsplit(":", 1)[0],
                problem="; ".join(lines),
                hint="fix the allowlist (projects / requirements); nothing was changed",
            )
        return listed

    def _key(self, index_url: str) -> str:
        return slice_key(index_url, self.settings, self.config, self.envs)

    def _kept(
        self, finder: Finder, prev: SliceRecord | None, moved: set[str]
    ) -> dict[str, list[Version]]:
        """Each entry's kept releases, newest first: read again when its page moved."""
        kept: dict[str, list[Version]] = {}
        rules = self.settings.rules
        for entry in self.config.allowlist:
            label = str(entry.requirement)
            if prev is not None and entry.name not in moved and label in prev.kept:
                kept[label] = [Version(v) for v in prev.kept[label]]
                continue
            page = finder.page(entry.name)
            kept[label] = list(rules.releases(entry.name, page.files, entry.requirement.specifier))
            versions = set(kept[label])
            for rf, reason in rules.left_out(entry.name, page.files):
                if rf.version in versions:
                    self.reporter.warn(f"{entry.name}: {rf.filename} left out: {reason}")
            if not kept[label]:
                self.reporter.warn(
                    f"{entry.source}: no release of {entry.name} matches "
                    f"{str(entry.requirement.specifier) or 'the filters'} (after the filters)"
                )
        return kept

    def _jobs(self, kept: dict[str, list[Version]]) -> list[Job]:
        jobs = []
        for entry in self.config.allowlist:
            for version in kept[str(entry.requirement)]:
                for env in self.envs:
                    if env.evaluate(entry.requirement.marker):
                        jobs.append(Job(entry, version, env))
        return jobs

    def _reuse(
        self,
        prev: SliceRecord | None,
        kept: dict[str, list[Version]],
        moved: set[str],
        writer: TreeWriter | None,
        plan: Plan,
    ) -> tuple[list[Closure], list[Job]]:
        """Closures no moved page can reach keep their files (read back from our own
        pages); the rest are resolved again."""
        reused: list[Closure] = []
        todo: list[Job] = []
        for job in self._jobs(kept):
            old = None if prev is None else prev.closures.get(job.key)
            if old is None or old.retry or old.touched & moved or writer is None:
                todo.append(job)
                continue
            records = own_files(writer, old.files)
            if records is None:
                todo.append(job)
                continue
            for project, rf in records:
                plan.add(project, rf, job.env.name)
            reused.append(old)
        self.tally.reused = len(reused)
        return reused, todo

    def _resolve(self, jobs: list[Job], finder: Finder, ropts: ResolveOptions) -> list[Outcome]:
        """Every closure to resolve, several at a time (they share the Finder's pages)."""
        if not jobs:
            return []
        options = {
            env.name: ResolveOptions(
                file_filter=ropts.file_filter,
                prefer_binary=True,
                constraints=self.config.constraints_for(env),
                hashes=self.config.hashes_for(env),
                hooks=ropts.hooks,
                views=ropts.views,
            )
            for env in self.envs
        }

        def one(job: Job) -> Outcome:
            return resolve_one(job, finder, options[job.env.name])

        outcomes = []
        with (
            ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool,
            self.reporter.counting("Resolving", total=len(jobs)) as counter,
        ):
            for outcome in pool.map(one, jobs):
                outcomes.append(outcome)
                counter.advance()
        self.tally.resolved = len(jobs)
        return outcomes

    def _take(
        self,
        outcome: Outcome,
        prev: SliceRecord | None,
        writer: TreeWriter | None,
        plan: Plan,
        session: ResolveSession,
    ) -> Closure:
        """A resolved closure's files into the plan; a failed one keeps its last good files."""
        job, closure = outcome.job, outcome.closure
        if outcome.resolution is not None:
            added = []
            for project, rf in resolution_files(outcome.resolution):
                if plan.add(project, rf, job.env.name):
                    added.append(plan.files[package_relpath(project, rf.filename)])
            session.submit(added)
            return closure
        if closure.error is None:  # unsupported in this env: nothing to keep
            return closure
        old = None if prev is None else prev.closures.get(job.key)
        if old is not None and old.files and writer is not None:
            records = own_files(writer, old.files)
            if records is not None:
                for project, rf in records:
                    plan.add(project, rf, job.env.name)
                return Closure(
                    job.key,
                    closure.touched | old.touched,
                    old.files,
                    closure.error,
                    retry=closure.retry,
                )
        return closure

    def _guard(self, writer: TreeWriter, plan: Plan) -> None:
        """The deletion guard: refuse to drop more projects than the limit."""
        existing = writer.existing_projects()
        planned = plan.by_project()
        leaving = sorted(p for p in existing if p not in planned)
        limit = self.settings.max_deletions
        if limit is None:
            limit = default_max_deletions(len(existing))
        if len(leaving) > limit:
            shown = ", ".join(leaving[:5]) + (", ..." if len(leaving) > 5 else "")
            raise SyncRefused(
                f"{len(leaving)} of the tree's {len(existing)} projects would leave the slice "
                f"({shown}), more than the limit of {limit}; nothing was changed. If that is "
                f"meant, re-run with --max-deletions {len(leaving)} (or [sync] max-deletions)"
            )

    def _record(
        self,
        key: str,
        listed: SerialList,
        kept: dict[str, list[Version]],
        closures: list[Closure],
        plan: Plan,
    ) -> SliceRecord:
        read: set[str] = {e.name for e in self.config.allowlist}
        for closure in closures:
            read |= closure.touched
        read |= set(plan.by_project())
        known = cast(Mapping[str, int], listed.serials)
        serials = {n: known[n] for n in read if n in known}
        return SliceRecord(
            key=key,
            serials=serials,
            kept={label: tuple(str(v) for v in versions) for label, versions in kept.items()},
            closures={c.key: c for c in closures},
        )
