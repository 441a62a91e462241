"""Upstream project pages parsed into RemoteFile records: the records, PEP 691 JSON.

PEP 503 HTML pages are parsed in htmlpage.py with the entry vetting kept here.

RemoteFile is the one record every later stage shares: the resolver filters it,
the plan picks it, the downloader fetches it and the writer lists it again in
our own index pages.  It keeps upstream's values verbatim (requires-python,
yanked reason, upload-time) so that our tree says what upstream said.
"""

from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from morgan_like.dists.filenames import (
    LEGACY_SUFFIXES,
    Parsed,
    is_sdist_name,
    is_wheel_name,
    parse_filename,
    vet_filename,
)
from morgan_like.dists.serials import serial_value

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT_HEADER = f"{JSON_CONTENT_TYPE}, {HTML_CONTENT_TYPE}; q=0.1, text/html; q=0.01"

URL_SCHEMES = ("http", "https")
# A hostile page can list a million bad entries: name the first few, count the rest.
MAX_PAGE_PROBLEMS = 5


@dataclass(frozen=True)
class RemoteFile:
    """One distribution file as an index lists it."""

    filename: str
    url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    # True: advertised without a usable hash; str: its sha256; None/False: not advertised.
    core_metadata: bool | str | None = None
    size: int | None = None
    upload_time: str | None = None
    # PEP 740: the absolute URL of the file's provenance (attestations), None when not offered.
    provenance: str | None = None

    @property
    def is_wheel(self) -> bool:
        return is_wheel_name(self.filename)

    @property
    def is_sdist(self) -> bool:
        return is_sdist_name(self.filename)

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not False

    @cached_property
    def _parsed(self) -> tuple[NormalizedName | None, Version | None, frozenset[Tag]]:
        return parse_filename(self.filename)

    @property
    def project(self) -> NormalizedName | None:
        return self._parsed[0]

    @property
    def version(self) -> Version | None:
        """The file's version, or None when its name cannot be parsed (such files are ignored)."""
        return self._parsed[1]

    @property
    def tags(self) -> frozenset[Tag]:
        return self._parsed[2]

    @property
    def metadata_sha256(self) -> str | None:
        return self.core_metadata if isinstance(self.core_metadata, str) else None


PROJECT_STATUSES = ("active", "archived", "deprecated", "quarantined")


@dataclass(frozen=True)
class ProjectMeta:
    """What a page says of the project beside its files, carried onto a mirror's pages.

    ``status`` (PEP 792): None when the page says nothing (active); ``quarantined``
    means the page lists no files.  ``tracks`` / ``alternate_locations`` (PEP 708).
    """

    status: str | None = None
    reason: str | None = None
    tracks: tuple[str, ...] = ()
    alternate_locations: tuple[str, ...] = ()

    @property
    def quarantined(self) -> bool:
        return self.status == "quarantined"


NO_META = ProjectMeta()


@dataclass
class ProjectPage:
    """A project's file list, plus the serial upstream stamped on it (if any).

    ``problems``: one line per file entry left out as unsafe or malformed (the
    Finder hands them to the reporter), so one bad entry never costs the page.
    """

    name: NormalizedName
    files: list[RemoteFile] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    last_serial: int | None = None
    problems: list[str] = field(default_factory=list)
    meta: ProjectMeta = NO_META


def _status(value: Any, reason: Any = None) -> tuple[str | None, str | None]:
    """A PEP 792 status and reason; an unknown status reads as active (no marker)."""
    if not isinstance(value, str) or value.lower() not in PROJECT_STATUSES:
        return None, None
    status = value.lower()
    if status == "active":
        return None, None
    return status, reason if isinstance(reason, str) and reason else None


def _urls(value: Any) -> tuple[str, ...]:
    """PEP 708 URL lists: http(s) strings only, order kept, duplicates dropped."""
    if not isinstance(value, list):
        return ()
    found = [v for v in value if isinstance(v, str) and urlsplit(v).scheme.lower() in URL_SCHEMES]
    return tuple(dict.fromkeys(found))


def json_project_meta(doc: dict[str, Any]) -> ProjectMeta:
    raw = doc.get("project-status")
    status, reason = (
        _status(*(raw.get("status"), raw.get("reason"))) if isinstance(raw, dict) else (None, None)
    )
    return ProjectMeta(
        status, reason, _urls(doc.get("tracks")), _urls(doc.get("alternate-locations"))
    )


# One regex pass instead of a Python-level loop per character: pages list thousands of files.
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class _Skips:
    """Collects the page's left-out entries as at most MAX_PAGE_PROBLEMS + 1 lines."""

    def __init__(self, page_url: str) -> None:
        self.page_url = page_url
        self.lines: list[str] = []
        self.more = 0

    def add(self, what: Any, reason: str) -> None:
        if len(self.lines) >= MAX_PAGE_PROBLEMS:
            self.more += 1
            return
        shown = repr(what) if len(repr(what)) <= 80 else repr(what)[:77] + "..."
        self.lines.append(f"{self.page_url}: skipped file entry {shown}: {reason}")

    def done(self) -> list[str]:
        if self.more:
            return [*self.lines, f"{self.page_url}: skipped {self.more} more file entries"]
        return self.lines


def _legacy(filename: Any) -> bool:
    return isinstance(filename, str) and filename.lower().endswith(LEGACY_SUFFIXES)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else type(value).__name__


def _yanked(value: Any) -> bool | str:
    if not isinstance(value, (bool, str, type(None))):
        raise ValueError(f"yanked is {_kind(value)}")
    if value is None or value is False:
        return False
    if value is True or value == "":
        return True
    return str(value)


def _core_metadata(value: Any) -> bool | str | None:
    if isinstance(value, dict):
        digest = value.get("sha256")
        return digest if _is_sha256(digest) else True
    if value is True:
        return True
    return None


def _hash_from_fragment(url: str) -> tuple[str, str | None]:
    bare, fragment = urldefrag(url)
    if fragment.startswith("sha256="):
        return bare, fragment[len("sha256=") :]
    return bare, None


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


@functools.lru_cache(maxsize=1 << 16)
def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


# An absolute http(s) URL that urljoin and urldefrag would give back unchanged (no
# fragment, query, params, whitespace or brackets): how PyPI lists every file.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9._~!$&'()*+,=:@/%-]*")


# A root-relative path urljoin would only put after the page's scheme and host (no dot
# segment to resolve, no fragment or query): how a mirror of PyPI (nginx, bandersnatch's
# tree, devpi) lists its files.  "/." anywhere sends the path to urljoin.
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~!$&'()*+,=:@/%-]*")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?=/)")


@functools.lru_cache(maxsize=256)
def _origin(page_url: str) -> str | None:
    """``scheme://host[:port]`` of a plain http(s) page URL (no credentials), else None."""
    found = _ORIGIN.match(page_url)
    return found.group() if found else None


def _url(page_url: str, href: str) -> tuple[str, str | None]:
    """The absolute URL (no fragment) and the fragment's sha256; ValueError if unusable."""
    if _PLAIN_URL.fullmatch(href):
        return href, None
    if href[:1] == "/" and "/." not in href and _PLAIN_PATH.fullmatch(href):
        origin = _origin(page_url)
        if origin is not None:
            return origin + href, None
    url, digest = _hash_from_fragment(urljoin(page_url, href))
    scheme = urlsplit(url).scheme.lower()
    if scheme not in URL_SCHEMES and scheme != _scheme(page_url):
        raise ValueError(f"URL scheme of {url[:60]!r} is not http(s)")
    if digest is not None and not _is_sha256(digest):
        raise ValueError("malformed sha256 in the URL fragment")
    return url, digest


def provenance_url(page_url: str, value: Any) -> str | None:
    """PEP 740's provenance URL made absolute, or None: a value that is no usable URL
    (not a string, another scheme, an old draft's bare digest) costs the provenance only,
    never the file entry."""
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return None
    url = urldefrag(urljoin(page_url, value))[0]
    scheme = urlsplit(url).scheme.lower()
    if scheme not in URL_SCHEMES and scheme != _scheme(page_url):
        return None
    return url


def _optional_str(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} is {_kind(value)}")
    return value or None


def _json_file(raw: Any, page_url: str, project: str) -> RemoteFile:
    """One PEP 691 file entry; ValueError says why it is malformed or unsafe."""
    if not isinstance(raw, dict):
        raise ValueError(f"entry is {_kind(raw)}, not an object")
    filename, href = raw.get("filename"), raw.get("url")
    if not isinstance(filename, str):
        raise ValueError(f"filename is {_kind(filename)}")
    problem, parsed = vet_filename(filename, project)
    if problem:
        raise ValueError(problem)
    if not isinstance(href, str) or not href:
        raise ValueError(f"url is {_kind(href)}")
    url, frag_hash = _url(page_url, href)
    hashes = raw.get("hashes")
    if hashes is None:
        hashes = {}
    if not isinstance(hashes, dict):
        raise ValueError(f"hashes is {_kind(hashes)}, not an object")
    sha256 = hashes.get("sha256")
    if sha256 is not None and not _is_sha256(sha256):
        raise ValueError("malformed sha256")
    size = raw.get("size")
    return _born_parsed(
        parsed,
        filename=filename,
        url=url,
        sha256=sha256 or frag_hash,
        # Kept verbatim even when not a valid specifier: pip ignores such values.
        requires_python=_optional_str(raw, "requires-python"),
        yanked=_yanked(raw.get("yanked")),
        core_metadata=_core_metadata(raw.get("core-metadata", raw.get("dist-info-metadata"))),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=_optional_str(raw, "upload-time"),
        provenance=provenance_url(page_url, raw.get("provenance")),
    )


def _born_parsed(parsed: Parsed, **fields: Any) -> RemoteFile:
    """A record that keeps the parse its name was vetted with (not parsed again)."""
    file = RemoteFile(**fields)
    file.__dict__["_parsed"] = parsed  # what the cached_property would compute
    return file


def parse_json_page(name: str, data: bytes | str | dict, page_url: str) -> ProjectPage:
    """Parse a PEP 691 project page; relative URLs resolve against ``page_url``.

    A malformed or unsafe file entry is left out with a line in ``problems``; a
    document that is not a project page at all raises ValueError saying so.
    """
    try:
        doc = json.loads(data) if isinstance(data, (bytes, str)) else data
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError(f"the JSON document is {_kind(doc)}, not an object")
    entries = doc.get("files", [])
    if not isinstance(entries, list):
        raise ValueError(f"'files' is {_kind(entries)}, not an array")
    files, skips = [], _Skips(page_url)
    for raw in entries:
        if isinstance(raw, dict) and _legacy(raw.get("filename")):
            continue
        try:
            files.append(_json_file(raw, page_url, name))
        except ValueError as exc:
            what = raw.get("filename") if isinstance(raw, dict) else raw
            skips.add(what, str(exc))
    meta = doc.get("meta")
    serial = serial_value(meta.get("_last-serial")) if isinstance(meta, dict) else None
    versions = doc.get("versions")
    doc_name = doc.get("name")
    project_meta = json_project_meta(doc)
    if project_meta.quarantined:
        files = []  # a quarantined project lists no files, whatever the page says
    return ProjectPage(
        name=canonicalize_name(doc_name if isinstance(doc_name, str) and doc_name else name),
        files=files,
        versions=[v for v in versions if isinstance(v, str)] if isinstance(versions, list) else [],
        last_serial=serial,
        problems=skips.done(),
        meta=project_meta,
    )


_ANCHOR_TEXT = re.compile(r"<a\b[^>]*>([^<]*)</a>", re.IGNORECASE)


def parse_root_names(page: bytes | str) -> list[str]:
    """Project names of a root index: PEP 691 JSON (bytes) or PEP 503 HTML (text)."""
    if isinstance(page, bytes):
        try:
            projects = json.loads(page).get("projects")
        except (ValueError, AttributeError):
            return []
        if not isinstance(projects, list):
            return []
        return [
            p["name"] for p in projects if isinstance(p, dict) and isinstance(p.get("name"), str)
        ]
    return [html.unescape(m).strip() for m in _ANCHOR_TEXT.findall(page) if m.strip()]
