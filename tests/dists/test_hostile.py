"""Hostile distributions and pages: zip and tar bombs, unsafe filenames, odd JSON entries."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from morgan_like.dists import sdistread
from morgan_like.dists.archive import MIB, iter_tar
from morgan_like.dists.filenames import vet_filename
from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import MAX_PAGE_PROBLEMS, parse_json_page
from morgan_like.dists.metadata import wheel_metadata_bytes
from morgan_like.dists.sdistread import SdistReader, read_sdist
from morgan_like.errors import MetadataError
from morgan_like.index.limits import Limits
from morgan_like.index.remote import wheel_metadata
from morgan_like.index.upstream import Upstream

from ..distbuilder import (
    bomb_metadata_head,
    make_bomb_sdist,
    make_bomb_wheel,
    make_sdist,
    make_wheel,
    write_bomb_metadata,
)
from ..fakeindex import FakeIndex

PAGE = "https://index.test/simple/foo/"

# ------------------------------------------------------------------ zip bombs


def test_local_zip_bomb_wheel_metadata_is_refused_not_read(tmp_path: Path) -> None:
    bomb = make_bomb_wheel(tmp_path, "foo", "1.0", 64)  # 64 KiB file, 64 MiB METADATA
    with pytest.raises(MetadataError, match=r"foo-1.0-py3-none-any.whl: .*METADATA inflates past"):
        wheel_metadata_bytes(bomb, limit=1 * MIB)
    # The writer's default cap (16 MiB) refuses it too: no .metadata is ever written.
    with pytest.raises(MetadataError, match="inflates past 16 MiB"):
        wheel_metadata_bytes(bomb)


@pytest.mark.parametrize("pep658", [True, False])
@pytest.mark.parametrize("ranges", [True, False])
def test_remote_zip_bomb_wheel_is_a_clear_error(tmp_path: Path, pep658: bool, ranges: bool) -> None:
    bomb = make_bomb_wheel(tmp_path, "foo", "1.0", 8)
    metadata = write_bomb_metadata(tmp_path / "METADATA", "foo", "1.0", 8)
    with FakeIndex(pep658=pep658, ranges=ranges) as index:
        index.add(bomb, serve_metadata=metadata)
        limits = Limits(metadata_bytes=1 * MIB)
        with Upstream(index.url, backoff=0.001, limits=limits) as up:
            (file,) = up.project_page("foo").files
            with pytest.raises(MetadataError, match=r"METADATA inflates past 1 MiB; not read"):
                wheel_metadata(up, file)
            # Nothing read whole: at most the cap's worth of METADATA ever arrived.
            assert up.bytes_fetched < bomb.stat().st_size + 1 * MIB


def test_metadata_under_the_cap_still_read(tmp_path: Path) -> None:
    bomb = make_bomb_wheel(tmp_path, "foo", "1.0", 1)
    with FakeIndex(pep658=False) as index:
        index.add(bomb)
        with Upstream(index.url, limits=Limits(metadata_bytes=2 * MIB)) as up:
            (file,) = up.project_page("foo").files
            meta = wheel_metadata(up, file)
    assert (meta.name, meta.version) == ("foo", "1.0")
    assert meta.raw is not None and meta.raw.startswith(bomb_metadata_head("foo", "1.0"))


# ------------------------------------------------------------------ tar bombs


def test_gzip_bomb_sdist_refused_from_its_header(tmp_path: Path) -> None:
    bomb = make_bomb_sdist(tmp_path, "foo", "1.0", 2048)  # 2 GiB of zeros, ~2 MB on disk
    facts = read_sdist(bomb)
    assert facts.metadata is None and facts.build_requires is None
    # Refused from the member's header, before a byte of it was inflated.
    assert facts.metadata_error == (
        "foo-1.0.tar.gz: its member foo-1.0/data.bin would take the archive past "
        "1024 MiB inflated; not read"
    )
    assert facts.build_error == facts.metadata_error


def test_tar_stream_cap_counts_inflated_bytes(tmp_path: Path) -> None:
    bomb = make_bomb_sdist(tmp_path, "foo", "1.0", 8)
    with open(bomb, "rb") as f:
        for member, read in iter_tar(f, bomb.name, total=16 * MIB):
            assert len(read()) == member.size  # 8 MiB under a 16 MiB cap: read
        f.seek(0)
        # Whatever the headers say, the decompressed stream itself stops at the cap.
        with pytest.raises(MetadataError, match="the archive inflates past"):
            list(iter_tar(f, bomb.name, total=700))


def test_huge_long_name_header_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("foo-1.0/" + "x" * (2 * MIB))
        info.size = 0
        tf.addfile(info)
    path = tmp_path / "foo-1.0.tar"
    path.write_bytes(buffer.getvalue())
    facts = read_sdist(path)
    assert facts.metadata_error is not None and "extended tar header" in facts.metadata_error


def test_each_sdist_read_once_for_metadata_and_build_requirements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_sdist(tmp_path, "foo", "1.0", requires_dist=["bar"])
    reads: list[str] = []
    real = sdistread.read_archive
    monkeypatch.setattr(sdistread, "read_archive", lambda p: reads.append(p.name) or real(p))
    reader = SdistReader()
    assert [str(r) for r in reader.metadata(path).requires_dist] == ["bar"]
    # Moved into the tree (a rename keeps the file's identity): still no second read.
    moved = tmp_path / "tree" / path.name
    moved.parent.mkdir()
    path.rename(moved)
    assert [str(r) for r in reader.build_requires(moved)] == ["tinybackend"]
    assert reads == ["foo-1.0.tar.gz"]


# ------------------------------------------------------------------ page entries


@pytest.mark.parametrize(
    ("filename", "problem"),
    [
        ("../../x.tar.gz", "path separator"),
        ("/etc/x.tar.gz", "path separator"),
        ("..\\x.tar.gz", "path separator"),
        ("..x-1.0.tar.gz", "starts with a dot"),
        ("foo-1.0\x00.tar.gz", "control character"),
        ("foo-1.0\n.tar.gz", "control character"),
        ("foo-1.0.txt", "not a wheel or sdist name"),
        ("foo.whl", "not a valid wheel name"),
        ("bar-1.0.tar.gz", "a file of project 'bar'"),
        ("", "empty filename"),
    ],
)
def test_unsafe_filenames(filename: str, problem: str) -> None:
    assert problem in (vet_filename(filename, "foo")[0] or "")
    assert vet_filename("Foo-1.0.tar.gz", "foo")[0] is None
    assert vet_filename("foo-1.0-py3-none-any.whl", "foo")[0] is None


def test_hostile_html_entries_skipped_good_ones_kept() -> None:
    html = "".join(
        f'<a href="{href}">{text}</a>\n'
        for href, text in [
            ("../../files/%2E%2E%2F%2E%2E%2Fx.tar.gz", "x"),
            ("javascript:alert(1)//foo-1.0.tar.gz", "js"),
            ("../../files/foo-1.0.tar.gz#sha256=nothex", "bad hash"),
            ("../../files/foo-0.1.egg", "old egg: quietly left out"),
            ("../../files/foo-1.0.tar.gz", "good"),
        ]
    )
    page = parse_html_page("foo", html, PAGE)
    assert [f.filename for f in page.files] == ["foo-1.0.tar.gz"]
    assert len(page.problems) == 3
    assert "'../../x.tar.gz': path separator" in page.problems[0]
    assert "is not http(s)" in page.problems[1]
    assert "malformed sha256" in page.problems[2]


def test_odd_json_entries_skipped_one_line_each() -> None:
    good = {"filename": "foo-1.0.tar.gz", "url": "foo-1.0.tar.gz", "hashes": {"sha256": "a" * 64}}
    odd = [
        {"filename": 1, "url": "x"},
        {"filename": "foo-1.1.tar.gz", "url": 5},
        {"filename": "foo-1.2.tar.gz", "url": "x", "hashes": "sha256=1"},
        {"filename": "foo-1.3.tar.gz", "url": "x", "hashes": {"sha256": 12}},
        {"filename": "foo-1.4.tar.gz", "url": "x", "requires-python": [">=3"]},
        {"filename": "foo-1.5.tar.gz", "url": "x", "yanked": {"why": 1}},
        None,
    ]
    doc = {"name": 42, "files": [*odd, good], "versions": "1.0", "meta": []}
    page = parse_json_page("foo", json.dumps(doc), PAGE)
    assert [f.filename for f in page.files] == ["foo-1.0.tar.gz"]
    assert page.name == "foo" and page.versions == [] and page.last_serial is None
    assert len(page.problems) == MAX_PAGE_PROBLEMS + 1
    assert page.problems[0] == f"{PAGE}: skipped file entry 1: filename is int"
    assert page.problems[-1] == f"{PAGE}: skipped 2 more file entries"


def test_odd_but_harmless_values_kept() -> None:
    entry = {
        "filename": "foo-1.0.tar.gz",
        "url": "foo-1.0.tar.gz",
        "hashes": None,
        "size": True,
        "requires-python": ">=3.6.*",  # invalid, but pip ignores it rather than the file
        "core-metadata": {"sha256": 5},
    }
    (file,) = parse_json_page("foo", json.dumps({"files": [entry]}), PAGE).files
    assert file.size is None and file.sha256 is None and file.core_metadata is True
    assert file.requires_python == ">=3.6.*"


def test_non_ascii_digits_are_not_numbers() -> None:
    from morgan_like.index.httputil import header_int

    html = '<a href="foo-1.0.tar.gz" data-size="\u00b2">foo</a><a href="foo-1.1.tar.gz" data-size="12">foo</a>'
    sizes = [f.size for f in parse_html_page("foo", html, PAGE).files]
    assert sizes == [None, 12]
    assert [header_int(v) for v in ("12", " 7 ", "\u00b2", "\u0661", "-1", None)] == [
        12, 7, None, None, None, None
    ]  # fmt: skip


def test_wheel_built_normally_unaffected(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "foo", "1.0", requires_dist=["bar"])
    assert wheel_metadata_bytes(wheel).startswith(b"Metadata-Version: 2.1\nName: foo")
