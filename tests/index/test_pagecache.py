"""The on-disk page cache: kept only with validators, started afresh when unreadable."""

from __future__ import annotations

from pathlib import Path

from morgan_like.index.pagecache import PageCache


def test_pages_are_kept_with_their_validators(tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "pages.db")
    cache.put("u1", '"abc"', None, "application/vnd.pypi.simple.v1+json", b"{}")
    cache.put("u2", None, None, "text/html", b"<html>")
    cache.close()
    again = PageCache(tmp_path / "pages.db")
    page = again.get("u1")
    assert page is not None and page.body == b"{}"
    assert page.conditional_headers() == {"If-None-Match": '"abc"'}
    assert again.get("u2") is None, "no validator: nothing to revalidate, not kept"
    again.put("u1", None, None, "text/html", b"new")
    assert again.get("u1") is None


def test_an_unreadable_cache_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "pages.db"
    path.write_bytes(b"this is not sqlite" * 100)
    cache = PageCache(path)
    assert cache.get("u") is None
    cache.put("u", None, "Tue, 01 Jan 2030 00:00:00 GMT", "text/html", b"x")
    assert cache.get("u").conditional_headers() == {
        "If-Modified-Since": "Tue, 01 Jan 2030 00:00:00 GMT"
    }
