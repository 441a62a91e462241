"""Core metadata of distributions, read from the cheapest source first."""

from __future__ import annotations

import zipfile
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from .errors import MetadataError


def _dist_info_metadata_name(names: list[str], filename: str) -> str | None:
    """The ``*.dist-info/METADATA`` member matching the wheel's name-version, else the only one."""
    candidates = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    try:
        project, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        project, version = None, None
    if project is not None:
        for member in candidates:
            stem = member.split("/", 1)[0][: -len(".dist-info")]
            dist_name, _, dist_version = stem.rpartition("-")
            if (
                canonicalize_name(dist_name) == project
                and dist_version
                and _same_version(dist_version, str(version))
            ):
                return member
    if len(candidates) == 1:
        return candidates[0]
    return None


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def wheel_metadata_bytes(path: Path) -> bytes:
    """The exact bytes of a local wheel's METADATA (served byte-identical as PEP 658)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            member = _dist_info_metadata_name(zf.namelist(), path.name)
            if member is None:
                raise MetadataError(f"{path.name}: no single *.dist-info/METADATA in the wheel")
            return zf.read(member)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MetadataError(f"{path.name}: cannot read wheel: {exc}") from exc
