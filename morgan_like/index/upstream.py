"""The one HTTP client: a pooled, retrying, thread-safe client for the upstream index.

Everything that talks to the network goes through ``Upstream`` so that proxies,
CA bundles, credentials, retries and byte accounting behave the same way
everywhere, and the same way pip would behave on this machine.  Requests go out
on urllib3 (transport.py sends them as pip's requests session would).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

from packaging.utils import canonicalize_name

from morgan_like import __version__
from morgan_like.dists.links import (
    ACCEPT_HEADER,
    ProjectPage,
    parse_root_names,
)
from morgan_like.errors import BodyError, LimitExceeded, ProjectNotFound, RangeError, UpstreamError
from morgan_like.index import dns
from morgan_like.index.hosts import HostSettings
from morgan_like.index.httputil import (
    decode_text,
    header_int,
    media_type,
    parse_content_range,
    redact_url,
    split_userinfo,
)
from morgan_like.index.limits import Deadline, Limits, iter_file_body, read_capped, wire_bytes
from morgan_like.index.pagebody import PAGE_GONE, PageBody, parse_page
from morgan_like.index.pagecache import CachedPage, PageCache
from morgan_like.index.pipconfig import pip_config_value
from morgan_like.index.redirects import RedirectGuard
from morgan_like.index.transport import Response, Transport, TransportError, describe

USER_AGENT = f"morgan-like/{__version__}"
# Distribution files must arrive exactly as stored: a server that gzips them would
# change what is read (and byte ranges).
IDENTITY = {"Accept-Encoding": "identity"}
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_AFTER_CAP = 30.0


class UpstreamHTTPError(UpstreamError):
    """An HTTP error status: its URL, status, the attempts made and the last response."""

    def __init__(self, url: str, status: int, reason: str = "", attempts: int = 1, response=None):
        self.url = url
        self.status = status
        self.attempts = attempts
        msg = f"GET {url}: HTTP {status}{' ' + reason if reason else ''}"
        if attempts > 1:
            msg += f" (gave up after {attempts} attempts)"
        self.response = response
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0])


# ------------------------------------------------------------------ client


class Upstream:
    """A thread-safe client for one upstream index (and the files it links to)."""

    def __init__(
        self,
        index_url: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.25,
        pool_size: int = 64,
        cert: str | None = None,
        limits: Limits | None = None,
        options: Mapping[str, str] | None = None,
        pages: PageCache | None = None,
        on_warning: Callable[[str], None] | None = None,
        cross_host_redirects: bool | None = None,
    ) -> None:
        """``limits`` (or ``options``, the [mirror] section they are read from) bound bodies;
        ``pages`` keeps project pages between runs, revalidated with conditional requests.
        ``on_warning`` hears what the user should know (a redirect to another host, once
        per host); ``cross_host_redirects`` False refuses those redirects (None: the
        options' ``cross-host-redirects``, followed by default).  ``pool_size``: the
        connections kept per host, enough for a run's page fetches and downloads (32
        threads each) side by side, and the most pages a check asks for at once
        (``check_page``: a kept plan's pages, all wanted before anything else)."""
        self.pages = pages
        # With a page cache: the digest of each page parsed this run (page_digest), and
        # the pages a check fetched that no parse has taken yet (check_page).
        self._digests: dict[str, str] | None = {} if pages is not None else None
        self._checked: dict[str, PageBody] = {}
        self.pool_size = pool_size
        self.redirects = RedirectGuard.from_options(options, cross_host_redirects, on_warning)
        clean, creds = split_userinfo(index_url)
        self.limits = limits or Limits.from_options(options or {})
        self.index_url = clean if clean.endswith("/") else clean + "/"
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self._lock = threading.Lock()
        self._bytes = 0
        # Project pages sent (not 304), and those without ETag or Last-Modified: a
        # page cache cannot revalidate those, so every run fetches them whole.
        self._pages_sent = 0
        self._pages_unvalidated = 0
        self.hosts = HostSettings(clean, creds, cert)
        client_cert = pip_config_value("client-cert")
        # Each new connection looks its host up: a burst of 32 would flood the resolver.
        dns.install()
        # No urllib3 Retry: we retry ourselves so each attempt's bytes count once.
        self.transport = Transport(
            pool_size=pool_size,
            headers={
                "User-Agent": USER_AGENT,
                # Only encodings limits.py inflates itself, piece by bounded piece.
                "Accept-Encoding": "gzip, deflate",
                "Accept": "*/*",
                "Connection": "keep-alive",
            },
            guard=self.redirects,
            client_cert=client_cert or None,
        )

    # -- accounting

    @property
    def bytes_fetched(self) -> int:
        with self._lock:
            return self._bytes

    def _count(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    @property
    def pages_without_validators(self) -> tuple[int, int]:
        """(project pages sent without ETag or Last-Modified, project pages sent)."""
        with self._lock:
            return self._pages_unvalidated, self._pages_sent

    def _count_page(self, validated: bool) -> None:
        with self._lock:
            self._pages_sent += 1
            self._pages_unvalidated += not validated

    def _watch(self, response: Response) -> None:
        """Count a streamed body when the caller closes the response (``with`` does)."""
        response.on_close = lambda: self._count(wire_bytes(response))

    # -- requests

    def get(
        self,
        url: str,
        *,
        headers: dict | None = None,
        stream: bool = False,
        limit: int | None = None,
        deadline: Deadline | None = None,
        data: bytes | None = None,
    ) -> Response:
        """GET (a POST of ``data``, for XML-RPC) with retries on connection errors, timeouts,
        5xx and 429.

        Other error statuses raise UpstreamHTTPError.
        A streamed response's bytes are counted when it is closed.  Otherwise the
        decoded body is read here, at most ``limit`` bytes (default: the page cap),
        and every attempt shares one ``deadline`` (default: the floor plus what
        arrived at the minimum rate); past either, LimitExceeded, never retried.
        """
        hdrs = dict(headers or {})
        if stream and not any(k.lower() == "accept-encoding" for k in hdrs):
            hdrs.update(IDENTITY)
        shown = redact_url(url)
        if deadline is None:
            deadline = self.limits.deadline()
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            deadline.check(shown)
            # No single socket read may wait past the deadline either.
            read_timeout = max(0.05, min(self.timeout, deadline.remaining()))
            try:
                response = self.transport.request(
                    "GET" if data is None else "POST",
                    url,
                    body=data,
                    headers=hdrs,
                    timeout=(self.timeout, read_timeout),
                    auth=self.hosts.auth_for(url),
                    verify=self.hosts.verify_for(url),
                    proxies=self.hosts.proxies_for(url),
                )
            except TransportError as exc:
                self._give_up_or_wait(exc, shown, attempt, attempts)
                continue
            status = response.status_code
            if status in _RETRY_STATUSES:
                retry_after = response.headers.get("Retry-After")
                response.close()
                if attempt == attempts:
                    raise UpstreamHTTPError(shown, status, response.reason, attempts, response)
                self._sleep(attempt, retry_after)
                continue
            if status >= 400:
                response.close()
                raise UpstreamHTTPError(shown, status, response.reason, attempt, response)
            if stream:
                self._watch(response)
                return response
            try:
                body = read_capped(response, shown, limit or self.limits.page_bytes, deadline)
            except BodyError as exc:
                self._done(response)
                self._give_up_or_wait(exc, shown, attempt, attempts)
                continue
            except LimitExceeded:
                self._done(response)
                raise
            response.content = body
            response.consumed = True
            self._done(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _done(self, response: Response) -> None:
        self._count(wire_bytes(response))
        response.close()

    def _give_up_or_wait(self, exc: Exception, shown: str, attempt: int, attempts: int) -> None:
        """After a transport failure: raise on the last attempt, else back off."""
        if attempt == attempts:
            if isinstance(exc, BodyError):
                raise BodyError(f"{exc} (gave up after {attempts} attempts)") from None
            raise UpstreamError(
                f"GET {shown}: {describe(exc)} (gave up after {attempts} attempts)"
            ) from exc
        self._sleep(attempt, None)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        seconds = header_int(retry_after)
        if seconds is not None:
            delay = max(delay, min(float(seconds), _RETRY_AFTER_CAP))
        time.sleep(delay)

    def iter_file(
        self,
        url: str,
        chunk_size: int,
        *,
        size: int | None = None,
        deadline: Deadline | None = None,
    ) -> Generator[bytes, None, None]:
        """A file's bytes as stored (never decoded), in chunks of what has arrived.

        ``size`` is what the index says: a Content-Length that disagrees, or a body
        that grows past it, is refused at once (LimitExceeded); a short body is a
        BodyError ("truncated: got N of M bytes").  ``deadline`` may be shared by
        the caller's retries.  Callers outside this package never see a urllib3
        exception (the tree and the downloader do not import it).
        """
        shown = redact_url(url)
        deadline = deadline or self.limits.deadline(size)
        with self.get(url, stream=True, deadline=deadline) as response:
            yield from iter_file_body(response, shown, size, deadline, chunk_size)

    def fetch_bytes(self, url: str, *, limit: int | None = None) -> bytes:
        """A whole small file (``.metadata``: at most ``limit``, default the metadata cap)."""
        return self.get(url, headers=IDENTITY, limit=limit or self.limits.metadata_bytes).content

    def fetch_range(
        self, url: str, start: int | None, end: int | None
    ) -> tuple[bytes, int | None, bool]:
        """Bytes ``start..end`` (inclusive), or the last ``end`` bytes when start is None.

        Returns (body, total size, partial).  A server that ignores Range answers
        200 with the whole file: that body is returned with partial=False so the
        caller never has to download it again.
        """
        if start is None:
            if end is None:
                raise ValueError("fetch_range needs start or end")
            spec = f"bytes=-{end}"
        else:
            spec = f"bytes={start}-{'' if end is None else end}"
        wanted = end if start is None else (None if end is None else end - start + 1)
        try:
            # A server that ignores Range sends the whole file: only a small one is kept.
            response = self.get(
                url,
                headers={"Range": spec, **IDENTITY},
                limit=max(wanted or 0, self.limits.metadata_bytes),
            )
        except LimitExceeded as exc:
            if exc.timed_out:
                raise
            raise RangeError(
                f"GET {redact_url(url)}: asked for {spec}, got a larger answer (Range ignored?)"
            ) from None
        body = response.content
        if response.status_code == 206:
            parsed = parse_content_range(response.headers.get("Content-Range"))
            if parsed is None:
                raise RangeError(f"GET {redact_url(url)}: 206 without a usable Content-Range")
            first, last, total = parsed
            if (start is not None and first != start) or len(body) != last - first + 1:
                raise RangeError(
                    f"GET {redact_url(url)}: asked for {spec}, got {len(body)} bytes "
                    f"labelled {response.headers.get('Content-Range')}"
                )
            return body, total, True
        return body, len(body), False

    def fetch_page(self, name: str) -> PageBody:
        """The project's page as upstream serves it now: asked for with the kept page's
        validators, so a ``304`` costs no body (and its body is not even read here)."""
        url = f"{self.index_url}{canonicalize_name(name)}/"
        cached = self.pages.get(url) if self.pages is not None else None
        return self._fetch_page(name, url, cached)

    def _fetch_page(self, name: str, url: str, cached: CachedPage | None) -> PageBody:
        headers = {"Accept": ACCEPT_HEADER, **(cached.conditional_headers() if cached else {})}
        try:
            response = self.get(url, headers=headers)
        except UpstreamHTTPError as exc:
            if exc.status in (404, 410):
                raise ProjectNotFound(name, redact_url(self.index_url)) from None
            raise
        serial = response.headers.get("X-PyPI-Last-Serial")
        if response.status_code == 304 and cached is not None:
            return PageBody(name, url, response.url, cached.content_type, cached.sha256, serial)
        content_type = response.headers.get("Content-Type", "")
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        self._count_page(bool(etag or modified))
        body = response.content
        if self.pages is not None:
            sha = self.pages.put(url, etag, modified, content_type, body)
        else:
            sha = hashlib.sha256(body).hexdigest()
        return PageBody(name, url, response.url, content_type, sha, serial, body)

    def check_page(self, name: str) -> str:
        """The digest (``PageBody.digest``) of the project's page as upstream serves it now.

        The page is kept for the parse a resolution may ask for next (``project_page``),
        so a check followed by a resolution asks upstream for each page once.
        """
        fetched = self.fetch_page(name)
        with self._lock:
            self._checked[fetched.url] = fetched
        return fetched.digest

    def project_page(self, name: str) -> ProjectPage:
        """The project's files, from PEP 691 JSON when offered, else PEP 503 HTML.

        With a page cache, the digest of what was parsed is kept for the run
        (``page_digest``): what a kept plan compares the next run's pages with.
        """
        url = f"{self.index_url}{canonicalize_name(name)}/"
        with self._lock:
            fetched = self._checked.pop(url, None)
        try:
            if fetched is None:
                fetched = self.fetch_page(name)
        except ProjectNotFound:
            self._record(name, PAGE_GONE)
            raise
        body = fetched.body
        if body is None and self.pages is not None:  # a 304: the body is the kept one
            body = self.pages.body(url, fetched.body_sha256)
        if body is None:  # replaced or lost since it was revalidated: ask for it whole
            fetched = self._fetch_page(name, url, None)
            body = fetched.body or b""
        page = parse_page(fetched, body)
        self._record(name, fetched.digest)
        return page

    def _record(self, name: str, digest: str) -> None:
        if self._digests is not None:
            with self._lock:
                self._digests[canonicalize_name(name)] = digest

    def page_digest(self, name: str) -> str | None:
        """The digest of the page ``project_page`` returned for ``name`` this run
        (``PAGE_GONE`` for a project upstream did not have); None when it returned none,
        or there is no page cache."""
        with self._lock:
            return None if self._digests is None else self._digests.get(canonicalize_name(name))

    def pages_gone(self) -> list[str]:
        """The projects ``project_page`` found missing upstream this run."""
        with self._lock:
            return sorted(n for n, d in (self._digests or {}).items() if d == PAGE_GONE)

    def project_names(self) -> list[str]:
        """Every project the index lists (its root page): only to suggest a name to a user
        who misspelt one, so it is fetched only then."""
        response = self.get(self.index_url, headers={"Accept": ACCEPT_HEADER})
        media, charset = media_type(response.headers.get("Content-Type", ""))
        body = response.content
        if media.endswith("+json") or body.lstrip()[:1] == b"{":
            return parse_root_names(body)
        return parse_root_names(decode_text(body, charset))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
