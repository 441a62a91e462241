"""The steps of a curated sync (modes/slice.py), over the run's config and settings:
the serial list checked against the allowlist, each entry's kept releases, the
closures to reuse or resolve, a resolved closure taken into the plan, the deletion
guard, and the record the next run starts from (modes/slice_state.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, cast

from packaging.version import Version

from morgan_like.config.syncconf import SyncConfig
from morgan_like.dists.serials import SerialList
from morgan_like.errors import ConfigError, SyncRefused
from morgan_like.index.finder import Finder
from morgan_like.index.httputil import redact_url
from morgan_like.index.serials import fetch_serials
from morgan_like.index.upstream import Upstream
from morgan_like.modes.resolving import ResolveSession
from morgan_like.modes.slice_closures import Job, Outcome, own_files, resolve_one, slice_key
from morgan_like.modes.slice_report import SliceTally
from morgan_like.modes.slice_state import Closure, SliceRecord
from morgan_like.modes.sync_plan import default_max_deletions
from morgan_like.output import Reporter
from morgan_like.resolve.plan import Plan, resolution_files
from morgan_like.resolve.resolver import ResolveOptions
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

if TYPE_CHECKING:
    from morgan_like.modes.sync import SyncSettings


class SliceSteps:
    """What a slice run does step by step; the run (modes/slice.SliceRun) orders them."""

    config: SyncConfig
    settings: SyncSettings
    reporter: Reporter
    envs: tuple[Environment, ...]
    tally: SliceTally

    def serial_list(self, upstream: Upstream, state: TreeState | None) -> SerialList:
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

    def run_key(self, index_url: str) -> str:
        return slice_key(index_url, self.settings, self.config, self.envs)

    def kept_releases(
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

    def jobs(self, kept: dict[str, list[Version]]) -> list[Job]:
        jobs = []
        for entry in self.config.allowlist:
            for version in kept[str(entry.requirement)]:
                for env in self.envs:
                    if env.evaluate(entry.requirement.marker):
                        jobs.append(Job(entry, version, env))
        return jobs

    def reuse(
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
        for job in self.jobs(kept):
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

    def resolve_jobs(self, jobs: list[Job], finder: Finder, ropts: ResolveOptions) -> list[Outcome]:
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

    def take(
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

    def guard(self, writer: TreeWriter, plan: Plan) -> None:
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

    def slice_record(
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
