"""One HTTP request as pip's requests session would send it, on urllib3 directly.

A sync makes one request per page and per file, so the client's own CPU per
request counts: requests' per-call work (settings merged, cookies, hooks) costs
more than urllib3's request itself.  So requests is off the request path, and
this module keeps what it did for us: default headers, Basic auth (the URL's own
userinfo first), the proxy per URL (pip's, else the environment's minus
no_proxy, chosen by hosts.py), the TLS context per CA bundle and client
certificate (tls.py), and redirects as requests follows them (at most 30; 301
and 302 and 303 become GETs; Authorization dropped on the way to another host;
every hop shown to the RedirectGuard first, so a refused one is never followed).
No cookies are kept: no index pip reads needs them.

Bodies are never read here: the caller reads ``raw`` within its caps and
deadline (limits.py) and closes the response, which hands the connection back.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast
from urllib.parse import urljoin

import urllib3
from urllib3._collections import HTTPHeaderDict  # where urllib3 1.26 and 2 both keep it
from urllib3.exceptions import LocationValueError, NewConnectionError
from urllib3.response import HTTPResponse
from urllib3.util import Timeout

from morgan_like.errors import UpstreamError
from morgan_like.index.envrules import prepend_scheme_if_needed, select_proxy
from morgan_like.index.httputil import redact_url, split_userinfo
from morgan_like.index.redirects import RedirectGuard, drops_auth, method_after
from morgan_like.index.tls import Contexts

MAX_REDIRECTS = 30  # requests' limit
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")
_DRAIN_MAX = 64 * 1024

# Failures of one attempt: the caller retries these (a connection refused, reset or
# timed out, a TLS handshake refused, a proxy that failed).
TransportError = (urllib3.exceptions.HTTPError, OSError)


class Response:
    """What a request returned: status, headers, final URL, and the unread body (``raw``)."""

    __slots__ = (
        "raw",
        "url",
        "status_code",
        "reason",
        "headers",
        "content",
        "consumed",
        "on_close",
    )

    def __init__(self, raw: HTTPResponse, url: str) -> None:
        self.raw = raw
        self.url = url
        self.status_code: int = raw.status
        self.reason: str = raw.reason or ""
        self.headers = raw.headers  # case-insensitive
        self.content = b""  # the body, once the caller has read it within its caps
        self.consumed = False
        # Called once, before the first close (a streamed body's bytes are counted then).
        self.on_close: Callable[[], None] | None = None

    def iter_content(self, chunk_size: int = 1) -> Iterator[bytes]:
        """The decoded body in pieces (callers that need caps use limits.py instead)."""
        yield from self.raw.stream(chunk_size, decode_content=True)

    def close(self) -> None:
        """A body read to its end leaves its connection to the pool; one cut short closes it."""
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()
        if not self.consumed:
            self.raw.close()
        self.raw.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def basic_auth(user: str, password: str) -> str:
    """The Authorization value requests sends for (user, password): latin-1 when it can."""
    raw = f"{user}:{password}"
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:
        data = raw.encode("utf-8")
    return "Basic " + base64.b64encode(data).decode("ascii")


class Transport:
    """Pooled connections per (proxy, TLS settings); thread-safe."""

    def __init__(
        self,
        *,
        pool_size: int,
        headers: Mapping[str, str],
        guard: RedirectGuard,
        client_cert: str | None = None,
    ) -> None:
        self.headers = dict(headers)
        self.guard = guard
        self.client_cert = client_cert
        self._pool_size = pool_size
        self._contexts = Contexts()
        self._managers: dict[tuple[str | None, str | bool | None], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
        auth: tuple[str, str] | None,
        verify: str | bool,
        proxies: Mapping[str, str] | None,
    ) -> Response:
        """Send, following redirects; the last response's body is left unread.

        Raises a TransportError member for a failed attempt, UpstreamError for what no
        retry can change (a refused redirect, too many, a URL urllib3 cannot parse).
        """
        sent = self._headers(headers)
        url, userinfo = split_userinfo(url)
        auth = userinfo if userinfo and any(userinfo) else auth
        if auth is not None:
            sent["Authorization"] = basic_auth(*auth)
        limit = Timeout(connect=timeout[0], read=timeout[1])
        for _hop in range(MAX_REDIRECTS + 1):
            # Each hop picks its proxy from the same settings, as requests does.
            # Plain http needs no TLS settings: a CA bundle is loaded (or found missing)
            # only for https, as requests did.
            tls = verify if url[:6].lower() == "https:" else None
            manager = self._manager(proxy_for(url, proxies), tls)
            try:
                raw = manager.urlopen(
                    method,
                    url.partition("#")[0],
                    body=body,
                    headers=sent,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=False,
                    timeout=limit,
                )
            except LocationValueError as exc:  # no retry changes a URL or a proxy setting
                raise UpstreamError(f"{method} {redact_url(url)}: {exc}") from None
            location = raw.headers.get("Location")
            if raw.status not in _REDIRECTS or location is None:
                return Response(cast(HTTPResponse, raw), url)  # what every pool returns
            target = urljoin(url, _native(location))
            try:
                self.guard.check(url, target)
            finally:
                _discard(raw)
            method = method_after(raw.status, method)
            if method == "GET" and body is not None and raw.status not in (307, 308):
                body = None
                for name in _BODY_HEADERS:
                    sent.pop(name, None)
            if "Authorization" in sent and drops_auth(url, target):
                del sent["Authorization"]
            url = split_userinfo(target)[0]
        raise UpstreamError(f"{method} {redact_url(url)}: more than {MAX_REDIRECTS} redirects")

    def _headers(self, headers: Mapping[str, str]) -> HTTPHeaderDict:
        sent = HTTPHeaderDict(self.headers)
        for name, value in headers.items():
            sent[name] = value  # replaces a default of the same name, whatever its case
        return sent

    def _manager(self, proxy: str | None, verify: str | bool | None) -> urllib3.PoolManager:
        key = (proxy, verify)
        manager = self._managers.get(key)
        if manager is not None:
            return manager
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = self._managers[key] = self._new_manager(proxy, verify)
            return manager

    def _new_manager(self, proxy: str | None, verify: str | bool | None) -> urllib3.PoolManager:
        """``verify`` None: for plain http URLs, no TLS context."""
        kwargs: dict[str, Any] = {
            "num_pools": self._pool_size,
            "maxsize": self._pool_size,
            "block": False,
        }
        if verify is not None:
            try:
                kwargs["ssl_context"] = self._contexts.get(verify, self.client_cert)
            except OSError as exc:
                shown = "certifi's bundle" if verify is True else str(verify)
                if self.client_cert:
                    shown += f", client certificate {self.client_cert}"
                raise UpstreamError(f"cannot load the TLS settings ({shown}): {exc}") from None
            kwargs["cert_reqs"] = "CERT_NONE" if verify is False else "CERT_REQUIRED"
        if verify is False:
            kwargs["assert_hostname"] = False
        if proxy is None:
            return urllib3.PoolManager(**kwargs)
        clean, creds = split_userinfo(proxy)
        proxy_headers = {}
        if creds and creds[0]:
            proxy_headers["Proxy-Authorization"] = basic_auth(*creds)
        if clean.lower().startswith("socks"):
            try:
                from urllib3.contrib.socks import SOCKSProxyManager
            except ImportError:
                raise UpstreamError(
                    f"proxy {redact_url(proxy)}: SOCKS needs PySocks (pip install pysocks)"
                ) from None
            user, password = creds or (None, None)
            return SOCKSProxyManager(proxy, username=user, password=password, **kwargs)
        return urllib3.ProxyManager(clean, proxy_headers=proxy_headers, **kwargs)

    def close(self) -> None:
        with self._lock:
            managers, self._managers = list(self._managers.values()), {}
        for manager in managers:
            manager.clear()


def _discard(raw: urllib3.BaseHTTPResponse) -> None:
    """Let a redirect's body go: a short one is read so that its connection serves the
    next hop; a long or unsized one closes the connection rather than be waited for."""
    length = raw.headers.get("Content-Length", "")
    if length.isdigit() and int(length) <= _DRAIN_MAX:
        raw.drain_conn()
    else:
        raw.close()
    raw.release_conn()


def proxy_for(url: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy for ``url`` from a requests-style dict ("https", "all://host", ...)."""
    if not proxies:
        return None
    proxy = select_proxy(url, proxies)
    return prepend_scheme_if_needed(proxy, "http") if proxy else None


def describe(exc: BaseException) -> str:
    """One failed attempt in words: "timed out", or the connection's failure by name."""
    if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(exc, NewConnectionError):
        return "timed out"
    if isinstance(exc, TimeoutError):  # the socket's own (socket.timeout)
        return "timed out"
    return f"connection failed ({exc.__class__.__name__}: {exc})"


def _native(location: str) -> str:
    """A Location header as requests reads it: latin-1 bytes that are really UTF-8."""
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location
