"""A bundle's project pages from its plan: what ``mirror`` and a curated slice write."""

from __future__ import annotations

from morgan_like.output import Reporter
from morgan_like.resolve.plan import Plan
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.writer import TreeWriter


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
