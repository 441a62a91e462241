"""What our pages say of a file when upstream leaves it out, read from the file itself.

An upstream that gives no ``requires-python`` (pypiserver, a plain PEP 503
index) would leave our pages without one, and pip or uv on an older Python
would then try releases it cannot install.  The file knows: a wheel's METADATA
(the ``.metadata`` we write beside it) and an sdist's PKG-INFO when that is
static (Metadata-Version 2.2 or later, Requires-Python not marked Dynamic).
Each answer is kept in the tree state by the file's sha256, so a file is opened
once, ever, whatever the upstream.  A wheel's ``.metadata`` also fills the
Warehouse JSON's ``info`` (tree/warehouse.py).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from morgan_like.dists.archive import (
    ARCHIVE_ERRORS,
    MAX_METADATA,
    clean_member_name,
    iter_tar,
    read_zip_member,
)
from morgan_like.dists.metadata import parse_metadata_fields, wheel_metadata_bytes
from morgan_like.errors import MetadataError
from morgan_like.tree.layout import METADATA_SUFFIX
from morgan_like.tree.state import TreeState

REQUIRES_PYTHON_FACT = "requires-python"


def read_metadata_file(path: Path) -> bytes | None:
    """A ``.metadata`` file we wrote (at most the metadata cap), or None."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_METADATA + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_METADATA else None


def requires_python(root: Path, relpath: str, sha256: str, state: TreeState) -> str | None:
    """The Requires-Python the file itself declares, or None (none, not static, unreadable).

    Remembered by ``sha256``; an OSError is not (the next run tries again).
    """
    known = state.fact(sha256, REQUIRES_PYTHON_FACT)
    if known is not None:
        return known or None
    path = root / relpath
    try:
        raw = _wheel_metadata(path) if path.name.endswith(".whl") else _static_pkg_info(path)
    except OSError:
        return None
    except MetadataError:
        raw = None
    value = _declared(raw, path.name) if raw is not None else None
    state.set_fact(sha256, REQUIRES_PYTHON_FACT, value or "")
    return value


def _declared(raw: bytes, origin: str) -> str | None:
    """Requires-Python as written, when it is a valid specifier (pip and uv skip others)."""
    fields, _problems = parse_metadata_fields(raw, origin)
    value = (fields.get("requires_python") or "").strip()
    if not value:
        return None
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        return None
    return value


def _wheel_metadata(path: Path) -> bytes | None:
    written = read_metadata_file(path.with_name(path.name + METADATA_SUFFIX))
    return written if written is not None else wheel_metadata_bytes(path)


def _static_pkg_info(path: Path) -> bytes | None:
    """The sdist's top-level PKG-INFO when its Requires-Python is static; the archive is
    read only up to that member."""
    raw = _top_pkg_info(path)
    if raw is None:
        return None
    fields, _problems = parse_metadata_fields(raw, path.name)
    try:
        static = Version(fields.get("metadata_version") or "0") >= Version("2.2")
    except InvalidVersion:
        static = False
    dynamic = {d.lower() for d in fields.get("dynamic", [])}
    return raw if static and "requires-python" not in dynamic else None


def _is_top_pkg_info(name: str | None) -> bool:
    parts = (name or "").split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO"


def _top_pkg_info(path: Path) -> bytes | None:
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if _is_top_pkg_info(clean_member_name(info.filename)):
                        return read_zip_member(zf, info, MAX_METADATA, path.name)
            return None
        with open(path, "rb") as fh:
            for member, read in iter_tar(fh, path.name):
                if _is_top_pkg_info(clean_member_name(member.name)):
                    return read() if member.size <= MAX_METADATA else None
    except ARCHIVE_ERRORS as exc:
        raise MetadataError(f"{path.name}: cannot read sdist: {exc}") from exc
    return None
