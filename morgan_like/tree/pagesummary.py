"""What the landing page shows of a project, and the summaries a writer hands to publish.

The landing page (tree/landing.py) shows per project its newest version, its release
and file counts and its bytes.  Those come from what the project's page lists: read
back from the page's files, or taken from the entries the writer has just rendered the
page from (the same files, so the same row; one rule, :func:`summarize`, for both).

A first sync writes every project's pages; reading them all back at publish to learn
what the writer already knew cost most of publish at 50,000 projects.  So the writer
keeps a row per project it writes (:class:`PageSummaries`), and publish reads a page
only for a project the writer did not write in this run (an earlier, killed run's; a
page brought by an import).  The rows are few numbers and strings each; past
MAX_KEPT projects the writer stops keeping new ones and publish reads those pages, so
the memory a run holds for this stays bounded whatever the size of the mirror.
"""

from __future__ import annotations

from collections.abc import Sequence

from morgan_like.dists.links import RemoteFile
from morgan_like.tree.landing_html import ProjectRow
from morgan_like.tree.pages import FileEntry

# About 250 bytes a row: at most some 50 MB held for the landing page during a run.
MAX_KEPT = 200_000


def summarize(name: str, files: Sequence[FileEntry] | Sequence[RemoteFile]) -> ProjectRow:
    """The row of a project whose page lists ``files`` (a file whose name gives no
    version counts as a file, not as a release)."""
    versions = {f.version for f in files if f.version is not None}
    newest = str(max(versions)) if versions else ""
    return ProjectRow(name, newest, len(versions), len(files), sum(f.size or 0 for f in files))


class PageSummaries:
    """The row of each project whose pages a TreeWriter wrote (or found unchanged) in
    this run, as those pages list it; a project whose pages changed another way, or
    that leaves, has none (publish then reads its page, or drops it)."""

    def __init__(self, limit: int = MAX_KEPT) -> None:
        self._rows: dict[str, ProjectRow] = {}
        self._limit = limit

    def keep(self, norm: str, entries: Sequence[FileEntry]) -> None:
        """``entries``: exactly what the project's pages list from now on."""
        if norm in self._rows or len(self._rows) < self._limit:
            self._rows[norm] = summarize(norm, entries)

    def drop(self, norm: str) -> None:
        self._rows.pop(norm, None)

    def get(self, norm: str) -> ProjectRow | None:
        return self._rows.get(norm)

    def __len__(self) -> int:
        return len(self._rows)
