"""Our index pages, checked point by point against WIRE-FORMATS.md and parsed back."""

from __future__ import annotations

import json

import pytest

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page
from morgan_like.tree.pages import (
    FileEntry,
    normalize_upload_time,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)

PAGE_URL = "file:///tree/simple/foo-bar/"
H1, H2, H3, M1 = "1" * 64, "2" * 64, "3" * 64, "a" * 64


def _files() -> list[FileEntry]:
    base = "../../packages/foo-bar/"
    return [
        FileEntry(
            filename="foo_bar-1.0-py3-none-any.whl",
            url=base + "foo_bar-1.0-py3-none-any.whl",
            sha256=H1,
            size=1234,
            requires_python=">=3.8, <4",
            yanked='broken "build" <oops> & more',
            metadata_sha256=M1,
            upload_time="2023-01-02T03:04:05.123456Z",
        ),
        FileEntry(
            filename="foo_bar-0.9.tar.gz",
            url=base + "foo_bar-0.9.tar.gz",
            sha256=H2,
            size=99,
            yanked=True,
        ),
        FileEntry(
            filename="foo_bar-1.0+local.1-py3-none-any.whl",
            url=base + "foo_bar-1.0+local.1-py3-none-any.whl",
            sha256=H3,
            size=7,
            upload_time="2023-01-02 03:04:05",
        ),
    ]


def _html() -> str:
    return render_project_html("Foo.Bar", _files(), last_serial=42).decode()


def _json() -> dict:
    return json.loads(render_project_json("Foo.Bar", _files(), last_serial=42))


def _anchor(text: str, filename: str) -> str:
    (line,) = [line for line in text.splitlines() if f">{filename}</a>" in line]
    return line


# --- HTML -------------------------------------------------------------------


def test_html_header_and_serial() -> None:
    text = _html()
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta name="pypi:repository-version" content="1.1">' in text
    assert text.rstrip().endswith("<!--SERIAL 42-->")
    assert "SERIAL" not in render_project_html("foo", _files()).decode()


def test_html_yanked_never_bare() -> None:
    text = _html()
    sdist = _anchor(text, "foo_bar-0.9.tar.gz")
    assert 'data-yanked=""' in sdist
    wheel = _anchor(text, "foo_bar-1.0-py3-none-any.whl")
    assert 'data-yanked="broken &quot;build&quot; &lt;oops&gt; &amp; more"' in wheel
    local = _anchor(text, "foo_bar-1.0+local.1-py3-none-any.whl")
    assert "data-yanked" not in local
    # every data-yanked carries a value
    assert text.count("data-yanked") == text.count('data-yanked="')


def test_html_requires_python_escaped() -> None:
    wheel = _anchor(_html(), "foo_bar-1.0-py3-none-any.whl")
    assert 'data-requires-python="&gt;=3.8, &lt;4"' in wheel


def test_html_core_metadata_attribute_with_hash_and_never_the_old_name() -> None:
    """pip 22.3 to 23.1 read only data-dist-info-metadata and then check the metadata's
    Name: uncanonicalized, discarding the wheel for its sdist (tests/test_e2e.py)."""
    text = _html()
    wheel = _anchor(text, "foo_bar-1.0-py3-none-any.whl")
    assert f'data-core-metadata="sha256={M1}"' in wheel
    assert "data-dist-info-metadata" not in text
    assert 'metadata="true"' not in text
    sdist = _anchor(text, "foo_bar-0.9.tar.gz")
    assert "metadata" not in sdist


def test_html_href_hash_size_upload_time_and_quoting() -> None:
    text = _html()
    local = _anchor(text, "foo_bar-1.0+local.1-py3-none-any.whl")
    assert (
        f'href="../../packages/foo-bar/foo_bar-1.0%2Blocal.1-py3-none-any.whl#sha256={H3}"' in local
    )
    assert 'data-size="7"' in local
    assert 'data-upload-time="2023-01-02T03:04:05.000000Z"' in local
    sdist = _anchor(text, "foo_bar-0.9.tar.gz")
    assert "data-upload-time" not in sdist
    assert "data-requires-python" not in sdist
    assert '=""' not in sdist.replace('data-yanked=""', "")


def test_html_round_trip() -> None:
    page = parse_html_page("foo-bar", _html(), PAGE_URL)
    assert page.last_serial == 42
    by_name = {f.filename: f for f in page.files}
    assert set(by_name) == {f.filename for f in _files()}
    wheel = by_name["foo_bar-1.0-py3-none-any.whl"]
    assert wheel.url == "file:///tree/packages/foo-bar/foo_bar-1.0-py3-none-any.whl"
    assert wheel.sha256 == H1
    assert wheel.requires_python == ">=3.8, <4"
    assert wheel.yanked == 'broken "build" <oops> & more'
    assert wheel.core_metadata == M1
    assert wheel.size == 1234
    assert wheel.upload_time == "2023-01-02T03:04:05.123456Z"
    sdist = by_name["foo_bar-0.9.tar.gz"]
    assert sdist.yanked is True and sdist.core_metadata is None
    assert sdist.requires_python is None and sdist.upload_time is None
    local = by_name["foo_bar-1.0+local.1-py3-none-any.whl"]
    assert local.yanked is False


def test_html_sorted_and_deterministic() -> None:
    files = _files()
    a = render_project_html("foo-bar", files)
    b = render_project_html("foo-bar", list(reversed(files)))
    assert a == b
    names = [f.filename for f in parse_html_page("foo-bar", a.decode(), PAGE_URL).files]
    assert names == sorted(names)


def test_html_escapes_filename_text() -> None:
    odd = FileEntry("a<b>-1.0.tar.gz", "../../packages/a/a<b>-1.0.tar.gz", H1, 1)
    text = render_project_html("a", [odd]).decode()
    assert ">a&lt;b&gt;-1.0.tar.gz</a>" in text
    assert "%3Cb%3E" in text


# --- JSON -------------------------------------------------------------------


def test_json_project_shape() -> None:
    doc = _json()
    assert list(doc) == ["meta", "name", "versions", "files"]
    assert doc["meta"] == {"api-version": "1.1", "_last-serial": 42}
    assert doc["name"] == "foo-bar"
    assert doc["versions"] == ["0.9", "1.0", "1.0+local.1"]
    assert [f["filename"] for f in doc["files"]] == sorted(f.filename for f in _files())
    no_serial = json.loads(render_project_json("foo", _files()))
    assert no_serial["meta"] == {"api-version": "1.1"}


def test_json_versions_sorted_by_version_not_text() -> None:
    files = [
        FileEntry(f"p-{v}.tar.gz", f"../../packages/p/p-{v}.tar.gz", H1, 1)
        for v in ("10.0", "9.0", "1.0rc1", "1.0", "junk-name")
    ]
    doc = json.loads(render_project_json("p", files))
    assert doc["versions"] == ["1.0rc1", "1.0", "9.0", "10.0"]


def test_json_file_entries() -> None:
    by_name = {f["filename"]: f for f in _json()["files"]}
    wheel = by_name["foo_bar-1.0-py3-none-any.whl"]
    assert wheel == {
        "filename": "foo_bar-1.0-py3-none-any.whl",
        "url": "../../packages/foo-bar/foo_bar-1.0-py3-none-any.whl",
        "hashes": {"sha256": H1},
        "requires-python": ">=3.8, <4",
        "yanked": 'broken "build" <oops> & more',
        "core-metadata": {"sha256": M1},
        "size": 1234,
        "upload-time": "2023-01-02T03:04:05.123456Z",
    }
    sdist = by_name["foo_bar-0.9.tar.gz"]
    assert sdist == {
        "filename": "foo_bar-0.9.tar.gz",
        "url": "../../packages/foo-bar/foo_bar-0.9.tar.gz",
        "hashes": {"sha256": H2},
        "yanked": True,
        "size": 99,
    }
    local = by_name["foo_bar-1.0+local.1-py3-none-any.whl"]
    assert local["yanked"] is False
    assert local["url"].endswith("foo_bar-1.0%2Blocal.1-py3-none-any.whl")
    assert isinstance(local["size"], int)


def test_json_never_empty_null_or_dist_info_metadata() -> None:
    raw = render_project_json("foo-bar", _files()).decode()
    assert "dist-info-metadata" not in raw
    assert '""' not in raw
    assert "null" not in raw


def test_json_round_trip() -> None:
    page = parse_json_page("foo-bar", render_project_json("foo-bar", _files(), 42), PAGE_URL)
    assert page.last_serial == 42
    assert page.versions == ["0.9", "1.0", "1.0+local.1"]
    by_name = {f.filename: f for f in page.files}
    wheel = by_name["foo_bar-1.0-py3-none-any.whl"]
    assert wheel.url == "file:///tree/packages/foo-bar/foo_bar-1.0-py3-none-any.whl"
    assert (wheel.sha256, wheel.size, wheel.core_metadata) == (H1, 1234, M1)
    assert wheel.yanked == 'broken "build" <oops> & more'
    assert by_name["foo_bar-0.9.tar.gz"].yanked is True


def test_json_deterministic() -> None:
    files = _files()
    assert render_project_json("foo-bar", files) == render_project_json(
        "Foo_Bar", list(reversed(files))
    )


# --- upload-time ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-01-02T03:04:05.123456Z", "2023-01-02T03:04:05.123456Z"),
        ("2023-01-02T03:04:05Z", "2023-01-02T03:04:05.000000Z"),
        ("2023-01-02T03:04:05.1Z", "2023-01-02T03:04:05.100000Z"),
        ("2023-01-02T03:04:05.123456789Z", "2023-01-02T03:04:05.123456Z"),
        ("2023-01-02T03:04:05+02:00", "2023-01-02T01:04:05.000000Z"),
        ("2023-01-02T03:04:05-0130", "2023-01-02T04:34:05.000000Z"),
        ("2023-01-02 03:04:05", "2023-01-02T03:04:05.000000Z"),
        ("", None),
        (None, None),
        ("yesterday", None),
        ("2023-13-02T03:04:05Z", None),
    ],
)
def test_normalize_upload_time(raw: str | None, expected: str | None) -> None:
    assert normalize_upload_time(raw) == expected


def test_unparseable_upload_time_left_out() -> None:
    f = FileEntry("p-1.0.tar.gz", "../../packages/p/p-1.0.tar.gz", H1, 1, upload_time="soon")
    assert "upload-time" not in json.loads(render_project_json("p", [f]))["files"][0]
    assert "data-upload-time" not in render_project_html("p", [f]).decode()


# --- root -------------------------------------------------------------------


def test_root_html() -> None:
    text = render_root_html(["Foo.Bar", "abc", "foo-bar"]).decode()
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta name="pypi:repository-version" content="1.1">' in text
    assert text.count('<a href="foo-bar/">foo-bar</a>') == 1
    assert text.index('href="abc/"') < text.index('href="foo-bar/"')


def test_root_json() -> None:
    doc = json.loads(render_root_json([("Foo.Bar", 7), ("abc", None)], last_serial=7))
    assert doc == {
        "meta": {"api-version": "1.1", "_last-serial": 7},
        "projects": [{"name": "abc"}, {"name": "foo-bar", "_last-serial": 7}],
    }
    assert json.loads(render_root_json([]))["meta"] == {"api-version": "1.1"}
    assert "null" not in render_root_json([("x", None)]).decode()


def test_status_and_tracks_round_trip_with_the_right_api_version() -> None:
    from morgan_like.dists.links import ProjectMeta

    meta = ProjectMeta("archived", 'moved to "new"', ("https://example.org/simple/foo-bar/",))
    doc = json.loads(render_project_json("foo-bar", _files(), 9, meta))
    assert doc["meta"]["api-version"] == "1.4"
    assert doc["project-status"] == {"status": "archived", "reason": 'moved to "new"'}
    assert doc["tracks"] == ["https://example.org/simple/foo-bar/"]
    assert "alternate-locations" not in doc
    html_page = render_project_html("foo-bar", _files(), 9, meta).decode()
    assert '<meta name="pypi:repository-version" content="1.4">' in html_page
    assert (
        '<meta name="pypi:project-status-reason" content="moved to &quot;new&quot;">' in html_page
    )
    for parsed in (
        parse_json_page("foo-bar", json.dumps(doc), PAGE_URL),
        parse_html_page("foo-bar", html_page, PAGE_URL),
    ):
        assert parsed.meta == meta
    tracks_only = ProjectMeta(alternate_locations=("https://example.org/foo-bar/",))
    assert json.loads(render_project_json("foo-bar", [], None, tracks_only))["meta"] == {
        "api-version": "1.2"
    }
    plain = render_project_html("foo-bar", _files()).decode()
    assert '<meta name="pypi:repository-version" content="1.1">' in plain
    assert "pypi:project-status" not in plain and "pypi:tracks" not in plain


def test_index_only_entries_keep_upstream_urls_and_may_lack_a_size() -> None:
    from morgan_like.dists.links import RemoteFile
    from morgan_like.tree.pages import upstream_entry

    url = "https://files.example.org/packages/ab/cd/foo_bar-1.0+local-py3-none-any.whl"
    entry = upstream_entry(RemoteFile("foo_bar-1.0+local-py3-none-any.whl", url, sha256=H1.upper()))
    assert entry is not None and entry.size is None and entry.sha256 == H1
    doc = json.loads(render_project_json("foo-bar", [entry]))
    assert doc["files"][0]["url"] == url and "size" not in doc["files"][0]
    assert f'href="{url}#sha256={H1}"' in render_project_html("foo-bar", [entry]).decode()
    assert upstream_entry(RemoteFile("foo_bar-1.0.tar.gz", url)) is None  # no hash: left out


def test_local_json_lists_known_serials() -> None:
    from morgan_like.tree.pages import render_local_json

    assert json.loads(render_local_json([("Foo_Bar", 3), ("baz", None), ("a", 1)])) == {
        "a": 1,
        "foo-bar": 3,
    }
    assert render_local_json([]) == b"{}\n"
