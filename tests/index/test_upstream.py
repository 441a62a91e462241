"""Upstream: content negotiation, retries, errors, pip config and auth, against a local server."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from morgan_like.config.options import DEFAULT_INDEX_URL
from morgan_like.dists.links import JSON_CONTENT_TYPE
from morgan_like.errors import ProjectNotFound, UpstreamError
from morgan_like.index import upstream as upstream_mod
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.index.upstream import (
    Upstream,
    UpstreamHTTPError,
    redact_url,
)

from ..distbuilder import make_wheel
from ..fakeindex import FakeIndex

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Server:
    """A scripted local HTTP server: ``routes[path]`` answers (status, headers, body)."""

    routes: dict[str, Callable[[BaseHTTPRequestHandler], Reply] | Reply] = field(
        default_factory=dict
    )
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state.requests.append((self.path, dict(self.headers.items())))
            route = state.routes.get(self.path)
            if route is None:
                status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
            else:
                status, headers, body = route(self) if callable(route) else route
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    Handler.disable_nagle_algorithm = True  # headers and body go out as separate writes
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


JSON_PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1", "_last-serial": 7},
        "name": "foo-bar",
        "versions": ["1.0"],
        "files": [
            {
                "filename": "foo_bar-1.0-py3-none-any.whl",
                "url": "../../files/foo_bar-1.0-py3-none-any.whl",
                "hashes": {"sha256": "ab" * 32},
                "core-metadata": {"sha256": "cd" * 32},
                "size": 10,
            }
        ],
    }
).encode()

HTML_PAGE = (
    b'<html><body><a href="../../files/foo_bar-1.0.tar.gz#sha256='
    + b"ef" * 32
    + b'" data-requires-python="&gt;=3.8">foo_bar-1.0.tar.gz</a></body></html>'
)


def negotiate(handler: BaseHTTPRequestHandler) -> Reply:
    accept = handler.headers.get("Accept", "")
    if JSON_CONTENT_TYPE in accept:
        return 200, {"Content-Type": JSON_CONTENT_TYPE}, JSON_PAGE
    return 200, {"Content-Type": "text/html"}, HTML_PAGE


def make(server: Server, **kwargs) -> Upstream:
    kwargs.setdefault("backoff", 0.001)
    return Upstream(server.url + "/simple", **kwargs)


def test_index_url_normalized_and_user_agent(server: Server) -> None:
    server.routes["/simple/foo-bar/"] = negotiate
    with make(server) as up:
        assert up.index_url == server.url + "/simple/"
        up.project_page("Foo_Bar")
    headers = server.requests[0][1]
    assert headers["User-Agent"].startswith("morgan-like/")


def test_json_preferred(server: Server) -> None:
    server.routes["/simple/foo-bar/"] = negotiate
    with make(server) as up:
        page = up.project_page("Foo.Bar")
    assert server.requests[0][0] == "/simple/foo-bar/"
    assert server.requests[0][1]["Accept"].startswith(JSON_CONTENT_TYPE)
    assert page.name == "foo-bar"
    assert page.last_serial == 7
    (file,) = page.files
    assert file.url == server.url + "/files/foo_bar-1.0-py3-none-any.whl"
    assert file.metadata_sha256 == "cd" * 32


def test_html_fallback(server: Server) -> None:
    server.routes["/simple/foo-bar/"] = (
        200,
        {"Content-Type": "text/html; charset=utf-8", "X-PyPI-Last-Serial": "42"},
        HTML_PAGE,
    )
    with make(server) as up:
        page = up.project_page("foo-bar")
    (file,) = page.files
    assert file.filename == "foo_bar-1.0.tar.gz"
    assert file.sha256 == "ef" * 32
    assert file.requires_python == ">=3.8"
    assert file.url == server.url + "/files/foo_bar-1.0.tar.gz"
    assert page.last_serial == 42


def test_redirect_followed_links_resolve_against_final_url(server: Server) -> None:
    server.routes["/simple/foo-bar/"] = (301, {"Location": "/other/foo-bar/"}, b"")
    server.routes["/other/foo-bar/"] = negotiate
    with make(server) as up:
        page = up.project_page("foo-bar")
    assert page.files[0].url == server.url + "/files/foo_bar-1.0-py3-none-any.whl"


@pytest.mark.parametrize("status", [404, 410])
def test_missing_project(server: Server, status: int) -> None:
    server.routes["/simple/nope/"] = (status, {}, b"gone")
    with make(server) as up, pytest.raises(ProjectNotFound) as info:
        up.project_page("nope")
    assert info.value.project == "nope"
    assert info.value.index_url == server.url + "/simple/"
    assert "nope" in str(info.value)


def flaky(failures: int, status: int = 503) -> Callable[[BaseHTTPRequestHandler], Reply]:
    count = {"n": 0}

    def route(handler: BaseHTTPRequestHandler) -> Reply:
        count["n"] += 1
        if count["n"] <= failures:
            return status, {"Content-Type": "text/plain"}, b"busy"
        return 200, {"Content-Type": "application/octet-stream"}, b"payload"

    return route


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retries_then_success(server: Server, status: int) -> None:
    server.routes["/f"] = flaky(2, status)
    with make(server, retries=3) as up:
        assert up.fetch_bytes(server.url + "/f") == b"payload"
    assert server.hits("/f") == 3


def test_gives_up_with_clear_error(server: Server) -> None:
    server.routes["/f"] = flaky(100)
    with make(server, retries=2) as up, pytest.raises(UpstreamError) as info:
        up.fetch_bytes(server.url + "/f")
    assert server.hits("/f") == 3
    message = str(info.value)
    assert server.url + "/f" in message and "503" in message and "3 attempts" in message
    assert isinstance(info.value, UpstreamHTTPError)
    assert info.value.status == 503


def test_client_error_not_retried(server: Server) -> None:
    server.routes["/f"] = (403, {}, b"no")
    with make(server, retries=3) as up, pytest.raises(UpstreamHTTPError) as info:
        up.get(server.url + "/f")
    assert server.hits("/f") == 1
    assert info.value.status == 403 and "403" in str(info.value)


def test_retry_after_is_honoured_but_capped(server: Server, monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(upstream_mod.time, "sleep", slept.append)
    calls = {"n": 0}

    def route(handler: BaseHTTPRequestHandler) -> Reply:
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"Retry-After": "3"}, b""
        return 200, {}, b"ok"

    server.routes["/f"] = route
    with make(server) as up:
        assert up.fetch_bytes(server.url + "/f") == b"ok"
    assert slept and slept[0] >= 3


def test_timeout_retried_then_reported(server: Server) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> Reply:
        time.sleep(0.5)
        return 200, {}, b"late"

    server.routes["/slow"] = slow
    with make(server, timeout=0.1, retries=1) as up, pytest.raises(UpstreamError) as info:
        up.fetch_bytes(server.url + "/slow")
    assert "timed out" in str(info.value) and "/slow" in str(info.value)
    assert server.hits("/slow") == 2


def test_connection_refused_reported(server: Server) -> None:
    with make(server, retries=1) as up, pytest.raises(UpstreamError) as info:
        up.fetch_bytes("http://127.0.0.1:9/nothing")
    assert "127.0.0.1:9/nothing" in str(info.value)


def test_bytes_fetched_counts_bodies_thread_safely(server: Server) -> None:
    server.routes["/f"] = (200, {}, b"x" * 1000)
    with make(server) as up:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: up.fetch_bytes(server.url + "/f"), range(40)))
        assert up.bytes_fetched == 40_000
        with up.get(server.url + "/f", stream=True) as response:
            assert sum(len(c) for c in response.iter_content(100)) == 1000
        assert up.bytes_fetched == 41_000


def test_stream_asks_for_identity_encoding(server: Server) -> None:
    server.routes["/f"] = (200, {}, b"data")
    with make(server) as up, up.get(server.url + "/f", stream=True) as response:
        response.content  # noqa: B018
    assert server.requests[0][1]["Accept-Encoding"] == "identity"


def ranged(data: bytes) -> Callable[[BaseHTTPRequestHandler], Reply]:
    def route(handler: BaseHTTPRequestHandler) -> Reply:
        spec = handler.headers.get("Range", "")[len("bytes=") :]
        first, _, last = spec.partition("-")
        if not first:
            start, end = max(0, len(data) - int(last)), len(data) - 1
        else:
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
        headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
        return 206, headers, data[start : end + 1]

    return route


def test_fetch_range(server: Server) -> None:
    data = bytes(range(256)) * 4
    server.routes["/r"] = ranged(data)
    server.routes["/plain"] = (200, {}, data)
    with make(server) as up:
        assert up.fetch_range(server.url + "/r", 10, 19) == (data[10:20], 1024, True)
        assert up.fetch_range(server.url + "/r", None, 100) == (data[-100:], 1024, True)
        assert up.fetch_range(server.url + "/r", 1000, None) == (data[1000:], 1024, True)
        # A server that ignores Range: the whole body, once, not partial.
        assert up.fetch_range(server.url + "/plain", None, 100) == (data, 1024, False)
        assert up.bytes_fetched == 10 + 100 + 24 + 1024
    assert server.requests[0][1]["Range"] == "bytes=10-19"
    assert server.requests[1][1]["Range"] == "bytes=-100"
    assert server.requests[2][1]["Range"] == "bytes=1000-"


def test_url_credentials_sent_to_index_host_only(server: Server) -> None:
    server.routes["/simple/foo-bar/"] = negotiate
    server.routes["/files/x.whl"] = (200, {}, b"w")
    host = server.url.removeprefix("http://")
    with Upstream(f"http://al%40ice:s3cr%3At@{host}/simple/") as up:
        assert up.index_url == server.url + "/simple/"  # never keeps the password
        up.project_page("foo-bar")
        up.fetch_bytes(server.url + "/files/x.whl")
        # Same address under another host name: not the index host, no credentials.
        other = server.url.replace("127.0.0.1", "localhost")
        server.routes["/files/y.whl"] = (200, {}, b"y")
        up.fetch_bytes(other + "/files/y.whl")
    expected = "Basic " + base64.b64encode(b"al@ice:s3cr:t").decode()
    assert server.requests[0][1].get("Authorization") == expected
    assert server.requests[1][1].get("Authorization") == expected
    assert "Authorization" not in server.requests[2][1]


def test_netrc_used_when_no_url_credentials(server: Server, tmp_path, monkeypatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login bob password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server.routes["/f"] = (200, {}, b"ok")
    with make(server) as up:
        up.fetch_bytes(server.url + "/f")
    expected = "Basic " + base64.b64encode(b"bob:hunter2").decode()
    assert server.requests[0][1].get("Authorization") == expected


def test_redact_url() -> None:
    assert redact_url("https://u:p@h/x/") == "https://u:****@h/x/"
    assert redact_url("https://h/x/") == "https://h/x/"


# ------------------------------------------------------------- pip config


def test_default_index_url(clean_pip_env, monkeypatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    assert configured_index_url() == DEFAULT_INDEX_URL


def test_pip_index_url_env_wins(clean_pip_env, monkeypatch) -> None:
    conf = clean_pip_env / "pip.conf"
    conf.write_text("[global]\nindex-url = https://conf.example/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple/")
    assert configured_index_url() == "https://env.example/simple/"


@pytest.mark.parametrize("section", ["global", "install", "download"])
def test_pip_config_file(clean_pip_env, monkeypatch, section: str) -> None:
    conf = clean_pip_env / "pip.conf"
    conf.write_text(f"[{section}]\nindex_url =\n  https://conf.example/simple\n  https://extra\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert configured_index_url() == "https://conf.example/simple"


def test_pip_config_precedence(clean_pip_env, monkeypatch) -> None:
    user = clean_pip_env / "home" / ".config" / "pip" / "pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[global]\nindex-url = https://user.example/\n")
    site = clean_pip_env / "venv" / "pip.conf"
    site.parent.mkdir(parents=True)
    glob = clean_pip_env / "etc-xdg" / "pip" / "pip.conf"
    glob.parent.mkdir(parents=True)
    glob.write_text("[global]\nindex-url = https://global.example/\n")
    assert configured_index_url() == "https://user.example/"
    site.write_text("[global]\nindex-url = https://site.example/\n")
    assert configured_index_url() == "https://site.example/"
    # A command section beats [global] even from a lower-priority file.
    glob.write_text("[install]\nindex-url = https://install.example/\n")
    assert configured_index_url() == "https://install.example/"
    # PIP_CONFIG_FILE=/dev/null disables every file.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    assert configured_index_url() == DEFAULT_INDEX_URL


def test_cert_precedence(clean_pip_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    assert Upstream("https://x/simple").hosts.verify == "/env/bundle.pem"
    monkeypatch.setenv("PIP_CERT", "/pip/cert.pem")
    assert Upstream("https://x/simple").hosts.verify == "/pip/cert.pem"
    assert Upstream("https://x/simple", cert="/arg.pem").hosts.verify == "/arg.pem"


def test_trusted_host_skips_tls_verification(clean_pip_env, monkeypatch) -> None:
    conf = clean_pip_env / "pip.conf"
    conf.write_text("[global]\ntrusted-host =\n    mirror.test\n    other.test:8443\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    up = Upstream("https://mirror.test/simple/")
    assert up.hosts.verify_for("https://mirror.test/simple/x/") is False
    assert up.hosts.verify_for("https://other.test:8443/f.whl") is False
    assert up.hosts.verify_for("https://other.test/f.whl") == up.hosts.verify != False  # noqa: E712
    assert up.hosts.verify_for("https://elsewhere.test/simple/") == up.hosts.verify


# ------------------------------------------------------ against the shared FakeIndex


def test_fake_index_json_and_html_only(tmp_path) -> None:
    wheel = make_wheel(tmp_path, "Some.Thing", "2.0", requires_python=">=3.8")
    for json_enabled in (True, False):
        with FakeIndex(json=json_enabled) as index:
            index.add(wheel)
            with Upstream(index.url) as up:
                page = up.project_page("some_thing")
        (file,) = page.files
        assert file.filename == wheel.name and file.requires_python == ">=3.8"
        assert file.core_metadata and file.size == wheel.stat().st_size
        assert page.last_serial == 1


def test_truncated_body_is_retried(fake_index, tmp_path) -> None:
    wheel = make_wheel(tmp_path, "cut", "1.0", pad_bytes=100_000)
    url = fake_index.add(wheel)
    fake_index.truncate(wheel.name, times=1)
    with Upstream(fake_index.url, backoff=0.001) as up:
        assert up.fetch_bytes(url) == wheel.read_bytes()
        assert wheel.stat().st_size < up.bytes_fetched < 2 * wheel.stat().st_size
