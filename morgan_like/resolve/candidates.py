"""Which upstream files an environment can use, and which one pip there would pick.

The resolver and the plan both need the same answer to "is this file usable in
this env" and "which wheel would pip choose", so it lives here once, beside the
records the resolver hands resolvelib (Req, Candidate).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.selection import FileSelection
from morgan_like.targets.environments import Environment

DEFAULT_PACKAGE_TYPE_REGEX = r"(whl|zip|tar\.gz)"


@dataclass(frozen=True)
class Req:
    """A requirement as the resolver sees it; ``pin`` ties an extras candidate to its base."""

    name: NormalizedName
    extras: frozenset[str] = frozenset()
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    pin: Version | None = None
    text: str = ""

    @classmethod
    def from_requirement(cls, req: Requirement) -> Req:
        return cls(
            name=canonicalize_name(req.name),
            extras=frozenset(canonicalize_name(e) for e in req.extras),
            specifier=req.specifier,
            text=str(req),
        )

    def __str__(self) -> str:
        return self.text or f"{self.name}=={self.pin}"

    @cached_property
    def pinned(self) -> bool:
        """An exact pin, which resolvelib should settle first (asked thousands of times)."""
        return self.pin is not None or any(s.operator in ("==", "===") for s in self.specifier)


@dataclass(frozen=True)
class Candidate:
    name: NormalizedName
    version: Version
    extras: frozenset[str]
    files: tuple[RemoteFile, ...]

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras} {self.version}"


def identifier(name: str, extras: Iterable[str]) -> str:
    extras = sorted(extras)
    return f"{name}[{','.join(extras)}]" if extras else name


@dataclass(frozen=True)
class FileFilter:
    """Morgan's ``--package-type-regex``: a regex on the file's extension; and a sync
    slice's file filters (``selection``), so that a dependency resolution never picks
    a file the slice leaves out."""

    package_type_regex: str = DEFAULT_PACKAGE_TYPE_REGEX
    _pattern: re.Pattern = field(init=False, repr=False, compare=False)
    selection: FileSelection | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(rf"\.{self.package_type_regex}$"))

    def allows(self, file: RemoteFile) -> bool:
        if not self._pattern.search(file.filename):
            return False
        return self.selection is None or self.selection.why_left_out(file) is None


def usable_files(
    files: Iterable[RemoteFile], env: Environment, file_filter: FileFilter
) -> list[RemoteFile]:
    """Files with a parseable version, allowed type, matching tags and Requires-Python."""
    usable = []
    for file in files:
        if file.version is None or not file_filter.allows(file):
            continue
        if file.is_wheel:
            if env.tag_priority(file.tags) is None:
                continue
        elif not file.is_sdist:
            continue
        if not env.admits_python(file.requires_python):
            continue
        usable.append(file)
    return usable


def group_by_version(files: Iterable[RemoteFile]) -> dict[Version, list[RemoteFile]]:
    grouped: dict[Version, list[RemoteFile]] = defaultdict(list)
    for file in files:
        if file.version is not None:
            grouped[file.version].append(file)
    return grouped


def _wheel_sort_key(env: Environment, file: RemoteFile) -> tuple:
    priority = env.tag_priority(file.tags)
    # pip prefers the best tag, then the highest build number.
    build = 0
    parts = file.filename[:-4].split("-")
    if len(parts) == 6 and parts[2][:1].isdigit():
        digits = re.match(r"\d+", parts[2])
        build = -int(digits.group(0)) if digits else 0
    return (priority if priority is not None else 1 << 30, build, file.filename)


def best_wheel(files: Iterable[RemoteFile], env: Environment) -> RemoteFile | None:
    """The wheel pip on ``env`` would choose: its highest-priority tag wins."""
    wheels = [f for f in files if f.is_wheel and env.tag_priority(f.tags) is not None]
    if not wheels:
        return None
    return min(wheels, key=lambda f: _wheel_sort_key(env, f))


def best_sdist(files: Iterable[RemoteFile]) -> RemoteFile | None:
    """One sdist per version; ``.tar.gz`` is the modern standard, so it wins."""
    sdists = [f for f in files if f.is_sdist]
    if not sdists:
        return None
    return min(sdists, key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename))


def metadata_file(files: Iterable[RemoteFile], env: Environment) -> RemoteFile:
    """The file whose metadata pip would read: the chosen wheel, else the sdist."""
    files = list(files)
    chosen = best_wheel(files, env) or best_sdist(files)
    if chosen is None:
        raise ValueError("no usable file")
    return chosen


def pick_files(
    files: Iterable[RemoteFile],
    env: Environment,
    *,
    all_wheels: bool = False,
    include_sdist: bool = True,
) -> list[RemoteFile]:
    """The files a pinned version contributes to the tree for ``env``."""
    files = list(files)
    chosen: list[RemoteFile] = []
    if all_wheels:
        chosen.extend(
            sorted(
                (f for f in files if f.is_wheel and env.tag_priority(f.tags) is not None),
                key=lambda f: _wheel_sort_key(env, f),
            )
        )
    else:
        wheel = best_wheel(files, env)
        if wheel is not None:
            chosen.append(wheel)
    sdist = best_sdist(files)
    if sdist is not None and (include_sdist or not chosen):
        chosen.append(sdist)
    return chosen


def likely_metadata_files(
    files: Iterable[RemoteFile], envs: Iterable[Environment], file_filter: FileFilter
) -> list[RemoteFile]:
    """For read-ahead: per env, the wheel of the newest final, unyanked usable version.

    Sdists are left out: reading one means downloading it, too dear for a guess.
    """
    files = list(files)
    guesses: dict[str, RemoteFile] = {}
    for env in envs:
        by_version = group_by_version(
            f for f in usable_files(files, env, file_filter) if not f.is_yanked
        )
        finals = [v for v in by_version if not v.is_prerelease] or list(by_version)
        if finals:
            wheel = best_wheel(by_version[max(finals)], env)
            if wheel is not None:
                guesses[wheel.url] = wheel
    return list(guesses.values())
