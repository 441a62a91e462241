"""morgan_like.modes.nginx: real nginx serving a tree answers like server.py (skipped without nginx).

Every test that starts nginx is marked e2e.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from morgan_like.modes.nginx import render_nginx_config, render_nginx_main_config

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
from ..server_support import Dist, InProcessServer, free_port, write_tree

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


@pytest.fixture(scope="module")
def nginx(ntree, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx not installed")
    work = tmp_path_factory.mktemp("nginx-work")
    port = free_port()
    (work / "nginx.conf").write_text(
        render_nginx_main_config(ntree, "127.0.0.1", port, work, workers=1)
    )
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
                pytest.fail("nginx did not start: " + proc.stderr.read().decode())
            time.sleep(0.05)
    yield port, work
    proc.terminate()
    proc.wait(10)


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
