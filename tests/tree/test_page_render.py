"""A project's JSON pages are json.dumps's bytes, made without json.dumps.

tree/pages.py and tree/warehouse.py write each file of a page as JSON text and splice
it after the rest of the document, encoded by one JSONEncoder (ensure_ascii=False, no
check for circular references): the bytes must be exactly those of json.dumps(doc,
ensure_ascii=False) of the document as objects, whatever the page carries (escapes,
non-ASCII, nulls, absent values).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morgan_like.dists.links import ProjectMeta
from morgan_like.tree import pages, warehouse
from morgan_like.tree.pages import FileEntry, file_href, normalize_upload_time, render_project_json
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


def _reference_file(f: FileEntry) -> dict[str, Any]:
    """A PEP 691 file object as the page's rules build it (WIRE-FORMATS.md)."""
    entry: dict[str, Any] = {
        "filename": f.filename,
        "url": file_href(f.url),
        "hashes": {"sha256": f.sha256},
    }
    if f.requires_python:
        entry["requires-python"] = f.requires_python
    yanked = f.yanked
    entry["yanked"] = False if yanked is False or yanked is None else (yanked if yanked else True)
    if f.metadata_sha256:
        entry["core-metadata"] = {"sha256": f.metadata_sha256}
    if f.size is not None:
        entry["size"] = int(f.size)
    uploaded = normalize_upload_time(f.upload_time)
    if uploaded:
        entry["upload-time"] = uploaded
    if f.provenance:
        entry["provenance"] = file_href(f.provenance)
    return entry


def _reference_release_file(f: FileEntry) -> dict[str, Any]:
    """A Warehouse JSON release file as bandersnatch reads it."""
    uploaded = normalize_upload_time(f.upload_time)
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    wheel = f.filename.endswith(".whl")
    doc: dict[str, Any] = {
        "filename": f.filename,
        "url": warehouse._url(f),
        "digests": {"sha256": f.sha256},
        "packagetype": "bdist_wheel" if wheel else "sdist",
        "python_version": warehouse._python_version(f),
        "requires_python": f.requires_python,
        "yanked": f.yanked is not False and f.yanked is not None,
        "yanked_reason": f.yanked if isinstance(f.yanked, str) and f.yanked else None,
        "core-metadata": metadata,
        "data-dist-info-metadata": metadata,
        "has_sig": False,
    }
    if f.size is not None:
        doc["size"] = int(f.size)
    if uploaded:
        doc["upload_time"] = uploaded[:19]
        doc["upload_time_iso_8601"] = uploaded
    return doc


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_ENTRY = st.builds(
    FileEntry,
    filename=st.sampled_from(
        ["p-1.0-py3-none-any.whl", "p-1.0.tar.gz", "p-2.0b1-cp312-abi3-any.whl", "p-x.zip"]
    ),
    url=st.one_of(_TEXT, _TEXT.map(lambda t: "https://h/" + t)),
    sha256=_TEXT,
    size=st.one_of(st.none(), st.integers(0, 2**40)),
    requires_python=st.one_of(st.none(), _TEXT),
    yanked=st.one_of(st.booleans(), _TEXT),
    metadata_sha256=st.one_of(st.none(), _TEXT),
    upload_time=st.one_of(
        st.none(), _TEXT, st.sampled_from(["2024-01-02T03:04:05.000006Z", "2024-01-02 03:04"])
    ),
    provenance=st.one_of(st.none(), _TEXT),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ENTRY, max_size=5), st.one_of(st.none(), st.integers(0, 10**9)))
def test_file_texts_are_json_dumps_of_the_file_objects(
    files: list[FileEntry], serial: int | None
) -> None:
    page = json.loads(render_project_json("p", files, serial))
    ordered = sorted(files, key=lambda f: f.filename)
    assert page["files"] == [_reference_file(f) for f in ordered]
    data = render_project_json("p", files, serial)
    assert data == _as_dumps(data)
    rendered = render_warehouse_json("p", files, serial)
    assert rendered == _as_dumps(rendered)
    doc = json.loads(rendered)
    listed = [f for release in doc["releases"].values() for f in release]
    versioned = [f for f in ordered if f.version is not None]
    assert listed == [
        _reference_release_file(f) for f in sorted(versioned, key=lambda f: (f.version, f.filename))
    ]


def test_no_file_object_is_built_to_be_encoded(monkeypatch) -> None:
    """The files of a page go out as text: the encoder sees the document's head only."""
    seen: list[list[str]] = []

    class Watching(json.JSONEncoder):
        def encode(self, o: Any) -> str:
            seen.append(list(o))
            return super().encode(o)

    monkeypatch.setattr(pages, "_ENCODER", Watching(ensure_ascii=False, check_circular=False))
    render_project_json("odd", _ODD, 7)
    render_warehouse_json("odd", _ODD, 7)
    assert seen == [["meta", "name", "versions"], ["last_serial", "info"]]
