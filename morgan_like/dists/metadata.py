"""Core metadata of distributions: parsing only, no network.

``parse_core_metadata`` turns METADATA / PKG-INFO bytes into the record the
resolver needs; ``wheel_metadata_bytes`` reads a local wheel's METADATA
byte-identical (served as PEP 658).  Remote reads (PEP 658, zip ranges) live in
``index/remote.py``; static sdist metadata in ``dists/sdist.py``.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from packaging.metadata import RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from morgan_like.dists.archive import MAX_METADATA, read_zip_member
from morgan_like.errors import MetadataError

# What zipfile raises on broken, truncated or exotic (encrypted, unknown method) archives.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    KeyError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    zlib.error,
)


@dataclass
class DistMetadata:
    """What the resolver needs from one distribution."""

    name: str
    version: str
    requires_dist: list[Requirement] = field(default_factory=list)
    requires_python: str | None = None
    provides_extra: list[str] = field(default_factory=list)
    raw: bytes | None = None  # a wheel's METADATA bytes (PEP 658 serves them verbatim)
    problems: list[str] = field(default_factory=list)
    source: str = "download"  # pep658 | zip-range | download | pkg-info | pyproject


def parse_metadata_fields(raw: bytes, origin: str) -> tuple[RawMetadata, list[str]]:
    """Lenient email-header parse: what packaging could not parse is kept, with a problem."""
    parsed, unparsed = parse_email(raw)
    # RawMetadata is a TypedDict; keys chosen in a loop are plain str, so merge in a dict.
    fields: dict[str, Any] = dict(parsed)
    problems = []
    for key in ("name", "version", "requires_python"):
        values = unparsed.get(key)
        if values and key not in fields:
            fields[key] = values[0]
            if len(values) > 1:
                problems.append(f"{origin}: {key} given {len(values)} times, used the first")
    for key in ("requires_dist", "provides_extra", "dynamic"):
        if unparsed.get(key):  # e.g. undecodable bytes: each line is judged on its own
            fields[key] = [*fields.get(key, []), *unparsed[key]]
    return cast(RawMetadata, fields), problems


def error_line(exc: Exception) -> str:
    """packaging's parse errors span lines (a caret diagram); problems are one line each."""
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def requirements_from_lines(
    lines: list[str], origin: str, field_name: str = "Requires-Dist"
) -> tuple[list[Requirement], list[str]]:
    """Parse each line on its own, so one malformed line never loses the others."""
    reqs, problems = [], []
    for line in lines:
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            problems.append(f"{origin}: skipped malformed {field_name} {line!r}: {error_line(exc)}")
    return reqs, problems


def parse_core_metadata(raw: bytes, origin: str, *, source: str = "download") -> DistMetadata:
    """METADATA / PKG-INFO bytes → DistMetadata; ``origin`` names the file in problems."""
    fields, problems = parse_metadata_fields(raw, origin)
    name = fields.get("name")
    version = fields.get("version")
    if not name or not version:
        raise MetadataError(f"{origin}: core metadata has no Name or Version")
    reqs, req_problems = requirements_from_lines(list(fields.get("requires_dist", [])), origin)
    problems += req_problems
    requires_python = fields.get("requires_python") or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as exc:
            problems.append(
                f"{origin}: ignored malformed Requires-Python {requires_python!r}: {error_line(exc)}"
            )
            requires_python = None
    return DistMetadata(
        name=name,
        version=version,
        requires_dist=reqs,
        requires_python=requires_python,
        provides_extra=list(fields.get("provides_extra", [])),
        raw=raw,
        problems=problems,
        source=source,
    )


# ----------------------------------------------------------------- wheels


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def dist_info_metadata_member(names: list[str], filename: str) -> str | None:
    """The ``*.dist-info/METADATA`` member matching the wheel's name-version, else the only one."""
    candidates = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    only = candidates[0] if len(candidates) == 1 else None
    try:
        project, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return only
    for member in candidates:
        stem = member.split("/", 1)[0][: -len(".dist-info")]
        dist_name, _, dist_version = stem.rpartition("-")
        if canonicalize_name(dist_name) == project and _same_version(dist_version, str(version)):
            return member
    return only


def read_wheel_zip(zf: zipfile.ZipFile, filename: str, limit: int = MAX_METADATA) -> bytes:
    """The METADATA member's bytes; one that inflates past ``limit`` is refused, never read."""
    member = dist_info_metadata_member(zf.namelist(), filename)
    if member is None:
        raise MetadataError(f"{filename}: no single *.dist-info/METADATA in the wheel")
    return read_zip_member(zf, zf.getinfo(member), limit, filename)


def wheel_metadata_bytes(path: Path, limit: int = MAX_METADATA) -> bytes:
    """The exact bytes of a local wheel's METADATA (served byte-identical as PEP 658)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return read_wheel_zip(zf, path.name, limit)
    except ZIP_ERRORS as exc:
        raise MetadataError(f"{path.name}: cannot read wheel: {exc}") from exc
