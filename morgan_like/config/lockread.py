"""Reading a ``uv.lock`` or a PEP 751 ``pylock.toml`` into ``config.locks`` records.

Both are TOML (tomllib / tomli).  uv.lock: ``version = 1``, ``[[package]]`` with
``source``, ``sdist``, ``wheels`` (``hash = "sha256:..."``), ``dependencies``,
``[package.optional-dependencies]`` and ``[package.dev-dependencies]`` edges,
``[manifest] members``, ``requires-python``, ``resolution-markers`` and
``supported-markers``.  pylock.toml: ``lock-version = "1.x"``, ``[[packages]]``
with ``marker``, ``requires-python``, ``sdist``/``wheels`` (``hashes`` tables),
``directory``/``vcs``/``archive``, and the lock's ``environments``, ``extras``
and ``dependency-groups``.  Every problem is a ConfigError naming the file and
the package's ``[[package]]`` line; each file must be a wheel or sdist of its
package and version, and carry a sha256.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from morgan_like.config.locks import PYLOCK, UV, Lock, LockedEdge, LockedFile, LockedPackage
from morgan_like.config.textfile import decode_text, read_input_bytes
from morgan_like.dists.filenames import parse_filename
from morgan_like.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

_HEADER = {
    UV: re.compile(r"^[ \t]*\[\[[ \t]*package[ \t]*\]\]", re.M),
    PYLOCK: re.compile(r"^[ \t]*\[\[[ \t]*packages[ \t]*\]\]", re.M),
}
_AT_LINE = re.compile(r"at line (\d+)")


def load_lock(path: Path) -> Lock:
    """Read a ``uv.lock`` or ``pylock.toml``; what is wrong in it is a ConfigError naming
    the file and the line or package.  An OSError is the caller's to word."""
    data = read_input_bytes(path)
    text = decode_text(data, str(path))
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _AT_LINE.search(str(exc))
        raise ConfigError(
            file=str(path), problem=f"invalid TOML: {exc}", line=int(found[1]) if found else None
        ) from None
    kind = _kind(path, doc)
    headers = [text.count("\n", 0, m.start()) + 1 for m in _HEADER[kind].finditer(text)]
    reader = _Reader(path, kind, headers)
    digest = hashlib.sha256(data).hexdigest()
    if kind == UV:
        return reader.uv(doc, digest)
    return reader.pylock(doc, digest)


def _kind(path: Path, doc: dict[str, Any]) -> str:
    if "lock-version" in doc or re.fullmatch(r"pylock\.([^.]+\.)?toml", path.name):
        return PYLOCK
    if "version" in doc and "package" in doc or path.name == UV:
        return UV
    raise ConfigError(
        file=str(path),
        problem="neither a uv.lock (version, [[package]]) nor a PEP 751 pylock.toml (lock-version, [[packages]])",
        hint="locks = path/uv.lock or path/pylock.toml (uv lock, pip lock or uv export --format pylock.toml write them)",
    )


class _Reader:
    """One lock's tables -> records, each problem a ConfigError with the package's line."""

    def __init__(self, path: Path, kind: str, headers: list[int]) -> None:
        self.path, self.kind, self.headers = path, kind, headers
        self.count = 0

    def line(self, index: int | None) -> int | None:
        """The line of the ``index``-th package's ``[[package]]`` header (None when the
        file writes its packages another way, e.g. as an inline array)."""
        if index is None or len(self.headers) != self.count:
            return None
        return self.headers[index]

    def error(self, problem: str, index: int | None = None, hint: str | None = None) -> ConfigError:
        return ConfigError(file=str(self.path), problem=problem, line=self.line(index), hint=hint)

    # -- uv.lock ----------------------------------------------------------------
    def uv(self, doc: dict[str, Any], digest: str) -> Lock:
        if doc.get("version") != 1:
            raise self.error(
                f"uv.lock version {doc.get('version')!r} is not one this reads (version 1)",
                hint="lock again with a uv that writes version = 1, or upgrade morgan-like",
            )
        tables = self._tables(doc, "package")
        packages = tuple(self._uv_package(t, i) for i, t in enumerate(tables))
        names = {p.name for p in packages}
        for i, p in enumerate(packages):
            for edge in (*p.dependencies, *(e for _, g in (*p.optional, *p.groups) for e in g)):
                if edge.name not in names:
                    raise self.error(
                        f"package {p.label}: depends on {edge.name}, which the lock does not hold",
                        i,
                    )
        members = (
            doc.get("manifest", {}).get("members")
            if isinstance(doc.get("manifest"), dict)
            else None
        )
        if isinstance(members, list) and members:
            wanted = {canonicalize_name(str(m)) for m in members}
            roots = [i for i, p in enumerate(packages) if p.name in wanted and p.local]
        else:
            roots = [
                i
                for i, t in enumerate(tables)
                if _source(t)[0] in ("editable", "virtual") and _source(t)[1] == "."
            ]
        if not roots:  # no project at "." (a lock of a tool): whatever nothing depends on
            reached = {e.name for p in packages for e in p.dependencies}
            roots = [i for i, p in enumerate(packages) if p.name not in reached]
        markers = " ".join(
            str(e.marker)
            for p in packages
            for _, g in (("", p.dependencies), *p.optional, *p.groups)
            for e in g
            if e.marker
        )
        return Lock(
            self.path,
            UV,
            digest,
            packages,
            requires_python=self._specifier(doc.get("requires-python"), "requires-python"),
            environments=self._markers(doc.get("supported-markers"), "supported-markers"),
            forks=self._markers(doc.get("resolution-markers"), "resolution-markers"),
            roots=tuple(roots),
            extras=frozenset(re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", markers)),
        )

    def _uv_package(self, table: dict[str, Any], i: int) -> LockedPackage:
        name, version = self._name_version(table, i, required=False)
        label = f"{name} {version}" if version else name
        kind, where = _source(table)
        local = kind in ("editable", "virtual", "directory")
        if kind not in ("registry", "editable", "virtual", "directory"):
            raise self.error(
                f"package {label} is locked from {kind or 'no source'} {where}: a bundle serves "
                "releases of its index only",
                i,
                hint="lock it from the index (a version, not a git/URL/path source)",
            )
        files: list[LockedFile] = []
        if not local:
            sdist = table.get("sdist")
            entries = ([sdist] if sdist is not None else []) + list(table.get("wheels") or [])
            files = [self._uv_file(e, i, label) for e in entries]
        dependencies = self._edges(table.get("dependencies"), i, label)
        optional = self._edge_groups(table.get("optional-dependencies"), i, label)
        groups = self._edge_groups(table.get("dev-dependencies"), i, label)
        return self._checked(
            LockedPackage(
                canonicalize_name(name),
                version,
                tuple(files),
                local=local,
                dependencies=dependencies,
                optional=optional,
                groups=groups,
            ),
            i,
        )

    def _uv_file(self, entry: Any, i: int, label: str) -> LockedFile:
        if not isinstance(entry, dict):
            raise self.error(f"package {label}: a file entry must be a table, got {entry!r}", i)
        algorithm, _, value = str(entry.get("hash", "")).partition(":")
        filename = entry.get("filename") or _basename(entry.get("url") or entry.get("path"))
        if algorithm != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise self.error(f"package {label}: {filename or repr(entry)} has no sha256 hash", i)
        return LockedFile(filename, value.lower(), _size(entry.get("size")))

    def _edges(self, value: Any, i: int, label: str) -> tuple[LockedEdge, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in value
        ):
            raise self.error(f"package {label}: dependencies must be tables with a name", i)
        return tuple(
            LockedEdge(
                canonicalize_name(e["name"]),
                self._version(e.get("version"), i, label) if "version" in e else None,
                self._marker(e.get("marker"), i, label),
                frozenset(canonicalize_name(x) for x in e.get("extra") or ()),
            )
            for e in value
        )

    def _edge_groups(
        self, value: Any, i: int, label: str
    ) -> tuple[tuple[str, tuple[LockedEdge, ...]], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.error(f"package {label}: extras and groups must be a table", i)
        return tuple((canonicalize_name(k), self._edges(v, i, label)) for k, v in value.items())

    # -- pylock.toml ----------------------------------------------------------------
    def pylock(self, doc: dict[str, Any], digest: str) -> Lock:
        version = str(doc.get("lock-version", ""))
        if not re.fullmatch(r"1(\.\d+)?", version):
            raise self.error(
                f"lock-version {doc.get('lock-version')!r} is not one this reads (1.x)",
                hint='PEP 751 lock files have lock-version = "1.0"',
            )
        tables = self._tables(doc, "packages")
        packages = tuple(self._pylock_package(t, i) for i, t in enumerate(tables))
        return Lock(
            self.path,
            PYLOCK,
            digest,
            packages,
            requires_python=self._specifier(doc.get("requires-python"), "requires-python"),
            environments=self._markers(doc.get("environments"), "environments"),
            extras=frozenset(canonicalize_name(str(x)) for x in doc.get("extras") or ()),
            groups=frozenset(canonicalize_name(str(g)) for g in doc.get("dependency-groups") or ()),
        )

    def _pylock_package(self, table: dict[str, Any], i: int) -> LockedPackage:
        name, version = self._name_version(table, i, required=False)
        label = f"{name} {version}" if version else name
        for key in ("vcs", "archive"):
            if key in table:
                raise self.error(
                    f"package {label} is locked from a {key}: a bundle serves releases of its index only",
                    i,
                    hint="lock it from the index (a version, not a VCS or archive URL)",
                )
        local = "directory" in table
        entries = ([table["sdist"]] if "sdist" in table else []) + list(table.get("wheels") or [])
        files = [] if local else [self._pylock_file(e, i, label) for e in entries]
        return self._checked(
            LockedPackage(
                canonicalize_name(name),
                version,
                tuple(files),
                local=local,
                marker=self._marker(table.get("marker"), i, label),
                requires_python=self._specifier(table.get("requires-python"), "requires-python", i),
            ),
            i,
        )

    def _pylock_file(self, entry: Any, i: int, label: str) -> LockedFile:
        if not isinstance(entry, dict):
            raise self.error(f"package {label}: a file entry must be a table, got {entry!r}", i)
        filename = entry.get("name") or _basename(entry.get("url") or entry.get("path"))
        hashes = entry.get("hashes")
        value = hashes.get("sha256") if isinstance(hashes, dict) else None
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise self.error(f"package {label}: {filename or repr(entry)} has no sha256 hash", i)
        return LockedFile(filename, value.lower(), _size(entry.get("size")))

    # -- shared ---------------------------------------------------------------------
    def _tables(self, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
        tables = doc.get(key, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self.error(f"[[{key}]] must be an array of tables")
        self.count = len(tables)
        return tables

    def _name_version(
        self, table: dict[str, Any], i: int, *, required: bool
    ) -> tuple[str, Version | None]:
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise self.error("a package without a name", i)
        raw = table.get("version")
        if raw is None:
            if required:
                raise self.error(f"package {name} has no version", i)
            return name, None
        return name, self._version(raw, i, name)

    def _version(self, raw: Any, i: int, label: str) -> Version:
        try:
            return Version(str(raw))
        except InvalidVersion:
            raise self.error(f"package {label}: invalid version {raw!r}", i) from None

    def _checked(self, package: LockedPackage, i: int) -> LockedPackage:
        """Every file is a wheel or sdist of this package and version; an index package has some."""
        package = replace(package, line=self.line(i))
        if not package.local and not package.files:
            raise self.error(f"package {package.label} has no files (no sdist, no wheels)", i)
        versions = set()
        for f in package.files:
            project, version, _ = parse_filename(f.filename)
            if project != package.name or version is None:
                raise self.error(
                    f"package {package.label}: {f.filename!r} is not a wheel or sdist of {package.name}",
                    i,
                )
            versions.add(version)
        if package.version is None and len(versions) == 1:
            return replace(package, version=versions.pop())
        if package.version is not None and versions - {package.version}:
            raise self.error(
                f"package {package.label}: its files are of version {', '.join(sorted(map(str, versions)))}",
                i,
            )
        if package.version is None and not package.local:
            raise self.error(
                f"package {package.name}: no version, and its files disagree on one", i
            )
        return package

    def _marker(self, raw: Any, i: int, label: str) -> Marker | None:
        if raw is None:
            return None
        try:
            return Marker(str(raw))
        except InvalidMarker as exc:
            raise self.error(f"package {label}: invalid marker {raw!r}: {exc}", i) from None

    def _markers(self, raw: Any, key: str) -> tuple[Marker, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.error(f"{key} must be a list of markers, got {raw!r}")
        try:
            return tuple(Marker(str(m)) for m in raw)
        except InvalidMarker as exc:
            raise self.error(f"{key}: invalid marker: {exc}") from None

    def _specifier(self, raw: Any, key: str, i: int | None = None) -> SpecifierSet | None:
        if raw is None:
            return None
        try:
            return SpecifierSet(str(raw))
        except InvalidSpecifier:
            raise self.error(f"{key} {raw!r} is not a version specifier", i) from None


def _source(table: dict[str, Any]) -> tuple[str, str]:
    """uv's ``source = { registry = URL }`` -> ("registry", URL); ("", "") when absent."""
    source = table.get("source")
    if isinstance(source, dict) and source:
        kind, where = next(iter(source.items()))
        return str(kind), str(where)
    return "", ""


def _basename(location: Any) -> str:
    if not isinstance(location, str):
        return ""
    return unquote(PurePosixPath(urlsplit(location).path).name)


def _size(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and raw >= 0 else None
