"""The per-project work of one sync: pages and new files fetched by a pool, recorded and
written by one thread, in completion order.

Each project's outcome (fetch.projects) is a page with its kept files, "gone"
(listed, but its page answers 404), "stale" (older than the list promised) or an
error.  A project's serial moves only when its page and every file it lists are
in place (TreeWriter.write_project); one with failed downloads keeps what its
page listed plus what arrived, and its old serial, so the next run does it
again.  The tally counts what really changed: a project read again and found as
it was is unchanged.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import TYPE_CHECKING

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.errors import MorganLikeError
from morgan_like.fetch.projects import (
    Outcome,
    PageFetched,
    PoolBroken,
    ProjectFailed,
    ProjectGone,
    ProjectJob,
    ProjectStale,
    fetch_in_processes,
    fetch_in_threads,
)
from morgan_like.index.upstream import Upstream
from morgan_like.modes.sync_plan import SyncPlan
from morgan_like.modes.sync_report import SyncTally
from morgan_like.output import Counter, Reporter, human_size
from morgan_like.tree.bucketstream import stream_throttle
from morgan_like.tree.writer import TreeWriter

if TYPE_CHECKING:  # the settings' home imports this module
    from morgan_like.modes.sync import SyncOptions, SyncSettings

COMMIT_EVERY = 1.0  # seconds between commits of the tree state during a run
EVENTS_MAX = 1024  # fetched projects waiting for the writer, at most
PROGRESS_EVERY = 30.0  # seconds between progress lines when the output is not a terminal
# Pages of this many projects or more are fetched and parsed in worker processes
# (fetch.projects): parsing and hashing would otherwise share this process's core.
# With fewer than 4 cores, none: the workers' pickled pages and their own start
# cost this process (the writer's) more than the pages' parsing in its threads.
PROCESS_THRESHOLD = 2000
PAGE_PROCESSES = min(4, os.cpu_count() or 1) if (os.cpu_count() or 1) >= 4 else 1
# With files, a project is its page and a download per file: each request's turns at
# the interpreter lock are what the writer's thread waits behind, and they outweigh
# the pickled page.  So from FILES_PROCESS_THRESHOLD projects on, the fetches go to
# worker processes on 2 cores too; below it, the workers' start-up (their imports,
# before the first page) costs more than it saves.
FILES_PROCESS_THRESHOLD = 500
FILE_PROCESSES = min(4, os.cpu_count() or 1)


def fetch_processes(projects: int, files: bool) -> int:
    """How many worker processes fetch ``projects`` projects (1: threads in this one)."""
    if files:
        return FILE_PROCESSES if projects >= FILES_PROCESS_THRESHOLD else 1
    return PAGE_PROCESSES if projects >= PROCESS_THRESHOLD else 1


class ProjectRun:
    """The per-project work of one sync: each project's page and new files fetched by a
    pool (fetch.projects), recorded and written by this thread alone (the writer is not
    thread-safe), in completion order."""

    def __init__(
        self,
        upstream: Upstream,
        writer: TreeWriter,
        settings: SyncSettings,
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
        self.events: queue.Queue[Outcome | PoolBroken] = queue.Queue(maxsize=EVENTS_MAX)
        self._stopping = False
        # A sync into a bucket: its stream says when it is too far behind (local disk).
        self._behind = stream_throttle(writer.root)

    def _deliver(self, outcome: Outcome | PoolBroken) -> None:
        """Hand an outcome to the writer's loop; dropped once the loop has stopped."""
        while not self._stopping:
            if self._behind is not None and self._behind(self.events.qsize()):
                time.sleep(0.1)
                continue
            try:
                self.events.put(outcome, timeout=0.5)
                return
            except queue.Full:
                continue

    def _fetch_all(self, todo: dict[str, int]) -> None:
        """Fetch every project (a feeder thread): in worker processes past a threshold
        (fetch_processes), where parsing, downloads and hashing would otherwise hold one core."""
        job = ProjectJob(
            self.settings.index_url,
            self.settings.mirror_options,
            self.settings.rules.keep,
            None if self.settings.index_only else self.writer.root,
            self.options.stale_retries,
            self.options.stale_delay,
            threads=max(4, self.settings.workers // 2),
        )
        # The names sorted, each paired with its serial as it is taken: a list of pairs
        # would hold a tuple per project (some 55 MB at PyPI's 900,000) through the run.
        names = sorted(todo)
        items = ((name, todo[name]) for name in names)
        try:
            processes = fetch_processes(len(names), job.root is not None)
            if processes > 1:
                fetch_in_processes(job, items, processes, self._deliver)
            else:
                fetch_in_threads(self.upstream, job, items, self.settings.workers, self._deliver)
        except Exception as exc:  # the pool itself broke: every project not done fails
            self._deliver(PoolBroken(str(exc) or exc.__class__.__name__))

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
                outcome = self.events.get()
                if isinstance(outcome, PoolBroken):
                    raise MorganLikeError(f"fetching projects failed: {outcome.message}")
                self._outcome(outcome, plan, data)
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

    def _outcome(self, outcome: Outcome, plan: SyncPlan, data: Counter) -> None:
        """What the pool reports of one project; the project is finished after it."""
        name = outcome.name
        if isinstance(outcome, ProjectGone):
            self.vanished.append(name)
            return
        if isinstance(outcome, ProjectFailed):
            self.tally.fail(name, outcome.message)
            self.reporter.warn(f"{name}: {outcome.message}")
            return
        if isinstance(outcome, ProjectStale):
            self.tally.stale.append(name)
            self.reporter.warn(
                f"{name}: upstream's page is still older (serial {outcome.serial}) than its "
                f"serial list says ({plan.todo[name]}); left for the next run"
            )
            return
        self._fetched(outcome, data)

    def _fetched(self, outcome: PageFetched, data: Counter) -> None:
        """A page read: its files recorded as they arrived, then the project written."""
        name, page, listed = outcome.name, outcome.page, outcome.listed
        for line in page.problems:
            self.reporter.warn(line)
        for rf, reason in self.settings.rules.left_out(name, page.files):
            self.reporter.warn(f"{name}: {rf.filename} left out: {reason}")
        failures = []
        for f in outcome.fetched:
            if f.error is not None:
                failures.append(f.error)
            elif f.sha256:  # arrived now, or found on disk unrecorded
                self.state.record(f.relpath, f.size, f.sha256, new=f.fetched)
                if f.fetched:
                    self.tally.files += 1
                    data.advance(f.size)
        # No serial from the list (names) nor the page: the writer gives the tree's own.
        serial = max(listed, page.last_serial or 0) or None
        self._finish(name, page, list(outcome.kept), serial, failures)

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
