"""A project's JSON pages are json.dumps's bytes, made without json.dumps's circular check.

tree/pages.json_page encodes with one JSONEncoder (ensure_ascii=False, no check for
circular references): the bytes must be exactly those of json.dumps(doc,
ensure_ascii=False), whatever the page carries (escapes, non-ASCII, nulls).
"""

from __future__ import annotations

import json

import pytest

from morgan_like.dists.links import ProjectMeta
from morgan_like.tree import pages, warehouse
from morgan_like.tree.pages import FileEntry, render_project_json
from morgan_like.tree.warehouse import render_warehouse_json

_ODD = [
    FileEntry(
        "odd-1.0-py3-none-any.whl",
        'https://h/p/odd-1.0-py3-none-any.whl?x="<&>"',
        "a" * 64,
        10,
        requires_python='>=3.8,!="3.9"\\',
        yanked="retiré \u2028 \x01 \U0001f600",
        metadata_sha256="b" * 64,
        upload_time="2024-02-29T23:59:59Z",
    ),
    FileEntry("odd-1.0.tar.gz", "../../packages/odd/odd-1.0.tar.gz", "c" * 64, None),
    FileEntry("odd-2.0rc1.tar.gz", "../../packages/odd/odd-2.0rc1.tar.gz", "d" * 64, 3),
    FileEntry("odd-latest.zip", "../../packages/odd/odd-latest.zip", "e" * 64, 4),
]


def _as_dumps(data: bytes) -> bytes:
    return (json.dumps(json.loads(data), ensure_ascii=False) + "\n").encode("utf-8")


def test_json_pages_are_json_dumps_bytes_without_json_dumps(monkeypatch) -> None:
    meta = ProjectMeta("archived", "moved \u00e9", ("https://a/",), ())

    def refused(*args: object, **kwargs: object) -> str:
        raise AssertionError("json.dumps called")

    monkeypatch.setattr(pages.json, "dumps", refused)
    monkeypatch.setattr(json, "dumps", refused)
    got = [
        render_project_json("odd", _ODD, 7, meta),
        render_warehouse_json("odd", _ODD, 7),
        render_warehouse_json("odd", _ODD[3:], None),  # no release at all
    ]
    monkeypatch.undo()
    for data in got:
        assert data == _as_dumps(data)
    assert all("é".encode() in data for data in got[:2])


@pytest.mark.parametrize("files", [_ODD, _ODD[1:], _ODD[3:], []])
def test_warehouse_info_reads_the_latest_release_s_wheels(files: list[FileEntry]) -> None:
    """info's metadata comes from the latest release's wheels, or, with no release, from
    the files whose name gives no version (as before the grouping)."""
    asked: list[str] = []

    def read(entry: FileEntry) -> bytes | None:
        asked.append(entry.filename)
        return None

    render_warehouse_json("odd", files, 1, read)
    versions = {f.version for f in files if f.version is not None}
    latest = warehouse.Version("1.0") if versions else None
    expected = [f.filename for f in files if f.version == latest and f.filename.endswith(".whl")]
    assert asked == expected
