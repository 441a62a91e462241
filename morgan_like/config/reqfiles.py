"""Requirements from outside morgan.ini: requirements.txt files and pyproject.toml.

Listed under ``[requirements_from]``; each requirement remembers where it came
from (``requirements.txt:3``) so that a resolution error can point at the line.
Only what a bundle can serve is accepted: names with specifiers, extras and
markers.  Editable installs, direct URLs and pip's global options are refused
with a message naming the line, never silently dropped.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from morgan_like.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

TXT_HINT = 'write one requirement a line, e.g. requests>=2.24.0 or foo>=1; python_version < "3.8"'
_COMMENT = re.compile(r"(^|\s+)#.*$")
_HASH_OPTION = re.compile(r"\s+--hash(?:=|\s+)\S+")
_INCLUDE = ("-r", "--requirement")
# pip options that change what or where pip installs from: a bundle cannot honour them.
_REFUSED = {
    "-e": "editable installs are not supported (a bundle holds index releases)",
    "--editable": "editable installs are not supported (a bundle holds index releases)",
    "-c": "constraints files are not supported",
    "--constraint": "constraints files are not supported",
    "-i": "index options are not read from requirements files",
    "--index-url": "index options are not read from requirements files",
    "--extra-index-url": "extra indexes are not supported",
    "--no-index": "--no-index does not apply to a bundle",
    "-f": "find-links are not supported",
    "--find-links": "find-links are not supported",
}
_OPTION_HINT = {
    "-i": "set index-url in the [mirror] section of morgan.ini instead",
    "--index-url": "set index-url in the [mirror] section of morgan.ini instead",
    "-e": "replace the line with the project's name and version, e.g. foo==1.2",
    "--editable": "replace the line with the project's name and version, e.g. foo==1.2",
    "-c": "put the pins into the requirements themselves, e.g. foo==1.2",
    "--constraint": "put the pins into the requirements themselves, e.g. foo==1.2",
}


@dataclass
class RequirementLine:
    """One top-level requirement and the human location it was written at."""

    requirement: Requirement
    source: str


def read_requirements_txt(path: Path, _stack: tuple[Path, ...] = ()) -> list[RequirementLine]:
    """Parse a pip requirements file (comments, continuations, ``-r`` includes, ``--hash`` ignored)."""
    text = _read_text(path)  # OSError: the caller knows who referenced it
    stack = (*_stack, path.resolve())
    out: list[RequirementLine] = []
    for lineno, line in _logical_lines(text):

        def error(problem: str, hint: str | None = TXT_HINT, lineno: int = lineno) -> ConfigError:
            return ConfigError(file=str(path), problem=problem, line=lineno, hint=hint)

        if line.startswith("-"):
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise error(f"cannot split {line!r}: {exc}") from None
            opt, _, inline = words[0].partition("=")
            if opt in _INCLUDE:
                target = inline or (words[1] if len(words) > 1 else "")
                if not target:
                    raise error(f"{opt} needs a file name", "e.g. -r base.txt")
                included = path.parent / target
                if included.resolve() in stack:
                    raise error(
                        f"{target} includes itself (through {' -> '.join(p.name for p in stack)})",
                        None,
                    )
                try:
                    out += read_requirements_txt(included, stack)
                except OSError as exc:
                    raise error(
                        f"cannot read included file {included}: {exc.strerror or exc}",
                        f"paths after -r are relative to {path.parent}",
                    ) from None
                continue
            problem = _REFUSED.get(opt, f"pip option {opt} is not supported here")
            raise error(f"{problem}: {line!r}", _OPTION_HINT.get(opt, "remove the line"))
        line = _HASH_OPTION.sub("", line)  # the index's sha256 is checked on every download anyway
        if re.search(r"\s--?\w", line):
            raise error(
                f"per-requirement options are not supported: {line!r}", "keep only the requirement"
            )
        req = _parse_requirement(line, error)
        out.append(RequirementLine(req, f"{path}:{lineno}"))
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file=str(path), problem=f"not UTF-8 text: {exc}") from None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations, drop comments and blanks; keep the first line number."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if raw.endswith("\\") and not _COMMENT.search(raw):
            buf.append(raw[:-1])
            continue
        buf.append(raw)
        line = _COMMENT.sub("", " ".join(buf)).strip()
        buf = []
        if line:
            out.append((start, line))
    if buf:
        line = _COMMENT.sub("", " ".join(buf)).strip()
        if line:
            out.append((start, line))
    return out


def _parse_requirement(text: str, error) -> Requirement:
    if re.match(r"(\.{0,2}/|[a-z][a-z0-9+.-]*://)", text, re.I) or text.endswith(
        (".whl", ".tar.gz", ".zip")
    ):
        raise error(
            f"paths and URLs are not supported: {text!r}", "name the project instead, e.g. foo==1.2"
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise error(f"invalid requirement {text!r}: {marker_problem(text) or exc}") from None
    if req.url:
        raise error(
            f"direct references are not supported: {text!r}",
            "name the project instead, e.g. foo==1.2",
        )
    return req


def marker_problem(text: str) -> str | None:
    """A clearer message when the marker part of a requirement is what is wrong."""
    if ";" not in text:
        return None
    marker = text.split(";", 1)[1].strip()
    try:
        Marker(marker)
    except InvalidMarker as exc:
        return f"invalid marker {marker!r}: {exc}"
    return None


def split_pyproject_ref(value: str) -> tuple[str, list[str]]:
    """``path/pyproject.toml[a,b]`` -> (``path/pyproject.toml``, [a, b])."""
    m = re.fullmatch(r"(.+?)\[([^\]]*)\]", value.strip())
    if not m:
        return value.strip(), []
    return m.group(1), [e.strip() for e in m.group(2).split(",") if e.strip()]


def read_pyproject(path: Path, extras: list[str]) -> list[RequirementLine]:
    """[project].dependencies plus the named optional-dependencies groups (self-references expanded)."""
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file=str(path), problem=f"invalid TOML: {exc}") from None
    project = data.get("project")
    if not isinstance(project, dict):
        raise ConfigError(
            file=str(path),
            problem="no [project] table",
            hint="only PEP 621 metadata ([project] dependencies) is read; list the requirements in morgan.ini instead",
        )
    dynamic = project.get("dynamic", [])
    if "dependencies" in dynamic:
        raise ConfigError(
            file=str(path),
            problem="[project] dependencies are dynamic and cannot be read without building",
            section="project",
            key="dependencies",
            hint="use a requirements.txt (e.g. from pip-compile) instead",
        )
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, dict):
        raise ConfigError(
            file=str(path),
            problem="must be a table of lists",
            section="project",
            key="optional-dependencies",
            hint='e.g. [project.optional-dependencies] test = ["pytest"]',
        )
    groups = {canonicalize_name(k): (k, v) for k, v in optional.items()}
    self_name = canonicalize_name(project["name"]) if isinstance(project.get("name"), str) else None
    out: list[RequirementLine] = []
    todo: list[tuple[str | None, Marker | None]] = [(None, None)] + [(e, None) for e in extras]
    done: set[str | None] = set()
    while todo:
        group, outer = todo.pop(0)
        key = canonicalize_name(group) if group is not None else None
        if key in done:
            continue
        done.add(key)
        if group is None:
            section, name, items = "project", "dependencies", project.get("dependencies", [])
        else:
            if key not in groups:
                available = ", ".join(sorted(k for k, _ in groups.values())) or "none"
                raise ConfigError(
                    file=str(path),
                    problem=f"no optional-dependencies group {group!r}",
                    section="project.optional-dependencies",
                    hint=f"groups defined: {available}",
                )
            section, (name, items) = "project.optional-dependencies", groups[key]
        if not isinstance(items, list):
            raise ConfigError(
                file=str(path), problem="must be a list of strings", section=section, key=name
            )
        for i, item in enumerate(items):

            def error(
                problem: str, hint: str | None = TXT_HINT, where: tuple = (section, f"{name}[{i}]")
            ) -> ConfigError:
                return ConfigError(
                    file=str(path), problem=problem, section=where[0], key=where[1], hint=hint
                )

            if not isinstance(item, str):
                raise error(f"{item!r} is not a string")
            req = _parse_requirement(item, error)
            marker = _and(outer, req.marker)
            if self_name is not None and canonicalize_name(req.name) == self_name:
                todo += [(extra, marker) for extra in sorted(req.extras)]
                continue
            if marker is not req.marker:
                req.marker = marker
            out.append(RequirementLine(req, f"{path} [{section}] {name}"))
    return out


def _and(a: Marker | None, b: Marker | None) -> Marker | None:
    if a is None:
        return b
    if b is None:
        return a
    return Marker(f"({a}) and ({b})")
