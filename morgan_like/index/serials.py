"""Fetching an upstream's serial list, from whichever source it offers.

``auto`` tries, in order: the PEP 691 root index (standard, one request, what
PyPI and bandersnatch 8 serve), another mirror's ``local.json`` next to its
``simple/`` (shadowmire trees and ours), then XML-RPC at the host's ``/pypi``
(Warehouse's older API), then the root index's names alone (``names``: no
serials, every page read each run).  The first that answers with a usable list
wins, and the result says which one it was; a sync keeps that in its tree state
and asks it first next time (``remembered``), so a nightly run against an upstream
without serials costs one root request, not four.  The root index is fetched at
most once per call: ``simple`` and ``names`` read the same response.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from morgan_like.dists.links import ACCEPT_HEADER, parse_root_names
from morgan_like.dists.serials import (
    SerialList,
    names_only,
    parse_local_json,
    parse_root_serials,
    parse_xmlrpc_serials,
)
from morgan_like.errors import UpstreamError
from morgan_like.index.httputil import decode_text, media_type
from morgan_like.index.upstream import Upstream, UpstreamHTTPError, redact_url

SOURCES = ("simple", "local-json", "xmlrpc")
# Last resort of ``auto`` (and a choice of its own): the root index's names without
# serials, as a plain PEP 503 index or a proxy answering only HTML gives them.  Every
# listed project's page is then fetched on every run.
NAMES = "names"


def _mirror_root(index_url: str) -> str:
    """``https://m/simple/`` -> ``https://m/``: where a mirror keeps local.json."""
    base = index_url.rstrip("/")
    if base.endswith("/simple"):
        base = base[: -len("/simple")]
    return base + "/"


class _Root:
    """The root index, fetched on first use and kept for the other sources of one call."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._body: tuple[bytes, bool, str | None] | None = None

    def get(self) -> tuple[bytes, bool, str | None]:
        """(body, is JSON, charset)."""
        if self._body is None:
            upstream = self.upstream
            response = upstream.get(upstream.index_url, headers={"Accept": ACCEPT_HEADER})
            media, charset = media_type(response.headers.get("Content-Type", ""))
            body = response.content
            is_json = media.endswith("+json") or body.lstrip()[:1] == b"{"
            self._body = (body, is_json, charset)
        return self._body


def from_simple(upstream: Upstream, root: _Root | None = None) -> SerialList:
    body, is_json, _charset = (root or _Root(upstream)).get()
    origin = redact_url(upstream.index_url)
    if not is_json:
        raise UpstreamError(f"{origin}: the root index answers only in HTML (no serials)")
    return parse_root_serials(body, origin)


def from_local_json(upstream: Upstream, _index: _Root | None = None) -> SerialList:
    root = _mirror_root(upstream.index_url)
    body = upstream.get(root + "local.json").content
    try:
        serial: bytes | None = upstream.get(root + "local.db.serial").content
    except UpstreamHTTPError:
        serial = None
    return parse_local_json(body, serial, redact_url(root + "local.json"))


def from_xmlrpc(upstream: Upstream, _index: _Root | None = None) -> SerialList:
    import xmlrpc.client  # Warehouse's older API: imported by the runs that ask it

    parts = urlsplit(upstream.index_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/pypi", "", ""))
    request = xmlrpc.client.dumps((), "list_packages_with_serial").encode("utf-8")
    response = upstream.get(url, headers={"Content-Type": "text/xml"}, data=request)
    try:
        (result,), _method = xmlrpc.client.loads(response.content)
    except (xmlrpc.client.Fault, xmlrpc.client.ResponseError, ValueError) as exc:
        raise UpstreamError(f"POST {redact_url(url)}: {exc}") from None
    return parse_xmlrpc_serials(result, redact_url(url))


def from_names(upstream: Upstream, root: _Root | None = None) -> SerialList:
    body, is_json, charset = (root or _Root(upstream)).get()
    names = parse_root_names(body if is_json else decode_text(body, charset))
    if not names:
        raise UpstreamError(f"{redact_url(upstream.index_url)}: the root index lists no project")
    return names_only(names)


_FETCHERS: dict[str, Callable[[Upstream, _Root | None], SerialList]] = {
    "simple": from_simple,
    "local-json": from_local_json,
    "xmlrpc": from_xmlrpc,
    NAMES: from_names,
}


def auto_order(remembered: str | None) -> tuple[str, ...]:
    """The sources ``auto`` asks, in order: the remembered one first (after ``simple``
    when it is ``names``: both read the one root response, and serials win)."""
    order = (*SOURCES, NAMES)
    if remembered not in order:
        return order
    first = ("simple", NAMES) if remembered == NAMES else (remembered,)
    return (*first, *(s for s in order if s not in first))


def fetch_serials(
    upstream: Upstream, source: str = "auto", remembered: str | None = None
) -> SerialList:
    """The serial list from ``source``, or from the first source that works (``auto``,
    trying ``remembered`` first: the source that worked last time)."""
    root = _Root(upstream)
    if source != "auto":
        return _FETCHERS[source](upstream, root)
    failures = []
    for name in auto_order(remembered):
        try:
            return _FETCHERS[name](upstream, root)
        except UpstreamError as exc:
            failures.append(f"  {name}: {exc}")
    raise UpstreamError(
        f"no serial list at {redact_url(upstream.index_url)}:\n" + "\n".join(failures)
    )
