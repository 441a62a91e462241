"""morgan_like.modes.nginx: real nginx serving a tree answers like server.py (skipped without nginx).

Every test that starts nginx is marked e2e.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from morgan_like.modes.nginx import render_nginx_config

from ..clients import (
    CHECK,
    MATRIX_DISTS,
    PIP_ACCEPT,
    UV_ACCEPT,
    find_uv,
    installed,
    make_venv,
    pip_install,
    pyenv_python,
    uv_install,
    uv_venv,
)
from ..fakeindex import FakeIndex
from ..nginx_support import nginx_main_config
from ..server_support import Dist, InProcessServer, free_port, write_tree
from .test_bundle_views import floor_config, mirror, publish_floor_case

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def test_render_snippet_content(tmp_path):
    root = tmp_path / "tree"
    write_tree(root, [Dist("Foo.Bar", "1.0"), Dist("baz", "1.0")])
    conf = render_nginx_config(root, "0.0.0.0", 8080)
    assert "listen 0.0.0.0:8080;" in conf
    assert str(root.resolve()) in conf
    for needle in (
        "application/vnd.pypi.simple.v1+json",
        "application/vnd.pypi.simple.v1+html",
        'Vary "Accept, Accept-Encoding"',
        "public, max-age=31536000, immutable",
        "return 301 /simple/",
        r"location ~ /\. { return 404; }",
        "foo[-_.]+bar",
    ):
        assert needle in conf, needle
    assert "listen [::1]:81;" in render_nginx_config(root, "::1", 81)
    with pytest.raises(ValueError):
        render_nginx_config(tmp_path / 'bad";path', "0.0.0.0", 1)


@pytest.fixture(scope="module")
def ntree(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("nginx")
    root = base / "tree"
    write_tree(root, [*MATRIX_DISTS, Dist("big", "1.0", payload=os.urandom(300_000))])
    (base / "secret.txt").write_text("secret")
    # A full mirror's upstream files (what sync writes): served alike by both.
    (root / "json").mkdir()
    (root / "json" / "alpha").write_text(
        '{"last_serial": 7, "info": {"name": "alpha"}, "urls": [{"url": "/packages/alpha/a.whl"}]}\n'
    )
    (root / "local.json").write_text('{\n"alpha": 7\n}\n')
    (root / "local.db.serial").write_text("7\n")
    (root / "packages" / "alpha" / "escape.whl").symlink_to(base / "secret.txt")
    return root


def serve_nginx(work: Path, port: int, conf: str) -> Iterator[int]:
    """nginx running ``conf`` (checked with ``nginx -t`` first), its pid and logs in
    ``work``, until the generator is resumed or closed: yields ``port`` once it accepts."""
    (work / "nginx.conf").write_text(conf)
    check = subprocess.run(
        [NGINX, "-t", "-p", str(work), "-c", str(work / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [NGINX, "-p", str(work), "-c", str(work / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                assert proc.stderr is not None
                pytest.fail("nginx did not start: " + proc.stderr.read().decode())
            time.sleep(0.05)
    try:
        yield port
    finally:  # also when the caller closes the generator early
        proc.terminate()
        proc.wait(10)


def run_nginx(tree: Path, work: Path) -> Iterator[tuple[int, Path]]:
    """nginx serving ``tree`` with its config, pid and logs in ``work``: (port, work)."""
    if NGINX is None:
        pytest.skip("nginx not installed")
    port = free_port()
    conf = nginx_main_config(work, render_nginx_config(tree, "127.0.0.1", port))
    for ready in serve_nginx(work, port, conf):
        yield ready, work


@pytest.fixture(scope="module")
def nginx(ntree, tmp_path_factory):
    yield from run_nginx(ntree, tmp_path_factory.mktemp("nginx-work"))


@pytest.fixture(scope="module")
def ours(ntree):
    with InProcessServer(ntree) as srv:
        yield srv.port


def fetch(port, method, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


WHEEL = "/packages/big/big-1.0-py3-none-any.whl"
CASES = [
    ("GET", "/simple/alpha/", {"Accept": PIP_ACCEPT}),
    ("GET", "/simple/alpha/", {"Accept": UV_ACCEPT}),
    ("GET", "/simple/alpha/", {"Accept": "text/html"}),
    ("GET", "/simple/alpha/", {}),
    ("GET", "/simple/alpha/", {"Accept": "*/*"}),
    ("GET", "/simple/alpha/", {"Accept": "application/vnd.pypi.simple.v1+html"}),
    ("GET", "/simple/alpha/", {"Accept": "application/vnd.pypi.simple.latest+json"}),
    (
        "GET",
        "/simple/alpha/",
        {"Accept": "application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.5"},
    ),
    ("GET", "/simple/alpha/", {"Accept": "image/png"}),
    ("GET", "/simple/alpha/?format=application/vnd.pypi.simple.v1%2Bjson", {"Accept": "text/html"}),
    ("GET", "/simple/alpha/?format=text/html", {"Accept": PIP_ACCEPT}),
    ("GET", "/simple/alpha/?format=application/json", {}),
    ("GET", "/simple/", {"Accept": PIP_ACCEPT}),
    ("GET", "/simple/", {"Accept": "text/html"}),
    ("HEAD", "/simple/beta-pkg/", {"Accept": UV_ACCEPT}),
    ("GET", "/simple/nope/", {}),
    ("GET", "/simple/nope/", {"Accept": "image/png"}),
    ("GET", "/simple/index.html", {"Accept": PIP_ACCEPT}),
    ("GET", "/simple/index.json", {}),
    ("GET", "/simple/alpha/index.json", {"Accept": "text/html"}),
    ("GET", "/simple/Alpha/index.json", {}),
    ("GET", "/nope/", {"Accept": "image/png"}),
    ("GET", "/", {}),
    ("GET", "/simple", {}),
    ("GET", "/simple/alpha", {}),
    ("GET", "/simple/Beta.Pkg/", {}),
    ("GET", "/simple/BETA__pkg?x=1", {}),
    ("GET", "/alpha/", {"Accept": PIP_ACCEPT}),
    ("GET", "/Beta_Pkg/", {}),
    ("GET", WHEEL, {}),
    ("HEAD", WHEEL, {}),
    ("GET", WHEEL + ".metadata", {}),
    ("GET", WHEEL, {"Range": "bytes=100-199"}),
    ("GET", WHEEL, {"Range": "bytes=-10"}),
    ("GET", WHEEL, {"Range": "bytes=99999999-"}),
    ("GET", WHEEL, {"Range": "bytes=0-1,5-6"}),
    ("GET", WHEEL, {"Accept-Encoding": "gzip"}),
    ("GET", "/manifest.json", {}),
    ("GET", "/morgan.ini", {}),
    ("GET", "/server.py", {}),
    ("GET", "/.morgan-like/state.db", {}),
    ("GET", "/packages/alpha/.hidden", {}),
    ("GET", "/packages/alpha/escape.whl", {}),
    ("GET", "/packages/alpha/nope.whl", {}),
    ("GET", "/pypi/alpha/json", {}),
    ("GET", "/pypi/nope/json", {}),
    ("GET", "/local.json", {}),
    ("GET", "/local.db.serial", {}),
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "path", "headers"), CASES, ids=[f"{m} {p} {h}" for m, p, h in CASES]
)
def test_nginx_matches_server_py(nginx, ours, method, path, headers):
    n_resp, n_body = fetch(nginx[0], method, path, headers)
    o_resp, o_body = fetch(ours, method, path, headers)
    assert n_resp.status == o_resp.status
    status = o_resp.status
    if status in (200, 206):
        assert n_resp.getheader("Content-Type") == o_resp.getheader("Content-Type")
        assert n_resp.getheader("Cache-Control") == o_resp.getheader("Cache-Control")
        if not path.startswith("/pypi/"):  # nginx's sub_filter answers chunked
            assert n_resp.getheader("Content-Length") == o_resp.getheader("Content-Length")
        if path.startswith("/pypi/"):  # file URLs carry each server's own host
            n_body = n_body.replace(f"127.0.0.1:{nginx[0]}".encode(), b"HOST")
            o_body = o_body.replace(f"127.0.0.1:{ours}".encode(), b"HOST")
            assert b'"url": "http://HOST/packages/' in n_body
        assert n_body == o_body
        if path.startswith("/packages/"):
            assert n_resp.getheader("Content-Encoding") is None
            if status == 200:
                assert n_resp.getheader("Accept-Ranges") == "bytes"
        else:
            assert "Accept" in n_resp.getheader("Vary")
    if status == 206:
        assert n_resp.getheader("Content-Range") == o_resp.getheader("Content-Range")
    if status == 301:
        assert n_resp.getheader("Location").endswith(o_resp.getheader("Location"))


@pytest.mark.e2e
def test_nginx_gzip_pages_only(nginx):
    for accept in (PIP_ACCEPT, "text/html", "application/vnd.pypi.simple.v1+html"):
        resp, body = fetch(
            nginx[0], "GET", "/simple/alpha/", {"Accept": accept, "Accept-Encoding": "gzip"}
        )
        assert resp.getheader("Content-Encoding") == "gzip", accept
        assert resp.getheader("Vary") == "Accept, Accept-Encoding"
    resp, _ = fetch(nginx[0], "GET", WHEEL, {"Accept-Encoding": "gzip"})
    assert resp.getheader("Content-Encoding") is None


@pytest.mark.e2e
def test_nginx_etag_304(nginx):
    first, _ = fetch(nginx[0], "GET", "/simple/alpha/", {"Accept": UV_ACCEPT})
    resp, _ = fetch(
        nginx[0],
        "GET",
        "/simple/alpha/",
        {"Accept": UV_ACCEPT, "If-None-Match": first.getheader("ETag")},
    )
    assert resp.status == 304


@pytest.mark.e2e
def test_clients_install_through_nginx(nginx, tmp_path):
    base = f"http://127.0.0.1:{nginx[0]}"
    done = 0
    for version in ("3.6.15", "3.12.1"):
        python = pyenv_python(version)
        if not python.exists():
            continue
        vpy = make_venv(str(python), tmp_path / version)
        pip_install(vpy, f"{base}/simple/", "gamma")
        assert installed(vpy, CHECK).endswith("1.0 0.5")
        done += 1
    uv = find_uv()
    if uv is not None:
        vpy = uv_venv(uv, pyenv_python("3.13.0"), tmp_path / "uvvenv")
        uv_install(uv, vpy, f"{base}/simple/", "gamma")
        assert installed(vpy, CHECK) == "2.0 1.0 0.5"
        done += 1
    if not done:
        pytest.skip("no clients")
    log = (nginx[1] / "logs" / "access.log").read_text()
    assert ".whl.metadata" in log


# -- env views: envs/NAME/simple/, served like simple/ ------------------------------------


@pytest.fixture(scope="module")
def vtree(tmp_path_factory, tiny_backend_wheel) -> Path:
    """A bundle mirrored from the fake upstream with two env views: ``old`` lists zmqish
    1.0 only (its manylinux 2.17 wheel and sdist), ``new`` zmqish 2.0 only.  Beside it,
    a secret and a view whose folder is a symlink out of the tree."""
    base = tmp_path_factory.mktemp("nginx-views")
    root = base / "bundle"
    dists = base / "dists"
    dists.mkdir()
    with FakeIndex() as index, pytest.MonkeyPatch.context() as mp:
        mp.setattr("morgan_like.modes.resolving.default_processes", lambda: 0)
        index.add(tiny_backend_wheel)
        publish_floor_case(index, dists)
        floor_config(root)
        assert mirror(root, index) == 0
    assert sorted(p.name for p in (root / "envs").iterdir()) == ["new", "old"]
    outside = base / "outside" / "simple"
    shutil.copytree(root / "envs" / "old" / "simple", outside)
    (outside / "index.html").write_text("secret")
    (root / "envs" / "escape").symlink_to(outside.parent)
    (root / "envs" / "new" / "simple" / "evil").symlink_to(outside / "zmqish")
    return root


@pytest.fixture(scope="module")
def vnginx(vtree, tmp_path_factory):
    yield from run_nginx(vtree, tmp_path_factory.mktemp("nginx-views-work"))


@pytest.fixture(scope="module")
def vours(vtree):
    with InProcessServer(vtree) as srv:
        yield srv.port


def test_render_views_generic(tmp_path):
    """The view locations match any env name by pattern: a tree's envs are not named in
    the config, so envs added by a later run are served without re-rendering."""
    root = tmp_path / "tree"
    write_tree(root, [Dist("alpha", "1.0")])
    (root / "envs" / "linux-py3.12" / "simple").mkdir(parents=True)
    (root / "envs" / "linux-py3.12" / "simple" / "index.html").write_text("")
    conf = render_nginx_config(root, "127.0.0.1", 8080)
    assert "linux-py3.12" not in conf
    shutil.rmtree(root / "envs")
    assert conf == render_nginx_config(root, "127.0.0.1", 8080)
    assert "location ~ ^/envs/(?<morgan_like_env>[A-Za-z0-9][A-Za-z0-9._-]*)/simple/" in conf
    assert "return 301 /envs/$morgan_like_env/simple/$is_args$args;" in conf
    assert "location /envs/ { return 404; }" in conf


OLD = "/envs/old/simple/zmqish/"
VIEW_CASES = [
    ("GET", OLD, {"Accept": PIP_ACCEPT}),
    ("GET", OLD, {"Accept": UV_ACCEPT}),
    ("GET", OLD, {"Accept": "text/html"}),
    ("GET", OLD, {}),
    ("GET", OLD, {"Accept": "*/*"}),
    ("GET", OLD, {"Accept": "application/vnd.pypi.simple.v1+html"}),
    ("GET", OLD, {"Accept": "application/vnd.pypi.simple.latest+json"}),
    ("GET", OLD, {"Accept": "image/png"}),
    ("GET", OLD + "?format=application/vnd.pypi.simple.v1%2Bjson", {"Accept": "text/html"}),
    ("GET", OLD + "?format=text/html", {"Accept": PIP_ACCEPT}),
    ("GET", OLD + "?format=application/json", {}),
    ("HEAD", "/envs/new/simple/zmqish/", {"Accept": UV_ACCEPT}),
    ("GET", "/envs/new/simple/zmqish/", {"Accept": PIP_ACCEPT}),
    ("GET", "/envs/old/simple/", {"Accept": PIP_ACCEPT}),
    ("GET", "/envs/old/simple/", {"Accept": "text/html"}),
    ("GET", "/envs/old/simple/index.json", {}),
    ("GET", "/envs/old/simple/zmqish/index.html", {"Accept": PIP_ACCEPT}),
    ("GET", "/simple/zmqish/", {"Accept": PIP_ACCEPT}),  # the union lists both releases
    # redirects
    ("GET", "/envs", {}),
    ("GET", "/envs/old", {}),
    ("GET", "/envs/old/", {}),
    ("GET", "/envs/old/simple", {}),
    ("GET", "/envs/old/simple?x=1", {}),
    ("GET", "/envs/old/simple/zmqish", {}),
    ("GET", "/envs/old/simple/ZMQish/", {"Accept": PIP_ACCEPT}),
    ("GET", "/envs/old/simple/TinyBackend?format=text/html", {}),
    # not a view, or nothing there
    ("GET", "/envs/nope/simple/", {}),
    ("GET", "/envs/nope/simple/zmqish/", {"Accept": "image/png"}),
    ("GET", "/envs/nope/simple/ZMQish", {}),
    ("GET", "/envs/nope", {}),
    ("GET", "/envs/nope/simple", {}),
    ("GET", "/envs/OLD/simple/", {}),
    ("GET", "/envs/bad+name/simple/", {}),
    ("GET", "/envs/_old/simple/zmqish/", {}),
    ("GET", "/envs/-old/simple/", {}),
    ("GET", "/envs/old/other", {}),
    ("GET", "/envs/old/simple/nope/", {}),
    ("GET", "/envs/old/simple/nope/", {"Accept": "image/png"}),
    ("GET", "/envs/old/simple/zmqish/extra/", {}),
    ("GET", "/envs/old/simple/ZMQish/index.json", {}),
    ("GET", "/envs/old/simple/zmqish/index.txt", {}),
    ("GET", "/envs/old/simple/.hidden/", {}),
    ("GET", "/envs/.old/simple/", {}),
    ("GET", "/envs/old/.simple/", {}),
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "path", "headers"), VIEW_CASES, ids=[f"{m} {p} {h}" for m, p, h in VIEW_CASES]
)
def test_nginx_views_match_server_py(vnginx, vours, method, path, headers):
    n_resp, n_body = fetch(vnginx[0], method, path, headers)
    o_resp, o_body = fetch(vours, method, path, headers)
    assert n_resp.status == o_resp.status
    if o_resp.status == 200:
        for header in ("Content-Type", "Cache-Control", "Content-Length"):
            assert n_resp.getheader(header) == o_resp.getheader(header), header
        assert n_resp.getheader("Vary") == "Accept, Accept-Encoding"
        assert n_body == o_body
    if o_resp.status == 301:
        assert n_resp.getheader("Location").endswith(o_resp.getheader("Location"))


@pytest.mark.e2e
def test_nginx_view_pages_are_the_views(vnginx):
    """pip's Accept gets the view's JSON, text/html its HTML; the view lists only its
    env's files, and its relative links lead through nginx to the shared packages/."""
    port = vnginx[0]
    resp, body = fetch(port, "GET", OLD, {"Accept": PIP_ACCEPT})
    assert resp.getheader("Content-Type") == "application/vnd.pypi.simple.v1+json"
    doc = json.loads(body)
    assert sorted(f["filename"] for f in doc["files"]) == [
        "zmqish-1.0-py3-none-manylinux_2_17_x86_64.whl",
        "zmqish-1.0.tar.gz",
    ]
    resp, html = fetch(port, "GET", OLD, {"Accept": "text/html"})
    assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
    assert html.startswith(b"<!DOCTYPE html>") and b"zmqish-2.0" not in html
    for entry in doc["files"]:
        url = urljoin(f"http://127.0.0.1:{port}{OLD}", entry["url"])
        assert urlsplit(url).path.startswith("/packages/zmqish/")
        resp, data = fetch(port, "GET", urlsplit(url).path, {"Accept-Encoding": "gzip"})
        assert resp.status == 200 and resp.getheader("Content-Encoding") is None
        assert hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
    root = json.loads(fetch(port, "GET", "/envs/new/simple/", {"Accept": UV_ACCEPT})[1])
    assert "zmqish" in [p["name"] for p in root["projects"]]
    # pages gzip, revalidate by ETag
    resp, _ = fetch(port, "GET", OLD, {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip"})
    assert resp.getheader("Content-Encoding") == "gzip"
    etag = fetch(port, "GET", OLD, {"Accept": UV_ACCEPT})[0].getheader("ETag")
    resp, _ = fetch(port, "GET", OLD, {"Accept": UV_ACCEPT, "If-None-Match": etag})
    assert resp.status == 304
    # /envs/: nginx's listing of the views (server.py writes its own page)
    resp, listing = fetch(port, "GET", "/envs/", {})
    assert resp.status == 200
    assert b'href="old/"' in listing and b'href="new/"' in listing


TRAVERSALS = [
    "/envs/old/simple/../../../../secret.txt",
    "/envs/old/simple/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/envs/old/simple/zmqish/..%2f..%2f..%2f..%2f..%2fsecret.txt",
    "/envs/..%2f..%2fsecret.txt/simple/",
    "/envs/old/simple/zmqish/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fmorgan.ini",
    "/envs/old/simple/..%5c..%5c..%5cmorgan.ini",
    "/envs/escape/simple/",
    "/envs/escape/simple/zmqish/",
    "/envs/escape/simple/index.html",
    "/envs/new/simple/evil/",
    "/envs/new/simple/evil/index.json",
]


@pytest.mark.e2e
@pytest.mark.parametrize("path", TRAVERSALS)
def test_nginx_views_refuse_traversal(vnginx, vours, path):
    """No way out of the tree through a view: ``..`` (plain or encoded) and views or
    project folders that are symlinks out of it are refused, as by server.py."""
    for port in (vnginx[0], vours):
        resp, body = fetch(port, "GET", path, {"Accept": "text/html"})
        assert resp.status in (400, 403, 404), (port, resp.status)
        assert b"secret" not in body and b"[env." not in body


@pytest.mark.e2e
def test_clients_install_from_view_through_nginx(vnginx, tmp_path):
    """pip installs from env ``old``'s view the release that env resolved (zmqish 1.0, its
    manylinux 2.17 wheel), though the union also lists 2.0; uv from ``new``'s gets 2.0."""
    base = f"http://127.0.0.1:{vnginx[0]}"
    check = "import app, zmqish; print(app.__version__, zmqish.__version__)"
    python = pyenv_python("3.12.1")
    vpy = make_venv(str(python) if python.exists() else sys.executable, tmp_path / "pip")
    pip_install(vpy, f"{base}/envs/old/simple/", "app")
    assert installed(vpy, check) == "1.0 1.0"
    uv = find_uv()
    if uv is not None:
        uvpy = uv_venv(uv, sys.executable, tmp_path / "uv")
        uv_install(uv, uvpy, f"{base}/envs/new/simple/", "app")
        assert installed(uvpy, check) == "1.0 2.0"
    log = (vnginx[1] / "logs" / "access.log").read_text()
    assert "GET /envs/old/simple/zmqish/ " in log
    assert "GET /packages/zmqish/zmqish-1.0-py3-none-manylinux_2_17_x86_64.whl" in log


@pytest.mark.e2e
def test_nginx_serves_the_landing_page_sbom_and_locks_as_server_py(vtree, vnginx, vours):
    """/ shows the landing page (a tree without one redirects: the other cases), the SBOM
    as CycloneDX JSON, and each env's locks with their locations absolute for this host,
    as server.py serves them."""
    port = vnginx[0]
    for path in ("/", "/index.html", "/sbom.cdx.json"):
        n_resp, n_body = fetch(port, "GET", path, {})
        o_resp, o_body = fetch(vours, "GET", path, {})
        assert n_resp.status == o_resp.status == 200, path
        assert n_body == o_body == (vtree / (path.strip("/") or "index.html")).read_bytes()
        assert (
            n_resp.getheader("Content-Type").split(";")[0]
            == o_resp.getheader("Content-Type").split(";")[0]
        )
    locks = sorted(p.name for p in (vtree / "locks").iterdir())
    assert locks, "the bundle wrote no locks"
    for name in locks:
        n_resp, n_body = fetch(port, "GET", f"/locks/{name}", {})
        o_resp, o_body = fetch(vours, "GET", f"/locks/{name}", {})
        assert n_resp.status == o_resp.status == 200, name
        n_text = n_body.decode().replace(f"127.0.0.1:{port}", "HOST")
        o_text = o_body.decode().replace(f"127.0.0.1:{vours}", "HOST")
        if name.endswith(".toml"):
            assert n_text == o_text and 'url = "http://HOST/packages/' in n_text
        else:  # server.py drops the file:// find-links lines; nginx comments them out
            assert [line for line in n_text.splitlines() if not line.startswith("#")] == [
                line for line in o_text.splitlines() if not line.startswith("#")
            ]
            assert "--index-url http://HOST/envs/" in n_text
    assert fetch(port, "GET", "/locks/nope.txt", {})[0].status == 404
