"""server.py as an upstream: /pypi/<project>/json, local.json, X-PyPI-Last-Serial, verify."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from morgan_like.modes.serve import load_server

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from ..modes.sync_support import sync
from ..server_support import InProcessServer


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _get(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with opener.open(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def synced(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> Path:
    wheel(fake_index, dists, "Demo_Pkg", "1.0", requires_python=">=3.8")
    wheel(fake_index, dists, "demo-pkg", "2.0b1")
    sdist(fake_index, dists, "demo-pkg", "1.0")
    fake_index.yank("demo-pkg-1.0.tar.gz", "bad sdist")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    return tree


def test_pypi_json_is_what_bandersnatch_reads(synced: Path, fake_index: FakeIndex) -> None:
    serial = fake_index.project_serial("demo-pkg")
    with InProcessServer(synced) as server:
        status, headers, body = _get(f"{server.base}/pypi/demo-pkg/json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert headers["X-PyPI-Last-Serial"] == str(serial)
        doc = json.loads(body)
        assert doc["last_serial"] == serial
        assert doc["info"]["name"] == "demo-pkg" and doc["info"]["version"] == "1.0"
        assert sorted(doc["releases"]) == ["1.0", "2.0b1"]
        files = {f["filename"]: f for r in doc["releases"].values() for f in r}
        whl = files["demo_pkg-1.0-py3-none-any.whl"]
        # Absolute, with the request's host: mirrors download the URL as it is.
        assert whl["url"] == f"{server.base}/packages/demo-pkg/demo_pkg-1.0-py3-none-any.whl"
        assert whl["digests"]["sha256"] == fake_index.files[whl["filename"]].sha256
        assert whl["size"] == fake_index.files[whl["filename"]].size
        assert whl["requires_python"] == ">=3.8" and whl["yanked"] is False
        assert whl["upload_time_iso_8601"].endswith("Z") and whl["core-metadata"]["sha256"]
        assert whl["packagetype"] == "bdist_wheel"
        sd = files["demo-pkg-1.0.tar.gz"]
        assert (sd["yanked"], sd["yanked_reason"], sd["core-metadata"]) == (
            True,
            "bad sdist",
            False,
        )
        # The URL serves the very file.
        status, _, data = _get(whl["url"])
        assert status == 200 and len(data) == whl["size"]
        # Names are normalized with a redirect; unknown projects are 404.
        status, headers, _ = _get(f"{server.base}/pypi/Demo_Pkg/json")
        assert status == 301 and headers["Location"].endswith("/pypi/demo-pkg/json")
        assert _get(f"{server.base}/pypi/nope/json")[0] == 404
        # Simple pages carry the serial too, as PyPI's do.
        status, headers, _ = _get(f"{server.base}/simple/demo-pkg/", "text/html")
        assert headers["X-PyPI-Last-Serial"] == str(serial)
        status, headers, body = _get(
            f"{server.base}/simple/", "application/vnd.pypi.simple.v1+json"
        )
        assert json.loads(body)["projects"] == [{"name": "demo-pkg", "_last-serial": serial}]


def test_serial_list_files_are_served(synced: Path, fake_index: FakeIndex) -> None:
    with InProcessServer(synced) as server:
        status, headers, body = _get(f"{server.base}/local.json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"demo-pkg": fake_index.project_serial("demo-pkg")}
        status, _, body = _get(f"{server.base}/local.db.serial")
        assert status == 200 and body == f"{fake_index.serial}\n".encode()
        assert _get(f"{server.base}/morgan.ini")[0] == 404


def _verify(root: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = load_server().verify(str(root), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def test_verify_checks_the_json_docs(synced: Path) -> None:
    assert _verify(synced)[0] == 0
    doc_path = synced / "json/demo-pkg"
    doc = json.loads(doc_path.read_bytes())
    doc["releases"]["1.0"][0]["digests"]["sha256"] = "0" * 64
    doc_path.write_text(json.dumps(doc))
    code, report = _verify(synced)
    assert code == 1 and "DISAGREE" in report and "json/demo-pkg" in report
    doc_path.unlink()
    (synced / "json/stray").write_text("{}")
    code, report = _verify(synced)
    assert code == 1 and "UNEXPECTED  json/stray" in report
