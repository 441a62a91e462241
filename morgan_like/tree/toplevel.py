"""The tree's top-level files as a TreeWriter writes them: the root pages, the serial
list, files such as server.py and morgan.ini, and the manifest that vouches for them.

Publish calls them in that order (tree/publish.py), each through the TreeWriter, which
first writes the project pages its batch holds: a root page never links a page that
is not there yet.  Each write goes through the writer's books (``put``: the bytes
written only when they differ, the state and the diff-file's lists kept in step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from morgan_like.tree.files import atomic_write_bytes
from morgan_like.tree.layout import (
    LOCAL_JSON,
    LOCAL_SERIAL,
    MANIFEST_NAME,
    ROOT_HTML,
    ROOT_JSON,
    is_hidden,
    is_project_path,
    normalize_relpath,
)
from morgan_like.tree.manifest import render_manifest
from morgan_like.tree.pages import render_local_json, render_root_html, render_root_json
from morgan_like.tree.state import TreeState


class TopLevelFiles:
    """The files at the tree's top level of one TreeWriter, written through its books:
    ``put`` writes bytes that differ and records them; ``note_intent`` commits paths as
    news for the diff-file before they change; ``note_changed`` lists a path changed."""

    def __init__(
        self,
        root: Path,
        state: TreeState,
        tmp_dir: Path,
        put: Callable[[str, bytes], bool],
        note_intent: Callable[[list[str]], None],
        note_changed: Callable[[str], None],
    ) -> None:
        self.root, self.state, self._tmp = root, state, tmp_dir
        self._put, self._note_intent, self._note_changed = put, note_intent, note_changed

    def write_root(self, leaving: Iterable[str], *, killed_before: bool) -> list[str]:
        """Root pages from the tree state's projects; returns changed relpaths.

        Skipped when no project was added or removed and no serial moved, so a run
        that changed nothing at that level costs nothing here.  The projects leaving the
        tree leave the state's projects here, so the pages rendered now omit them while
        their own pages and files are all still in place.  ``killed_before``: a run
        stopped mid-publish, so both are rendered again.
        """
        for norm in sorted(leaving):
            self.state.drop_project(norm)
        if (
            not killed_before
            and not self.state.projects_changed
            and all(self.state.is_verified(rel) for rel in (ROOT_JSON, ROOT_HTML))
        ):
            return []
        projects = _Projects(self.state)
        changed = []
        if self._put(ROOT_JSON, render_root_json(projects, self.state.highest_serial())):
            changed.append(ROOT_JSON)
        # The HTML root lists names only: a moved serial leaves it as it is.
        if (
            killed_before or self.state.names_changed or not self.state.is_verified(ROOT_HTML)
        ) and self._put(ROOT_HTML, render_root_html(_Names(self.state))):
            changed.append(ROOT_HTML)
        self.state.projects_changed = self.state.names_changed = False
        return changed

    def write_serial_list(self, synced_serial: int | None) -> list[str]:
        """``local.json`` (every project's serial) and ``local.db.serial`` (the serial
        everything is synced up to), after write_root: what a mirror chaining from this
        tree reads.  The serial file is left as it is when ``synced_serial`` is None."""
        changed = []
        if self._put(LOCAL_JSON, render_local_json(_Projects(self.state))):
            changed.append(LOCAL_JSON)
        if synced_serial is not None and self._put(LOCAL_SERIAL, f"{synced_serial}\n".encode()):
            changed.append(LOCAL_SERIAL)
        return changed

    def write_file(self, relpath: str, data: bytes) -> bool:
        """Atomically write a top-level file (server.py, morgan.ini); returns whether it changed."""
        relpath = normalize_relpath(relpath)
        if relpath == MANIFEST_NAME or is_project_path(relpath) or is_hidden(relpath):
            raise ValueError(f"{relpath} is not a top-level file of the tree")
        return self._put(relpath, data)

    def write_manifest(self) -> list[str]:
        """manifest.json from the recorded top-level files; returns ["manifest.json"] if changed.

        Written last, after everything it vouches for, and fsynced.
        """
        data = render_manifest(self.state.top_level())
        path = self.root / MANIFEST_NAME
        try:
            same = path.read_bytes() == data
        except OSError:
            same = False
        if same:
            return []
        self._note_intent([MANIFEST_NAME])
        atomic_write_bytes(path, data, durable=True, tmp_dir=self._tmp)
        self._note_changed(MANIFEST_NAME)
        return [MANIFEST_NAME]


class _Projects:
    """The state's projects, sorted by name, read a chunk of rows at a time each time they
    are iterated: the root pages and local.json of a whole index are written from them
    (tree/pages.py iterates once when the names are canonical, else twice) without a
    list of every project."""

    def __init__(self, state: TreeState) -> None:
        self.state = state

    def __iter__(self) -> Iterator[tuple[str, int | None]]:
        return self.state.each_project()


class _Names:
    """The state's project names as _Projects reads them (iterable more than once)."""

    def __init__(self, state: TreeState) -> None:
        self.state = state

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.state.each_project())
