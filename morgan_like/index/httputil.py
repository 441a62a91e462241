"""URLs and headers as the HTTP client reads them: credentials, media types, ranges.

Plain functions, kept apart from ``upstream.py`` so that the client holds only
the request logic.
"""

from __future__ import annotations

from email.message import Message
from urllib.parse import unquote, urlsplit, urlunsplit


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """Strip ``user:pass@`` from a URL; return the clean URL and the credentials."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, (unquote(user), unquote(password))


def host_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.netloc.rpartition("@")[2]).lower()


def hostname(url: str) -> str:
    """The URL's host, lower case, without port or credentials ("" if it has none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def redact_url(url: str) -> str:
    """A URL safe to print: the password is replaced by ``****``; a user without a
    password (``https://TOKEN@host/``, how tokens are often given) is itself replaced,
    as pip does."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:****" if colon else "****"
    return urlunsplit(
        (parts.scheme, f"{shown}@{hostport}", parts.path, parts.query, parts.fragment)
    )


def media_type(content_type: str) -> tuple[str, str | None]:
    msg = Message()
    msg["content-type"] = content_type or "application/octet-stream"
    return msg.get_content_type(), msg.get_param("charset")  # type: ignore[return-value]


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/total`` → (a, b, total or None)."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, last = span.partition("-")
    try:
        return int(first), int(last), (int(total) if total.strip() not in ("", "*") else None)
    except ValueError:
        return None


def header_int(value: str | None) -> int | None:
    """A header's whole number, or None: ASCII digits only (``int`` also takes "²" or "١")."""
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def decode_text(body: bytes, charset: str | None) -> str:
    """A page's text in its declared charset (UTF-8 when none, or one Python does not know)."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
