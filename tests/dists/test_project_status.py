"""PEP 792 project status and PEP 708 tracks, read from JSON and HTML pages."""

from __future__ import annotations

import json

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page

URL = "https://example.org/simple/demo/"
FILE = {
    "filename": "demo-1.0-py3-none-any.whl",
    "url": "demo-1.0-py3-none-any.whl",
    "hashes": {"sha256": "a" * 64},
}


def test_json_status_reason_tracks() -> None:
    doc = {
        "meta": {"api-version": "1.4", "_last-serial": "42"},
        "name": "demo",
        "project-status": {"status": "Archived", "reason": "moved"},
        "tracks": ["https://example.org/simple/demo/", 5, "ftp://x/"],
        "alternate-locations": ["https://example.com/demo/"],
        "files": [FILE],
    }
    page = parse_json_page("demo", json.dumps(doc), URL)
    assert (page.meta.status, page.meta.reason) == ("archived", "moved")
    assert page.meta.tracks == ("https://example.org/simple/demo/",)
    assert page.meta.alternate_locations == ("https://example.com/demo/",)
    assert page.last_serial == 42  # a serial sent as a string
    assert len(page.files) == 1


def test_quarantined_lists_no_files_and_unknown_status_is_active() -> None:
    doc = {"name": "demo", "project-status": {"status": "quarantined"}, "files": [FILE]}
    page = parse_json_page("demo", json.dumps(doc), URL)
    assert page.meta.quarantined and page.files == []
    for odd in ({"status": "weird"}, {"status": "active"}, "archived", None):
        doc = {"name": "demo", "project-status": odd, "files": [FILE]}
        assert parse_json_page("demo", json.dumps(doc), URL).meta.status is None


def test_html_meta_tags() -> None:
    text = (
        '<html><head><meta name="pypi:repository-version" content="1.4">'
        '<meta name="pypi:project-status" content="deprecated">'
        '<meta name="pypi:project-status-reason" content="use other">'
        '<meta name="pypi:tracks" content="https://example.org/simple/demo/">'
        '<meta name="pypi:tracks" content="https://example.org/simple/demo2/">'
        '<meta name="pypi:alternate-locations" content="https://example.com/demo/">'
        '</head><body><a href="demo-1.0.tar.gz#sha256=' + "b" * 64 + '">demo-1.0.tar.gz</a>'
        "</body></html><!--SERIAL 7-->"
    )
    page = parse_html_page("demo", text, URL)
    assert (page.meta.status, page.meta.reason) == ("deprecated", "use other")
    assert page.meta.tracks == (
        "https://example.org/simple/demo/",
        "https://example.org/simple/demo2/",
    )
    assert page.meta.alternate_locations == ("https://example.com/demo/",)
    assert page.last_serial == 7 and len(page.files) == 1
    quarantined = text.replace("deprecated", "quarantined")
    assert parse_html_page("demo", quarantined, URL).files == []
