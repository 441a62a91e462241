#!/usr/bin/env python3
"""Index server for a morgan_like tree: standard library only, CPython 3.6 to 3.13.

Copy the tree to the target network and run, with whatever python3 is there::

    python3 server.py -i /srv/bundle -H 0.0.0.0 -p 8080

then point clients at it::

    pip:  pip install --index-url http://HOST:8080/simple/ PACKAGE   (or pip.conf: index-url = ...)
    uv:   [[index]] url = "http://HOST:8080/simple/"  default = true   (uv.toml)

Without ``-i`` the server serves the directory that contains this file when it has
a ``simple/`` directory (a copied tree), else the current directory.

What it serves (and nothing else):

* ``/simple/`` and ``/simple/<project>/``: the tree's static ``index.html`` /
  ``index.json`` pages, chosen by PEP 691 content negotiation (``Accept`` q-values
  or ``?format=``); ``Vary: Accept``; 301 to the canonical URL for a missing
  trailing slash or a non-normalized name; 406 when nothing acceptable exists.
* ``/<project>/``: the same project page, for morgan-style ``index-url = http://HOST:PORT/``.
* ``/packages/...``: distribution files and their PEP 658 ``.metadata`` files,
  with HEAD, single byte ranges (``If-Range``), strong ETags, 304s and immutable caching.
* ``/`` redirects to ``/simple/``.  ``morgan.ini``, ``manifest.json``, ``server.py``,
  hidden paths and anything outside ``simple/`` and ``packages/`` are never served.

Robustness: one I/O thread owns idle connections and reads request heads without
blocking; complete requests go to a bounded pool of worker threads (``--threads``),
so clients that stall or dribble bytes cannot starve the others.  Request line,
header size and header count are capped (414/431).  Idle connections and stalled
transfers are closed after ``--timeout`` seconds.  SIGINT/SIGTERM stop gracefully.

Security options (all off by default):

* ``--certfile CERT --keyfile KEY``: serve HTTPS (stdlib ``ssl``, TLS >= 1.2).
* ``--auth-file FILE``: require HTTP basic auth.  FILE has one ``user:hash`` line
  per user, where hash is ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``;
  create lines with ``python3 server.py --hash-password USER >> FILE`` (prompts,
  or reads the password from stdin when it is not a terminal).  Passwords are
  compared in constant time.  Use it with TLS: basic auth sends passwords in clear.

Integrity: ``python3 server.py --verify [-i TREE]`` checks every file against
``manifest.json`` (missing, corrupt, unexpected files) and every link of the index
pages, offline; exit status 0 when the tree is intact, 1 otherwise.
"""

import argparse
import collections
import email.utils
import errno
import getpass
import gzip
import hashlib
import hmac
import io
import json
import os
import posixpath
import queue
import re
import selectors
import signal
import socket
import stat
import sys
import threading
import time
import traceback
from html.parser import HTMLParser
from urllib.parse import unquote, unquote_to_bytes

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None

__version__ = "1"

SERVER_NAME = "morgan_like-server/%s Python/%d.%d" % (
    __version__,
    sys.version_info[0],
    sys.version_info[1],
)

# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
#: the types we offer, in tie-break order (JSON > v1+html > text/html)
OFFERED = (JSON_V1, HTML_V1, TEXT_HTML)
CONTENT_TYPE = {JSON_V1: JSON_V1, HTML_V1: HTML_V1, TEXT_HTML: "text/html; charset=utf-8"}
TYPE_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
RECV_SIZE = 64 * 1024
SMALL_FILE = 64 * 1024  # files up to this size go out in one write with the headers
GZIP_MIN_SIZE = 512
PAGE_CACHE_BYTES = 64 * 1024 * 1024  # index pages (and their gzip) kept in memory

FILE_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"

# never served, wherever they are (the tree's own files and working state)
FORBIDDEN_NAMES = frozenset(["morgan.ini", "manifest.json", "server.py", "_server.py"])
FORBIDDEN_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".ini", ".part", ".tmp", ".lock", ".pyc")
METADATA_ATTRS = ("core-metadata", "dist-info-metadata", "data-dist-info-metadata")

REASONS = {
    200: "OK",
    206: "Partial Content",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    412: "Precondition Failed",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def normalize(name):
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def http_date(ts):
    """RFC 7231 IMF-fixdate for a POSIX timestamp."""
    t = time.gmtime(ts)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday],
        t.tm_mday,
        _MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def parse_http_date(value):
    """POSIX timestamp (int) of an HTTP date, or None."""
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return int(email.utils.mktime_tz(parsed))
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


# --------------------------------------------------------------------------------------
# Content negotiation (PEP 691)
# --------------------------------------------------------------------------------------


def parse_accept(header):
    """``[(media_range, q), ...]`` of an Accept header; aliases mapped to the v1 types."""
    ranges = []
    for item in header.split(","):
        parts = item.split(";")
        media = parts[0].strip().lower()
        if not media:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not q >= 0.0:  # NaN
                    q = 0.0
                q = min(q, 1.0)
        ranges.append((TYPE_ALIASES.get(media, media), q))
    return ranges


_NEGOTIATED = {}


def negotiate_cached(accept, available):
    """negotiate() memoized on the (few) distinct Accept headers clients send."""
    key = (accept, tuple(available))
    try:
        return _NEGOTIATED[key]
    except KeyError:
        pass
    result = negotiate(accept, available)
    if len(_NEGOTIATED) > 256:
        _NEGOTIATED.clear()
    _NEGOTIATED[key] = result
    return result


def negotiate(accept, available=OFFERED):
    """The media type to answer with, or None (406).

    Order in the header carries no meaning; the most specific matching range gives
    each offered type its q; q=0 excludes; ties prefer JSON > v1+html > text/html.
    No (or an empty) Accept header means ``text/html``.
    """
    if accept is None or not accept.strip():
        accept = TEXT_HTML
    ranges = parse_accept(accept)
    best, best_q = None, 0.0
    for offered in OFFERED:
        if offered not in available:
            continue
        major = offered.split("/", 1)[0] + "/*"
        spec, q = 0, 0.0
        for media, mq in ranges:
            if media == offered:
                s = 3
            elif media == major:
                s = 2
            elif media == "*/*":
                s = 1
            else:
                continue
            if s > spec or (s == spec and mq > q):
                spec, q = s, mq
        if q > best_q:
            best, best_q = offered, q
    return best


def format_override(query):
    """The value of ``?format=`` (percent-decoded, '+' kept), or None."""
    if not query:
        return None
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) == "format":
            value = unquote(value).strip().lower()
            return value or None
    return None


def accepts_gzip(header):
    if not header:
        return False
    for item in header.split(","):
        parts = item.split(";")
        coding = parts[0].strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


# --------------------------------------------------------------------------------------
# Request-target safety
# --------------------------------------------------------------------------------------


class BadPath(Exception):
    def __init__(self, status, reason):
        Exception.__init__(self, reason)
        self.status = status


_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def split_target(target):
    """Split a request target into (path, query); handles absolute-form targets."""
    if target.startswith(("http://", "https://", "HTTP://", "HTTPS://")):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    return path, query


def safe_segments(raw_path):
    """Decode a raw URL path into validated segments.

    Returns ``(segments, trailing_slash)``.  Raises BadPath (400) for traversal
    (``..`` plain or encoded), backslashes, NUL and control characters, leftover
    ``%`` after one decoding (double encoding), drive letters, ``:`` and empty
    segments, and BadPath (404) for hidden components.
    """
    if not raw_path.startswith("/"):
        raise BadPath(400, "request target must start with /")
    if "\\" in raw_path or _CONTROL.search(raw_path):
        raise BadPath(400, "invalid character in path")
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath(400, "path is not UTF-8")
    if "\\" in path or "%" in path or _CONTROL.search(path):
        raise BadPath(400, "invalid character in path")
    parts = path.split("/")[1:]
    trailing = False
    if parts and parts[-1] == "":
        parts.pop()
        trailing = True
    hidden = False
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPath(400, "invalid path segment")
        if ":" in part or _DRIVE.match(part):
            raise BadPath(400, "invalid path segment")
        if part.startswith("."):
            hidden = True
    if hidden:
        raise BadPath(404, "hidden path")
    return parts, trailing


def is_forbidden_name(name):
    lower = name.lower()
    return lower in FORBIDDEN_NAMES or lower.endswith(FORBIDDEN_SUFFIXES) or lower.startswith(".")


# --------------------------------------------------------------------------------------
# The tree: cached index pages and the manifest's hashes
# --------------------------------------------------------------------------------------

_HTML_METADATA_ATTR = re.compile(
    r"""\s+data-(?:core|dist-info)-metadata(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?""",
    re.IGNORECASE,
)


def strip_metadata(body, media):
    """A page without its PEP 658/714 metadata advertisements (for ``--no-metadata``)."""
    if media == JSON_V1:
        data = json.loads(body.decode("utf-8"))
        for entry in data.get("files", []) or []:
            if isinstance(entry, dict):
                for key in METADATA_ATTRS:
                    entry.pop(key, None)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _HTML_METADATA_ATTR.sub("", body.decode("utf-8")).encode("utf-8")


def gzip_bytes(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


class Page(object):
    """One cached index page representation (and its gzip encoding when worth it)."""

    __slots__ = ("key", "body", "gz", "etag", "last_modified", "mtime", "size")

    def __init__(self, key, body, etag, mtime):
        self.key = key
        self.body = body
        self.gz = gzip_bytes(body) if len(body) >= GZIP_MIN_SIZE else None
        self.etag = etag
        self.mtime = mtime
        self.last_modified = http_date(mtime)
        self.size = len(body) + (len(self.gz) if self.gz is not None else 0)


class Tree(object):
    """Read access to a tree: path containment, page cache, manifest hashes."""

    def __init__(self, root, no_metadata=False):
        self.root = os.path.realpath(root)
        self.no_metadata = no_metadata
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._pages = collections.OrderedDict()  # (path, media) -> Page, least recent first
        self._cached_bytes = 0
        self._cache_lock = threading.Lock()
        self._hashes = {}
        self._manifest_sig = None
        self._manifest_checked = 0.0
        self._manifest_lock = threading.Lock()
        self.load_manifest()

    # -- containment
    def contained(self, path):
        """True when the real path of ``path`` (root-joined) lies inside the tree.

        Fast path: lstat each component below the root; only a symlink among them
        needs the full realpath() comparison.
        """
        if not path.startswith(self._prefix):
            return False
        current = self.root
        for part in path[len(self._prefix) :].split(os.sep):
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                return False
            if stat.S_ISLNK(mode):
                return os.path.realpath(path).startswith(self._prefix)
        return True

    # -- pages
    def page(self, path, media, st):
        """The (cached) Page for file ``path`` (stat ``st``) as ``media``."""
        key = (path, media)
        sig = (st.st_mtime, st.st_size, st.st_ino)
        entry = self._pages.get(key)
        if entry is not None and entry.key == sig:
            try:
                self._pages.move_to_end(key)
            except KeyError:
                pass
            return entry
        with open(path, "rb") as f:
            body = f.read()
        if self.no_metadata:
            try:
                body = strip_metadata(body, media)
            except ValueError:
                pass
        etag = '"p%x-%x-%s%s"' % (
            int(st.st_mtime * 1e6),
            st.st_size,
            "j" if media == JSON_V1 else "h",
            "n" if self.no_metadata else "",
        )
        entry = Page(sig, body, etag, st.st_mtime)
        if entry.size > PAGE_CACHE_BYTES // 8:
            return entry  # too big to keep: read again next time
        with self._cache_lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._cached_bytes -= old.size
            self._pages[key] = entry
            self._cached_bytes += entry.size
            while self._cached_bytes > PAGE_CACHE_BYTES and self._pages:
                self._cached_bytes -= self._pages.popitem(last=False)[1].size
        return entry

    # -- manifest
    def load_manifest(self):
        """(Re)load the sha256 of every packages/ file from manifest.json, if present."""
        path = os.path.join(self.root, "manifest.json")
        try:
            st = os.stat(path)
        except OSError:
            self._hashes, self._manifest_sig = {}, None
            return
        sig = (st.st_mtime, st.st_size)
        if sig == self._manifest_sig:
            return
        hashes = {}
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            for rel, info in (data.get("files") or {}).items():
                if rel.startswith("packages/") and isinstance(info, dict):
                    sha, size = info.get("sha256"), info.get("size")
                    if isinstance(sha, str) and isinstance(size, int):
                        hashes[rel] = (size, sha.lower())
        except (OSError, ValueError, AttributeError):
            hashes = {}
        self._hashes, self._manifest_sig = hashes, sig

    def file_sha256(self, rel, size):
        """The manifest's sha256 of packages file ``rel`` when its size still matches."""
        now = time.time()
        if now - self._manifest_checked > 5.0 and self._manifest_lock.acquire(False):
            try:
                self._manifest_checked = now
                self.load_manifest()
            finally:
                self._manifest_lock.release()
        entry = self._hashes.get(rel)
        if entry is not None and entry[0] == size:
            return entry[1]
        return None


# --------------------------------------------------------------------------------------
# Basic auth (PBKDF2-SHA256)
# --------------------------------------------------------------------------------------

PBKDF2_ITERATIONS = 600000


def hash_password(password, iterations=PBKDF2_ITERATIONS, salt=None):
    """A ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` string."""
    if salt is None:
        salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, salt.hex(), digest.hex())


def check_password(password, encoded):
    """Constant-time check of ``password`` against a hash_password() string."""
    try:
        algo, iterations, salt, expected = encoded.split("$")
        if algo != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations)
        )
        return hmac.compare_digest(digest, bytes.fromhex(expected))
    except (ValueError, TypeError):
        return False


class Authenticator(object):
    """Basic auth against a password file; verified credentials are cached by HMAC."""

    def __init__(self, path):
        self.path = path
        self.users = {}
        with open(path, "r") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, sep, encoded = line.partition(":")
                if not sep or not encoded.startswith("pbkdf2_sha256$"):
                    raise ValueError("%s:%d: expected user:pbkdf2_sha256$..." % (path, lineno))
                self.users[user] = encoded
        if not self.users:
            raise ValueError("%s: no users" % path)
        self._dummy = hash_password("dummy", salt=b"0" * 16)
        self._key = os.urandom(32)
        self._ok = {}
        self._bad = {}
        self._lock = threading.Lock()

    def check(self, header):
        """The authenticated user name, or None."""
        if not header or not header[:6].lower() == "basic ":
            return None
        import base64
        import binascii

        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        token = hmac.new(self._key, decoded.encode("utf-8"), hashlib.sha256).digest()
        if token in self._ok:
            return user
        if token in self._bad:
            return None
        encoded = self.users.get(user)
        ok = check_password(password, encoded if encoded is not None else self._dummy)
        ok = ok and encoded is not None
        with self._lock:
            cache = self._ok if ok else self._bad
            if len(cache) > 10000:
                cache.clear()
            cache[token] = True
        return user if ok else None


# --------------------------------------------------------------------------------------
# HTTP: request heads
# --------------------------------------------------------------------------------------


class Request(object):
    __slots__ = ("method", "target", "version", "headers", "line", "keep_alive", "has_body")

    def __init__(self, method, target, version, headers, line):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.line = line
        tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in tokens
        else:
            self.keep_alive = "keep-alive" in tokens
        self.has_body = "transfer-encoding" in headers or headers.get(
            "content-length", "0"
        ) not in (
            "0",
            "",
        )


class HeadError(Exception):
    def __init__(self, status, reason):
        Exception.__init__(self, reason)
        self.status = status


_HEAD_END = re.compile(b"\r?\n\r?\n")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_METHOD = re.compile(r"^[A-Z]+$")


def parse_head(buf):
    """Parse one request head from the start of ``buf`` (a bytearray).

    Returns ``(request, consumed)``, or ``(None, 0)`` when more bytes are needed;
    raises HeadError (400, 414, 431, 505) for a bad or oversized head.
    """
    start = 0
    n = len(buf)
    while start < n and buf[start] in (10, 13):
        start += 1
    eol = buf.find(b"\n", start)
    if eol < 0:
        if n - start > MAX_REQUEST_LINE:
            raise HeadError(414, "request line too long")
        return None, 0
    if eol - start > MAX_REQUEST_LINE:
        raise HeadError(414, "request line too long")
    m = _HEAD_END.search(buf, eol - 1 if eol > start else start)
    if m is None:
        if n - start > MAX_HEADER_BYTES:
            raise HeadError(431, "request headers too large")
        if buf.count(b"\n", start) > MAX_HEADERS + 1:
            raise HeadError(431, "too many request headers")
        return None, 0
    if m.start() - start > MAX_HEADER_BYTES:
        raise HeadError(431, "request headers too large")
    lines = bytes(buf[start : m.start()]).decode("latin-1").split("\n")
    line = lines[0].rstrip("\r")
    parts = line.split(" ")
    if len(parts) != 3:
        raise HeadError(400, "malformed request line")
    method, target, version = parts
    if not version.startswith("HTTP/"):
        raise HeadError(400, "malformed request line")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HeadError(505, "unsupported HTTP version")
    if not _METHOD.match(method) or not target:
        raise HeadError(400, "malformed request line")
    if len(lines) - 1 > MAX_HEADERS:
        raise HeadError(431, "too many request headers")
    headers = {}
    for raw in lines[1:]:
        raw = raw.rstrip("\r")
        if not raw:
            continue
        if raw[0] in " \t":
            raise HeadError(400, "obsolete header folding")
        name, sep, value = raw.partition(":")
        if not sep or not _TOKEN.match(name):
            raise HeadError(400, "malformed header")
        name = name.lower()
        value = value.strip()
        if name in headers:
            if name in ("host", "content-length"):
                raise HeadError(400, "duplicate %s header" % name)
            headers[name] = headers[name] + ", " + value
        else:
            headers[name] = value
    if "content-length" in headers and not headers["content-length"].isdigit():
        raise HeadError(400, "bad Content-Length")
    return Request(method, target, version, headers, line), m.end()


# --------------------------------------------------------------------------------------
# HTTP: the request handler
# --------------------------------------------------------------------------------------


class Response(object):
    """What the handler decided; written by Handler.send()."""

    __slots__ = ("status", "headers", "body", "file", "offset", "length", "close", "user")

    def __init__(self, status, headers=None, body=b""):
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.file = None
        self.offset = 0
        self.length = len(body)
        self.close = False
        self.user = None


def text_response(status, message=None, headers=None):
    text = "%d %s\n" % (status, REASONS.get(status, ""))
    if message:
        text += message + "\n"
    hdrs = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-cache")]
    return Response(status, hdrs + (headers or []), text.encode("utf-8"))


class AccessLog(object):
    """Common / combined log format lines, one write per request."""

    def __init__(self, stream, combined=False):
        self.stream = stream
        self.combined = combined
        self.lock = threading.Lock()

    @staticmethod
    def _escape(value):
        return value.encode("ascii", "backslashreplace").decode("ascii").replace('"', '\\"')

    def log(self, client, user, line, status, size, referer="-", agent="-"):
        now = time.gmtime()
        stamp = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
            now.tm_mday,
            _MONTHS[now.tm_mon - 1],
            now.tm_year,
            now.tm_hour,
            now.tm_min,
            now.tm_sec,
        )
        entry = '%s - %s [%s] "%s" %d %s' % (
            client,
            self._escape(user or "-").replace(" ", "_") or "-",
            stamp,
            self._escape(line),
            status,
            size if size else "-",
        )
        if self.combined:
            entry += ' "%s" "%s"' % (self._escape(referer or "-"), self._escape(agent or "-"))
        with self.lock:
            try:
                self.stream.write(entry + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass


class Handler(object):
    """Routes a request to a Response and writes it."""

    def __init__(self, tree, auth=None, access_log=None):
        self.tree = tree
        self.auth = auth
        self.access_log = access_log
        self._date = (0, "")

    # -- entry point ------------------------------------------------------------------

    def handle(self, conn, req):
        """Answer ``req`` on ``conn``; True when the connection may be kept open."""
        try:
            resp = self.respond(req)
        except Exception:
            traceback.print_exc()
            resp = text_response(500)
            resp.close = True
        return self.send(conn, req, resp)

    def respond(self, req):
        if req.method not in ("GET", "HEAD"):
            resp = text_response(405, headers=[("Allow", "GET, HEAD")])
            resp.close = req.has_body
            return resp
        user = None
        if self.auth is not None:
            user = self.auth.check(req.headers.get("authorization"))
            if user is None:
                return text_response(
                    401,
                    "authentication required",
                    [("WWW-Authenticate", 'Basic realm="morgan_like", charset="UTF-8"')],
                )
        resp = self.route(req)
        resp.user = user
        if req.has_body:
            resp.close = True
        return resp

    # -- routing ----------------------------------------------------------------------

    def route(self, req):
        raw_path, query = split_target(req.target)
        try:
            parts, trailing = safe_segments(raw_path)
        except BadPath as exc:
            return text_response(exc.status, str(exc) if exc.status == 400 else None)
        suffix = "?" + query if query else ""
        n = len(parts)
        if n == 0:
            return redirect("/simple/" + suffix)
        top = parts[0]
        if top == "simple":
            if n == 1:
                if not trailing:
                    return redirect("/simple/" + suffix)
                return self.serve_page(req, ("simple",), query)
            if n == 2 and not trailing and parts[1] in ("index.html", "index.json"):
                return self.serve_page(req, ("simple",), query, fixed=parts[1])
            if n == 2:
                name = normalize(parts[1])
                if name != parts[1] or not trailing:
                    return redirect("/simple/%s/%s" % (name, suffix))
                return self.serve_page(req, ("simple", name), query)
            if n == 3 and not trailing and parts[2] in ("index.html", "index.json"):
                if normalize(parts[1]) != parts[1]:
                    return text_response(404)
                return self.serve_page(req, ("simple", parts[1]), query, fixed=parts[2])
            return text_response(404)
        if top == "packages":
            if n < 3 or trailing:
                return text_response(404)
            return self.serve_file(req, parts)
        if n == 1:
            # morgan-style index-url = http://host:port/ : /<project>/
            name = normalize(top)
            if not os.path.isdir(os.path.join(self.tree.root, "simple", name)):
                return text_response(404)
            if name != top or not trailing:
                return redirect("/%s/%s" % (name, suffix))
            return self.serve_page(req, ("simple", name), query)
        return text_response(404)

    # -- index pages --------------------------------------------------------------------

    def serve_page(self, req, dirparts, query, fixed=None):
        directory = os.path.join(self.tree.root, *dirparts)
        found = {}
        for media, name in ((JSON_V1, "index.json"), (TEXT_HTML, "index.html")):
            if fixed is not None and name != fixed:
                continue
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found[media] = (path, st)
        if not found:
            return text_response(404)
        if fixed is not None:
            media = JSON_V1 if fixed == "index.json" else TEXT_HTML
        else:
            available = list(found)
            if TEXT_HTML in found:
                available.append(HTML_V1)
            wanted = format_override(query)
            if wanted is not None:
                wanted = TYPE_ALIASES.get(wanted, wanted)
                media = wanted if wanted in available else None
            else:
                media = negotiate_cached(req.headers.get("accept"), available)
            if media is None:
                return text_response(
                    406,
                    "available: " + ", ".join(t for t in OFFERED if t in available),
                    [("Vary", "Accept")],
                )
        path, st = found[JSON_V1 if media == JSON_V1 else TEXT_HTML]
        if not self.tree.contained(path):
            return text_response(404)
        page = self.tree.page(path, JSON_V1 if media == JSON_V1 else TEXT_HTML, st)
        use_gzip = page.gz is not None and accepts_gzip(req.headers.get("accept-encoding"))
        etag = page.etag[:-1] + ('-gz"' if use_gzip else '"')
        headers = [
            ("Content-Type", CONTENT_TYPE[media]),
            ("Vary", "Accept, Accept-Encoding"),
            ("Cache-Control", PAGE_CACHE_CONTROL),
            ("ETag", etag),
            ("Last-Modified", page.last_modified),
        ]
        if not_modified(req, etag, page.mtime):
            return Response(304, headers[1:])
        body = page.gz if use_gzip else page.body
        if use_gzip:
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, headers, body)

    # -- files --------------------------------------------------------------------------

    def serve_file(self, req, parts):
        name = parts[-1]
        if is_forbidden_name(name) or any(is_forbidden_name(p) for p in parts[:-1]):
            return text_response(404)
        if self.tree.no_metadata and name.endswith(".metadata"):
            return text_response(404)
        path = os.path.join(self.tree.root, *parts)
        try:
            f = open(path, "rb")
        except (OSError, IOError):
            return text_response(404)
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not self.tree.contained(path):
                f.close()
                return text_response(404)
            size = st.st_size
            sha = self.tree.file_sha256("/".join(parts), size)
            if sha is not None:
                etag = '"sha256-%s"' % sha
            else:
                etag = '"f%x-%x"' % (int(st.st_mtime * 1e6), size)
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Accept-Ranges", "bytes"),
                ("Cache-Control", FILE_CACHE_CONTROL),
                ("ETag", etag),
                ("Last-Modified", http_date(st.st_mtime)),
            ]
            if not_modified(req, etag, st.st_mtime):
                f.close()
                return Response(304, headers[1:])
            status, offset, length = 200, 0, size
            rng = req.headers.get("range")
            if rng is not None and if_range_ok(req.headers.get("if-range"), etag, st.st_mtime):
                parsed = parse_range(rng, size)
                if parsed == "unsatisfiable":
                    f.close()
                    resp = text_response(416, headers=[("Content-Range", "bytes */%d" % size)])
                    return resp
                if parsed is not None:
                    offset, end = parsed
                    length = end - offset + 1
                    status = 206
                    headers.append(("Content-Range", "bytes %d-%d/%d" % (offset, end, size)))
            resp = Response(status, headers)
            resp.file, resp.offset, resp.length = f, offset, length
            return resp
        except Exception:
            f.close()
            raise

    # -- writing ------------------------------------------------------------------------

    def date(self):
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = (now, http_date(now))
            self._date = cached
        return cached[1]

    def send(self, conn, req, resp):
        """Write ``resp``; returns True when the connection may stay open.

        A large body is not written here: the head is sent, ``conn.transfer`` is set and
        the I/O thread streams the body without blocking (os.sendfile for files on plain
        TCP, chunked reads otherwise), so a client that stops reading holds no worker.
        """
        keep = req.keep_alive and not resp.close and not conn.eof
        head = ["HTTP/1.1 %d %s\r\n" % (resp.status, REASONS.get(resp.status, "Unknown"))]
        head.append("Date: %s\r\nServer: %s\r\n" % (self.date(), SERVER_NAME))
        for name, value in resp.headers:
            head.append("%s: %s\r\n" % (name, value))
        if resp.status != 304:
            head.append("Content-Length: %d\r\n" % resp.length)
        if not keep:
            head.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            head.append("Connection: keep-alive\r\n")
        head.append("\r\n")
        head = "".join(head).encode("latin-1")
        send_body = req.method != "HEAD" and resp.status != 304 and resp.length > 0
        sent = 0
        sock = conn.sock
        log = None
        if self.access_log is not None:
            h = req.headers
            log = [
                conn.client,
                resp.user,
                req.line,
                resp.status,
                0,
                h.get("referer", "-"),
                h.get("user-agent", "-"),
            ]
        handed_off = False
        try:
            if not send_body:
                sock.sendall(head)
            elif resp.file is None and len(resp.body) <= SMALL_FILE:
                sock.sendall(head + resp.body)
                sent = len(resp.body)
            elif resp.file is None:
                sock.sendall(head)
                conn.transfer = Transfer(None, memoryview(resp.body), 0, len(resp.body), keep, log)
                handed_off = True
            elif resp.length <= SMALL_FILE:
                resp.file.seek(resp.offset)
                data = resp.file.read(resp.length)
                if len(data) != resp.length:
                    raise IOError("file changed while serving")
                sock.sendall(head + data)
                sent = len(data)
            else:
                sock.sendall(head)
                conn.transfer = Transfer(resp.file, None, resp.offset, resp.length, keep, log)
                handed_off = True
        except (OSError, IOError, ValueError):
            keep = False
        finally:
            if resp.file is not None and not handed_off:
                resp.file.close()
        if handed_off:
            return keep
        if log is not None:
            log[4] = sent
            self.access_log.log(*log)
        return keep


class Transfer(object):
    """A response body the I/O thread is streaming: a file range or a buffer."""

    __slots__ = ("file", "data", "offset", "remaining", "keep", "log", "chunk", "want")

    def __init__(self, f, data, offset, remaining, keep, log):
        self.file = f
        self.data = data
        self.offset = offset
        self.remaining = remaining
        self.keep = keep
        self.log = log
        self.chunk = None  # a file chunk read but not yet fully written (no sendfile / TLS)
        self.want = selectors.EVENT_WRITE


HAVE_SENDFILE = hasattr(os, "sendfile")
TRANSFER_CHUNK = 4 * 1024 * 1024
TRANSFER_ROUNDS = 4  # writes per readiness event, so that one fast client cannot hog the loop
CHUNK = 256 * 1024  # read size when os.sendfile cannot be used
KEEPALIVE_LINGER = 0.005  # seconds an idle-pool worker waits for a connection's next request


def redirect(location):
    resp = text_response(301, headers=[("Location", location)])
    return resp


def not_modified(req, etag, mtime):
    """RFC 7232: If-None-Match wins over If-Modified-Since."""
    inm = req.headers.get("if-none-match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        tags = [t.strip() for t in inm.split(",")]
        bare = etag[2:] if etag.startswith("W/") else etag
        return any((t[2:] if t.startswith("W/") else t) == bare for t in tags)
    ims = req.headers.get("if-modified-since")
    if ims is not None:
        when = parse_http_date(ims)
        return when is not None and int(mtime) <= when
    return False


def if_range_ok(value, etag, mtime):
    """If-Range: the range applies only when the validator still matches (strongly)."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag
    when = parse_http_date(value)
    return when is not None and when == int(mtime)


def parse_range(value, size):
    """``(first, last)`` of a single byte range, "unsatisfiable", or None (serve all)."""
    value = value.strip()
    if not value.lower().startswith("bytes="):
        return None
    spec = value[6:].strip()
    if "," in spec:
        return None  # multiple ranges: answer 200 with the whole file
    first, sep, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not sep or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


# --------------------------------------------------------------------------------------
# The server: one I/O thread for idle connections, a bounded pool of workers
# --------------------------------------------------------------------------------------


class Connection(object):
    __slots__ = (
        "sock",
        "client",
        "buf",
        "deadline",
        "handshaking",
        "eof",
        "fileno",
        "plain",
        "transfer",
    )

    def __init__(self, sock, client, plain=True):
        self.sock = sock
        self.client = client
        self.buf = bytearray()
        self.deadline = 0.0
        self.handshaking = False
        self.eof = False
        self.fileno = sock.fileno()
        self.plain = plain  # plain TCP (not TLS): bodies can be streamed by the I/O thread
        self.transfer = None


_WANT_READ = (BlockingIOError, InterruptedError)
_WANT_WRITE = ()
_SSL_WANT_READ = ()
if ssl is not None:
    _SSL_WANT_READ = (ssl.SSLWantReadError,)
    _WANT_READ = _WANT_READ + _SSL_WANT_READ
    _WANT_WRITE = (ssl.SSLWantWriteError,)


class IndexServer(object):
    """Serve a tree.  ``serve_forever()`` runs the I/O loop; ``shutdown()`` stops it."""

    def __init__(
        self,
        root,
        host="127.0.0.1",
        port=8080,
        threads=32,
        timeout=30.0,
        no_metadata=False,
        certfile=None,
        keyfile=None,
        auth_file=None,
        access_log=None,
        log_format="common",
        max_connections=None,
    ):
        self.tree = Tree(root, no_metadata=no_metadata)
        self.threads = max(1, int(threads))
        self.timeout = float(timeout)
        self.ssl_context = None
        if certfile:
            if ssl is None:
                raise RuntimeError("this Python has no ssl module")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if hasattr(ssl, "TLSVersion"):  # 3.7+
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            else:
                ctx.options |= ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
            ctx.load_cert_chain(certfile, keyfile or None)
            self.ssl_context = ctx
        auth = Authenticator(auth_file) if auth_file else None
        self.handler = Handler(
            self.tree, auth, access_log and AccessLog(access_log, log_format == "combined")
        )
        if max_connections is None:
            max_connections = 1000
            try:
                import resource

                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                if soft > 0:
                    max_connections = max(16, min(max_connections, soft - 32 - self.threads))
            except (ImportError, ValueError, OSError):
                pass
        if os.name == "nt":
            max_connections = min(max_connections, 500)  # select() handles 512 sockets there
        self.max_connections = max_connections

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(1024)
            self.socket.setblocking(False)
        except Exception:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()[:2]
        self.scheme = "https" if self.ssl_context else "http"

        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._returned = queue.Queue()
        self._work = queue.Queue()
        self._idle = {}  # fileno -> Connection, owned by the I/O thread
        self._count_lock = threading.Lock()
        self._open = 0
        self._busy = 0  # requests queued or being answered
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._workers = []

    # -- control ------------------------------------------------------------------------

    def shutdown(self):
        """Stop accepting, finish requests in progress; safe from any thread or signal."""
        self._stopping.set()
        self._wake()

    def wakeup_fileno(self):
        """A non-blocking fd whose readability wakes the I/O loop (for signal.set_wakeup_fd)."""
        return self._wake_w.fileno()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (OSError, ValueError):
            pass

    def server_close(self):
        for s in (self.socket, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass

    # -- I/O loop -----------------------------------------------------------------------
    #
    # The I/O thread owns every connection that is idle, reading a request head, or
    # streaming a large body (Connection.transfer).  A connection with a complete
    # request head goes to the work queue; a worker answers it (and any pipelined
    # requests behind it) and hands it back through self._returned.

    def serve_forever(self, grace=10.0):
        """Run until shutdown(); then finish requests and transfers for up to ``grace`` s."""
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, name="worker-%d" % i)
            t.daemon = True
            t.start()
            self._workers.append(t)
        sel = self._selector
        sel.register(self.socket, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        listening = True
        drain_until = None
        next_sweep = time.monotonic() + 1.0
        try:
            while True:
                now = time.monotonic()
                if self._stopping.is_set():
                    if drain_until is None:
                        drain_until = now + grace
                        if listening:
                            sel.unregister(self.socket)
                            listening = False
                        for conn in list(self._idle.values()):
                            if conn.transfer is None:
                                self._close_idle(conn)
                    busy = self._busy or not self._returned.empty()
                    if now >= drain_until or not (busy or self._idle):
                        break
                for key, _mask in sel.select(0.2 if drain_until else 1.0):
                    data = key.data
                    if data == "listen":
                        self._accept()
                    elif data == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, InterruptedError, OSError):
                            pass
                    elif data.transfer is not None:
                        self._push(data)
                    else:
                        self._on_event(data)
                self._take_returned()
                if drain_until is None:
                    full = self._open >= self.max_connections
                    if full and listening:
                        sel.unregister(self.socket)
                        listening = False
                    elif not full and not listening:
                        sel.register(self.socket, selectors.EVENT_READ, "listen")
                        listening = True
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + 1.0
                    for conn in [c for c in self._idle.values() if c.deadline <= now]:
                        self._close_idle(conn)
        finally:
            self._stopping.set()
            for conn in list(self._idle.values()):
                self._close_idle(conn)
            for _ in self._workers:
                self._work.put(None)
            deadline = time.monotonic() + (
                1.0 if drain_until is None else max(0.0, drain_until - time.monotonic())
            )
            for t in self._workers:
                t.join(max(0.0, deadline - time.monotonic()))
            self._take_returned()
            sel.close()
            self.server_close()
            self._stopped.set()

    def _accept(self):
        for _ in range(256):
            if self._open >= self.max_connections:
                return
            try:
                sock, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.05)
                    return
                continue
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            if self.ssl_context is not None:
                try:
                    sock = self.ssl_context.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except (OSError, ValueError):
                    sock.close()
                    continue
            with self._count_lock:
                self._open += 1
            conn = Connection(sock, addr[0], plain=self.ssl_context is None)
            conn.handshaking = self.ssl_context is not None
            conn.deadline = time.monotonic() + self.timeout
            self._idle[conn.fileno] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _on_event(self, conn):
        if conn.handshaking:
            try:
                conn.sock.do_handshake()
            except _WANT_READ:
                self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
                return
            except _WANT_WRITE:
                self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
                return
            except (OSError, ValueError):
                self._close_idle(conn)
                return
            conn.handshaking = False
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        self._read(conn)

    def _read(self, conn):
        was_empty = not conn.buf
        try:
            while len(conn.buf) <= MAX_HEADER_BYTES + MAX_REQUEST_LINE:
                data = conn.sock.recv(RECV_SIZE)
                if not data:
                    conn.eof = True
                    break
                conn.buf += data
        except _WANT_READ:
            pass
        except _WANT_WRITE:
            pass
        except (OSError, ValueError):
            self._close_idle(conn)
            return
        if was_empty and conn.buf:
            conn.deadline = time.monotonic() + self.timeout
        self._dispatch(conn)

    def _dispatch(self, conn):
        """Hand ``conn`` to the workers if its buffer holds a complete request head."""
        try:
            req, consumed = parse_head(conn.buf)
        except HeadError as exc:
            self._reject(conn, exc.status, str(exc))
            return
        if req is not None:
            del conn.buf[:consumed]
            self._selector.unregister(conn.sock)
            del self._idle[conn.fileno]
            with self._count_lock:
                self._busy += 1
            self._work.put((conn, req))
        elif conn.eof:
            self._close_idle(conn)

    def _push(self, conn):
        """Stream more of ``conn.transfer`` without blocking."""
        t = conn.transfer
        want = selectors.EVENT_WRITE
        try:
            for _ in range(TRANSFER_ROUNDS):
                if t.remaining <= 0:
                    break
                if t.file is not None and conn.plain and HAVE_SENDFILE:
                    n = os.sendfile(
                        conn.fileno, t.file.fileno(), t.offset, min(t.remaining, TRANSFER_CHUNK)
                    )
                    if n == 0:
                        raise IOError("file shrank while serving")
                elif t.file is not None:
                    # TLS (or no os.sendfile): after a want-write, retry the very same bytes
                    if t.chunk is None:
                        t.file.seek(t.offset)
                        data = t.file.read(min(t.remaining, CHUNK))
                        if not data:
                            raise IOError("file shrank while serving")
                        t.chunk = memoryview(data)
                    n = conn.sock.send(t.chunk)
                    t.chunk = t.chunk[n:] if n < len(t.chunk) else None
                else:
                    size = TRANSFER_CHUNK if conn.plain else CHUNK
                    n = conn.sock.send(t.data[t.offset : t.offset + min(t.remaining, size)])
                t.offset += n
                t.remaining -= n
                if t.log is not None:
                    t.log[4] += n
                conn.deadline = time.monotonic() + self.timeout
        except _SSL_WANT_READ:
            want = selectors.EVENT_READ
        except (BlockingIOError, InterruptedError) + _WANT_WRITE:
            pass
        except (OSError, IOError, ValueError):
            t.keep = False
            t.remaining = -1
        if t.remaining > 0:
            if want != t.want:
                t.want = want
                self._selector.modify(conn.sock, want, conn)
            return  # wait for the socket to be ready again
        conn.transfer = None
        if t.file is not None:
            t.file.close()
        if t.log is not None and self.handler.access_log is not None:
            self.handler.access_log.log(*t.log)
        if not t.keep or t.remaining < 0 or self._stopping.is_set():
            self._close_idle(conn)
            return
        conn.deadline = time.monotonic() + self.timeout
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        if conn.buf or (not conn.plain and conn.sock.pending()):
            self._read(conn)

    def _reject(self, conn, status, reason):
        """Answer a bad head with a short error (best effort, non-blocking) and close."""
        body = ("%d %s\n%s\n" % (status, REASONS.get(status, ""), reason)).encode("latin-1")
        head = (
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n"
            % (status, REASONS.get(status, ""), len(body))
        ).encode("latin-1")
        try:
            conn.sock.send(head + body)
        except Exception:
            pass
        if self.handler.access_log is not None:
            self.handler.access_log.log(conn.client, None, "-", status, len(body))
        self._close_idle(conn)

    def _close_idle(self, conn):
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self._idle.pop(conn.fileno, None)
        if conn.transfer is not None:
            if conn.transfer.file is not None:
                conn.transfer.file.close()
            if conn.transfer.log is not None and self.handler.access_log is not None:
                self.handler.access_log.log(*conn.transfer.log)
            conn.transfer = None
        self._close(conn)

    def _close(self, conn):
        try:
            conn.sock.close()
        except OSError:
            pass
        with self._count_lock:
            self._open -= 1

    def _take_returned(self):
        while True:
            try:
                conn = self._returned.get_nowait()
            except queue.Empty:
                return
            if self._stopping.is_set() and conn.transfer is None:
                self._close(conn)
                continue
            conn.deadline = time.monotonic() + self.timeout
            self._idle[conn.fileno] = conn
            if conn.transfer is not None:
                self._selector.register(conn.sock, selectors.EVENT_WRITE, conn)
                self._push(conn)
                continue
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            pending = getattr(conn.sock, "pending", None)
            if conn.buf or (pending is not None and pending()):
                self._read(conn)

    # -- workers ------------------------------------------------------------------------

    def _worker(self):
        while True:
            item = self._work.get()
            if item is None:
                return
            conn, req = item
            try:
                self._serve_connection(conn, req)
            except Exception:
                traceback.print_exc()
                self._close(conn)
            finally:
                with self._count_lock:
                    self._busy -= 1
                self._wake()

    def _serve_connection(self, conn, req):
        conn.sock.settimeout(self.timeout)
        while True:
            keep = self.handler.handle(conn, req)
            if conn.transfer is not None:
                break  # the I/O thread streams the body, then reads the next request
            if not keep or self._stopping.is_set():
                self._close(conn)
                return
            try:
                req, consumed = parse_head(conn.buf)
                if req is None and KEEPALIVE_LINGER > 0 and self._work.empty():
                    req, consumed = self._linger(conn)
            except HeadError as exc:
                self.handler.send(
                    conn,
                    Request("GET", "/", "HTTP/1.1", {}, "-"),
                    _closing(text_response(exc.status, str(exc))),
                )
                self._close(conn)
                return
            except (OSError, ValueError):
                self._close(conn)
                return
            if req is None:
                if conn.eof:
                    self._close(conn)
                    return
                break
            del conn.buf[:consumed]
        conn.sock.setblocking(False)
        self._returned.put(conn)

    def _linger(self, conn):
        """Wait a moment for the next keep-alive request when no one else needs this
        worker: saves two thread hand-offs per request for busy clients."""
        sock = conn.sock
        deadline = time.monotonic() + KEEPALIVE_LINGER
        sock.settimeout(KEEPALIVE_LINGER)
        try:
            while len(conn.buf) <= MAX_HEADER_BYTES + MAX_REQUEST_LINE:
                data = sock.recv(RECV_SIZE)
                if not data:
                    conn.eof = True
                    return None, 0
                conn.buf += data
                req, consumed = parse_head(conn.buf)
                if req is not None:
                    return req, consumed
                if time.monotonic() >= deadline:
                    break
        except socket.timeout:
            pass
        finally:
            sock.settimeout(self.timeout)
        return None, 0


def _closing(resp):
    resp.close = True
    return resp


def serve(root, host="0.0.0.0", port=8080, **opts):
    """Serve ``root`` until SIGINT/SIGTERM (or KeyboardInterrupt); returns an exit code.

    ``opts``: threads, timeout, no_metadata, certfile, keyfile, auth_file,
    access_log (a stream or None), log_format ("common"/"combined"), announce
    (a stream for the startup line, default stdout).
    """
    announce = opts.pop("announce", sys.stdout)
    server = IndexServer(root, host, port, **opts)
    bound_host, bound_port = server.server_address
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = socket.gethostname() or "localhost"
    if ":" in shown:
        shown = "[%s]" % shown
    url = "%s://%s:%d/simple/" % (server.scheme, shown, bound_port)
    if announce is not None:
        announce.write(
            'Serving %s at %s  (pip: index-url = %s ; uv: [[index]] url = "%s") '
            "bound to %s:%d, %d threads\n"
            % (server.tree.root, url, url, url, bound_host, bound_port, server.threads)
        )
        if opts.get("auth_file") and not opts.get("certfile"):
            announce.write("warning: basic auth over plain HTTP sends passwords in clear text\n")
        announce.flush()

    def on_signal(signum, frame):
        server.shutdown()

    previous = {}
    previous_fd = None
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, on_signal)
        # a signal delivered to a worker thread must still wake the I/O loop at once
        try:
            previous_fd = signal.set_wakeup_fd(server.wakeup_fileno())
        except (ValueError, OSError):
            previous_fd = None
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if previous_fd is not None:
            try:
                signal.set_wakeup_fd(previous_fd)
            except (ValueError, OSError):
                pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stderr.write("server stopped\n")
    return 0


# --------------------------------------------------------------------------------------
# Offline verification
# --------------------------------------------------------------------------------------


class _LinkParser(HTMLParser):
    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            if attrs.get("href") is not None:
                self.links.append(attrs)


def _hidden(rel):
    return any(part.startswith(".") for part in rel.split("/"))


class _Progress(object):
    def __init__(self, total, stream):
        self.total = max(1, total)
        self.done = 0
        self.stream = stream if stream is not None and stream.isatty() else None
        self.last = 0.0

    def add(self, n):
        self.done += n
        if self.stream is not None:
            now = time.monotonic()
            if now - self.last > 0.2:
                self.last = now
                self.stream.write("\rverifying: %3d%%" % (100 * self.done // self.total))
                self.stream.flush()

    def finish(self):
        if self.stream is not None:
            self.stream.write("\rverifying: 100%\n")
            self.stream.flush()


def _sha256_file(path, progress):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1024 * 1024)
            if not chunk:
                break
            h.update(chunk)
            progress.add(len(chunk))
    return h.hexdigest()


def verify(root, out=None, err=None):
    """Check the tree against manifest.json and its pages' links; returns an exit code.

    Reports MISSING, CORRUPT (size or sha256) and UNEXPECTED files, symlinks, and
    page links to files that do not exist or whose hash disagrees with the manifest.
    0: intact, 1: problems found, 2: no usable manifest.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    root = os.path.abspath(root)
    mpath = os.path.join(root, "manifest.json")
    try:
        with open(mpath, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise ValueError("files is not an object")
        if manifest.get("format") != "morgan-like-manifest/1":
            err.write("warning: unknown manifest format %r\n" % (manifest.get("format"),))
    except (OSError, IOError, ValueError, KeyError, TypeError) as exc:
        err.write("verify: cannot read %s: %s\n" % (mpath, exc))
        return 2

    problems = []

    def problem(kind, rel, detail=""):
        problems.append("%-11s %s%s" % (kind, rel, (" (%s)" % detail) if detail else ""))

    # what is on disk (hidden paths and the manifest itself excluded)
    on_disk = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                problem("SYMLINK", rel_dir + d)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            rel = rel_dir + name
            if rel == "manifest.json":
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                problem("SYMLINK", rel)
            on_disk[rel] = full

    total = 0
    for rel, info in files.items():
        if rel in on_disk and isinstance(info, dict):
            total += info.get("size", 0) if isinstance(info.get("size"), int) else 0
    progress = _Progress(total, err)
    checked = 0
    for rel in sorted(files):
        info = files[rel]
        if _hidden(rel) or rel.startswith("/") or ".." in rel.split("/"):
            problem("BAD-ENTRY", rel, "not a tree-relative path")
            continue
        if not isinstance(info, dict):
            problem("BAD-ENTRY", rel)
            continue
        full = on_disk.get(rel)
        if full is None:
            problem("MISSING", rel)
            continue
        try:
            size = os.path.getsize(full)
            if size != info.get("size"):
                problem("CORRUPT", rel, "size %d, manifest says %s" % (size, info.get("size")))
                progress.add(info.get("size") or 0)
            elif _sha256_file(full, progress) != str(info.get("sha256", "")).lower():
                problem("CORRUPT", rel, "sha256 mismatch")
        except (OSError, IOError) as exc:
            problem("UNREADABLE", rel, str(exc))
        checked += 1
    progress.finish()
    for rel in sorted(on_disk):
        if rel not in files:
            problem("UNEXPECTED", rel)

    # the pages' links
    def check_target(page_rel, href, want_sha=None, want_meta=None):
        target = href.split("#", 1)[0]
        if "://" in target or target.startswith("/"):
            problem("BAD-LINK", page_rel, "%s leaves the tree" % href)
            return
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(page_rel), unquote(target)))
        if rel.startswith("../") or rel == "..":
            problem("BAD-LINK", page_rel, "%s leaves the tree" % href)
            return
        if target.endswith("/"):
            if not os.path.isfile(os.path.join(root, rel, "index.html")):
                problem("BROKEN-LINK", page_rel, "%s: no %s/index.html" % (href, rel))
            return
        if not os.path.isfile(os.path.join(root, rel)):
            problem("BROKEN-LINK", page_rel, "%s: %s does not exist" % (href, rel))
            return
        entry = files.get(rel)
        if want_sha and isinstance(entry, dict) and entry.get("sha256") != want_sha:
            problem("BAD-HASH", page_rel, "%s: page and manifest disagree" % href)
        if want_meta is not None:
            meta_rel = rel + ".metadata"
            if not os.path.isfile(os.path.join(root, meta_rel)):
                problem("BROKEN-LINK", page_rel, "%s: %s does not exist" % (href, meta_rel))
            elif want_meta:
                meta_entry = files.get(meta_rel)
                if isinstance(meta_entry, dict) and meta_entry.get("sha256") != want_meta:
                    problem("BAD-HASH", page_rel, "%s.metadata: page and manifest disagree" % href)

    def meta_hash(value):
        if value is None:
            return None
        value = value.strip()
        if value.lower().startswith("sha256="):
            return value[7:].lower()
        return ""

    pages = 0
    simple = os.path.join(root, "simple")
    for dirpath, dirnames, filenames in os.walk(simple):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if rel_dir != "simple" and "index.html" not in filenames:
            problem("MISSING", rel_dir + "/index.html", "file:// clients need it")
        for name in ("index.html", "index.json"):
            if name not in filenames:
                continue
            page_rel = rel_dir + "/" + name
            pages += 1
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    text = f.read().decode("utf-8")
                if name == "index.html":
                    parser = _LinkParser()
                    parser.feed(text)
                    parser.close()
                    for attrs in parser.links:
                        href = attrs["href"]
                        sha = None
                        if "#sha256=" in href:
                            sha = href.split("#sha256=", 1)[1].lower()
                        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
                        check_target(page_rel, href, sha, meta_hash(meta))
                else:
                    data = json.loads(text)
                    for project in data.get("projects", []) or []:
                        check_target(page_rel, normalize(project["name"]) + "/")
                    for entry in data.get("files", []) or []:
                        meta = entry.get("core-metadata")
                        if isinstance(meta, dict):
                            meta = "sha256=" + str(meta.get("sha256", ""))
                        elif meta is True:
                            meta = ""
                        else:
                            meta = None
                        check_target(
                            page_rel,
                            entry["url"],
                            (entry.get("hashes") or {}).get("sha256"),
                            meta_hash(meta),
                        )
            except (OSError, IOError, ValueError, KeyError, TypeError, AttributeError) as exc:
                problem("BAD-PAGE", page_rel, str(exc))
    if not os.path.isdir(simple):
        problem("MISSING", "simple/", "not a morgan_like tree")

    for line in problems:
        out.write(line + "\n")
    out.write(
        "verify %s: %d files checked, %d pages checked, %d problem%s\n"
        % (root, checked, pages, len(problems), "" if len(problems) == 1 else "s")
    )
    out.flush()
    return 1 if problems else 0


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def default_root():
    """The directory of this file when it is a tree (has simple/), else the cwd."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isdir(os.path.join(here, "simple")):
        return here
    return os.getcwd()


def build_parser():
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="Serve a morgan_like tree to pip and uv (PEP 503/691/658/700), stdlib only.",
        epilog=(
            "Security options are off by default.  TLS: --certfile/--keyfile.  Basic auth: "
            "--auth-file FILE with lines 'user:pbkdf2_sha256$...' made by --hash-password USER "
            "(use with TLS).  --verify checks the tree against manifest.json offline."
        ),
    )
    parser.add_argument(
        "-i",
        "--index-path",
        dest="index_path",
        default=None,
        help="the tree to serve (default: this file's directory if it has simple/, else the cwd)",
    )
    parser.add_argument(
        "-H", "--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)"
    )
    parser.add_argument(
        "-p", "--port", type=int, default=8080, help="port (default 8080; 0: any free port)"
    )
    parser.add_argument(
        "--no-metadata",
        action="store_true",
        help="do not serve PEP 658 .metadata files (and drop their mention from the pages)",
    )
    parser.add_argument("--threads", type=int, default=32, help="worker threads (default 32)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="idle / stalled-transfer timeout in seconds (default 30)",
    )
    parser.add_argument(
        "--access-log",
        default="-",
        metavar="FILE|-",
        help="access log file, '-' = stdout (default)",
    )
    parser.add_argument(
        "--log-format", choices=("common", "combined"), default="common", help="access log format"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no access log")
    parser.add_argument("--certfile", help="TLS certificate chain (PEM); enables HTTPS")
    parser.add_argument("--keyfile", help="TLS private key (PEM), if not in --certfile")
    parser.add_argument("--auth-file", help="require HTTP basic auth; users from this file")
    parser.add_argument(
        "--hash-password",
        metavar="USER",
        help="print an --auth-file line for USER (password from prompt or stdin) and exit",
    )
    parser.add_argument(
        "--verify", action="store_true", help="check the tree against manifest.json and exit"
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    return parser


def _hash_password_cli(user):
    if not user or ":" in user or any(c.isspace() for c in user):
        sys.stderr.write("error: user names cannot be empty or contain ':' or spaces\n")
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("Password for %s: " % user)
        if getpass.getpass("Again: ") != password:
            sys.stderr.write("error: passwords differ\n")
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        sys.stderr.write("error: empty password\n")
        return 2
    sys.stdout.write("%s:%s\n" % (user, hash_password(password)))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.hash_password is not None:
        return _hash_password_cli(args.hash_password)
    root = os.path.abspath(args.index_path or default_root())
    if args.verify:
        return verify(root)
    if not os.path.isdir(os.path.join(root, "simple")):
        sys.stderr.write("error: %s is not a morgan_like tree (no simple/ directory)\n" % root)
        return 2
    if args.keyfile and not args.certfile:
        sys.stderr.write("error: --keyfile needs --certfile\n")
        return 2
    log_stream = None
    if not args.quiet:
        if args.access_log == "-":
            log_stream = sys.stdout
        else:
            try:
                log_stream = open(args.access_log, "a", encoding="utf-8")
            except OSError as exc:
                sys.stderr.write("error: cannot open access log: %s\n" % exc)
                return 2
    try:
        return serve(
            root,
            args.host,
            args.port,
            threads=args.threads,
            timeout=args.timeout,
            no_metadata=args.no_metadata,
            certfile=args.certfile,
            keyfile=args.keyfile,
            auth_file=args.auth_file,
            access_log=log_stream,
            log_format=args.log_format,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 2
    finally:
        if log_stream is not None and log_stream is not sys.stdout:
            log_stream.close()


if __name__ == "__main__":
    sys.exit(main())
