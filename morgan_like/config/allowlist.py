"""A sync slice's allowlist: ``[sync] projects`` lines and ``requirements`` files.

``projects`` holds one PEP 508 requirement a line (``django ~= 4.2``,
``fastapi[standard]``, ``pywin32 ; sys_platform == "win32"``), ``#`` comments
and blank lines skipped.  ``requirements`` names requirements files and
pyproject.toml files (``path/pyproject.toml[extra]``), relative to the config's
folder, read exactly as a bundle reads them (config.reqfiles, config.pyproject):
their lines join the allowlist, ``-c`` lines are constraints and ``--hash`` pins
restrict files, as a bundle's do.

Each entry remembers where it was written (``morgan.ini:7``, ``reqs/base.txt:3``),
so that the run's report and every refusal point at the line.  A project listed
twice is refused naming both lines: which line's specifier would win is a guess
we do not make.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from morgan_like.config.initext import _locate
from morgan_like.config.pyproject import load_toml, read_pyproject, split_pyproject_ref
from morgan_like.config.reqfiles import (
    COMMENT,
    RequirementLine,
    RequirementsFile,
    parse_requirement,
    read_requirements_txt,
)
from morgan_like.errors import ConfigError

SECTION = "sync"
PROJECTS_HINT = 'one PEP 508 requirement a line, e.g. django ~= 4.2, fastapi[standard], pywin32 ; sys_platform == "win32"'
REQUIREMENTS_HINT = "e.g. requirements = reqs/base.txt tools/pyproject.toml"


@dataclass(frozen=True)
class AllowEntry:
    """One allowlisted requirement; ``source``: where it was written (``morgan.ini:7``)."""

    requirement: Requirement
    name: NormalizedName
    source: str


@dataclass(frozen=True)
class Allowlist:
    """What ``projects`` and ``requirements`` say.

    ``lines``: the entries as requirement lines (with their ``--hash`` pins, for
    hashes_in); ``constraints``: the ``-c`` lines of the requirements files.
    """

    entries: tuple[AllowEntry, ...] = ()
    lines: tuple[RequirementLine, ...] = ()
    constraints: tuple[RequirementLine, ...] = ()
    warnings: tuple[str, ...] = ()


def value_lines(text: str, section: str, key: str, value: str) -> list[tuple[int | None, str]]:
    """The non-blank lines of a (multi-line) value with their line numbers in ``text``
    (configparser keeps none): each found in turn from the key's own line on."""
    lines = text.splitlines()
    start = _locate(text, section, key)
    at = start - 1 if start is not None else len(lines)
    out: list[tuple[int | None, str]] = []
    for piece in value.splitlines():
        piece = piece.strip()
        if not piece:
            continue
        found = None
        for i in range(at, len(lines)):
            raw = lines[i]
            if start is not None and i == start - 1:
                after = re.match(r"[^=:]*[=:](.*)", raw)
                raw = after.group(1) if after else ""
            if raw.strip() == piece:
                found, at = i + 1, i + 1
                break
        out.append((found, piece))
    return out


def read_allowlist(path: Path, text: str, keys: dict[str, tuple[str, str]]) -> Allowlist:
    """``keys``: ``projects`` / ``requirements`` -> (the key as written, its value).

    ConfigError on the first problem, naming file, line and what to write."""
    file = str(path)
    entries: list[AllowEntry] = []
    lines: list[RequirementLine] = []
    constraints: list[RequirementLine] = []
    warnings: list[str] = []
    where: dict[int, tuple[str, int | None]] = {}  # entry index -> (its key, its config line)
    if "projects" in keys:
        raw_key, value = keys["projects"]
        for lineno, piece in value_lines(text, SECTION, raw_key, value):
            spec = COMMENT.sub("", piece).strip()
            if not spec:
                continue

            def error(
                problem: str, hint: str = PROJECTS_HINT, lineno: int | None = lineno
            ) -> ConfigError:
                return ConfigError(
                    file=file, problem=problem, section=SECTION, key=raw_key, hint=hint, line=lineno
                )

            req = parse_requirement(spec, error)
            source = f"{path.name}:{lineno}" if lineno else f"{path.name} [sync] {raw_key}"
            where[len(entries)] = (raw_key, lineno)
            entries.append(AllowEntry(req, canonicalize_name(req.name), source))
            lines.append(RequirementLine(req, source))
    if "requirements" in keys:
        raw_key, value = keys["requirements"]
        key_line = _locate(text, SECTION, raw_key)
        for got in _read_files(path, raw_key, value):
            for line in got.requirements:
                source = _relative(line.source, path.parent)
                where[len(entries)] = (raw_key, key_line)
                req = line.requirement
                entries.append(AllowEntry(req, canonicalize_name(req.name), source))
                lines.append(RequirementLine(req, source, line.hashes))
            constraints += got.constraints
            warnings += got.warnings
    _refuse_twice(entries, where, file)
    return Allowlist(tuple(entries), tuple(lines), tuple(constraints), tuple(warnings))


def _read_files(path: Path, raw_key: str, value: str) -> list[RequirementsFile]:
    """What each file ``requirements`` names asks for (a pyproject.toml: requirements only)."""
    base = path.parent

    def error(problem: str, hint: str = REQUIREMENTS_HINT) -> ConfigError:
        return ConfigError(file=str(path), problem=problem, section=SECTION, key=raw_key, hint=hint)

    try:
        refs = [w for line in value.splitlines() for w in shlex.split(COMMENT.sub("", line))]
    except ValueError as exc:
        raise error(f"cannot split paths: {exc}") from None
    if not refs:
        raise error("no path given")
    out: list[RequirementsFile] = []
    for ref in refs:
        name, extras = split_pyproject_ref(ref)
        target = base / name
        try:
            if name.endswith(".toml"):
                got = read_pyproject(target, extras, load_toml(target))
                out.append(RequirementsFile(tuple(got)))
            elif extras:
                raise error(
                    f"{ref}: [extras] name a pyproject.toml's optional dependencies",
                    "write them on a pyproject.toml path, e.g. tools/pyproject.toml[test]",
                )
            else:
                out.append(read_requirements_txt(target))
        except OSError as exc:
            raise error(
                f"cannot read {target}: {exc.strerror or exc}",
                getattr(exc, "hint", None)
                or f"paths are relative to the config file's folder ({base})",
            ) from None
    return out


def _relative(source: str, base: Path) -> str:
    """``/abs/cfg/reqs/base.txt:3`` -> ``reqs/base.txt:3`` (a file beside the config)."""
    prefix = f"{base}/"
    return source[len(prefix) :] if source.startswith(prefix) else source


def _refuse_twice(
    entries: list[AllowEntry], where: dict[int, tuple[str, int | None]], file: str
) -> None:
    first: dict[str, AllowEntry] = {}
    for i, entry in enumerate(entries):
        seen = first.setdefault(entry.name, entry)
        if seen is entry:
            continue
        key, line = where[i]
        extras = sorted({*seen.requirement.extras, *entry.requirement.extras})
        both = SpecifierSet(
            f"{seen.requirement.specifier},{entry.requirement.specifier}".strip(",")
        )
        example = (
            entry.name + (f"[{','.join(extras)}]" if extras else "") + (f" {both}" if both else "")
        )
        raise ConfigError(
            file=file,
            problem=(
                f"{entry.name} is allowlisted twice: {seen.source} ({seen.requirement}) "
                f"and {entry.source} ({entry.requirement})"
            ),
            section=SECTION,
            key=key,
            line=line,
            hint=f"keep one line with both specifiers, e.g. {example}",
        )
