"""Upstream's project pages as a replay check sees them: a digest of what was sent (or
kept, on a 304), moved whenever the bytes or the page's URL do, and a checked page
parsed later without a second request."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.errors import ProjectNotFound
from morgan_like.index.pagebody import PAGE_GONE
from morgan_like.index.pagecache import PageCache
from morgan_like.index.upstream import Upstream

from ..fakeindex import FakeIndex
from ..helpers import wheel


def _pages(index: FakeIndex) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in index.requests if r.path.startswith("/simple/")]


@pytest.mark.parametrize("validators", [True, False])
def test_the_digest_moves_with_the_bytes_and_only_then(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, validators: bool
) -> None:
    fake_index.page_validators = validators
    wheel(fake_index, dists, "lib", "1.0")
    cache = PageCache(tmp_path / "pages.db")
    with Upstream(fake_index.url, pages=cache) as upstream:
        first = upstream.check_page("lib")
    fake_index.reset_log()
    with Upstream(fake_index.url, pages=cache) as upstream:
        assert upstream.check_page("lib") == first
    assert _pages(fake_index) == [("/simple/lib/", 304 if validators else 200)]
    wheel(fake_index, dists, "lib", "2.0")  # one file added
    with Upstream(fake_index.url, pages=cache) as upstream:
        moved = upstream.check_page("lib")
    assert moved != first
    fake_index.reset_log()
    with Upstream(fake_index.url, pages=cache) as upstream:  # the kept digest moved too
        assert upstream.check_page("lib") == moved
        page = upstream.project_page("lib")
    assert [f.filename for f in page.files] == [
        "lib-1.0-py3-none-any.whl",
        "lib-2.0-py3-none-any.whl",
    ]
    assert _pages(fake_index) == [("/simple/lib/", 304 if validators else 200)]
    cache.close()


def test_a_checked_page_is_parsed_without_asking_again(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    cache = PageCache(tmp_path / "pages.db")
    with Upstream(fake_index.url, pages=cache) as upstream:
        upstream.project_page("lib")
    fake_index.reset_log()
    with Upstream(fake_index.url, pages=cache) as upstream:
        digest = upstream.check_page("lib")
        assert upstream.page_digest("lib") is None, "checked, not parsed yet"
        assert [f.filename for f in upstream.project_page("lib").files] == [
            "lib-1.0-py3-none-any.whl"
        ]
        assert upstream.page_digest("lib") == digest
        with pytest.raises(ProjectNotFound):
            upstream.project_page("nosuch")
        assert upstream.page_digest("nosuch") == PAGE_GONE
        assert upstream.pages_gone() == ["nosuch"]
    assert _pages(fake_index) == [("/simple/lib/", 304), ("/simple/nosuch/", 404)]
    cache.close()


def test_a_304_whose_kept_body_was_replaced_is_asked_for_whole(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """The body parsed is always the one the digest was taken of."""
    wheel(fake_index, dists, "lib", "1.0")
    cache = PageCache(tmp_path / "pages.db")
    with Upstream(fake_index.url, pages=cache) as upstream:
        upstream.project_page("lib")
    with Upstream(fake_index.url, pages=cache) as upstream:
        upstream.check_page("lib")  # a 304
        url = f"{fake_index.url}lib/"
        kept = cache.get(url)
        cache.put(url, kept.etag, None, kept.content_type, b"<html>other</html>")
        fake_index.reset_log()
        page = upstream.project_page("lib")
    assert [f.filename for f in page.files] == ["lib-1.0-py3-none-any.whl"]
    assert _pages(fake_index) == [("/simple/lib/", 200)]
    cache.close()
