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
