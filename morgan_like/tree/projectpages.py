"""A project's pages as one unit: which files they are, their bytes rendered together,
their old bytes read together.

A project has two or three pages: with ``warehouse`` its Warehouse JSON
(``json/<project>``, tree/warehouse.py), then the PEP 691 JSON page, then the PEP 503
HTML page (tree/pages.py), written in that order: pip and uv over file:// read only
index.html, so it goes last.  The writer reads their old bytes once per project
(:func:`read_pages`): what the page lists comes from them (tree/readback.py), and a
page whose new bytes equal the old is not written at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from morgan_like.dists.links import ProjectMeta
from morgan_like.tree.filemeta import read_metadata_file
from morgan_like.tree.files import read_bytes
from morgan_like.tree.layout import (
    METADATA_SUFFIX,
    SIMPLE_DIR,
    package_relpath,
    page_relpaths,
    warehouse_relpath,
)
from morgan_like.tree.pages import FileEntry, render_project_html, render_project_json
from morgan_like.tree.warehouse import render_warehouse_json

Pages = list[tuple[str, bytes]]  # (relpath, bytes) in the order they are written


def page_files(norm: str, warehouse: bool) -> list[str]:
    """A project's page files, in the order render_pages gives them."""
    html_rel, json_rel = page_relpaths(norm)
    return [warehouse_relpath(norm), json_rel, html_rel] if warehouse else [json_rel, html_rel]


def render_pages(
    root: Path,
    norm: str,
    entries: list[FileEntry],
    meta: ProjectMeta,
    serial: int | None,
    warehouse: bool,
) -> Pages:
    """The project's pages from one sorted list of entries (each renderer's own sort
    then finds it in order)."""
    entries = sorted(entries, key=lambda e: e.filename)
    html_rel, json_rel = page_relpaths(norm)
    pages: Pages = []
    if warehouse:
        rendered = render_warehouse_json(
            norm, entries, serial, lambda e: _release_metadata(root, norm, e)
        )
        pages.append((warehouse_relpath(norm), rendered))
    pages.append((json_rel, render_project_json(norm, entries, serial, meta)))
    pages.append((html_rel, render_project_html(norm, entries, serial, meta)))
    return pages


def read_pages(root: Path, norm: str, warehouse: bool) -> tuple[dict[str, bytes | None], bool]:
    """Each page's bytes as they are (None: missing or unreadable), and whether the
    project has its folder in simple/.

    Without that folder (a project new to the tree) neither page in it is there to
    read: one stat instead of two failed opens.
    """
    folder = os.path.isdir(os.path.join(root, SIMPLE_DIR, norm))
    found: dict[str, bytes | None] = {}
    for rel in page_files(norm, warehouse):
        in_folder = rel.startswith(SIMPLE_DIR + "/")
        found[rel] = read_bytes(os.path.join(root, rel)) if folder or not in_folder else None
    return found, folder


def _release_metadata(root: Path, norm: str, entry: FileEntry) -> bytes | None:
    """The ``.metadata`` we wrote for a local wheel (for Warehouse JSON's info)."""
    if not entry.metadata_sha256 or "://" in entry.url:
        return None
    return read_metadata_file(root / (package_relpath(norm, entry.filename) + METADATA_SUFFIX))
