"""What the client sends on urllib3 as pip's requests session sent it (index/transport.py):
proxies (pip's, the environment's, no_proxy), redirects (method, Authorization, the hop
limit), client certificates."""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from morgan_like.errors import UpstreamError
from morgan_like.index.redirects import drops_auth, method_after
from morgan_like.index.upstream import Upstream


@dataclass
class Seen:
    """What a local server was asked: (method, request target, headers, body) each time."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    port: int = 0


def _serve(answer, tls: ssl.SSLContext | None = None) -> Iterator[Seen]:  # noqa: ANN001
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.requests.append((self.command, self.path, dict(self.headers.items()), body))
            status, headers, reply = answer(self, seen)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = _any  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    seen.port = httpd.server_address[1]
    seen.url = f"{'https' if tls else 'http'}://127.0.0.1:{seen.port}"
    yield seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def proxy() -> Iterator[Seen]:
    """A forward proxy that answers every request itself, naming what it was asked for."""
    yield from _serve(lambda handler, seen: (200, {}, b"via proxy " + handler.path.encode()))


@pytest.fixture
def origin() -> Iterator[Seen]:
    yield from _serve(lambda handler, seen: (200, {}, b"direct"))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_pip_proxy_with_credentials(clean_pip_env, monkeypatch, proxy) -> None:
    monkeypatch.setenv("PIP_PROXY", f"http://bob:pa%40ss@127.0.0.1:{proxy.port}")
    with Upstream("http://u:p@index.invalid/simple/", retries=0) as up:
        body = up.fetch_bytes("http://index.invalid/f.whl")
    assert body == b"via proxy http://index.invalid/f.whl"  # no userinfo in the target
    method, target, headers, _ = proxy.requests[0]
    assert (method, target) == ("GET", "http://index.invalid/f.whl")
    assert headers["Proxy-Authorization"] == _basic("bob", "pa@ss")
    assert headers["Authorization"] == _basic("u", "p")


def test_pip_proxy_without_a_scheme_is_http(clean_pip_env, monkeypatch, proxy) -> None:
    monkeypatch.setenv("PIP_PROXY", f"127.0.0.1:{proxy.port}")
    with Upstream("http://index.invalid/simple/", retries=0) as up:
        assert up.fetch_bytes("http://files.invalid/f").startswith(b"via proxy")
    assert "Proxy-Authorization" not in proxy.requests[0][2]


def test_environment_proxy_and_no_proxy(clean_pip_env, monkeypatch, proxy, origin) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "localhost")
    with Upstream("http://index.invalid/simple/", retries=0) as up:
        assert up.fetch_bytes(origin.url + "/f").startswith(b"via proxy")
        # no_proxy names this host: straight to it.
        direct = origin.url.replace("127.0.0.1", "localhost")
        assert up.fetch_bytes(direct + "/f") == b"direct"
    assert [r[1] for r in proxy.requests] == [origin.url + "/f"]
    assert [r[1] for r in origin.requests] == ["/f"]


def test_pip_proxy_wins_over_no_proxy_as_with_requests(clean_pip_env, monkeypatch, proxy):
    monkeypatch.setenv("PIP_PROXY", proxy.url)
    monkeypatch.setenv("no_proxy", "*")
    with Upstream("http://index.invalid/simple/", retries=0) as up:
        assert up.fetch_bytes("http://elsewhere.invalid/f").startswith(b"via proxy")


def _redirecting(hops: dict[str, tuple[int, str]]):  # noqa: ANN202
    def answer(handler: BaseHTTPRequestHandler, seen: Seen) -> tuple[int, dict, bytes]:
        path = handler.path
        if path in hops:
            status, location = hops[path]
            return status, {"Location": location.format(port=seen.port)}, b""
        if path.startswith("/loop/"):
            return 302, {"Location": f"/loop/{int(path[6:]) + 1}"}, b""
        return 200, {}, f"{handler.command} {path}".encode()

    return answer


@pytest.fixture
def redirector() -> Iterator[Seen]:
    hops = {
        "/rpc": (303, "/rpc-result"),
        "/keep": (307, "/kept"),
        "/same": (302, "/landed"),
        "/away": (302, "http://localhost:{port}/landed"),
    }
    yield from _serve(_redirecting(hops))


def test_a_303_turns_a_post_into_a_get_without_its_body(clean_pip_env, redirector) -> None:
    with Upstream(redirector.url + "/simple/", retries=0) as up:
        response = up.get(
            redirector.url + "/rpc", headers={"Content-Type": "text/xml"}, data=b"<x/>"
        )
    assert response.content == b"GET /rpc-result"
    method, _, headers, body = redirector.requests[1]
    assert method == "GET" and body == b"" and "Content-Type" not in headers
    assert "Content-Length" not in headers


def test_a_307_keeps_the_method_and_the_body(clean_pip_env, redirector) -> None:
    with Upstream(redirector.url + "/simple/", retries=0) as up:
        response = up.get(redirector.url + "/keep", data=b"<x/>")
    assert response.content == b"POST /kept"
    assert redirector.requests[1][3] == b"<x/>"


def test_authorization_follows_a_redirect_on_the_same_host_only(clean_pip_env, redirector):
    host = redirector.url.removeprefix("http://")
    with Upstream(f"http://u:p@{host}/simple/", retries=0) as up:
        assert up.fetch_bytes(redirector.url + "/same") == b"GET /landed"
        assert up.fetch_bytes(redirector.url + "/away") == b"GET /landed"
        assert up.redirects.hosts == ["localhost"]
    sent = [(r[1], r[2].get("Authorization")) for r in redirector.requests]
    auth = _basic("u", "p")
    assert sent == [("/same", auth), ("/landed", auth), ("/away", auth), ("/landed", None)]


def test_endless_redirects_are_one_clear_error(clean_pip_env, redirector) -> None:
    with (
        Upstream(redirector.url + "/simple/", retries=0) as up,
        pytest.raises(UpstreamError, match="more than 30 redirects"),
    ):
        up.fetch_bytes(redirector.url + "/loop/0")
    assert len(redirector.requests) == 31


def test_redirect_rules_match_requests() -> None:
    assert method_after(303, "POST") == "GET" and method_after(302, "POST") == "GET"
    assert method_after(301, "POST") == "GET" and method_after(307, "POST") == "POST"
    assert method_after(303, "HEAD") == "HEAD" and method_after(308, "POST") == "POST"
    assert not drops_auth("http://a/x", "https://a/y")  # upgrade on standard ports
    assert not drops_auth("https://a:443/x", "https://a/y")
    assert drops_auth("https://a/x", "http://a/y")  # downgrade
    assert drops_auth("http://a:8080/x", "http://a:8081/y")
    assert drops_auth("http://a/x", "http://b/x")


@pytest.fixture
def mutual_tls(cert: tuple[Path, Path]) -> Iterator[Seen]:
    """An HTTPS server that asks for a client certificate signed by its own (self-signed) one."""
    certfile, keyfile = cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(str(certfile))
    yield from _serve(lambda handler, seen: (200, {}, b"hello"), tls=context)


def test_client_certificate_from_pip_config(
    clean_pip_env, monkeypatch, mutual_tls, cert, tmp_path
) -> None:
    certfile, keyfile = cert
    both = tmp_path / "client.pem"
    both.write_bytes(certfile.read_bytes() + keyfile.read_bytes())
    with (
        Upstream(mutual_tls.url + "/simple/", cert=str(certfile), retries=0) as up,
        pytest.raises(UpstreamError),
    ):
        up.fetch_bytes(mutual_tls.url + "/f")  # no client certificate: refused
    monkeypatch.setenv("PIP_CLIENT_CERT", str(both))
    with Upstream(mutual_tls.url + "/simple/", cert=str(certfile), retries=0) as up:
        for _ in range(3):
            assert up.fetch_bytes(mutual_tls.url + "/f") == b"hello"


def test_a_url_no_retry_can_fix_is_one_attempt(clean_pip_env, monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("morgan_like.index.upstream.time.sleep", slept.append)
    with (
        Upstream("http://index.invalid/simple/", retries=3) as up,
        pytest.raises(UpstreamError) as info,
    ):
        up.fetch_bytes("ftp://files.invalid/f.whl")
    assert "ftp" in str(info.value) and "attempts" not in str(info.value)
    assert slept == []  # not retried


def test_plain_http_needs_no_ca_bundle(clean_pip_env, monkeypatch, origin) -> None:
    monkeypatch.setenv("PIP_CERT", "/nonexistent/bundle.pem")  # only https would read it
    with Upstream(origin.url + "/simple/", retries=0) as up:
        assert up.fetch_bytes(origin.url + "/f") == b"direct"


def test_a_missing_client_certificate_is_named(clean_pip_env, monkeypatch, cert) -> None:
    monkeypatch.setenv("PIP_CLIENT_CERT", "/nonexistent/client.pem")
    with (
        Upstream("https://127.0.0.1:9/simple/", cert=str(cert[0]), retries=0) as up,
        pytest.raises(UpstreamError, match="client certificate /nonexistent/client.pem"),
    ):
        up.fetch_bytes("https://127.0.0.1:9/f")
