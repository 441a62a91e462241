"""server.py against hostile clients (issue 18, section 1): request bodies and smuggling,
control characters in the target, non-ASCII redirects, a failing head, log forging.

Behaviour is checked on the oldest and newest CPython the server supports (3.6, 3.13),
each running server.py as a subprocess.
"""

from __future__ import annotations

import base64
import http.client
import io
import socket
from pathlib import Path

import pytest

from ..clients import need, pyenv_python
from ..server_support import (
    Dist,
    InProcessServer,
    SubprocessServer,
    load_server_module,
    raw_request,
    write_tree,
)

PYTHONS = [
    pytest.param(str(pyenv_python("3.6.15")), id="py36"),
    pytest.param(str(pyenv_python("3.13.0")), id="py313"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hard") / "tree"
    write_tree(root, [Dist("alpha", "1.0"), Dist("beta", "1.0")])
    return root


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users"
    path.write_text("carol:" + load_server_module().hash_password("pw", iterations=1000) + "\n")
    return path


CAROL = "Authorization: Basic " + base64.b64encode(b"carol:pw").decode()


def responses(data: bytes) -> int:
    return data.count(b"HTTP/1.1 ")


def statuses(data: bytes) -> list[int]:
    out = []
    for part in data.split(b"HTTP/1.1 ")[1:]:
        out.append(int(part[:3]))
    return out


# ---------------------------------------------------------------------- bodies (smuggling)


SMUGGLED = ("GET /simple/alpha/ HTTP/1.1\r\nHost: x\r\n" + CAROL + "\r\n\r\n").encode()


def _with_length(method: str, extra: str = "") -> bytes:
    return (
        f"{method} /simple/ HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {len(SMUGGLED)}\r\n\r\n"
    ).encode() + SMUGGLED


def _chunked(method: str, extra: str = "") -> bytes:
    return (
        (
            f"{method} /simple/ HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
            f"{len(SMUGGLED):x}\r\n"
        ).encode()
        + SMUGGLED
        + b"\r\n0\r\n\r\n"
    )


BODIED = [
    pytest.param(_with_length("POST"), [401], id="401-post"),
    pytest.param(_with_length("GET"), [401], id="401-get-with-body"),
    pytest.param(_chunked("POST"), [401], id="401-post-chunked"),
    pytest.param(_chunked("GET"), [401], id="401-get-chunked"),
    pytest.param(_with_length("POST", CAROL + "\r\n"), [405], id="405-post"),
    pytest.param(_with_length("GET", CAROL + "\r\n"), [200], id="200-get-with-body"),
    pytest.param(_with_length("GET", "Authorization: Basic Y2Fyb2w6bm8=\r\n"), [401], id="401-bad"),
]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize(("data", "expected"), BODIED)
def test_a_request_body_never_becomes_a_request(tree, auth_file, python, data, expected):
    """Any answer to a request with a body closes the connection: the request smuggled
    in the body (with good credentials) is never answered, whatever the first answer."""
    need(python)
    srv = SubprocessServer(tree, python=python, args=["--auth-file", str(auth_file), "-q"])
    try:
        out = raw_request(srv.port, data, timeout=10)
        assert statuses(out) == expected, out[:300]
        assert b"Connection: close" in out
        assert b"alpha-1.0" not in out  # the smuggled page
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


def test_keep_alive_without_a_body_still_works(tree, auth_file):
    """The close is for requests with a body: a 401 without one keeps the connection."""
    with InProcessServer(tree, auth_file=str(auth_file)) as srv:
        out = raw_request(
            srv.port,
            b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + CAROL.encode()
            + b"\r\n\r\n",
        )  # fmt: skip
        assert statuses(out) == [401, 200]


# --------------------------------------------------------------------- the request target


@pytest.mark.parametrize("python", PYTHONS)
def test_control_characters_in_the_target_are_refused(tree, python):
    """A bare CR in the query once reached a redirect's Location (http.client then read
    the rest as headers): every control or non-ASCII byte in the target is a 400."""
    need(python)
    srv = SubprocessServer(tree, python=python, args=["-q"])
    try:
        for target in (
            b"/simple?x=1\rSet-Cookie: a=b",
            b"/simple/alpha?\x1b[2J",
            b"/simple/\x00",
            b"/simple/alpha/\x7f",
            b"/simple/?a\tb",
            b"/simple/\xc4\x81/",
            b"/simple/\x85",
        ):
            out = raw_request(srv.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert statuses(out) == [400], (target, out[:200])
            assert b"Set-Cookie" not in out
        # the same through http.client: no header is injected
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.putrequest("GET", "/simple?x=1", skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 301 and resp.getheader("Location") == "/simple/?x=1"
        conn.close()
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("python", PYTHONS)
def test_non_ascii_names_redirect_percent_encoded(tree, python):
    """``/simple/%C4%81`` made the head's latin-1 encoding raise: an empty reply and a
    traceback per request.  Location is percent-encoded ASCII now."""
    need(python)
    srv = SubprocessServer(tree, python=python, args=["-q"])
    try:
        for target, location in (
            (b"/simple/%C4%81", b"/simple/%C4%81/"),
            (b"/simple/%C4%80x", b"/simple/%C4%81x/"),  # normalized: lower case
            (b"/pypi/%C4%80/json", b"/pypi/%C4%81/json"),
            (b"/simple/a%3Fb", b"/simple/a%3Fb/"),  # a decoded ? stays in the path
            (b"/simple/%E2%80%A8?x=%E2", b"/simple/%E2%80%A8/?x=%E2"),
        ):
            out = raw_request(
                srv.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert statuses(out) == [301], (target, out[:200])
            assert b"\r\nLocation: " + location + b"\r\n" in out, out[:300]
    finally:
        code, err = srv.stop()
    assert code == 0 and err.strip() == "server stopped", err


def test_a_failing_head_is_a_500_and_one_line(tree):
    """Whatever raises while the head is written (here a header value latin-1 cannot
    encode) answers 500 and writes one escaped line, no traceback."""
    with InProcessServer(tree) as srv:
        handler = srv.server.handler
        errors = io.StringIO()
        handler.errors = errors
        mod = srv.mod
        real = handler.route

        def route(req):
            if req.target.startswith("/boom"):
                return mod.text_response(200, headers=[("X-Name", "\u0101\r\nX-Evil: 1")])
            if req.target.startswith("/raise"):
                raise RuntimeError("broken\r\nforged line")
            return real(req)

        handler.route = route
        for target in (b"/boom", b"/raise"):
            out = raw_request(srv.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert statuses(out) == [500] and b"X-Evil" not in out
        # the server carries on
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/simple/")
        assert conn.getresponse().status == 200
        conn.close()
    lines = errors.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "GET /boom" in lines[0] and "UnicodeEncodeError" in lines[0]
    assert "GET /raise" in lines[1] and "RuntimeError: broken\\r\\nforged line" in lines[1]
    assert "Traceback" not in errors.getvalue()


# ------------------------------------------------------------------------------- the log


@pytest.mark.parametrize("python", PYTHONS)
def test_the_access_log_escapes_control_characters(tree, tmp_path, python):
    """CR, LF, ESC, NUL, DEL and C1 controls from the User-Agent and Referer (and the
    request line) reach the log escaped: one request, one line, no terminal escapes."""
    need(python)
    log = tmp_path / "access.log"
    srv = SubprocessServer(
        tree, python=python, args=["--access-log", str(log), "--log-format", "combined"]
    )
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(
                b"GET /simple/ HTTP/1.1\r\nHost: x\r\n"
                b'User-Agent: pip\x1b[31m\rFORGED 200\x00\x7f\x85\\x1b "q"\xff\r\n'
                b"Referer: http://r/\x1b]0;title\x07\r\nConnection: close\r\n\r\n"
            )
            while s.recv(65536):
                pass
    finally:
        code, err = srv.stop()
    assert code == 0, err
    raw = log.read_bytes()
    assert raw.count(b"\n") == 1, raw
    line = raw.decode("ascii")
    assert all(32 <= ord(c) < 127 for c in line.rstrip("\n")), line
    assert '"GET /simple/ HTTP/1.1" 200' in line
    assert 'pip\\x1b[31m\\rFORGED 200\\x00\\x7f\\x85\\\\x1b \\"q\\"\\xff' in line
    assert "http://r/\\x1b]0;title\\x07" in line


# ------------------------------------------------------------- connections per address


def _hold(port: int, source: str) -> socket.socket:
    """A connection from ``source`` that sends half a head and waits (slowloris)."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return s


def _get_from(port: int, source: str) -> bytes:
    with socket.socket() as s:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except ConnectionResetError:
            pass
        return out


def _until(check, what: str, seconds: float = 10.0):
    """Poll ``check`` until it is true (the server sees a close a moment after it)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, what
            return result
        time.sleep(0.05)


@pytest.mark.parametrize("python", PYTHONS)
def test_one_address_cannot_hold_every_connection(tree, python):
    """--max-per-address 3: a fourth connection from the same address gets a 503 and is
    closed before anything is read; another address is served; a slot comes back when
    one of the three closes."""
    need(python)
    srv = SubprocessServer(tree, python=python, args=["--max-per-address", "3", "-q"])
    held = []
    try:
        held = [_hold(srv.port, "127.0.0.1") for _ in range(3)]
        out = _get_from(srv.port, "127.0.0.1")
        assert statuses(out) == [503], out[:200]
        assert b"Retry-After: 1" in out and b"too many connections" in out
        assert statuses(_get_from(srv.port, "127.0.0.2")) == [200]
        held.pop().close()
        _until(lambda: statuses(_get_from(srv.port, "127.0.0.1")) == [200], "slot back")
    finally:
        for s in held:
            s.close()
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


def test_the_per_address_cap_has_a_default_and_zero_lifts_it(tree):
    mod = load_server_module()
    server = mod.IndexServer(str(tree), "127.0.0.1", 0)
    try:
        assert server.max_per_address == mod.MAX_PER_ADDRESS
        assert server.max_per_address <= server.max_connections // 2
    finally:
        server.server_close()
    with InProcessServer(tree, max_per_address=0) as srv:
        held = [_hold(srv.port, "127.0.0.1") for _ in range(5)]
        try:
            assert statuses(_get_from(srv.port, "127.0.0.1")) == [200]
        finally:
            for s in held:
                s.close()


# ------------------------------------------------------------------- failed logins


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_failed_logins_are_throttled_per_address(tree, auth_file, monkeypatch):
    """An address that failed AUTH_FAIL_BURST checks gets 429 (no hashing) until its
    allowance grows back; the same wrong password again costs nothing (cached); a
    logged-in client from that address is still served, and so is another address."""
    mod = load_server_module()
    monkeypatch.setattr(mod, "AUTH_FAIL_BURST", 3)
    monkeypatch.setattr(mod, "AUTH_FAIL_PERIOD", 3600.0)
    auth = mod.Authenticator(str(auth_file))
    calls = []
    real = mod.check_password
    monkeypatch.setattr(mod, "check_password", lambda p, e: calls.append(p) or real(p, e))
    assert auth.check(_basic("carol", "pw"), "10.0.0.1") == ("carol", None)
    for i in range(3):
        assert auth.check(_basic("carol", f"wrong{i}"), "10.0.0.1") == (None, None)
    assert auth.check(_basic("carol", "wrong0"), "10.0.0.1") == (None, None)  # cached
    user, refused = auth.check(_basic("carol", "fresh"), "10.0.0.1")
    assert user is None and refused.status == 429 and refused.retry > 0
    user, refused = auth.check(_basic("nobody", "fresh"), "10.0.0.1")
    assert refused.status == 429  # the same answer whoever the user
    assert auth.check(_basic("carol", "pw"), "10.0.0.1") == ("carol", None)  # logged in
    assert auth.check(_basic("carol", "wrong9"), "10.0.0.2") == (None, None)
    assert calls == ["pw", "wrong0", "wrong1", "wrong2", "wrong9"]


def test_a_right_password_gives_its_allowance_back(tree, auth_file, monkeypatch):
    mod = load_server_module()
    monkeypatch.setattr(mod, "AUTH_FAIL_BURST", 2)
    monkeypatch.setattr(mod, "AUTH_FAIL_PERIOD", 3600.0)
    auth = mod.Authenticator(str(auth_file))
    for _ in range(5):
        auth._ok.clear()
        assert auth.check(_basic("carol", "pw"), "10.0.0.1") == ("carol", None)
    assert auth.check(_basic("carol", "x"), "10.0.0.1") == (None, None)


def test_password_checks_are_bounded_and_waiters_get_503(tree, auth_file, monkeypatch):
    """One slot: while a check runs, one more request may wait for it (waiters=2 in
    all); the next gets a 503 at once instead of taking a worker."""
    import threading

    mod = load_server_module()
    auth = mod.Authenticator(str(auth_file), waiters=2, slots=1)
    started, release = threading.Event(), threading.Event()
    real = mod.check_password

    def slow(password, encoded):
        started.set()
        release.wait(30)
        return real(password, encoded)

    monkeypatch.setattr(mod, "check_password", slow)
    results = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(auth.check(_basic("c", f"{i}"), f"a{i}"))
        )
        for i in range(2)
    ]
    threads[0].start()
    assert started.wait(30)
    threads[1].start()
    _until(lambda: auth._in_check == 2, "a second check waiting")
    user, refused = auth.check(_basic("c", "third"), "a3")
    assert user is None and refused.status == 503
    release.set()
    for t in threads:
        t.join(30)
    assert results == [(None, None), (None, None)]


@pytest.mark.parametrize("python", PYTHONS)
def test_throttled_logins_over_http(tree, auth_file, python):
    """Through the server: fresh wrong passwords from one address end in 429 with
    Retry-After, while that address's logged-in client keeps getting 200."""
    need(python)
    srv = SubprocessServer(tree, python=python, args=["--auth-file", str(auth_file), "-q"])

    def get(authorization: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.request("GET", "/simple/", headers={"Authorization": authorization})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp

    try:
        assert get(_basic("carol", "pw")).status == 200
        codes = [get(_basic("carol", f"guess{i}")).status for i in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
        resp = get(_basic("carol", "another"))
        assert resp.status == 429 and int(resp.getheader("Retry-After")) >= 1
        assert get(_basic("carol", "pw")).status == 200
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


# ------------------------------------------------------------------ the command line


CLI_ERRORS = [
    (["-p", "99999"], "-p/--port 99999"),
    (["-p", "-1"], "-p/--port -1"),
    (["--threads", "0"], "--threads 0"),
    (["--timeout", "nan"], "--timeout nan"),
    (["--max-per-address", "-1"], "--max-per-address -1"),
    (["--certfile", "/missing/cert.pem"], "--certfile /missing/cert.pem"),
    (["--certfile", "{bad}"], "--certfile {bad}"),
    (["--certfile", "{cert}", "--keyfile", "{bad}"], "--keyfile {bad}"),
    (["--keyfile", "{bad}"], "--keyfile {bad}"),
    (["--auth-file", "{dir}"], "--auth-file {dir}"),
    (["--auth-file", "/missing/users"], "--auth-file /missing/users"),
    (["--auth-file", "{binary}"], "--auth-file {binary}"),
    (["--auth-file", "{bad}"], "--auth-file {bad}"),
    (["--public-url", "ftp://x/"], "--public-url ftp://x/"),
    (["--public-url", "https://x/?q=1"], "--public-url https://x/?q=1"),
    (["--access-log", "/missing/dir/log"], "--access-log /missing/dir/log"),
    (["-p", "port"], "-p/--port"),
]


@pytest.mark.parametrize("python", PYTHONS)
def test_bad_options_end_in_one_line(tree, tmp_path, openssl_cert, python):
    """Each bad value ends with one line naming the flag and the value and what to do,
    exit 2, no traceback (a port out of range was a traceback; --threads 0 became 1)."""
    import subprocess

    from ..server_support import SERVER_PY

    need(python)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a pem\n")
    binary = tmp_path / "users.bin"
    binary.write_bytes(b"carol:\xff\xfe\x00\n")
    files = {"bad": str(bad), "dir": str(tmp_path), "binary": str(binary)}
    files["cert"] = str(openssl_cert[0]) if openssl_cert else str(bad)
    for args, named in CLI_ERRORS:
        args = [a.format(**files) for a in args]
        proc = subprocess.run(
            [python, str(SERVER_PY), "-i", str(tree), "-H", "127.0.0.1", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
        assert named.format(**files) in lines[0], (args, lines)
        assert "give " in lines[0] or "see python3 server.py --help" in lines[0], lines
        assert proc.stdout == ""


def test_help_lists_the_hardening_options():
    import subprocess
    import sys

    from ..server_support import SERVER_PY

    out = subprocess.run(
        [sys.executable, str(SERVER_PY), "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    for flag in ("--max-per-address N", "--public-url URL", "--trust-proxy", "1 to 1024"):
        assert flag in out, flag
    assert "off by default" in out and "all off by default" not in out


def test_refused_logins_are_held_without_a_worker(tree, auth_file, monkeypatch):
    """A 429 goes out AUTH_REFUSED_DELAY later (a client retrying at once costs little),
    held by the I/O thread: with one worker and a 30 s hold, a logged-in client is
    answered meanwhile (within 10 s), and the held answer goes out at shutdown."""
    mod = load_server_module()
    monkeypatch.setattr(mod, "AUTH_REFUSED_DELAY", 30.0)

    def logged_in(port: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/simple/", headers={"Authorization": _basic("carol", "pw")})
        status = conn.getresponse().status
        conn.close()
        return status

    held = socket.socket()
    held.settimeout(60)
    try:
        with InProcessServer(tree, auth_file=str(auth_file), threads=1) as srv:
            assert logged_in(srv.port) == 200  # checked once, cached
            monkeypatch.setattr(mod, "AUTH_FAIL_BURST", 0)  # every new check refused
            held.bind(("127.0.0.2", 0))
            held.connect(("127.0.0.1", srv.port))
            guess = _basic("carol", "guess").encode()
            held.sendall(
                b"GET /simple/ HTTP/1.1\r\nHost: x\r\nAuthorization: " + guess + b"\r\n\r\n"
            )
            _until(lambda: srv.server._delayed, "the 429 held")
            assert [logged_in(srv.port) for _ in range(3)] == [200, 200, 200]
        out = held.recv(65536)
        assert statuses(out) == [429] and b"Retry-After: " in out
    finally:
        held.close()
