"""``[dependencies]``: the dependencies of releases whose metadata cannot be read statically.

Some sdists (setup.py only, or ``Dynamic: Requires-Dist``) only reveal their
dependencies when built.  For those, morgan.ini can state them::

    [dependencies]
    legacy-lib==1.4.2 =
        requests>=2
        colorama; sys_platform == "win32"
    no-deps-at-all==0.3 =

The key is exactly ``NAME==VERSION``; the value is zero or more PEP 508
requirement lines (markers, including ``extra == "x"``, as in Requires-Dist).
An empty value means "no dependencies".

Consumers: ``Config.dependency_overrides[(canonical name, Version)]`` replaces
the Requires-Dist of every file of that release, in every env, before (and
instead of) reading its metadata; markers are evaluated per env as for
metadata.  Version keys compare as versions (``1.0`` is ``1.0.0``).

configparser splits ``name==1.0 = x`` at the first ``=``, so the section is
read here from the file's text, with configparser's rules for comments and
indented continuation lines, which keeps exact line numbers for errors.
"""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from morgan_like.config.reqfiles import parse_requirement
from morgan_like.errors import ConfigError

SECTION = "dependencies"
KEY_HINT = "write NAME==VERSION = requirement lines, e.g. legacy-lib==1.4.2 = requests>=2"
REQ_HINT = 'one PEP 508 requirement a line, e.g. colorama; sys_platform == "win32"'
_KEY = re.compile(
    r"(?P<name>[A-Z0-9](?:[A-Z0-9._-]*[A-Z0-9])?)\s*==\s*(?P<version>[^\s=;]+)\s*=(?P<value>.*)",
    re.I,
)
_HEADER = re.compile(r"\[(?P<header>.+)\]")


def _entries(text: str) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """The section's keys: (line, key line, [(line, continuation)]) as configparser groups them."""
    entries: list[tuple[int, str, list[tuple[int, str]]]] = []
    current: list[tuple[int, str]] | None = None  # the continuation lines of the last key
    inside = False
    indent = 0
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue  # configparser skips comment lines, even between continuation lines
        level = len(raw) - len(raw.lstrip())
        if current is not None and level > indent:
            if inside:
                current.append((n, stripped))
            continue
        current = None
        header = _HEADER.match(stripped)
        if header:
            inside = header.group("header") == SECTION
            continue
        indent = level
        current = []
        if inside:
            entries.append((n, stripped, current))
    return entries


def read_overrides(
    text: str, file: str
) -> dict[tuple[NormalizedName, Version], tuple[Requirement, ...]]:
    """Parse every ``[dependencies]`` section of morgan.ini's text; ConfigError with the line."""
    out: dict[tuple[NormalizedName, Version], tuple[Requirement, ...]] = {}
    lines: dict[tuple[NormalizedName, Version], int] = {}
    for lineno, line, more in _entries(text):

        def error(
            problem: str, hint: str | None = KEY_HINT, n: int = lineno, k: str | None = None
        ) -> ConfigError:
            return ConfigError(
                file=file, problem=problem, section=SECTION, key=k, line=n, hint=hint
            )

        m = _KEY.fullmatch(line)
        if not m:
            raise error(f"the key must be NAME==VERSION exactly: {line!r}")
        name, version_text = m.group("name"), m.group("version")
        key = f"{name}=={version_text}"
        if "*" in version_text:
            raise error(f"{key}: a wildcard is not one release", k=key)
        try:
            version = Version(version_text)
        except InvalidVersion:
            raise error(f"{version_text!r} is not a valid version", k=key) from None
        ident = (canonicalize_name(name), version)
        if ident in lines:
            raise error(
                f"{key} is given more than once (first on line {lines[ident]})",
                "keep one entry and list every dependency in it",
                k=key,
            )
        lines[ident] = lineno
        values = [(lineno, m.group("value").strip())] + more
        reqs: list[Requirement] = []
        for n, value in values:
            if not value:
                continue

            def req_error(
                problem: str, hint: str | None = None, n: int = n, key: str = key
            ) -> ConfigError:
                return error(problem, hint or REQ_HINT, n, key)

            reqs.append(parse_requirement(value, req_error))
        out[ident] = tuple(reqs)
    return out
