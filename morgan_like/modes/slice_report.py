"""What a curated sync tells its user: the dry-run slice, failures, the summary.

Every failed closure is reported once, naming its release, its env and the
conflict; a release no env can install is one info line (not an error); the
sdists each env must build are listed per env as bundle mode does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from morgan_like.modes.bundle_report import EnvBuilds, SdistRow, report_builds
from morgan_like.modes.bundle_views import report_view_urls
from morgan_like.modes.slice_state import Closure
from morgan_like.output import Reporter, human_size
from morgan_like.resolve.plan import Plan
from morgan_like.resolve.resolver import EnvResolution
from morgan_like.tree.layout import PACKAGES_DIR
from morgan_like.tree.publish import Published


@dataclass
class SliceTally:
    resolved: int = 0
    reused: int = 0
    downloaded: int = 0
    failed_files: list[str] = field(default_factory=list)


def _release(closure: Closure) -> str:
    """The release as its install line on the target: ``fastapi[standard]==0.115.0``."""
    req = Requirement(closure.key.entry)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}=={closure.key.version}"


def report_closures(closures: list[Closure], reporter: Reporter) -> None:
    """Unsupported releases (info), then each failed closure once (error)."""
    for c in sorted(closures, key=lambda c: (c.key.entry, c.key.version, c.key.env)):
        if c.unsupported is not None:
            reporter.detail(f"{_release(c)}: not for env {c.key.env} ({c.unsupported})")
    for c in sorted(closures, key=lambda c: (c.key.entry, c.key.version, c.key.env)):
        if c.error is not None:
            kept = (
                "; its files from the last good sync stay, so it still installs"
                if c.files
                else "; it is not in this env's view"
            )
            reporter.error(
                f"cannot keep {_release(c)} for env {c.key.env}{kept}:\n  "
                + c.error.replace("\n", "\n  ")
            )


def _builds(
    closures: list[Closure], env_res: list[EnvResolution], plan: Plan
) -> dict[str, EnvBuilds]:
    """Per env, the sdists its clients build (no wheel of that release for them)."""
    rows: dict[str, EnvBuilds] = {}
    for resolution in env_res:
        env = resolution.env.name
        built = plan.must_build(env)
        sdists = []
        for relpath in sorted(built):
            entry = plan.files[relpath]
            needed_by: tuple[str, ...] = ()
            for b in resolution.build_sdists:
                if b.name == entry.project and str(b.version) == str(entry.file.version):
                    needed_by = b.needed_by
            reason = "a build requirement" if entry.build else "no wheel for this env"
            sdists.append(SdistRow(entry.project, str(entry.file.version), reason, needed_by))
        rows[env] = EnvBuilds(tuple(sdists))
    return rows


def report_slice(
    root: Path,
    closures: list[Closure],
    env_res: list[EnvResolution],
    plan: Plan,
    published: Published,
    tally: SliceTally,
    reporter: Reporter,
    elapsed: float,
) -> None:
    report_closures(closures, reporter)
    report_builds(_builds(closures, env_res, plan), reporter)
    rows = []
    for env in plan.env_names:
        entries = plan.for_env(env)
        mine = [c for c in closures if c.key.env == env]
        rows.append(
            (
                env,
                str(sum(1 for c in mine if c.error is None and c.unsupported is None)),
                str(sum(1 for c in mine if c.error is not None)),
                str(len({e.project for e in entries})),
                str(len(entries)),
                human_size(sum(e.file.size or 0 for e in entries)),
            )
        )
    reporter.table("Slice", ("env", "releases", "failed", "projects", "files", "size"), rows)
    reporter.info(
        f"{tally.resolved} closures resolved, {tally.reused} unchanged; "
        f"{tally.downloaded} files fetched, {len(tally.failed_files)} failed; "
        f"{len(published.changed)} paths changed, {len(published.removed)} removed "
        f"in {elapsed:.1f}s"
    )
    for relpath in tally.failed_files:
        reporter.error(f"download failed: {relpath} (the next sync tries again)")
    report_view_urls(root, plan.env_names, reporter)


def print_slice_plan(
    root: Path,
    kept: dict[str, list],
    closures: list[Closure],
    plan: Plan,
    reporter: Reporter,
) -> None:
    """The dry run: per entry its kept releases and what each pulls in per env, then the
    bytes to fetch (planned files the tree lacks) and to free (files no closure keeps)."""
    by_key = {(c.key.entry, c.key.version, c.key.env): c for c in closures}
    rows = []
    for entry, versions in kept.items():
        for version in versions:
            for env in plan.env_names:
                c = by_key.get((entry, str(version), env))
                if c is None:
                    continue
                if c.unsupported is not None:
                    what = f"(not for this env: {c.unsupported})"
                elif c.error is not None:
                    what = "FAILS: " + c.error.splitlines()[0]
                else:
                    pulled = sorted({f.split("/")[1] for f in c.files})
                    what = f"{len(pulled)} projects: " + ", ".join(pulled)
                rows.append((entry, str(version), env, what))
    reporter.table("Slice (dry run)", ("allowlisted", "release", "env", "pulls in"), rows)
    planned = set(plan.files)
    fetch = sum(
        e.file.size or 0
        for relpath, e in plan.files.items()
        if not _same_size(root / relpath, e.file.size)
    )
    free = 0
    packages = root / PACKAGES_DIR
    if packages.is_dir():
        for folder in packages.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                relpath = f"{PACKAGES_DIR}/{folder.name}/{path.name}"
                if (
                    path.is_file()
                    and not path.name.endswith(".metadata")
                    and relpath not in planned
                ):
                    free += path.stat().st_size
    reporter.info(f"would fetch {human_size(fetch)}, free {human_size(free)}")
    report_closures(closures, reporter)


def _same_size(path: Path, size: int | None) -> bool:
    try:
        return size is None or os.stat(path).st_size == size
    except OSError:
        return False
