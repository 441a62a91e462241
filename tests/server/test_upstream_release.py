"""server.py as an upstream (issue 18): Warehouse's per-version document, the URLs in
Warehouse JSON (--public-url, --trust-proxy), the root HTML page's serial, and ``*/*``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..clients import need, pyenv_python
from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from ..modes.sync_support import sync
from ..server_support import InProcessServer, SubprocessServer, load_server_module

PYTHONS = [
    pytest.param(str(pyenv_python("3.6.15")), id="py36"),
    pytest.param(str(pyenv_python("3.13.0")), id="py313"),
]

META_1 = """Summary: A demo package
License: MIT
Classifier: Programming Language :: Python :: 3
Classifier: License :: OSI Approved :: MIT License
Home-page: https://demo.example/
Project-URL: Source, https://git.example/demo
Project-URL: Issues, https://git.example/demo/issues
"""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {})) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> tuple[Path, FakeIndex]:
    dists = tmp_path_factory.mktemp("dists")
    with FakeIndex() as index:
        wheel(
            index,
            dists,
            "Demo_Pkg",
            "1.0",
            requires_python=">=3.8",
            requires_dist=["idna>=2", 'colorama; sys_platform == "win32"'],
            extra_metadata=META_1,
        )
        wheel(index, dists, "demo-pkg", "2.0b1", extra_metadata="Summary: Beta\n")
        sdist(index, dists, "demo-pkg", "1.0")
        sdist(index, dists, "demo-pkg", "0.5")
        index.yank("demo-pkg-0.5.tar.gz", "broken")
        tree = tmp_path_factory.mktemp("rel") / "tree"
        assert sync(tree, index).rc == 0
        yield tree, index


def test_release_document(upstream):
    tree, index = upstream
    serial = index.project_serial("demo-pkg")
    with InProcessServer(tree) as srv:
        status, headers, body = _get(f"{srv.base}/pypi/demo-pkg/1.0/json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert headers["X-PyPI-Last-Serial"] == str(serial)
        doc = json.loads(body)
        assert sorted(doc) == ["info", "last_serial", "urls", "vulnerabilities"]
        assert doc["last_serial"] == serial
        info = doc["info"]
        assert info["name"] == "demo-pkg" and info["version"] == "1.0"
        assert info["summary"] == "A demo package" and info["license"] == "MIT"
        assert info["requires_python"] == ">=3.8"
        assert info["requires_dist"] == ["idna>=2", 'colorama; sys_platform == "win32"']
        assert info["classifiers"] == [
            "Programming Language :: Python :: 3",
            "License :: OSI Approved :: MIT License",
        ]
        assert info["project_urls"] == {
            "Source": "https://git.example/demo",
            "Issues": "https://git.example/demo/issues",
        }
        assert info["yanked"] is False and info["yanked_reason"] is None
        names = sorted(f["filename"] for f in doc["urls"])
        assert names == ["demo-pkg-1.0.tar.gz", "demo_pkg-1.0-py3-none-any.whl"]
        whl = next(f for f in doc["urls"] if f["filename"].endswith(".whl"))
        assert whl["url"] == f"{srv.base}/packages/demo-pkg/demo_pkg-1.0-py3-none-any.whl"
        assert whl["digests"]["sha256"] == index.files[whl["filename"]].sha256
        assert _get(whl["url"])[0] == 200

        # another release: its own metadata; an sdist-only yanked one: no metadata fields
        info = json.loads(_get(f"{srv.base}/pypi/demo-pkg/2.0b1/json")[2])["info"]
        assert (info["version"], info["summary"], info["requires_python"]) == (
            "2.0b1",
            "Beta",
            None,
        )
        assert info["requires_dist"] is None and info["project_urls"] is None
        info = json.loads(_get(f"{srv.base}/pypi/demo-pkg/0.5/json")[2])["info"]
        assert info["version"] == "0.5" and info["summary"] is None  # not 1.0's
        assert info["requires_dist"] is None and info["classifiers"] == []
        assert info["yanked"] is True and info["yanked_reason"] == "broken"

        # unknown versions and projects are 404; names are normalized with a 301
        assert _get(f"{srv.base}/pypi/demo-pkg/9.9/json")[0] == 404
        assert _get(f"{srv.base}/pypi/nope/1.0/json")[0] == 404
        status, headers, _ = _get(f"{srv.base}/pypi/Demo_Pkg/1.0/json?x=1")
        assert status == 301 and headers["Location"] == "/pypi/demo-pkg/1.0/json?x=1"
        status, headers, _ = _get(f"{srv.base}/pypi/demo-pkg/1.0/json/")
        assert status == 301 and headers["Location"] == "/pypi/demo-pkg/1.0/json"
    # --no-metadata: no .metadata is read either
    with InProcessServer(tree, no_metadata=True) as srv:
        info = json.loads(_get(f"{srv.base}/pypi/demo-pkg/2.0b1/json")[2])["info"]
        assert info["summary"] is None and info["version"] == "2.0b1"


@pytest.mark.parametrize("python", PYTHONS)
def test_release_document_on_old_and_new_pythons(upstream, python):
    need(python)
    tree, index = upstream
    srv = SubprocessServer(tree, python=python, args=["-q"])
    try:
        status, _, body = _get(f"{srv.base}/pypi/demo-pkg/1.0/json")
        assert status == 200
        info = json.loads(body)["info"]
        assert info["summary"] == "A demo package" and len(info["classifiers"]) == 2
        assert info["project_urls"]["Source"] == "https://git.example/demo"
        assert _get(f"{srv.base}/pypi/demo-pkg/3.0/json")[0] == 404
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


# ------------------------------------------------------------- absolute URLs in JSON


def _urls(base: str, path: str, headers: dict[str, str] | None = None) -> list[str]:
    status, _, body = _get(base + path, headers)
    assert status == 200
    doc = json.loads(body)
    files = doc["urls"] + [f for r in doc.get("releases", {}).values() for f in r]
    return sorted({f["url"].rsplit("/packages/", 1)[0] for f in files})


PROXY = {"X-Forwarded-Host": "mirror.example:8443", "X-Forwarded-Proto": "https"}


def test_urls_follow_host_public_url_or_proxy(upstream):
    tree, _ = upstream
    for path in ("/pypi/demo-pkg/json", "/pypi/demo-pkg/1.0/json"):
        with InProcessServer(tree) as srv:
            # default: this server's scheme and the request's Host; proxy headers ignored
            assert _urls(srv.base, path, PROXY) == [srv.base]
            assert _urls(srv.base, path, {"Host": "other:1"}) == ["http://other:1"]
        with InProcessServer(tree, public_url="https://pypi.example.org/mirror/") as srv:
            assert _urls(srv.base, path, PROXY) == ["https://pypi.example.org/mirror"]
            assert _urls(srv.base, path, {"Host": "evil"}) == ["https://pypi.example.org/mirror"]
        with InProcessServer(tree, trust_proxy=True) as srv:
            assert _urls(srv.base, path, PROXY) == ["https://mirror.example:8443"]
            assert _urls(srv.base, path, {"X-Forwarded-Proto": "https"}) == [
                "https://" + srv.base.split("://")[1]
            ]
            # a forwarded host that is not a host: root-relative URLs, nothing reflected
            assert _urls(srv.base, path, {"X-Forwarded-Host": 'a"b'}) == [""]


def test_public_url_is_checked():
    mod = load_server_module()
    assert mod.check_public_url("https://h.example:8443/a/b/") == "https://h.example:8443/a/b"
    for bad in ("ftp://h/", "https://u@h/", "https://h/?q", "https://h/#f", "https://h:0/", "h"):
        with pytest.raises(ValueError):
            mod.check_public_url(bad)


# ------------------------------------------------------------- serial and negotiation


def test_root_html_carries_the_serial_and_star_gets_html(upstream):
    tree, _ = upstream
    root = json.loads((tree / "simple" / "index.json").read_bytes())
    serial = root["meta"].get("_last-serial")
    assert serial is not None
    with InProcessServer(tree) as srv:
        for accept in ("text/html", "*/*", None):
            headers = {"Accept": accept} if accept else {}
            status, got, body = _get(f"{srv.base}/simple/", headers)
            assert status == 200 and got["Content-Type"].startswith("text/html")
            assert got["X-PyPI-Last-Serial"] == str(serial)
            assert body.startswith(b"<!DOCTYPE html>")
        status, got, _ = _get(f"{srv.base}/simple/demo-pkg/", {"Accept": "*/*"})
        assert got["Content-Type"].startswith("text/html") and got["X-PyPI-Last-Serial"]
        status, got, _ = _get(
            f"{srv.base}/simple/", {"Accept": "*/*, application/vnd.pypi.simple.v1+json"}
        )
        assert got["Content-Type"] == "application/vnd.pypi.simple.v1+json"


def test_a_root_without_a_meta_serial_has_none():
    """A root page whose meta has no serial does not take its first project's."""
    mod = load_server_module()
    page = b'{"meta": {"api-version": "1.1"}, "projects": [\n{"name": "a", "_last-serial": 7}\n]}'
    assert mod.page_serial(page) is None
    assert mod.page_serial(b'{"meta": {"api-version": "1.1", "_last-serial": 9}, "x": 1}') == "9"
