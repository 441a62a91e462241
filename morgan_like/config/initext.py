"""An ini file's text and its parser, as morgan reads it: configparser with our rules.

Shared by the bundle config (config.ini), the sync config (config.syncconf), the
tree check and the input carrier: how the file is read (config.textfile), which
configparser settings keep a morgan 0.15 config loading unchanged, which
repetitions are refused, and where a section or key is (configparser keeps no
line numbers).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

from morgan_like.config.textfile import read_input_text
from morgan_like.errors import ConfigError

_NO_DEFAULT = "\x00no default section"  # a literal [DEFAULT] must not leak into every section
# Sections that list things: given twice, they add up.
_LIST_SECTIONS = ("requirements", "requirements_from", "dependencies")


class _MergingDict(dict):
    """configparser section storage that extends, not replaces, a key given twice (as lists while reading)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duplicates: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        old = self.get(key)
        if isinstance(value, list) and isinstance(old, list):
            self.duplicates.append(key)
            old.extend(value)
            return
        super().__setitem__(key, value)


def read_config_text(path: Path, missing_hint: str) -> str:
    """A config file's text; ConfigError naming it when it is missing, unreadable, not a
    regular file, too large or not UTF-8 (config.textfile)."""
    try:
        return read_input_text(path)
    except FileNotFoundError:
        raise ConfigError(
            file=str(path), problem="config file not found", hint=missing_hint
        ) from None
    except OSError as exc:
        raise ConfigError(
            file=str(path),
            problem=f"cannot read config file: {exc.strerror or exc}",
            hint=getattr(exc, "hint", None),
        ) from None


def read_ini(text: str, file: str) -> configparser.ConfigParser:
    """Parse an ini text the way morgan reads it; ConfigError (with the line) if unreadable."""
    parser = configparser.ConfigParser(
        interpolation=None,  # specs may contain '%'
        strict=False,  # morgan tolerates a key given twice; requirements merge
        inline_comment_prefixes=None,  # ';' starts a marker, not a comment
        default_section=_NO_DEFAULT,
        dict_type=_MergingDict,
    )
    _refuse_repeated_sections(text, file)
    try:
        parser.read_string(text, source=file)
    except configparser.Error as exc:
        message = getattr(exc, "message", str(exc)).splitlines()[0]
        raise ConfigError(
            file=file,
            problem=f"not a valid ini file: {message}",
            line=getattr(exc, "lineno", None) or _error_line(exc),
            hint="sections look like [env.NAME], keys like `name = value`; continuation lines are indented",
        ) from None
    return parser


def _refuse_repeated_sections(text: str, file: str) -> None:
    """A section of settings ([env.NAME], [mirror], [sync]) given twice is an error naming
    both lines: configparser (strict=False, for keys) would merge a second [env.linux]
    into the first without a word.  A list section given twice adds up, as a key given
    twice there does (``morgan-like generate_reqs >> morgan.ini``)."""
    first: dict[str, int] = {}
    pending_key, level = False, 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue  # configparser skips whole-line comments, even inside a value
        indent = len(line) - len(line.lstrip())
        if pending_key and indent > level:
            continue  # a continuation line of a value
        level = indent
        header = configparser.RawConfigParser.SECTCRE.match(stripped)
        if header is None:
            pending_key = configparser.RawConfigParser.OPTCRE.match(stripped) is not None
            continue
        pending_key = False
        name = header.group("header")
        if name in _LIST_SECTIONS:
            continue
        if name in first:
            raise ConfigError(
                file=file,
                problem=f"section [{name}] is given twice, on lines {first[name]} and {n}",
                line=n,
                hint="merge the two into one section",
            )
        first[name] = n


def _section(parser: configparser.ConfigParser, section: str, file: str) -> dict[str, str]:
    """A section's keys; a key given twice outside [requirements]/[requirements_from] is an error."""
    store = parser._sections[section]  # type: ignore[attr-defined]
    for key in getattr(store, "duplicates", []):
        raise ConfigError(
            file=file,
            problem=f"key {key!r} is given more than once",
            section=section,
            key=key,
            hint="keep one value",
        )
    return dict(parser.items(section))


def _locate(text: str, section: str, key: str | None) -> int | None:
    """Line number of ``key`` (or the header) in ``[section]``; configparser does not keep them."""
    current = None
    header = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            current = m.group(1).strip()
            if current == section and header is None:
                header = n
            continue
        if current == section and key is not None:
            k = re.match(r"([^\s=:;#][^=:]*?)\s*[=:]", line)
            if k and k.group(1).strip().lower() == key.lower():
                return n
    return header


def _error_line(exc: configparser.Error) -> int | None:
    errors = getattr(exc, "errors", None)
    if errors:
        return errors[0][0]
    return None
