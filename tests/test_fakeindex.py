"""The fake index and the distribution builders behave like PyPI and real dists do."""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page

from .clients import PIP_ACCEPT, client_env, find_uv, pyenv_python
from .distbuilder import (
    make_sdist,
    make_wheel,
    read_sdist_pkg_info,
    read_wheel_metadata,
)
from .fakeindex import JSON_TYPE, FakeIndex, negotiate

PY312 = str(pyenv_python("3.12.1"))
PY37 = str(pyenv_python("3.7.16"))
PY313 = str(pyenv_python("3.13.0"))


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) without raising on 4xx/5xx and without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture
def populated(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    """foo-bar: a yanked wheel with Requires-Python, a plain wheel and an sdist."""
    w1 = make_wheel(dists, "Foo.Bar", "1.0", requires_python=">=3.8,<4", pad_bytes=5000)
    w2 = make_wheel(dists, "foo-bar", "1.1", requires_dist=["six (>=1.0", "x; extra == 'y'"])
    sd = make_sdist(dists, "foo_bar", "1.1", requires_python=">=3.9")
    fake_index.add(w1, yanked="broken build")
    fake_index.add(w2, upload_time="2024-05-06T07:08:09.123456Z")
    fake_index.add(sd, yanked=True)
    return fake_index


def _check_page(index: FakeIndex, page, dists: Path) -> None:
    by_name = {f.filename: f for f in page.files}
    assert list(by_name) == [
        "foo_bar-1.0-py3-none-any.whl",
        "foo_bar-1.1-py3-none-any.whl",
        "foo_bar-1.1.tar.gz",
    ]
    w1, w2, sd = by_name.values()
    assert w1.yanked == "broken build" and w2.yanked is False and sd.yanked is True
    assert w1.requires_python == ">=3.8,<4" and w2.requires_python is None
    assert sd.requires_python == ">=3.9"
    assert w2.upload_time == "2024-05-06T07:08:09.123456Z"
    assert w1.upload_time and w1.upload_time.endswith("Z")
    assert sd.core_metadata is None
    for rf in page.files:
        data = (dists / rf.filename).read_bytes()
        assert rf.url == index.file_url(rf.filename)
        assert rf.sha256 == hashlib.sha256(data).hexdigest()
        assert rf.size == len(data)
        status, _, served = fetch(rf.url)
        assert status == 200 and served == data
    for rf in (w1, w2):
        status, _, metadata = fetch(rf.url + ".metadata")
        assert status == 200
        assert metadata == read_wheel_metadata(dists / rf.filename)
        assert rf.core_metadata == hashlib.sha256(metadata).hexdigest()
    assert fetch(sd.url + ".metadata")[0] == 404


def test_json_page_round_trips(populated: FakeIndex, dists: Path) -> None:
    status, headers, body = fetch(populated.url + "foo-bar/", {"Accept": PIP_ACCEPT})
    assert status == 200 and headers["Content-Type"] == JSON_TYPE
    assert headers["Vary"] == "Accept" and headers["X-PyPI-Last-Serial"] == "3"
    page = parse_json_page("foo-bar", body, populated.url + "foo-bar/")
    assert page.versions == ["1.0", "1.1"] and page.last_serial == 3
    _check_page(populated, page, dists)
    assert b"dist-info-metadata" not in body


def test_html_page_round_trips(populated: FakeIndex, dists: Path) -> None:
    status, headers, body = fetch(populated.url + "foo-bar/", {"Accept": "text/html"})
    assert status == 200 and headers["Content-Type"] == "text/html"
    text = body.decode()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in text
    assert 'data-yanked="broken build"' in text and 'data-yanked=""' in text
    assert "data-dist-info-metadata=" in text and text.rstrip().endswith("<!--SERIAL 3-->")
    page = parse_html_page("foo-bar", text, populated.url + "foo-bar/")
    assert page.last_serial == 3
    _check_page(populated, page, dists)


def test_relative_urls_resolve_to_the_files(dists: Path) -> None:
    with FakeIndex(relative_urls=True) as index:
        index.add(make_wheel(dists, "foo-bar", "1.0"))
        url = index.url + "foo-bar/"
        json_body = fetch(url, {"Accept": JSON_TYPE})[2]
        html_body = fetch(url, {"Accept": "text/html"})[2].decode()
        assert b'"../../files/foo_bar-1.0-py3-none-any.whl"' in json_body
        for page in (
            parse_json_page("foo-bar", json_body, url),
            parse_html_page("foo-bar", html_body, url),
        ):
            assert page.files[0].url == index.file_url("foo_bar-1.0-py3-none-any.whl")


def test_negotiation_redirects_and_root(populated: FakeIndex) -> None:
    base = populated.url
    assert fetch(base + "foo-bar/")[1]["Content-Type"] == "text/html"  # no Accept
    assert fetch(base + "foo-bar/", {"Accept": "*/*"})[1]["Content-Type"] == JSON_TYPE
    assert fetch(base + "foo-bar/", {"Accept": "application/json"})[0] == 406
    html_v1 = "application/vnd.pypi.simple.latest+html"
    assert fetch(base + "foo-bar/", {"Accept": html_v1})[1]["Content-Type"].endswith("v1+html")
    assert fetch(base + f"foo-bar/?format={JSON_TYPE}")[1]["Content-Type"] == JSON_TYPE
    assert (
        negotiate("text/html, application/vnd.pypi.simple.v1+json;q=0.5", [JSON_TYPE, "text/html"])
        == "text/html"
    )
    for wrong in ("Foo.Bar/", "foo_bar/", "foo-bar"):
        status, headers, _ = fetch(base + wrong)
        assert status == 301 and headers["Location"] == base + "foo-bar/"
    assert fetch(base + "nothing-here/")[0] == 404
    status, headers, body = fetch(base, {"Accept": JSON_TYPE})
    assert status == 200 and b'"foo-bar"' in body and headers["X-PyPI-Last-Serial"] == "3"
    assert b'href="foo-bar/"' in fetch(base)[2]


def test_html_only_index_ignores_accept(dists: Path) -> None:
    with FakeIndex(json=False) as index:
        index.add(make_wheel(dists, "a", "1"))
        status, headers, _ = fetch(index.url + "a/", {"Accept": JSON_TYPE})
        assert status == 200 and headers["Content-Type"] == "text/html"


def test_head_and_ranges(populated: FakeIndex, dists: Path) -> None:
    name = "foo_bar-1.0-py3-none-any.whl"
    data = (dists / name).read_bytes()
    url = populated.file_url(name)
    status, headers, body = fetch(url, method="HEAD")
    assert status == 200 and body == b""
    assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(data)
    for spec, expected in (("10-19", data[10:20]), ("100-", data[100:]), ("-22", data[-22:])):
        status, headers, body = fetch(url, {"Range": f"bytes={spec}"})
        assert status == 206 and body == expected
        start = len(data) - len(expected) if spec.startswith("-") else int(spec.split("-")[0])
        assert headers["Content-Range"] == f"bytes {start}-{start + len(body) - 1}/{len(data)}"
    status, headers, _ = fetch(url, {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
    etag = fetch(url, method="HEAD")[1]["ETag"]
    assert fetch(url, {"Range": "bytes=5-", "If-Range": etag})[0] == 206
    assert fetch(url, {"Range": "bytes=5-", "If-Range": '"stale"'})[0] == 200


def test_ranges_disabled_sends_everything(dists: Path) -> None:
    with FakeIndex(ranges=False, pep658=False) as index:
        url = index.add(make_wheel(dists, "a", "1"))
        status, headers, body = fetch(url, {"Range": "bytes=0-9"})
        assert status == 200 and len(body) > 10 and "Accept-Ranges" not in headers
        assert fetch(url + ".metadata")[0] == 404
        assert b"core-metadata" not in fetch(index.url + "a/", {"Accept": JSON_TYPE})[2]


def test_keep_alive_and_request_log(populated: FakeIndex) -> None:
    populated.reset_log()
    conn = http.client.HTTPConnection("127.0.0.1", populated.port, timeout=10)
    for _ in range(2):
        conn.request("GET", "/simple/foo-bar/", headers={"Accept": JSON_TYPE})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and len(body) == int(resp.headers["Content-Length"])
    conn.close()
    log = populated.requests
    assert [(r.method, r.path, r.status) for r in log] == [("GET", "/simple/foo-bar/", 200)] * 2
    assert log[0].headers["Accept"] == JSON_TYPE
    assert populated.bytes_sent == 2 * len(body)


def test_latency_and_failures(populated: FakeIndex, dists: Path) -> None:
    name = "foo_bar-1.1.tar.gz"
    populated.fail(name, times=2, status=503)
    populated.fail("/simple/foo-bar/", times=1, status=500)
    assert [fetch(populated.file_url(name))[0] for _ in range(3)] == [503, 503, 200]
    assert [fetch(populated.url + "foo-bar/")[0] for _ in range(2)] == [500, 200]
    populated.latency = 0.2
    started = time.monotonic()
    fetch(populated.url)
    assert time.monotonic() - started >= 0.2


def test_truncate_and_corrupt(populated: FakeIndex, dists: Path) -> None:
    name = "foo_bar-1.0-py3-none-any.whl"
    data = (dists / name).read_bytes()
    populated.truncate(name, times=1)
    with (
        pytest.raises(http.client.IncompleteRead),
        urllib.request.urlopen(populated.file_url(name), timeout=10) as resp,
    ):
        resp.read()
    assert populated.requests[-1].bytes_sent < len(data)
    assert fetch(populated.file_url(name))[2] == data  # times=1: healed
    populated.corrupt(name)
    status, _, body = fetch(populated.file_url(name))
    assert status == 200 and len(body) == len(data) and body != data


def test_wheel_is_well_formed(dists: Path) -> None:
    tag = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
    path = make_wheel(
        dists,
        "My.Pkg",
        "2.0",
        tag=tag,
        build_tag="1",
        pad_bytes=200_000,
        requires_dist=["bad line (", "b; extra == 'x'"],
        provides_extra=["x"],
        extra_metadata="Summary: hi",
    )
    assert path.name == f"my_pkg-2.0-1-{tag}.whl" and path.stat().st_size > 200_000
    with zipfile.ZipFile(path) as zf:
        wheel = zf.read("my_pkg-2.0.dist-info/WHEEL").decode()
        assert "Tag: cp312-cp312-manylinux2014_x86_64" in wheel and "Build: 1" in wheel
        record = zf.read("my_pkg-2.0.dist-info/RECORD").decode().splitlines()
        assert len(record) == len(zf.namelist()) and "my_pkg/__init__.py" in zf.namelist()
    metadata = read_wheel_metadata(path).decode()
    assert "Name: My.Pkg\n" in metadata and "Requires-Dist: bad line (\n" in metadata
    assert metadata.endswith("Summary: hi\n")
    assert (
        make_wheel(dists, "My.Pkg", "2.0").read_bytes()
        == make_wheel(dists, "My.Pkg", "2.0").read_bytes()
    )


def test_sdist_layouts(dists: Path) -> None:
    legacy = make_sdist(
        dists,
        "old",
        "0.1",
        build_requires=None,
        pkg_info_metadata_version="1.2",
        include_requires_dist_in_pkg_info=False,
        egg_info_requires="a\n\n[x]\nb\n",
    )
    with tarfile.open(legacy) as tf:
        names = set(tf.getnames())
    assert {"old-0.1/PKG-INFO", "old-0.1/setup.py", "old-0.1/old.egg-info/requires.txt"} <= names
    assert "old-0.1/pyproject.toml" not in names
    dynamic = make_sdist(
        dists,
        "dyn",
        "1",
        requires_dist=["a"],
        dynamic=["Requires-Dist"],
        include_requires_dist_in_pkg_info=False,
    )
    pkg_info = (read_sdist_pkg_info(dynamic) or b"").decode()
    assert "Dynamic: Requires-Dist" in pkg_info and "Requires-Dist: a" not in pkg_info
    with tarfile.open(dynamic) as tf:
        pyproject = tf.extractfile("dyn-1/pyproject.toml").read().decode()  # type: ignore[union-attr]
    assert (
        'dynamic = ["dependencies"]' in pyproject and 'build-backend = "tinybackend"' in pyproject
    )


@pytest.mark.e2e
@pytest.mark.parametrize("python", [PY37, PY313], ids=["py37", "py313"])
def test_tiny_backend_builds_on_old_and_new_pythons(
    python: str, tmp_path: Path, dists: Path, tiny_backend_wheel: Path
) -> None:
    if not os.path.exists(python):
        pytest.skip(f"{python} missing")
    sdist = make_sdist(
        dists,
        "tb-demo",
        "1.0",
        requires_dist=["a>=1"],
        dynamic=["Requires-Dist"],
        include_requires_dist_in_pkg_info=False,
    )
    with tarfile.open(sdist) as tf:
        tf.extractall(tmp_path)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tinybackend as b;"
        "print(b.build_wheel(sys.argv[2]))"
    )
    out = subprocess.run(
        [python, "-c", script, str(tiny_backend_wheel), str(tmp_path)],
        cwd=tmp_path / "tb-demo-1.0",
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert out == "tb_demo-1.0-py3-none-any.whl"
    assert b"Requires-Dist: a>=1\n" in read_wheel_metadata(tmp_path / out)


def _pip(python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "pip", "--no-cache-dir", *args],
        env=client_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.e2e
@pytest.mark.skipif(not os.path.exists(PY312), reason="needs pyenv CPython 3.12")
def test_pip_installs_a_wheel(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    fake_index.add(make_wheel(dists, "Demo.Pkg", "1.0"))
    fake_index.add(make_wheel(dists, "Demo.Pkg", "2.0", requires_python="<3"))
    target = tmp_path / "target"
    result = _pip(
        PY312,
        "install",
        "--no-deps",
        "--target",
        str(target),
        "--index-url",
        fake_index.url,
        "demo-pkg",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (target / "demo_pkg" / "__init__.py").read_text() == '__version__ = "1.0"\n'
    assert any(r.path.endswith(".whl.metadata") for r in fake_index.requests)


@pytest.mark.e2e
@pytest.mark.parametrize("python", [PY312, PY37], ids=["pip23", "pip22"])
def test_pip_builds_an_sdist_with_tinybackend(
    python: str, fake_index: FakeIndex, dists: Path, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    if not os.path.exists(python):
        pytest.skip(f"{python} missing")
    fake_index.add(tiny_backend_wheel)
    fake_index.add(make_sdist(dists, "sdist-only", "3.0", requires_dist=["never-fetched"]))
    out = tmp_path / "wheels"
    result = _pip(
        python,
        "wheel",
        "--no-deps",
        "-w",
        str(out),
        "--index-url",
        fake_index.url,
        "sdist-only",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.iterdir()
    assert built.name == "sdist_only-3.0-py3-none-any.whl"
    with zipfile.ZipFile(built) as zf:
        assert zf.read("sdist_only/__init__.py") == b'__version__ = "3.0"\n'
    assert b"Requires-Dist: never-fetched" in read_wheel_metadata(built)
    assert any("tinybackend" in r.path for r in fake_index.requests)


@pytest.mark.e2e
def test_uv_installs_wheels_and_builds_sdists(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    uv = find_uv()
    if uv is None or not os.path.exists(PY312):
        pytest.skip("needs uv and pyenv CPython 3.12")
    fake_index.add(tiny_backend_wheel)
    fake_index.add(make_wheel(dists, "dep_a", "1.0", requires_python=">=3.8"))
    fake_index.add(make_sdist(dists, "dyn", "1.0", requires_dist=["dep-a"], dynamic=["Requires-Dist"],
                              include_requires_dist_in_pkg_info=False))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(UV_CACHE_DIR=str(tmp_path / "cache"), UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    target = tmp_path / "target"
    result = subprocess.run(
        [*uv, "pip", "install", "--target", str(target), "--python", PY312,
         "--index-url", fake_index.url, "dyn"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (target / "dyn" / "__init__.py").exists() and (target / "dep_a").is_dir()


def test_add_accepts_broken_files_with_an_explicit_project(
    fake_index: FakeIndex, dists: Path
) -> None:
    junk = dists / "junk-1.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    url = fake_index.add(junk)
    assert fetch(url)[2] == b"not a zip" and fetch(url + ".metadata")[0] == 404
    odd = dists / "odd_name.tar.bz2"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError):
        fake_index.add(odd)
    fake_index.add(odd, project="Odd")
    assert fetch(fake_index.url + "odd/")[0] == 200
