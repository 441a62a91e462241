"""What a sync tells its user: the dry-run plan, and the summary at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from morgan_like.dists.links import RemoteFile
from morgan_like.modes.sync_plan import SyncPlan
from morgan_like.output import Reporter, human_size
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.publish import Published

MAX_NAMED = 20  # projects named per list before "and N more"


@dataclass
class SyncTally:
    """Counts of one run, for the summary and the exit code."""

    listed: int = 0
    unchanged: int = 0
    excluded: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    files: int = 0
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    # Listed by upstream's root, but their pages answer 404 (not removals: the tree may
    # never have had them, and the next run finds them listed again).
    missing: list[str] = field(default_factory=list)

    def fail(self, name: str, why: str) -> None:
        self.failed[name] = why


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def print_dry_run(
    plan: SyncPlan, pages: dict[str, list[RemoteFile]], root: Path, reporter: Reporter
) -> None:
    """The plan, with the bytes it would download (files not in the tree yet) and free."""
    new_files = new_bytes = unsized = 0
    for name, files in pages.items():
        for rf in files:
            if not (root / package_relpath(name, rf.filename)).is_file():
                new_files += 1
                new_bytes += rf.size or 0
                unsized += rf.size is None
    freed = 0
    for name in plan.remove:
        folder = root / "packages" / name
        if folder.is_dir():
            freed += sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    rows = [
        ["add", str(len(plan.add)), _names(sorted(plan.add))],
        ["update", str(len(plan.update)), _names(sorted(plan.update))],
        ["remove", str(len(plan.remove)), _names(list(plan.remove))],
        ["unchanged", str(plan.unchanged), ""],
        ["excluded", str(plan.excluded), ""],
    ]
    reporter.table("Sync plan (dry run: nothing changed)", ["action", "projects", "names"], rows)
    if pages:
        # Upstream need not give sizes (a plain PEP 503 index): never a made-up "0 B".
        if unsized == new_files and new_files:
            size = "size unknown (upstream gives none)"
        elif unsized:
            size = f"{human_size(new_bytes)} and {unsized} files of unknown size"
        else:
            size = human_size(new_bytes)
        reporter.info(f"Would download {new_files} files, {size}")
    if plan.remove:
        reporter.info(f"Would remove {len(plan.remove)} projects, freeing {human_size(freed)}")


def print_sync_summary(
    tally: SyncTally, published: Published, seconds: float, reporter: Reporter
) -> None:
    reporter.info(
        f"Synced in {seconds:.1f} s: {tally.added} projects added, {tally.updated} updated, "
        f"{tally.removed} removed, {len(tally.failed) + len(tally.stale)} failed; "
        f"{tally.files} files downloaded ({human_size(tally.bytes)}); "
        f"{tally.unchanged} unchanged of {tally.listed} listed"
        + (f", {tally.excluded} excluded" if tally.excluded else "")
    )
    if published.diff_file is not None:
        reporter.info(
            f"diff-file: {published.diff_file} ({len(published.changed)} changed, "
            f"{len(published.removed)} removed)"
        )
    if tally.missing:
        reporter.warn(
            f"{len(tally.missing)} projects listed by upstream's root have no page there "
            f"(404): {_names(tally.missing)}"
        )
    for name, why in sorted(tally.failed.items()):
        reporter.error(f"{name}: {why}; left for the next run")
    if tally.stale:
        reporter.error(
            f"{len(tally.stale)} projects still had stale pages: {_names(tally.stale)}; "
            "left for the next run"
        )
