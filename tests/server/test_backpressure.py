"""server.py and clients that stop reading: no worker waits on them, no memory piles up.

A worker writes what a socket takes at once and leaves the rest of a response to the
I/O thread; a connection's pipelined requests wait until its response is out.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from ..clients import need, pyenv_python
from ..server_support import BuiltFile, Dist, InProcessServer, SubprocessServer, write_tree

SMALL_PAYLOAD = 50_000  # the wheel stays under server.py's SMALL_FILE (64 KiB): one write
BIG_PAYLOAD = 1_000_000  # bigger than the default socket buffers, smaller than autotuned ones


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, BuiltFile]]:
    root = tmp_path_factory.mktemp("backpressure") / "tree"
    info = write_tree(
        root,
        [
            Dist("big", "1.0", payload=os.urandom(BIG_PAYLOAD)),
            Dist("small", "1.0", payload=os.urandom(SMALL_PAYLOAD)),
            Dist("beta", "1.0"),
        ],
    )
    wheels = {f.project: f for f in info["files"] if f.filename.endswith(".whl")}
    assert wheels["small"].size < 64 * 1024 < BIG_PAYLOAD < wheels["big"].size
    return root, wheels


def get(port: int, path: str = "/simple/beta/", context=None) -> int:
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request("GET", path, headers={"Accept": "text/html"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def non_reader(port: int, request: bytes, context=None) -> socket.socket:
    """A connection with a small receive window that sends ``request`` and reads nothing."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    s = raw if context is None else context.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(request)
    return s


def file_request(wheel: BuiltFile, count: int) -> bytes:
    return f"GET /{wheel.relpath} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * count


@pytest.mark.parametrize(
    "python",
    [
        pytest.param(str(pyenv_python("3.6.15")), id="py36"),
        pytest.param(str(pyenv_python("3.13.0")), id="py313"),
    ],
)
def test_non_reading_pipeliners_hold_no_worker(tree, python):
    """64 clients pipeline requests for a file bigger than the socket buffers and never
    read.  Once a response fills a socket, the next one used to be written by a worker
    with a blocking sendall, so every worker waited out --timeout (30 s); now a normal
    GET is answered at once."""
    need(python)
    root, wheels = tree
    srv = SubprocessServer(root, python=python, args=["-q", "--threads", "8", "--timeout", "30"])
    socks: list[socket.socket] = []
    try:
        request = file_request(wheels["big"], 8)
        for _ in range(64):
            socks.append(non_reader(srv.port, request))
        time.sleep(1.0)  # every connection's socket buffers fill up
        t0 = time.monotonic()
        assert get(srv.port) == 200
        assert time.monotonic() - t0 < 5.0
    finally:
        for s in socks:
            s.close()
        code, err = srv.stop()
    assert code == 0, err
    assert "Traceback" not in err, err


def read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` (head, body) pairs, read one after the other by Content-Length."""
    buf = bytearray()
    out = []
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[:end])
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            if len(buf) >= end + 4 + length:
                out.append((head, bytes(buf[end + 4 : end + 4 + length])))
                del buf[: end + 4 + length]
                continue
        chunk = sock.recv(1 << 20)
        assert chunk, f"connection closed after {len(out)} responses"
        buf += chunk
    return out


class Lines:
    """An access-log stream that counts its lines."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, text: str) -> None:
        self.count += text.count("\n")

    def flush(self) -> None:
        pass


def test_backed_up_connection_is_not_read_until_it_drains(tree):
    """A client pipelines 1000 requests (50 MB of answers) and stops reading: the server
    answers no more than the socket buffers hold, serves others meanwhile, and when the
    client reads again it gets every answer, whole and in order."""
    root, wheels = tree
    small = wheels["small"]
    data = (root / small.relpath).read_bytes()
    log = Lines()
    with InProcessServer(root, threads=2, timeout=30, access_log=log) as srv:
        s = non_reader(srv.port, file_request(small, 1000))
        try:
            time.sleep(1.0)
            assert get(srv.port) == 200
            answered = log.count - 1
            assert answered < 500, answered  # the rest were neither answered nor buffered
            s.settimeout(20)
            responses = read_responses(s, 1000)
        finally:
            s.close()
    assert all(head.startswith(b"HTTP/1.1 200 OK") for head, _ in responses)
    assert all(body == data for _, body in responses)


def test_tls_non_reading_pipeliner_gets_every_byte(tree, cert):
    """Over TLS a full socket raises SSLWantWriteError, and the same bytes must be
    written again: a pipelining client that reads late still gets exact answers."""
    root, wheels = tree
    certfile, keyfile = cert
    ctx = ssl.create_default_context(cafile=str(certfile))
    small, big = wheels["small"], wheels["big"]
    request = (file_request(small, 1) + file_request(big, 1)) * 20
    expected = [(root / w.relpath).read_bytes() for w in (small, big)] * 20
    with InProcessServer(
        root, threads=2, timeout=30, certfile=str(certfile), keyfile=str(keyfile)
    ) as srv:
        stalled = [non_reader(srv.port, request, ctx) for _ in range(4)]
        try:
            time.sleep(1.0)
            assert get(srv.port, context=ctx) == 200
            results: list[object] = [None] * len(stalled)

            def drain(i: int) -> None:
                stalled[i].settimeout(20)
                results[i] = [body for _, body in read_responses(stalled[i], len(expected))]

            readers = [threading.Thread(target=drain, args=(i,)) for i in range(len(stalled))]
            for t in readers:
                t.start()
            for t in readers:
                t.join(60)
        finally:
            for s in stalled:
                s.close()
    assert results == [expected] * len(stalled)
