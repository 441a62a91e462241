"""Our own pages read back: what the tree lists now, before a run replaces it.

A run that merges (a failed sync keeps what the page listed) and the diff rule
(a file is news to the far side when the page did not list it with that hash)
both ask what a project's page says; each page is parsed once per session, the
JSON page first, the HTML one when that is unreadable.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import ProjectPage, RemoteFile, parse_json_page
from morgan_like.tree.files import read_bytes
from morgan_like.tree.layout import PACKAGES_DIR, SIMPLE_DIR, page_relpaths
from morgan_like.tree.state import TreeState

Raw = dict[str, Optional[bytes]]  # a page's relpath -> its bytes as read (None: unreadable)


class OwnPages:
    """The tree's project pages as they are on disk (urls: file:// URIs into the tree)."""

    def __init__(self, root: Path, state: TreeState) -> None:
        self.root = root
        self.state = state
        self._read: dict[str, ProjectPage | None] = {}

    def page(self, project: str, raw: Raw | None = None) -> ProjectPage | None:
        """``raw``: the page files' bytes (relpath -> bytes, None: unreadable) when the
        caller has just read them, so they are not read twice."""
        if project not in self._read:
            self._read[project] = self._parse(project) if raw is None else self._from(project, raw)
        return self._read[project]

    def forget(self, project: str) -> None:
        """The page is about to change: read it again next time."""
        self._read.pop(project, None)

    def _parse(self, project: str) -> ProjectPage | None:
        html_rel, json_rel = page_relpaths(project)
        raw = {json_rel: read_bytes(self.root / json_rel)}
        if raw[json_rel] is None:  # the HTML page is read only when the JSON one fails
            raw[html_rel] = read_bytes(self.root / html_rel)
        return self._from(project, raw)

    def _from(self, project: str, raw: Raw) -> ProjectPage | None:
        """The page from its files' bytes: the JSON page, else the HTML one."""
        html_rel, json_rel = page_relpaths(project)
        json_path, html_path = self.root / json_rel, self.root / html_rel
        try:
            data = raw.get(json_rel)
            if data is not None:
                return parse_json_page(project, data, json_path.as_uri())
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        if html_rel not in raw:  # a JSON page that would not parse: the HTML one then
            raw = {**raw, html_rel: read_bytes(html_path)}
        try:
            data = raw.get(html_rel)
            if data is None:
                return None
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text
            return parse_html_page(project, text, html_path.as_uri())
        except (OSError, ValueError):
            return None

    def listed(
        self, project: str, raw: Raw | None = None
    ) -> dict[str, tuple[str | None, str | None]]:
        """filename -> (sha256, .metadata sha256) as the page lists them.

        What the far side of a transfer already has: a file is news to it (and goes into
        the diff-file) when this page did not list it with the same hash.  ``raw``: see
        :meth:`page`.
        """
        page = self.page(project, raw)
        if page is None:
            return {}
        return {f.filename: (f.sha256, f.metadata_sha256) for f in page.files}

    def files(self, project: str) -> list[RemoteFile]:
        page = self.page(project)
        return list(page.files) if page else []

    def projects(self) -> list[str]:
        """Normalized names of the projects with a page, or with files left on disk.

        Lists two directories (names only): cheap for a bundle, and only ``--prune``
        asks.  Modes that know what changed (sync) never need it.
        """
        names = set(self.state.project_names())
        for top in (SIMPLE_DIR, PACKAGES_DIR):
            with contextlib.suppress(OSError), os.scandir(self.root / top) as entries:
                names.update(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
        return sorted(names)
