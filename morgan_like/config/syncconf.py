"""The full mirror's config: a ``[sync]`` section, optional ``[env.NAME]`` sections, and
``[mirror]`` for the upstream and its limits, in morgan.ini's format.

Every filter the command line takes is also a key here, so a nightly job's
behaviour lives in one reviewed file.  Problems are ConfigErrors naming file,
section, key and line, raised before any request.

A curated slice adds an allowlist (``projects``, ``requirements``: config.allowlist),
``keep-latest``, ``with-dependencies`` and bandersnatch's file filters
(``exclude-platform``, ``package-types``, ``max-file-size``, ``exclude-release``:
one dists.selection.FileSelection, whose docstring says where they differ from
bandersnatch's).  Combinations that cannot mean what they say are refused here:
a project both allowlisted and excluded, dependencies without a target env.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName

from morgan_like.config.initext import _locate, _section, read_config_text, read_ini
from morgan_like.config.options import parse_bool
from morgan_like.config.storageconf import StorageSettings, read_storage
from morgan_like.dists.selection import (
    PACKAGE_TYPE_ALIASES,
    PACKAGE_TYPES,
    PLATFORM_ALIASES,
    PLATFORMS,
    SIZE_HINT,
    FileSelection,
    parse_size,
)
from morgan_like.errors import ConfigError
from morgan_like.targets.environments import Environment

if TYPE_CHECKING:
    from morgan_like.config.allowlist import AllowEntry, Allowlist
    from morgan_like.config.reqfiles import RequirementLine

__all__ = ["SyncConfig", "compile_patterns", "load_sync_config"]

SERIAL_SOURCES = ("auto", "simple", "xmlrpc", "local-json", "names")
# [sync] key -> kind.  Multi-line values (one regex per line) for the filters.
SYNC_KEYS = {
    "exclude": "regexes",
    "prerelease-exclude": "regexes",
    "index-only": "bool",
    "max-deletions": "count",
    "serial-source": "source",
    "workers": "positive",
    "diff-file": "path",
    "diff-append-epoch": "bool",
    "cross-host-redirects": "bool",  # as [mirror]'s; this one wins
    # A curated slice (config.allowlist, dists.selection).
    "projects": "allowlist",
    "requirements": "allowlist",
    "keep-latest": "positive",
    "with-dependencies": "bool",
    "exclude-platform": "platforms",
    "package-types": "types",
    "max-file-size": "size",
    "exclude-release": "release-regexes",
}
NO_ENV = (
    "add an [env.NAME] section (`morgan-like generate_env` prints this machine's) "
    "or set with-dependencies = false"
)
# Sections a sync config may have; a bundle's ([requirements]...) are ignored, with a warning.
_BUNDLE_SECTIONS = ("requirements", "requirements_from", "dependencies")


@dataclass(frozen=True)
class SyncConfig:
    """What a sync config says; None / empty where it is silent (the CLI decides)."""

    path: Path | None = None
    environments: tuple[Environment, ...] = ()
    index_url: str | None = None
    mirror_options: dict[str, str] = field(default_factory=dict)
    excludes: tuple[str, ...] = ()
    prerelease_excludes: tuple[str, ...] = ()
    index_only: bool | None = None
    max_deletions: int | None = None
    serial_source: str | None = None
    workers: int | None = None
    diff_file: str | None = None
    diff_append_epoch: bool | None = None
    cross_host_redirects: bool | None = None
    warnings: tuple[str, ...] = ()
    allowlist: tuple[AllowEntry, ...] = ()
    keep_latest: int | None = None
    with_dependencies: bool = False  # the effective value: true by default with an allowlist
    selection: FileSelection = FileSelection()
    requirement_lines: tuple[RequirementLine, ...] = ()  # the allowlist's, with --hash pins
    constraints: tuple[RequirementLine, ...] = ()  # the requirements files' -c lines
    storage: StorageSettings | None = None  # [storage]: where an s3:// tree's bucket is

    def constraints_for(self, env: Environment) -> dict[NormalizedName, SpecifierSet]:
        """Project -> the versions the constraints allow in ``env``, as a bundle's Config."""
        from morgan_like.config.ini import constraints_in

        return constraints_in(self.constraints, env)

    def hashes_for(self, env: Environment) -> dict[NormalizedName, frozenset[str]]:
        """Project -> the sha256 digests its files may have in ``env``, as a bundle's Config."""
        from morgan_like.config.ini import hashes_in

        return hashes_in((*self.requirement_lines, *self.constraints), env)


def compile_patterns(patterns: tuple[str, ...], where: str) -> tuple[re.Pattern[str], ...]:
    """Project-name regexes (matched at the start of the normalized name, any case, as
    bandersnatch's filters do); ValueError naming the bad one."""
    compiled = []
    for text in patterns:
        try:
            compiled.append(re.compile(text, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"{where}: invalid regular expression {text!r}: {exc}") from None
    return tuple(compiled)


def load_sync_config(path: Path) -> SyncConfig:
    file = str(path)
    text = read_config_text(
        path, "a sync needs no config; give -c only for a [sync] section or [env.NAME] filters"
    )
    try:
        return _read(path, text)
    except ConfigError as exc:
        if exc.file == file and exc.line is None and exc.section is not None:
            exc.line = _locate(text, exc.section, exc.key)
        raise


def _read(path: Path, text: str) -> SyncConfig:
    # The bundle's config reader (config.ini: requirements, locks, pyproject sources)
    # is imported only when a sync has a config to read: a sync without one starts
    # without it.
    from morgan_like.config.envsections import environment_from_section
    from morgan_like.config.ini import _mirror_options

    file = str(path)
    parser = read_ini(text, file)
    envs, warnings = [], []
    for section in parser.sections():
        if section.startswith("env."):
            keys = _section(parser, section, file)
            _refuse_bundle_keys(keys, file, section)
            envs.append(environment_from_section(section[4:], keys, file=file))
        elif section in _BUNDLE_SECTIONS:
            warnings.append(f"{file}: [{section}] is for `mirror` (bundles); sync ignores it")
        elif section not in ("sync", "mirror", "storage"):
            close = difflib.get_close_matches(section, ["sync", "mirror", "storage"], n=1)
            raise ConfigError(
                file=file,
                problem=f"unknown section [{section}]",
                section=section,
                hint=(f"did you mean [{close[0]}]? " if close else "")
                + "a sync config has [sync], [mirror], [storage] and [env.NAME] sections",
            )
    index_url, mirror_options = _mirror_options(parser, file)
    _refuse_bundle_keys(mirror_options, file, "mirror")
    values: dict[str, object] = {}
    written: dict[str, tuple[str, str]] = {}  # key -> (as written, raw value)
    if parser.has_section("sync"):
        for raw_key, value in _section(parser, "sync", file).items():
            key = raw_key.replace("_", "-")
            values[key] = _value(key, raw_key, value, file)
            written[key] = (raw_key, value)
    allow = _allowlist(path, text, written)
    _refuse_excluded(allow, written, text, path)
    with_dependencies = _with_dependencies(allow, values, written, bool(envs), file)
    return SyncConfig(
        path=path,
        environments=tuple(envs),
        index_url=index_url,
        mirror_options=mirror_options,
        excludes=values.get("exclude", ()),  # type: ignore[arg-type]
        prerelease_excludes=values.get("prerelease-exclude", ()),  # type: ignore[arg-type]
        index_only=values.get("index-only"),  # type: ignore[arg-type]
        max_deletions=values.get("max-deletions"),  # type: ignore[arg-type]
        serial_source=values.get("serial-source"),  # type: ignore[arg-type]
        workers=values.get("workers"),  # type: ignore[arg-type]
        diff_file=values.get("diff-file"),  # type: ignore[arg-type]
        diff_append_epoch=values.get("diff-append-epoch"),  # type: ignore[arg-type]
        cross_host_redirects=values.get("cross-host-redirects"),  # type: ignore[arg-type]
        warnings=(*warnings, *allow.warnings) if allow is not None else tuple(warnings),
        allowlist=allow.entries if allow is not None else (),
        keep_latest=values.get("keep-latest"),  # type: ignore[arg-type]
        with_dependencies=with_dependencies,
        selection=FileSelection(
            exclude_platforms=values.get("exclude-platform", frozenset()),  # type: ignore[arg-type]
            package_types=values.get("package-types", frozenset()),  # type: ignore[arg-type]
            max_file_size=values.get("max-file-size"),  # type: ignore[arg-type]
            exclude_releases=values.get("exclude-release", ()),  # type: ignore[arg-type]
        ),
        requirement_lines=allow.lines if allow is not None else (),
        constraints=allow.constraints if allow is not None else (),
        storage=read_storage(parser, file),
    )


def _allowlist(path: Path, text: str, written: Mapping[str, tuple[str, str]]) -> Allowlist | None:
    """The allowlist, None when the config writes none: its reader (requirements files,
    pyproject.toml, PEP 508) is imported only by a config that has one, so that a full
    mirror's start-up does not pay for it."""
    keys = {k: written[k] for k in ("projects", "requirements") if k in written}
    if not keys:
        return None
    from morgan_like.config.allowlist import read_allowlist

    return read_allowlist(path, text, keys)


def _refuse_excluded(
    allow: Allowlist | None, written: Mapping[str, tuple[str, str]], text: str, path: Path
) -> None:
    """A project both allowlisted and excluded: which one was meant is a guess."""
    if "exclude" not in written or allow is None or not allow.entries:
        return
    from morgan_like.config.allowlist import value_lines

    raw_key, value = written["exclude"]
    for line, pattern in value_lines(text, "sync", raw_key, value):
        compiled = compile_patterns((pattern,), "exclude")[0]
        for entry in allow.entries:
            if compiled.match(entry.name):
                at = f"{path.name}:{line}" if line else f"{path.name} [sync] {raw_key}"
                raise ConfigError(
                    file=str(path),
                    problem=(
                        f"{entry.name} is both allowlisted ({entry.source}: {entry.requirement}) "
                        f"and excluded ({at}: {raw_key} = {pattern})"
                    ),
                    section="sync",
                    key=raw_key,
                    line=line,
                    hint="remove it from the allowlist, or narrow the exclude pattern",
                )


def _with_dependencies(
    allow: Allowlist | None,
    values: Mapping[str, object],
    written: Mapping[str, tuple[str, str]],
    has_envs: bool,
    file: str,
) -> bool:
    """The effective with-dependencies: as written, else true when there is an allowlist."""
    explicit = values.get("with-dependencies")
    listed = bool(allow is not None and allow.entries)
    if explicit is True and not listed:
        raise ConfigError(
            file=file,
            problem="with-dependencies = true and no allowlist: a full mirror has every project",
            section="sync",
            key=written["with-dependencies"][0],
            hint="list the projects to follow (projects = one requirement a line, or "
            "requirements = FILE), or remove with-dependencies",
        )
    effective = listed if explicit is None else bool(explicit)
    if effective and not has_envs:
        key = next(k for k in ("with-dependencies", "projects", "requirements") if k in written)
        default = "" if explicit else " (the default with an allowlist)"
        raise ConfigError(
            file=file,
            problem=f"with-dependencies{default} and no [env.NAME] section: "
            "dependencies depend on the target",
            section="sync",
            key=written[key][0],
            hint=NO_ENV,
        )
    return effective


def _refuse_bundle_keys(keys: Mapping[str, str], file: str, section: str) -> None:
    """``binary-only`` decides what a bundle's env views list; a sync has no views yet,
    so the key would be silently ignored: refuse it."""
    for key in keys:
        if key.strip().lower().replace("_", "-") == "binary-only":
            raise ConfigError(
                file=file,
                problem=f"{key} is for `mirror` (bundles); sync does not read it",
                section=section,
                key=key,
                hint="remove it from this sync config",
            )


def _value(key: str, raw_key: str, value: str, file: str) -> object:
    def error(problem: str, hint: str) -> ConfigError:
        return ConfigError(file=file, problem=problem, section="sync", key=raw_key, hint=hint)

    kind = SYNC_KEYS.get(key)
    if kind is None:
        close = difflib.get_close_matches(key, list(SYNC_KEYS), n=1)
        raise error(
            f"unknown key {raw_key!r}",
            (f"did you mean {close[0]!r}? " if close else "")
            + "valid keys: "
            + ", ".join(SYNC_KEYS),
        )
    value = value.strip()
    if kind == "allowlist":
        return value  # config.allowlist reads it, with the text for its lines
    if kind in ("platforms", "types"):
        return _names(kind, key, value, error)
    if kind == "size":
        try:
            return parse_size(value)
        except ValueError as exc:
            raise error(f"{key} = {exc}", SIZE_HINT) from None
    if kind == "release-regexes":
        patterns = tuple(line.strip() for line in value.splitlines() if line.strip())
        compiled = []
        for pattern in patterns:
            try:  # case-sensitive, as bandersnatch's [filter_regex] releases
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise error(
                    f"{key}: invalid regular expression {pattern!r}: {exc}",
                    "one regular expression per line, matched against the version from its "
                    "start, e.g. exclude-release = .*\\.dev\\d+$",
                ) from None
        return tuple(compiled)
    if kind == "regexes":
        patterns = tuple(line.strip() for line in value.splitlines() if line.strip())
        try:
            compile_patterns(patterns, key)
        except ValueError as exc:
            raise error(
                str(exc), "one regular expression per line, e.g. exclude = ^test-"
            ) from None
        return patterns
    if kind == "bool":
        flag = parse_bool(value)
        if flag is None:
            raise error(f"{key} = {value!r} is not a boolean", f"write {key} = true or false")
        return flag
    if kind in ("count", "positive"):
        if not value.isascii() or not value.isdigit() or (kind == "positive" and int(value) < 1):
            least = "1" if kind == "positive" else "0"
            raise error(f"{key} = {value!r} is not a whole number >= {least}", f"e.g. {key} = 10")
        return int(value)
    if kind == "source":
        if value not in SERIAL_SOURCES:
            raise error(
                f"serial-source = {value!r} is not known", "one of " + ", ".join(SERIAL_SOURCES)
            )
        return value
    if not value:
        raise error(f"{key} is empty", f"e.g. {key} = diff.txt")
    return value


def _names(
    kind: str, key: str, value: str, error: Callable[[str, str], ConfigError]
) -> frozenset[str]:
    """exclude-platform / package-types: names, space, comma or newline separated."""
    known, aliases = (
        (PLATFORMS, PLATFORM_ALIASES)
        if kind == "platforms"
        else (PACKAGE_TYPES, PACKAGE_TYPE_ALIASES)
    )
    words = [w.lower() for w in re.split(r"[\s,]+", value) if w]
    if not words and kind == "types":
        raise error(f"{key} is empty", "e.g. package-types = wheel sdist, or remove the key")
    out = set()
    for word in words:
        name = aliases.get(word, word)
        if name in known:
            out.add(name)
            continue
        close = difflib.get_close_matches(name, known, n=1)
        if kind == "platforms":
            hint = "an [env.NAME] section selects wheels by Python and architecture; "
        else:
            hint = (
                "other file types (eggs, installers) are left out whenever package-types is set; "
            )
        raise error(
            f"{key}: {word!r} is not known",
            (f"did you mean {close[0]!r}? " if close else "")
            + hint
            + "one or more of "
            + ", ".join(known),
        )
    return frozenset(out)
