"""A local project's pyproject.toml: its dependencies, extras and build requirements.

Listed as ``pyproject = path/pyproject.toml[extra1,extra2]`` under
``[requirements_from]``: the bundle must let pip install that project offline,
so it serves ``[project].dependencies`` (plus the named extras) and, resolved
on their own, ``[build-system].requires``.  Its PEP 735 dependency groups are
read by ``config.groups`` only when named (pip installs a project without its
groups too).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from morgan_like.config.reqfiles import (
    TXT_HINT,
    RequirementLine,
    and_markers,
    parse_requirement,
    read_text,
)
from morgan_like.dists.sdist import LEGACY_BUILD_REQUIRES
from morgan_like.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; invalid TOML is a ConfigError naming the file, OSError the caller's."""
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file=str(path), problem=f"invalid TOML: {exc}") from None


def split_pyproject_ref(value: str) -> tuple[str, list[str]]:
    """``path/pyproject.toml[a,b]`` -> (``path/pyproject.toml``, [a, b])."""
    m = re.fullmatch(r"(.+?)\[([^\]]*)\]", value.strip())
    if not m:
        return value.strip(), []
    return m.group(1), [e.strip() for e in m.group(2).split(",") if e.strip()]


def read_pyproject(
    path: Path, extras: list[str], data: dict[str, Any] | None = None
) -> list[RequirementLine]:
    """[project].dependencies plus the named optional-dependencies groups (self-references expanded)."""
    if data is None:
        data = load_toml(path)
    project = data.get("project")
    if not isinstance(project, dict):
        raise ConfigError(
            file=str(path),
            problem="no [project] table",
            hint="only PEP 621 metadata ([project] dependencies) is read; list the requirements "
            "in morgan.ini instead, or name its dependency groups with groups = PATH:GROUP",
        )
    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list) or not all(isinstance(d, str) for d in dynamic):
        raise ConfigError(
            file=str(path),
            problem=f"must be a list of strings, got {dynamic!r}",
            section="project",
            key="dynamic",
            hint='e.g. dynamic = ["version"]',
        )
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
        for req in _requirements(path, items, section, name):
            marker = and_markers(outer, req.marker)
            if self_name is not None and canonicalize_name(req.name) == self_name:
                todo += [(extra, marker) for extra in sorted(req.extras)]
                continue
            if marker is not req.marker:
                req.marker = marker
            out.append(RequirementLine(req, f"{path} [{section}] {name}"))
    return out


def read_build_requirements(path: Path, data: dict[str, Any]) -> list[RequirementLine]:
    """``[build-system].requires``: what pip installs, isolated, to build this project.

    Consumers resolve these per env on their own (pip builds in a separate
    environment, so they neither constrain nor are constrained by the
    project's dependencies) and bundle the result.  Without a [build-system]
    table pip falls back to the setuptools legacy backend (PEP 517/518): recent
    pip asks for ``setuptools>=40.8.0``, older pip and setuptools < 70.1 also
    for ``wheel``, so both are listed, as ``dists.sdist`` does for sdists.
    A [build-system] table without ``requires`` is invalid (PEP 518) and pip
    refuses it, so it is an error here.  Requirements a backend adds through
    ``get_requires_for_build_wheel`` cannot be known without running it.
    """
    system = data.get("build-system")
    if system is None:
        reqs = [parse_requirement(r, _plain_error(path)) for r in LEGACY_BUILD_REQUIRES]
        source = f"{path} (no [build-system]: pip's setuptools default)"
        return [RequirementLine(r, source) for r in reqs]
    if not isinstance(system, dict) or "requires" not in system:
        raise ConfigError(
            file=str(path),
            problem="[build-system] has no requires (PEP 518 makes it mandatory; pip refuses this file)",
            section="build-system",
            hint='e.g. requires = ["setuptools>=61"]',
        )
    source = f"{path} [build-system] requires"
    return [
        RequirementLine(r, source)
        for r in _requirements(path, system["requires"], "build-system", "requires")
    ]


def _requirements(path: Path, items: Any, section: str, name: str) -> list:
    """A TOML list of requirement strings; errors name the file, table and item."""
    if not isinstance(items, list):
        raise ConfigError(
            file=str(path), problem="must be a list of strings", section=section, key=name
        )
    out = []
    for i, item in enumerate(items):

        def error(
            problem: str, hint: str | None = TXT_HINT, key: str = f"{name}[{i}]"
        ) -> ConfigError:
            return ConfigError(file=str(path), problem=problem, section=section, key=key, hint=hint)

        if not isinstance(item, str):
            raise error(f"{item!r} is not a string")
        out.append(parse_requirement(item, error))
    return out


def _plain_error(path: Path):
    def error(problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(file=str(path), problem=problem, hint=hint)

    return error
