"""The tree state read-only, from other processes than the one that writes it.

A sync's page fetchers (worker processes) ask whether a file is already verified; a bucket stream follows
the projects a sync finishes.  Each opens the database read-only and sees what the
writing process (tree/state.py) last committed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from morgan_like.tree.layout import STATE_DIR, normalize_relpath
from morgan_like.tree.statedb import STATE_NAME, row_holds


class StateReader:
    """The tree state read-only, for other processes (a sync's page fetchers in worker
    processes ask whether a file is already verified).  It sees what the writing process last committed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        path = self.root / STATE_DIR / STATE_NAME
        self._db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def is_verified(self, relpath: str, sha256: str | None = None) -> bool:
        key = normalize_relpath(relpath)
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT size, sha256, mtime_ns FROM files WHERE relpath = ?", (key,)
                ).fetchone()
        except sqlite3.Error:
            return False
        return row_holds(os.path.join(self.root, key), row, sha256)

    def finished_since(self, seq: int, limit: int = 1000) -> list[tuple[int, str]]:
        """(seq, name) of the projects a sync committed as finished after ``seq``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, name FROM sync_finished WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [(int(s), str(n)) for s, n in rows]

    def last_finished(self) -> int:
        """The sequence number of the last finished project logged (0: none)."""
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM sync_finished").fetchone()
        return int(row[0])

    def unsent_changed(self, wanted: list[str]) -> list[str]:
        """The changed paths no diff-file has carried yet among ``wanted``: exact paths,
        or folders (ending in ``/``: everything below), each a range of the primary key."""
        found: list[str] = []
        with self._lock:
            for item in wanted:
                if item.endswith("/"):
                    upper = item[:-1] + chr(ord("/") + 1)
                    rows = self._db.execute(
                        "SELECT relpath FROM unsent WHERE relpath >= ? AND relpath < ? "
                        "AND removed = 0",
                        (item, upper),
                    ).fetchall()
                else:
                    rows = self._db.execute(
                        "SELECT relpath FROM unsent WHERE relpath = ? AND removed = 0", (item,)
                    ).fetchall()
                found += [r[0] for r in rows]
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()
