"""Project pages written in batches: one commit of the diff-file's intents per batch,
not one per project.

A page may change on disk only once the state has committed that it (and the files it
newly lists) are news for the diff-file (TreeWriter._note_intent), and a project may be
recorded as written (its serial, the sync's "finished") only once its pages are on
disk.  One project at a time, that is a commit per project, each a WAL append and a
round of sqlite's locks.  In a batch:

1. the writer renders each project's pages and keeps those whose bytes change here,
   with the paths they make news of; the project's rows wait too: its serial here, the
   sync's ``sync_done`` in the state (TreeState.hold);
2. at ``flush`` (every BATCH_PROJECTS projects, before anything else the writer does,
   and before the state answers a read that could see the waiting rows): one commit of
   every intent, then the pages (JSON before HTML, project after project, each an
   atomic replace), then the rows, committed with the next commit.

A kill before the commit leaves nothing of the batch; after it, intents for pages that
may or may not have changed (a diff-file names a path too many, never one too few);
after the pages, projects the state does not count as written, which the next run
writes again.  So every moment keeps the rules of one project at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

from morgan_like.tree.files import atomic_write_bytes
from morgan_like.tree.state import TreeState

BATCH_PROJECTS = 100


class PageBatch:
    """The pages one TreeWriter has rendered and not yet written."""

    def __init__(self, root: Path, state: TreeState, tmp_dir: Path) -> None:
        self.root, self.state, self.tmp_dir = root, state, tmp_dir
        self._projects: list[tuple[str, list[tuple[str, bytes]], int | None]] = []
        self._intents: list[str] = []
        self._names: set[str] = set()
        state.settle = self.flush

    def __contains__(self, norm: str) -> bool:
        return norm in self._names

    def add(
        self, norm: str, writes: list[tuple[str, bytes]], intents: list[str], serial: int | None
    ) -> None:
        """``writes``: the project's pages whose bytes change, in order; ``intents``: the
        paths they make news of; ``serial``: what the state records once they are on disk."""
        self.state.hold()
        self._projects.append((norm, writes, serial))
        self._intents += intents
        self._names.add(norm)
        if len(self._projects) >= BATCH_PROJECTS:
            self.flush()

    def flush(self) -> None:
        if not self._projects:
            return
        projects, self._projects = self._projects, []
        intents, self._intents = self._intents, []
        self._names = set()
        try:
            self.state.note_unsent_all(intents, removed=False)
            self.state.commit()
            for _norm, writes, _serial in projects:
                for relpath, data in writes:
                    path = os.path.join(self.root, relpath)
                    atomic_write_bytes(path, data, tmp_dir=self.tmp_dir)
            for norm, _writes, serial in projects:
                self.state.set_project(norm, serial)
        except BaseException:
            self.state.release(done=False)  # not finished: the next run does them again
            raise
        self.state.release()
