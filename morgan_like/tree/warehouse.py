"""A project's Warehouse-style JSON (``json/<project>``), served as ``/pypi/<project>/json``.

What mirrors that read PyPI's JSON API (bandersnatch above all) need from a
master: ``last_serial``, ``releases`` (version -> files) and, per file, ``url``
(a path under ``/packages``), ``digests.sha256``, ``size``,
``upload_time_iso_8601``, ``requires_python``, ``yanked``, ``yanked_reason`` and
the PEP 658 metadata hash.  ``info`` carries what the pages know (name, latest
version, its Requires-Python) and, when that release has a wheel whose
``.metadata`` we keep, what its metadata says (summary, requires_dist, license,
classifiers, project_urls...), as PyPI fills it; an sdist-only release leaves
those keys out rather than guess.  ``releases`` lists every version (a
per-version document is cut from it).  Deterministic: the same files and
metadata render to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name
from packaging.version import Version

from morgan_like.dists.metadata import parse_metadata_fields
from morgan_like.tree.pages import (
    FileEntry,
    json_bool,
    json_spliced,
    json_str,
    normalize_upload_time,
)

_LOCAL_PREFIX = "../../"  # a page's relative link to our own packages/ folder


def _url(entry: FileEntry) -> str:
    """A local file as a root-absolute path (bandersnatch requires ``/packages/...``);
    an index-only page's upstream URL as it is."""
    if "://" in entry.url:
        return entry.url
    path = entry.url[len(_LOCAL_PREFIX) :] if entry.url.startswith(_LOCAL_PREFIX) else entry.url
    return "/" + quote(path.lstrip("/"), safe="/")


def _python_version(entry: FileEntry) -> str:
    if entry.filename.endswith(".whl"):
        parts = entry.filename[:-4].split("-")
        return parts[-3] if len(parts) >= 5 else "py3"
    return "source"


def _file(entry: FileEntry) -> str:
    """One file of a release as JSON text, json.dumps's bytes for its object (made from
    strings, as tree/pages.py makes a PEP 691 page's files)."""
    uploaded = normalize_upload_time(entry.upload_time)
    yanked = entry.yanked is not False and entry.yanked is not None
    reason = entry.yanked if isinstance(entry.yanked, str) and entry.yanked else None
    metadata = (
        f'{{"sha256": {json_str(entry.metadata_sha256)}}}' if entry.metadata_sha256 else "false"
    )
    kind = '"bdist_wheel"' if entry.filename.endswith(".whl") else '"sdist"'
    text = (
        f'{{"filename": {json_str(entry.filename)}, "url": {json_str(_url(entry))}, '
        f'"digests": {{"sha256": {json_str(entry.sha256)}}}, '
        f'"packagetype": {kind}, '
        f'"python_version": {json_str(_python_version(entry))}, '
        f'"requires_python": {_json_or_null(entry.requires_python)}, '
        f'"yanked": {json_bool(yanked)}, "yanked_reason": {_json_or_null(reason)}, '
        f'"core-metadata": {metadata}, "data-dist-info-metadata": {metadata}, '
        '"has_sig": false'
    )
    if entry.size is not None:
        text += f', "size": {int(entry.size)}'
    if uploaded:
        text += f', "upload_time": {json_str(uploaded[:19])}'
        text += f', "upload_time_iso_8601": {json_str(uploaded)}'
    return text + "}"


def _json_or_null(value: str | None) -> str:
    return "null" if value is None else json_str(value)


def metadata_info(raw: bytes, origin: str) -> dict[str, Any]:
    """PyPI's ``info`` fields from a release's core metadata (null / [] where it is silent)."""
    fields, _problems = parse_metadata_fields(raw, origin)
    return {
        "summary": fields.get("summary"),
        "requires_dist": list(fields.get("requires_dist") or []) or None,
        "requires_python": fields.get("requires_python") or None,
        "license": fields.get("license"),
        "license_expression": fields.get("license_expression"),
        "classifiers": list(fields.get("classifiers") or []),
        "project_urls": dict(fields.get("project_urls") or {}) or None,
        "provides_extra": list(fields.get("provides_extra") or []) or None,
    }


def render_warehouse_json(
    name: str,
    entries: list[FileEntry],
    last_serial: int | None,
    read_metadata: Callable[[FileEntry], bytes | None] | None = None,
) -> bytes:
    """``read_metadata``: a wheel's ``.metadata`` bytes (None when we keep none)."""
    norm = canonicalize_name(name)
    releases: dict[Version, list[str]] = {}
    texts: dict[Version, str] = {}
    yanked_only: dict[Version, bool] = {}
    members: dict[Version, list[FileEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.filename):
        version = entry.version
        if version is None:
            continue
        if version not in texts:
            texts[version], releases[version], members[version] = str(version), [], []
        releases[version].append(_file(entry))
        members[version].append(entry)
        yanked = entry.yanked is not False and entry.yanked is not None
        yanked_only[version] = yanked_only.get(version, True) and yanked
    ordered = sorted(releases)
    # PyPI's info.version: the latest release, preferring final and unyanked ones.
    final = [v for v in ordered if not v.is_prerelease and not yanked_only[v]]
    candidates = final or [v for v in ordered if not yanked_only[v]] or ordered
    latest: Version | None = candidates[-1] if candidates else None
    latest_entries = (
        members[latest] if latest is not None else [e for e in entries if e.version is None]
    )
    info: dict[str, Any] = {
        "name": norm,
        "version": texts[latest] if latest is not None else None,
        "requires_python": next(
            (
                e.requires_python
                for e in (latest_entries if latest is not None else [])
                if e.requires_python
            ),
            None,
        ),
        "yanked": bool(latest is not None and yanked_only[latest]),
    }
    info.update(_release_info(norm, latest_entries, read_metadata))
    # last_serial first: server.py reads it from the head for X-PyPI-Last-Serial.
    head = {"last_serial": int(last_serial) if last_serial is not None else 0, "info": info}
    listed = ", ".join(f"{json_str(texts[v])}: [{', '.join(releases[v])}]" for v in ordered)
    urls = ", ".join(releases[latest]) if latest is not None else ""
    return json_spliced(
        head, f', "releases": {{{listed}}}, "urls": [{urls}], "vulnerabilities": []'
    )


def _release_info(
    norm: str, files: list[FileEntry], read: Callable[[FileEntry], bytes | None] | None
) -> dict[str, Any]:
    """What the release's first wheel with kept metadata says (by filename: deterministic)."""
    if read is None:
        return {}
    for entry in sorted(files, key=lambda e: e.filename):
        if not entry.filename.endswith(".whl"):
            continue
        raw = read(entry)
        if raw is not None:
            found = metadata_info(raw, f"{norm}: {entry.filename}.metadata")
            if found["requires_python"] is None:
                found.pop("requires_python")  # the files' own value stays
            return found
    return {}
