"""One loaded TLS context per CA bundle (morgan_like/index/tls.py)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from morgan_like.errors import UpstreamError
from morgan_like.index.upstream import Upstream


class _Close(BaseHTTPRequestHandler):
    """Answers every GET with a small body and closes, so each request is a new connection."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_url(cert: tuple[Path, Path]) -> Iterator[str]:
    certfile, keyfile = cert
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Close)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


def test_bundle_loaded_once_for_many_connections(clean_pip_env, https_url, cert, monkeypatch):
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    upstream = Upstream(https_url, cert=str(cert[0]), retries=0)
    for _ in range(5):  # five connections: the server closes each one
        assert upstream.get(https_url).content == b"ok"
    assert len(loads) == 1


def test_wrong_bundle_still_refused(clean_pip_env, https_url):
    system = Path(ssl.get_default_verify_paths().openssl_cafile or "")
    if not system.is_file():
        pytest.skip("no system CA bundle to stand in for a wrong one")
    upstream = Upstream(https_url, cert=str(system), retries=0)
    with pytest.raises(UpstreamError, match="(?i)certificate|ssl"):
        upstream.get(https_url)


def test_trusted_host_is_not_verified(clean_pip_env, https_url, monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_TRUSTED_HOST", "127.0.0.1")
    system = Path(ssl.get_default_verify_paths().openssl_cafile or "")
    if not system.is_file():
        pytest.skip("no system CA bundle")
    # The bundle does not know our self-signed cert: only trusted-host lets this through,
    # and the verified pools' shared context must not leak into the unverified one.
    upstream = Upstream(https_url, cert=str(system), retries=0)
    assert upstream.get(https_url).content == b"ok"


def test_trusted_host_prints_no_urllib3_warning(clean_pip_env, https_url):
    """pip's trusted-host is the user's choice: a run says nothing of urllib3's about the
    unverified connection (a paragraph on stderr per host otherwise)."""
    code = (
        "from morgan_like.index.upstream import Upstream\n"
        f"assert Upstream({https_url!r}, retries=0).get({https_url!r}).content == b'ok'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_TRUSTED_HOST="127.0.0.1")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Unverified HTTPS" not in done.stderr and "Warning" not in done.stderr
