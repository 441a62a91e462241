"""What a resolution is asked and what it gives back: ``ResolveOptions`` (the policy,
the config's constraints, hashes and overrides, the backends' hooks, the run's shared
page views) and ``EnvResolution`` (one env's pins, with why and where from).

Records only: resolve/resolver.py fills them in and is where the stages import them from.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import DistMetadata
from morgan_like.resolve.candidates import Candidate, FileFilter, group_by_version
from morgan_like.resolve.report import BuildSdist, Fallback
from morgan_like.targets.environments import Environment


class BuildHooks(Protocol):
    """Ask hook: what the run's backend hooks tell the resolver (resolve/buildenv.py)."""

    def metadata(self, file: RemoteFile) -> DistMetadata:
        """An sdist's dependencies from its backend's metadata hook, when not static."""

    def foresee(self, file: RemoteFile, env: Environment) -> None:
        """``env`` reads the metadata of an sdist it has no wheel of: it will most likely
        build it, so its backend may be asked ahead.  Never changes the answer."""


class PageViews:
    """What every resolution of a run derives from a page the same way, made once per
    run: the page's files by version and its versions newest first, and an env's usable
    files by version (filled in as versions are asked for: most pages list far more
    versions than are ever tried), so the many small build-requirement resolutions do
    not filter setuptools' thousand files again each time.

    Keyed by value (project name, env, file filter); each answer keeps the page it was
    made from, and a different page of that name (another Finder's) is made again.
    Two threads may both compute one; the first answer is kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[
            str, tuple[ProjectPage, dict[Version, list[RemoteFile]], list[Version]]
        ] = {}
        self._usable: dict[
            tuple[str, Environment, FileFilter], tuple[ProjectPage, dict[Version, list[RemoteFile]]]
        ] = {}

    def versions(self, page: ProjectPage) -> tuple[dict[Version, list[RemoteFile]], list[Version]]:
        with self._lock:
            known = self._versions.get(page.name)
        if known is None or known[0] is not page:
            by_version = dict(group_by_version(page.files))
            made = (page, by_version, sorted(by_version, reverse=True))
            with self._lock:
                known = self._versions.setdefault(page.name, made)
            if known[0] is not page:
                known = made
        return known[1], known[2]

    def usable(
        self, page: ProjectPage, env: Environment, file_filter: FileFilter
    ) -> dict[Version, list[RemoteFile]]:
        key = (page.name, env, file_filter)
        with self._lock:
            known = self._usable.get(key)
            if known is None or known[0] is not page:
                known = self._usable[key] = (page, {})
            return known[1]


@dataclass(frozen=True)
class ResolveOptions:
    file_filter: FileFilter = field(default_factory=FileFilter)
    pre: bool = False
    max_rounds: int = 20000
    # pip's --prefer-binary, per project and env: a version with a wheel for the env
    # beats a newer sdist-only one, because air-gapped targets rarely have compilers.
    prefer_binary: bool = True
    # ``-c`` constraints: they narrow a project's versions wherever it appears, but
    # never bring a project in.
    constraints: Mapping[NormalizedName, SpecifierSet] = field(default_factory=dict)
    # ``--hash=sha256:...`` of requirement lines: only those files may be used.
    hashes: Mapping[NormalizedName, frozenset[str]] = field(default_factory=dict)
    # morgan.ini [dependencies]: "name==version = lines", used instead of the metadata.
    dependency_overrides: Mapping[tuple[NormalizedName, Version], tuple[Requirement, ...]] = field(
        default_factory=dict
    )
    # The backends' hooks (resolve/buildenv.py): an sdist's dependencies when they are
    # not static, and a word ahead of each sdist an env will most likely build.  None is
    # --static-metadata-only.
    hooks: BuildHooks | None = None
    # Shared by every copy (dataclasses.replace) of the run's options.
    views: PageViews = field(default_factory=PageViews, compare=False, repr=False)


@dataclass
class EnvResolution:
    """The pins of one env: project -> (version, usable files of that version)."""

    env: Environment
    pins: dict[NormalizedName, Candidate]
    parents: dict[NormalizedName, str]
    problems: list[str]
    # Projects this env can only get as an sdist (a build on the target), and why.
    sdist_only: dict[NormalizedName, str] = field(default_factory=dict)
    # Binary first fell back far: an old release with a wheel over a much newer one.
    fallbacks: dict[NormalizedName, Fallback] = field(default_factory=dict)
    # Build requirements of the sdists this env builds that are themselves only sdists
    # here; filled in by resolve/builddeps.py, which learns them after resolution.
    build_sdists: list[BuildSdist] = field(default_factory=list)
