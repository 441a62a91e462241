"""server.py over HTTP: routes, PEP 691 negotiation, files, Range, conditionals, keep-alive."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
from pathlib import Path

import pytest

from ..clients import PIP_ACCEPT, UV_ACCEPT
from ..server_support import Dist, InProcessServer, raw_request, write_tree

JSON = "application/vnd.pypi.simple.v1+json"
V1HTML = "application/vnd.pypi.simple.v1+html"
TEXT = "text/html; charset=utf-8"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tree")
    info = write_tree(
        root,
        [
            Dist("Foo.Bar", "1.0"),
            Dist("foo-bar", "1.1", requires_python=">=3.6"),
            Dist("baz", "2.0", requires=["foo-bar"], payload=b"z" * 300_000),
        ],
        sdist_for=("baz",),
    )
    return root, info


@pytest.fixture(scope="module")
def server(tree):
    with InProcessServer(tree[0]) as srv:
        yield srv


def request(server, method, path, headers=None, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    if own:
        conn.close()
    return resp, body


# ---------------------------------------------------------------------------- negotiation


def negotiate(server, accept):
    headers = {} if accept is None else {"Accept": accept}
    resp, body = request(server, "GET", "/simple/foo-bar/", headers)
    return resp.status, resp.getheader("Content-Type"), body


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP_ACCEPT, JSON),
        (UV_ACCEPT, JSON),
        ("text/html", TEXT),  # old pip
        (None, TEXT),  # no Accept at all
        ("", TEXT),
        ("*/*", TEXT),  # only wildcards: HTML, as PyPI and pypiserver answer
        ("application/*", V1HTML),
        ("text/*", TEXT),
        ("application/vnd.pypi.simple.v1+html", V1HTML),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("application/vnd.pypi.simple.latest+html", V1HTML),
        # order carries no meaning, q does
        ("text/html;q=0.01, application/vnd.pypi.simple.v1+json;q=0.5", JSON),
        ("application/vnd.pypi.simple.v1+json;q=0.2, text/html", TEXT),
        (
            "application/vnd.pypi.simple.v1+html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.8",
            V1HTML,
        ),
        # q=0 excludes
        ("application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.1", TEXT),
        ("*/*, application/vnd.pypi.simple.v1+json;q=0", TEXT),
        ("application/*;q=0.5, text/html;q=0.5", TEXT),  # tie: the named type
        ("text/html, application/vnd.pypi.simple.v1+html", V1HTML),  # tie: v1+html > text/html
        ("application/vnd.pypi.simple.v1+json; q=0.3, */*;q=0.1", JSON),
        ("TEXT/HTML", TEXT),
    ],
)
def test_negotiation_table(server, accept, expected):
    status, ctype, body = negotiate(server, accept)
    assert status == 200
    assert ctype == expected
    if expected == JSON:
        assert json.loads(body)["name"] == "foo-bar"
    else:
        assert body.startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "image/png",
        "application/vnd.pypi.simple.v1+json;q=0",
        "*/*;q=0",
        "text/plain",
    ],
)
def test_negotiation_406(server, accept):
    status, ctype, body = negotiate(server, accept)
    assert status == 406
    assert ctype.startswith("text/plain")


def test_format_query_overrides_accept(server):
    resp, body = request(
        server,
        "GET",
        "/simple/foo-bar/?format=application/vnd.pypi.simple.v1+json",
        {"Accept": "text/html"},
    )
    assert resp.status == 200 and resp.getheader("Content-Type") == JSON
    resp, _ = request(
        server,
        "GET",
        "/simple/foo-bar/?format=application%2Fvnd.pypi.simple.v1%2Bhtml",
        {"Accept": JSON},
    )
    assert resp.getheader("Content-Type") == V1HTML
    resp, _ = request(server, "GET", "/simple/?format=text/html", {"Accept": JSON})
    assert resp.getheader("Content-Type") == TEXT
    resp, _ = request(server, "GET", "/simple/?format=application/vnd.pypi.simple.latest%2Bjson")
    assert resp.getheader("Content-Type") == JSON
    resp, _ = request(server, "GET", "/simple/foo-bar/?format=application/json")
    assert resp.status == 406
    resp, _ = request(server, "GET", "/simple/foo-bar/?format=", {"Accept": "text/html"})
    assert resp.status == 200 and resp.getheader("Content-Type") == TEXT


def test_page_headers(server, tree):
    resp, body = request(server, "GET", "/simple/", {"Accept": PIP_ACCEPT})
    assert resp.status == 200
    assert resp.getheader("Content-Type") == JSON
    assert "Accept" in resp.getheader("Vary")
    assert resp.getheader("Cache-Control") == "no-cache"
    assert resp.getheader("ETag").startswith('"')
    assert resp.getheader("Last-Modified")
    assert int(resp.getheader("Content-Length")) == len(body)
    assert body == (tree[0] / "simple" / "index.json").read_bytes()
    resp, body = request(server, "GET", "/simple/")
    assert body == (tree[0] / "simple" / "index.html").read_bytes()


def test_direct_index_files(server):
    resp, _ = request(server, "GET", "/simple/foo-bar/index.json")
    assert resp.status == 200 and resp.getheader("Content-Type") == JSON
    resp, _ = request(server, "GET", "/simple/index.html", {"Accept": JSON})
    assert resp.status == 200 and resp.getheader("Content-Type") == TEXT


def test_unknown_project_404(server):
    resp, _ = request(server, "GET", "/simple/nope/")
    assert resp.status == 404


# ------------------------------------------------------------------------------ redirects


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/foo-bar", "/simple/foo-bar/"),
        ("/simple/Foo.Bar/", "/simple/foo-bar/"),
        ("/simple/Foo__Bar", "/simple/foo-bar/"),
        ("/simple/FOO-bar/?format=text/html", "/simple/foo-bar/?format=text/html"),
        ("/simple?x=1", "/simple/?x=1"),
        ("/Foo.Bar/", "/foo-bar/"),
        ("/foo-bar", "/foo-bar/"),
    ],
)
def test_redirects(server, path, location):
    resp, _ = request(server, "GET", path)
    assert resp.status == 301
    assert resp.getheader("Location") == location
    resp, body = request(server, "HEAD", path)
    assert resp.status == 301 and body == b""


def test_morgan_style_project_url(server):
    """index-url = http://host:port/ : /<project>/ serves the page; its relative links resolve."""
    resp, body = request(server, "GET", "/foo-bar/", {"Accept": "text/html"})
    assert resp.status == 200
    assert b"../../packages/foo-bar/" in body
    resp, body = request(server, "GET", "/foo-bar/", {"Accept": PIP_ACCEPT})
    assert resp.getheader("Content-Type") == JSON
    # ../../packages/x from /foo-bar/ clamps at the root: /packages/x
    from urllib.parse import urljoin

    url = json.loads(body)["files"][0]["url"]
    target = urljoin(server.base + "/foo-bar/", url)
    assert target == server.base + "/packages/foo-bar/" + url.rsplit("/", 1)[1]
    resp, _ = request(server, "HEAD", target[len(server.base) :])
    assert resp.status == 200
    resp, _ = request(server, "GET", "/nope/")
    assert resp.status == 404


# -------------------------------------------------------------------------- forbidden files


@pytest.mark.parametrize(
    "path",
    [
        "/morgan.ini",
        "/manifest.json",
        "/server.py",
        "/.morgan-like/state.db",
        "/packages/.morgan-like/state.db",
        "/simple/.hidden/",
        "/packages/foo-bar/.secret",
        "/packages/",
        "/packages/foo-bar/",
        "/packages/foo-bar",
        "/simple/foo-bar/index.htm",
        "/simple/foo-bar/extra/",
        "/favicon.ico",
        "/packages/foo-bar/nothere.whl",
    ],
)
def test_forbidden_and_missing(server, path):
    resp, body = request(server, "GET", path)
    assert resp.status in (400, 404)
    assert b"SQLite" not in body and b"[env" not in body and b"morgan-like-manifest" not in body


def test_forbidden_even_inside_packages(tree, server):
    root = tree[0]
    for name in ("manifest.json", "morgan.ini", "server.py", "state.db"):
        (root / "packages" / "baz" / name).write_bytes(b"secret")
    try:
        for name in ("manifest.json", "morgan.ini", "server.py", "state.db"):
            resp, body = request(server, "GET", f"/packages/baz/{name}")
            assert resp.status == 404, name
    finally:
        for name in ("manifest.json", "morgan.ini", "server.py", "state.db"):
            (root / "packages" / "baz" / name).unlink()


def test_method_not_allowed(server):
    resp, _ = request(server, "POST", "/simple/")
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD"


# ------------------------------------------------------------------------------------ files


def wheel(info, project="baz"):
    return next(f for f in info["files"] if f.project == project and f.filename.endswith(".whl"))


def test_file_get_and_head(server, tree):
    bf = wheel(tree[1])
    data = (tree[0] / bf.relpath).read_bytes()
    resp, body = request(server, "GET", "/" + bf.relpath)
    assert resp.status == 200 and body == data
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert resp.getheader("Content-Encoding") is None
    assert resp.getheader("Accept-Ranges") == "bytes"
    assert resp.getheader("Cache-Control") == "public, max-age=31536000, immutable"
    assert resp.getheader("ETag") == f'"sha256-{bf.sha256}"'
    head, hbody = request(server, "HEAD", "/" + bf.relpath)
    assert head.status == 200 and hbody == b""
    assert int(head.getheader("Content-Length")) == len(data)
    assert head.getheader("ETag") == resp.getheader("ETag")


def test_metadata_file(server, tree):
    bf = wheel(tree[1])
    resp, body = request(server, "GET", "/" + bf.relpath + ".metadata")
    assert resp.status == 200
    assert body == (tree[0] / (bf.relpath + ".metadata")).read_bytes()


def test_sdist_never_gzip_encoded(server, tree):
    sd = next(f for f in tree[1]["files"] if f.filename.endswith(".tar.gz"))
    resp, body = request(server, "GET", "/" + sd.relpath, {"Accept-Encoding": "gzip, deflate"})
    assert resp.status == 200
    assert resp.getheader("Content-Encoding") is None
    assert body == (tree[0] / sd.relpath).read_bytes()


def test_percent_encoded_filename(server, tree):
    bf = wheel(tree[1])
    path = "/" + bf.relpath.replace("-", "%2D").replace(".whl", "%2Ewhl")
    resp, _ = request(server, "HEAD", path)
    assert resp.status == 200


# ------------------------------------------------------------------------------------ range


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, None),
        ("bytes=-50", -50, None),
        ("bytes=10-10", 10, 10),
        ("bytes=5-99999999", 5, None),
    ],
)
def test_range(server, tree, spec, first, last):
    bf = wheel(tree[1])
    data = (tree[0] / bf.relpath).read_bytes()
    size = len(data)
    resp, body = request(server, "GET", "/" + bf.relpath, {"Range": spec})
    assert resp.status == 206
    start = first if first >= 0 else size + first
    end = last if last is not None else size - 1
    assert body == data[start : end + 1]
    assert resp.getheader("Content-Range") == f"bytes {start}-{end}/{size}"
    assert int(resp.getheader("Content-Length")) == end - start + 1


def test_range_unsatisfiable_and_multi(server, tree):
    bf = wheel(tree[1])
    data = (tree[0] / bf.relpath).read_bytes()
    resp, _ = request(server, "GET", "/" + bf.relpath, {"Range": f"bytes={len(data)}-"})
    assert resp.status == 416
    assert resp.getheader("Content-Range") == f"bytes */{len(data)}"
    resp, _ = request(server, "GET", "/" + bf.relpath, {"Range": "bytes=-0"})
    assert resp.status == 416
    resp, body = request(server, "GET", "/" + bf.relpath, {"Range": "bytes=0-1,5-6"})
    assert resp.status == 200 and body == data
    resp, body = request(server, "GET", "/" + bf.relpath, {"Range": "bytes=abc"})
    assert resp.status == 200 and body == data
    resp, body = request(server, "GET", "/" + bf.relpath, {"Range": "items=0-1"})
    assert resp.status == 200


def test_if_range(server, tree):
    bf = wheel(tree[1])
    path = "/" + bf.relpath
    first, _ = request(server, "HEAD", path)
    etag, lm = first.getheader("ETag"), first.getheader("Last-Modified")
    resp, body = request(server, "GET", path, {"Range": "bytes=10-", "If-Range": etag})
    assert resp.status == 206
    resp, body = request(server, "GET", path, {"Range": "bytes=10-", "If-Range": lm})
    assert resp.status == 206
    resp, body = request(server, "GET", path, {"Range": "bytes=10-", "If-Range": '"other"'})
    assert resp.status == 200 and len(body) == bf.size
    resp, body = request(
        server, "GET", path, {"Range": "bytes=10-", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    assert resp.status == 200


def test_head_range(server, tree):
    bf = wheel(tree[1])
    resp, body = request(server, "HEAD", "/" + bf.relpath, {"Range": "bytes=-22"})
    assert resp.status == 206 and body == b""
    assert resp.getheader("Content-Length") == "22"


# ------------------------------------------------------------------------------ conditionals


def test_etag_304_files(server, tree):
    bf = wheel(tree[1])
    path = "/" + bf.relpath
    first, _ = request(server, "GET", path)
    etag = first.getheader("ETag")
    resp, body = request(server, "GET", path, {"If-None-Match": etag})
    assert resp.status == 304 and body == b""
    assert resp.getheader("ETag") == etag
    resp, body = request(server, "GET", path, {"If-None-Match": f'"x", W/{etag}'})
    assert resp.status == 304
    resp, _ = request(server, "GET", path, {"If-Modified-Since": first.getheader("Last-Modified")})
    assert resp.status == 304
    resp, _ = request(server, "GET", path, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert resp.status == 200
    # If-None-Match wins over If-Modified-Since
    resp, _ = request(
        server,
        "GET",
        path,
        {"If-None-Match": '"nope"', "If-Modified-Since": first.getheader("Last-Modified")},
    )
    assert resp.status == 200


def test_etag_304_pages(server):
    first, _ = request(server, "GET", "/simple/foo-bar/", {"Accept": UV_ACCEPT})
    etag = first.getheader("ETag")
    resp, body = request(
        server, "GET", "/simple/foo-bar/", {"Accept": UV_ACCEPT, "If-None-Match": etag}
    )
    assert resp.status == 304 and body == b""
    assert "Accept" in resp.getheader("Vary")
    # a different representation has a different ETag
    html, _ = request(server, "GET", "/simple/foo-bar/", {"Accept": "text/html"})
    assert html.getheader("ETag") != etag
    resp, _ = request(
        server, "GET", "/simple/foo-bar/", {"Accept": "text/html", "If-None-Match": etag}
    )
    assert resp.status == 200


def test_page_change_is_seen(tmp_path):
    root = tmp_path / "t"
    write_tree(root, [Dist("a", "1.0")])
    with InProcessServer(root) as srv:
        _, before = request(srv, "GET", "/simple/a/")
        page = root / "simple" / "a" / "index.html"
        page.write_bytes(page.read_bytes().replace(b"Links for", b"Files of"))
        import os

        st = page.stat()
        os.utime(page, (st.st_atime, st.st_mtime + 5))
        _, after = request(srv, "GET", "/simple/a/")
        assert b"Files of" in after and before != after


# ---------------------------------------------------------------------------------- gzip


def test_gzip_only_for_pages(server, tree):
    resp, body = request(
        server, "GET", "/simple/foo-bar/", {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip"}
    )
    assert resp.getheader("Content-Encoding") == "gzip"
    assert resp.getheader("Vary") == "Accept, Accept-Encoding"
    assert gzip.decompress(body) == (tree[0] / "simple/foo-bar/index.json").read_bytes()
    etag_gz = resp.getheader("ETag")
    resp, body = request(server, "GET", "/simple/foo-bar/", {"Accept": PIP_ACCEPT})
    assert resp.getheader("Content-Encoding") is None
    assert resp.getheader("ETag") != etag_gz
    resp, _ = request(
        server, "GET", "/simple/foo-bar/", {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip;q=0"}
    )
    assert resp.getheader("Content-Encoding") is None
    bf = wheel(tree[1])
    for path in ("/" + bf.relpath, "/" + bf.relpath + ".metadata"):
        resp, _ = request(server, "GET", path, {"Accept-Encoding": "gzip"})
        assert resp.getheader("Content-Encoding") is None
        assert resp.getheader("Vary") is None


# ----------------------------------------------------------------------------- keep-alive


def test_keep_alive_many_requests_one_connection(server, tree):
    bf = wheel(tree[1])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.connect()
    sock = conn.sock
    for i in range(30):
        path = ["/simple/", "/simple/foo-bar/", "/" + bf.relpath, "/nope/", "/simple/Foo/"][i % 5]
        resp, body = request(
            server, "GET" if i % 3 else "HEAD", path, {"Accept": PIP_ACCEPT}, conn=conn
        )
        assert resp.status in (200, 301, 404)
        assert conn.sock is sock, "connection was not kept alive"
    conn.close()


def test_pipelined_requests(server):
    data = (
        b"".join(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n" for _ in range(3))
        + b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = raw_request(server.port, data)
    assert out.count(b"HTTP/1.1 200 OK") == 4


def test_http10_closes_unless_keep_alive(server):
    out = raw_request(server.port, b"GET /simple/ HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"Connection: close" in out
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /simple/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        got = s.recv(65536)
        assert b"Connection: keep-alive" in got


def test_connection_close_honoured(server):
    out = raw_request(server.port, b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close" in out


def test_half_closed_client_still_answered(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    assert out.startswith(b"HTTP/1.1 200")


def test_absolute_form_target(server):
    out = raw_request(
        server.port,
        b"GET http://example.test/simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 200")


# ------------------------------------------------------------------------------ no-metadata


def test_no_metadata(tree):
    with InProcessServer(tree[0], no_metadata=True) as srv:
        bf = wheel(tree[1])
        resp, _ = request(srv, "GET", "/" + bf.relpath + ".metadata")
        assert resp.status == 404
        resp, body = request(srv, "GET", "/simple/baz/", {"Accept": "text/html"})
        assert b"data-core-metadata" not in body and b"data-dist-info-metadata" not in body
        assert bf.filename.encode() in body and b"data-size=" in body
        resp, body = request(srv, "GET", "/simple/baz/", {"Accept": PIP_ACCEPT})
        files = json.loads(body)["files"]
        assert files and all("core-metadata" not in f for f in files)
        assert all("size" in f and "hashes" in f for f in files)
        resp, _ = request(srv, "GET", "/" + bf.relpath)
        assert resp.status == 200


def test_big_page_and_pipelining_after_transfer(tmp_path):
    """A page bigger than the in-worker limit is streamed by the I/O thread; the
    connection then carries on with the next (pipelined) request."""
    root = tmp_path / "t"
    write_tree(root, [Dist("big", "1.0")])
    page = root / "simple" / "big" / "index.html"
    text = page.read_text().replace("</body>", "<!--" + "p" * 300_000 + "-->\n</body>")
    page.write_text(text)
    with InProcessServer(root) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for _ in range(3):
            resp, body = request(srv, "GET", "/simple/big/", {"Accept": "text/html"}, conn=conn)
            assert body == text.encode()
            resp, body = request(srv, "GET", "/simple/big/", {"Accept-Encoding": "gzip"}, conn=conn)
            assert gzip.decompress(body) == text.encode()
        conn.close()
        big = b"GET /simple/big/ HTTP/1.1\r\nHost: x\r\n\r\n"
        out = raw_request(srv.port, big * 2 + b"GET /simple/ HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200 OK") == 3
        assert len(out) > 600_000


def test_split_request_after_keep_alive_response(server):
    """The next request arrives in pieces, slower than a worker waits for it: the
    partial head goes back to the I/O thread and the request is still answered."""
    import time

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        for piece in (
            b"GET /simple/foo-bar/ HT",
            b"TP/1.1\r\nHost: x\r\n",
            b"Connection: close\r\n\r\n",
        ):
            time.sleep(0.05)
            s.sendall(piece)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    assert out.startswith(b"HTTP/1.1 200") and b"foo_bar-1.1" in out


def test_page_cache_is_bounded_by_bytes(tmp_path, monkeypatch):
    from ..server_support import load_server_module

    mod = load_server_module()
    root = tmp_path / "t"
    write_tree(root, [Dist(f"p{i}", "1.0") for i in range(30)])
    monkeypatch.setattr(mod, "PAGE_CACHE_BYTES", 20_000)
    with InProcessServer(root) as srv:
        for i in range(30):
            for accept in ("text/html", PIP_ACCEPT):
                resp, _ = request(srv, "GET", f"/simple/p{i}/", {"Accept": accept})
                assert resp.status == 200
        tree = srv.server.tree
        assert 0 < tree._cached_bytes <= 20_000
        assert tree._cached_bytes == sum(p.size for p in tree._pages.values())


def test_unwritable_access_log_is_a_clear_error(tree, tmp_path):
    import subprocess
    import sys

    from ..server_support import SERVER_PY

    proc = subprocess.run(
        [
            sys.executable,
            str(SERVER_PY),
            "-i",
            str(tree[0]),
            "-p",
            "0",
            "--access-log",
            str(tmp_path / "no" / "such" / "log"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "--access-log" in proc.stderr
