"""Rendering of our own index pages: PEP 503 HTML and PEP 691/700 JSON, as bytes.

Pure functions with deterministic output (files sorted by filename, fixed key
order), so a page whose content did not change renders to identical bytes and
stays out of the diff-file.  Every rule here comes from /work/shared/WIRE-FORMATS.md:
pip and uv are pickier than the PEPs, and the comments say which client cares.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import quote

from packaging.utils import canonicalize_name
from packaging.version import Version

from morgan_like.dists.filenames import parse_filename
from morgan_like.dists.links import NO_META, ProjectMeta, RemoteFile
from morgan_like.tree.layout import PROVENANCE_SUFFIX

API_VERSION = "1.1"
TRACKS_API_VERSION = "1.2"  # PEP 708 tracks / alternate-locations
PROVENANCE_API_VERSION = "1.3"  # PEP 740 provenance
STATUS_API_VERSION = "1.4"  # PEP 792 project status
UPLOAD_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# ISO 8601 / RFC 3339 as upstreams write it: "T" or space, optional fraction of
# any length, optional "Z" or offset.  datetime.fromisoformat only learned most of
# this in Python 3.11, and we support 3.9.
_PLAIN_NAME = re.compile(r"[a-z0-9._-]+")
_CANONICAL = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{6}Z"
)  # days 29-31 take the slow path, which checks them
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


@dataclass(frozen=True)
class FileEntry:
    """One file as OUR page lists it: hash and size describe the file we serve.

    ``url`` is relative to the project page and not yet URL-quoted
    (``../../packages/<normalized>/<filename>``); rendering quotes it.
    ``metadata_sha256`` is the hash of the ``.metadata`` file we wrote (wheels only).
    ``provenance``: the URL of the file's PEP 740 provenance, relative like ``url``
    (our copy beside the file) or upstream's absolute one (index-only pages).
    """

    filename: str
    url: str
    sha256: str
    size: int | None  # None only on index-only pages whose upstream gave none
    requires_python: str | None = None
    yanked: bool | str = False
    metadata_sha256: str | None = None
    upload_time: str | None = None
    provenance: str | None = None

    @cached_property
    def version(self) -> Version | None:
        """Parsed once per entry: the three pages of a project each ask for it."""
        return parse_filename(self.filename)[1]


def upstream_entry(rf: RemoteFile) -> FileEntry | None:
    """An index-only page's entry: upstream's absolute URL, hash and size (no local file).

    None when upstream gives no sha256: a mirror never lists a file it cannot vouch for.
    """
    if "://" not in rf.url:
        return None
    return listed_entry(rf, rf.url)


def listed_entry(rf: RemoteFile, url: str) -> FileEntry | None:
    """A page's record of ``rf`` linking ``url`` (an index-only page's upstream URL, or an
    env view's link into packages/); None without a sha256, which no page may omit.

    The provenance: upstream's URL beside upstream's file; beside ours, our copy (``rf``
    read back from our own page names it only when the tree holds it)."""
    if not rf.sha256:
        return None
    provenance = None
    if rf.provenance:
        provenance = rf.provenance if "://" in url else url + PROVENANCE_SUFFIX
    entry = FileEntry(
        filename=rf.filename,
        url=url,
        sha256=rf.sha256.lower(),
        size=rf.size,
        requires_python=rf.requires_python,
        yanked=rf.yanked,
        metadata_sha256=rf.metadata_sha256 if rf.is_wheel else None,
        upload_time=rf.upload_time,
        provenance=provenance,
    )
    return with_version(entry, rf)


def with_version(entry: FileEntry, rf: RemoteFile) -> FileEntry:
    """``entry`` knowing its version from ``rf`` (same filename), whose parse a page's
    reader has usually done already: the same parse_filename, not done again."""
    entry.__dict__["version"] = rf.version  # what the cached_property would compute
    return entry


def normalize_upload_time(value: str | None) -> str | None:
    """Upstream's upload time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC), or None if unparseable.

    uv fails a whole page on a value it cannot parse, so an odd value is dropped, not copied.
    """
    if not value:
        return None
    if _CANONICAL.fullmatch(value):
        return value  # already in our form (PyPI's, and our own pages'): no parse
    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        stamp = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError:
        return None
    return stamp.astimezone(timezone.utc).strftime(UPLOAD_TIME_FORMAT)


def file_href(url: str) -> str:
    """URL-quote a relative file URL (``+`` of local versions, spaces, ...), keeping ``/``.

    An absolute URL (an index-only mirror links upstream's files) is upstream's own,
    already quoted, and kept as it is.
    """
    if "://" in url:
        return url
    return quote(url, safe="/")


def api_version(meta: ProjectMeta, files: list[FileEntry] | None = None) -> str:
    """The lowest api-version whose features the page carries (never higher)."""
    if meta.status:
        return STATUS_API_VERSION
    if files and any(f.provenance for f in files):
        return PROVENANCE_API_VERSION
    if meta.tracks or meta.alternate_locations:
        return TRACKS_API_VERSION
    return API_VERSION


def _sorted(files: list[FileEntry]) -> list[FileEntry]:
    return sorted(files, key=lambda f: f.filename)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _serial_meta(meta: dict[str, Any], last_serial: int | None) -> dict[str, Any]:
    if last_serial is not None:
        meta["_last-serial"] = int(last_serial)
    return meta


# json.dumps(doc, ensure_ascii=False)'s bytes without its check for circular references
# (a page is a tree of fresh dicts and lists), which cost a third of its time.
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)
# A JSON string as json.dumps(value, ensure_ascii=False) writes it: the encoder's own.
json_str = json.encoder.encode_basestring


def _meta_tags(meta: ProjectMeta) -> list[str]:
    tags = []
    if meta.status:
        tags.append(f'    <meta name="pypi:project-status" content="{_attr(meta.status)}">')
        if meta.reason:
            tags.append(
                f'    <meta name="pypi:project-status-reason" content="{_attr(meta.reason)}">'
            )
    tags += [f'    <meta name="pypi:tracks" content="{_attr(u)}">' for u in meta.tracks]
    tags += [
        f'    <meta name="pypi:alternate-locations" content="{_attr(u)}">'
        for u in meta.alternate_locations
    ]
    return tags


def render_project_html(
    name: str,
    files: list[FileEntry],
    last_serial: int | None = None,
    meta: ProjectMeta = NO_META,
) -> bytes:
    """PEP 503 project page with PEP 592/658/714 attributes and uv's data-size/upload-time;
    PEP 792 status and PEP 708 tracks as ``<meta>`` tags when upstream sent them."""
    title = _attr(canonicalize_name(name))
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{api_version(meta, files)}">',
        *_meta_tags(meta),
        f"    <title>Links for {title}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {title}</h1>",
    ]
    for f in _sorted(files):
        attrs = [f'href="{_attr(file_href(f.url))}#sha256={_attr(f.sha256)}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{_attr(f.requires_python)}"')
        if f.yanked is not False and f.yanked is not None:
            # Never a bare data-yanked: pip reads it as None and installs the file.
            reason = f.yanked if isinstance(f.yanked, str) else ""
            attrs.append(f'data-yanked="{_attr(reason)}"')
        if f.metadata_sha256:
            # PEP 714's name only.  The pips that read just the old name, data-dist-info-
            # metadata (22.3 to 23.1), compare the metadata's Name: uncanonicalized with
            # the requirement's spelling ("jupyter_server" against "jupyter-server"), then
            # discard the wheel and build its sdist: offline, that fails.  Without the old
            # name they download the wheel, as they do from our JSON pages.
            attrs.append(f'data-core-metadata="sha256={_attr(f.metadata_sha256)}"')
        if f.size is not None:
            attrs.append(f'data-size="{int(f.size)}"')
        upload_time = normalize_upload_time(f.upload_time)
        if upload_time:
            attrs.append(f'data-upload-time="{upload_time}"')
        if f.provenance:
            attrs.append(f'data-provenance="{_attr(file_href(f.provenance))}"')
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(f.filename)}</a><br>")
    lines += ["  </body>", "</html>"]
    if last_serial is not None:
        lines.append(f"<!--SERIAL {int(last_serial)}-->")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _json_yanked(yanked: bool | str) -> bool | str:
    if yanked is False or yanked is None:
        return False
    return yanked if isinstance(yanked, str) and yanked else True


def _json_file(f: FileEntry) -> str:
    """One file of a PEP 691 page as JSON text: the bytes json.dumps gives its object, made
    from strings (a page's file objects are a fixed shape; building and encoding a dict
    per file cost four times as much)."""
    parts = [
        f'{{"filename": {json_str(f.filename)}, "url": {json_str(file_href(f.url))}, '
        f'"hashes": {{"sha256": {json_str(f.sha256)}}}'
    ]
    if f.requires_python:
        parts.append(f'"requires-python": {json_str(f.requires_python)}')
    yanked = _json_yanked(f.yanked)
    parts.append(f'"yanked": {json_bool(yanked) if isinstance(yanked, bool) else json_str(yanked)}')
    if f.metadata_sha256:
        # Never "dist-info-metadata" in JSON: pip >= 22.3, < 23.1 fails hard on it.
        parts.append(f'"core-metadata": {{"sha256": {json_str(f.metadata_sha256)}}}')
    if f.size is not None:
        parts.append(f'"size": {int(f.size)}')
    upload_time = normalize_upload_time(f.upload_time)
    if upload_time:
        parts.append(f'"upload-time": {json_str(upload_time)}')
    if f.provenance:
        parts.append(f'"provenance": {json_str(file_href(f.provenance))}')  # PEP 740: a URL
    return ", ".join(parts) + "}"


def json_bool(value: bool) -> str:
    return "true" if value else "false"


def json_spliced(head: dict[str, Any], tail: str) -> bytes:
    """A JSON page whose last members come as text: ``head`` encoded, then ``tail``
    (``', "key": value...'``) before its closing brace; json.dumps's bytes for the whole."""
    return (_ENCODER.encode(head)[:-1] + tail + "}\n").encode("utf-8")


def _versions(files: list[FileEntry]) -> list[str]:
    found: dict[Version, str] = {}
    for f in files:
        version = f.version
        if version is not None and version not in found:
            found[version] = str(version)
    return [found[v] for v in sorted(found)]


def render_project_json(
    name: str,
    files: list[FileEntry],
    last_serial: int | None = None,
    meta: ProjectMeta = NO_META,
) -> bytes:
    """PEP 691 + PEP 700 (api-version 1.1) project page; absent values are left out.
    PEP 792 ``project-status`` and PEP 708 ``tracks`` / ``alternate-locations`` when set."""
    doc: dict[str, Any] = {
        "meta": _serial_meta({"api-version": api_version(meta, files)}, last_serial),
        "name": canonicalize_name(name),
    }
    if meta.status:
        status: dict[str, str] = {"status": meta.status}
        if meta.reason:
            status["reason"] = meta.reason
        doc["project-status"] = status
    if meta.tracks:
        doc["tracks"] = list(meta.tracks)
    if meta.alternate_locations:
        doc["alternate-locations"] = list(meta.alternate_locations)
    doc["versions"] = _versions(files)
    return json_spliced(doc, f', "files": [{", ".join(map(_json_file, _sorted(files)))}]')


def _root_names(projects: Iterable[str]) -> list[str]:
    return sorted({canonicalize_name(p) for p in projects})


# A root page's projects are iterated once when their names are canonical and in order
# (the tree state's, read row by row), each line written as it comes: at a whole index's
# scale a map of the names and a list of the lines would hold each name twice over.
# Otherwise the names are merged by their canonical form first, and iterated again.

_V = TypeVar("_V")


def _in_order(
    pairs: Iterable[tuple[str, _V]], line: Callable[[str, _V], str], sep: bytes
) -> bytearray | None:
    """Each (name, value)'s line, ``sep`` between them, when every name is canonical and
    follows the one before; None at the first that is not."""
    out = bytearray()
    last = ""
    for name, value in pairs:
        if name <= last or canonicalize_name(name) != name:
            return None
        if last:
            out += sep
        last = name
        out += line(name, value).encode("utf-8")
    return out


def _root_link(name: str, _: None) -> str:
    return f'    <a href="{_attr(quote(name))}/">{html.escape(name)}</a><br>'


def render_root_html(projects: Iterable[str]) -> bytes:
    """PEP 503 root page linking ``<normalized>/`` (a real directory with index.html)."""
    head = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        '    <meta name="pypi:repository-version" content="1.1">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    links = _in_order(((name, None) for name in projects), _root_link, b"\n")
    if links is None:
        links = _in_order(((name, None) for name in _root_names(projects)), _root_link, b"\n")
    assert links is not None  # canonical and sorted now
    if links:
        links += b"\n"
    return ("\n".join(head) + "\n").encode() + links + b"  </body>\n</html>\n"


def _root_entry(name: str, serial: int | None) -> str:
    if _PLAIN_NAME.fullmatch(name):  # nothing to escape: 50,000 lines, no json.dumps
        if serial is None:
            return f'{{"name": "{name}"}}'
        return f'{{"name": "{name}", "_last-serial": {int(serial)}}}'
    entry: dict[str, Any] = {"name": name}
    if serial is not None:
        entry["_last-serial"] = int(serial)
    return json.dumps(entry, ensure_ascii=False)


def render_root_json(
    projects: Iterable[tuple[str, int | None]], last_serial: int | None = None
) -> bytes:
    """PEP 691 root page; ``_last-serial`` per project (and in meta) when known, as PyPI does.

    One project object per line (still plain JSON), so ``server.py --verify`` can stream
    a root of 700,000 projects instead of loading it whole.
    """
    lines = _in_order(projects, _root_entry, b",\n")
    if lines is None:
        serials: dict[str, int | None] = {}
        for name, serial in projects:
            key = canonicalize_name(name)
            known = serials.get(key)
            serials[key] = serial if known is None else max(known, serial or known)
        lines = _in_order(sorted(serials.items()), _root_entry, b",\n")
    assert lines is not None  # canonical and sorted now
    meta = json.dumps(_serial_meta({"api-version": API_VERSION}, last_serial))
    if not lines:
        return f'{{"meta": {meta}, "projects": []}}\n'.encode()
    return f'{{"meta": {meta}, "projects": [\n'.encode() + lines + b"\n]}\n"


def _local_entry(norm: str, serial: int) -> str:
    key = f'"{norm}"' if _PLAIN_NAME.fullmatch(norm) else json.dumps(norm)
    return f"{key}: {int(serial)}"


def render_local_json(projects: Iterable[tuple[str, int | None]]) -> bytes:
    """``local.json`` as shadowmire publishes it, ``{name: serial}``, one project per line,
    so another mirror (ours or shadowmire) can take this tree as its upstream."""
    known = ((name, serial) for name, serial in projects if serial is not None)
    lines = _in_order(known, _local_entry, b",\n")
    if lines is None:  # names to canonicalize, in the order of the names as given
        lines = bytearray()
        for name, serial in sorted(projects):
            if serial is not None:
                if lines:
                    lines += b",\n"
                lines += _local_entry(canonicalize_name(name), serial).encode("utf-8")
    if not lines:
        return b"{}\n"
    return b"{\n" + lines + b"\n}\n"
