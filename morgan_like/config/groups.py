"""PEP 735 dependency groups of a pyproject.toml, named under ``[requirements_from]``.

``groups = PATH:GROUP[,GROUP...]`` takes pip's ``--group PATH:GROUP`` form
(PATH relative to morgan.ini; a bare ``GROUP`` means the pyproject.toml next
to morgan.ini).  As with ``pip install --group``, only the groups' own
requirements are bundled, not the project's dependencies: list the file
under ``pyproject`` too for those.  Groups are never bundled unless named;
``config.sources`` warns when a file listed under ``pyproject`` declares
groups that no ``groups`` entry names, so none goes missing silently.

Group names compare normalised (PEP 735: as project names), ``{include-group
= "NAME"}`` entries are expanded, an include cycle is an error naming the
chain, and a group included twice is bundled once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from morgan_like.config.reqfiles import TXT_HINT, RequirementLine, parse_requirement
from morgan_like.errors import ConfigError

SECTION = "dependency-groups"
GROUPS_HINT = "e.g. groups = app/pyproject.toml:dev,test (or groups = dev for ./pyproject.toml)"
_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.I)


def split_groups_ref(value: str) -> tuple[str, list[str]]:
    """``path/pyproject.toml:dev,test`` -> (path, [dev, test]); ValueError says what is wrong."""
    path, colon, names = value.strip().rpartition(":")
    if not colon:
        path, names = "pyproject.toml", value.strip()
    groups = [n.strip() for n in names.split(",") if n.strip()]
    if not path or not groups:
        raise ValueError(f"{value!r} names no group")
    for name in groups:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a dependency group name (in {value!r})")
    return path, groups


def declared_groups(data: dict[str, Any]) -> list[str]:
    """The group names a parsed pyproject.toml declares (as written)."""
    table = data.get(SECTION)
    return list(table) if isinstance(table, dict) else []


def read_dependency_groups(
    path: Path, data: dict[str, Any], names: list[str], done: set[str] | None = None
) -> list[RequirementLine]:
    """The requirements of the named groups, includes expanded, each group once.

    ``done`` (normalised names) carries the groups already bundled from this
    file by an earlier ``groups`` entry, so that none is listed twice.
    """
    table = data.get(SECTION)
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError(
            file=str(path),
            problem="[dependency-groups] must be a table of lists",
            section=SECTION,
            hint='e.g. [dependency-groups] dev = ["pytest"]',
        )
    groups: dict[str, tuple[str, Any]] = {}
    for written, items in table.items():
        key = canonicalize_name(written)
        if key in groups:
            raise ConfigError(
                file=str(path),
                problem=f"groups {groups[key][0]!r} and {written!r} have the same normalised name",
                section=SECTION,
                key=written,
                hint="PEP 735 compares group names like project names: keep one",
            )
        groups[key] = (written, items)
    out: list[RequirementLine] = []
    done = set() if done is None else done

    def visit(name: str, stack: tuple[str, ...], wanted_by: str | None) -> None:
        key = canonicalize_name(name)
        if key in stack:
            chain = " -> ".join((*(groups[k][0] for k in stack), name))
            raise ConfigError(
                file=str(path),
                problem=f"dependency group {name!r} includes itself ({chain})",
                section=SECTION,
                key=groups[stack[-1]][0],
                hint="remove one of the include-group entries",
            )
        if key in done:
            return
        if key not in groups:
            defined = ", ".join(sorted(w for w, _ in groups.values())) or "none"
            raise ConfigError(
                file=str(path),
                problem=f"no dependency group {name!r}"
                + (f" (included by {wanted_by!r})" if wanted_by else ""),
                section=SECTION,
                hint=f"groups defined: {defined}",
            )
        written, items = groups[key]
        if not isinstance(items, list):
            raise ConfigError(
                file=str(path), problem="must be a list", section=SECTION, key=written
            )
        for i, item in enumerate(items):
            where = f"{written}[{i}]"
            if isinstance(item, dict):
                include = item.get("include-group")
                if set(item) != {"include-group"} or not isinstance(include, str):
                    raise ConfigError(
                        file=str(path),
                        problem=f"{item!r} is neither a requirement nor an include",
                        section=SECTION,
                        key=where,
                        hint='a table entry is {include-group = "NAME"}',
                    )
                visit(include, (*stack, key), written)
                continue
            if not isinstance(item, str):
                raise ConfigError(
                    file=str(path), problem=f"{item!r} is not a string", section=SECTION, key=where
                )

            def error(problem: str, hint: str | None = TXT_HINT, key: str = where) -> ConfigError:
                return ConfigError(
                    file=str(path), problem=problem, section=SECTION, key=key, hint=hint
                )

            req = parse_requirement(item, error)
            out.append(RequirementLine(req, f"{path} [{SECTION}] {written}"))
        done.add(key)

    for name in names:
        visit(name, (), None)
    return out
