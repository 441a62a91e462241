"""server.py reads the numbers of Range and Content-Length as ASCII digits only.

``str.isdigit()`` also takes ``'²'`` (which ``int()`` refuses), and ``int()`` refuses
more than 4300 digits on 3.11+: such headers used to answer 500 with a traceback.
RFC 9110: a Range that cannot be parsed is ignored (200, whole file), an unsatisfiable
one is a 416; a bad Content-Length is a 400.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from ..clients import need, pyenv_python
from ..server_support import Dist, SubprocessServer, load_server_module, write_tree

SIZE = 1000
LONG = "1" * 5000
ZEROS = "0" * 5000

# (Range value, expected status, expected (first, last) of a 206)
RANGES: list[tuple[bytes, int, tuple[int, int] | None]] = [
    (b"bytes=\xb2-3", 200, None),  # '²'.isdigit() is True
    (b"bytes=0-\xb3", 200, None),
    (b"bytes=-\xb9", 200, None),
    (f"bytes={LONG}-".encode(), 416, None),
    (f"bytes={LONG}-{LONG}".encode(), 416, None),
    (f"bytes=0-{LONG}".encode(), 206, (0, SIZE - 1)),
    (f"bytes=-{LONG}".encode(), 206, (0, SIZE - 1)),  # huge suffix: the whole file
    (b"bytes=-99999999999999999999", 206, (0, SIZE - 1)),
    (b"bytes=99999999999999999999-", 416, None),
    (f"bytes={ZEROS}5-{ZEROS}9".encode(), 206, (5, 9)),  # leading zeros are fine
    (b"bytes=-", 200, None),
    (b"bytes=", 200, None),
    (b"bytes=0-1,5-6", 200, None),  # several ranges: the whole file
    (b"bytes=0-1, 5-6", 200, None),
    (b"bytes=0-3,", 206, (0, 3)),  # an empty list element does not count
    (b"bytes= 0-3 ", 206, (0, 3)),
    (b"bytes=0 -3", 206, (0, 3)),
    (b"bytes=0 1-3", 200, None),
    (b"bytes=-5-10", 200, None),  # negative numbers
    (b"bytes=--5", 200, None),
    (b"bytes=5--1", 200, None),
    (b"bytes=+5-", 200, None),
    (b"bytes=0x10-", 200, None),
    (b"bytes=10-5", 200, None),
    (b"bytes=-0", 416, None),
    (b"bytes=1000-", 416, None),
    (b"bytes=999-", 206, (999, 999)),
    (b"bytes=-1", 206, (999, 999)),
    (b"items=0-3", 200, None),
]

# (method, Content-Length value, body, expected status)
LENGTHS: list[tuple[str, bytes, bytes, int]] = [
    ("POST", b"\xb2", b"ab", 400),
    ("GET", b"\xb2", b"ab", 400),
    ("POST", LONG.encode(), b"x", 400),
    ("GET", LONG.encode(), b"x", 400),
    ("GET", b"1" * 19, b"x", 400),
    ("POST", b"-3", b"abc", 400),
    ("GET", b"-3", b"abc", 400),
    ("GET", b"+3", b"abc", 400),
    ("GET", b"3, 3", b"abc", 400),
    ("GET", b"0x3", b"abc", 400),
    ("GET", b"", b"", 400),
    ("POST", b"3", b"abc", 405),
    ("GET", b"3", b"abc", 200),
    ("GET", b"0000", b"", 200),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("numbers") / "tree"
    write_tree(root, [Dist("beta", "1.0")])
    data = bytes(range(256)) * 4
    (root / "packages" / "beta" / "data.bin").write_bytes(data[:SIZE])
    return root, "/packages/beta/data.bin"


def short(value: bytes) -> str:
    """A test id: long values cut, with their length."""
    return repr(value if len(value) <= 24 else value[:16] + b"...(%d)" % len(value))


@pytest.mark.parametrize(("value", "status", "span"), RANGES, ids=[short(r[0]) for r in RANGES])
def test_parse_range(value, status, span):
    parse_range = load_server_module().parse_range
    got = parse_range(value.decode("latin-1"), SIZE)
    expected = {200: None, 416: "unsatisfiable", 206: span}[status]
    assert got == expected


def test_decimal():
    mod = load_server_module()
    decimal = mod.decimal
    assert decimal("0") == 0 and decimal("000") == 0 and decimal("0042") == 42
    assert decimal("9" * 18) == 10**18 - 1
    assert decimal("1" + "0" * 18) == mod.HUGE
    assert decimal(ZEROS + "7") == 7
    assert decimal(LONG) == mod.HUGE
    for bad in ("", " 1", "1 ", "\xb2", "-1", "+1", "1_000", "1.0", "\u0663", "1\n"):
        assert decimal(bad) is None, bad


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, read the answer until the server closes (Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


PYTHONS = [
    pytest.param(sys.executable, id="current"),
    pytest.param(str(pyenv_python("3.6.15")), id="py36"),
    pytest.param(str(pyenv_python("3.13.0")), id="py313"),
]


@pytest.mark.parametrize("python", PYTHONS)
def test_no_500_and_no_traceback(tree, python):
    """Every Range and Content-Length case over HTTP, on the oldest and newest Python:
    the statuses above, and nothing in the server's stderr."""
    need(python)
    root, path = tree
    data = (root / path.lstrip("/")).read_bytes()
    srv = SubprocessServer(root, python=python, args=["-q"])
    wrong = []
    try:
        for value, status, span in RANGES:
            out = exchange(
                srv.port,
                b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nRange: " + value
                + b"\r\nConnection: close\r\n\r\n",
            )  # fmt: skip
            head, _, body = out.partition(b"\r\n\r\n")
            got = int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else None
            want_body = {200: data, 416: None, 206: data[span[0] : span[1] + 1] if span else b""}
            if got != status or (want_body[status] is not None and body != want_body[status]):
                wrong.append((value[:40], got, len(body)))
        for method, value, body, status in LENGTHS:
            out = exchange(
                srv.port,
                method.encode() + b" /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: " + value
                + b"\r\nConnection: close\r\n\r\n" + body,
            )  # fmt: skip
            got = int(out[9:12]) if out.startswith(b"HTTP/1.1 ") else None
            if got != status:
                wrong.append((method, value[:40], got))
    finally:
        code, err = srv.stop()
    assert not wrong
    assert code == 0, err
    assert "Traceback" not in err, err


def test_zero_content_length_keeps_the_connection(tree):
    """``Content-Length: 0000`` is no body: the connection stays open."""
    root, _ = tree
    srv = SubprocessServer(root, args=["-q"])
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0000\r\n\r\n")
            first = s.recv(65536)
            assert first.startswith(b"HTTP/1.1 200") and b"Connection: close" not in first
    finally:
        srv.stop()
