"""Static dependencies of a local sdist, read in memory (nothing is extracted to disk).

An sdist's dependencies are only trustworthy without a build when some file
declares them statically; we try, in order: PKG-INFO (Metadata 2.2+ without
``Dynamic: Requires-Dist``), the static ``[project]`` table of pyproject.toml,
and PKG-INFO written by a backend whose metadata is declarative by design
(poetry-core, flit-core).  Anything else raises MetadataError: guessing would
silently bundle the wrong things.  setuptools' ``*.egg-info/requires.txt`` is
such a guess: it is what ``setup.py`` computed on the machine that made the
sdist (a dependency added for its platform or Python is baked in, another's
left out), so pip and uv never read it, and neither do we: the backend's
metadata hook answers instead (resolve/buildenv.py).
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from morgan_like.dists.archive import (
    ARCHIVE_ERRORS,
    MAX_METADATA,
    clean_member_name,
    read_zip_member,
    tar_members,
)
from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import (
    DistMetadata,
    error_line,
    parse_core_metadata,
    parse_metadata_fields,
)
from morgan_like.errors import MetadataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")  # pip's default without [build-system]
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
STATIC_BACKENDS = ("poetry.core.masonry.api", "poetry.masonry.api", "flit_core.buildapi")
_WANTED = ("PKG-INFO", "pyproject.toml")


@dataclass
class SdistMembers:
    """The few members we need, keyed by path relative to the archive's top directory.

    Read once (``read_archive``), then asked both questions: ``static_metadata`` and
    ``build_requires`` (dists/sdistread.py caches the answers for a run)."""

    filename: str
    files: dict[str, bytes] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)

    def toml(self) -> dict[str, Any] | None:
        data = self.files.get("pyproject.toml")
        if data is None:
            return None
        try:
            return tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MetadataError(
                f"{self.filename}: pyproject.toml is not valid TOML: {exc}"
            ) from exc


def _wanted(path: str) -> bool:
    parts = path.split("/")
    return parts[-1] in _WANTED and len(parts) <= 4


def read_archive(path: Path) -> SdistMembers:
    """Read the member list and the few wanted files of a .tar.* or .zip sdist.

    One pass, every read bounded (dists/archive.py): a wanted file over 16 MiB is
    not read, and a tar that inflates past 1 GiB is refused as soon as its headers
    say so.
    """
    raw: dict[str, bytes] = {}
    names: list[str] = []
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    name = clean_member_name(info.filename)
                    if name is None or info.is_dir():
                        continue
                    names.append(name)
                    if _wanted(name) and info.file_size <= MAX_METADATA:
                        raw[name] = read_zip_member(zf, info, MAX_METADATA, path.name)
        else:
            with open(path, "rb") as f:
                for member, read in tar_members(f, path.name):  # links and devices never come
                    name = clean_member_name(member.name)
                    if name is None:
                        continue
                    names.append(name)
                    if _wanted(name) and member.size <= MAX_METADATA:
                        raw[name] = read()
    except ARCHIVE_ERRORS as exc:
        raise MetadataError(f"{path.name}: cannot read sdist: {exc}") from exc
    # Strip the single top-level directory ("name-1.0/") that sdists are built around.
    tops = {n.split("/", 1)[0] for n in names}
    prefix = tops.pop() + "/" if len(tops) == 1 and all("/" in n for n in names) else ""
    sdist = SdistMembers(path.name)
    sdist.names = {n[len(prefix) :] for n in names}
    sdist.files = {n[len(prefix) :]: data for n, data in raw.items()}
    return sdist


def _with_marker(req: Requirement, *clauses: str | None) -> Requirement:
    """``req`` with its own marker and ``clauses`` joined by ``and``."""
    parts = [f"({m})" for m in (str(req.marker) if req.marker else None, *clauses) if m]
    if parts:
        req.marker = Marker(" and ".join(parts)) if len(parts) > 1 else Marker(parts[0][1:-1])
    return req


def _extra_clause(extra: str) -> str:
    return f'extra == "{extra}"'


def _version_at_least(value: str | None, minimum: str) -> bool:
    try:
        return value is not None and Version(value) >= Version(minimum)
    except InvalidVersion:
        return False


def _name_version(filename: str) -> tuple[str, str]:
    probe = RemoteFile(filename=filename, url="")
    return (probe.project or filename), (str(probe.version) if probe.version else "")


def static_metadata(sdist: SdistMembers) -> DistMetadata:
    """The static dependencies of a read sdist; MetadataError if none are static."""
    filename = sdist.filename
    reasons: list[str] = []
    pkg_info = sdist.files.get("PKG-INFO")
    fields: dict[str, Any] = {}
    if pkg_info is not None:
        fields = dict(parse_metadata_fields(pkg_info, filename)[0])
    version = fields.get("version") or _name_version(filename)[1]
    dynamic = {d.lower() for d in fields.get("dynamic", [])}

    # a. PKG-INFO, when the core metadata spec says its Requires-Dist is static.
    if pkg_info is None:
        reasons.append("no PKG-INFO")
    elif not _version_at_least(fields.get("metadata_version"), "2.2"):
        reasons.append(f"PKG-INFO is Metadata-Version {fields.get('metadata_version')} (< 2.2)")
    elif "requires-dist" in dynamic:
        reasons.append("PKG-INFO marks Requires-Dist as Dynamic")
    else:
        return _sdist_result(parse_core_metadata(pkg_info, filename, source="pkg-info"))

    # b. the static [project] table of pyproject.toml.
    try:
        doc = sdist.toml()
    except MetadataError:
        doc = None
        reasons.append("pyproject.toml is not valid TOML")
    project = (doc or {}).get("project")
    if doc is None:
        if "pyproject.toml" not in sdist.files:
            reasons.append("no pyproject.toml")
    elif not isinstance(project, dict):
        reasons.append("pyproject.toml has no [project] table")
    elif "dependencies" in project.get("dynamic", []):
        reasons.append("pyproject.toml lists dependencies as dynamic")
    else:
        return _from_project(filename, project, fields, version)

    # c. PKG-INFO from a backend that only ever writes declared metadata.
    backend = ((doc or {}).get("build-system") or {}).get("build-backend")
    if pkg_info is not None and backend in STATIC_BACKENDS and "requires-dist" not in dynamic:
        return _sdist_result(parse_core_metadata(pkg_info, filename, source="pkg-info"))

    raise MetadataError(
        f"{filename}: cannot read its dependencies statically: {', '.join(reasons)}"
    )


def _sdist_result(meta: DistMetadata) -> DistMetadata:
    meta.raw = None  # PKG-INFO is never served as PEP 658 metadata
    return meta


def _from_project(
    filename: str, project: dict[str, Any], fields: dict[str, Any], version: str
) -> DistMetadata:
    """DistMetadata from a PEP 621 [project] table whose dependencies are static."""
    origin = f"{filename}: pyproject.toml"
    dynamic = set(project.get("dynamic", []))
    problems: list[str] = []
    reqs: list[Requirement] = []

    def add(lines: Any, extra: str | None) -> None:
        if not isinstance(lines, list):
            problems.append(
                f"{origin}: ignored non-list dependencies{f' of [{extra}]' if extra else ''}"
            )
            return
        for line in lines:
            try:
                req = Requirement(str(line))
            except InvalidRequirement as exc:
                problems.append(
                    f"{origin}: skipped malformed requirement {line!r}: {error_line(exc)}"
                )
                continue
            reqs.append(_with_marker(req, _extra_clause(extra) if extra else None))

    add(project.get("dependencies", []), None)
    optional = project.get("optional-dependencies", {})
    extras: list[str] = []
    if "optional-dependencies" in dynamic:
        problems.append(f"{origin}: optional-dependencies are dynamic; extras' needs are unknown")
        extras = list(fields.get("provides_extra", []))
    elif isinstance(optional, dict):
        for extra, lines in optional.items():
            extras.append(extra)
            add(lines, extra)
    requires_python = project.get("requires-python") if "requires-python" not in dynamic else None
    requires_python = requires_python or fields.get("requires_python") or None
    name = str(project.get("name") or fields.get("name") or _name_version(filename)[0])
    if not version and isinstance(project.get("version"), str):
        version = project["version"]
    return DistMetadata(name, version, reqs, requires_python, extras, None, problems, "pyproject")


@dataclass(frozen=True)
class BuildSystem:
    """An sdist's ``[build-system]``: what to install, which backend, where it lives."""

    requires: tuple[Requirement, ...]
    backend: str = LEGACY_BACKEND
    backend_path: tuple[str, ...] = ()


def parse_build_system(doc: dict[str, Any] | None, origin: str) -> BuildSystem:
    """``[build-system]`` of a pyproject document; pip's legacy default without one.

    MetadataError where pip would refuse to build: no ``requires`` list, a malformed
    requirement, a ``backend-path`` that is not a list of strings.
    """
    table = (doc or {}).get("build-system")
    if not isinstance(table, dict):
        return BuildSystem(tuple(Requirement(r) for r in LEGACY_BUILD_REQUIRES))
    requires = table.get("requires")
    if not isinstance(requires, list):
        # pip refuses to build such an sdist; say so now rather than offline.
        raise MetadataError(f"{origin}: pyproject.toml [build-system] has no 'requires' list")
    reqs = []
    for line in requires:
        try:
            reqs.append(Requirement(str(line)))
        except InvalidRequirement as exc:
            raise MetadataError(
                f"{origin}: pyproject.toml [build-system] requires {line!r} is malformed: "
                f"{error_line(exc)}"
            ) from exc
    backend = table.get("build-backend")
    paths = table.get("backend-path") or []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise MetadataError(f"{origin}: [build-system] backend-path must be a list of strings")
    return BuildSystem(
        tuple(reqs), backend if isinstance(backend, str) else LEGACY_BACKEND, tuple(paths)
    )


def build_requires(sdist: SdistMembers) -> list[Requirement]:
    """A read sdist's build requirements (MetadataError when pip would refuse to build it)."""
    return list(parse_build_system(sdist.toml(), Path(sdist.filename).name).requires)
