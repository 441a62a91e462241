"""The files a resolution will most likely plan, fetched before it has finished.

Each env's files are queued for download once the env has resolved, and an env
that meets an sdist with dynamic metadata waits for that sdist's metadata hook (a
process importing its backend: a second or more) with the network idle.  While
the pages come in, ``FilesAhead`` fetches, into the run's sdist cache, the files
the plan will hold if each env picks what it most likely picks (the wheel and
sdist of the newest final release with a wheel for it, as the metadata read-ahead
guesses, among the releases every requirement on the project seen so far allows:
the config's, and those of the metadata that led to its page), and reads each sdist after every read someone waits for.  The
download step takes a cached file by a hard link instead of fetching it
(fetch.sdistcache.SdistCache.take), keeping its identity, so the build step finds
each guessed sdist already read.  A wrong guess costs its bytes and its read only: the plan, and so
the tree, is what the resolutions decide; the cache is swept at the end of the run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from morgan_like.dists.links import RemoteFile
from morgan_like.errors import MorganLikeError
from morgan_like.fetch.sdistcache import SdistCache
from morgan_like.resolve.candidates import (
    FileFilter,
    best_wheel,
    group_by_version,
    pick_files,
    usable_files,
)
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import package_relpath

if TYPE_CHECKING:
    from morgan_like.config.locks import Lock

# A few connections: enough to keep the network busy while a hook runs, few enough
# that a file resolution waits for (an sdist to read, a build environment's wheel)
# is not starved of bandwidth.
AHEAD_CONNECTIONS = 4
AHEAD_READS = 4  # threads waiting for a worker process to read a guessed sdist
# A wrong guess costs its bytes: a file larger than this (or of no stated size) is left
# to the download step, which fetches only what the plan holds.
MAX_GUESS_BYTES = 16 << 20


def likely_plan_files(
    files: Iterable[RemoteFile],
    envs: Iterable[Environment],
    file_filter: FileFilter,
    allowed: SpecifierSet | None = None,
) -> list[RemoteFile]:
    """Per env, the files the plan holds if the env picks the newest final, unyanked
    usable release (of those ``allowed``) that has a wheel for it (the metadata
    read-ahead's guess).

    Releases are tried newest first and only the files of the one tried are checked for
    the env: a page may list thousands of files, and this runs for each page a run reads.
    """
    by_version = group_by_version(f for f in files if not f.is_yanked)
    newest_first = sorted(
        (v for v in by_version if allowed is None or allowed.contains(v, prereleases=True)),
        reverse=True,
    )
    guesses: dict[str, RemoteFile] = {}
    for env in envs:
        release = _newest_usable(newest_first, by_version, env, file_filter)
        if release is None or best_wheel(release, env) is None:
            continue  # nothing usable, or binary first may pick an older release: no guess
        for file in pick_files(release, env):
            if file.is_wheel or not env.binary_only:
                guesses[file.url] = file
    return list(guesses.values())


def _newest_usable(
    newest_first: list[Version],
    by_version: dict[Version, list[RemoteFile]],
    env: Environment,
    file_filter: FileFilter,
) -> list[RemoteFile] | None:
    """The usable files of the newest final release that has any; of the newest
    prerelease when no final release has any."""
    for finals in (True, False):
        for version in newest_first:
            if version.is_prerelease == finals:
                continue
            usable = usable_files(by_version[version], env, file_filter)
            if usable:
                return usable
    return None


def locked_pins(locks: Iterable[Lock]) -> list[Requirement]:
    """Each version a lock pins, as a requirement: a locked run bundles those, and a
    guess elsewhere would be fetched for nothing."""
    return [
        Requirement(f"{package.name}=={package.version}")
        for lock in locks
        for package in lock.packages
        if package.version is not None and not package.local
    ]


class FilesAhead:
    """Guessed files fetched into the sdist cache on a few threads of their own."""

    def __init__(
        self,
        cache: SdistCache,
        root: Path,
        envs: tuple[Environment, ...],
        file_filter: FileFilter,
    ) -> None:
        self.cache, self.root, self.envs, self.file_filter = cache, root, envs, file_filter
        self._lock = threading.Lock()
        self._allowed: dict[NormalizedName, SpecifierSet] = {}
        self._envs: dict[NormalizedName, tuple[Environment, ...]] = {}  # those it applies to
        self._pool = ThreadPoolExecutor(AHEAD_CONNECTIONS, thread_name_prefix="files-ahead")
        self._reads = ThreadPoolExecutor(AHEAD_READS, thread_name_prefix="reads-ahead")

    def want(self, requirement: Requirement) -> None:
        """A requirement on a project (the config's, or a dependency that applies): a
        guess among its releases is one it allows, for the envs whose markers take it."""
        name = canonicalize_name(requirement.name)
        takers = tuple(e for e in self.envs if e.evaluate(requirement.marker))
        with self._lock:
            self._allowed[name] = self._allowed.get(name, SpecifierSet()) & requirement.specifier
            known = self._envs.get(name, ())
            have = {e.name for e in known}
            self._envs[name] = known + tuple(e for e in takers if e.name not in have)

    def guess(self, files: Iterable[RemoteFile]) -> None:
        """A fresh page's files: fetch the ones the plan will most likely hold."""
        files = list(files)
        name = next((f.project for f in files if f.project), None)
        key = canonicalize_name(name) if name else None
        with self._lock:
            allowed = self._allowed.get(key) if key else None
            envs = self._envs.get(key, self.envs) if key else self.envs
        for file in likely_plan_files(files, envs, self.file_filter, allowed):
            if file.size is None or file.size > MAX_GUESS_BYTES:
                continue
            with contextlib.suppress(RuntimeError):  # closed: the run has its plan
                self._pool.submit(self._fetch, file)

    def _fetch(self, file: RemoteFile) -> None:
        existing = None
        if file.project is not None:
            existing = self.root / package_relpath(file.project, file.filename)
        with contextlib.suppress(MorganLikeError, OSError, ValueError):
            path = self.cache.get(
                file, existing=existing
            )  # a failure is met again by whoever needs it
            if file.is_sdist:
                # Read too, on threads of their own (a read waits its turn for a worker
                # process, after every read a resolution waits for): the build step
                # asks each planned sdist's build requirements the moment it starts.
                with contextlib.suppress(RuntimeError):  # closed
                    self._reads.submit(self._read, path, file.sha256)

    def _read(self, path: Path, sha256: str | None) -> None:
        with contextlib.suppress(MorganLikeError, OSError, ValueError):
            self.cache.sdists.facts(path, ahead=True, sha256=sha256)

    def planned(self) -> None:
        """The plan is known: no guess starts from now on; the fetches and reads under
        way, and the reads queued, go on (the build step waits for those it needs)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """The end of the run: what no one waited for is dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._reads.shutdown(wait=True, cancel_futures=True)
