"""A project page as upstream sent it, before it is parsed: what a replay check compares.

``Upstream`` fetches a page into a ``PageBody`` (on a ``304``, the page cache's
record of it, without its body), and parses it only when a resolution asks for
the page.  Two bodies with the same ``digest`` parse to the same files, so a
kept plan whose pages all have the digests they had is checked without
parsing any.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import ProjectPage, parse_json_page
from morgan_like.errors import UpstreamError
from morgan_like.index.httputil import decode_text, header_int, media_type, redact_url

# The digest recorded for a project upstream answered 404 or 410 for.
PAGE_GONE = "gone"


@dataclass(frozen=True)
class PageBody:
    """A project page as upstream sent it, or (``body`` None) as the page cache kept it
    when upstream answered ``304``."""

    name: str
    url: str  # asked for: the page cache's key
    page_url: str  # where it was found, redirects followed: its links are relative to it
    content_type: str
    body_sha256: str
    serial: str | None  # X-PyPI-Last-Serial
    body: bytes | None = None

    @property
    def digest(self) -> str:
        """sha256 of all that a parse of the page reads: where it was found (relative
        links), its type and charset, and its body; two pages with the same digest
        parse to the same files."""
        seen = f"{self.page_url}\n{self.content_type}\n{self.body_sha256}"
        return hashlib.sha256(seen.encode("utf-8", "surrogateescape")).hexdigest()


def parse_page(fetched: PageBody, body: bytes) -> ProjectPage:
    """``body`` (the bytes ``fetched`` was taken of) as a ProjectPage: PEP 691 JSON when
    its type says so (or, with no usable type, it looks like JSON), else PEP 503 HTML."""
    media, charset = media_type(fetched.content_type)
    is_json = media.endswith("+json") or media == "application/json"
    if not is_json and "html" not in media:
        is_json = body.lstrip()[:1] == b"{"  # no/odd Content-Type: sniff
    try:
        if is_json:
            page = parse_json_page(fetched.name, body, fetched.page_url)
        else:
            text = decode_text(body, charset)
            page = parse_html_page(fetched.name, text, fetched.page_url)
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamError(
            f"GET {redact_url(fetched.url)}: unreadable project page: {exc}"
        ) from exc
    if page.last_serial is None:
        page.last_serial = header_int(fetched.serial)
    return page
