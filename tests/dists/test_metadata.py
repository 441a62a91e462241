"""Metadata from the cheapest source: PEP 658, zip range reads, full download, sdist files."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import DistMetadata, parse_core_metadata, wheel_metadata_bytes
from morgan_like.dists.sdist import build_requires, read_archive, static_metadata
from morgan_like.errors import MetadataError, RangeError
from morgan_like.index import remote as metadata_mod
from morgan_like.index.remote import wheel_metadata
from morgan_like.index.upstream import Upstream

from ..distbuilder import core_metadata, make_sdist, make_wheel
from ..fakeindex import FakeIndex

WHEEL_FILE = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def sdist_metadata(path: Path) -> DistMetadata:
    """The static dependencies of a local sdist, read as a run reads it (SdistReader)."""
    return static_metadata(read_archive(path))


def sdist_build_requires(path: Path) -> list[Requirement]:
    return build_requires(read_archive(path))


def remote_file(index: FakeIndex, filename: str) -> RemoteFile:
    with Upstream(index.url) as up:
        page = up.project_page(index.files[filename].project)
    return next(f for f in page.files if f.filename == filename)


def read(index: FakeIndex, filename: str) -> tuple[DistMetadata, Upstream]:
    file = remote_file(index, filename)
    index.reset_log()
    up = Upstream(index.url, backoff=0.001)
    try:
        return wheel_metadata(up, file), up
    finally:
        up.close()


def settled(index: FakeIndex) -> list:
    """The request log once it stops growing: the server logs a request after answering it."""
    last, stable_since = None, time.monotonic()
    deadline = stable_since + 2
    while time.monotonic() < deadline:
        log = index.requests
        if log != last:
            last, stable_since = log, time.monotonic()
        elif time.monotonic() - stable_since > 0.05:
            break
        time.sleep(0.01)
    return [r for r in last or [] if r.path.startswith("/files/")]


def file_requests(index: FakeIndex) -> list[tuple[str, str | None]]:
    return [(r.path, r.headers.get("Range")) for r in settled(index)]


def paths(index: FakeIndex) -> list[str]:
    return [r.path for r in settled(index)]


def files_bytes_sent(index: FakeIndex) -> int:
    return sum(r.bytes_sent for r in settled(index))


def strs(reqs: list[Requirement]) -> list[str]:
    return [str(r) for r in reqs]


# ------------------------------------------------------------ core metadata


def test_parse_core_metadata_keeps_good_lines_around_a_malformed_one() -> None:
    raw = core_metadata(
        "foo",
        "1.0",
        requires_dist=["good>=1", "bar >>> 1", 'baz; extra == "x"'],
        requires_python=">=3.8",
        provides_extra=["x"],
    ).encode()
    meta = parse_core_metadata(raw, "foo-1.0-py3-none-any.whl")
    assert (meta.name, meta.version, meta.requires_python) == ("foo", "1.0", ">=3.8")
    assert strs(meta.requires_dist) == ["good>=1", 'baz; extra == "x"']
    assert meta.provides_extra == ["x"]
    assert meta.raw == raw
    (problem,) = meta.problems
    assert problem.startswith(
        "foo-1.0-py3-none-any.whl: skipped malformed Requires-Dist 'bar >>> 1'"
    )


def test_parse_core_metadata_bad_requires_python_and_no_name() -> None:
    meta = parse_core_metadata(b"Name: a\nVersion: 1\nRequires-Python: >=>3\n", "a.whl")
    assert meta.requires_python is None and "Requires-Python" in meta.problems[0]
    with pytest.raises(MetadataError, match="a.whl"):
        parse_core_metadata(b"Version: 1\n", "a.whl")


def test_problems_are_one_line_and_odd_bytes_tolerated() -> None:
    raw = (
        b"Metadata-Version: 2.1\r\nName: x\r\nVersion: 1\r\nAuthor: J\xe9r\xf4me\r\n"
        b"Requires-Dist: a\r\nRequires-Dist: q; extra == 'y' junk\r\n\r\nbody \xff\xfe\r\n"
    )
    meta = parse_core_metadata(raw, "x-1-py3-none-any.whl")
    assert strs(meta.requires_dist) == ["a"]
    assert len(meta.problems) == 1 and "\n" not in meta.problems[0]


def test_wheel_metadata_bytes_picks_matching_dist_info(tmp_path: Path) -> None:
    path = tmp_path / "foo_bar-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("vendored-2.0.dist-info/METADATA", b"Name: vendored\n")
        zf.writestr("Foo.Bar-1.0.dist-info/METADATA", b"Name: Foo.Bar\r\nVersion: 1.0\r\n")
    assert wheel_metadata_bytes(path) == b"Name: Foo.Bar\r\nVersion: 1.0\r\n"
    with zipfile.ZipFile(tmp_path / "x-1-py3-none-any.whl", "w") as zf:
        zf.writestr("x.py", b"")
    with pytest.raises(MetadataError, match="x-1-py3-none-any.whl"):
        wheel_metadata_bytes(tmp_path / "x-1-py3-none-any.whl")


# ------------------------------------------------------------ remote wheels


def test_pep658_used_when_advertised(fake_index: FakeIndex, dists: Path) -> None:
    wheel = make_wheel(dists, "foo", "1.0", requires_dist=["bar>=2"], pad_bytes=200_000)
    fake_index.add(wheel)
    meta, up = read(fake_index, wheel.name)
    assert meta.source == "pep658" and meta.problems == []
    assert strs(meta.requires_dist) == ["bar>=2"]
    assert meta.raw == wheel_metadata_bytes(wheel)
    assert paths(fake_index) == [f"/files/{wheel.name}.metadata"]
    assert up.bytes_fetched == len(meta.raw)


def test_pep658_hash_mismatch_falls_back_to_ranges(fake_index: FakeIndex, dists: Path) -> None:
    wheel = make_wheel(dists, "foo", "1.0", requires_dist=["bar"], pad_bytes=200_000)
    fake_index.add(wheel)
    fake_index.corrupt(wheel.name + ".metadata")
    meta, _ = read(fake_index, wheel.name)
    assert meta.source == "zip-range"
    assert strs(meta.requires_dist) == ["bar"]
    assert "sha256 mismatch" in meta.problems[0] and wheel.name in meta.problems[0]
    assert paths(fake_index)[0] == f"/files/{wheel.name}.metadata"


def test_pep658_missing_file_falls_back(fake_index: FakeIndex, dists: Path) -> None:
    wheel = make_wheel(dists, "foo", "1.0", requires_dist=["bar"])
    fake_index.add(wheel)
    fake_index.fail(wheel.name + ".metadata", times=1, status=404)
    meta, _ = read(fake_index, wheel.name)
    assert meta.source in ("zip-range", "download") and strs(meta.requires_dist) == ["bar"]
    assert "unavailable" in meta.problems[0]


def test_range_reads_of_a_large_wheel(dists: Path) -> None:
    wheel = make_wheel(dists, "big", "1.0", requires_dist=["dep<3"], pad_bytes=5_000_000)
    with FakeIndex(pep658=False) as index:
        index.add(wheel)
        meta, up = read(index, wheel.name)
        sent = files_bytes_sent(index)
        reqs = file_requests(index)
    assert meta.source == "zip-range"
    assert meta.raw == wheel_metadata_bytes(wheel)
    assert strs(meta.requires_dist) == ["dep<3"]
    assert reqs[0] == (f"/files/{wheel.name}", f"bytes=-{metadata_mod.TAIL_BYTES}")
    assert len(reqs) <= 2
    assert sent < 100_000 < 5_000_000
    assert up.bytes_fetched == sent


def _wheel_metadata_first(path: Path, pad: int) -> Path:
    """METADATA as the first member, far from the tail: needs a second range."""
    meta = core_metadata("early", "1.0", requires_dist=["x==1"]).encode()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("early-1.0.dist-info/METADATA", meta, zipfile.ZIP_DEFLATED)
        zf.writestr("early/pad.bin", io.BytesIO(bytes(range(256)) * (pad // 256)).getvalue())
        zf.writestr("early-1.0.dist-info/WHEEL", WHEEL_FILE)
        zf.writestr("early-1.0.dist-info/RECORD", b"")
    return path


def test_metadata_far_from_the_tail_costs_one_more_range(dists: Path) -> None:
    wheel = _wheel_metadata_first(dists / "early-1.0-py3-none-any.whl", 1_000_000)
    with FakeIndex(pep658=False) as index:
        index.add(wheel)
        meta, _ = read(index, wheel.name)
        reqs = file_requests(index)
        sent = files_bytes_sent(index)
    assert meta.source == "zip-range" and strs(meta.requires_dist) == ["x==1"]
    assert len(reqs) == 2 and reqs[1][1].startswith("bytes=0-")
    assert sent < 100_000


def test_server_without_ranges_downloads_once(dists: Path) -> None:
    wheel = make_wheel(dists, "norange", "1.0", requires_dist=["a"], pad_bytes=300_000)
    with FakeIndex(pep658=False, ranges=False) as index:
        index.add(wheel)
        meta, up = read(index, wheel.name)
        requested = paths(index)
    assert meta.source == "download" and strs(meta.requires_dist) == ["a"]
    assert requested == [f"/files/{wheel.name}"]
    assert up.bytes_fetched == wheel.stat().st_size


def test_archive_comment_and_zip64(dists: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = dists / "odd-1.0-py3-none-any.whl"
    meta_bytes = core_metadata("odd", "1.0", requires_dist=["y>1"]).encode()
    with monkeypatch.context() as patch:
        # Make zipfile write zip64 end records and zip64 extra fields for small files.
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
        patch.setattr(zipfile, "ZIP64_LIMIT", 1000)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("odd/pad.bin", bytes(range(256)) * 400)
            with zf.open("odd-1.0.dist-info/METADATA", "w", force_zip64=True) as out:
                out.write(meta_bytes)
            zf.writestr("odd-1.0.dist-info/WHEEL", WHEEL_FILE)
            zf.comment = b"c" * 65535  # the longest archive comment there is
    data = path.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # zip64 EOCD record + locator
    with FakeIndex(pep658=False) as index:
        index.add(path)
        meta, _ = read(index, path.name)
        assert len(settled(index)) <= 2
    assert meta.source == "zip-range" and meta.raw == meta_bytes


def test_large_central_directory(dists: Path) -> None:
    files = {f"many/{'m' * 60}_{i:05d}.py": b"" for i in range(3000)}
    wheel = make_wheel(dists, "many", "1.0", requires_dist=["z"], files=files, pad_bytes=500_000)
    with FakeIndex(pep658=False) as index:
        index.add(wheel)
        meta, _ = read(index, wheel.name)
        reqs = file_requests(index)
    assert meta.source == "zip-range" and strs(meta.requires_dist) == ["z"]
    assert 2 <= len(reqs) <= 3


def test_unusable_ranges_fall_back_to_one_download(
    fake_index: FakeIndex, dists: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(dists, "foo", "1.0", requires_dist=["bar"])
    fake_index.add(wheel, serve_metadata=False)
    file = remote_file(fake_index, wheel.name)

    def broken(self, url, start, end):
        raise RangeError(f"GET {url}: bad range")

    monkeypatch.setattr(Upstream, "fetch_range", broken)
    fake_index.reset_log()
    with Upstream(fake_index.url) as up:
        meta = wheel_metadata(up, file)
    assert meta.source == "download" and strs(meta.requires_dist) == ["bar"]
    assert "range reads failed" in meta.problems[0]
    assert paths(fake_index) == [f"/files/{wheel.name}"]


def test_malformed_requires_dist_in_remote_wheel(fake_index: FakeIndex, dists: Path) -> None:
    wheel = make_wheel(dists, "foo", "1.0", requires_dist=["a", "b (>=1", "c"])
    fake_index.add(wheel)
    meta, _ = read(fake_index, wheel.name)
    assert strs(meta.requires_dist) == ["a", "c"]
    assert len(meta.problems) == 1 and "'b (>=1'" in meta.problems[0]


# ------------------------------------------------------------ sdists


def test_sdist_pkg_info_2_2_static(dists: Path) -> None:
    sdist = make_sdist(
        dists, "stat", "1.0", requires_dist=["a>=1", 'b; extra == "x"'], provides_extra=["x"],
        requires_python=">=3.8", pkg_info_metadata_version="2.2",
    )  # fmt: skip
    meta = sdist_metadata(sdist)
    assert meta.source == "pkg-info"
    assert (meta.name, meta.version, meta.requires_python) == ("stat", "1.0", ">=3.8")
    assert strs(meta.requires_dist) == ["a>=1", 'b; extra == "x"']
    assert meta.provides_extra == ["x"] and meta.raw is None


def test_egg_info_requires_txt_is_not_static(dists: Path) -> None:
    """requires.txt is what setup.py computed where the sdist was made (pip and uv never
    read it): a legacy sdist's dependencies come from its metadata hook instead."""
    for version, kwargs in (
        ("2.0", {"pkg_info_metadata_version": "2.2", "dynamic": ["Requires-Dist"]}),
        ("2.1", {"pkg_info_metadata_version": "2.1"}),
    ):
        sdist = make_sdist(
            dists, "legacy", version, include_requires_dist_in_pkg_info=False,
            egg_info_requires="requests>=2\n[:sys_platform == 'win32']\ncolorama\n",
            build_requires=None, **kwargs,
        )  # fmt: skip
        with pytest.raises(MetadataError) as info:
            sdist_metadata(sdist)
        assert f"legacy-{version}.tar.gz: cannot read its dependencies statically" in str(
            info.value
        )
        assert "requires.txt" not in str(info.value)


def test_sdist_pyproject_fallback(dists: Path) -> None:
    sdist = make_sdist(
        dists, "modern", "3.0", requires_dist=["attrs>=20", 'rich; extra == "fancy"'],
        provides_extra=["fancy"], requires_python=">=3.9", pkg_info_metadata_version="2.1",
    )  # fmt: skip
    meta = sdist_metadata(sdist)
    assert meta.source == "pyproject"
    assert (meta.name, meta.version, meta.requires_python) == ("modern", "3.0", ">=3.9")
    assert strs(meta.requires_dist) == ["attrs>=20", 'rich; extra == "fancy"']
    assert meta.provides_extra == ["fancy"]


def test_sdist_nothing_static_names_the_file(dists: Path) -> None:
    sdist = make_sdist(
        dists, "opaque", "1.0", requires_dist=["x"], pkg_info_metadata_version="2.1",
        build_requires=None,
    )  # fmt: skip
    with pytest.raises(MetadataError) as info:
        sdist_metadata(sdist)
    message = str(info.value)
    assert message.startswith("opaque-1.0.tar.gz: cannot read its dependencies statically")
    assert "Metadata-Version 2.1" in message and "no pyproject.toml" in message


def test_sdist_dynamic_pyproject_dependencies_is_not_static(dists: Path) -> None:
    sdist = make_sdist(
        dists, "dyn", "1.0", pkg_info_metadata_version="2.2", dynamic=["Requires-Dist"],
        requires_dist=["x"], include_requires_dist_in_pkg_info=False,
    )  # fmt: skip
    with pytest.raises(MetadataError, match="dependencies as dynamic"):
        sdist_metadata(sdist)


def test_sdist_poetry_pkg_info_is_static(dists: Path) -> None:
    pyproject = (
        '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    sdist = make_sdist(
        dists, "poet", "1.0", requires_dist=["q>=1"], pkg_info_metadata_version="2.1",
        pyproject=pyproject,
    )  # fmt: skip
    meta = sdist_metadata(sdist)
    assert meta.source == "pkg-info" and strs(meta.requires_dist) == ["q>=1"]


def test_sdist_zip_and_bz2_and_odd_members(dists: Path) -> None:
    pkg_info = core_metadata("zipped", "1.0", metadata_version="2.3", requires_dist=["w"])
    zpath = dists / "zipped-1.0.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("zipped-1.0/PKG-INFO", pkg_info)
        zf.writestr("zipped-1.0/setup.py", "")
    assert strs(sdist_metadata(zpath).requires_dist) == ["w"]

    bpath = dists / "bzed-1.0.tar.bz2"
    with tarfile.open(bpath, "w:bz2") as tf:
        for name, data in {
            "./bzed-1.0/PKG-INFO": core_metadata("bzed", "1.0", metadata_version="2.2").encode(),
            "./bzed-1.0/pyproject.toml": b"[build-system]\nrequires = ['flit_core>=3']\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("./bzed-1.0/evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    meta = sdist_metadata(bpath)
    assert (meta.name, meta.requires_dist) == ("bzed", [])
    assert strs(sdist_build_requires(bpath)) == ["flit_core>=3"]


def test_sdist_flat_archive_without_top_dir(dists: Path) -> None:
    members = {
        "PKG-INFO": core_metadata("flat", "1.0", metadata_version="2.2", requires_dist=["v"])
    }
    path = dists / "flat-1.0.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, text in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tf.addfile(info, io.BytesIO(text.encode()))
    path.write_bytes(buffer.getvalue())
    assert strs(sdist_metadata(path).requires_dist) == ["v"]


def test_sdist_corrupt_archive(dists: Path) -> None:
    path = dists / "broken-1.0.tar.gz"
    path.write_bytes(b"not a tarball")
    with pytest.raises(MetadataError, match="broken-1.0.tar.gz"):
        sdist_metadata(path)


def test_build_requires(dists: Path) -> None:
    modern = make_sdist(dists, "m", "1.0", build_requires=["hatchling>=1.18", "hatch-vcs"])
    assert strs(sdist_build_requires(modern)) == ["hatchling>=1.18", "hatch-vcs"]
    legacy = make_sdist(dists, "l", "1.0", build_requires=None)
    assert strs(sdist_build_requires(legacy)) == ["setuptools>=40.8.0", "wheel"]
    # pyproject.toml without [build-system] (e.g. only tool config) is legacy too.
    tool_only = make_sdist(dists, "t", "1.0", pyproject="[tool.black]\nline-length = 99\n")
    assert strs(sdist_build_requires(tool_only)) == ["setuptools>=40.8.0", "wheel"]
    broken = make_sdist(dists, "b", "1.0", pyproject="[build-system]\nbuild-backend = 'x'\n")
    with pytest.raises(MetadataError, match="b-1.0.tar.gz"):
        sdist_build_requires(broken)


def test_broken_wheel_is_reported_without_a_second_download(dists: Path) -> None:
    path = dists / "bad-1.0-py3-none-any.whl"
    path.write_bytes(b"PK not really a zip" * 100)
    for ranges in (True, False):
        with FakeIndex(pep658=False, ranges=ranges) as index:
            index.add(path, project="bad")
            with pytest.raises(MetadataError, match=path.name):
                read(index, path.name)
            assert len(paths(index)) == 1


def test_wheel_without_metadata_is_reported(dists: Path) -> None:
    path = dists / "nometa-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nometa/__init__.py", b"")
        zf.writestr("nometa/pad.bin", bytes(range(256)) * 1000)
    with FakeIndex(pep658=False) as index:
        index.add(path, project="nometa")
        with pytest.raises(MetadataError, match="no single"):
            read(index, path.name)
        assert len(paths(index)) == 1
