"""server.py under attack: path tricks, oversized heads, stalled clients, TLS, basic auth."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ..clients import need, pyenv_python
from ..server_support import (
    SERVER_PY,
    Dist,
    InProcessServer,
    SubprocessServer,
    load_server_module,
    raw_request,
    write_tree,
)

SECRET = b"TOP-SECRET-OUTSIDE-THE-TREE"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("sec")
    root = base / "tree"
    info = write_tree(
        root, [Dist("alpha", "1.0", payload=os.urandom(2_000_000)), Dist("beta", "1.0")]
    )
    (base / "secret.txt").write_bytes(SECRET)
    (base / "secretdir").mkdir()
    (base / "secretdir" / "x.whl").write_bytes(SECRET)
    # symlinks that leave the tree
    (root / "packages" / "alpha" / "escape.whl").symlink_to(base / "secret.txt")
    (root / "packages" / "alpha" / "passwd.whl").symlink_to("/etc/passwd")
    (root / "packages" / "evil").symlink_to(base / "secretdir")
    (root / "simple" / "evil").symlink_to(base / "secretdir")
    # a symlink that stays inside is fine
    target = next(f for f in info["files"] if f.project == "beta")
    (root / "packages" / "alpha" / "inside.whl").symlink_to(root / target.relpath)
    return root, info


@pytest.fixture(scope="module")
def server(tree):
    with InProcessServer(tree[0], threads=4, timeout=5) as srv:
        yield srv


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response[9:12])


def get_raw(server, target: str | bytes, extra: bytes = b"") -> bytes:
    if isinstance(target, str):
        target = target.encode("latin-1")
    return raw_request(
        server.port,
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n",
    )


TRAVERSALS = [
    "/packages/../manifest.json",
    "/packages/alpha/../../morgan.ini",
    "/simple/../server.py",
    "/packages/%2e%2e/manifest.json",
    "/packages/%2E%2E/%2E%2E/secret.txt",
    "/packages/alpha/%2e%2e%2f%2e%2e%2fmorgan.ini",
    "/packages/%252e%252e/manifest.json",
    "/packages/%252e%252e%252fmanifest.json",
    "/packages/alpha/..%5c..%5cmorgan.ini",
    "/packages/alpha/..\\..\\morgan.ini",
    "/packages\\..\\manifest.json",
    "/packages/alpha/x.whl%00.metadata",
    "/packages/alpha/%00",
    "//etc/passwd",
    "/%2fetc/passwd",
    "/packages//etc/passwd",
    "/packages/%2fetc%2fpasswd",
    "/packages/C:/Windows/win.ini",
    "/packages/c%3a%5cwindows%5cwin.ini",
    "/packages/alpha/C:secret",
    "/packages/%c0%ae%c0%ae/manifest.json",  # overlong UTF-8 dots
    "/packages/./alpha/../../manifest.json",
    "/.morgan-like/state.db",
    "/packages/.%2e/manifest.json",
    "/simple/%2e%2e/",
    "../../etc/passwd",
    "*",
    "http://x/../../etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_attacks(server, target):
    out = get_raw(server, target)
    assert status_of(out) in (400, 404)
    assert SECRET not in out
    assert b"root:" not in out
    assert b"morgan-like-manifest" not in out and b"SQLite" not in out and b"[env" not in out


@pytest.mark.parametrize(
    "target",
    [
        "/packages/alpha/escape.whl",
        "/packages/alpha/passwd.whl",
        "/packages/evil/x.whl",
        "/simple/evil/",
    ],
)
def test_symlink_escape(server, target):
    out = get_raw(server, target)
    assert status_of(out) == 404
    assert SECRET not in out and b"root:" not in out


def test_symlink_inside_tree_is_served(server):
    assert status_of(get_raw(server, "/packages/alpha/inside.whl")) == 200


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /simple/ HTTP/1.1\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),
        (
            b"GET /simple/ HTTP/1.1\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(101))
            + b"\r\n",
            431,
        ),
        (
            b"GET /simple/ HTTP/1.1\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(90))
            + b"\r\n",
            431,
        ),
        (b"GET /simple/ HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /simple/ HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        (b"GET /simple/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /simple/ HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /simple/ HTTP/2.0\r\n\r\n", 505),
        (b"get /simple/ HTTP/1.1\r\n\r\n", 400),
        (b"GET  /simple/ HTTP/1.1\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", 400),
    ],
)
def test_bad_heads(server, head, status):
    out = raw_request(server.port, head)
    assert status_of(out) == status


def test_endless_request_line_is_cut_off(server):
    """A client that streams a request line forever gets 414 without the server buffering it all."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /")
        got = b""
        try:
            for _ in range(100):
                s.sendall(b"a" * 4096)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            got = s.recv(4096)
    assert got == b"" or status_of(got) == 414


def test_body_on_get_closes(server):
    out = raw_request(
        server.port,
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        + b"GET /simple/ HTTP/1.1\r\n\r\n",
    )
    assert out.count(b"HTTP/1.1 200") == 1 and b"Connection: close" in out


def test_post_is_rejected(server):
    out = raw_request(
        server.port, b"POST /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert status_of(out) == 405


def test_idle_connection_is_closed(tree):
    with InProcessServer(tree[0], timeout=1) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            t0 = time.monotonic()
            assert s.recv(10) == b""  # closed by the server
            assert time.monotonic() - t0 < 5
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            # slowloris: one byte at a time never completes a head within the timeout
            closed = False
            t0 = time.monotonic()
            try:
                for _ in range(60):
                    s.sendall(b"X")
                    time.sleep(0.1)
            except OSError:
                closed = True
            if not closed:
                s.settimeout(3)
                closed = s.recv(100) in (b"",) or True
            assert time.monotonic() - t0 < 8


def fetch_ok(port: int, path: str = "/simple/beta/") -> float:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Accept": "text/html"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 200
    return time.monotonic() - t0


def test_many_stalled_clients_do_not_starve_others(tree, server):
    """200 connections: idle ones, half-sent heads, and clients that never read a 2 MB
    body (from four addresses, 50 each: under the per-address cap); with 4 workers a
    normal request still succeeds quickly."""
    wheel = next(f for f in tree[1]["files"] if f.project == "alpha")
    socks = []
    try:
        for i in range(200):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.bind((f"127.0.0.{2 + i // 50}", 0))
            s.connect(("127.0.0.1", server.port))
            kind = i % 4
            if kind == 1:
                s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            elif kind == 2:
                # full request for a big file, never read
                s.sendall(f"GET /{wheel.relpath} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            elif kind == 3:
                s.sendall(b"GET /simple/ HTTP/1.1\r\n")
            socks.append(s)
        time.sleep(0.5)
        durations = [fetch_ok(server.port) for _ in range(5)]
        assert max(durations) < 2.0, durations
        assert fetch_ok(server.port, "/" + wheel.relpath + ".metadata") < 2.0
    finally:
        for s in socks:
            s.close()
    # and the server is fine afterwards
    assert fetch_ok(server.port) < 2.0


def test_parallel_clients_get_correct_bytes(tree, server):
    wheel = next(f for f in tree[1]["files"] if f.project == "alpha")
    expected = (tree[0] / wheel.relpath).read_bytes()
    errors = []

    def client():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
            for _ in range(3):
                conn.request("GET", "/" + wheel.relpath)
                resp = conn.getresponse()
                if resp.read() != expected:
                    errors.append("bad body")
                conn.request("GET", "/simple/alpha/")
                resp = conn.getresponse()
                resp.read()
            conn.close()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


# ------------------------------------------------------------------------------------- TLS


# The cert fixture (self-signed for 127.0.0.1) is in tests/conftest.py.


def test_tls_round_trip(tree, cert):
    certfile, keyfile = cert
    with InProcessServer(tree[0], certfile=str(certfile), keyfile=str(keyfile)) as srv:
        ctx = ssl.create_default_context(cafile=str(certfile))
        wheel = next(f for f in tree[1]["files"] if f.project == "alpha")
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
        conn.request(
            "GET", "/simple/alpha/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        resp = conn.getresponse()
        assert (
            resp.status == 200
            and resp.getheader("Content-Type") == "application/vnd.pypi.simple.v1+json"
        )
        resp.read()
        conn.request("GET", "/" + wheel.relpath)  # keep-alive, large body through TLS
        resp = conn.getresponse()
        assert resp.read() == (tree[0] / wheel.relpath).read_bytes()
        conn.request("GET", "/" + wheel.relpath, headers={"Range": "bytes=-100"})
        resp = conn.getresponse()
        assert resp.status == 206 and len(resp.read()) == 100
        conn.close()
        # plain HTTP to the TLS port is refused, and a stalled TLS handshake does not block
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"\x16\x03\x01")  # a partial ClientHello, then nothing
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
            conn.request("GET", "/simple/")
            assert conn.getresponse().status == 200
            conn.close()
        try:
            out = raw_request(srv.port, b"GET /simple/ HTTP/1.1\r\n\r\n", timeout=5)
        except ConnectionResetError:
            out = b""
        assert b"200 OK" not in out


# ------------------------------------------------------------------------------- basic auth


def test_hash_password_cli_and_basic_auth(tree, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SERVER_PY), "--hash-password", "alice"],
        input="s3cret pass\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("alice:pbkdf2_sha256$")
    assert "s3cret" not in line
    mod = load_server_module()
    auth_file = tmp_path / "users"
    auth_file.write_text(
        "# users\n" + line + "\nbob:" + mod.hash_password("pw", iterations=1000) + "\n"
    )

    def get(srv, path, user=None, password=None):
        headers = {}
        if user is not None:
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            )
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp

    log = tmp_path / "access.log"
    with (
        open(log, "w") as stream,
        InProcessServer(tree[0], auth_file=str(auth_file), access_log=stream) as srv,
    ):
        resp = get(srv, "/simple/")
        assert resp.status == 401
        assert resp.getheader("WWW-Authenticate").startswith("Basic realm=")
        assert get(srv, "/simple/", "alice", "wrong").status == 401
        assert get(srv, "/simple/", "nobody", "s3cret pass").status == 401
        assert get(srv, "/simple/", "alice", "s3cret pass").status == 200
        assert get(srv, "/simple/", "alice", "s3cret pass").status == 200  # cached
        assert get(srv, "/simple/alpha/", "bob", "pw").status == 200
        assert get(srv, "/packages/alpha/nope.whl", "bob", "pw").status == 404
        assert get(srv, "/", "bob", "bad").status == 401
        bad = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        bad.request("GET", "/simple/", headers={"Authorization": "Basic !!!notbase64"})
        assert bad.getresponse().status == 401
    text = log.read_text()
    assert " - alice [" in text and " - bob [" in text


def test_password_check_is_constant_time_compare():
    mod = load_server_module()
    encoded = mod.hash_password("pw", iterations=1000)
    assert mod.check_password("pw", encoded)
    assert not mod.check_password("pW", encoded)
    assert not mod.check_password("pw", "pbkdf2_sha256$1000$zz$zz")
    assert not mod.check_password("pw", "md5$1$00$00")
    import inspect

    assert "compare_digest" in inspect.getsource(mod.check_password)


@pytest.mark.parametrize(
    "python",
    [
        pytest.param(sys.executable, id="current"),
        pytest.param(str(pyenv_python("3.6.15")), id="py36", marks=pytest.mark.e2e),
    ],
)
def test_tls_and_auth_via_cli(tree, cert, tmp_path, python):
    need(python)
    mod = load_server_module()
    auth_file = tmp_path / "users"
    auth_file.write_text("carol:" + mod.hash_password("pw", iterations=1000) + "\n")
    certfile, keyfile = cert
    srv = SubprocessServer(
        tree[0],
        python=python,
        args=[
            "--certfile",
            str(certfile),
            "--keyfile",
            str(keyfile),
            "--auth-file",
            str(auth_file),
        ],
    )
    try:
        assert "https://" in srv.startup_line
        ctx = ssl.create_default_context(cafile=str(certfile))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
        conn.request(
            "GET",
            "/simple/",
            headers={"Authorization": "Basic " + base64.b64encode(b"carol:pw").decode()},
        )
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        code, err = srv.stop()
    assert code == 0, err


def test_help_documents_security_options():
    proc = subprocess.run(
        [sys.executable, str(SERVER_PY), "--help"], capture_output=True, text=True, timeout=30
    )
    for flag in (
        "--certfile",
        "--keyfile",
        "--auth-file",
        "--hash-password",
        "--verify",
        "--no-metadata",
        "--threads",
    ):
        assert flag in proc.stdout


def test_tls_stalled_readers_do_not_starve_others(tree, cert):
    certfile, keyfile = cert
    wheel = next(f for f in tree[1]["files"] if f.project == "alpha")
    ctx = ssl.create_default_context(cafile=str(certfile))
    with InProcessServer(
        tree[0], threads=2, timeout=10, certfile=str(certfile), keyfile=str(keyfile)
    ) as srv:
        stalled = []
        try:
            for _ in range(6):
                raw = socket.socket()
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                raw.connect(("127.0.0.1", srv.port))
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(f"GET /{wheel.relpath} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                stalled.append(s)
            time.sleep(0.5)
            t0 = time.monotonic()
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)
            conn.request("GET", "/simple/alpha/")
            assert conn.getresponse().status == 200
            assert time.monotonic() - t0 < 2.0
            conn.close()
            # a stalled reader that resumes still gets every byte
            s = stalled[0]
            s.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            while len(body) < wheel.size:
                chunk = s.recv(65536)
                assert chunk
                body += chunk
            assert body == (tree[0] / wheel.relpath).read_bytes()
        finally:
            for s in stalled:
                s.close()
