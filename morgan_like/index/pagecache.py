"""Index pages kept between runs and revalidated with conditional requests.

A re-run of a bundle asks upstream for the same project pages again; most have
not changed.  Each page is kept with its validators (``ETag``,
``Last-Modified``) and the sha256 of its body in a small sqlite file under the
tree's hidden state directory, and the next request carries ``If-None-Match`` /
``If-Modified-Since``: a ``304 Not Modified`` costs a round trip and no body,
and the body's sha256 is read without the body (a replay check compares
digests only).  A page that came without validators is not kept (it would be
fetched again anyway).  The file is a cache: when it is unreadable, or of an
older layout, it is started afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

PAGES_NAME = "pages.db"
# PRAGMA user_version of the layout below; a file of another is started afresh.
_LAYOUT = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL, body BLOB NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class CachedPage:
    """What revalidates a kept page, its type and its body's sha256 (the body itself is
    read only when asked for: ``PageCache.body``)."""

    etag: str | None
    last_modified: str | None
    content_type: str
    sha256: str

    def conditional_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class PageCache:
    """url -> CachedPage (and its body), shared by the threads of one run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._open()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")  # a cache: losing the last pages costs a fetch
        if db.execute("PRAGMA user_version").fetchone()[0] != _LAYOUT:
            db.execute("DROP TABLE IF EXISTS pages")
            db.execute(f"PRAGMA user_version = {_LAYOUT}")
        db.executescript(_SCHEMA)
        return db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            return self._connect()

    def get(self, url: str) -> CachedPage | None:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT etag, last_modified, content_type, sha256 FROM pages WHERE url = ?",
                    (url,),
                ).fetchone()
            except sqlite3.Error:
                return None
        return CachedPage(*row) if row else None

    def body(self, url: str, sha256: str) -> bytes | None:
        """The kept body of ``url`` if it is still the one whose digest is ``sha256`` (None
        when another body replaced it since, or it is gone)."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT body FROM pages WHERE url = ? AND sha256 = ?", (url, sha256)
                ).fetchone()
            except sqlite3.Error:
                return None
        return bytes(row[0]) if row else None

    def put(
        self, url: str, etag: str | None, last_modified: str | None, content_type: str, body: bytes
    ) -> str:
        """Keep ``body`` if upstream gave a validator (otherwise forget the url); returns
        the body's sha256, taken here so that the kept digest is always of the kept body."""
        digest = hashlib.sha256(body).hexdigest()
        with self._lock, contextlib.suppress(sqlite3.Error):
            if not etag and not last_modified:
                self._db.execute("DELETE FROM pages WHERE url = ?", (url,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)",
                    (url, etag, last_modified, content_type, digest, body),
                )
            self._db.commit()
        return digest

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
