"""Lock files as requirement sources: ``uv.lock`` and PEP 751 ``pylock.toml`` -> typed records.

Listed as ``[requirements_from] locks = app/uv.lock tools/pylock.toml``.  A team
that locks wants the bundle to hold exactly its pins and hashes, so a lock is
never re-resolved: each locked package brings its version and the files the
lock names, each identified by filename and sha256 (``LockedFile``).  Which
packages an env gets is the lock's own answer, read here without any network:

* a ``pylock.toml`` lists every package with its ``marker`` (and
  ``requires-python``); a package applies where they hold.  Markers on
  ``extras`` / ``dependency_groups`` hold when some choice of the lock's
  declared extras and groups makes them hold: the bundle serves whatever the
  lock can install.
* a ``uv.lock`` is universal: one graph for every platform.  A package applies
  where the graph reaches it from the root packages (the workspace members),
  following each dependency edge whose marker holds in the env; every extra
  and dependency group of a root is followed (``uv sync --all-extras
  --all-groups`` must work offline), a dependency's extras only when an edge
  asks for them.
* a lock's ``requires-python``, ``environments`` (pylock) and
  ``supported-markers`` / ``resolution-markers`` (uv) say which envs it is for at
  all; ``Lock.excludes`` words why an env is not one of them.

The project itself (uv's ``editable`` / ``virtual`` / ``directory`` sources,
pylock's ``directory``) is built from its folder, not fetched: it contributes
its dependencies only.  A package from git, a URL or a local archive is not a
release of the index and is refused, as a direct reference in a requirements
file is.  Where the files come from is ``modes/bundle_locks.py``'s business:
the upstream page, never the lock's URLs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from morgan_like.targets.environments import Environment

UV = "uv.lock"
PYLOCK = "pylock.toml"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SET_VARIABLES = re.compile(r"\b(extras|dependency_groups)\b")
# Subsets of a lock's extras and groups tried on a marker that names them: 2**10 at most.
_MAX_CHOICES = 10


@dataclass(frozen=True)
class LockedFile:
    """A file the lock names: the upstream copy must have this name and this sha256."""

    filename: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class LockedEdge:
    """A ``uv.lock`` dependency: the package it reaches (``version`` when the lock holds
    several of that name), under which marker, asking for which extras."""

    name: NormalizedName
    version: Version | None = None
    marker: Marker | None = None
    extras: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LockedPackage:
    """One locked package.  ``local``: the project itself or a folder dependency, built
    on the target from its source, never fetched.  ``marker`` / ``requires_python``
    are pylock's; ``dependencies``, ``optional`` and ``groups`` are uv's graph."""

    name: NormalizedName
    version: Version | None
    files: tuple[LockedFile, ...] = ()
    line: int | None = None
    local: bool = False
    marker: Marker | None = None
    requires_python: SpecifierSet | None = None
    dependencies: tuple[LockedEdge, ...] = ()
    optional: tuple[tuple[str, tuple[LockedEdge, ...]], ...] = ()
    groups: tuple[tuple[str, tuple[LockedEdge, ...]], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version is not None else str(self.name)


@dataclass(frozen=True)
class Lock:
    """A lock file as read.  ``digest``: sha256 of its bytes (the replay key covers it).
    ``environments``: pylock's environments or uv's supported-markers; ``forks``: uv's
    resolution-markers; ``roots``: indices of the packages uv's graph starts from;
    ``extras`` / ``groups``: what markers may ask for (pylock's declared ones, the
    conflict extras uv writes into its markers)."""

    path: Path
    kind: str
    digest: str
    packages: tuple[LockedPackage, ...]
    requires_python: SpecifierSet | None = None
    environments: tuple[Marker, ...] = ()
    forks: tuple[Marker, ...] = ()
    roots: tuple[int, ...] = ()
    extras: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def excludes(self, env: Environment) -> str | None:
        """Why the lock is not for ``env`` at all (None: it is)."""
        if self.requires_python is not None and not env.admits_python(self.requires_python):
            return f"its requires-python {self.requires_python} excludes Python {env.python_full_version}"
        for key, markers in (
            ("environments" if self.kind == PYLOCK else "supported-markers", self.environments),
            ("resolution-markers", self.forks),
        ):
            if markers and not any(self.holds(m, env) for m in markers):
                return f"none of its {key} holds there ({'; '.join(str(m) for m in markers)})"
        return None

    def holds(self, marker: Marker | None, env: Environment) -> bool:
        """Does ``marker`` hold in ``env`` for some choice of the lock's extras and groups?"""
        if marker is None:
            return True
        if self.kind == UV:  # uv's conflict markers: extra == 'extra-3-app-cpu'
            return env.evaluate(marker, self.extras)
        if not _SET_VARIABLES.search(_QUOTED.sub("", str(marker))):
            return env.evaluate(marker)
        for extras, groups in _choices(sorted(self.extras), sorted(self.groups)):
            values: dict[str, str | AbstractSet[str]] = dict(env.markers, extra="")
            values.update(extras=extras, dependency_groups=groups)
            if marker.evaluate(values, context="lock_file"):
                return True
        return False

    def packages_for(self, env: Environment) -> list[LockedPackage]:
        """The locked packages ``env`` installs (call ``excludes`` first)."""
        if self.kind == PYLOCK:
            return [
                p
                for p in self.packages
                if self.holds(p.marker, env)
                and (p.requires_python is None or env.admits_python(p.requires_python))
            ]
        return [self.packages[i] for i in sorted(self._reached(env))]

    def _reached(self, env: Environment) -> set[int]:
        """uv's graph walked from the roots, through the edges whose marker holds."""
        by_name: dict[str, list[int]] = {}
        for i, package in enumerate(self.packages):
            by_name.setdefault(package.name, []).append(i)
        asked: dict[int, set[str]] = {}
        todo: list[tuple[int, frozenset[str] | None]] = [(i, None) for i in self.roots]
        while todo:
            i, extras = todo.pop()
            package = self.packages[i]
            done = asked.get(i)
            if done is not None and (extras is None or extras <= done):
                continue
            asked.setdefault(i, set()).update(extras or ())
            edges = list(package.dependencies)
            for name, group in package.optional:
                if extras is None or name in extras:  # None: a root, every extra
                    edges += group
            if extras is None:
                edges += [e for _, group in package.groups for e in group]
            for edge in edges:
                if self.holds(edge.marker, env):
                    todo += [(j, edge.extras) for j in _targets(self.packages, by_name, edge)]
        return set(asked)


def _targets(
    packages: tuple[LockedPackage, ...], by_name: Mapping[str, list[int]], edge: LockedEdge
) -> list[int]:
    found = by_name.get(edge.name, [])
    if edge.version is not None:
        found = [i for i in found if packages[i].version == edge.version]
    return found


def _choices(
    extras: list[str], groups: list[str]
) -> Iterator[tuple[frozenset[str], frozenset[str]]]:
    """Every choice of extras and groups (all and none only, past ``_MAX_CHOICES`` names)."""
    names = [("e", x) for x in extras] + [("g", g) for g in groups]
    if len(names) > _MAX_CHOICES:
        yield frozenset(extras), frozenset(groups)
        yield frozenset(), frozenset()
        return
    for mask in itertools.product((False, True), repeat=len(names)):
        chosen = [n for n, on in zip(names, mask) if on]
        yield (
            frozenset(x for k, x in chosen if k == "e"),
            frozenset(g for k, g in chosen if k == "g"),
        )
