"""The full mirror's config: a ``[sync]`` section, optional ``[env.NAME]`` sections, and
``[mirror]`` for the upstream and its limits, in morgan.ini's format.

Every filter the command line takes is also a key here, so a nightly job's
behaviour lives in one reviewed file.  Problems are ConfigErrors naming file,
section, key and line, raised before any request.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from morgan_like.config.ini import _mirror_options
from morgan_like.config.initext import _locate, _section, read_config_text, read_ini
from morgan_like.config.options import parse_bool
from morgan_like.errors import ConfigError
from morgan_like.targets.environments import Environment
from morgan_like.targets.sections import environment_from_section

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
}
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
        elif section not in ("sync", "mirror"):
            close = difflib.get_close_matches(section, ["sync", "mirror"], n=1)
            raise ConfigError(
                file=file,
                problem=f"unknown section [{section}]",
                section=section,
                hint=(f"did you mean [{close[0]}]? " if close else "")
                + "a sync config has [sync], [mirror] and [env.NAME] sections",
            )
    index_url, mirror_options = _mirror_options(parser, file)
    _refuse_bundle_keys(mirror_options, file, "mirror")
    values: dict[str, object] = {}
    if parser.has_section("sync"):
        for raw_key, value in _section(parser, "sync", file).items():
            key = raw_key.replace("_", "-")
            values[key] = _value(key, raw_key, value, file)
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
        warnings=tuple(warnings),
    )


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
