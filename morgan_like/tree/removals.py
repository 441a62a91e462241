"""What leaves the tree, queued until publish, and the deleting of it in a safe order.

The writer deletes nothing while a run writes pages: ``remove_project`` queues a
project to leave, and ``write_project(replace=True)`` queues the files its new
page no longer lists.  Publish first writes the root pages without the leaving
projects, commits the state, then calls :meth:`Removals.apply`: a leaving
project loses its HTML page (what pip reads), then its JSON pages, then its
files; then the files replaced pages no longer list go.  So after a kill at any
moment each root link has its page and each page link its file, and a later run
finishes a leaving project the kill interrupted (the state's ``leaving`` rows).

Every path is committed to the state's ``unsent`` rows before it is deleted, so
the next diff-file carries the removal even when this run dies before its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from morgan_like.tree.files import drop_empty_dirs, files_under, is_legacy_temp
from morgan_like.tree.layout import (
    PACKAGES_DIR,
    SIMPLE_DIR,
    is_hidden,
    page_relpaths,
    warehouse_relpath,
)
from morgan_like.tree.state import TreeState


class Removals:
    """The removal queue of one TreeWriter.

    ``remove`` deletes one relpath and keeps the writer's books (state row, diff-file);
    it is the writer's, looked up at each call, so a test can watch every deletion.
    """

    def __init__(self, root: Path, state: TreeState, remove: Callable[[str], bool]) -> None:
        self.root = root
        self.state = state
        self._remove = remove
        self.leaving: set[str] = set()  # projects queued to leave the tree
        self.stale: dict[str, set[str]] = {}  # project -> files no page lists any more

    def queue_project(self, norm: str) -> None:
        self.leaving.add(norm)
        self.stale.pop(norm, None)

    def pending(self, norm: str) -> bool:
        """Whether files of this project are still to be deleted (queued, not done)."""
        return bool(self.stale.get(norm)) or norm in self.leaving

    def note_intent(self, relpaths: list[str]) -> None:
        """Commit, before any is deleted, that these paths (those that exist, or have a
        row) are news for the diff-file: a run killed after the deletion must not keep
        the removal from the far side."""
        doomed = [
            rel
            for rel in relpaths
            if not is_hidden(rel)
            and ((self.root / rel).exists() or self.state.get(rel) is not None)
        ]
        if doomed:
            for relpath in doomed:
                self.state.note_unsent(relpath, removed=True)
            self.state.commit()

    def unlisted(self, norm: str, keep: set[str], simple_folder: bool = True) -> set[str]:
        """What a replaced page no longer lists: files on disk, rows of files already gone
        (a killed run unlinked them), and temp files older versions left in its folders.
        ``simple_folder`` False: the project had no folder in simple/ before its pages
        (none to look through for old temp files)."""
        found = set(files_under(self.root, self.root / PACKAGES_DIR / norm, temps=True))
        found.update(self.state.relpaths_under(f"{PACKAGES_DIR}/{norm}"))
        if simple_folder:
            with contextlib.suppress(OSError), os.scandir(self.root / SIMPLE_DIR / norm) as it:
                found.update(f"{SIMPLE_DIR}/{norm}/{e.name}" for e in it if is_legacy_temp(e.name))
        return found - keep

    def apply(self) -> list[str]:
        """Delete what is queued; returns the relpaths removed.

        Only once the root pages no longer list a leaving project (publish's write_root);
        the tree state forgets each file as it goes, even one already gone from disk.
        """
        if any(self.state.project(norm)[0] for norm in self.leaving):
            raise RuntimeError("apply_removals before write_root: the root still lists them")
        removed: list[str] = []
        # With the projects a killed run took out of the root pages but did not finish.
        for norm in sorted(self.leaving.union(self.state.leaving())):
            doomed = [*page_relpaths(norm), warehouse_relpath(norm)]
            for top in (SIMPLE_DIR, PACKAGES_DIR):
                base = self.root / top / norm
                doomed += files_under(self.root, base, include_hidden=True)
                doomed += self.state.relpaths_under(f"{top}/{norm}")
            self.note_intent(doomed)
            for relpath in dict.fromkeys(doomed):
                if self._remove(relpath):
                    removed.append(relpath)
            for top in (SIMPLE_DIR, PACKAGES_DIR):
                drop_empty_dirs(self.root / top / norm, including_base=True)
            self.state.forget_leaving(norm)
        self.note_intent([rel for stale in self.stale.values() for rel in stale])
        for norm, stale in sorted(self.stale.items()):
            for relpath in sorted(stale):
                if self._remove(relpath):
                    removed.append(relpath)
            drop_empty_dirs(self.root / PACKAGES_DIR / norm, including_base=False)
        self.leaving.clear()
        self.stale.clear()
        return sorted(removed)
