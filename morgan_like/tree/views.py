"""One index view per env: ``envs/<env>/simple/``, listing only what that env resolved.

The union ``simple/`` lists every file of every env, so a client on one target can
meet a newer sdist that only another env kept and try to build it.  A view lists
an env's own files: the wheels it picks, the sdists of those same releases, and
the build requirements of the sdists it must build.  Its entries are taken from
the union pages as just written (so a view lists exactly what the union vouches
for, never a file that failed to arrive), with links two folders deeper; the files
themselves stay shared in ``packages/``.

Ordering, as for the union: a view's project pages are in place before its root
lists them, and a page the view no longer lists is deleted only after the root
has been rewritten without it.  What a view no longer lists is found by listing
``envs/`` itself (a handful of folders), so a run killed half-way is finished
by the next one.  All of it happens before publish deletes any file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from morgan_like.tree.files import drop_empty_dirs, files_under
from morgan_like.tree.layout import (
    ENVS_DIR,
    view_dir,
    view_file_url,
    view_page_relpaths,
    view_root_relpaths,
)
from morgan_like.tree.pages import (
    listed_entry,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from morgan_like.tree.writer import TreeWriter


@dataclass(frozen=True)
class EnvView:
    """What one env's view lists: normalized project name -> the filenames it keeps."""

    env: str
    projects: Mapping[str, frozenset[str]]


def _listed(root: os.PathLike[str] | str, folder: str) -> list[str]:
    """The visible sub-folders of ``folder`` (relative to the tree)."""
    with contextlib.suppress(OSError), os.scandir(os.path.join(root, folder)) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
    return []


def _write_view(writer: TreeWriter, view: EnvView) -> list[str]:
    changed: list[str] = []
    names: list[str] = []
    for project in sorted(view.projects):
        norm = canonicalize_name(project)
        wanted = view.projects[project]
        if writer.is_leaving(norm):
            continue  # its union page and files go at publish
        entries = [
            entry
            for rf in writer.existing_files(norm)
            if rf.filename in wanted
            and (entry := listed_entry(rf, view_file_url(norm, rf.filename))) is not None
        ]
        if not entries:
            continue  # nothing of it arrived: the view leaves it out, as the union does
        html_rel, json_rel = view_page_relpaths(view.env, norm)
        changed += writer.write_pages(
            [
                (json_rel, render_project_json(norm, entries)),
                (html_rel, render_project_html(norm, entries)),
            ]
        )
        names.append(norm)
    html_rel, json_rel = view_root_relpaths(view.env)
    changed += writer.write_pages(
        [
            (json_rel, render_root_json([(n, None) for n in names])),
            (html_rel, render_root_html(names)),
        ]
    )
    # Then what the root no longer lists: HTML first (what pip over file:// reads).
    base = view_dir(view.env)
    for folder in _listed(writer.root, base):
        if folder not in names:
            html_page, json_page = view_page_relpaths(view.env, folder)
            writer.remove_paths(
                [
                    html_page,
                    json_page,
                    *files_under(writer.root, writer.root / base / folder, include_hidden=True),
                ]
            )
            drop_empty_dirs(writer.root / base / folder, including_base=True)
    return changed


def write_views(writer: TreeWriter, views: Sequence[EnvView]) -> list[str]:
    """Write every env's view after the union's project pages; remove the views of envs
    no longer configured (root pages first).  Returns the relpaths written."""
    changed: list[str] = []
    for view in views:
        changed += _write_view(writer, view)
    keep = {view.env for view in views}
    for env in _listed(writer.root, ENVS_DIR):
        if env in keep:
            continue
        html_rel, json_rel = view_root_relpaths(env)
        writer.remove_paths(
            [
                html_rel,
                json_rel,
                *files_under(writer.root, writer.root / ENVS_DIR / env, include_hidden=True),
            ]
        )
        drop_empty_dirs(writer.root / ENVS_DIR / env, including_base=True)
    return changed
