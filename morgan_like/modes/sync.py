"""The ``sync`` command: keep a whole index (or a filtered slice) in step from its serial list.

One run: the serial list (``index.serials``) against the serials in the tree
state gives the plan (``modes.sync_plan``); the deletion guard may refuse it;
then every changed project's PEP 691 page is fetched, its new files downloaded
(verified, atomic, in parallel) and its pages written through the shared
TreeWriter, and projects upstream no longer lists are removed by the shared
publish step, which also writes local.json, local.db.serial and the diff-file.

Resuming is per project: a project's serial in the tree state moves only when
its page and every file it lists are in place, and the state is committed as
the run goes, so an interrupted or failed run is resumed by the next one from
where it stopped.  The tree's own serial (local.db.serial) moves to the list's
serial only when nothing failed, never past a failure.

A page whose serial is lower than the list promised is stale (a CDN cache):
it is fetched again a little later, and if it stays stale the project is left
for the next run, never recorded as synced.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morgan_like.config.syncconf import SyncConfig, compile_patterns, load_sync_config
from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.serials import SerialList
from morgan_like.errors import ConfigError, MorganLikeError, UpstreamError
from morgan_like.fetch.download import DEFAULT_WORKERS
from morgan_like.fetch.projects import Outcome, ProjectJob, fetch_in_processes, fetch_in_threads
from morgan_like.index.httputil import redact_url
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.index.redirects import OPTION as REDIRECTS_OPTION
from morgan_like.index.serials import NAMES, fetch_serials
from morgan_like.index.upstream import Upstream
from morgan_like.modes import serve
from morgan_like.modes.sync_plan import (
    FileRules,
    NameFilter,
    SyncPlan,
    deletion_refusal,
    make_plan,
)
from morgan_like.modes.sync_report import SyncTally, print_dry_run, print_sync_summary
from morgan_like.output import Counter, Reporter, human_size
from morgan_like.tree.files import sweep_scratch
from morgan_like.tree.layout import STATE_DIR
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.publish import DiffRequest, publish
from morgan_like.tree.state import STATE_NAME, TreeState
from morgan_like.tree.writer import TreeWriter

COMMIT_EVERY = 1.0  # seconds between commits of the tree state during a run
EVENTS_MAX = 1024  # fetched projects waiting for the writer, at most
SOURCE_KEY = "serial-source"  # the tree state's record of the source auto found last
PROGRESS_EVERY = 30.0  # seconds between progress lines when the output is not a terminal
# Pages of this many projects or more are fetched and parsed in worker processes
# (fetch.projects): parsing and hashing would otherwise share this process's core.
PROCESS_THRESHOLD = 2000
PAGE_PROCESSES = min(4, os.cpu_count() or 1)


class SyncRefused(MorganLikeError):
    """The plan would delete too much (or the list is empty): nothing was changed."""

    exit_code = 3


@dataclass
class SyncOptions:
    index_path: Path
    config_path: Path | None = None
    index_url: str | None = None
    serial_source: str | None = None  # None: [sync] serial-source, else auto
    index_only: bool | None = None
    excludes: tuple[str, ...] = ()
    prerelease_excludes: tuple[str, ...] = ()
    max_deletions: int | None = None
    dry_run: bool = False
    workers: int | None = None
    diff_file: str | None = None
    diff_append_epoch: bool = False
    skip_server_copy: bool = False
    wait_lock: float | None = None
    # False: a redirect to another host fails the request (--no-cross-host-redirects);
    # None: [sync] / [mirror] cross-host-redirects, else followed with a warning.
    cross_host_redirects: bool | None = None
    stale_retries: int = 3
    stale_delay: float = 2.0  # seconds before the first re-fetch of a stale page; doubles


@dataclass
class _Settings:
    """Options and config merged: the command line wins, then [sync], then defaults."""

    index_url: str
    source: str
    index_only: bool
    names: NameFilter
    rules: FileRules
    max_deletions: int | None
    workers: int
    diff: DiffRequest | None
    mirror_options: dict[str, str] = field(default_factory=dict)
    config_bytes: bytes | None = None


def _settings(options: SyncOptions, config: SyncConfig) -> _Settings:
    try:
        excludes = compile_patterns((*config.excludes, *options.excludes), "--exclude")
        pre = compile_patterns(
            (*config.prerelease_excludes, *options.prerelease_excludes), "--prerelease-exclude"
        )
    except ValueError as exc:
        raise ConfigError(file="command line", problem=str(exc)) from None
    diff_file = options.diff_file or config.diff_file
    append = options.diff_append_epoch or bool(config.diff_append_epoch)
    mirror_options = dict(config.mirror_options)
    for redirects in (config.cross_host_redirects, options.cross_host_redirects):
        if redirects is not None:  # the command line, then [sync], over [mirror]
            mirror_options[REDIRECTS_OPTION] = "true" if redirects else "false"
    return _Settings(
        index_url=options.index_url or config.index_url or configured_index_url(),
        source=options.serial_source or config.serial_source or "auto",
        index_only=bool(
            options.index_only if options.index_only is not None else config.index_only
        ),
        names=NameFilter(excludes),
        rules=FileRules(pre, config.environments),
        max_deletions=options.max_deletions
        if options.max_deletions is not None
        else config.max_deletions,
        workers=options.workers or config.workers or DEFAULT_WORKERS,
        diff=DiffRequest(diff_file, append) if diff_file else None,
        mirror_options=mirror_options,
        config_bytes=config.path.read_bytes() if config.path else None,
    )


def _config(options: SyncOptions) -> SyncConfig:
    if options.config_path is not None:
        return load_sync_config(options.config_path)
    default = options.index_path / "morgan.ini"
    return load_sync_config(default) if default.is_file() else SyncConfig()


def run_sync(options: SyncOptions, reporter: Reporter) -> int:
    """Sync the tree; return the exit code (0 all done, 1 something failed, 3 refused)."""
    config = _config(options)
    settings = _settings(options, config)
    for warning in config.warnings:
        reporter.warn(warning)
    root = options.index_path
    if options.dry_run:
        return _dry_run(options, settings, reporter)
    root.mkdir(parents=True, exist_ok=True)
    with TreeLock(root, "sync", wait=options.wait_lock, on_wait=reporter.info):
        sweep_scratch(root)
        try:
            return _sync(options, settings, reporter)
        finally:
            sweep_scratch(root)


def _listed_plan(
    upstream: Upstream,
    settings: _Settings,
    local: dict[str, int | None],
    reporter: Reporter,
    left: dict[str, int] | None = None,
    remembered: str | None = None,
) -> tuple[SyncPlan, SerialList]:
    listed = fetch_serials(upstream, settings.source, remembered)
    shown = "" if listed.last_serial is None else f", serial {listed.last_serial}"
    reporter.info(
        f"Serial list from {redact_url(settings.index_url)} ({listed.source}): "
        f"{len(listed.serials)} projects{shown}"
    )
    if listed.source == "names":
        reporter.warn(
            "the upstream gives no serials (no PEP 691 root with _last-serial, local.json or "
            "XML-RPC): every project's page is fetched on every run"
        )
    if listed.malformed:
        reporter.warn(f"{listed.malformed} malformed entries in the serial list were left out")
    plan = make_plan(listed, local, settings.names, left or {})
    refusal = deletion_refusal(plan, listed, len(local), settings.max_deletions)
    if refusal:
        raise SyncRefused(refusal)
    return plan, listed


def _dry_run(options: SyncOptions, settings: _Settings, reporter: Reporter) -> int:
    """The plan and what it would cost, with nothing written: no lock, state read-only."""
    root = options.index_path
    local: dict[str, int | None] = {}
    if (root / STATE_DIR / STATE_NAME).is_file():
        local = _read_projects(root / STATE_DIR / STATE_NAME)
    with Upstream(
        settings.index_url, options=settings.mirror_options, on_warning=reporter.warn
    ) as upstream:
        plan, _ = _listed_plan(upstream, settings, local, reporter)
        pages = {}
        if not settings.index_only:
            with ThreadPoolExecutor(settings.workers) as pool:
                for name, page in zip(plan.todo, pool.map(_page_or_none(upstream), plan.todo)):
                    if page is not None:
                        pages[name] = settings.rules.keep(name, page.files)
    print_dry_run(plan, pages, root, reporter)
    return 0


def _read_projects(state_db: Path) -> dict[str, int | None]:
    """The tree's projects and serials, read-only (a dry run changes nothing)."""
    import sqlite3

    try:
        db = sqlite3.connect(f"{state_db.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        return dict(db.execute("SELECT name, serial FROM projects"))
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _page_or_none(upstream: Upstream) -> Callable[[str], ProjectPage | None]:
    def fetch(name: str) -> ProjectPage | None:
        try:
            return upstream.project_page(name)
        except UpstreamError:
            return None

    return fetch


def _sync(options: SyncOptions, settings: _Settings, reporter: Reporter) -> int:
    started = time.monotonic()
    root = options.index_path
    with (
        TreeState(root) as state,
        Upstream(
            settings.index_url,
            options=settings.mirror_options,
            pool_size=max(32, settings.workers),
            on_warning=reporter.warn,
        ) as upstream,
    ):
        if state.load_problem:
            reporter.warn(state.load_problem)
        local = dict(state.projects())
        left = state.sync_todo()
        if left:
            reporter.info(f"Resuming: {len(left)} projects were left to do by the last run")
        remembered = state.sync_value(SOURCE_KEY)
        plan, listed = _listed_plan(upstream, settings, local, reporter, left, remembered)
        if settings.source == "auto":
            state.set_sync_value(SOURCE_KEY, listed.source)
        state.set_sync_value("upstream", upstream.index_url)  # without its credentials
        state.set_sync_value("target", str(plan.target) if plan.target is not None else None)
        state.set_sync_todo(plan.todo)
        state.commit()
        writer = TreeWriter(
            root,
            state,
            on_problem=reporter.warn,
            index_only=settings.index_only,
            warehouse=True,
            # No serials upstream: pages get the tree's own, moved when a page changes.
            serials=listed.source == NAMES,
        )
        tally = SyncTally(
            listed=len(listed.serials), unchanged=plan.unchanged, excluded=plan.excluded
        )
        run = _ProjectRun(upstream, writer, settings, options, reporter, tally, local)
        run.run(plan)
        # Listed, but their pages answer 404: only those the tree had leave it.
        dropped = [name for name in run.vanished if name in local]
        for name in (*plan.remove, *dropped):
            writer.remove_project(name)
        tally.removed = len(plan.remove) + len(dropped)
        tally.missing = sorted(run.vanished)
        complete = not tally.failed and not tally.stale
        synced = None
        if complete:
            # Without upstream serials the tree's own: every page up to it is in place.
            synced = plan.target if plan.target is not None else writer.published_serial()
        if synced is not None:
            state.set_sync_value("serial", str(synced))
        # What is still to do: the failures, and (only if publish is cut short) the rest.
        unfinished = {n: s for n, s in plan.todo.items() if n in tally.failed or n in tally.stale}
        published = publish(
            writer,
            server=None if options.skip_server_copy else serve.server_source().read_bytes(),
            config=settings.config_bytes,
            diff=settings.diff,
            serial_list=True,
            synced_serial=synced,
        )
        state.set_sync_todo(unfinished)
        state.commit()
    print_sync_summary(tally, published, time.monotonic() - started, reporter)
    return 0 if complete else 1


class _ProjectRun:
    """The per-project work of one sync: each project's page and new files fetched by a
    pool (fetch.projects), recorded and written by this thread alone (the writer is not
    thread-safe), in completion order."""

    def __init__(
        self,
        upstream: Upstream,
        writer: TreeWriter,
        settings: _Settings,
        options: SyncOptions,
        reporter: Reporter,
        tally: SyncTally,
        local: dict[str, int | None],
    ) -> None:
        self.upstream = upstream
        self.writer = writer
        self.state = writer.state
        self.settings = settings
        self.options = options
        self.reporter = reporter
        self.tally = tally
        self.local = local
        self.vanished: list[str] = []
        # Bounded: fetchers wait while the writer catches up, so memory stays flat.
        self.events: queue.Queue[Outcome] = queue.Queue(maxsize=EVENTS_MAX)
        self._stopping = False

    def _deliver(self, outcome: Outcome) -> None:
        """Hand an outcome to the writer's loop; dropped once the loop has stopped."""
        while not self._stopping:
            try:
                self.events.put(outcome, timeout=0.5)
                return
            except queue.Full:
                continue

    def _fetch_all(self, todo: dict[str, int]) -> None:
        """Fetch every project (a feeder thread): in worker processes past PROCESS_THRESHOLD
        projects, where parsing and hashing would otherwise hold one core."""
        job = ProjectJob(
            self.settings.index_url,
            self.settings.mirror_options,
            self.settings.rules.keep,
            None if self.settings.index_only else self.writer.root,
            self.options.stale_retries,
            self.options.stale_delay,
            threads=max(4, self.settings.workers // 2),
        )
        items = sorted(todo.items())
        try:
            if len(items) >= PROCESS_THRESHOLD and PAGE_PROCESSES > 1:
                fetch_in_processes(job, items, PAGE_PROCESSES, self._deliver)
            else:
                fetch_in_threads(self.upstream, job, items, self.settings.workers, self._deliver)
        except Exception as exc:  # the pool itself broke: every project not done fails
            self._deliver(("broken", "", str(exc) or exc.__class__.__name__))

    def run(self, plan: SyncPlan) -> None:
        todo = plan.todo
        if not todo:
            return
        self.state.commit()  # what the workers' read-only view of the state sees
        feeder = threading.Thread(target=self._fetch_all, args=(todo,), daemon=True)
        feeder.start()
        try:
            self._loop(len(todo), plan)
        except BaseException:
            self._stopping = True  # fetchers drop what they still have; nobody waits on them
            raise
        feeder.join()

    def _loop(self, total: int, plan: SyncPlan) -> None:
        remaining = total
        last_commit = last_line = time.monotonic()
        with self.reporter.syncing(total) as (projects, data):
            while remaining:
                kind, name, payload = self.events.get()
                if kind == "broken":
                    raise MorganLikeError(f"fetching projects failed: {payload}")
                self._outcome(kind, name, payload, plan, data)
                remaining -= 1
                projects.advance(1)
                now = time.monotonic()
                if now - last_commit > COMMIT_EVERY:
                    self.state.commit()
                    last_commit = now
                if not self.reporter.interactive and now - last_line > PROGRESS_EVERY:
                    # A nightly job's log: a line now and then instead of a progress bar.
                    self.reporter.info(
                        f"  {total - remaining}/{total} projects, {human_size(data.count)} downloaded"
                    )
                    last_line = now
        self.tally.bytes = data.count

    def _outcome(self, kind: str, name: str, payload: Any, plan: SyncPlan, data: Counter) -> None:
        """What the pool reports of one project; the project is finished after it."""
        if kind == "gone":  # listed, then deleted before we got to it
            self.vanished.append(name)
            return
        if kind == "error":
            self.tally.fail(name, str(payload))
            self.reporter.warn(f"{name}: {payload}")
            return
        if kind == "stale":
            self.tally.stale.append(name)
            self.reporter.warn(
                f"{name}: upstream's page is still older (serial {payload}) than its "
                f"serial list says ({plan.todo[name]}); left for the next run"
            )
            return
        page, listed, files, fetched = payload
        for line in page.problems:
            self.reporter.warn(line)
        failures = []
        for f in fetched:
            if f.error is not None:
                failures.append(f.error)
            elif f.sha256:  # arrived now, or found on disk unrecorded
                self.state.record(f.relpath, f.size, f.sha256, new=f.fetched)
                if f.fetched:
                    self.tally.files += 1
                    data.advance(f.size)
        # No serial from the list (names) nor the page: the writer gives the tree's own.
        self._finish(name, page, files, max(listed, page.last_serial or 0) or None, failures)

    def _finish(
        self,
        name: str,
        page: ProjectPage,
        files: list[RemoteFile],
        serial: int | None,
        failures: list[str],
    ) -> None:
        new = name not in self.local
        if not failures:
            changed = self.writer.write_project(
                name, files, serial, replace=True, meta=page.meta, keep_empty=True
            )
            if not self.writer.removals_pending(name):
                # Done for good; one whose old files go at publish stays to do until then,
                # so a run killed before publish redoes it and the removal happens.
                self.state.sync_done(name)
            if new:
                self.tally.added += 1
            elif changed or self.writer.removals_pending(name):
                self.tally.updated += 1
            else:  # read again (no serials, or a resumed run) and found as it was
                self.tally.unchanged += 1
            return
        # Keep what the page listed, plus what arrived; the serial stays where it was, so
        # the next run does this project again (without upstream serials the tree's own
        # moves if the page changed: the next run reads every page anyway).
        merged = {f.filename: f for f in self.writer.existing_files(name)}
        merged.update({f.filename: f for f in files})
        kept = self.local.get(name) if serial is not None else None
        self.writer.write_project(
            name, list(merged.values()), kept, meta=page.meta, keep_empty=True
        )
        for error in failures:
            self.reporter.warn(error)
        self.tally.fail(name, f"{len(failures)} downloads failed")
