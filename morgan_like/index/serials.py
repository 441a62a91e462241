"""Fetching an upstream's serial list, from whichever source it offers.

``auto`` tries, in order: the PEP 691 root index (standard, one request, what
PyPI and bandersnatch 8 serve), another mirror's ``local.json`` next to its
``simple/`` (shadowmire trees and ours), then XML-RPC at the host's ``/pypi``
(Warehouse's older API).  The first that answers with a usable list wins, and
the result says which one it was.
"""

from __future__ import annotations

import xmlrpc.client
from urllib.parse import urlsplit, urlunsplit

from morgan_like.dists.links import ACCEPT_HEADER
from morgan_like.dists.serials import (
    SerialList,
    names_only,
    parse_local_json,
    parse_root_serials,
    parse_xmlrpc_serials,
)
from morgan_like.errors import UpstreamError
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


def from_simple(upstream: Upstream) -> SerialList:
    response = upstream.get(upstream.index_url, headers={"Accept": ACCEPT_HEADER})
    return parse_root_serials(response.content, redact_url(upstream.index_url))


def from_local_json(upstream: Upstream) -> SerialList:
    root = _mirror_root(upstream.index_url)
    body = upstream.get(root + "local.json").content
    try:
        serial: bytes | None = upstream.get(root + "local.db.serial").content
    except UpstreamHTTPError:
        serial = None
    return parse_local_json(body, serial, redact_url(root + "local.json"))


def from_xmlrpc(upstream: Upstream) -> SerialList:
    parts = urlsplit(upstream.index_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/pypi", "", ""))
    request = xmlrpc.client.dumps((), "list_packages_with_serial").encode("utf-8")
    response = upstream.get(url, headers={"Content-Type": "text/xml"}, data=request)
    try:
        (result,), _method = xmlrpc.client.loads(response.content)
    except (xmlrpc.client.Fault, xmlrpc.client.ResponseError, ValueError) as exc:
        raise UpstreamError(f"POST {redact_url(url)}: {exc}") from None
    return parse_xmlrpc_serials(result, redact_url(url))


def from_names(upstream: Upstream) -> SerialList:
    names = upstream.project_names()
    if not names:
        raise UpstreamError(f"{redact_url(upstream.index_url)}: the root index lists no project")
    return names_only(names)


_FETCHERS = {
    "simple": from_simple,
    "local-json": from_local_json,
    "xmlrpc": from_xmlrpc,
    NAMES: from_names,
}


def fetch_serials(upstream: Upstream, source: str = "auto") -> SerialList:
    """The serial list from ``source``, or from the first source that works (``auto``)."""
    if source != "auto":
        return _FETCHERS[source](upstream)
    failures = []
    for name in (*SOURCES, NAMES):
        try:
            return _FETCHERS[name](upstream)
        except UpstreamError as exc:
            failures.append(f"  {name}: {exc}")
    raise UpstreamError(
        f"no serial list at {redact_url(upstream.index_url)}:\n" + "\n".join(failures)
    )
