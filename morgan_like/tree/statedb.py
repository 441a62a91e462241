"""The tree state's database: its file, its tables, opening it, and what a file row means.

Shared by the one process that writes the state (tree/state.py, TreeState) and the
others that only read it (tree/statereader.py, StateReader), so both read a row by
the same rule (:func:`row_holds`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from morgan_like.tree.layout import STATE_DIR
from morgan_like.tree.stateseed import seed_from_tree

STATE_NAME = "state.db"
WAL_CHECKPOINT_PAGES = 8192
STATE_FORMAT = "morgan-like-state/1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    relpath TEXT PRIMARY KEY, size INTEGER NOT NULL, sha256 TEXT NOT NULL, mtime_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projects (name TEXT PRIMARY KEY, serial INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leaving (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unsent (relpath TEXT PRIMARY KEY, removed INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_todo (name TEXT PRIMARY KEY, serial INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_finished (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (gen INTEGER PRIMARY KEY, time TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gen_paths (
    gen INTEGER NOT NULL, relpath TEXT NOT NULL, removed INTEGER NOT NULL, PRIMARY KEY (gen, relpath)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS gen_paths_by_path ON gen_paths (relpath, gen);
CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, gen INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS facts (
    sha256 TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (sha256, key)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class FileRecord:
    """A file as we last verified it: its size and sha256."""

    size: int
    sha256: str


# A file row's mtime_ns when the file was evicted: it lives in the tree's object store
# (tree/bucketpush.py) and the working tree keeps only its row, its .metadata and pages.
EVICTED = -1


def row_holds(
    path: str, row: tuple | None, sha256: str | None, st: os.stat_result | None = None
) -> bool:
    """A file row still true of the disk (size, mtime), and of hash ``sha256`` if given;
    an evicted file's row holds while the working tree has no copy of its own.  ``st``:
    the file's stat, already taken."""
    if row is None or (sha256 is not None and sha256.lower() != row[1]):
        return False
    if st is None:
        try:
            st = os.stat(path)
        except OSError:
            return row[2] == EVICTED
    return st.st_size == row[0] and st.st_mtime_ns == row[2]


def open_db(root: Path) -> tuple[sqlite3.Connection, str | None, bool]:
    """The tree's state database, made ready: ``(db, problem, rebuilt)``.  ``problem``
    says why it was rebuilt (missing, corrupt, another format), for the log; ``rebuilt``:
    its rows were seeded from the tree again (stateseed.seed_from_tree), so the root
    pages are rendered again."""
    path = root / STATE_DIR / STATE_NAME
    fresh = not path.exists()
    problem: str | None = None
    try:
        db = _connect(path)
        db.executescript(SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.DatabaseError as exc:
        problem = f"{STATE_DIR}/{STATE_NAME} is unreadable ({exc}); rebuilt it"
        with contextlib.suppress(UnboundLocalError, sqlite3.Error):
            db.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        db = _connect(path)
        db.executescript(SCHEMA)
        row, fresh = None, True
    if row is not None and row[0] == STATE_FORMAT:
        return db, problem, False
    if not fresh and problem is None:
        problem = f"{STATE_DIR}/{STATE_NAME} has another format; rebuilt it"
    db.execute("DELETE FROM files")
    db.execute("DELETE FROM projects")
    db.execute("DELETE FROM leaving")
    db.execute("DELETE FROM sync_todo")
    db.execute("DELETE FROM meta WHERE key LIKE 'sync.%'")
    seed_from_tree(root, db)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (STATE_FORMAT,))
    db.commit()
    return db, problem, True


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # A writer commits once per project (TreeWriter._note_intent); at the default of a
    # checkpoint every 1,000 WAL pages, one commit in ~200 also paid a checkpoint and
    # its two fsyncs.  Every 8,192 pages (32 MiB of WAL at most) they are rare.
    db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    return db
