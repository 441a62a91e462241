#!/usr/bin/env python3
"""Index server for a morgan_like tree: standard library only, CPython 3.6 to 3.13.

Copy the tree to the target network and run, with whatever python3 is there::

    python3 server.py -i /srv/bundle -H 0.0.0.0 -p 8080

then point clients at it::

    pip:  pip install --index-url http://HOST:8080/simple/ PACKAGE   (or pip.conf: index-url = ...)
    uv:   [[index]] url = "http://HOST:8080/simple/"  default = true   (uv.toml)

or at one env's view (only what that env resolved): ``http://HOST:8080/envs/NAME/simple/``.

Without ``-i`` the server serves the directory that contains this file when it has
a ``simple/`` directory (a copied tree), else the current directory.

What it serves (and nothing else):

* ``/simple/`` and ``/simple/<project>/``: the tree's static ``index.html`` /
  ``index.json`` pages, chosen by PEP 691 content negotiation (``Accept`` q-values
  or ``?format=``; ``*/*`` alone gets HTML, as from PyPI); ``Vary: Accept``; 301 to
  the canonical URL for a missing trailing slash or a non-normalized name; 406 when
  nothing acceptable exists.  Each page's serial (the root HTML page: its JSON
  twin's) goes out as ``X-PyPI-Last-Serial``.
* ``/envs/NAME/simple/`` and ``/envs/NAME/simple/<project>/``: an env's index view
  (``envs/NAME/simple/`` of the tree: the env's projects and files only, linking the
  shared ``packages/``), served exactly like ``/simple/``; ``/envs/NAME/`` redirects
  to it, ``/envs/`` lists the views.  The start-up lines give each view's URL.
  With ``--view-by-user-agent`` (off by default) ``/simple/...`` itself answers from
  the view of the env whose ``[env.NAME]`` markers in the tree's morgan.ini
  (``python_version``, ``python_full_version``, ``sys_platform``,
  ``platform_machine``, ...; a missing key matches anything) the client's pip or uv
  User-Agent matches, with ``X-Morgan-Like-View: NAME`` and ``Vary: ...,
  User-Agent``; other clients get the union.
* ``/<project>/``: the same project page, for morgan-style ``index-url = http://HOST:PORT/``.
* ``/packages/...``: distribution files and their PEP 658 ``.metadata`` files,
  with HEAD, single byte ranges (``If-Range``), strong ETags (``"sha256-<hex>"``, the
  hash the project page gives the file), 304s and immutable caching.
* ``/pypi/<project>/json`` (the tree's ``json/<project>``) and
  ``/pypi/<project>/<version>/json`` (built from it, ``info`` filled from that
  release's wheel ``.metadata``): Warehouse's JSON API, whose file URLs are made
  absolute with ``--public-url``, else (``--trust-proxy``) the proxy's
  ``X-Forwarded-Proto`` / ``-Host``, else the request's ``Host``; ``/local.json`` and
  ``/local.db.serial``, the serial lists another mirror syncs from.
* ``/locks/pylock.NAME.toml`` and ``/locks/NAME.requirements.txt``: an env view's
  lock files, made to work from their URL (base URL as for Warehouse JSON): the
  pylock's ``path`` entries become absolute ``url`` ones, the requirements file gets
  ``--index-url <server>/envs/NAME/simple/`` for its ``--no-index`` and
  ``--find-links`` lines; ``/sbom.cdx.json``, the tree's CycloneDX SBOM.
* ``/`` (and ``/index.html``): the tree's landing page, its ``index.html`` (projects,
  versions per env, sizes, pip.conf / uv.toml snippets for this server's URL); a tree
  without one redirects ``/`` to ``/simple/``.  ``morgan.ini``, ``manifest.json``,
  ``server.py``, hidden paths and anything outside ``simple/``, ``envs/NAME/simple/``,
  ``packages/`` and the documents above are never served.

Robustness: one I/O thread owns idle connections and reads request heads without
blocking; complete requests go to a bounded pool of worker threads (``--threads``),
so clients that stall or dribble bytes cannot starve the others.  Workers never wait
on a client either: they write what a socket takes at once and leave the rest of a
response to the I/O thread, which reads a connection's next request only once the
response is out (a client that never reads holds one response, and no thread).
Request line, header size and header count are capped (414/431); a request target
is visible ASCII (any other byte: 400); Content-Length and Range take ASCII digits
only (a bad Content-Length is a 400, a Range that cannot be parsed is ignored).  A
request body is never read, so any answer to a request with one closes the
connection (its bytes never become a request).  Redirects' ``Location`` is
percent-encoded ASCII; a request that fails is a 500 and one escaped line on stderr;
the access log escapes every control character.  One address may hold
``--max-per-address`` connections (default 100; more get a 503 and are closed).
Idle connections and stalled transfers are closed after ``--timeout`` seconds.
SIGINT/SIGTERM stop gracefully.  A bad option value ends the start in one line
naming the flag, its value and what to do (exit 2).

Security options (off by default):

* ``--certfile CERT --keyfile KEY``: serve HTTPS (stdlib ``ssl``, TLS >= 1.2).
* ``--auth-file FILE``: require HTTP basic auth.  FILE has one ``user:hash`` line
  per user, where hash is ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``;
  create lines with ``python3 server.py --hash-password USER >> FILE`` (prompts,
  or reads the password from stdin when it is not a terminal).  Passwords are
  compared in constant time.  Use it with TLS: basic auth sends passwords in clear.
  Checked credentials are cached, so a logged-in client never waits for a hash;
  unchecked ones cost bounded CPU: AUTH_HASH_SLOTS checks at a time (503 when a
  quarter of the workers already wait), and an address that failed 10 checks gets
  one more every 3 s (429 meanwhile).
* ``--public-url URL`` / ``--trust-proxy``: behind a reverse proxy, the URL clients
  reach, or leave to the proxy's ``X-Forwarded-*`` headers (then failed logins count
  against the last ``X-Forwarded-For`` address); without either, Warehouse JSON's
  URLs take the request's ``Host``.

Integrity: ``python3 server.py --verify [-i TREE]`` checks the tree offline: every
file a project page links (and each wheel's ``.metadata``) exists with the size and
sha256 the page gives, the JSON and HTML pages agree, the root pages list exactly the
projects that have a page, no unlinked file sits under ``packages/``, and the
top-level files (``server.py``, ``morgan.ini``, the root pages, each view's root
pages) match ``manifest.json``.  Each env view under ``envs/`` gets the same checks,
and may link only files its project's union page lists with the same sha256.  Each
lock under ``locks/`` names only files a union page lists, with its sha256 and size,
and ``sbom.cdx.json`` parses, each component a listed file with its sha256.
Memory stays flat however large the tree (the project lists go through a temporary
sqlite database).  Exit status 0 when the tree is intact, 1 when
problems were found, 2 when TREE is not a tree.

Transfer: ``python3 server.py --import DIR -i TREE [--hmac-key-file K]`` applies an
export of ``morgan-like export`` (``DIR/morgan-like-export.json`` and its plain-tar
volumes, or its files unpacked under DIR beside the manifest).  The manifest (its
HMAC with a key, else its sha256 printed), the tree's generation against the
export's base, each volume's size and sha256, each tar member (a regular file the
manifest places there, at a path of the tree's layout) and each file's size and
sha256 are checked while staging in ``TREE/.morgan-like/import/``; only then are the
files renamed into place (files, pages, root pages, top-level files), the removals
made, ``--verify``'s checks run and ``.morgan-like/generation.json`` written.  A
re-run finishes a killed import; an applied export is not applied twice.
``--receipt [-o FILE]`` prints generation.json for the online side.  Exit status 0
applied, 1 refused (one paragraph; the tree unchanged), 2 bad options.

Sections, in order: constants; content negotiation; request-target safety; views by
User-Agent; the tree's pages and hashes; basic auth; HTTP heads; the request
handler; the server; offline verification; transfer (--import, --receipt); the
command line.
"""

import argparse
import base64
import binascii
import collections
import email.parser
import email.policy
import email.utils
import errno
import getpass
import gzip
import hashlib
import heapq
import hmac
import io
import itertools
import json
import logging
import os
import posixpath
import queue
import re
import selectors
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from urllib.parse import quote, unquote, unquote_to_bytes

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
HASH_CACHE_ENTRIES = 100000  # files whose page hash is kept for ETags, over all projects
HASH_PAGE_MAX = 256 * 1024 * 1024  # larger project pages are not parsed for ETags
RELEASE_METADATA_MAX = 4 * 1024 * 1024  # larger .metadata files do not fill a release's info
#: a release's own fields of Warehouse's ``info`` (json/<project> gives its newest
#: release's), as they are when its metadata is not in the tree
RELEASE_FIELDS = {
    "summary": None,
    "requires_dist": None,
    "license": None,
    "license_expression": None,
    "classifiers": [],
    "project_urls": None,
    "provides_extra": None,
}

FILE_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"

# A full mirror is an upstream too: /pypi/<project>/json and the serial list files.
JSON_API = "application/json"
PROVENANCE_SUFFIX = ".provenance"  # PEP 740: a file's provenance, kept beside it
SERIAL_FILES = {"local.json": "application/json", "local.db.serial": "text/plain"}
# Each env view's lock files (locks/) and the tree's CycloneDX SBOM, as the package's
# tree/lockfiles.py and tree/sbom.py write them.
LOCKS_DIR = "locks"
SBOM_NAME = "sbom.cdx.json"
SBOM_TYPE = "application/vnd.cyclonedx+json"
PYLOCK_TYPE = "application/toml; charset=utf-8"
REQUIREMENTS_TYPE = "text/plain; charset=utf-8"
_PYLOCK_NAME = re.compile(r"pylock\.([A-Za-z0-9][A-Za-z0-9_-]*)\.toml\Z")
_REQUIREMENTS_NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\.requirements\.txt\Z")
# One wheel or sdist table per line: its path (relative to locks/), size and sha256.
_LOCK_PATH = re.compile(rb'\bpath = "\.\./(packages/[^"\\\n]+)"')
_LOCK_ENTRY = re.compile(
    r'\bpath = "\.\./(packages/[^"\\]+)".*?\bsize = (\d+), hashes = \{ sha256 = "([0-9a-f]*)" \}'
)
_REQUIREMENT_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_REQUIREMENT_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
LANDING_HTML = "index.html"  # the tree's landing page, served at / (morgan_like/tree/landing.py)
_SERIAL_MARKS = (
    re.compile(rb'"meta": *\{[^{}]*"_last-serial": *(\d+)'),  # not a root page's first project
    re.compile(rb'"last_serial": *(\d+)'),
    re.compile(rb"<!--SERIAL (\d+)-->"),
)


_HOST = re.compile(r"\A(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\Z")
_ADDRESS = re.compile(r"\A[0-9A-Fa-f:.]{2,45}\Z")
#: --public-url: http(s)://host[:port][/path], no query, no fragment, nothing to escape
_PUBLIC_URL = re.compile(
    r"\A(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?\Z"
)


def check_public_url(value):
    """--public-url as base_url() uses it (no trailing slash); ValueError when it is not
    an http(s) URL of a host, an optional port and an optional path."""
    m = _PUBLIC_URL.match(value)
    if not m or (m.group(3) and not 0 < int(m.group(3)[1:]) <= 65535):
        raise ValueError(
            "not an http(s)://HOST[:PORT][/PATH] URL; give the URL clients reach this "
            "server at (no query, fragment or user)"
        )
    return value.rstrip("/")


def page_serial(body):
    """The serial a page or Warehouse JSON carries (for X-PyPI-Last-Serial), or None.

    Our renderers put it near the start (JSON meta), or at the end (the HTML trailer);
    a root page's meta serial comes first too.  The root HTML page has none: its
    serial is its JSON twin's (Handler.serve_page).
    """
    for part in (body[:512], body[-64:]):
        for mark in _SERIAL_MARKS:
            found = mark.search(part)
            if found:
                return found.group(1).decode("ascii")
    return None


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
    429: "Too Many Requests",
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
    each offered type its q; q=0 excludes.  Of the types with the highest q, one the
    header names wins (JSON > v1+html > text/html among them); when only wildcards
    reached them, text/html > v1+html > JSON, so ``*/*`` (curl, proxies, scripts) gets
    HTML as from PyPI and pypiserver, and only a client that asks for JSON gets it.
    No (or an empty) Accept header means ``text/html``.
    """
    if accept is None or not accept.strip():
        accept = TEXT_HTML
    ranges = parse_accept(accept)
    best, best_key = None, None
    for rank, offered in enumerate(OFFERED):
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
        if q <= 0.0:
            continue
        key = (q, spec == 3, -rank if spec == 3 else rank)
        if best_key is None or key > best_key:
            best, best_key = offered, key
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


#: an env's name, as a view directory ``envs/NAME/simple/`` has it (exact case)
_VIEW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


#: what a file's name in packages/<project>/ may not hold: a path separator, a control
#: character (C0, DEL) or an unpaired surrogate.  The copy of morgan_like's rule
#: (dists/filenames.py unsafe_filename), held equal by tests/dists/test_filename_rule.py
_UNSAFE_FILENAME_CHAR = re.compile(r"[\x00-\x1f\x7f/\\\ud800-\udfff]")


def filename_problem(filename):
    """Why ``filename`` cannot name a file in packages/<project>/, or None."""
    if not filename:
        return "empty filename"
    if filename[0] != "." and not _UNSAFE_FILENAME_CHAR.search(filename):
        return None
    if "/" in filename or "\\" in filename:
        return "path separator in filename"
    if filename.startswith("."):
        return "filename starts with a dot"
    if re.search(r"[\x00-\x1f\x7f]", filename):
        return "control character in filename"
    return "unpaired surrogate in filename"


def is_forbidden_name(name):
    lower = name.lower()
    return lower in FORBIDDEN_NAMES or lower.endswith(FORBIDDEN_SUFFIXES) or lower.startswith(".")


# --------------------------------------------------------------------------------------
# Views by User-Agent (--view-by-user-agent)
# --------------------------------------------------------------------------------------

#: the morgan.ini keys of an ``[env.NAME]`` section a view is chosen by (a missing key
#: matches anything)
VIEW_MARKERS = (
    "python_full_version",
    "python_version",
    "sys_platform",
    "platform_system",
    "platform_machine",
    "platform_python_implementation",
)
_SYS_PLATFORM = {"linux": "linux", "windows": "win32", "darwin": "darwin"}
UA_JSON_MAX = 16 * 1024
UA_CACHE_KEY_MAX = 1024  # longer User-Agents are matched but not remembered


def ua_markers(agent):
    """The markers a pip or uv User-Agent gives, ``{key: value}`` (keys of VIEW_MARKERS),
    or None.

    Both send ``<installer>/<version> <linehaul JSON>``: "python" (the full version),
    "implementation": {"name"}, "system": {"name"} (``platform.system()``) and "cpu"
    (``platform.machine()``); uv may send null for any of them.
    """
    if not agent:
        return None
    _, sep, rest = agent.partition(" ")
    rest = rest.strip()
    if not sep or not rest.startswith("{") or len(rest) > UA_JSON_MAX:
        return None
    try:
        data = _JSON_DECODER.raw_decode(rest)[0]
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    markers = {}
    python = data.get("python")
    if isinstance(python, str) and re.match(r"[0-9]+\.[0-9]+", python):
        markers["python_full_version"] = python.strip()
        markers["python_version"] = ".".join(python.split(".")[:2])
    system = data.get("system")
    system = system.get("name") if isinstance(system, dict) else None
    if isinstance(system, str) and system:
        markers["platform_system"] = system
        markers["sys_platform"] = _SYS_PLATFORM.get(system.lower(), system.lower())
    cpu = data.get("cpu")
    if isinstance(cpu, str) and cpu:
        markers["platform_machine"] = cpu
    impl = data.get("implementation")
    impl = impl.get("name") if isinstance(impl, dict) else None
    if isinstance(impl, str) and impl:
        markers["platform_python_implementation"] = impl
    return markers or None


def _marker_matches(key, wanted, given):
    if given is None:
        return False
    if key == "sys_platform":  # freebsd14, linux2: the system, then digits
        wanted = wanted.lower()
        return wanted == given or (wanted.startswith(given) and wanted[len(given) :].isdigit())
    if key in ("platform_machine", "platform_system", "platform_python_implementation"):
        return wanted.lower() == given.lower()
    return wanted == given


class ViewChooser(object):
    """Which env view answers a client, from its User-Agent and the ``[env.NAME]``
    sections of the tree's morgan.ini (read once, at start-up)."""

    def __init__(self, envs):
        #: [(name, {key: value})], the envs with a view, most specific first
        self.envs = sorted(envs, key=lambda e: (-len(e[1]), e[0]))
        self._cache = {}

    @classmethod
    def from_tree(cls, tree, warn=None):
        import configparser

        views = set(tree.views())
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        path = os.path.join(tree.root, "morgan.ini")
        try:
            with io.open(path, "r", encoding="utf-8") as f:
                parser.read_file(f)
        except (OSError, IOError, ValueError, configparser.Error) as exc:
            if warn is not None:
                warn("warning: --view-by-user-agent: cannot read %s: %s\n" % (path, exc))
        envs = []
        for section in parser.sections():
            name = section[4:] if section.startswith("env.") else None
            if name in views:
                keys = dict(
                    (key, parser.get(section, key).strip())
                    for key in VIEW_MARKERS
                    if parser.has_option(section, key) and parser.get(section, key).strip()
                )
                envs.append((name, keys))
        return cls(envs)

    def choose(self, agent):
        """The env whose markers the User-Agent matches, or None (the union)."""
        if agent is not None and len(agent) > UA_CACHE_KEY_MAX:
            return self._choose(agent)  # not kept: the cache stays small
        try:
            return self._cache[agent]
        except KeyError:
            pass
        found = self._choose(agent)
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[agent] = found
        return found

    def _choose(self, agent):
        found = None
        given = ua_markers(agent)
        if given is not None:
            for name, keys in self.envs:
                if all(_marker_matches(k, v, given.get(k)) for k, v in keys.items()):
                    found = name
                    break
        return found


# --------------------------------------------------------------------------------------
# The tree: cached index pages and the file hashes their project pages give
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


_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


JSON_ITEM_MAX = 64 * 1024 * 1024  # the largest single item of a streamed JSON file
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()


class _JSONStream(object):
    """Reads the top-level JSON object of a text file one member at a time.

    The member named in members(), when it holds an array (an object), is read one
    element (one key/value pair) at a time, so memory stays bounded by the largest
    element whatever the layout: one item a line, or everything on one line.
    """

    def __init__(self, f, chunk=1 << 16):
        self.f = f
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.streamed = False  # the member was found and was an array or object

    def _fill(self, want=0):
        if self.eof:
            return False
        data = self.f.read(max(self.chunk, want))
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        if len(self.buf) > JSON_ITEM_MAX:
            raise ValueError("an item larger than %d characters" % JSON_ITEM_MAX)
        return True

    def _peek(self):
        while True:
            self.pos = _JSON_WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _expect(self, chars):
        c = self._peek()
        if not c or c not in chars:
            raise ValueError(
                "expected %s, found %s" % (" or ".join(chars), repr(c) if c else "the end")
            )
        self.pos += 1
        return c

    def _value(self):
        self._peek()
        while True:
            try:
                value, end = _JSON_DECODER.raw_decode(self.buf, self.pos)
            except ValueError:
                if self.eof:
                    raise
            else:
                # a number cut at the buffer's end would parse: only trust a value
                # followed by something, or the end of the file
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            self._fill(len(self.buf) - self.pos)  # doubles: linear in the item's size

    def _key(self):
        key = self._value()
        if not isinstance(key, str):
            raise ValueError("an object key that is not a string")
        self._expect(":")
        return key

    def members(self, stream_key):
        """Yield ``(name, value)`` per top-level member; for ``stream_key`` holding an
        array, ``(stream_key, element)`` per element; holding an object,
        ``(stream_key, (key, value))`` per pair."""
        self._expect("{")
        if self._peek() == "}":
            self.pos += 1
        else:
            while True:
                name = self._key()
                c = self._peek()
                if name == stream_key and c and c in "[{":
                    self.pos += 1
                    self.streamed = True
                    close = "]" if c == "[" else "}"
                    if self._peek() == close:
                        self.pos += 1
                    else:
                        while True:
                            if c == "{":
                                key = self._key()
                                yield name, (key, self._value())
                            else:
                                yield name, self._value()
                            if self._expect("," + close) == close:
                                break
                else:
                    yield name, self._value()
                if self._expect(",}") == "}":
                    break
        if self._peek():
            raise ValueError("extra data after the JSON object")


class _LinkParser(HTMLParser):
    """Calls ``on_link(attrs)`` for every ``<a href>`` of a page (attrs: a dict)."""

    def __init__(self, on_link):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.on_link = on_link

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            if attrs.get("href") is not None:
                self.on_link(attrs)


def _size_value(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _hex_value(value):
    return value.strip().lower() if isinstance(value, str) else None


def _json_link(entry):
    """``(href, sha256, size, metadata, provenance)`` of a JSON page's files entry: see
    _page_links()."""
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise ValueError("a files entry without a url")
    hashes = entry.get("hashes")
    sha = _hex_value(hashes.get("sha256")) if isinstance(hashes, dict) else None
    meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
    if isinstance(meta, dict):
        meta = _hex_value(meta.get("sha256")) or ""
    elif meta is True:
        meta = ""
    else:
        meta = None
    prov = entry.get("provenance")
    prov = prov if isinstance(prov, str) and prov else None
    return entry["url"], sha, _size_value(entry.get("size")), meta, prov


def _html_link(attrs):
    """``(href, sha256, size, metadata, provenance)`` of an HTML page's anchor: see
    _page_links()."""
    href = attrs["href"]
    frag = href.split("#", 1)[1] if "#" in href else ""
    sha = _hex_value(frag[7:]) if frag.lower().startswith("sha256=") else None
    meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    if meta is not None:
        meta = meta.strip()
        meta = _hex_value(meta[7:]) if meta.lower().startswith("sha256=") else ""
    prov = attrs.get("data-provenance") or None
    return href, sha, _size_value(attrs.get("data-size")), meta, prov


def _page_links(f, is_json, project=None):
    """``[(href, sha256, size, metadata, provenance), ...]`` of a project page, a text file
    ``f``.

    Read in chunks, an entry (an anchor) at a time: memory holds the links, not the
    page.  sha256 and size are None when a link does not give them; metadata is None
    when no PEP 658 metadata is advertised, "" when it is advertised without a sha256;
    provenance is the PEP 740 provenance URL as written, or None.
    Raises ValueError for a malformed page, or a JSON page named other than ``project``.
    """
    links = []
    if is_json:
        stream = _JSONStream(f)
        for key, value in stream.members("files"):
            if key == "files":
                links.append(_json_link(value))
            elif key == "name" and project is not None and isinstance(value, str):
                if normalize(value) != normalize(project):
                    raise ValueError("name %r is not %r" % (value, project))
        if not stream.streamed:
            raise ValueError("no files list")
        return links
    parser = _LinkParser(lambda attrs: links.append(_html_link(attrs)))
    while True:
        chunk = f.read(1 << 16)
        if not chunk:
            break
        parser.feed(chunk)
    parser.close()
    return links


def _link_target(page_dir, href, absolute_ok=False):
    """The tree-relative path a link of the page in ``page_dir`` points to.

    A trailing "/" is kept (a directory link).  Raises ValueError when the link leaves
    the tree (another host, or above the root); an absolute path (``/packages/...``)
    is taken from the root only when ``absolute_ok`` (a server, not ``file://``).
    """
    target = href.split("#", 1)[0].split("?", 1)[0]
    if "://" in target or target.startswith("//") or "\\" in target:
        raise ValueError("leaves the tree")
    if target.startswith("/"):
        if not absolute_ok:
            raise ValueError("leaves the tree")
        page_dir, target = "", target.lstrip("/")
    rel = posixpath.normpath(posixpath.join(page_dir, unquote(target)))
    if rel in (".", "..") or rel.startswith(("../", "/")):
        raise ValueError("leaves the tree")
    return rel + "/" if target.endswith("/") else rel


class Tree(object):
    """Read access to a tree: path containment, page cache, file hashes from the pages."""

    def __init__(self, root, no_metadata=False):
        self.root = os.path.realpath(root)
        self.no_metadata = no_metadata
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._pages = collections.OrderedDict()  # (path, media) -> Page, least recent first
        self._cached_bytes = 0
        self._cache_lock = threading.Lock()
        self._file_hashes = collections.OrderedDict()  # project -> (page sig, hashes)
        self._hash_entries = 0
        self._hash_lock = threading.Lock()

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

    def is_dir(self, rel):
        """True when tree directory ``rel`` ("/"-separated) exists inside the tree."""
        path = os.path.join(self.root, *rel.split("/"))
        return os.path.isdir(path) and self.contained(path)

    def is_view(self, env):
        """True when ``envs/<env>/simple/`` is a directory of the tree (``env``: a name
        _VIEW_NAME takes)."""
        return self.is_dir("envs/%s/simple" % env)

    def views(self):
        """Sorted names of the tree's env views: ``envs/NAME/simple/index.html`` files
        inside the tree (read when asked: the server's start-up and ``/envs/``)."""
        try:
            names = os.listdir(os.path.join(self.root, "envs"))
        except OSError:
            return []
        found = []
        for name in sorted(names):
            path = os.path.join(self.root, "envs", name, "simple", "index.html")
            if _VIEW_NAME.match(name) and os.path.isfile(path) and self.contained(path):
                found.append(name)
        return found

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

    # -- file hashes, from the project pages
    def _page_hashes(self, project):
        """``{filename: (size or None, sha256)}`` of what ``simple/<project>/``'s page lists.

        Read from the project's index.json (index.html when there is none), parsed once
        and kept in a small LRU cache keyed by the page's stat signature, so a rewritten
        page is read again.  A wheel's ``<filename>.metadata`` maps to the page's
        core-metadata sha256 (size None).  None when there is no usable page.
        """
        if not project or project.startswith(".") or os.sep in project:
            return None
        base = os.path.join(self.root, "simple", project)
        for name in ("index.json", "index.html"):
            path = os.path.join(base, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            sig = (name, st.st_mtime_ns, st.st_size, st.st_ino)
            with self._hash_lock:
                cached = self._file_hashes.get(project)
                if cached is not None and cached[0] == sig:
                    self._file_hashes.move_to_end(project)
                    return cached[1]
            if st.st_size > HASH_PAGE_MAX or not self.contained(path):
                return None
            try:
                with io.open(path, "r", encoding="utf-8") as f:
                    links = _page_links(f, name == "index.json")
            except (OSError, IOError, ValueError):
                continue
            hashes = {}
            page_dir = "simple/" + project
            prefix = "packages/" + project + "/"
            for href, sha, size, meta, _prov in links:
                try:
                    rel = _link_target(page_dir, href, absolute_ok=True)
                except ValueError:
                    continue
                if not rel.startswith(prefix) or "/" in rel[len(prefix) :]:
                    continue
                filename = rel[len(prefix) :]
                if sha is not None and _HEX64.match(sha) and filename not in hashes:
                    hashes[filename] = (size, sha)
                if meta and _HEX64.match(meta):
                    hashes.setdefault(filename + ".metadata", (None, meta))
            with self._hash_lock:
                old = self._file_hashes.pop(project, None)
                if old is not None:
                    self._hash_entries -= len(old[1])
                self._file_hashes[project] = (sig, hashes)
                self._hash_entries += len(hashes)
                while self._hash_entries > HASH_CACHE_ENTRIES and len(self._file_hashes) > 1:
                    self._hash_entries -= len(self._file_hashes.popitem(last=False)[1][1])
            return hashes
        return None

    def file_sha256(self, rel, size):
        """The sha256 its project page gives packages file ``rel``, when its size matches.

        ``rel`` is ``packages/<project>/<filename>``; None when no page lists the file or
        the page's size differs (a ``.metadata`` file is listed by hash only).
        """
        parts = rel.split("/")
        if len(parts) != 3 or parts[0] != "packages":
            return None
        hashes = self._page_hashes(parts[1])
        entry = hashes.get(parts[2]) if hashes else None
        if entry is None or (entry[0] is not None and entry[0] != size):
            return None
        return entry[1]


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


#: PBKDF2 checks run at once (a fresh wrong password costs ~150 ms of a core each):
#: the rest of the CPU stays for clients already logged in
AUTH_HASH_SLOTS = max(1, (os.cpu_count() or 2) // 2)
AUTH_HASH_WAIT = 5.0  # seconds a request may wait for a slot before a 503
#: failed checks one address may make in a burst, and then one per AUTH_FAIL_PERIOD s
AUTH_FAIL_BURST = 10
AUTH_FAIL_PERIOD = 3.0
AUTH_ADDRESSES = 10000  # addresses whose failures are remembered (memory stays bounded)
AUTH_CACHE = 10000  # verified credentials remembered, good and bad each
#: a 429 or 503 refusing a login waits this long before it goes out (held by the I/O
#: thread, no worker), so a client that retries at once costs the server little
AUTH_REFUSED_DELAY = 1.0


class AuthRefused(object):
    """A request refused before its password is checked: 429 (this address failed too
    often; retry after ``retry`` s) or 503 (every hash slot is taken)."""

    __slots__ = ("status", "retry", "reason")

    def __init__(self, status, retry, reason):
        self.status = status
        self.retry = retry
        self.reason = reason


class Authenticator(object):
    """Basic auth against a password file; verified credentials are cached by HMAC.

    A logged-in client costs no hashing (its credentials are cached), so what an
    unauthenticated client can spend is bounded apart from it: at most AUTH_HASH_SLOTS
    PBKDF2 checks run at once and at most ``waiters`` requests (a quarter of the
    workers) wait for one, the rest get a 503 at once, so workers stay free for other
    clients; and an address that failed AUTH_FAIL_BURST checks gets one more every
    AUTH_FAIL_PERIOD seconds (a 429 meanwhile, with no hashing).  A slot is taken before
    the check and given back when the password was right, so a burst of parallel
    attempts cannot pass the limit before the first one fails.
    """

    def __init__(self, path, waiters=8, slots=None):
        self.path = path
        self.users = {}
        with open(path, "r", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, sep, encoded = line.partition(":")
                if not sep or not encoded.startswith("pbkdf2_sha256$"):
                    raise ValueError("line %d is not user:pbkdf2_sha256$..." % lineno)
                self.users[user] = encoded
        if not self.users:
            raise ValueError("no users in it")
        self._dummy = hash_password("dummy", salt=b"0" * 16)
        self._key = os.urandom(32)
        self._ok = {}
        self._bad = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(slots or AUTH_HASH_SLOTS)
        self._waiters = max(slots or AUTH_HASH_SLOTS, waiters)
        self._in_check = 0  # requests hashing or waiting to
        self._failures = {}  # address -> [allowance, monotonic time of it]

    def check(self, header, client="-"):
        """``(user, None)`` when the credentials are good, ``(None, None)`` when they are
        missing or wrong (401), ``(None, AuthRefused)`` when they were not checked."""
        if not header or not header[:6].lower() == "basic ":
            return None, None
        import base64
        import binascii

        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None, None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None, None
        token = hmac.new(self._key, decoded.encode("utf-8"), hashlib.sha256).digest()
        if token in self._ok:
            return user, None
        if token in self._bad:
            return None, None
        refused = self._take(client)
        if refused is not None:
            return None, refused
        ok = False
        try:
            encoded = self.users.get(user)
            ok = check_password(password, encoded if encoded is not None else self._dummy)
            ok = ok and encoded is not None
        finally:
            self._slots.release()
            with self._lock:
                self._in_check -= 1
                if ok:
                    self._give_back(client)
                cache = self._ok if ok else self._bad
                if len(cache) >= AUTH_CACHE:
                    cache.clear()
                cache[token] = True
        return (user if ok else None), None

    def _take(self, client):
        """Take one of ``client``'s failure allowance and a hash slot, or say why not."""
        now = time.monotonic()
        with self._lock:
            entry = self._failures.get(client)
            if entry is None:
                if len(self._failures) >= AUTH_ADDRESSES:
                    self._forget(now)
                entry = self._failures[client] = [float(AUTH_FAIL_BURST), now]
            else:
                entry[0] = min(AUTH_FAIL_BURST, entry[0] + (now - entry[1]) / AUTH_FAIL_PERIOD)
                entry[1] = now
            if entry[0] < 1.0:
                retry = int((1.0 - entry[0]) * AUTH_FAIL_PERIOD) + 1
                return AuthRefused(429, retry, "too many failed logins from this address")
            if self._in_check >= self._waiters:
                return AuthRefused(503, 1, "too many logins being checked")
            entry[0] -= 1.0
            self._in_check += 1
        if self._slots.acquire(timeout=AUTH_HASH_WAIT):
            return None
        with self._lock:
            self._in_check -= 1
            self._give_back(client)
        return AuthRefused(503, 1, "too many logins being checked")

    def _give_back(self, client):
        entry = self._failures.get(client)
        if entry is not None:
            entry[0] = min(AUTH_FAIL_BURST, entry[0] + 1.0)

    def _forget(self, now):
        """Drop the addresses whose allowance is whole again (all of them if none is)."""
        full = [
            client
            for client, (allowance, stamp) in self._failures.items()
            if allowance + (now - stamp) / AUTH_FAIL_PERIOD >= AUTH_FAIL_BURST
        ]
        for client in full:
            del self._failures[client]
        if len(self._failures) >= AUTH_ADDRESSES:
            self._failures.clear()


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
        # parse_head() let only ASCII digits through, so this is a number (or no header)
        self.has_body = "transfer-encoding" in headers or decimal(
            headers.get("content-length", "0")
        ) not in (0, None)


#: numbers longer than this (leading zeros aside) are larger than any file: int() never
#: sees them (it refuses more than 4300 digits on 3.11+, and they cost time before that)
MAX_DIGITS = 18
HUGE = 10**MAX_DIGITS
_ASCII_DIGITS = re.compile(r"[0-9]+\Z")


def decimal(text):
    """The value of a header's decimal number: ASCII digits only (``str.isdigit()`` also
    takes ``'²'`` and other scripts' digits, which ``int()`` then refuses or reads as
    something else).  HUGE for a number with more than MAX_DIGITS significant digits,
    None when ``text`` is not a number."""
    if not _ASCII_DIGITS.match(text):
        return None
    text = text.lstrip("0")
    if len(text) > MAX_DIGITS:
        return HUGE
    return int(text) if text else 0


class HeadError(Exception):
    def __init__(self, status, reason):
        Exception.__init__(self, reason)
        self.status = status


_HEAD_END = re.compile(b"\r?\n\r?\n")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_METHOD = re.compile(r"^[A-Z]+$")
_BAD_TARGET = re.compile(r"[^\x21-\x7e]")


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
    if _BAD_TARGET.search(target):
        # a bare CR (or any control or non-ASCII byte) would travel into a redirect's
        # Location or a log line: a request target is visible ASCII (RFC 9112 3.2)
        raise HeadError(400, "invalid character in request target")
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
    if "content-length" in headers:
        length = decimal(headers["content-length"])
        if length is None:
            raise HeadError(400, "bad Content-Length")
        if length >= HUGE:
            raise HeadError(400, "Content-Length too large")
    return Request(method, target, version, headers, line), m.end()


# --------------------------------------------------------------------------------------
# HTTP: the request handler
# --------------------------------------------------------------------------------------


class Response(object):
    """What the handler decided; turned into a Transfer by Handler.transfer()."""

    __slots__ = (
        "status",
        "headers",
        "body",
        "file",
        "offset",
        "length",
        "close",
        "user",
        "delay",
    )

    def __init__(self, status, headers=None, body=b""):
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.file = None
        self.offset = 0
        self.length = len(body)
        self.close = False
        self.user = None
        self.delay = 0.0  # seconds the I/O thread holds it before it goes out


def text_response(status, message=None, headers=None):
    text = "%d %s\n" % (status, REASONS.get(status, ""))
    if message:
        text += message + "\n"
    hdrs = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-cache")]
    return Response(status, hdrs + (headers or []), text.encode("utf-8"))


_LOG_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')
_LOG_NAMED = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def log_text(value):
    """``value`` safe for one log line: every control character (C0, DEL, C1) as
    ``\\xHH`` (or ``\\t \\n \\r``), quotes and backslashes escaped, non-ASCII as
    ``\\xHH`` / ``\\uHHHH``, so no client can end a line, forge another, or send
    terminal escapes to whoever reads the log."""
    value = _LOG_UNSAFE.sub(
        lambda m: _LOG_NAMED.get(m.group()) or "\\x%02x" % ord(m.group()), value
    )
    return value.encode("ascii", "backslashreplace").decode("ascii")


class AccessLog(object):
    """Common / combined log format lines, one write per request."""

    def __init__(self, stream, combined=False):
        self.stream = stream
        self.combined = combined
        self.lock = threading.Lock()

    _escape = staticmethod(log_text)

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

    def __init__(
        self,
        tree,
        auth=None,
        access_log=None,
        scheme="http",
        views=None,
        errors=None,
        public_url=None,
        trust_proxy=False,
    ):
        self.tree = tree
        self.views = views  # a ViewChooser (--view-by-user-agent), or None
        self.auth = auth
        self.access_log = access_log
        self.scheme = scheme
        self.errors = errors if errors is not None else sys.stderr
        self.public_url = public_url  # checked by check_public_url(): no trailing slash
        self.trust_proxy = trust_proxy
        self._date = (0, "")

    # -- entry point ------------------------------------------------------------------

    def handle(self, conn, req):
        """The answer to ``req`` on ``conn``, as a Transfer to write."""
        try:
            resp = self.respond(req, self.client_of(conn, req))
        except Exception as exc:
            self.error(conn, req, "cannot answer", exc)
            resp = _closing(text_response(500))
        t = self.transfer(conn, req, resp)
        if resp.delay > 0:
            t.due = time.monotonic() + resp.delay
        return t

    def client_of(self, conn, req):
        """The address failed logins are counted against: the peer, or with
        --trust-proxy the last X-Forwarded-For entry (the one the proxy added)."""
        if self.trust_proxy:
            forwarded = req.headers.get("x-forwarded-for", "").rsplit(",", 1)[-1].strip()
            if forwarded and _ADDRESS.match(forwarded):
                return forwarded
        return conn.client

    def base_url(self, req):
        """``scheme://host[/path]`` absolute URLs start with: --public-url when given;
        else with --trust-proxy the proxy's X-Forwarded-Proto / -Host (first values);
        else this server's scheme and the request's Host.  None when the host is not a
        plain host[:port] (then URLs stay root-relative)."""
        if self.public_url:
            return self.public_url
        scheme, host = self.scheme, req.headers.get("host", "")
        if self.trust_proxy:
            proto = req.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                scheme = proto
            forwarded = req.headers.get("x-forwarded-host", "").split(",")[0].strip()
            if forwarded:
                host = forwarded
        if not _HOST.match(host):
            return None
        return "%s://%s" % (scheme, host)

    def error(self, conn, req, what, exc):
        """One line on the error stream for a request that failed (a 500): the request,
        what failed and where, escaped like the access log (never a traceback: a client
        that can trigger one must not be able to flood the log)."""
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = " (%s:%d)" % (os.path.basename(tb.tb_frame.f_code.co_filename), tb.tb_lineno)
        line = 'error: %s "%s": %s: %s: %s%s\n' % (
            conn.client,
            log_text(req.line),
            what,
            type(exc).__name__,
            log_text(str(exc))[:500],
            where,
        )
        try:
            self.errors.write(line)
            self.errors.flush()
        except (OSError, ValueError):
            pass

    def respond(self, req, client="-"):
        """Auth first, whatever the method and route: every unauthenticated request
        gets the same 401."""
        user = None
        if self.auth is not None:
            user, refused = self.auth.check(req.headers.get("authorization"), client)
            if refused is not None:
                resp = text_response(
                    refused.status, refused.reason, [("Retry-After", str(refused.retry))]
                )
                resp.delay = AUTH_REFUSED_DELAY
                return resp
            if user is None:
                return text_response(
                    401,
                    "authentication required",
                    [("WWW-Authenticate", 'Basic realm="morgan_like", charset="UTF-8"')],
                )
        if req.method not in ("GET", "HEAD"):
            return text_response(405, headers=[("Allow", "GET, HEAD")])
        resp = self.route(req)
        resp.user = user
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
            # the tree's landing page when it has one (publish writes it), else its index
            landing = os.path.join(self.tree.root, LANDING_HTML)
            if os.path.isfile(landing):
                return self.serve_doc(req, landing, CONTENT_TYPE[TEXT_HTML])
            return redirect("/simple/" + suffix)
        top = parts[0]
        if n == 1 and top == LANDING_HTML and not trailing:
            return self.serve_doc(req, os.path.join(self.tree.root, top), CONTENT_TYPE[TEXT_HTML])
        if top == "simple":
            if self.views is not None:
                return self.route_by_agent(req, parts[1:], trailing, query)
            return self.route_simple(req, ("simple",), parts[1:], trailing, query)
        if top == "envs":
            return self.route_view(req, parts[1:], trailing, query)
        if top == "packages":
            if n < 3 or trailing:
                return text_response(404)
            return self.serve_file(req, parts)
        if top == "pypi" and n in (3, 4) and parts[-1] == "json":
            # Warehouse's JSON API, from a full mirror's json/<project> (bandersnatch reads
            # it): the project's document, or one release's (/pypi/<project>/<version>/json)
            name = normalize(parts[1])
            version = "/" + quote(parts[2], safe="") if n == 4 else ""
            if name != parts[1] or trailing:
                return redirect("/pypi/%s%s/json%s" % (quote(name, safe=""), version, suffix))
            path = os.path.join(self.tree.root, "json", name)
            if n == 4:
                return self.serve_release(req, path, name, parts[2])
            return self.serve_doc(req, path, JSON_API, absolute=True)
        if top == LOCKS_DIR and n == 2 and not trailing:
            return self.serve_lock(req, parts[1])
        if n == 1 and top == SBOM_NAME and not trailing:
            return self.serve_doc(req, os.path.join(self.tree.root, top), SBOM_TYPE)
        if n == 1 and top in SERIAL_FILES and not trailing:
            return self.serve_doc(req, os.path.join(self.tree.root, top), SERIAL_FILES[top])
        if n == 1:
            # morgan-style index-url = http://host:port/ : /<project>/
            name = normalize(top)
            if not os.path.isdir(os.path.join(self.tree.root, "simple", name)):
                return text_response(404)
            if name != top or not trailing:
                return redirect("/%s/%s" % (quote(name, safe=""), suffix))
            return self.serve_page(req, ("simple", name), query)
        return text_response(404)

    def route_simple(self, req, base, rest, trailing, query, url=None, vary=None, tag=""):
        """An index below ``base`` (``("simple",)`` or ``("envs", NAME, "simple")``):
        ``rest`` is the path's segments after it; ``url``: its URL (default: base's)."""
        suffix = "?" + query if query else ""
        if url is None:
            url = "/" + "/".join(base) + "/"
        n = len(rest)
        if n == 0:
            if not trailing:
                return redirect(url + suffix)
            return self.serve_page(req, base, query, vary=vary, tag=tag)
        if n == 1 and not trailing and rest[0] in ("index.html", "index.json"):
            return self.serve_page(req, base, query, rest[0], vary, tag)
        if n == 1:
            name = normalize(rest[0])
            if name != rest[0] or not trailing:
                return redirect("%s%s/%s" % (url, quote(name, safe=""), suffix))
            return self.serve_page(req, base + (name,), query, vary=vary, tag=tag)
        if n == 2 and not trailing and rest[1] in ("index.html", "index.json"):
            if normalize(rest[0]) != rest[0]:
                return text_response(404)
            return self.serve_page(req, base + (rest[0],), query, rest[1], vary, tag)
        return text_response(404)

    def route_by_agent(self, req, rest, trailing, query):
        """``/simple/...`` with --view-by-user-agent: from the view of the env the
        client's User-Agent matches (named by X-Morgan-Like-View), else the union."""
        env = self.views.choose(req.headers.get("user-agent"))
        if env is None or not self.tree.is_view(env):
            return self.route_simple(req, ("simple",), rest, trailing, query, vary=VARY_AGENT)
        base = ("envs", env, "simple")
        resp = self.route_simple(req, base, rest, trailing, query, "/simple/", VARY_AGENT, env)
        if not any(name == "Vary" for name, _ in resp.headers):
            resp.headers.append(("Vary", VARY_AGENT))
        resp.headers.append(("X-Morgan-Like-View", env))
        return resp

    def route_view(self, req, rest, trailing, query):
        """``/envs/...``: an env's index view, ``/envs/NAME/simple/...`` (``/envs/``: a
        list of them)."""
        suffix = "?" + query if query else ""
        if not rest:
            if not trailing:
                return redirect("/envs/" + suffix)
            return self.views_page(req)
        env = rest[0]
        base = ("envs", env, "simple")
        if not _VIEW_NAME.match(env) or not self.tree.is_view(env):
            return text_response(404)
        if len(rest) == 1 or (len(rest) == 2 and rest[1] == "simple" and not trailing):
            return redirect("/envs/%s/simple/%s" % (env, suffix))
        if rest[1] != "simple":
            return text_response(404)
        return self.route_simple(req, base, rest[2:], trailing, query)

    def views_page(self, req):
        """``/envs/``: a small HTML page linking each env's view."""
        names = self.tree.views()
        if not names and not self.tree.is_dir("envs"):
            return text_response(404)
        lines = [
            "<!DOCTYPE html>",
            "<html>",
            "  <head>",
            "    <title>Index views</title>",
            "  </head>",
            "  <body>",
            "    <h1>Index views</h1>",
        ]
        for name in names:
            lines.append('    <a href="%s/simple/">%s</a><br>' % (name, name))
        lines += ["  </body>", "</html>", ""]
        headers = [
            ("Content-Type", CONTENT_TYPE[TEXT_HTML]),
            ("Cache-Control", PAGE_CACHE_CONTROL),
        ]
        return Response(200, headers, "\n".join(lines).encode("utf-8"))

    # -- index pages --------------------------------------------------------------------

    def serve_page(self, req, dirparts, query, fixed=None, vary=None, tag=""):
        """An index page of directory ``dirparts``; ``vary``: the Vary header (default
        "Accept, Accept-Encoding"); ``tag``: told apart in the ETag (a view's name)."""
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
                    [("Vary", vary or "Accept")],
                )
        path, st = found[JSON_V1 if media == JSON_V1 else TEXT_HTML]
        if not self.tree.contained(path):
            return text_response(404)
        page = self.tree.page(path, JSON_V1 if media == JSON_V1 else TEXT_HTML, st)
        serial = page_serial(page.body)
        if serial is None and media != JSON_V1:
            serial = self.twin_serial(directory)
        return self.page_response(
            req,
            page,
            CONTENT_TYPE[media],
            vary or "Accept, Accept-Encoding",
            tag=tag,
            serial=serial,
        )

    def twin_serial(self, directory):
        """The serial of ``directory``'s index.json, for its HTML page that carries none
        (the root page: PEP 503 HTML has no place for it), or None."""
        path = os.path.join(directory, "index.json")
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or not self.tree.contained(path):
            return None
        return page_serial(self.tree.page(path, JSON_V1, st).body)

    def page_response(self, req, page, content_type, vary, rewrite=None, tag="", serial=None):
        """A cached page or doc: ETag / Last-Modified (304), gzip when asked, and its
        serial (``serial``, else the one it carries) as X-PyPI-Last-Serial.
        ``rewrite``: the body is rewritten for this request (then neither validators nor
        gzip apply)."""
        use_gzip = (
            rewrite is None
            and page.gz is not None
            and accepts_gzip(req.headers.get("accept-encoding"))
        )
        etag = page.etag[:-1] + ("-" + tag if tag else "") + ('-gz"' if use_gzip else '"')
        headers = [
            ("Content-Type", content_type),
            ("Vary", vary),
            ("Cache-Control", PAGE_CACHE_CONTROL),
            ("ETag", etag),
            ("Last-Modified", page.last_modified),
        ]
        if serial is None:
            serial = page_serial(page.body)
        if serial is not None:
            headers.append(("X-PyPI-Last-Serial", serial))
        if rewrite is not None:
            return Response(200, headers[:3] + headers[5:], rewrite(page.body))
        if not_modified(req, etag, page.mtime):
            return Response(304, headers[1:])
        if use_gzip:
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, headers, page.gz if use_gzip else page.body)

    def serve_doc(self, req, path, content_type, absolute=False):
        """A full mirror's Warehouse JSON or serial list: a small file, revalidated like a page.

        ``absolute``: the file URLs (``/packages/...``, so the tree stays relocatable) are
        made absolute with base_url() (--public-url, the proxy's headers, or this request's
        Host): mirrors reading Warehouse JSON download them as they are (bandersnatch does).
        """
        try:
            st = os.stat(path)
        except OSError:
            return text_response(404)
        if not stat.S_ISREG(st.st_mode) or not self.tree.contained(path):
            return text_response(404)
        page = self.tree.page(path, content_type, st)
        base = self.base_url(req) if absolute else None
        rewrite = None
        if base is not None and b'"url": "/packages/' in page.body:
            prefix = ('"url": "%s/packages/' % base).encode("ascii")

            def rewrite(body):
                return body.replace(b'"url": "/packages/', prefix)

        return self.page_response(req, page, content_type, "Accept-Encoding", rewrite)

    def serve_lock(self, req, name):
        """``/locks/pylock.<env>.toml`` and ``/locks/<env>.requirements.txt``, made to work
        from a URL: a pylock's ``path = "../packages/..."`` entries become absolute
        ``url`` ones (uv resolves a fetched lock's paths against its working directory),
        and a requirements file's ``--no-index`` becomes ``--index-url`` of the env's
        view, its ``--find-links`` paths dropped (pip resolves them against a local
        file's folder only).  The base URL is base_url()'s; without one, as on disk."""
        pylock = _PYLOCK_NAME.match(name)
        reqs = None if pylock else _REQUIREMENTS_NAME.match(name)
        if not pylock and not reqs:
            return text_response(404)
        path = os.path.join(self.tree.root, LOCKS_DIR, name)
        try:
            st = os.stat(path)
        except OSError:
            return text_response(404)
        if not stat.S_ISREG(st.st_mode) or not self.tree.contained(path):
            return text_response(404)
        content_type = PYLOCK_TYPE if pylock else REQUIREMENTS_TYPE
        page = self.tree.page(path, content_type, st)
        base = self.base_url(req)
        if base is None:
            return self.page_response(req, page, content_type, "Accept-Encoding")
        if pylock:

            def rewrite(body):
                def url(match):
                    target = quote(match.group(1).decode("utf-8"), safe="/")
                    return ('url = "%s/%s"' % (base, target)).encode("ascii")

                return _LOCK_PATH.sub(url, body)

        else:
            index = "--index-url %s/envs/%s/simple/" % (base, quote(reqs.group(1), safe=""))

            def rewrite(body):
                lines = []
                for line in body.decode("utf-8").split("\n"):
                    if line.strip() == "--no-index":
                        lines.append(index)
                    elif not line.startswith("--find-links ../"):
                        lines.append(line)
                return "\n".join(lines).encode("utf-8")

        return self.page_response(req, page, content_type, "Accept-Encoding", rewrite)

    def serve_release(self, req, path, name, version):
        """``/pypi/<project>/<version>/json`` as Warehouse answers it, built from the
        project's document: ``info`` as that gives it with this ``version`` (and its
        yanked state), filled from the release's wheel metadata where a ``.metadata``
        file is in the tree (release_info); the release's files as ``urls``; 404 for a
        version the document does not list (the exact string, as a release's key)."""
        try:
            st = os.stat(path)
        except OSError:
            return text_response(404)
        if not stat.S_ISREG(st.st_mode) or not self.tree.contained(path):
            return text_response(404)
        doc = json.loads(self.tree.page(path, JSON_API, st).body.decode("utf-8"))
        files = (doc.get("releases") or {}).get(version)
        if not isinstance(files, list):
            return text_response(404)
        info = dict(doc.get("info") or {})
        if info.get("version") != version:
            # the document's info describes its newest release: nothing of it that is
            # that release's own holds for this one
            info.update(RELEASE_FIELDS)
            info["version"] = version
        yanked = [f for f in files if f.get("yanked")]
        info["yanked"] = bool(files) and len(yanked) == len(files)
        info["yanked_reason"] = (yanked[0].get("yanked_reason") or None) if yanked else None
        info["requires_python"] = next(
            (f["requires_python"] for f in files if f.get("requires_python")), None
        )
        info.update(self.release_info(name, files))
        release = {  # last_serial first: page_serial() reads it from the head
            "last_serial": doc.get("last_serial"),
            "info": info,
            "urls": files,
            "vulnerabilities": [],
        }
        body = json.dumps(release).encode("ascii")
        base = self.base_url(req)
        if base is not None:
            body = body.replace(b'"url": "/packages/', ('"url": "%s/packages/' % base).encode())
        headers = [
            ("Content-Type", JSON_API),
            ("Vary", "Accept-Encoding"),
            ("Cache-Control", PAGE_CACHE_CONTROL),
        ]
        if isinstance(doc.get("last_serial"), int):
            headers.append(("X-PyPI-Last-Serial", str(doc["last_serial"])))
        return Response(200, headers, body)

    def release_info(self, name, files):
        """``info`` fields from the core metadata (stdlib email parser) of the release's
        first wheel, by name, that has a ``.metadata`` file under ``packages/<name>/``:
        RELEASE_FIELDS (project_urls from Project-URL), and requires_python when it
        gives one; the same fields json/<project> gives its newest release.  Empty when
        no wheel of the release has one (or with --no-metadata)."""
        if self.tree.no_metadata:
            return {}
        for entry in sorted(files, key=lambda f: str(f.get("filename"))):
            filename = entry.get("filename")
            if not isinstance(filename, str) or not filename.endswith(".whl"):
                continue
            if filename_problem(filename) is not None:
                continue
            path = os.path.join(self.tree.root, "packages", name, filename + ".metadata")
            try:
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    if not stat.S_ISREG(st.st_mode) or st.st_size > RELEASE_METADATA_MAX:
                        continue
                    if not self.tree.contained(path):
                        continue
                    text = f.read().decode("utf-8", "replace")
            except (OSError, IOError):
                continue
            msg = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)
            urls = {}
            for value in msg.get_all("Project-URL") or []:
                label, sep, url = str(value).partition(",")
                if sep and label.strip() and url.strip():
                    urls[label.strip()] = url.strip()

            def every(field):
                return [str(v).strip() for v in msg.get_all(field) or []]

            info = {
                "summary": msg.get("Summary"),
                "requires_dist": every("Requires-Dist") or None,
                "license": msg.get("License"),
                "license_expression": msg.get("License-Expression"),
                "classifiers": every("Classifier"),
                "project_urls": urls or None,
                "provides_extra": every("Provides-Extra") or None,
            }
            if msg.get("Requires-Python"):
                info["requires_python"] = msg.get("Requires-Python")
            return info
        return {}

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
            ctype = JSON_API if name.endswith(PROVENANCE_SUFFIX) else "application/octet-stream"
            headers = [
                ("Content-Type", ctype),
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

    def head(self, req, resp, keep):
        """The response head's bytes (latin-1: a header value that is not raises)."""
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
        return "".join(head).encode("latin-1")

    def transfer(self, conn, req, resp):
        """``resp`` as a Transfer: the bytes and the file range to write.

        Nothing is written here.  The caller writes what the socket takes at once
        and leaves the rest to the I/O thread (IndexServer._write), so no thread ever
        waits on a client that stops reading.  The memory a connection holds is one
        response: its head, a body up to SMALL_FILE (larger files are read as they go
        out), or a cached page's bytes, which are shared.
        """
        # A request body is never read: its bytes would be taken for the connection's
        # next request (a request smuggled past a keep-alive proxy), so any answer to a
        # request with a body, a 401 or a 405 as much as a 200, closes the connection.
        keep = req.keep_alive and not resp.close and not conn.eof and not req.has_body
        try:
            head = self.head(req, resp, keep)
        except Exception as exc:
            self.error(conn, req, "cannot write the response head", exc)
            if resp.file is not None:
                resp.file.close()
            resp, keep = text_response(500), False
            head = self.head(req, resp, keep)
        send_body = req.method != "HEAD" and resp.status != 304 and resp.length > 0
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
        f = resp.file
        try:
            if not send_body:
                return Transfer([head], len(head), keep, log)
            if f is None and len(resp.body) <= SMALL_FILE:
                return Transfer([head + resp.body], len(head), keep, log)
            if f is None:
                return Transfer([head, resp.body], len(head), keep, log)
            if resp.length <= SMALL_FILE:
                f.seek(resp.offset)
                data = f.read(resp.length)
                if len(data) != resp.length:
                    raise IOError("file changed while serving")
                return Transfer([head + data], len(head), keep, log)
            t = Transfer([head], len(head), keep, log)
            t.file, t.offset, t.remaining = f, resp.offset, resp.length
            f = None  # the transfer closes it
            return t
        except (OSError, IOError, ValueError):
            # the head promised bytes we cannot read: send nothing, close
            t = Transfer([], 0, False, log)
            t.failed = True
            return t
        finally:
            if f is not None:
                f.close()


class Transfer(object):
    """A response on its way out: bytes (a head, a small body, a cached page), then
    maybe a file range.  Written without blocking, first by the worker that made it,
    then by the I/O thread whenever the socket takes more."""

    __slots__ = (
        "parts",
        "file",
        "offset",
        "remaining",
        "head",
        "written",
        "keep",
        "failed",
        "log",
        "chunk",
        "want",
        "due",
    )

    def __init__(self, parts, head, keep, log):
        self.parts = collections.deque(memoryview(p) for p in parts if p)
        self.file = None
        self.offset = 0
        self.remaining = 0  # bytes of the file range still to write
        self.head = head  # length of the head (the access log counts body bytes)
        self.written = 0
        self.keep = keep
        self.failed = False
        self.log = log
        self.chunk = None  # a file chunk read but not yet fully written (no sendfile / TLS)
        self.want = selectors.EVENT_WRITE
        self.due = 0.0  # monotonic time before which nothing is written (0: at once)

    def write(self, conn):
        """Write to ``conn`` what its socket takes now; True when all is written.

        Raises what a non-blocking socket raises when it is full (BlockingIOError,
        ssl.SSLWant*Error) and OSError when the connection or the file failed.  After a
        want-write, TLS needs the very same bytes again: a slice only moves on a
        successful send.
        """
        sock = conn.sock
        for _ in range(TRANSFER_ROUNDS):
            if self.parts:
                part = self.parts[0]
                n = sock.send(part[: TRANSFER_CHUNK if conn.plain else CHUNK])
                if n < len(part):
                    self.parts[0] = part[n:]
                else:
                    self.parts.popleft()
            elif self.remaining <= 0:
                return True
            elif conn.plain and HAVE_SENDFILE:
                n = os.sendfile(
                    conn.fileno,
                    self.file.fileno(),
                    self.offset,
                    min(self.remaining, TRANSFER_CHUNK),
                )
                if n == 0:
                    raise IOError("file shrank while serving")
                self.offset += n
                self.remaining -= n
            else:
                if self.chunk is None:
                    self.file.seek(self.offset)
                    data = self.file.read(min(self.remaining, CHUNK))
                    if not data:
                        raise IOError("file shrank while serving")
                    self.chunk = memoryview(data)
                n = sock.send(self.chunk)
                self.chunk = self.chunk[n:] if n < len(self.chunk) else None
                self.offset += n
                self.remaining -= n
            self.written += n
        return not self.parts and self.remaining <= 0

    def finish(self, access_log):
        """Release the file and log the request (once); True when the connection may
        carry on with its next request."""
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.log is not None and access_log is not None:
            self.log[4] = max(0, self.written - self.head)
            access_log.log(*self.log)
        self.log = None
        return self.keep and not self.failed and not self.parts and self.remaining <= 0


HAVE_SENDFILE = hasattr(os, "sendfile")
TRANSFER_CHUNK = 4 * 1024 * 1024
TRANSFER_ROUNDS = 4  # writes per readiness event, so that one fast client cannot hog the loop
CHUNK = 256 * 1024  # read size when os.sendfile cannot be used
KEEPALIVE_LINGER = 0.005  # seconds an idle-pool worker waits for a connection's next request
#: connections one client address may hold (--max-per-address; at most half of all):
#: above pip's pool (10) and uv's parallel downloads (50), far below the whole table
MAX_PER_ADDRESS = 100
MAX_THREADS = 1024


VARY_AGENT = "Accept, Accept-Encoding, User-Agent"


#: what a Location keeps as it is (RFC 3986 reserved characters and ``%``); anything
#: else, non-ASCII above all, is percent-encoded as UTF-8
_LOCATION_SAFE = "!#$%&'()*+,/:;=?@[]~"


def redirect(location):
    """A 301 to ``location`` (a path, maybe with a query), percent-encoded to ASCII: a
    header is written in latin-1, and a raw character from the request must never reach
    one (callers quote path segments that may hold ``?`` or ``#``)."""
    return text_response(301, headers=[("Location", quote(location, safe=_LOCATION_SAFE))])


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
    """``(first, last)`` of a single byte range, "unsatisfiable", or None (serve all).

    RFC 9110 section 14: a Range this server does not take (another unit, several
    ranges, anything that is not ``bytes=FIRST-[LAST]`` or ``bytes=-SUFFIX`` in ASCII
    digits, LAST before FIRST) is ignored, and the whole file is served; a FIRST at or
    beyond the end, or a zero SUFFIX, is unsatisfiable (416).  Numbers longer than
    MAX_DIGITS count as larger than any file, so they are never given to int().
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [item.strip() for item in spec.split(",")]
    specs = [item for item in specs if item]  # RFC 9110 5.6.1: empty list elements
    if len(specs) != 1:
        return None  # several ranges (or none): answer 200 with the whole file
    first, sep, last = specs[0].partition("-")
    first, last = first.strip(), last.strip()
    if not sep or not (first or last):
        return None
    start = decimal(first) if first else 0
    end = decimal(last) if last else HUGE
    if start is None or end is None:
        return None
    if not first:
        if end == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - end), size - 1
    if end < start:
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
        view_by_user_agent=False,
        warn=None,
        max_per_address=None,
        public_url=None,
        trust_proxy=False,
    ):
        self.tree = Tree(root, no_metadata=no_metadata)
        self.views = ViewChooser.from_tree(self.tree, warn) if view_by_user_agent else None
        check_options(port=port, threads=threads, timeout=timeout, max_per_address=max_per_address)
        self.threads = int(threads)
        self.timeout = float(timeout)
        self.ssl_context = _tls_context(certfile, keyfile) if certfile else None
        auth = None
        if auth_file:
            _input_file("--auth-file", auth_file, "a readable file of user:pbkdf2_sha256$... lines")
            try:
                auth = Authenticator(auth_file, waiters=self.threads // 4)
            except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                raise StartError(
                    "--auth-file %s: %s; give a file of user:pbkdf2_sha256$... lines "
                    "(python3 server.py --hash-password USER makes one)" % (auth_file, _why(exc))
                )
        self.handler = Handler(
            self.tree,
            auth,
            access_log and AccessLog(access_log, log_format == "combined"),
            "https" if self.ssl_context else "http",
            self.views,
            public_url=check_public_url(public_url) if public_url else None,
            trust_proxy=trust_proxy,
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
        if max_per_address is None:
            max_per_address = min(MAX_PER_ADDRESS, max(1, max_connections // 2))
        self.max_per_address = int(max_per_address)  # 0: no cap

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(1024)
            self.socket.setblocking(False)
        except (OSError, OverflowError, ValueError, UnicodeError) as exc:
            self.socket.close()
            raise StartError(
                "-H/--host %s -p/--port %s: cannot listen there (%s); give an address of "
                "this machine (0.0.0.0: all) and a free port (0: any)" % (host, port, _why(exc))
            )
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
        self._delayed = []  # heap of (due, order, Connection): held answers (Transfer.due)
        self._order = itertools.count()
        self._count_lock = threading.Lock()
        self._open = 0
        self._per_address = {}  # client address -> its open connections
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
    # writing a response its client has not taken yet (Connection.transfer).  A
    # connection with a complete request head goes to the work queue; a worker answers
    # it (and any pipelined requests behind it) with non-blocking writes, and hands it
    # back through self._returned, with the unwritten rest of a response as its
    # transfer.  Sockets stay non-blocking (but for a worker's few-ms keep-alive
    # linger), so no thread waits on a client.  A connection with a transfer is not
    # read: its pipelined requests wait until the response is out, which bounds what
    # a client that never reads can make the server hold to one response.

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
                wait = 0.2 if drain_until else 1.0
                if self._delayed:
                    wait = max(0.0, min(wait, self._delayed[0][0] - now))
                for key, _mask in sel.select(wait):
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
                self._release_delayed()
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

    def _release_delayed(self):
        """Start writing the held answers that are due, all of them when stopping (the
        connection may have been closed meanwhile: by the idle sweep or at shutdown)."""
        now = float("inf") if self._stopping.is_set() else time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            conn = heapq.heappop(self._delayed)[2]
            t = conn.transfer
            if self._idle.get(conn.fileno) is conn and t is not None:
                t.due = 0.0
                self._selector.register(conn.sock, t.want, conn)

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
            client = addr[0]
            with self._count_lock:
                held = self._per_address.get(client, 0)
                if not self.max_per_address or held < self.max_per_address:
                    self._per_address[client] = held + 1
                    held = -1
            if held >= 0:
                self._refuse(sock, client)
                continue
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
                    self._release(client)
                    continue
            with self._count_lock:
                self._open += 1
            conn = Connection(sock, client, plain=self.ssl_context is None)
            conn.handshaking = self.ssl_context is not None
            conn.deadline = time.monotonic() + self.timeout
            self._idle[conn.fileno] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _refuse(self, sock, client):
        """A connection over the per-address cap: a 503 when the socket takes it at
        once (plain HTTP), then closed, before anything is read from it."""
        if self.ssl_context is None:
            body = b"503 Service Unavailable\ntoo many connections from this address\n"
            head = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Retry-After: 1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            ).encode("latin-1")
            try:
                sock.send(head + body)
                sock.recv(RECV_SIZE)  # what already arrived: a close then sends no reset
            except OSError:
                pass
        try:
            sock.close()
        except OSError:
            pass
        if self.handler.access_log is not None:
            self.handler.access_log.log(client, None, "-", 503, 0)

    def _release(self, client):
        with self._count_lock:
            held = self._per_address.get(client, 1) - 1
            if held > 0:
                self._per_address[client] = held
            else:
                self._per_address.pop(client, None)

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

    def _write(self, conn, t):
        """Write what ``conn`` takes now, never waiting.  Returns the selector event to
        wait for, or 0 when ``t`` is done (written, or failed: then ``t.failed``)."""
        written = t.written
        want = selectors.EVENT_WRITE
        try:
            if t.write(conn):
                return 0
        except _SSL_WANT_READ:
            want = selectors.EVENT_READ
        except (BlockingIOError, InterruptedError) + _WANT_WRITE:
            pass
        except (OSError, IOError, ValueError):
            t.failed = True
            return 0
        if t.written != written:
            conn.deadline = time.monotonic() + self.timeout
        return want

    def _push(self, conn):
        """Write more of ``conn.transfer``; when it is done, read the next request."""
        t = conn.transfer
        want = self._write(conn, t)
        if want:
            if want != t.want:
                t.want = want
                self._selector.modify(conn.sock, want, conn)
            return  # wait for the socket to be ready again
        conn.transfer = None
        if not t.finish(self.handler.access_log) or self._stopping.is_set():
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
            conn.transfer.finish(self.handler.access_log)
            conn.transfer = None
        self._close(conn)

    def _close(self, conn):
        if conn.plain:
            # what the client sent and nobody read (a request body, pipelined requests)
            # would make close() send a reset, which can destroy the last response
            # before the client reads it: take what has arrived (a few reads at most)
            try:
                for _ in range(4):
                    if not conn.sock.recv(RECV_SIZE):
                        break
            except (OSError, ValueError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass
        with self._count_lock:
            self._open -= 1
        self._release(conn.client)

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
                if conn.transfer.due:
                    heapq.heappush(self._delayed, (conn.transfer.due, next(self._order), conn))
                    continue
                # the worker wrote until the socket was full: wait until it takes more
                self._selector.register(conn.sock, conn.transfer.want, conn)
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
            except Exception as exc:
                self.handler.error(conn, req, "connection failed", exc)
                self._close(conn)
            finally:
                with self._count_lock:
                    self._busy -= 1
                self._wake()

    def _serve_connection(self, conn, req):
        """Answer ``req``, and the requests pipelined behind it while the socket takes
        each answer whole.  A response the socket cannot take at once goes back to the
        I/O thread as ``conn.transfer``: the worker never waits on a client, and the
        connection's next request is not read until that response is out."""
        t = self.handler.handle(conn, req)
        while True:
            if t.due:
                conn.transfer = t  # the I/O thread sends it when due
                break
            want = self._write(conn, t)
            if want:
                t.want = want
                conn.transfer = t
                break
            if not t.finish(self.handler.access_log) or self._stopping.is_set():
                self._close(conn)
                return
            try:
                req, consumed = parse_head(conn.buf)
                if req is None and KEEPALIVE_LINGER > 0 and self._work.empty():
                    req, consumed = self._linger(conn)
            except HeadError as exc:
                t = self.handler.transfer(
                    conn,
                    Request("GET", "/", "HTTP/1.1", {}, "-"),
                    _closing(text_response(exc.status, str(exc))),
                )
                continue
            except (OSError, ValueError):
                self._close(conn)
                return
            if req is None:
                if conn.eof:
                    self._close(conn)
                    return
                break
            del conn.buf[:consumed]
            t = self.handler.handle(conn, req)
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
            sock.setblocking(False)
        return None, 0


class StartError(Exception):
    """The server cannot start as configured: one line that names the option, its
    value and what to do (main() prints it and exits 2)."""


def _why(exc):
    """An OSError's reason without its errno and path (the message names both)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text (byte %d)" % (exc.start + 1)
    return str(exc) or type(exc).__name__


def check_options(port=0, threads=1, timeout=1.0, max_per_address=None):
    """StartError for a value out of range (argparse checked the types)."""
    if not 0 <= port <= 65535:
        raise StartError("-p/--port %s: not a port; give 0 to 65535 (0: any free port)" % port)
    if not 1 <= threads <= MAX_THREADS:
        raise StartError(
            "--threads %s: give 1 to %d worker threads (default 32)" % (threads, MAX_THREADS)
        )
    if not 0 < timeout <= 86400:  # NaN fails too
        raise StartError("--timeout %s: give seconds above 0, at most 86400 (default 30)" % timeout)
    if max_per_address is not None and max_per_address < 0:
        raise StartError(
            "--max-per-address %s: give 0 (no cap) or a number of connections (default %d)"
            % (max_per_address, MAX_PER_ADDRESS)
        )


def _input_file(flag, path, what):
    """StartError unless ``path`` is a regular file this process can read (a FIFO
    would block the start; a directory or a missing file would fail later, unnamed)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise StartError("%s %s: not a regular file; give %s" % (flag, path, what))
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise StartError("%s %s: cannot read it (%s); give %s" % (flag, path, _why(exc), what))


def _tls_context(certfile, keyfile):
    """The server's TLS context (TLS 1.2 and up) from --certfile / --keyfile."""
    if ssl is None:
        raise StartError("--certfile: this Python has no ssl module; serve plain HTTP")
    _input_file("--certfile", certfile, "the server's certificate chain (PEM), readable")
    if keyfile:
        _input_file("--keyfile", keyfile, "the certificate's private key (PEM), readable")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if hasattr(ssl, "TLSVersion"):  # 3.7+
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.options |= ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
    try:
        ctx.load_cert_chain(certfile, keyfile or None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "reason", None) or _why(exc)
        if keyfile:
            raise StartError(
                "--certfile %s --keyfile %s: cannot load them (%s); give a PEM certificate "
                "chain and the PEM private key of its certificate, unencrypted"
                % (certfile, keyfile, reason)
            )
        raise StartError(
            "--certfile %s: cannot load a certificate and its key from it (%s); give a PEM "
            "chain with the private key, or the key with --keyfile" % (certfile, reason)
        )
    return ctx


def _closing(resp):
    resp.close = True
    return resp


def serve(root, host="0.0.0.0", port=8080, **opts):
    """Serve ``root`` until SIGINT/SIGTERM (or KeyboardInterrupt); returns an exit code.

    ``opts``: threads, timeout, no_metadata, certfile, keyfile, auth_file,
    access_log (a stream or None), log_format ("common"/"combined"),
    view_by_user_agent, max_per_address, public_url, trust_proxy, announce (a stream
    for the startup lines, default stdout).  Raises StartError when it cannot start.
    """
    announce = opts.pop("announce", sys.stdout)
    server = IndexServer(root, host, port, warn=sys.stderr.write, **opts)
    bound_host, bound_port = server.server_address
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = socket.gethostname() or "localhost"
    if ":" in shown:
        shown = "[%s]" % shown
    base = server.handler.public_url or "%s://%s:%d" % (server.scheme, shown, bound_port)
    url = base + "/simple/"
    if announce is not None:
        announce.write(
            'Serving %s at %s  (pip: index-url = %s ; uv: [[index]] url = "%s") '
            "bound to %s:%d, %d threads\n"
            % (server.tree.root, url, url, url, bound_host, bound_port, server.threads)
        )
        for env in server.tree.views():
            view = "%s/envs/%s/simple/" % (base, env)
            announce.write(
                '  env %s: pip install --index-url %s PACKAGE  (uv: [[index]] url = "%s")\n'
                % (env, view, view)
            )
        if server.views is not None:
            announce.write(
                "  %s/simple/ answers from the view of the env a pip or uv User-Agent matches "
                "(%d of them with markers in morgan.ini), else from the union\n"
                % (url[: -len("/simple/")], len(server.views.envs))
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
#
# Streaming: memory stays bounded by the largest project whatever the tree's size.
# Project names (from the root pages and the simple/ and packages/ directories) and
# the files no page of their own project links go to a temporary sqlite database,
# where the set comparisons are joins; the projects are then checked one at a time.

MANIFEST_FORMATS = ("morgan-like-manifest/1", "morgan-like-manifest/2")
VERIFY_BATCH = 2000  # rows per sqlite transaction, projects per query
HASH_CHUNK = 1024 * 1024

# where a project name was seen (the "names" table's src column)
_IN_ROOT_HTML, _IN_ROOT_JSON, _PAGE_DIR, _PACKAGE_DIR = 1, 2, 3, 4
_INSERT = {
    "names": "INSERT OR IGNORE INTO names (name, src) VALUES (?, ?)",
    "unlinked": "INSERT OR IGNORE INTO unlinked (rel) VALUES (?)",
    "linked": "INSERT OR IGNORE INTO linked (rel) VALUES (?)",
}


def _hidden(rel):
    return any(part.startswith(".") for part in rel.split("/"))


def _bad_relpath(rel):
    parts = rel.split("/")
    return (
        not rel
        or rel.startswith("/")
        or "\\" in rel
        or any(part in ("", ".", "..") for part in parts)
        or _hidden(rel)
    )


def _is_project_path(rel):
    """Under packages/, simple/<project>/ or a view's envs/NAME/simple/<project>/:
    vouched for by the project pages."""
    parts = rel.split("/")
    return (
        parts[0] == "packages"
        or (parts[0] == "simple" and len(parts) > 2)
        or (parts[0] == "envs" and len(parts) > 4 and parts[2] == "simple")
    )


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Progress(object):
    """``verifying: N/M projects`` on stderr when it is a terminal, 5 times a second."""

    def __init__(self, stream):
        self.stream = stream if stream is not None and _isatty(stream) else None
        self.total = 0
        self.done = 0
        self.last = 0.0
        self.width = 0

    def show(self, text, force=False):
        if self.stream is None:
            return
        now = time.monotonic()
        if force or now - self.last > 0.2:
            self.last = now
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)

    def clear(self):
        if self.stream is not None and self.width:
            self.stream.write("\r%s\r" % (" " * self.width))
            self.stream.flush()
            self.width = 0
            self.last = 0.0

    def add(self):
        self.done += 1
        self.show("verifying: %d/%d projects" % (self.done, self.total))

    def finish(self):
        if self.stream is not None and self.total:
            self.show("verifying: %d/%d projects" % (self.done, self.total), force=True)
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


PROVENANCE_MAX = 1 << 20  # as morgan_like/tree/provenance.py's MAX_PROVENANCE_BYTES
_DIST_SEPARATORS = re.compile(r"[-_.]+")


def _provenance_statements(data):
    """``(publishers, [(subject name, sha256), ...])`` of a PEP 740 provenance object;
    ValueError names what is malformed.  The stdlib half of
    morgan_like/tree/provenance.py's check_form."""
    if len(data) > PROVENANCE_MAX:
        raise ValueError("larger than %d bytes" % PROVENANCE_MAX)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("not JSON")
    bundles = doc.get("attestation_bundles") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not bundles:
        raise ValueError("not a version 1 provenance object")
    if not isinstance(bundles, list):
        raise ValueError("no attestation_bundles")
    publishers, subjects = [], []
    for bundle in bundles:
        publisher = bundle.get("publisher") if isinstance(bundle, dict) else None
        atts = bundle.get("attestations") if isinstance(bundle, dict) else None
        if not isinstance(publisher, dict) or not isinstance(publisher.get("kind"), str):
            raise ValueError("an attestation bundle without a publisher")
        if not isinstance(atts, list) or not atts:
            raise ValueError("an attestation bundle without attestations")
        publishers.append(_publisher_text(publisher))
        for att in atts:
            try:
                raw = base64.b64decode(att["envelope"]["statement"])
                subject = json.loads(raw.decode("utf-8"))["subject"]
                if not isinstance(subject, list) or len(subject) != 1:
                    raise ValueError("an attestation without exactly one subject")
                subjects.append((subject[0]["name"], subject[0]["digest"]["sha256"]))
            except (TypeError, KeyError, IndexError, ValueError, binascii.Error) as exc:
                if str(exc).startswith("an attestation"):
                    raise
                raise ValueError("an attestation whose statement cannot be read")
    return publishers, subjects


def _publisher_text(publisher):
    """Who published, in a few words: as morgan_like/tree/provenance.describe_publisher."""

    def get(key):
        value = publisher.get(key)
        return "" if value in (None, "") else str(value)

    kind = str(publisher.get("kind"))
    env = ", environment %s" % get("environment") if get("environment") else ""
    if kind == "GitHub":
        return "GitHub %s, workflow %s%s" % (get("repository"), get("workflow"), env)
    if kind == "GitLab":
        return "GitLab %s, %s%s" % (get("repository"), get("workflow_filepath"), env)
    if kind == "Google":
        return "Google %s" % get("email")
    if kind == "CircleCI":
        origin = " (%s)" % get("vcs_origin") if get("vcs_origin") else ""
        return "CircleCI project %s%s" % (get("project_id"), origin)
    return kind


def _same_dist(name, filename):
    """The attested name is the file's (it may be normalized: case, separators)."""
    if not isinstance(name, str):
        return False
    loose = lambda text: _DIST_SEPARATORS.sub("_", text.lower())  # noqa: E731
    return name == filename or loose(name) == loose(filename)


def _attestations_module():
    """``pypi_attestations`` when this Python can import it (never on 3.6-3.8), else None."""
    try:
        import pypi_attestations
    except Exception:  # ImportError, or a build of it this Python cannot load
        return None
    return pypi_attestations


def check_provenance(data, filename, sha256, module=None):
    """``(publishers, attestations, signatures checked)`` of a file's provenance, checked
    offline: its form, every statement naming ``filename`` and its ``sha256``, and with
    pypi_attestations (``module``) every attestation's signature, certificate and log
    entries against Sigstore's embedded trust root and the bundle's publisher.
    ValueError: one line saying what fails."""
    publishers, subjects = _provenance_statements(data)
    for name, digest in subjects:
        if not _same_dist(name, filename):
            raise ValueError("an attestation names another file (%r)" % (name,))
        if not isinstance(digest, str) or digest.lower() != sha256:
            raise ValueError("the attested sha256 is not the file's (%s)" % str(digest)[:64])
    if module is None:
        return publishers, len(subjects), False
    try:
        provenance = module.Provenance.model_validate_json(data)
        dist = module.Distribution(name=filename, digest=sha256)
    except Exception as exc:  # the library's own model refuses it
        raise ValueError("pypi-attestations refuses it: %s" % _why(exc))
    quiet = logging.getLogger("sigstore")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it warns on every offline trust-root load
    try:
        for number, bundle in enumerate(provenance.attestation_bundles, 1):
            for attestation in bundle.attestations:
                try:
                    attestation.verify(bundle.publisher, dist, offline=True)
                except Exception as exc:  # sigstore and cryptography raise many kinds
                    raise ValueError(
                        "attestation of bundle %d (%s) does not verify: %s"
                        % (number, publishers[number - 1], _why(exc))
                    )
    finally:
        quiet.setLevel(level)
    return publishers, len(subjects), True


class _Verifier(object):
    """One run of verify(); see its docstring."""

    def __init__(self, root, out, err, known=None, provenance=False):
        self.root = root
        self.out = out
        self.err = err
        # --provenance: each linked provenance checked against its file (check_provenance)
        self.provenance = provenance
        self.attestations = _attestations_module() if provenance else None
        self.known = known or {}  # relpath -> (sha256, st_dev, st_ino, size, mtime_ns)
        self.problems = 0
        self.files = 0
        self.pages = 0
        self.projects = 0
        self.progress = _Progress(err)
        self.listed = {}  # manifest.json's top-level entries: relpath -> {"size", "sha256"}
        self.json_docs = []  # a full mirror's json/<project> files, checked at the end
        self.manifest_ok = False
        self.root_ok = (False, False)  # simple/index.html, simple/index.json read fine
        self.db = None
        self._pending = {}  # table -> rows waiting for the next insert
        self._dirs = {}  # directory relpath -> reached without a symlink
        self._missing = set()  # top-level files already reported MISSING
        self.views = []  # env names of the envs/NAME/ directories, checked at the end
        self.views_checked = 0

    # -- output
    def problem(self, kind, rel, detail=""):
        self.problems += 1
        self.progress.clear()
        line = "%-11s %s%s\n" % (kind, rel, (" (%s)" % detail) if detail else "")
        try:
            self.out.write(line)
        except UnicodeEncodeError:  # a file name not in UTF-8, or an ASCII terminal
            self.out.write(line.encode("ascii", "backslashreplace").decode("ascii"))
        if self.progress.stream is not None:
            self.out.flush()

    # -- the temporary database
    def open_db(self, sqlite3, path):
        db = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-8192",
            "temp_store=FILE",
        ):
            db.execute("PRAGMA " + pragma).fetchall()
        db.execute(
            "CREATE TABLE names (name TEXT NOT NULL, src INTEGER NOT NULL, PRIMARY KEY (name, src))"
        )
        db.execute("CREATE TABLE unlinked (rel TEXT PRIMARY KEY)")
        db.execute("CREATE TABLE linked (rel TEXT PRIMARY KEY)")
        self.db = db

    def add(self, table, row, rel=None):
        try:
            row[0].encode("utf-8")
        except UnicodeEncodeError:  # a name no UTF-8 page can link
            if table != "linked":
                self.problem("UNEXPECTED", rel or row[0], "not a UTF-8 name")
            return
        rows = self._pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= VERIFY_BATCH:
            self.flush(table)

    def flush(self, table=None):
        for name in [table] if table else list(self._pending):
            rows = self._pending.pop(name, None)
            if rows:
                self.db.execute("BEGIN")
                self.db.executemany(_INSERT[name], rows)
                self.db.execute("COMMIT")

    # -- the file system
    def _real_dir(self, rel_dir):
        """True when directory ``rel_dir`` exists and no symlink leads to it."""
        if not rel_dir:
            return True
        known = self._dirs.get(rel_dir)
        if known is not None:
            return known
        ok = self._real_dir(rel_dir.rsplit("/", 1)[0] if "/" in rel_dir else "")
        if ok:
            try:
                ok = stat.S_ISDIR(os.lstat(os.path.join(self.root, rel_dir)).st_mode)
            except OSError:
                ok = False
        if len(self._dirs) > 4096:
            self._dirs.clear()
        self._dirs[rel_dir] = ok
        return ok

    def file_stat(self, rel):
        """lstat() of a tree file; None when missing; "symlink" when it is one or a
        directory on its way is."""
        try:
            st = os.lstat(os.path.join(self.root, rel))
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode) or not self._real_dir(rel.rpartition("/")[0]):
            return "symlink"
        return st

    def sha256(self, rel):
        path = os.path.join(self.root, rel)
        known = self.known.get(rel)
        if known is not None:
            # hashed by the import that called us, as it staged the file: trusted while
            # it is still that file (same inode, size and mtime), read again otherwise
            try:
                st = os.lstat(path)
            except OSError:
                st = None
            if st is not None and known[1:] == (
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
            ):
                return known[0]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                chunk = f.read(HASH_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
        return h.hexdigest()

    def _scandir(self, rel_dir):
        """os.scandir() of a tree directory, or None (reported) when unreadable."""
        try:
            return os.scandir(os.path.join(self.root, rel_dir) if rel_dir else self.root)
        except OSError as exc:
            self.problem("UNREADABLE", rel_dir + "/", str(exc))
            return None

    def walk_files(self, rel_dir, on_file, on_symlink):
        """on_file(relpath) for every non-hidden file below ``rel_dir`` (symlinks not
        followed: on_symlink(relpath))."""
        stack = [rel_dir]
        while stack:
            current = stack.pop()
            it = self._scandir(current)
            if it is None:
                continue
            with it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    rel = current + "/" + entry.name
                    if entry.is_symlink():
                        on_symlink(rel)
                    elif entry.is_dir():
                        stack.append(rel)
                    else:
                        on_file(rel)

    def symlink(self, rel):
        self.problem("SYMLINK", rel)

    # -- manifest.json: the top-level files
    def read_manifest(self):
        rel = "manifest.json"
        path = os.path.join(self.root, rel)
        if not os.path.lexists(path):
            self.err.write(
                "warning: %s has no manifest.json: its top-level files (server.py, morgan.ini, "
                "the root pages) cannot be checked\n" % self.root
            )
            return
        if os.path.islink(path):
            return  # reported by the scan
        fmt = None
        stream = None
        try:
            with io.open(path, "r", encoding="utf-8") as f:
                stream = _JSONStream(f)
                for name, value in stream.members("files"):
                    if name == "format":
                        fmt = value
                    elif name == "files":
                        if not isinstance(value, tuple):
                            raise ValueError("files is not an object")
                        entry_rel, info = value
                        # format 1 listed every file: the pages vouch for the others now
                        if _bad_relpath(entry_rel) or not _is_project_path(entry_rel):
                            self.listed[entry_rel] = info
            if not stream.streamed:
                raise ValueError("no files object")
        except (OSError, IOError, ValueError) as exc:
            self.problem("CORRUPT", rel, "cannot read it: %s" % exc)
            return
        if fmt not in MANIFEST_FORMATS:
            self.err.write("warning: unknown manifest format %r\n" % (fmt,))
        self.manifest_ok = True

    def top_file(self, rel):
        if self.manifest_ok and rel not in self.listed:
            self.problem("UNEXPECTED", rel)

    def check_listed(self):
        for rel in sorted(self.listed):
            info = self.listed[rel]
            if _bad_relpath(rel):
                self.problem("BAD-ENTRY", rel, "not a tree-relative path")
                continue
            if not isinstance(info, dict):
                self.problem("BAD-ENTRY", rel)
                continue
            st = self.file_stat(rel)
            if st is None:
                self.problem("MISSING", rel)
                self._missing.add(rel)
            elif st == "symlink":
                pass  # reported by the scan
            elif not stat.S_ISREG(st.st_mode):
                self.problem("CORRUPT", rel, "not a regular file")
            elif st.st_size != info.get("size"):
                self.files += 1
                self.problem(
                    "CORRUPT", rel, "size %d, manifest says %s" % (st.st_size, info.get("size"))
                )
            else:
                self.files += 1
                try:
                    if self.sha256(rel) != str(info.get("sha256", "")).lower():
                        self.problem("CORRUPT", rel, "sha256 mismatch")
                except (OSError, IOError) as exc:
                    self.problem("UNREADABLE", rel, str(exc))

    # -- the tree's top level, the project directories
    def scan_top(self):
        it = self._scandir("")
        if it is None:
            return
        with it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        for entry in entries:
            name = entry.name
            if entry.is_symlink():
                self.symlink(name)
            elif entry.is_dir():
                if name == "simple":
                    self.scan_projects(name, _PAGE_DIR)
                elif name == "packages":
                    self.scan_projects(name, _PACKAGE_DIR)
                elif name == "json":
                    self.walk_files(name, self.json_docs.append, self.symlink)
                elif name == "envs":
                    self.scan_envs()
                else:
                    self.walk_files(name, self.top_file, self.symlink)
            elif name != "manifest.json":
                self.top_file(name)

    def scan_projects(self, top, src):
        """Project directories of simple/ or packages/ into the database (not memory)."""
        it = self._scandir(top)
        if it is None:
            return
        with it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                rel = top + "/" + entry.name
                if entry.is_symlink():
                    self.symlink(rel)
                elif entry.is_dir():
                    self.add("names", (entry.name, src), rel)
                elif top == "simple":
                    self.top_file(rel)
                else:
                    self.add("unlinked", (rel,))

    # -- the root pages
    def root_page(self, rel):
        """True when the root page exists as a regular file (reported otherwise)."""
        st = self.file_stat(rel)
        if st is None:
            if rel not in self._missing:
                self.problem("MISSING", rel, "no root page")
            return False
        if st == "symlink":
            return False
        if not stat.S_ISREG(st.st_mode):
            self.problem("CORRUPT", rel, "not a regular file")
            return False
        self.pages += 1
        return True

    def read_root_html(self, page_dir="simple", on_name=None):
        """Read ``<page_dir>/index.html``: on_name(project) per project link (default:
        into the names table); False when the page is missing or unreadable."""
        rel = page_dir + "/index.html"
        if not self.root_page(rel):
            return False
        if on_name is None:

            def on_name(name):
                self.add("names", (name, _IN_ROOT_HTML))

        prefix = page_dir + "/"

        def on_link(attrs):
            href = attrs["href"]
            try:
                target = _link_target(page_dir, href)
            except ValueError:
                self.problem("BAD-LINK", rel, "%s leaves the tree" % href)
                return
            name = target.rstrip("/")[len(prefix) :]
            if not target.startswith(prefix) or not name or "/" in name or name.startswith("."):
                self.problem("BAD-LINK", rel, "%s is not a project page" % href)
                return
            on_name(name)

        try:
            with io.open(os.path.join(self.root, rel), "r", encoding="utf-8") as f:
                parser = _LinkParser(on_link)
                while True:
                    chunk = f.read(1 << 16)
                    if not chunk:
                        break
                    parser.feed(chunk)
                parser.close()
        except (OSError, IOError, ValueError) as exc:
            self.problem("BAD-PAGE", rel, str(exc))
            return False
        return True

    def read_root_json(self, page_dir="simple", on_name=None):
        """Read ``<page_dir>/index.json``: on_name(normalized project) per project
        (default: into the names table); False when the page is missing or unreadable."""
        rel = page_dir + "/index.json"
        if not self.root_page(rel):
            return False
        if on_name is None:

            def on_name(name):
                self.add("names", (name, _IN_ROOT_JSON))

        nameless = 0
        try:
            with io.open(os.path.join(self.root, rel), "r", encoding="utf-8") as f:
                stream = _JSONStream(f)
                for key, value in stream.members("projects"):
                    if key != "projects":
                        continue
                    if isinstance(value, dict) and isinstance(value.get("name"), str):
                        on_name(normalize(value["name"]))
                    else:
                        nameless += 1
            if not stream.streamed:
                raise ValueError("no projects list")
        except (OSError, IOError, ValueError) as exc:
            self.problem("BAD-PAGE", rel, str(exc))
            return False
        if nameless:
            self.problem("BAD-PAGE", rel, "%d projects entries without a name" % nameless)
        return True

    # -- projects, one at a time
    def check_projects(self):
        db = self.db
        self.progress.total = db.execute(
            "SELECT COUNT(*) FROM (SELECT name FROM names GROUP BY name)"
        ).fetchone()[0]
        last = ""
        while True:
            rows = db.execute(
                "SELECT name, MAX(src = ?), MAX(src = ?), MAX(src = ?), MAX(src = ?) FROM names"
                " WHERE name > ? GROUP BY name ORDER BY name LIMIT ?",
                (_IN_ROOT_HTML, _IN_ROOT_JSON, _PAGE_DIR, _PACKAGE_DIR, last, VERIFY_BATCH),
            ).fetchall()
            if not rows:
                break
            for name, in_html, in_json, has_dir, has_packages in rows:
                self.check_project(name, in_html, in_json, has_dir, has_packages)
                self.progress.add()
            self.flush()
            last = rows[-1][0]

    def check_project(self, name, in_html, in_json, has_dir, has_packages):
        self.projects += 1
        html_ok, json_ok = self.root_ok
        if html_ok and json_ok and bool(in_html) != bool(in_json):
            self.problem(
                "DISAGREE",
                "simple/",
                "%s: in simple/index.%s, not in simple/index.%s"
                % ((name, "html", "json") if in_html else (name, "json", "html")),
            )
        if not has_dir:
            for page, listed in (("simple/index.html", in_html), ("simple/index.json", in_json)):
                if listed:
                    self.problem("BROKEN-LINK", page, "%s/: no simple/%s/index.html" % (name, name))
        elif (html_ok or json_ok) and not (html_ok and in_html) and not (json_ok and in_json):
            self.problem("UNLISTED", "simple/%s/" % name, "no root page lists it")
        expected = self.check_pages(name) if has_dir else set()
        if has_packages:
            self.check_package_dir(name, expected)

    def read_page(self, page_rel, name, is_json):
        """The page's links, or None (reported)."""
        try:
            with io.open(os.path.join(self.root, page_rel), "r", encoding="utf-8") as f:
                return _page_links(f, is_json, name)
        except (OSError, IOError, ValueError) as exc:
            self.problem("BAD-PAGE", page_rel, str(exc))
            return None

    def check_pages(self, name, page_dir=None, union=None):
        """Check a project's pages and every file they link; returns the relpaths they
        account for under packages/<name>/.

        A view's pages (``page_dir``: ``envs/NAME/simple/<name>``) are checked the same
        way, except that a file ``union`` (union_claims()) gives the same claims for is
        not checked again: check_view_file().
        """
        view = page_dir is not None
        if not view:
            page_dir = "simple/" + name
        present = {}
        it = self._scandir(page_dir)
        if it is not None:
            with it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    rel = page_dir + "/" + entry.name
                    if entry.is_symlink():
                        self.symlink(rel)
                    elif entry.name in ("index.html", "index.json") and entry.is_file():
                        present[entry.name] = rel
                    elif entry.is_dir():
                        self.walk_files(rel, self.unexpected, self.symlink)
                    else:
                        self.problem("UNEXPECTED", rel)
        parsed = []  # [(page, {relpath: (sha256, size, metadata)})]
        for fname in ("index.json", "index.html"):
            page_rel = page_dir + "/" + fname
            if fname not in present:
                if not os.path.islink(os.path.join(self.root, page_rel)):
                    detail = "file:// clients need it" if fname == "index.html" else ""
                    self.problem("MISSING", page_rel, detail)
                continue
            self.pages += 1
            links = self.read_page(page_rel, name, fname == "index.json")
            if links is not None:
                parsed.append((page_rel, self.page_targets(page_dir, page_rel, links)))
            links = None
        targets = set()
        for _, mine in parsed:
            targets.update(mine)
        expected = set()
        prefix = "packages/%s/" % name
        for target in sorted(targets):
            found = [(page,) + mine[target] for page, mine in parsed if target in mine]
            if len(parsed) == 2:
                self.compare_pages(page_dir, target, found)
            if view:
                self.check_view_file(page_dir, name, target, found, union)
                continue
            with_metadata = any(c[3] is not None for c in found)
            with_provenance = any(c[4] for c in found)
            expected.add(target)
            if with_metadata:
                expected.add(target + ".metadata")
            if with_provenance:
                expected.add(target + PROVENANCE_SUFFIX)
            if not target.startswith(prefix):
                self.add("linked", (target,))
                if with_metadata:
                    self.add("linked", (target + ".metadata",))
                if with_provenance:
                    self.add("linked", (target + PROVENANCE_SUFFIX,))
            self.check_file(target, found)
            if with_provenance:
                self.check_provenance(target, found)
        return expected

    def page_targets(self, page_dir, page_rel, links):
        """``{relpath: (sha256, size, metadata, provenance)}`` of a page's file links (bad
        ones reported); provenance: True when the page points at the file's provenance
        beside it (a provenance link anywhere else is a BAD-LINK)."""
        mine = {}
        for href, sha, size, meta, prov in links:
            if href.startswith(("https://", "http://")) and sha is not None:
                continue  # an index-only page: the file is upstream's, not ours to check
            try:
                target = _link_target(page_dir, href)
            except ValueError:
                self.problem("BAD-LINK", page_rel, "%s leaves the tree" % href)
                continue
            if target.endswith("/"):
                if not os.path.isfile(os.path.join(self.root, target, "index.html")):
                    self.problem("BROKEN-LINK", page_rel, "%s: no %sindex.html" % (href, target))
                continue
            parts = target.split("/")
            if parts[0] != "packages" or len(parts) < 3 or _hidden(target):
                self.problem(
                    "BAD-LINK", page_rel, "%s: %s is not a file under packages/" % (href, target)
                )
                continue
            if sha is None:
                self.problem("BAD-LINK", page_rel, "%s: no sha256" % href)
            if prov is not None:
                try:
                    beside = _link_target(page_dir, prov) == target + PROVENANCE_SUFFIX
                except ValueError:
                    beside = False
                if not beside:
                    self.problem(
                        "BAD-LINK", page_rel, "%s: its provenance is not beside the file" % href
                    )
                prov = beside
            if target not in mine:
                mine[target] = (sha, size, meta, bool(prov))
        return mine

    def compare_pages(self, page_dir, target, found):
        """found: what index.json and index.html say of the file (when both were read)."""
        filename = target.rsplit("/", 1)[-1]
        if len(found) == 1:
            here = found[0][0].rsplit("/", 1)[-1]
            there = "index.html" if here == "index.json" else "index.json"
            self.problem(
                "DISAGREE", page_dir + "/", "%s: in %s, not in %s" % (filename, here, there)
            )
            return
        fields = [
            field
            for field, a, b in zip(
                ("sha256", "size", "core-metadata", "provenance"), found[0][1:], found[1][1:]
            )
            if a != b and not (field == "size" and (a is None or b is None))
        ]
        if fields:
            self.problem(
                "DISAGREE",
                page_dir + "/",
                "%s: index.json and index.html give different %s" % (filename, ", ".join(fields)),
            )

    def unexpected(self, rel):
        self.problem("UNEXPECTED", rel)

    def regular_file(self, rel, missing_detail):
        """The stat of a linked file that is a regular file, else None with its problem."""
        st = self.file_stat(rel)
        if st is None:
            self.problem("MISSING", rel, missing_detail)
        elif st == "symlink":
            self.symlink(rel)
        elif not stat.S_ISREG(st.st_mode):
            self.problem("CORRUPT", rel, "not a regular file")
        else:
            self.files += 1
            return st
        return None

    def check_file(self, rel, claims):
        """A linked file (and its .metadata) against what the pages say of it."""
        filename = rel.rsplit("/", 1)[-1]
        pages = ", ".join(sorted(set(c[0] for c in claims)))
        st = self.regular_file(rel, "linked by %s" % pages)
        if st is not None:
            sizes = sorted(set(c[2] for c in claims if c[2] is not None))
            if sizes and st.st_size not in sizes:
                self.problem(
                    "CORRUPT",
                    rel,
                    "size %d, page says %s" % (st.st_size, " or ".join(str(s) for s in sizes)),
                )
            else:
                self.check_hash(rel, [(c[0], c[1]) for c in claims], filename)
        metas = [(c[0], c[3]) for c in claims if c[3] is not None]
        if not metas:
            return
        for page, meta in metas:
            if not meta:
                self.problem("BAD-LINK", page, "%s: core-metadata without a sha256" % filename)
        meta_rel = rel + ".metadata"
        if self.regular_file(meta_rel, "advertised by %s" % pages) is not None:
            self.check_hash(meta_rel, [m for m in metas if m[1]], filename + ".metadata")

    def check_hash(self, rel, claims, label):
        """claims: [(page, sha256 or None)]; a file no page's hash matches is CORRUPT, a
        page whose hash alone is wrong is BAD-HASH."""
        wanted = set(sha for _, sha in claims if sha)
        if not wanted:
            return
        try:
            actual = self.sha256(rel)
        except (OSError, IOError) as exc:
            self.problem("UNREADABLE", rel, str(exc))
            return
        if actual not in wanted:
            self.problem("CORRUPT", rel, "sha256 mismatch")
            return
        for page in sorted(set(p for p, sha in claims if sha and sha != actual)):
            self.problem("BAD-HASH", page, "%s: sha256 does not match the file" % label)

    def check_provenance(self, rel, claims):
        """The provenance a page points at beside file ``rel``: there (MISSING); with
        --provenance, its attestations checked against the file (PROVENANCE when refused,
        else one ATTESTED line naming the publishers)."""
        prov_rel = rel + PROVENANCE_SUFFIX
        pages = ", ".join(sorted(set(c[0] for c in claims if c[4])))
        if self.regular_file(prov_rel, "linked by %s" % pages) is None or not self.provenance:
            return
        try:
            with open(os.path.join(self.root, prov_rel), "rb") as f:
                data = f.read(PROVENANCE_MAX + 1)
            sha = self.sha256(rel)
        except (OSError, IOError) as exc:
            self.problem("UNREADABLE", prov_rel, str(exc))
            return
        try:
            publishers, count, signed = check_provenance(
                data, rel.rsplit("/", 1)[-1], sha, self.attestations
            )
        except ValueError as exc:
            self.problem("PROVENANCE", prov_rel, str(exc))
            return
        self.progress.clear()
        self.out.write(
            "%-11s %s (%s: %d attestation%s %s)\n"
            % (
                "ATTESTED",
                rel,
                "; ".join(publishers),
                count,
                "" if count == 1 else "s",
                "verified" if signed else "naming its sha256, signatures not checked",
            )
        )

    def check_package_dir(self, name, expected):
        """Files of packages/<name>/ that no page of the project links: maybe UNEXPECTED
        (unless another project's page links them; decided at the end)."""

        def on_file(rel):
            if rel not in expected:
                self.add("unlinked", (rel,))

        def on_symlink(rel):
            if rel not in expected:
                self.symlink(rel)

        self.walk_files("packages/" + name, on_file, on_symlink)

    def check_json_docs(self):
        """A full mirror's json/<project>: of a project with pages, listing the same files
        with the same sha256 as its index.json."""
        for rel in sorted(self.json_docs):
            parts = rel.split("/")
            page = os.path.join(self.root, "simple", parts[-1], "index.json")
            if len(parts) != 2 or not os.path.isfile(page):
                self.problem("UNEXPECTED", rel, "no project page for it")
                continue
            try:
                with open(os.path.join(self.root, rel), "rb") as f:
                    doc = json.loads(f.read().decode("utf-8"))
                with open(page, "rb") as f:
                    listed = json.loads(f.read().decode("utf-8")).get("files") or []
                mine = dict(
                    (e["filename"], e["digests"]["sha256"])
                    for files in doc["releases"].values()
                    for e in files
                )
                theirs = dict(
                    (e["filename"], (e.get("hashes") or {}).get("sha256")) for e in listed
                )
            except (OSError, IOError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self.problem("CORRUPT", rel, "unreadable: %s" % exc)
                continue
            self.pages += 1
            if mine != theirs:
                self.problem("DISAGREE", rel, "files or sha256 differ from its index.json")

    # -- the env views: envs/NAME/simple/, subsets of simple/ linking packages/
    def scan_envs(self):
        """envs/ holds one directory per env view (a name _VIEW_NAME takes), noted for
        check_views(); anything else there is UNEXPECTED."""
        it = self._scandir("envs")
        if it is None:
            return
        with it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        for entry in entries:
            rel = "envs/" + entry.name
            if entry.is_symlink():
                self.symlink(rel)
            elif not entry.is_dir():
                self.unexpected(rel)
            elif not _VIEW_NAME.match(entry.name):
                self.walk_files(rel, self.unexpected, self.symlink)
            else:
                self.views.append(entry.name)

    def _visible(self, rel_dir):
        """The non-hidden entries of a tree directory, sorted by name ([] when unreadable,
        reported)."""
        it = self._scandir(rel_dir)
        if it is None:
            return []
        with it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)

    def check_views(self):
        for env in self.views:
            self.check_view(env)
        self.flush()

    def check_view(self, env):
        """One view: envs/NAME/ holds only simple/, which holds its two root pages (listed
        by manifest.json) and the page directories they list; each project's pages are
        checked like the union's, against the union's (check_pages)."""
        base = "envs/%s/simple" % env
        has_simple = False
        entries = self._visible("envs/" + env)
        for entry in entries:
            rel = "envs/%s/%s" % (env, entry.name)
            if entry.is_symlink():
                self.symlink(rel)
            elif entry.name == "simple" and entry.is_dir():
                has_simple = True
            elif entry.is_dir():
                self.walk_files(rel, self.unexpected, self.symlink)
            else:
                self.unexpected(rel)
        dirs = set()
        if has_simple:
            entries = self._visible(base)
            for entry in entries:
                rel = base + "/" + entry.name
                if entry.is_symlink():
                    self.symlink(rel)
                elif entry.is_dir():
                    dirs.add(entry.name)
                elif entry.name in ("index.html", "index.json"):
                    self.top_file(rel)
                else:
                    self.unexpected(rel)
        if not entries:
            return  # an empty envs/NAME/ or envs/NAME/simple/ is no view
        self.views_checked += 1
        listed = {}  # root page -> the projects it lists
        for fname, read in (
            ("index.html", self.read_root_html),
            ("index.json", self.read_root_json),
        ):
            names = set()
            if read(base, names.add):
                listed[base + "/" + fname] = names
        if len(listed) == 2:
            in_html, in_json = listed[base + "/index.html"], listed[base + "/index.json"]
            for name in sorted(in_html ^ in_json):
                self.problem(
                    "DISAGREE",
                    base + "/",
                    "%s: in index.%s, not in index.%s"
                    % ((name, "html", "json") if name in in_html else (name, "json", "html")),
                )
        for page in sorted(listed):
            for name in sorted(listed[page] - dirs):
                self.problem("BROKEN-LINK", page, "%s/: no %s/%s/index.html" % (name, base, name))
        for name in sorted(dirs):
            if listed and not any(name in names for names in listed.values()):
                self.problem(
                    "UNLISTED", "%s/%s/" % (base, name), "no root page of the view lists it"
                )
            self.check_pages(name, "%s/%s" % (base, name), self.union_claims(name))

    def check_locks(self):
        """locks/: each env view's pylock and requirements file name only files the
        union pages list, with the same sha256 and size (the union check compared those
        with the disk), pinning each release with every hash its files have; no other
        file lies there.  sbom.cdx.json parses, and each component's path and sha256
        are a listed file's (BAD-LOCK, BAD-SBOM)."""
        claims = {}

        def listed(rel):
            parts = rel.split("/")
            if len(parts) != 3 or _bad_relpath(rel):
                return None
            if parts[1] not in claims:
                if len(claims) > 256:
                    claims.clear()
                claims[parts[1]] = self.union_claims(parts[1])
            return claims[parts[1]].get(rel)

        names = []
        if os.path.isdir(os.path.join(self.root, LOCKS_DIR)):
            names = sorted(e.name for e in self._visible(LOCKS_DIR) if e.is_file())
        for name in names:
            rel = LOCKS_DIR + "/" + name
            pylock = _PYLOCK_NAME.match(name)
            reqs = _REQUIREMENTS_NAME.match(name)
            if not pylock and not reqs:
                self.problem("UNEXPECTED", rel)
                continue
            try:
                with io.open(os.path.join(self.root, rel), "r", encoding="utf-8") as f:
                    text = f.read()
            except (OSError, IOError, ValueError) as exc:
                self.problem("BAD-LOCK", rel, "cannot read it: %s" % exc)
                continue
            if pylock:
                self.check_pylock(rel, text, listed)
            else:
                self.check_requirements(rel, text, reqs.group(1), listed)
        self.check_sbom(listed)

    def check_pylock(self, rel, text, listed):
        for line in text.split("\n"):
            if "path = " not in line:
                continue
            entry = _LOCK_ENTRY.search(line)
            if entry is None:
                self.problem("BAD-LOCK", rel, "an entry without path, size and sha256")
                continue
            target, size, sha = entry.group(1), int(entry.group(2)), entry.group(3)
            claim = listed(target)
            if claim is None:
                self.problem("BAD-LOCK", rel, "%s: no page lists it" % target)
            elif claim[0] != sha or (claim[1] is not None and claim[1] != size):
                self.problem("BAD-LOCK", rel, "%s: not the page's sha256 and size" % target)

    def check_requirements(self, rel, text, env, listed):
        for line in text.replace("\\\n", " ").split("\n"):
            line = line.strip()
            if line.startswith("--find-links "):
                page = posixpath.normpath(posixpath.join(LOCKS_DIR, line.split(" ", 1)[1]))
                if not page.startswith("envs/%s/simple/" % env) or not os.path.isfile(
                    os.path.join(self.root, page)
                ):
                    self.problem("BAD-LOCK", rel, "%s: not a page of the view" % page)
                continue
            pin = _REQUIREMENT_PIN.match(line)
            if pin is None:
                continue
            name, version = normalize(pin.group(1)), pin.group(2)
            hashes = set(_REQUIREMENT_HASH.findall(line))
            files = set(c[0] for c in self.union_claims(name).values())
            if not hashes or not hashes <= files:
                self.problem(
                    "BAD-LOCK", rel, "%s==%s: a hash no listed file of it has" % (name, version)
                )

    def check_sbom(self, listed):
        rel = SBOM_NAME
        path = os.path.join(self.root, rel)
        if not os.path.isfile(path):
            return
        try:
            with io.open(path, "r", encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("bomFormat") != "CycloneDX":
                raise ValueError("not a CycloneDX document")
            components = doc.get("components") or []
        except (OSError, IOError, ValueError, AttributeError) as exc:
            self.problem("BAD-SBOM", rel, "cannot read it: %s" % exc)
            return
        for component in components:
            try:
                props = dict(
                    (p["name"], p["value"])
                    for p in component.get("properties") or []
                    if p.get("name") == "morgan-like:path"
                )
                target = props.get("morgan-like:path")
                shas = [
                    h["content"] for h in component.get("hashes") or [] if h["alg"] == "SHA-256"
                ]
            except (AttributeError, KeyError, TypeError):
                self.problem("BAD-SBOM", rel, "a component that cannot be read")
                continue
            if target is None:
                continue
            claim = listed(target)
            if claim is None or claim[0] not in shas:
                self.problem("BAD-SBOM", rel, "%s: not a listed file with its sha256" % target)

    def union_claims(self, name):
        """``{relpath: (sha256, size, metadata)}`` of the files simple/<name>/ links, from
        its index.json (index.html when there is none); its problems are the union
        check's to report."""
        page_dir = "simple/" + name
        for fname in ("index.json", "index.html"):
            page_rel = page_dir + "/" + fname
            if self.file_stat(page_rel) in (None, "symlink"):
                continue
            try:
                with io.open(os.path.join(self.root, page_rel), "r", encoding="utf-8") as f:
                    links = _page_links(f, fname == "index.json", name)
            except (OSError, IOError, ValueError):
                continue
            claims = {}
            for href, sha, size, meta, prov in links:
                try:
                    target = _link_target(page_dir, href)
                except ValueError:
                    continue
                if not target.endswith("/"):
                    claims.setdefault(target, (sha, size, meta, prov is not None))
            return claims
        return {}

    def check_view_file(self, page_dir, name, target, found, union):
        """A file a view's project page links.  The union page simple/<name>/ must list
        it with the same sha256 (VIEW-ONLY), size and core-metadata (DISAGREE); then
        the union's check covered the file.  A file the union does not list is checked
        here, and counts as linked (it is reported once, as VIEW-ONLY)."""
        filename = target.rsplit("/", 1)[-1]
        theirs = union.get(target)
        if theirs is None:
            self.problem(
                "VIEW-ONLY", page_dir + "/", "%s: simple/%s/ does not list it" % (filename, name)
            )
            self.add("linked", (target,))
            if any(c[3] is not None for c in found):
                self.add("linked", (target + ".metadata",))
            if any(c[4] for c in found):
                self.add("linked", (target + PROVENANCE_SUFFIX,))
                self.check_provenance(target, found)
            self.check_file(target, found)
            return
        sha, size, meta, prov = theirs
        for page, my_sha, my_size, my_meta, my_prov in sorted(found):
            if my_sha != sha:
                self.problem(
                    "VIEW-ONLY",
                    page,
                    "%s: simple/%s/ lists it with another sha256" % (filename, name),
                )
                continue
            fields = []
            if my_size is not None and size is not None and my_size != size:
                fields.append("size")
            if my_meta != meta:
                fields.append("core-metadata")
            if my_prov != prov:
                fields.append("provenance")
            if fields:
                self.problem(
                    "DISAGREE",
                    page,
                    "%s: different %s than simple/%s/" % (filename, ", ".join(fields), name),
                )

    def report_unlinked(self):
        cursor = self.db.execute(
            "SELECT rel FROM unlinked WHERE rel NOT IN (SELECT rel FROM linked) ORDER BY rel"
        )
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                break
            for (rel,) in rows:
                self.problem("UNEXPECTED", rel)

    # -- the run
    def run(self):
        if not os.path.isdir(os.path.join(self.root, "simple")):
            self.err.write(
                "verify: %s is not a morgan_like tree (no simple/ directory)\n" % self.root
            )
            return 2
        try:
            import sqlite3  # only --verify needs it
        except ImportError:
            self.err.write("verify: this Python has no sqlite3 module\n")
            return 2
        try:
            tmpdir = tempfile.mkdtemp(prefix="morgan-like-verify-")
        except OSError as exc:
            self.err.write("verify: no temporary directory (set TMPDIR): %s\n" % exc)
            return 2
        if self.provenance and self.attestations is None:
            self.err.write(
                "verify: pypi-attestations is not importable under Python %d.%d: provenance "
                "checked for form and the file's sha256 only, signatures not checked\n"
                % sys.version_info[:2]
            )
        try:
            self.open_db(sqlite3, os.path.join(tmpdir, "verify.db"))
            self.progress.show("verifying: listing the tree", force=True)
            self.read_manifest()
            self.scan_top()
            self.check_listed()
            self.root_ok = (self.read_root_html(), self.read_root_json())
            self.flush()
            self.check_projects()
            self.flush()
            self.check_json_docs()
            self.check_views()
            self.check_locks()
            self.report_unlinked()
        except sqlite3.Error as exc:
            self.progress.clear()
            self.err.write("verify: the temporary database in %s failed: %s\n" % (tmpdir, exc))
            return 2
        finally:
            if self.db is not None:
                self.db.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
        self.progress.finish()
        self.progress.clear()
        views = ""
        if self.views_checked:
            views = ", %d view%s" % (self.views_checked, "" if self.views_checked == 1 else "s")
        self.out.write(
            "verify %s: %d projects%s, %d files checked, %d pages checked, %d problem%s\n"
            % (
                self.root,
                self.projects,
                views,
                self.files,
                self.pages,
                self.problems,
                "" if self.problems == 1 else "s",
            )
        )
        self.out.flush()
        return 1 if self.problems else 0


def verify(root, out=None, err=None, known=None, provenance=False):
    """Check a tree offline; returns an exit code (0 intact, 1 problems, 2 not a tree
    or verification impossible).

    * manifest.json's files (format 2: the top-level files; format 1: those of its
      entries outside ``simple/<project>/`` and ``packages/``) exist with their size
      and sha256, and no other visible top-level file exists (UNEXPECTED).  Without a
      manifest.json this part is skipped with a warning.
    * The root pages list the same projects (DISAGREE), each one with a page
      (BROKEN-LINK), and every page is listed (UNLISTED).
    * Per project: index.json and index.html list the same files with the same
      sha256, size and core-metadata (DISAGREE); every linked file and advertised
      ``.metadata`` exists (MISSING) with the page's size and sha256 (CORRUPT, or
      BAD-HASH when only one page is wrong); links stay in the tree (BAD-LINK); every
      visible file under ``packages/<project>/`` is linked (UNEXPECTED).  Symlinks are
      reported (SYMLINK), hidden paths (``.morgan-like/``, temp files) ignored.
    * Each env view ``envs/NAME/simple/`` (NAME: letters, digits, ``.``, ``_``, ``-``)
      as the union above: its root pages (top-level files, in manifest.json) list the
      same projects, each with a page, every page listed; its pages agree and link
      only files under ``packages/``, each one listed by the union page
      ``simple/<project>/`` with the same sha256 (VIEW-ONLY; then the union's check
      covered it, else it is checked here), size and core-metadata (DISAGREE).
      Anything else under ``envs/`` is UNEXPECTED.

    Memory stays flat as the tree grows: names go through a temporary sqlite database
    in the system's temp directory, pages are read one project at a time.

    ``known`` (from --import only): relpath -> (sha256, st_dev, st_ino, size,
    mtime_ns) of files the import hashed as it staged them in this run; such a file
    still of that identity is not read again.  Every other check runs as usual.

    A file's PEP 740 provenance a page points at must lie beside it
    (``<file>.provenance``: BAD-LINK elsewhere, MISSING when absent).  ``provenance``
    (--provenance): each one is also checked against its file (check_provenance): an
    ATTESTED line names its publishers, a refusal is a PROVENANCE problem; without
    pypi-attestations importable, one line says the signatures go unchecked.
    """
    root = os.path.abspath(root)
    return _Verifier(root, out or sys.stdout, err or sys.stderr, known, provenance).run()


# --------------------------------------------------------------------------------------
# Transfer: --import an export, --receipt of the tree's generation
# --------------------------------------------------------------------------------------
#
# The format is the export's (ARCHITECTURE.md, "Transfer"): DIR holds
# morgan-like-export.json (+ .hmac) and plain-tar volumes, or the files themselves
# unpacked by hand beside the manifest.  Nothing of the tree changes until every byte
# was read, checked and staged in TREE/.morgan-like/import/; then the staged files
# are renamed into place in the manifest's order (files, pages, roots, top-level
# files) and the removals follow, so a page never lists a file that is not there.  A
# journal written once everything is staged lets a re-run finish a killed import.

EXPORT_MANIFEST = "morgan-like-export.json"
EXPORT_FORMAT = "morgan-like-export/1"
GENERATION_FORMAT = "morgan-like-generation/1"
GENERATION_REL = ".morgan-like/generation.json"
IMPORT_REL = ".morgan-like/import"
JOURNAL_FORMAT = "morgan-like-import/1"
EXPORT_MANIFEST_MAX = 1 << 30  # nothing states the manifest's own size: a fixed cap
HMAC_MAX = 1024
PROGRESS_EVERY = 3.0  # seconds between progress lines
CRASH_ENV = "MORGAN_LIKE_CRASH_AFTER"  # the same test hook as morgan_like/tree/crashpoints

# A copy of morgan_like/tree/layout.py's rules, for what an import may write (stricter:
# only the shapes a tree has); tests/server/test_import_layout.py checks it against them.
_TOP_FILES = frozenset(
    ("manifest.json", "morgan.ini", "server.py", "local.json", "local.db.serial", SBOM_NAME)
    + (LANDING_HTML,)
)
_PAGE_FILES = ("index.html", "index.json")
_LAYOUT_DIRS = ("packages", "simple", "json", "envs", "inputs", LOCKS_DIR)
_TREE_ID = re.compile(r"[0-9a-f]{32}\Z")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # morgan-like export's SITE_NAME


def layout_kind(rel):
    """ "project" (vouched for by the project pages), "top" (by manifest.json) or None
    (not a path a tree has: never written by an import)."""
    if not isinstance(rel, str) or _bad_relpath(rel) or ":" in rel.split("/")[0]:
        return None
    if any(ord(c) < 32 or c == "\x7f" for c in rel):
        return None
    parts = rel.split("/")
    n = len(parts)
    top = parts[0]
    if top == "packages":
        return "project" if n == 3 and filename_problem(parts[2]) is None else None
    if top == "json":
        return "project" if n == 2 else None
    if top == "simple":
        if n == 2 and parts[1] in _PAGE_FILES:
            return "top"
        return "project" if n == 3 and parts[2] in _PAGE_FILES else None
    if top == "envs":
        if n < 4 or parts[2] != "simple" or not _VIEW_NAME.match(parts[1]):
            return None
        if n == 4 and parts[3] in _PAGE_FILES:
            return "top"
        return "project" if n == 5 and parts[4] in _PAGE_FILES else None
    if top == "inputs":
        return "top" if n >= 2 else None
    if top == LOCKS_DIR:
        lock = n == 2 and (_PYLOCK_NAME.match(parts[1]) or _REQUIREMENTS_NAME.match(parts[1]))
        return "top" if lock else None
    return "top" if n == 1 and rel in _TOP_FILES else None


_crash_count = [0]


def _crash_step():
    """One write step of an import; with MORGAN_LIKE_CRASH_AFTER=N the Nth kills the
    process (SIGKILL), so tests can stop an import at every point of its sequence."""
    try:
        limit = int(os.environ.get(CRASH_ENV) or 0)
    except ValueError:
        return
    if limit <= 0:
        return
    _crash_count[0] += 1
    if _crash_count[0] == limit:
        kill = getattr(signal, "SIGKILL", None)
        if kill is not None:
            os.kill(os.getpid(), kill)
        os._exit(137)


class ImportRefused(Exception):
    """One paragraph naming the volume or file and what to do; the import stops (exit
    1) and the tree stays as it was, unless the message says otherwise."""


def _mb(n):
    return "%.1f MB" % (n / 1e6)


class _ImportProgress(object):
    """Plain ``import: X of Y MB (P%), ETA Ns`` lines on stderr every few seconds."""

    def __init__(self, stream, total):
        self.stream = stream
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.last = self.start

    def add(self, n):
        self.done += n
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            rate = self.done / max(now - self.start, 1e-6)
            eta = (self.total - self.done) / rate if rate else 0
            self.stream.write(
                "import: %s of %s (%d%%), ETA %ds\n"
                % (_mb(self.done), _mb(self.total), 100 * self.done // max(self.total, 1), eta)
            )
            self.stream.flush()


class _CappedReader(object):
    """A volume read at most to its stated size, hashed as it goes.

    The volume's sha256 is computed by a second thread fed the same chunks, in order
    (hashlib releases the GIL on large buffers), so it runs beside the members' own
    hashes and the staging writes instead of adding to them; without threads it is
    computed inline.  ``hexdigest()`` waits for every chunk read so far."""

    def __init__(self, f, limit):
        self.f = f
        self.left = limit
        self.hash = hashlib.sha256()
        self._queue = self._thread = None
        try:
            import queue
            import threading
        except ImportError:  # a CPython built without threads
            return
        self._queue = queue.Queue(4)  # bounded: a few chunks in flight at most
        self._thread = threading.Thread(target=self._hash_chunks, name="volume-sha256")
        self._thread.daemon = True
        self._thread.start()

    def _hash_chunks(self):
        while True:
            data = self._queue.get()
            if data is None:
                return
            self.hash.update(data)

    def read(self, n=-1):
        if n is None or n < 0 or n > self.left:
            n = self.left
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        if not data:
            pass
        elif self._thread is not None:
            self._queue.put(data)
        else:
            self.hash.update(data)
        return data

    def close(self):
        """Stop the hashing thread once it has hashed everything read."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self):
        self.close()
        return self.hash.hexdigest()


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows: directories cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sync():
    if hasattr(os, "sync"):
        os.sync()


def _write_json_atomic(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    _crash_step()
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def read_generation(root):
    """(tree id or None, generation) of TREE: (None, 0) for a tree that never took an
    import; ImportRefused for an unreadable generation.json."""
    path = os.path.join(root, GENERATION_REL)
    if not os.path.lexists(path):
        return None, 0
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read(HMAC_MAX * 64).decode("utf-8"))
        tree, gen = doc["tree"], doc["generation"]
        if (
            doc.get("format") != GENERATION_FORMAT
            or not isinstance(tree, str)
            or not _TREE_ID.match(tree)
            or not isinstance(gen, int)
            or isinstance(gen, bool)
            or gen < 0
        ):
            raise ValueError("not a %s document" % GENERATION_FORMAT)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImportRefused(
            "%s cannot be read (%s): it records which export this tree last took.  "
            "Restore it from a backup, or import a full export (morgan-like export --full) "
            "and delete it first." % (path, _why(exc))
        )
    return tree, gen


def _refuse_manifest(path, detail):
    return ImportRefused(
        "%s is not a valid export manifest: %s.  It was damaged or edited after the "
        "export; carry the export across again (or make it again with morgan-like export)."
        % (path, detail)
    )


def _int_field(value, minimum=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_export_manifest(path, doc):
    """Every field of the manifest, before anything is read from a volume."""
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise _refuse_manifest(path, "its format is not %s" % EXPORT_FORMAT)
    if not isinstance(doc.get("tree"), str) or not _TREE_ID.match(doc["tree"]):
        raise _refuse_manifest(path, "'tree' is not a 32-hex-digit tree id")
    if not _int_field(doc.get("base")) or not _int_field(doc.get("generation"), 1):
        raise _refuse_manifest(path, "'base' and 'generation' must be whole numbers")
    if not isinstance(doc.get("full"), bool):
        raise _refuse_manifest(path, "'full' must be true or false")
    volumes, files, removed = doc.get("volumes"), doc.get("files"), doc.get("removed")
    if not all(isinstance(x, list) for x in (volumes, files, removed)):
        raise _refuse_manifest(path, "'volumes', 'files' and 'removed' must be lists")
    names = {}
    for v in volumes:
        if (
            not isinstance(v, dict)
            or not isinstance(v.get("name"), str)
            or not _VOLUME_NAME.match(v["name"])
            or v["name"] in names
            or v["name"].startswith(EXPORT_MANIFEST)
            or not _int_field(v.get("size"))
            or not isinstance(v.get("sha256"), str)
            or not _HEX64.match(v["sha256"])
        ):
            raise _refuse_manifest(path, "bad volume entry %r" % (v,))
        names[v["name"]] = 0
    seen = set()
    for f in files:
        if not isinstance(f, dict) or layout_kind(f.get("path")) is None:
            raise _refuse_manifest(
                path,
                "file %r is not a path of a tree's layout (simple/, packages/, json/, "
                "envs/NAME/simple/, inputs/, the known top-level files)"
                % (f.get("path") if isinstance(f, dict) else f,),
            )
        if (
            f["path"] in seen
            or not _int_field(f.get("size"))
            or not isinstance(f.get("sha256"), str)
            or not _HEX64.match(f["sha256"])
            or f.get("volume") not in names
        ):
            raise _refuse_manifest(path, "bad file entry %r" % (f,))
        seen.add(f["path"])
        names[f["volume"]] += 1
    for rel in removed:
        if layout_kind(rel) is None or rel in seen:
            raise _refuse_manifest(path, "bad removal %r" % (rel,))


def _read_hmac_key(key_file):
    """The key's bytes, surrounding whitespace (a final newline) stripped."""
    try:
        with open(key_file, "rb") as f:
            key = f.read(1 << 16).strip()
    except OSError as exc:
        raise StartError("--hmac-key-file %s: cannot read it (%s)" % (key_file, _why(exc)))
    if not key:
        raise StartError("--hmac-key-file %s: the file is empty; give the shared key" % key_file)
    return key


def _load_export(src, key, out):
    """The checked manifest and its sha256; the signature checked when a key is given."""
    path = os.path.join(src, EXPORT_MANIFEST)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImportRefused(
                "%s is not a regular file: give the directory the export was written to." % path
            )
        if st.st_size > EXPORT_MANIFEST_MAX:
            raise _refuse_manifest(path, "it is larger than %d bytes" % EXPORT_MANIFEST_MAX)
        with open(path, "rb") as f:
            raw = f.read(EXPORT_MANIFEST_MAX + 1)
    except OSError as exc:
        raise ImportRefused(
            "%s cannot be read (%s): DIR must hold the export's manifest beside its volumes; "
            "copy the whole export directory across." % (path, _why(exc))
        )
    if len(raw) > EXPORT_MANIFEST_MAX:
        raise _refuse_manifest(path, "it is larger than %d bytes" % EXPORT_MANIFEST_MAX)
    digest = hashlib.sha256(raw).hexdigest()
    if key is not None:
        sig_path = path + ".hmac"
        try:
            with open(sig_path, "rb") as f:
                sig = f.read(HMAC_MAX).strip().decode("ascii").lower()
        except (OSError, UnicodeDecodeError) as exc:
            raise ImportRefused(
                "%s cannot be read (%s): with --hmac-key-file the manifest must come signed; "
                "make the export with the same --hmac-key-file." % (sig_path, _why(exc))
            )
        want = hmac.new(key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            raise ImportRefused(
                "%s does not match the manifest under this key: the manifest was changed after "
                "the export, or it was signed with another key.  Do not import it; make the "
                "export again with the shared key." % sig_path
            )
        out.write("export manifest signature verified (HMAC-SHA256)\n")
    else:
        out.write("export manifest sha256: %s (compare it with the export's)\n" % digest)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise _refuse_manifest(path, "not JSON (%s)" % _why(exc))
    _check_export_manifest(path, doc)
    return doc, digest


def _site_named(doc):
    """The manifest's site, for a command to copy: the exporter's own name rule (a name
    that could be anything else, from a hand-edited manifest, reads SITE)."""
    site = doc.get("site")
    if isinstance(site, str) and _SITE_NAME.match(site):
        return site
    return "SITE"


def _check_base(root, doc, src):
    """(already applied?, the tree's generation) or ImportRefused for another base/tree."""
    tree, gen = read_generation(root)
    if tree == doc["tree"] and gen == doc["generation"]:
        return True, gen
    if doc["full"]:
        return False, gen
    if tree is None:
        raise ImportRefused(
            "%s has taken no import yet (no %s), and the export in %s is a delta from "
            "generation %d: on the online side run 'morgan-like export --full' for this site."
            % (root, GENERATION_REL, src, doc["base"])
        )
    if tree != doc["tree"]:
        raise ImportRefused(
            "the export in %s comes from tree %s, but %s took its files from tree %s: "
            "export from that tree, or send a full export (morgan-like export --full)."
            % (src, doc["tree"], root, tree)
        )
    if gen != doc["base"]:
        raise ImportRefused(
            "%s is at generation %d, but the export in %s needs generation %d (it leads to %d): "
            "on the online side run 'morgan-like export --site %s --since %d' and import that."
            % (root, gen, src, doc["base"], doc["generation"], _site_named(doc), gen)
        )
    return False, gen


class _Importer(object):
    """One run of import_export(); see its docstring."""

    def __init__(self, src, root, doc, digest, out, err):
        self.src, self.root, self.doc, self.digest = src, root, doc, digest
        self.out, self.err = out, err
        self.work = os.path.join(root, IMPORT_REL)
        self.staged = os.path.join(self.work, "files")
        self.journal = os.path.join(self.work, "journal.json")
        self.files = doc["files"]
        self.total = sum(f["size"] for f in self.files)
        self.known = {}  # relpath -> (sha256, st_dev, st_ino, size, mtime_ns) staged this run

    def staged_path(self, index):
        return os.path.join(self.staged, "%08d" % index)

    def tree_path(self, rel):
        return os.path.join(self.root, *rel.split("/"))

    def journal_state(self):
        """The export a half-done import was for (its manifest sha256), or None."""
        try:
            with open(self.journal, "rb") as f:
                doc = json.loads(f.read(1 << 16).decode("utf-8"))
            if doc.get("format") == JOURNAL_FORMAT and isinstance(doc.get("export"), str):
                return doc["export"]
        except (OSError, ValueError, AttributeError):
            pass
        return None

    # -- checks and staging: nothing outside .morgan-like/import/ changes
    def volume_sources(self):
        """ "volumes" when every volume is there, "plain" when none is and the files lie
        unpacked under DIR, else ImportRefused naming the first missing volume."""
        present, missing = [], []
        for v in self.doc["volumes"]:
            (present if os.path.lexists(os.path.join(self.src, v["name"])) else missing).append(v)
        if not missing or not self.files:
            return "volumes"
        if not present:
            return "plain"
        raise ImportRefused(
            "volume %s is missing from %s (%d of %d volumes there): copy every vol-*.tar of "
            "the export into that directory and run the import again."
            % (missing[0]["name"], self.src, len(present), len(self.doc["volumes"]))
        )

    def check_volume_sizes(self):
        for v in self.doc["volumes"]:
            path = os.path.join(self.src, v["name"])
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                raise ImportRefused("%s is not a regular file: copy the volume itself." % path)
            if st.st_size != v["size"]:
                what = "truncated" if st.st_size < v["size"] else "larger than the manifest says"
                raise ImportRefused(
                    "volume %s is %s (%d bytes, the manifest says %d): copy it across again "
                    "from the export." % (path, what, st.st_size, v["size"])
                )

    def check_space(self):
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return
        if free < self.total:
            raise ImportRefused(
                "the disk holding %s has %s free, and the import needs %s to stage the "
                "export's files: free some space and run the import again."
                % (self.root, _mb(free), _mb(self.total))
            )

    def stage_stream(self, reader, index, label):
        """Copy one file's bytes into staging, checking its size and sha256."""
        entry = self.files[index]
        h = hashlib.sha256()
        n = 0
        with open(self.staged_path(index), "wb") as dst:
            while True:
                chunk = reader.read(min(HASH_CHUNK, entry["size"] + 1 - n))
                if not chunk:
                    break
                n += len(chunk)
                if n > entry["size"]:
                    break
                h.update(chunk)
                dst.write(chunk)
                self.progress.add(len(chunk))
            dst.flush()
            st = os.fstat(dst.fileno())
        _crash_step()
        if n != entry["size"] or h.hexdigest() != entry["sha256"]:
            raise ImportRefused(
                "%s in %s does not match the manifest (%s): the export was damaged on the "
                "way; copy it across again."
                % (
                    entry["path"],
                    label,
                    "size" if n != entry["size"] else "sha256",
                )
            )
        # What this run hashed, for the closing --verify: the rename keeps the inode,
        # so a placed file with this identity, size and mtime holds these bytes.
        self.known[entry["path"]] = (
            entry["sha256"],
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        )

    def stage_volume(self, v, index_of):
        import tarfile  # only --import needs it

        path = os.path.join(self.src, v["name"])
        expected = set(f["path"] for f in self.files if f["volume"] == v["name"])
        with open(path, "rb") as raw:
            reader = _CappedReader(raw, v["size"])
            try:
                # bufsize: the stream reads the volume in HASH_CHUNK pieces, not 10 KiB ones
                tf = tarfile.open(fileobj=reader, mode="r|", bufsize=HASH_CHUNK)
                for member in tf:
                    name = member.name
                    if layout_kind(name) is None:
                        raise ImportRefused(
                            "volume %s holds %r, a name outside a tree's layout (absolute, "
                            "'..', hidden or unknown): do not import it; make the export "
                            "again with morgan-like export." % (path, name)
                        )
                    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                        raise ImportRefused(
                            "volume %s holds %s as a %s, not a regular file: do not import "
                            "it; make the export again with morgan-like export."
                            % (path, name, _TAR_KINDS.get(member.type, "special entry"))
                        )
                    if name not in expected:
                        raise ImportRefused(
                            "volume %s holds %s, which the manifest does not place in it: it "
                            "belongs to another export, or was altered; carry this export's "
                            "volumes across again." % (path, name)
                        )
                    expected.discard(name)
                    self.stage_stream(tf.extractfile(member), index_of[name], "volume " + path)
                while reader.read(HASH_CHUNK):
                    pass  # the tar's end padding
            except (tarfile.TarError, EOFError, ValueError) as exc:
                raise ImportRefused(
                    "volume %s is not a readable tar (%s): it is corrupt or not from this "
                    "export; copy it across again." % (path, _why(exc))
                )
            finally:
                reader.close()
            if raw.read(1):
                raise ImportRefused(
                    "volume %s grew while it was read: copy it across again." % path
                )
        if reader.hexdigest() != v["sha256"]:
            raise ImportRefused(
                "volume %s does not match the manifest's sha256: it is corrupt or from another "
                "export; copy this export's volume across again." % path
            )
        if expected:
            raise ImportRefused(
                "volume %s lacks %s, which the manifest places in it: the volume is from "
                "another export; copy this export's volumes across again."
                % (path, sorted(expected)[0])
            )

    def stage_plain(self):
        for index, entry in enumerate(self.files):
            path = os.path.join(self.src, *entry["path"].split("/"))
            parts = entry["path"].split("/")
            for depth in range(1, len(parts) + 1):
                p = os.path.join(self.src, *parts[:depth])
                try:
                    st = os.lstat(p)
                except OSError:
                    raise ImportRefused(
                        "%s is missing: %s holds neither the export's volumes nor its files "
                        "unpacked; copy the whole export directory across." % (path, self.src)
                    )
                if stat.S_ISLNK(st.st_mode) or (
                    depth == len(parts) and not stat.S_ISREG(st.st_mode)
                ):
                    raise ImportRefused(
                        "%s is a symlink or not a regular file: an import reads only regular "
                        "files; copy the export's files themselves." % p
                    )
            with open(path, "rb") as f:
                self.stage_stream(f, index, self.src)

    def stage(self):
        """Read and check everything into staging; ImportRefused leaves the tree as it was."""
        mode = self.volume_sources()
        if mode == "volumes":
            self.check_volume_sizes()
        self.check_space()
        if os.path.lexists(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.staged)
        self.progress = _ImportProgress(self.err, self.total)
        index_of = dict((f["path"], i) for i, f in enumerate(self.files))
        if mode == "plain":
            self.stage_plain()
        else:
            for v in self.doc["volumes"]:
                self.stage_volume(v, index_of)
        _sync()
        _write_json_atomic(self.journal, {"format": JOURNAL_FORMAT, "export": self.digest})
        _crash_step()

    # -- apply: rename into place, then the removals; a re-run repeats what is left
    def remove_empty_parents(self, rel):
        parts = rel.split("/")[:-1]
        while parts:
            try:
                os.rmdir(self.tree_path("/".join(parts)))
            except OSError:
                return
            parts.pop()

    def place(self):
        dirs = set()
        for index, entry in enumerate(self.files):
            staged = self.staged_path(index)
            target = self.tree_path(entry["path"])
            if not os.path.exists(staged):
                if not os.path.isfile(target):
                    raise ImportRefused(
                        "%s is neither staged nor in place: the interrupted import's staging "
                        "in %s was changed.  Import a full export (morgan-like export --full)."
                        % (entry["path"], self.work)
                    )
                continue  # placed before the interruption
            parent = os.path.dirname(target)
            if not os.path.isdir(parent):
                os.makedirs(parent)
            os.replace(staged, target)
            dirs.add(parent)
            _crash_step()
        # The staged bytes were made durable before the journal (stage()); what is new
        # here are directory entries, so fsyncing each directory a rename wrote makes
        # them durable before --verify and generation.json, without a second sync().
        for d in sorted(dirs):
            _fsync_dir(d)

    def removals(self):
        gone = list(self.doc["removed"])
        if self.doc["full"]:
            listed = set(f["path"] for f in self.files)
            gone.extend(rel for rel in self.layout_files() if rel not in listed)
        unlinked = False
        for rel in gone:
            path = self.tree_path(rel)
            if os.path.lexists(path) and not os.path.isdir(path):
                os.unlink(path)
                self.remove_empty_parents(rel)
                unlinked = True
                _crash_step()
        if unlinked:  # nothing to make durable when nothing was removed
            _sync()
        return len(gone)

    def layout_files(self):
        """The tree's visible files a full export replaces (pages before files)."""
        found = []
        for top in _LAYOUT_DIRS + tuple(sorted(_TOP_FILES)):
            start = os.path.join(self.root, top)
            if os.path.isfile(start) and not os.path.islink(start):
                found.append(top)
                continue
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
                for name in filenames:
                    rel = rel_dir + "/" + name
                    if layout_kind(rel) is not None:
                        found.append(rel)
        found.sort(key=lambda rel: (not rel.endswith(_PAGE_FILES), rel))
        return found

    def run(self, resume):
        if not resume:
            self.stage()
        self.place()
        removed = self.removals()
        return removed


_TAR_KINDS = {
    b"1": "hard link",
    b"2": "symlink",
    b"3": "character device",
    b"4": "block device",
    b"5": "directory",
    b"6": "FIFO",
}


def import_export(src, root, key=None, out=None, err=None):
    """Apply the export in SRC to the tree ROOT; returns an exit code (0 applied or
    already applied, 1 refused or failed).

    Order: the manifest (and its HMAC with ``key``), the tree's generation against the
    export's base, every volume's size, then each volume streamed through tarfile
    (regular members named in the manifest only, each one's size and sha256, the
    volume's sha256) into ``.morgan-like/import/``, the journal, the renames into place
    in manifest order, the removals, ``--verify``'s checks, and generation.json.  A
    refusal before the journal leaves the tree as it was (staging removed); after it, a
    re-run of the same command finishes the import.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        doc, digest = _load_export(src, key, out)
        importer = _Importer(src, root, doc, digest, out, err)
        pending = importer.journal_state()
        if pending is not None and pending != digest:
            raise ImportRefused(
                "an import of another export (manifest sha256 %s) was interrupted in %s and "
                "the tree is half-way through it: run that import again to finish it, then "
                "this one." % (pending, root)
            )
        applied, gen = _check_base(root, doc, src)
        if applied:
            if pending is not None:
                shutil.rmtree(importer.work, ignore_errors=True)
            out.write(
                "%s is already at generation %d of this export's tree: nothing to do, nothing "
                "changed\n" % (root, gen)
            )
            return 0
        if pending is not None:
            out.write("finishing the interrupted import of this export\n")
        try:
            removed = importer.run(resume=pending is not None)
        except ImportRefused:
            if importer.journal_state() is None:
                shutil.rmtree(importer.work, ignore_errors=True)
            raise
        except OSError as exc:
            staged = importer.journal_state() is not None
            if not staged:
                shutil.rmtree(importer.work, ignore_errors=True)
            full = exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
            if not staged:
                raise ImportRefused(
                    "%s while staging the export in %s (%s): nothing in the tree changed, it "
                    "stays at generation %d; %s and run the import again."
                    % (
                        "the disk is full" if full else "a write failed",
                        importer.work,
                        _why(exc),
                        gen,
                        "free some space" if full else "fix the cause",
                    )
                )
            raise ImportRefused(
                "placing the files failed (%s, %s): the tree is half-way through this "
                "import; fix the cause and run the same import again to finish it."
                % (_why(exc), getattr(exc, "filename", "") or root)
            )
        out.write(
            "placed %d files (%s), removed %d; checking the tree\n"
            % (len(doc["files"]), _mb(importer.total), removed)
        )
        out.flush()
        if verify(root, out, err, known=importer.known) != 0:
            raise ImportRefused(
                "the files of this export are in place but the tree fails --verify (above), "
                "so its generation was not recorded: run 'python3 server.py --verify -i %s' "
                "after fixing it, or import a full export." % root
            )
        _write_json_atomic(
            os.path.join(root, GENERATION_REL),
            {"format": GENERATION_FORMAT, "tree": doc["tree"], "generation": doc["generation"]},
        )
        _crash_step()
        shutil.rmtree(importer.work, ignore_errors=True)
        out.write("%s is now at generation %d\n" % (root, doc["generation"]))
        return 0
    except ImportRefused as exc:
        out.flush()
        err.write("import refused: %s\n" % exc)
        return 1
    except OSError as exc:
        out.flush()
        err.write("import failed: %s (%s)\n" % (_why(exc), getattr(exc, "filename", "") or src))
        return 1


def write_receipt(root, out_file=None, out=None, err=None):
    """generation.json's content to stdout or OUT_FILE: what the online side records."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        tree, gen = read_generation(root)
    except ImportRefused as exc:
        err.write("receipt refused: %s\n" % exc)
        return 1
    if tree is None:
        err.write(
            "receipt refused: %s has taken no import yet (no %s), so there is nothing to "
            "report: send it a full export (morgan-like export --full).\n" % (root, GENERATION_REL)
        )
        return 1
    text = (
        json.dumps(
            {"format": GENERATION_FORMAT, "tree": tree, "generation": gen}, indent=1, sort_keys=True
        )
        + "\n"
    )
    if out_file is None:
        out.write(text)
        return 0
    try:
        with open(out_file, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        err.write("receipt: cannot write %s (%s)\n" % (out_file, _why(exc)))
        return 1
    err.write("receipt: %s at generation %d written to %s\n" % (root, gen, out_file))
    return 0


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def default_root():
    """The directory of this file when it is a tree (has simple/), else the cwd."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isdir(os.path.join(here, "simple")):
        return here
    return os.getcwd()


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other refusal of server.py."""

    def error(self, message):
        self.exit(2, "error: %s (see python3 server.py --help)\n" % message)


def build_parser():
    parser = _Parser(
        prog="server.py",
        description="Serve a morgan_like tree to pip and uv (PEP 503/691/658/700), stdlib only.",
        epilog=(
            "TLS and basic auth are off by default.  TLS: --certfile/--keyfile.  Basic auth: "
            "--auth-file FILE with lines 'user:pbkdf2_sha256$...' made by --hash-password USER "
            "(use with TLS); failed logins are throttled per address (429) and password checks "
            "run %d at a time (503 when too many wait).  Behind a reverse proxy: --public-url "
            "or --trust-proxy, and --max-per-address 0 (the proxy's address is every "
            "client's).  --verify checks the tree offline: files against the sha256 and "
            "size their project pages give, top-level files against manifest.json."
            % AUTH_HASH_SLOTS
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
    parser.add_argument(
        "--threads", type=int, default=32, help="worker threads, 1 to %d (default 32)" % MAX_THREADS
    )
    parser.add_argument(
        "--max-per-address",
        type=int,
        default=None,
        metavar="N",
        help="connections one client address may hold; more are answered 503 and closed "
        "(default %d, at most half of all connections; 0: no cap, e.g. behind a reverse "
        "proxy, whose address every client has)" % MAX_PER_ADDRESS,
    )
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
        "--public-url",
        metavar="URL",
        help="the URL clients reach this server at (http(s)://HOST[:PORT][/PATH]): the file "
        "URLs of Warehouse JSON (/pypi/...) and the start-up lines start with it (default: "
        "this server's scheme and the request's Host header)",
    )
    parser.add_argument(
        "--trust-proxy",
        action="store_true",
        help="behind a reverse proxy: without --public-url, take those URLs' scheme and host "
        "from X-Forwarded-Proto / X-Forwarded-Host, and count failed logins by the last "
        "X-Forwarded-For address (default: off; never use it without a proxy that sets them)",
    )
    parser.add_argument(
        "--hash-password",
        metavar="USER",
        help="print an --auth-file line for USER (password from prompt or stdin) and exit",
    )
    parser.add_argument(
        "--view-by-user-agent",
        action="store_true",
        help="answer /simple/ from the env view whose morgan.ini [env.NAME] markers "
        "(python_version, python_full_version, sys_platform, platform_machine, ...) the "
        "client's pip/uv User-Agent matches (header X-Morgan-Like-View: NAME); other "
        "clients get the union (default: off)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check the tree offline (files against their pages' hashes, top-level files "
        "against manifest.json) and exit: 0 intact, 1 problems, 2 not a tree",
    )
    parser.add_argument(
        "--provenance",
        action="store_true",
        help="with --verify: check each file's PEP 740 provenance offline against the file "
        "(signatures too where pypi-attestations is importable) and name its publisher",
    )
    parser.add_argument(
        "--import",
        dest="import_dir",
        metavar="DIR",
        help="apply the export in DIR (morgan-like export's volumes and manifest, or its "
        "files unpacked beside the manifest) to the tree and exit: 0 applied or already "
        "applied, 1 refused or failed",
    )
    parser.add_argument(
        "--hmac-key-file",
        metavar="K",
        help="with --import: refuse an export manifest not signed with this shared key",
    )
    parser.add_argument(
        "--receipt",
        action="store_true",
        help="print the tree's generation (what it last imported) as JSON and exit; carry it "
        "back to 'morgan-like export --site SITE --receipt FILE'",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="with --receipt: write it to FILE")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    return parser


def _transfer_cli(args, root):
    """--import / --receipt; exit 2 for options that do not go together."""
    if args.import_dir is not None and args.receipt:
        sys.stderr.write("error: --import and --receipt go in separate runs\n")
        return 2
    if args.output is not None and not args.receipt:
        sys.stderr.write("error: -o/--output goes with --receipt\n")
        return 2
    if args.hmac_key_file is not None and args.import_dir is None:
        sys.stderr.write("error: --hmac-key-file goes with --import\n")
        return 2
    if not os.path.isdir(root):
        sys.stderr.write(
            "error: -i %s: no such directory; create the tree's directory first\n" % root
        )
        return 2
    if args.receipt:
        return write_receipt(root, args.output)
    src = os.path.abspath(args.import_dir)
    if not os.path.isdir(src):
        sys.stderr.write(
            "error: --import %s: no such directory; give the directory holding the export\n"
            % args.import_dir
        )
        return 2
    try:
        key = _read_hmac_key(args.hmac_key_file) if args.hmac_key_file is not None else None
    except StartError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 2
    return import_export(src, root, key)


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
    if args.provenance and not args.verify:
        sys.stderr.write("error: --provenance goes with --verify\n")
        return 2
    if args.verify:
        return verify(root, provenance=args.provenance)
    if args.import_dir is not None or args.receipt or args.output or args.hmac_key_file:
        return _transfer_cli(args, root)
    if not os.path.isdir(os.path.join(root, "simple")):
        sys.stderr.write("error: %s is not a morgan_like tree (no simple/ directory)\n" % root)
        return 2
    try:
        if args.keyfile and not args.certfile:
            raise StartError(
                "--keyfile %s: needs --certfile; give the certificate chain it goes with"
                % args.keyfile
            )
        check_options(args.port, args.threads, args.timeout, args.max_per_address)
        if args.public_url:
            try:
                check_public_url(args.public_url)
            except ValueError as exc:
                raise StartError("--public-url %s: %s" % (args.public_url, exc))
    except StartError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 2
    log_stream = None
    if not args.quiet:
        if args.access_log == "-":
            log_stream = sys.stdout
        else:
            try:
                log_stream = open(args.access_log, "a", encoding="utf-8")
            except OSError as exc:
                sys.stderr.write(
                    "error: --access-log %s: cannot open it (%s); give a file this user can "
                    "write, '-' (stdout) or -q (no log)\n" % (args.access_log, _why(exc))
                )
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
            view_by_user_agent=args.view_by_user_agent,
            max_per_address=args.max_per_address,
            public_url=args.public_url,
            trust_proxy=args.trust_proxy,
        )
    except StartError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 2
    finally:
        if log_stream is not None and log_stream is not sys.stdout:
            log_stream.close()


if __name__ == "__main__":
    sys.exit(main())
