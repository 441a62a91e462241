"""Tree state: what a run needs to know about the tree, at a cost in proportion to what changed.

Two kinds of state, kept apart on purpose:

* What travels with the tree and vouches for it: the project pages (every file's
  size and sha256) and a small ``manifest.json`` for the top-level files (see
  :mod:`morgan_like.tree.manifest`).  Neither grows in the diff-file with the tree.
* What only the connected side needs, here: a hidden sqlite database
  ``.morgan-like/state.db`` with the size, sha256 and mtime of every file we have
  verified (a re-run trusts a file with one ``stat`` instead of re-hashing it) and
  the projects that have a page, with their serials (the root pages are rendered
  from it, without listing or reading the tree).  It is never served and never
  travels; lost or corrupt, it is rebuilt from the tree.

Every lookup and update touches one row, so a run reads and writes state in
proportion to the files and projects it touches.  Thread-safe: download workers
record files concurrently.  The database itself (tables, opening, what a row means) is
tree/statedb.py; other processes read it through tree/statereader.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from morgan_like.tree import crashpoints
from morgan_like.tree.files import sha256_file
from morgan_like.tree.layout import (
    MANIFEST_NAME,
    STATE_DIR,
    is_hidden,
    is_top_level,
    normalize_relpath,
)
from morgan_like.tree.pathbook import PathBook
from morgan_like.tree.statedb import (
    EVICTED,
    STATE_FORMAT,
    STATE_NAME,
    FileRecord,
    open_db,
    row_holds,
)

# Its file, its format and the record of a file, for the modules that open or read it.
__all__ = ["EVICTED", "STATE_FORMAT", "STATE_NAME", "FileRecord", "TreeState"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


class TreeState:
    """The working state of one tree; see the module docstring.

    ``load_problem`` says why the state was rebuilt (missing, corrupt), for the log.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / STATE_DIR / STATE_NAME
        self._lock = threading.RLock()
        self._touched: set[str] = set()
        # While a writer holds pages not yet on disk (TreeWriter's batch), what says a
        # project is finished waits here (see hold), and reads that could see it settle
        # the batch first (``settle``: the writer's flush).
        self._held: list[str] | None = None
        self.settle: Callable[[], None] | None = None
        self.projects_changed = False
        self.names_changed = False  # a project came or went (the root HTML lists names only)
        self._db, self.load_problem, rebuilt = open_db(self.root)
        if rebuilt:  # the root pages are rendered again
            self.projects_changed = self.names_changed = True

    # --- files -----------------------------------------------------------------------

    def get(self, relpath: str) -> FileRecord | None:
        key = normalize_relpath(relpath)
        with self._lock:
            row = self._db.execute(
                "SELECT size, sha256 FROM files WHERE relpath = ?", (key,)
            ).fetchone()
        return FileRecord(row[0], row[1]) if row else None

    def is_verified(self, relpath: str, sha256: str | None = None) -> bool:
        """Recorded, unchanged on disk since (size and mtime), and of hash ``sha256`` if given."""
        key = normalize_relpath(relpath)
        with self._lock:
            row = self._db.execute(
                "SELECT size, sha256, mtime_ns FROM files WHERE relpath = ?", (key,)
            ).fetchone()
        return row_holds(os.path.join(self.root, key), row, sha256)

    def verified(
        self, relpath: str, sha256: str | None = None, st: os.stat_result | None = None
    ) -> FileRecord | None:
        """The record when ``is_verified`` holds, else None: one query and at most one
        stat, where ``get`` then ``is_verified`` cost two and a writer asks per file.
        ``st``: the file's stat, when the caller has just taken it."""
        key = normalize_relpath(relpath)
        with self._lock:
            row = self._db.execute(
                "SELECT size, sha256, mtime_ns FROM files WHERE relpath = ?", (key,)
            ).fetchone()
        if not row_holds(os.path.join(self.root, key), row, sha256, st):
            return None
        return FileRecord(row[0], row[1])

    def verified_all(self, wanted: Sequence[tuple[str, str | None]]) -> dict[str, FileRecord]:
        """``verified`` of many (relpath, sha256) at once: one query, then a stat of each
        recorded file; the relpaths that hold, with their records.  A run's "already
        present?" of every file of its plan asks this, not one query per file."""
        names = list({normalize_relpath(relpath) for relpath, _ in wanted})
        rows: dict[str, tuple] = {}
        with self._lock:
            for start in range(0, len(names), 500):  # sqlite's parameter limit
                chunk = names[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT relpath, size, sha256, mtime_ns FROM files WHERE relpath IN ({marks})",
                    chunk,
                ):
                    rows[row[0]] = row[1:]
        found = {}
        for relpath, sha256 in wanted:
            key = normalize_relpath(relpath)
            row = rows.get(key)
            if row is not None and row_holds(os.path.join(self.root, key), row, sha256):
                found[relpath] = FileRecord(row[0], row[1])
        return found

    def record(self, relpath: str, size: int, sha256: str, *, new: bool = True) -> None:
        """Note a file now in place (verified by the caller); refuses hidden paths and bad hashes.

        It counts as changed this run when its content differs from the record, or when
        there was none and ``new`` says this run placed it.  A file merely re-hashed
        because the state was lost (``new=False``) is not a change: the tree had it.
        """
        key = normalize_relpath(relpath)
        if is_hidden(key) or key == MANIFEST_NAME:
            raise ValueError(f"{relpath!r} is never recorded in the tree state")
        sha256 = sha256.lower()
        if not _HEX64.fullmatch(sha256) or size < 0:
            raise ValueError(f"bad record for {relpath!r}: {size}, {sha256!r}")
        mtime_ns = os.stat(os.path.join(self.root, key)).st_mtime_ns
        row = (key, size, sha256, mtime_ns)
        with self._lock:
            # A file new to the state (every download of a first sync) costs one statement.
            if self._db.execute("INSERT OR IGNORE INTO files VALUES (?, ?, ?, ?)", row).rowcount:
                if new:
                    self._touched.add(key)
            else:
                old = self._db.execute(
                    "SELECT size, sha256 FROM files WHERE relpath = ?", (key,)
                ).fetchone()
                self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", row)
                if tuple(old) != (size, sha256):
                    self._touched.add(key)
        crashpoints.step()  # a download or a write just landed

    def mark_evicted(self, relpaths: list[str]) -> None:
        """These recorded files now live in the object store only: their rows stay
        verified (a sync does not fetch them again, pages keep listing them)."""
        with self._lock:
            self._db.executemany(
                "UPDATE files SET mtime_ns = ? WHERE relpath = ?",
                [(EVICTED, normalize_relpath(r)) for r in relpaths],
            )

    def is_evicted(self, relpath: str) -> bool:
        """Recorded as evicted, and no local copy has come back since."""
        key = normalize_relpath(relpath)
        with self._lock:
            row = self._db.execute(
                "SELECT mtime_ns FROM files WHERE relpath = ?", (key,)
            ).fetchone()
        return row is not None and row[0] == EVICTED and not (self.root / key).exists()

    def record_file(self, relpath: str, *, new: bool = False) -> FileRecord:
        """Hash the file on disk and record it (``new``: this run placed it; see record)."""
        key = normalize_relpath(relpath)
        size, sha256 = sha256_file(self.root / key)
        self.record(key, size, sha256, new=new)
        return FileRecord(size, sha256)

    def discard(self, relpath: str) -> bool:
        """Forget a file; returns whether it was recorded."""
        key = normalize_relpath(relpath)
        with self._lock:
            gone = self._db.execute("DELETE FROM files WHERE relpath = ?", (key,)).rowcount > 0
            if gone:
                self._touched.add(key)
        return gone

    def relpaths_under(self, folder: str) -> list[str]:
        """Recorded files below a tree folder (``packages/<project>``), sorted.

        One range scan of the primary key: what a prune must forget even when the
        file is already gone from disk (a killed run unlinked it after the state's
        last commit), so no row outlives its file.
        """
        prefix = normalize_relpath(folder) + "/"
        upper = prefix[:-1] + chr(ord("/") + 1)
        with self._lock:
            rows = self._db.execute(
                "SELECT relpath FROM files WHERE relpath >= ? AND relpath < ? ORDER BY relpath",
                (prefix, upper),
            ).fetchall()
        return [r[0] for r in rows]

    def is_changed(self, relpath: str) -> bool:
        """Whether this run recorded new content for (or forgot) ``relpath``."""
        with self._lock:
            return normalize_relpath(relpath) in self._touched

    def top_level(self) -> list[tuple[str, FileRecord]]:
        """Recorded top-level files (what manifest.json lists), sorted.

        They live outside packages/ and simple/<project>/, so the query never walks
        the rows of the tree's distribution files.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT relpath, size, sha256 FROM files "
                "WHERE relpath NOT GLOB 'packages/*' AND relpath NOT GLOB 'simple/*/*' "
                "ORDER BY relpath"
            ).fetchall()
        return [(r, FileRecord(s, h)) for r, s, h in rows if is_top_level(r)]

    # --- projects --------------------------------------------------------------------

    def project(self, name: str) -> tuple[bool, int | None]:
        """(has a page, its serial)."""
        self._settle()
        with self._lock:
            row = self._db.execute("SELECT serial FROM projects WHERE name = ?", (name,)).fetchone()
        return (row is not None, row[0] if row else None)

    def set_project(self, name: str, serial: int | None) -> None:
        """A project now has a page; the root pages change only if it is new or its serial moved."""
        with self._lock:
            # One query for the row, its serial and a leaving mark: asked once per project.
            old, known, was_leaving = self._db.execute(
                "SELECT (SELECT serial FROM projects WHERE name = ?1), "
                "EXISTS (SELECT 1 FROM projects WHERE name = ?1), "
                "EXISTS (SELECT 1 FROM leaving WHERE name = ?1)",
                (name,),
            ).fetchone()
            if was_leaving:
                self._db.execute("DELETE FROM leaving WHERE name = ?", (name,))  # it came back
            if known and old == serial:
                return
            self._db.execute("INSERT OR REPLACE INTO projects VALUES (?, ?)", (name, serial))
            self.projects_changed = True
            self.names_changed = self.names_changed or not known

    def drop_project(self, name: str) -> None:
        """A project leaves the root pages; it stays in ``leaving()`` until its pages and
        files are gone (see forget_leaving), so a run killed half-way through deleting
        them has the next run finish the job, whatever that run is asked to do."""
        with self._lock:
            if self._db.execute("DELETE FROM projects WHERE name = ?", (name,)).rowcount:
                self.projects_changed = self.names_changed = True
            self._db.execute("INSERT OR REPLACE INTO leaving VALUES (?)", (name,))

    def leaving(self) -> list[str]:
        """Projects out of the root pages whose pages or files may still be on disk."""
        self._settle()
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM leaving ORDER BY name")]

    def forget_leaving(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM leaving WHERE name = ?", (name,))

    def projects(self) -> list[tuple[str, int | None]]:
        """Every project with a page, sorted by name, with its serial (None if unknown)."""
        self._settle()
        with self._lock:
            rows = self._db.execute("SELECT name, serial FROM projects ORDER BY name")
            return [(name, serial) for name, serial in rows]

    def each_project(self, chunk: int = 10_000) -> Iterator[tuple[str, int | None]]:
        """``projects()`` read ``chunk`` rows at a time, each under the lock: the root pages
        of a whole index are written from it without holding every row at once."""
        self._settle()
        last = None
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT name, serial FROM projects WHERE ?1 IS NULL OR name > ?1 "
                    "ORDER BY name LIMIT ?2",
                    (last, chunk),
                ).fetchall()
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1][0]

    def highest_serial(self) -> int | None:
        """The highest serial of a project with a page (None: none known)."""
        self._settle()
        with self._lock:
            return self._db.execute("SELECT MAX(serial) FROM projects").fetchone()[0]

    def project_names(self) -> list[str]:
        self._settle()
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM projects ORDER BY name")]

    # --- facts about distributions, keyed by content ---------------------------------

    def fact(self, sha256: str, key: str) -> str | None:
        """What a run learnt about the file with this sha256 (build requirements, hook
        metadata), so a re-run neither re-reads its archive nor re-runs its hooks."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM facts WHERE sha256 = ? AND key = ?", (sha256, key)
            ).fetchone()
            return row[0] if row else None

    def set_fact(self, sha256: str, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)", (sha256, key, value))

    # --- what the next diff-file must carry ------------------------------------------

    def note_unsent(self, relpath: str, removed: bool) -> None:
        """A path changed (or went) and no diff-file has carried it yet: kept with the
        run's other writes, so a run killed before its diff-file hands it to the next."""
        self.note_unsent_all([relpath], removed)

    def note_unsent_all(self, relpaths: list[str], removed: bool) -> None:
        """note_unsent for each of ``relpaths``, in one statement."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO unsent VALUES (?, ?)",
                [(relpath, int(removed)) for relpath in relpaths],
            )

    def unsent(self) -> tuple[PathBook, PathBook]:
        """(changed, removed) paths no diff-file has carried yet: read row by row into
        PathBooks, since a killed first sync of a whole index leaves millions."""
        changed, removed = PathBook(), PathBook()
        with self._lock:
            for relpath, gone in self._db.execute("SELECT relpath, removed FROM unsent"):
                (removed if gone else changed).add(relpath)
        return changed, removed

    def clear_unsent(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM unsent")

    # --- a full mirror's progress (sync) ---------------------------------------------

    def sync_value(self, key: str) -> str | None:
        """A sync setting or mark: ``serial`` (everything up to it synced), ``target``..."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM meta WHERE key = ?", (f"sync.{key}",)
            ).fetchone()
        return row[0] if row else None

    def set_sync_value(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (f"sync.{key}",))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"sync.{key}", value)
                )

    def sync_todo(self) -> dict[str, int]:
        """The projects a sync set out to do and has not finished (name -> listed serial)."""
        self._settle()
        with self._lock:
            return dict(self._db.execute("SELECT name, serial FROM sync_todo"))

    def set_sync_todo(self, todo: dict[str, int]) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sync_todo")
            self._db.execute("DELETE FROM sync_finished")
            self._db.executemany("INSERT INTO sync_todo VALUES (?, ?)", sorted(todo.items()))

    def sync_done(self, name: str) -> None:
        """``name`` is finished for this run; also logged in ``sync_finished`` (a sequence
        a reader beside the run follows: the bucket's streaming push, tree/bucketstream.py)."""
        if self._held is not None:
            self._held.append(name)
            return
        with self._lock:
            self._db.execute("DELETE FROM sync_todo WHERE name = ?", (name,))
            self._db.execute("INSERT INTO sync_finished (name) VALUES (?)", (name,))

    def hold(self) -> None:
        """A writer has pages not yet on disk: sync_done waits (see release), so no commit
        says a project is finished before its pages are in place."""
        if self._held is None:
            self._held = []

    def release(self, done: bool = True) -> None:
        """The held pages are on disk: what waited is done now (committed with the next
        commit).  ``done`` False: writing them failed, so none of it is done."""
        held, self._held = self._held or [], None
        for name in held if done else ():
            self.sync_done(name)

    def _settle(self) -> None:
        if self._held is not None and self.settle is not None:
            self.settle()

    # --- generations and sites (tree.generations reads and writes these tables) -------

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement under the state's lock; its rows (see tree.generations)."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def query_many(self, sql: str, rows: Iterable[tuple]) -> None:
        """Run one statement for each of ``rows`` (read as they come) under the state's lock."""
        with self._lock:
            self._db.executemany(sql, rows)

    # --- lifetime --------------------------------------------------------------------

    def commit(self) -> None:
        crashpoints.step()
        with self._lock:
            self._db.commit()

    def close(self) -> None:
        self._settle()
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.commit()
            self._db.close()

    def __enter__(self) -> TreeState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
