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

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from morgan_like.config.syncconf import SyncConfig, compile_patterns, load_sync_config
from morgan_like.dists.links import ProjectPage
from morgan_like.dists.serials import SerialList
from morgan_like.errors import ConfigError, SyncRefused, UpstreamError
from morgan_like.fetch.download import DEFAULT_WORKERS
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
from morgan_like.modes.sync_run import ProjectRun
from morgan_like.output import Reporter
from morgan_like.tree.diff import check_diff_target
from morgan_like.tree.files import sweep_scratch
from morgan_like.tree.layout import STATE_DIR
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.publish import DiffRequest, Published, publish
from morgan_like.tree.state import STATE_NAME, TreeState
from morgan_like.tree.writer import TreeWriter

SOURCE_KEY = "serial-source"  # the tree state's record of the source auto found last


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


@dataclass(frozen=True)
class SyncSettings:
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


def _settings(options: SyncOptions, config: SyncConfig) -> SyncSettings:
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
    return SyncSettings(
        index_url=options.index_url or config.index_url or configured_index_url(),
        source=options.serial_source or config.serial_source or "auto",
        index_only=bool(
            options.index_only if options.index_only is not None else config.index_only
        ),
        names=NameFilter(
            excludes,
            # A plain allowlist (no dependencies) is a name filter; with dependencies the
            # slice (modes/slice.py) decides what the tree holds.
            allow=frozenset(e.name for e in config.allowlist)
            if config.allowlist and not config.with_dependencies
            else None,
        ),
        rules=FileRules(
            pre,
            config.environments,
            selection=config.selection,
            keep_latest=config.keep_latest,
            specifiers={e.name: e.requirement.specifier for e in config.allowlist},
        ),
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
    curated = bool(config.allowlist) and config.with_dependencies
    if curated and settings.index_only:
        raise ConfigError(
            file=str(config.path) if config.path else "command line",
            problem="index-only cannot be combined with an allowlist with dependencies",
            hint="each env's view must list files this tree holds: drop index-only",
        )
    if options.dry_run:
        if curated:
            return _slice(options, config, settings, reporter)
        return _dry_run(options, settings, reporter)
    if settings.diff is not None:
        check_diff_target(root, settings.diff.path)  # refused before anything is fetched
    root.mkdir(parents=True, exist_ok=True)
    with TreeLock(root, "sync", wait=options.wait_lock, on_wait=reporter.info):
        sweep_scratch(root)
        try:
            if curated:
                return _slice(options, config, settings, reporter)
            return _sync(options, settings, reporter)
        finally:
            sweep_scratch(root)


def _slice(
    options: SyncOptions, config: SyncConfig, settings: SyncSettings, reporter: Reporter
) -> int:
    """A curated slice (an allowlist with dependencies): modes/slice.py, imported only
    here, since it brings the resolver, the bundle's pages and views, and the SBOM, that
    a full mirror's run never uses."""
    from morgan_like.modes.slice import SliceRequest, run_slice

    request = SliceRequest(
        options.index_path, config, settings, options.dry_run, options.skip_server_copy
    )
    return run_slice(request, reporter)


def _listed_plan(
    upstream: Upstream,
    settings: SyncSettings,
    read_local: Callable[[], dict[str, int | None]],
    reporter: Reporter,
    left: dict[str, int] | None = None,
    remembered: str | None = None,
) -> tuple[SyncPlan, SerialList, dict[str, int | None]]:
    """The serial list against the tree's projects: the plan, the list, and the tree's
    projects as ``read_local`` read them.  They are read once the list is parsed, so
    that at PyPI's scale (900,000 names each) the map of the tree's projects is not
    held through the parse's own peak."""
    listed = fetch_serials(upstream, settings.source, remembered)
    shown = "" if listed.last_serial is None else f", serial {listed.last_serial}"
    reporter.info(
        f"Serial list from {redact_url(settings.index_url)} ({listed.source}): "
        f"{len(listed.serials)} projects{shown}"
    )
    if listed.source == "names":
        reporter.warn(
            "the upstream gives no serials (no PEP 691 root with _last-serial, local.json or "
            "XML-RPC): every project's page is fetched on every run, and this tree gives its "
            "pages serials of its own"
        )
    if listed.malformed:
        reporter.warn(f"{listed.malformed} malformed entries in the serial list were left out")
    local = read_local()
    plan = make_plan(listed, local, settings.names, left or {})
    refusal = deletion_refusal(plan, listed, len(local), settings.max_deletions)
    if refusal:
        raise SyncRefused(refusal)
    return plan, listed, local


def _dry_run(options: SyncOptions, settings: SyncSettings, reporter: Reporter) -> int:
    """The plan and what it would cost, with nothing written: no lock, state read-only."""
    root = options.index_path
    local, remembered = _read_state(root / STATE_DIR / STATE_NAME)
    with Upstream(
        settings.index_url, options=settings.mirror_options, on_warning=reporter.warn
    ) as upstream:
        plan, _, _ = _listed_plan(
            upstream, settings, lambda: local, reporter, remembered=remembered
        )
        pages = {}
        if not settings.index_only:
            with ThreadPoolExecutor(settings.workers) as pool:
                for name, page in zip(plan.todo, pool.map(_page_or_none(upstream), plan.todo)):
                    if page is not None:
                        pages[name] = settings.rules.keep(name, page.files)
    print_dry_run(plan, pages, root, reporter)
    return 0


def _read_state(state_db: Path) -> tuple[dict[str, int | None], str | None]:
    """The tree's projects and serials, and the serial source auto found last: read-only
    (a dry run changes nothing)."""
    import sqlite3

    if not state_db.is_file():
        return {}, None
    try:
        db = sqlite3.connect(f"{state_db.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}, None
    try:
        projects = dict(db.execute("SELECT name, serial FROM projects"))
        row = db.execute("SELECT value FROM meta WHERE key = ?", (f"sync.{SOURCE_KEY}",))
        found = row.fetchone()
        return projects, found[0] if found else None
    except sqlite3.Error:
        return {}, None
    finally:
        db.close()


def _page_or_none(upstream: Upstream) -> Callable[[str], ProjectPage | None]:
    def fetch(name: str) -> ProjectPage | None:
        try:
            return upstream.project_page(name)
        except UpstreamError:
            return None

    return fetch


def _sync(options: SyncOptions, settings: SyncSettings, reporter: Reporter) -> int:
    started = time.monotonic()
    with SyncRun(options, settings, reporter) as run:
        done = run.run()
    print_sync_summary(done.tally, done.published, time.monotonic() - started, reporter)
    return 0 if done.complete else 1


@dataclass(frozen=True)
class SyncDone:
    """What a sync did: its tally, what publish wrote, and whether every project is done."""

    tally: SyncTally
    published: Published
    complete: bool


class SyncRun:
    """One sync of a whole index (or a name-filtered part): the tree state and the
    upstream it owns in one ExitStack, closed in the reverse order of their making.

    ``run`` goes through the steps in order: the plan (``plan``: serial list against
    the state, the deletion guard), every project's page and files (``ProjectRun``),
    the projects that leave (``leave``), then publish (``publish``).
    """

    def __init__(self, options: SyncOptions, settings: SyncSettings, reporter: Reporter) -> None:
        self.options = options
        self.settings = settings
        self.reporter = reporter
        self.root = options.index_path
        self._stack = ExitStack()
        try:
            self.state = self._stack.enter_context(TreeState(self.root))
            self.upstream = self._stack.enter_context(
                Upstream(
                    settings.index_url,
                    options=settings.mirror_options,
                    pool_size=max(32, settings.workers),
                    on_warning=reporter.warn,
                )
            )
        except BaseException:
            self._stack.close()
            raise

    def __enter__(self) -> SyncRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self) -> SyncDone:
        state = self.state
        if state.load_problem:
            self.reporter.warn(state.load_problem)
        plan, listed, local = self.plan()
        # What the project stage and leave() still ask of the tree's projects: those the
        # plan fetches.  The whole map (900,000 entries at PyPI's scale) and the list are
        # not held through the run; the list leaves once its source and size are read.
        local = {name: local[name] for name in plan.todo if name in local}
        own_serials, listed_count = listed.source == NAMES, len(listed.serials)
        del listed
        writer = TreeWriter(
            self.root,
            state,
            on_problem=self.reporter.warn,
            index_only=self.settings.index_only,
            warehouse=True,
            # No serials upstream: pages get the tree's own, moved when a page changes.
            serials=own_serials,
        )
        tally = SyncTally(listed=listed_count, unchanged=plan.unchanged, excluded=plan.excluded)
        projects = ProjectRun(
            self.upstream, writer, self.settings, self.options, self.reporter, tally, local
        )
        projects.run(plan)
        self.leave(writer, plan, projects.vanished, local, tally)
        complete = not tally.failed and not tally.stale
        synced = None
        if complete:
            # Without upstream serials the tree's own: every page up to it is in place.
            synced = plan.target if plan.target is not None else writer.published_serial()
        # What is still to do: the failures, and (only if publish is cut short) the rest.
        unfinished = {n: s for n, s in plan.todo.items() if n in tally.failed or n in tally.stale}
        # Publish holds the root pages and the landing page of every project: the plan's
        # map of them (900,000 names and serials at PyPI's scale) is not held through it.
        del plan, local, projects
        published = self.publish(writer, synced, unfinished)
        return SyncDone(tally, published, complete)

    def plan(self) -> tuple[SyncPlan, SerialList, dict[str, int | None]]:
        """The serial list against the state (what a killed run left included), recorded
        in the state as the run's to-do before anything is fetched; with the list and the
        tree's projects it was made from."""
        state = self.state
        left = state.sync_todo()
        if left:
            self.reporter.info(f"Resuming: {len(left)} projects were left to do by the last run")
        remembered = state.sync_value(SOURCE_KEY)
        plan, listed, local = _listed_plan(
            self.upstream,
            self.settings,
            lambda: dict(state.projects()),
            self.reporter,
            left,
            remembered,
        )
        if self.settings.source == "auto":
            state.set_sync_value(SOURCE_KEY, listed.source)
        state.set_sync_value("upstream", self.upstream.index_url)  # without its credentials
        state.set_sync_value("target", str(plan.target) if plan.target is not None else None)
        state.set_sync_todo(plan.todo)
        state.commit()
        return plan, listed, local

    @staticmethod
    def leave(
        writer: TreeWriter,
        plan: SyncPlan,
        vanished: list[str],
        local: dict[str, int | None],
        tally: SyncTally,
    ) -> None:
        """Projects upstream no longer lists leave; of those listed whose pages answer
        404, only those the tree had."""
        dropped = [name for name in vanished if name in local]
        for name in (*plan.remove, *dropped):
            writer.remove_project(name)
        tally.removed = len(plan.remove) + len(dropped)
        tally.missing = sorted(vanished)

    def publish(
        self, writer: TreeWriter, synced: int | None, unfinished: dict[str, int]
    ) -> Published:
        """The shared publish step; the tree's serial moves only when nothing failed."""
        if synced is not None:
            self.state.set_sync_value("serial", str(synced))
        published = publish(
            writer,
            server=None if self.options.skip_server_copy else serve.server_source().read_bytes(),
            config=self.settings.config_bytes,
            diff=self.settings.diff,
            serial_list=True,
            synced_serial=synced,
        )
        self.state.set_sync_todo(unfinished)
        self.state.commit()
        return published
