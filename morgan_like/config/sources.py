"""``[requirements_from]``: requirements, constraints and groups kept in other files.

Keys (paths relative to morgan.ini, several per key, one or more a line):

* ``requirements``: pip requirements files; their ``-c`` lines add constraints.
* ``constraints``: pip constraints files (every line a constraint).
* ``pyproject``: ``path/pyproject.toml[extra,...]``: the project's dependencies
  and extras, and its ``[build-system] requires`` as build requirements.
* ``groups``: ``path/pyproject.toml:group,...``: PEP 735 dependency groups.
* ``locks``: ``uv.lock`` and PEP 751 ``pylock.toml`` files, taken as locked
  (``config.locks``): their packages and files, never re-resolved.

The result keeps requirements, constraints and build requirements apart (see
``Config``) plus warnings for what the user may not expect, so that nothing
is dropped without a word, and every file read (``inputs``), so that a tree
built from this config can carry them (``config.inputs``).
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from morgan_like.config.groups import (
    GROUPS_HINT,
    declared_groups,
    read_dependency_groups,
    split_groups_ref,
)
from morgan_like.config.lockread import load_lock
from morgan_like.config.locks import Lock
from morgan_like.config.pyproject import (
    load_toml,
    read_build_requirements,
    read_pyproject,
    split_pyproject_ref,
)
from morgan_like.config.reqfiles import (
    InputFile,
    RequirementLine,
    located,
    read_requirements_txt,
)
from morgan_like.config.textfile import resolved as resolved_path
from morgan_like.errors import ConfigError

SECTION = "requirements_from"
KEYS = ("requirements", "constraints", "pyproject", "groups", "locks")
_EXAMPLES = {
    "requirements": "e.g. requirements = requirements.txt",
    "constraints": "e.g. constraints = constraints.txt",
    "pyproject": "e.g. pyproject = ../pyproject.toml[extra]",
    "groups": GROUPS_HINT,
    "locks": "e.g. locks = app/uv.lock tools/pylock.toml",
}


@dataclass
class Sources:
    """Everything ``[requirements_from]`` adds to the config, in the order it was listed."""

    requirements: list[RequirementLine] = field(default_factory=list)
    constraints: list[RequirementLine] = field(default_factory=list)
    build_requirements: list[RequirementLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: list[InputFile] = field(default_factory=list)
    locks: list[Lock] = field(default_factory=list)


def read_sources(items: list[tuple[str, str]], path: Path) -> Sources:
    """Read every file ``[requirements_from]`` names; ConfigError on the first problem."""
    file, base = str(path), path.parent
    out = Sources()
    tomls: dict[Path, dict[str, Any]] = {}
    projects: dict[
        Path, tuple[Path, str]
    ] = {}  # files listed under pyproject: resolved -> path, ref
    grouped: dict[Path, set[str]] = {}  # files some groups entry names -> groups bundled

    def error(key: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(file=file, problem=problem, section=SECTION, key=key, hint=hint)

    for key, value in items:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            raise error(
                key,
                f"unknown key {key!r}",
                (f"did you mean {close[0]!r}? " if close else "")
                + "valid keys: requirements (requirements.txt paths), constraints (constraints "
                "files), pyproject (pyproject.toml paths), groups (pyproject.toml:GROUP), "
                "locks (uv.lock / pylock.toml paths)",
            )
        try:
            refs = [w for line in value.splitlines() for w in shlex.split(line)]
        except ValueError as exc:
            raise error(key, f"cannot split paths: {exc}") from None
        if not refs:
            raise error(key, "no path given", _EXAMPLES[key])
        for ref in refs:
            names: list[str] = []
            if key == "pyproject":
                ref, names = split_pyproject_ref(ref)
            elif key == "groups":
                try:
                    ref, names = split_groups_ref(ref)
                except ValueError as exc:
                    raise error(key, str(exc), GROUPS_HINT) from None
            target = base / ref
            try:
                if key in ("requirements", "constraints"):
                    got = read_requirements_txt(target, constraints=key == "constraints")
                    out.requirements += got.requirements
                    out.constraints += got.constraints
                    out.warnings += got.warnings
                    out.inputs += [
                        replace(f, key=key, ref=ref if i == 0 else None)
                        for i, f in enumerate(got.files)
                    ]
                    continue
                if key == "locks":
                    out.locks.append(load_lock(target))
                    out.inputs.append(InputFile(target, located(target), key, ref))
                    continue
                resolved = resolved_path(target)
                if resolved not in tomls:
                    tomls[resolved] = load_toml(target)
                data = tomls[resolved]
                out.inputs.append(InputFile(target, located(target), key, ref))
            except OSError as exc:
                raise error(
                    key,
                    f"cannot read {target}: {exc.strerror or exc}",
                    getattr(exc, "hint", None)
                    or f"paths are relative to the config file's directory ({base})",
                ) from None
            if key == "groups":
                done = grouped.setdefault(resolved, set())
                out.requirements += read_dependency_groups(target, data, names, done)
            else:
                out.requirements += read_pyproject(target, names, data)
                if resolved not in projects:
                    projects[resolved] = (target, ref)
                    out.build_requirements += read_build_requirements(target, data)
    for resolved, (target, ref) in projects.items():
        declared = declared_groups(tomls[resolved])
        if declared and resolved not in grouped:
            out.warnings.append(
                f"{target} declares dependency groups ({', '.join(declared)}) and none is "
                f"bundled: groups are bundled only when named, e.g. [{SECTION}] "
                f"groups = {ref}:{declared[0]}"
            )
    return out
