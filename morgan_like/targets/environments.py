"""Target environments: one client machine each, as the resolver and planner see it.

An Environment is the full PEP 508 marker environment (to evaluate dependency
markers) and the wheel tags it accepts, best first (to pick files).  It is made
from an ``[env.NAME]`` section of morgan.ini by ``config.envsections``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from packaging.markers import Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

MARKER_KEYS = (
    "os_name",
    "sys_platform",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_version",
    "python_full_version",
    "implementation_name",
    "implementation_version",
)
# morgan's own keys: platform_tag (sysconfig.get_platform()) and whl.tag.* regex filters.
MORGAN_KEYS = ("platform_tag", "whl.tag.interpreter", "whl.tag.abi", "whl.tag.platform")
TAG_KEYS = ("tags", "platform_tags", "manylinux", "musllinux", "macos", "free_threaded")
# What a bundle may put in this env's view: "binary-only" lets no sdist in.
BUNDLE_KEYS = ("binary-only",)
VALID_KEYS = MARKER_KEYS + MORGAN_KEYS + TAG_KEYS + BUNDLE_KEYS
# An env's name is also the folder of its index view (envs/NAME/simple/): one path
# segment that every file system and URL keeps as it is.
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class Environment:
    """One client machine: PEP 508 markers and accepted wheel tags, best first."""

    name: str
    markers: dict[str, str]
    tags: list[Tag]
    python_full_version: Version
    # No sdist for this env: a project without a usable wheel is an error, never a build
    # on the target ([env.NAME] binary-only, else [mirror] binary-only).
    binary_only: bool = False
    _priority: dict[Tag, int] = field(init=False, repr=False, compare=False)
    # Requires-Python text -> does it admit this env: pages repeat a few values over
    # thousands of files, and SpecifierSet.contains is the costly part.
    _admits: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._admits = {}
        # First occurrence wins so that a duplicated tag keeps its best rank.
        self._priority = {}
        for i, tag in enumerate(self.tags):
            self._priority.setdefault(tag, i)

    def __hash__(self) -> int:
        return hash(self.name)

    def tag_priority(self, tags: Iterable[Tag]) -> int | None:
        """Best (lowest) rank among a wheel's tags; None when this env accepts none of them."""
        get = self._priority.get
        best: int | None = None
        for tag in tags:
            rank = get(tag)
            if rank is not None and (best is None or rank < best):
                best = rank
        return best

    def evaluate(self, marker: Marker | None, extras: Collection[str] = ()) -> bool:
        """Does ``marker`` hold here, for no extra or for any of ``extras`` (as pip does)?"""
        if marker is None:
            return True
        env = dict(self.markers)
        for extra in ("", *(canonicalize_name(e) for e in extras)):
            env["extra"] = extra
            if marker.evaluate(env):
                return True
        return False

    def admits_python(self, requires_python: str | SpecifierSet | None) -> bool:
        """Does a file's Requires-Python admit this env? Invalid upstream values admit (pip ignores them)."""
        if requires_python is None:
            return True
        if isinstance(requires_python, str):
            known = self._admits.get(requires_python)
            if known is None:
                spec = _specifier(requires_python)
                known = spec is None or spec.contains(self.python_full_version, prereleases=True)
                self._admits[requires_python] = known
            return known
        return requires_python.contains(self.python_full_version, prereleases=True)


@lru_cache(maxsize=4096)
def _specifier(text: str) -> SpecifierSet | None:
    try:
        return SpecifierSet(text.strip())
    except InvalidSpecifier:
        return None
