"""The on-disk page cache: kept only with validators, its digest always of the kept body,
started afresh when unreadable or of an older layout."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from morgan_like.index.pagecache import PageCache


def test_pages_are_kept_with_their_validators(tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "pages.db")
    cache.put("u1", '"abc"', None, "application/vnd.pypi.simple.v1+json", b"{}")
    cache.put("u2", None, None, "text/html", b"<html>")
    cache.close()
    again = PageCache(tmp_path / "pages.db")
    page = again.get("u1")
    assert page is not None and again.body("u1", page.sha256) == b"{}"
    assert page.conditional_headers() == {"If-None-Match": '"abc"'}
    assert again.get("u2") is None, "no validator: nothing to revalidate, not kept"
    again.put("u1", None, None, "text/html", b"new")
    assert again.get("u1") is None


def test_the_kept_digest_is_of_the_kept_body(tmp_path: Path) -> None:
    """A page sent again with other bytes replaces its digest with them: a 304 later
    vouches for the body kept, never for the one before it."""
    cache = PageCache(tmp_path / "pages.db")
    first = cache.put("u", '"1"', None, "text/html", b"one")
    assert first == hashlib.sha256(b"one").hexdigest() == cache.get("u").sha256
    second = cache.put("u", '"2"', None, "text/html", b"two")
    assert cache.get("u").sha256 == second == hashlib.sha256(b"two").hexdigest()
    assert cache.body("u", first) is None, "the old digest no longer names a kept body"
    assert cache.body("u", second) == b"two"


def test_an_unreadable_cache_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "pages.db"
    path.write_bytes(b"this is not sqlite" * 100)
    cache = PageCache(path)
    assert cache.get("u") is None
    cache.put("u", None, "Tue, 01 Jan 2030 00:00:00 GMT", "text/html", b"x")
    assert cache.get("u").conditional_headers() == {
        "If-Modified-Since": "Tue, 01 Jan 2030 00:00:00 GMT"
    }


def test_a_cache_of_the_layout_before_digests_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "pages.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE pages (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, "
        "content_type TEXT NOT NULL, body BLOB NOT NULL) WITHOUT ROWID"
    )
    db.execute("INSERT INTO pages VALUES ('u', '\"e\"', NULL, 'text/html', x'00')")
    db.commit()
    db.close()
    cache = PageCache(path)
    assert cache.get("u") is None
    cache.put("u", '"e"', None, "text/html", b"x")
    assert cache.get("u").etag == '"e"'
