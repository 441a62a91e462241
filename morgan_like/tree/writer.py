"""The tree on disk: .metadata files, simple/ pages, root pages, manifest.json.

Shared by every mode, so it takes plain records (RemoteFile lists per project)
and knows nothing of resolution or the network.  Its one promise is that an
index never references a missing or partial file: files are in place before the
pages that list them are (atomically) written, and a page is rewritten or
removed before anything it lists is deleted.

A run calls write_project() or remove_project() per project it touches, then
``tree.publish`` writes the root pages, carries out the queued removals, then the
top-level files and the manifest.  Nothing is deleted before publish: a project
leaving the tree leaves the root pages first, then loses its pages, then its
files; a file a replaced page no longer lists goes once every page is written.
So at every moment (and after a kill at any moment) each root link has its page
and each page link its file, and no client ever sees a planned project vanish.  Each
call costs in proportion to that project (the tree state answers "is this file
verified?" with one row and one stat).  ``changed`` / ``removed`` accumulate
every relpath touched in the session, ready for the diff-file.  A TreeWriter is
not thread-safe; the TreeState it shares with the downloader is.

Its helpers, each one job: tree/entries.py (a local file's entry and .metadata),
tree/readback.py (our pages as they are), tree/serials.py (the tree's own
serials), tree/removals.py (what leaves at publish, in a safe order),
tree/projectpages.py (a project's pages rendered and read as one), tree/pagebatch.py
(project pages written a batch at a time: on disk before any other call of the
writer returns, and before the state answers what they would change),
tree/pagesummary.py (what the landing page shows of each project written),
tree/toplevel.py (the root pages, the serial list, the top-level files, the manifest).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from morgan_like.dists.links import (
    NO_META,
    ProjectMeta,
    RemoteFile,
)
from morgan_like.tree import crashpoints
from morgan_like.tree.entries import LocalEntries
from morgan_like.tree.files import atomic_write_bytes, read_bytes, scratch_dir
from morgan_like.tree.layout import (
    JSON_DIR,
    METADATA_SUFFIX,
    PROVENANCE_SUFFIX,
    SIMPLE_DIR,
    check_filename,
    is_hidden,
    is_project_path,
    is_view_page,
    package_relpath,
)
from morgan_like.tree.pagebatch import PageBatch
from morgan_like.tree.pages import (
    FileEntry,
    upstream_entry,
)
from morgan_like.tree.pagesummary import PageSummaries
from morgan_like.tree.pathbook import PathBook
from morgan_like.tree.projectpages import read_pages, render_pages
from morgan_like.tree.readback import OwnPages
from morgan_like.tree.removals import Removals
from morgan_like.tree.serials import OwnSerials
from morgan_like.tree.state import TreeState
from morgan_like.tree.toplevel import TopLevelFiles

log = logging.getLogger(__name__)


class TreeWriter:
    """Writes one tree; see the module docstring for the call order.

    ``on_problem`` receives what the writer could not do (an unsafe filename, an
    unreadable wheel); modes pass their reporter's warning, so ``-q`` and ``-v`` apply.
    """

    def __init__(
        self,
        root: Path,
        state: TreeState,
        on_problem: Callable[[str], None] | None = None,
        *,
        index_only: bool = False,
        warehouse: bool = False,
        serials: bool = False,
    ) -> None:
        self.root = Path(root).absolute()
        self.state = state
        # index_only: pages link upstream's file URLs (absolute) and no file is kept here.
        # warehouse: also json/<project> (Warehouse JSON), so the tree can be an upstream.
        self.index_only = index_only
        self.warehouse = warehouse
        # serials: a page written without upstream's serial gets the tree's own (see
        # _serial_and_pages), so a mirror syncing from this tree sees every change.
        self.serials = serials
        self.own_serials = OwnSerials(state)
        # Every path changed or removed in this session, for the diff-file (PathBook: a
        # project's pages as bits of its name, so a first sync of a whole index fits).
        self.changed = PathBook()
        self.removed = PathBook()
        self.problems: list[str] = []
        self._on_problem = on_problem
        self._tmp = scratch_dir(self.root)
        # What leaves at publish; each deletion goes through self._remove (its books).
        self.removals = Removals(self.root, state, lambda relpath: self._remove(relpath))
        # Each local file's entry, .metadata and filled Requires-Python, through our books.
        self.local = LocalEntries(
            self.root,
            state,
            self.removals,
            lambda *args, **kwargs: self._put(*args, **kwargs),
            self._report,
            self._problem,
        )
        # Our own pages as read back before write_project replaces them: a caller that
        # merges (existing_files) and the diff rule parse each once.
        self.own_pages = OwnPages(self.root, state)
        # The pages of the project write_project is writing, as they were (see _differs),
        # and whether its folder in simple/ was there.
        self._before: dict[str, bytes | None] = {}
        self._folder = True
        # Its name, which the books keep for its pages (one string per project).
        self._project: str | None = None
        # What runs killed before their diff-file changed (see _note_intent): the next
        # diff-file carries it too.
        self.inherited: tuple[PathBook, PathBook] = state.unsent()
        # Project pages rendered, written a batch at a time; everything else the writer
        # does first writes what the batch holds (flush).
        self.batch = PageBatch(self.root, state, self._tmp)
        # What the landing page shows of each project written here, from the entries its
        # pages were rendered from: publish reads no page the writer has just written.
        self.summaries = PageSummaries()
        # The root pages, the serial list, the top-level files and the manifest.
        self.top = TopLevelFiles(
            self.root,
            state,
            self._tmp,
            lambda relpath, data: self._put(relpath, data),
            self._note_intent,
            self._note_changed,
        )

    # --- bookkeeping ---------------------------------------------------------

    def _note_changed(self, relpath: str) -> None:
        self.changed.add(relpath, self._project)
        self.removed.discard(relpath)

    def _note_removed(self, relpath: str) -> None:
        if relpath not in self.removed:
            self.state.note_unsent(relpath, removed=True)
        self.removed.add(relpath)
        self.changed.discard(relpath)

    def _report(self, relpath: str, wrote: bool) -> bool:
        """Whether this relpath goes into this call's changed list: bytes written now or
        earlier in this session, or a file this run recorded (a download).  So per-call
        lists are complete on their own; the diff-file dedupes."""
        if wrote or relpath in self.changed or self.state.is_changed(relpath):
            self._note_changed(relpath)
            return True
        return False

    def _problem(self, message: str) -> None:
        self.problems.append(message)
        if self._on_problem is not None:
            self._on_problem(message)
        else:
            log.warning("%s", message)

    def _put(
        self, relpath: str, data: bytes, *, unlisted: bool = False, differs: bool | None = None
    ) -> bool:
        """Atomically write unless the bytes are already there; keep the state in step.

        Pages are not recorded: they vouch for themselves (verify cross-checks them).
        ``unlisted``: the previous page did not list these bytes, so the file is news to
        the far side even when it was already on disk here.  ``differs``: the caller has
        just compared the bytes on disk.
        """
        wrote = self._differs(relpath, data) if differs is None else differs
        if wrote:
            if not is_project_path(relpath):  # a project's paths: write_project notes them
                self._note_intent([relpath])
            atomic_write_bytes(os.path.join(self.root, relpath), data, tmp_dir=self._tmp)
        if not _is_page(relpath) and not is_hidden(relpath):
            sha256 = hashlib.sha256(data).hexdigest()
            if wrote or not self.state.is_verified(relpath, sha256):
                self.state.record(relpath, len(data), sha256, new=wrote)
        return self._report(relpath, wrote or unlisted)

    def _differs(self, relpath: str, data: bytes) -> bool:
        if relpath in self._before:  # read once by write_project
            return self._before[relpath] != data
        return read_bytes(os.path.join(self.root, relpath)) != data

    def _note_intent(self, relpaths: list[str]) -> None:
        """Commit, before a page changes on disk, that it and the files it newly lists
        are news for the diff-file: a run killed after the write and before its diff-file
        (whose re-run sees nothing to change) must not keep them from the far side."""
        self.state.note_unsent_all(relpaths, removed=False)
        self.state.commit()

    def _remove(self, relpath: str) -> bool:
        crashpoints.step()
        try:
            (self.root / relpath).unlink()
        except FileNotFoundError:
            existed = False
        else:
            existed = True
        existed = self.state.discard(relpath) or existed
        if existed and not is_hidden(relpath):
            self._note_removed(relpath)
            return True
        return False

    # --- reading back ----------------------------------------------------------

    def existing_files(self, project: str) -> list[RemoteFile]:
        """What our own page lists now (urls are file:// URIs into this tree)."""
        self.batch.flush()
        return self.own_pages.files(project)

    def existing_projects(self) -> list[str]:
        """Normalized names of the projects with a page, or with files left on disk."""
        self.batch.flush()
        return self.own_pages.projects()

    # --- writing -----------------------------------------------------------------

    def write_project(
        self,
        project: str,
        files: list[RemoteFile],
        last_serial: int | None = None,
        *,
        replace: bool = False,
        meta: ProjectMeta = NO_META,
        keep_empty: bool = False,
    ) -> list[str]:
        """Write a project's .metadata files and pages; returns relpaths created or changed.

        Files not on disk are left out of the page.  When ``files`` names one filename
        twice the later record wins, so callers can append fresh upstream records after
        the ones read back with existing_files().  With ``replace`` the page lists only
        ``files``, and whatever else lies in the project's folder goes *after* the new
        page is in place; a project left with nothing loses its pages first, unless
        ``keep_empty`` (a full mirror keeps every project upstream lists) or ``meta`` says
        it is quarantined (its page stays, listing no files).  ``meta`` (status, tracks)
        is carried onto both pages.
        """
        norm: str = canonicalize_name(project)
        if norm == project:  # the caller's string (a sync's plan holds it): kept once
            norm = project
        if norm in self.batch:  # written again: the batch's pages first
            self.batch.flush()
        chosen: dict[str, RemoteFile] = {}
        for rf in files:
            try:
                check_filename(rf.filename)
            except ValueError as exc:
                self._problem(f"{norm}: skipped: {exc}")
                continue
            chosen[rf.filename] = rf
        changed: list[str] = []
        entries: list[FileEntry] = []
        # The project's pages as they are, read once: for what they list and, below, for
        # whether the new bytes differ (a page is written only when they do).
        self._before, self._folder = read_pages(self.root, norm, self.warehouse)
        self._project = norm
        try:
            return self._write_project(
                norm, chosen, changed, entries, last_serial, replace, meta, keep_empty
            )
        finally:
            self._before, self._project = {}, None

    def _write_project(
        self,
        norm: str,
        chosen: dict[str, RemoteFile],
        changed: list[str],
        entries: list[FileEntry],
        last_serial: int | None,
        replace: bool,
        meta: ProjectMeta,
        keep_empty: bool,
    ) -> list[str]:
        # An index-only page lists no file of ours: nothing on it is news for the far side.
        listed = {} if self.index_only else self.own_pages.listed(norm, self._before)
        self.own_pages.forget(norm)  # about to change
        if meta.quarantined:
            chosen = {}
        # An upstream that gives no Requires-Python for any file of the page leaves it out
        # (pypiserver): ours is read from the files.  Only then, so a PyPI mirror does not
        # open every old file that simply declares none.
        omits = not any(rf.requires_python for rf in chosen.values())
        for filename in sorted(chosen):
            rf = chosen[filename]
            if self.index_only:
                found = self._upstream_entry(norm, rf)
            else:
                before = listed.get(filename, (None, None))
                found = self.local.entry(norm, rf, before, changed, omits)
            if found is not None:
                entries.append(found)
        if replace and not entries and not keep_empty and not meta.quarantined:
            self.remove_project(norm)
            return changed
        self.removals.leaving.discard(norm)
        self.summaries.keep(norm, entries)

        # Upstream's serial when given; else, with ``serials``, the tree's own (kept while
        # the pages' bytes stay, the next one when anything on them changes).
        def render(serial: int | None) -> list[tuple[str, bytes]]:
            return render_pages(self.root, norm, entries, meta, serial, self.warehouse)

        if last_serial is not None or not self.serials:
            pages = render(last_serial)
        else:
            last_serial, pages = self.own_serials.choose(norm, render, self._differs)
        news = [rel for rel, data in pages if self._differs(rel, data)]
        intents = news + changed  # the pages and the files they newly list
        changed += [rel for rel, _ in pages if self._report(rel, rel in news)]
        if news:  # written with its batch (tree/pagebatch.py), its serial recorded then
            self.batch.add(norm, [p for p in pages if p[0] in news], intents, last_serial)
        else:
            self.state.set_project(norm, last_serial)
        keep = {package_relpath(norm, e.filename) for e in entries}
        keep |= {
            f"{package_relpath(norm, e.filename)}{METADATA_SUFFIX}"
            for e in entries
            if e.metadata_sha256
        }
        keep |= {
            f"{package_relpath(norm, e.filename)}{PROVENANCE_SUFFIX}"
            for e in entries
            if e.provenance
        }
        if replace:
            # Only a project with something to remove keeps a set: a first sync writes
            # hundreds of thousands of projects that have none.
            stale = self.removals.unlisted(norm, keep, self._folder)
            if stale:
                self.removals.stale[norm] = stale
            else:
                self.removals.stale.pop(norm, None)
        elif norm in self.removals.stale:
            self.removals.stale[norm] -= keep
        return changed

    def published_serial(self) -> int | None:
        """The highest serial this tree has given a page (None: none yet)."""
        self.batch.flush()
        return self.own_serials.published()

    def write_pages(
        self, pages: list[tuple[str, bytes]], *, news_with: Sequence[str] = ()
    ) -> list[str]:
        """Write pages in the order given (JSON before HTML); returns those that changed.

        Before any of them changes on disk, the state notes them (and ``news_with``, the
        files they newly list) as news for the diff-file.
        """
        self.batch.flush()
        for rel, _ in pages:  # a project's page written here: its row is read back
            if _is_page(rel) and not is_view_page(rel):
                self.summaries.drop(rel.split("/")[1])
        news = [rel for rel, data in pages if self._differs(rel, data)]
        if news:
            self._note_intent(news + list(news_with))
        return [rel for rel, data in pages if self._put(rel, data, differs=rel in news)]

    def remove_paths(self, relpaths: list[str]) -> list[str]:
        """Delete these paths now, in the order given, noting each for the diff-file first;
        returns those that existed.  For pages no root lists any more (an env view's
        leftovers); what pages still list goes through remove_project / publish."""
        self.batch.flush()
        self.removals.note_intent(relpaths)
        return [rel for rel in relpaths if self._remove(rel)]

    def _upstream_entry(self, norm: str, rf: RemoteFile) -> FileEntry | None:
        entry = upstream_entry(rf)
        if entry is None:
            self._problem(f"{norm}: {rf.filename}: left out (upstream gives no sha256)")
        return entry

    def remove_project(self, project: str) -> None:
        """Take a project out of the tree, at publish: first out of the root pages (see
        write_root), then its pages and files (tree/removals.py).  Until then nothing
        changes, on disk or in the tree state: a run stopped before publish keeps it."""
        self.batch.flush()
        norm = canonicalize_name(project)
        self.summaries.drop(norm)
        self.removals.queue_project(norm)

    def is_leaving(self, project: str) -> bool:
        """Whether remove_project queued this project to leave at publish."""
        return canonicalize_name(project) in self.removals.leaving

    def removals_pending(self, project: str) -> bool:
        """Whether publish still has files of this project to delete (queued, not done)."""
        return self.removals.pending(canonicalize_name(project))

    def apply_removals(self) -> list[str]:
        """Delete what remove_project and write_project(replace=True) queued, once publish
        has written the root pages without the leaving projects; returns the relpaths."""
        self.batch.flush()
        return self.removals.apply()

    def write_root(self) -> list[str]:
        """Root pages from the tree state's projects, without the projects leaving the tree
        (tree/toplevel.py); returns changed relpaths."""
        self.batch.flush()
        return self.top.write_root(self.removals.leaving, killed_before=any(self.inherited))

    def write_serial_list(self, synced_serial: int | None) -> list[str]:
        """``local.json`` and ``local.db.serial``, after write_root (tree/toplevel.py)."""
        self.batch.flush()
        return self.top.write_serial_list(synced_serial)

    def write_file(self, relpath: str, data: bytes) -> bool:
        """Atomically write a top-level file (server.py, morgan.ini); returns whether it changed."""
        self.batch.flush()
        return self.top.write_file(relpath, data)

    def write_manifest(self) -> list[str]:
        """manifest.json, last, after everything it vouches for (tree/toplevel.py)."""
        self.batch.flush()
        return self.top.write_manifest()


def _is_page(relpath: str) -> bool:
    """A project page (simple/<name>/..., json/<name>); the root pages are top-level files."""
    parts = relpath.split("/")
    return (
        (parts[0] == SIMPLE_DIR and len(parts) > 2)
        or (parts[0] == JSON_DIR and len(parts) > 1)
        or is_view_page(relpath)
    )
