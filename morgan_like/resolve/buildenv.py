"""Throw-away build environments on this machine, filled from upstream through our client.

pip learns two things by running an sdist's backend in an isolated
environment: the build requirements the backend adds, and the dependencies of
an sdist whose metadata is not static.  BuildEnvs does the same for the
bundle: the sdist's static build requirements are resolved for *this*
interpreter (binary only: nothing is compiled here), their wheels are fetched
once into the hidden cache and unpacked into a private ``site`` directory per
requirement set, and resolve/hooks.py runs the hook there.  Nothing is
installed into any Python, and everything lives under one scratch directory
removed at close().
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name
from packaging.version import Version

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import DistMetadata, parse_core_metadata
from morgan_like.dists.sdist import BuildSystem
from morgan_like.dists.sdistread import SdistReader
from morgan_like.errors import MetadataError, MorganLikeError
from morgan_like.index.finder import Finder
from morgan_like.resolve.candidates import best_wheel
from morgan_like.resolve.hooks import (
    DEFAULT_TIMEOUT,
    Platform,
    dynamic_build_requires,
    hook_metadata,
    install_wheels,
    read_build_system,
    source_root,
    unpack_archive,
)
from morgan_like.resolve.resolver import ResolveOptions, resolve_env
from morgan_like.targets.environments import Environment
from morgan_like.targets.generate import local_markers
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.state import TreeState
from morgan_like.workers import WorkerProcesses

METADATA_FACT = "metadata:hook"
T = TypeVar("T")


def host_environment() -> Environment:
    """The interpreter running us, as an Environment: hooks run here."""
    version = platform.python_version()
    return Environment("this machine", local_markers(), list(sys_tags()), Version(version))


RAM_DIR = Path("/dev/shm")
RAM_PREFIX = "morgan-like-build-"
RAM_MIN_FREE = 1 << 30  # below this much free memory there, the tree's own tmp/ is used


def _make_scratch(tree_tmp: Path) -> Path:
    """Where sdists are unpacked and hook environments laid out.

    Hundreds of small files are created there while the downloads write and fsync
    into the tree; on the tree's filesystem those creations queue behind the
    journal's flushes, so a RAM-backed
    /dev/shm is used when there is one with room.  What a killed run left there
    is swept by the next (the pid in the name is no longer alive); otherwise the
    tree's hidden tmp/, which the next run sweeps too.
    """
    try:
        if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK):
            stat = os.statvfs(RAM_DIR)
            if stat.f_bavail * stat.f_frsize >= RAM_MIN_FREE:
                _sweep_ram_leftovers()
                return Path(tempfile.mkdtemp(prefix=f"{RAM_PREFIX}{os.getpid()}-", dir=RAM_DIR))
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="build-", dir=tree_tmp))


def _sweep_ram_leftovers() -> None:
    for leftover in RAM_DIR.glob(RAM_PREFIX + "*"):
        pid = leftover.name[len(RAM_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass  # alive under another user: not ours to remove


class ArchiveCache(Protocol):
    """Read file: where the run keeps the archives fetched before their download step
    (fetch.sdistcache.SdistCache), and the run's one reader of sdists."""

    tmp: Path
    sdists: SdistReader

    def get(self, file: RemoteFile, existing: Path | None = None) -> Path:
        """The archive on disk: ``existing`` when there, else fetched once for the run."""


class BuildEnvs:
    """Unpacked sdists and hook environments, each made once per run."""

    def __init__(
        self,
        finder: Finder,
        cache: ArchiveCache,
        options: ResolveOptions,
        *,
        state: TreeState | None = None,
        root: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        processes: WorkerProcesses | None = None,
    ) -> None:
        self.finder = finder
        # Unpacking is hundreds of small writes, each waiting for the GIL behind the
        # resolver threads: done in a worker process when there are any.
        self.processes = processes or WorkerProcesses()
        self.state = state
        self.root = root
        self.cache = cache
        self.options = replace(options, prefer_binary=True, hashes={}, constraints={}, hooks=None)
        self.timeout = timeout
        self.host = host_environment()
        self._scratch = _make_scratch(cache.tmp)
        self._lock = threading.Lock()
        self._sites: dict[str, Path] = {}
        self._sources: dict[str, Path] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._metadata: dict[str, DistMetadata] = {}
        self._raw_metadata: dict[str, bytes] = {}  # the metadata hooks' answers
        self._warm: dict[Path, threading.Event] = {}
        self._requires: dict[tuple[str, Platform], list[Requirement] | MetadataError] = {}
        # Hooks started ahead, while the resolution goes on (foresee).
        self._ahead = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hook-ahead")

    def _keyed(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def source(self, sdist: Path) -> Path:
        """The sdist unpacked (once) into the scratch directory.

        Keyed by its file name: the same sdist is first read from the download cache
        and later from the tree, where the downloader moved it.
        """
        key = sdist.name
        with self._keyed("src:" + key):
            if key not in self._sources:
                dest = self._scratch / "src" / hashlib.sha256(key.encode()).hexdigest()[:16]
                self.processes.run(unpack_archive, sdist, dest, priority=-1)  # a hook waits
                self._sources[key] = source_root(dest)
            return self._sources[key]

    def site(self, requires: Sequence[Requirement], origin: str) -> Path:
        """A directory holding the unpacked wheels of ``requires`` resolved for this machine."""
        key = "\n".join(sorted(str(r) for r in requires))
        with self._keyed("site:" + key):
            if key in self._sites:
                return self._sites[key]
            try:
                resolution = resolve_env(self.host, list(requires), self.finder, self.options)
            except MorganLikeError as exc:
                raise MetadataError(f"{origin}: cannot make its build environment: {exc}") from exc
            chosen: list[RemoteFile] = []
            for name, candidate in sorted(resolution.pins.items()):
                wheel: RemoteFile | None = best_wheel(candidate.files, self.host)
                if wheel is None:
                    raise MetadataError(
                        f"{origin}: cannot make its build environment: {name} "
                        f"{candidate.version} has no wheel for this machine"
                    )
                chosen.append(wheel)
            # Fetched side by side: the hook waits for the last of them.
            with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as fetch:
                wheels = list(
                    fetch.map(lambda w: self.cache.get(w, existing=self._in_tree(w)), chosen)
                )
            site = self._scratch / "site" / hashlib.sha256(key.encode()).hexdigest()[:16]
            self.processes.run(install_wheels, wheels, site, priority=-1)
            self._sites[key] = site
            return site

    def _in_tree(self, file: RemoteFile) -> Path | None:
        if self.root is None or file.project is None:
            return None
        return self.root / package_relpath(file.project, file.filename)

    def prepare(self, sdist: Path, filename: str) -> None:
        """Unpack ``sdist`` and lay out its build environment now, ahead of its hooks."""
        self._prepared(sdist, filename)

    def _prepared(self, sdist: Path, filename: str) -> tuple[Path, BuildSystem, Path]:
        if sdist.name not in self._sources:
            with contextlib.suppress(RuntimeError):  # closing
                self._ahead.submit(self._while_unpacking, sdist, filename)
        source = self.source(sdist)
        system = read_build_system(source, filename)
        return source, system, self.site(system.requires, filename)

    def _while_unpacking(self, sdist: Path, filename: str) -> None:
        """The build environment laid out from the archive's own pyproject.toml (read once
        per run, the same ``[build-system] requires`` as the unpacked one), its pages asked
        for first, while the sdist unpacks.  A failure is said by the hook's own turn."""
        with contextlib.suppress(MorganLikeError, OSError, ValueError, RuntimeError):
            requires = self.cache.sdists.build_requires(sdist)
            for req in requires:
                self.finder.prefetch_page(canonicalize_name(req.name))
            self.site(requires, filename)

    def build_requires(self, sdist: Path, filename: str, target: Platform) -> list[Requirement]:
        """What ``get_requires_for_build_wheel`` adds on ``target`` (asked once per run)."""
        key = (filename, target)
        with self._keyed(f"req:{filename}:{target}"):
            if key not in self._requires:
                try:
                    source, system, site = self._prepared(sdist, filename)
                    self._requires[key] = self._in_site(
                        site,
                        lambda: dynamic_build_requires(
                            source, system, site, target, timeout=self.timeout, origin=filename
                        ),
                    )
                except MetadataError as exc:
                    self._requires[key] = exc
            answer = self._requires[key]
        if isinstance(answer, MetadataError):
            raise answer
        return list(answer)

    def _in_site(self, site: Path, hook: Callable[[], T]) -> T:
        """Run ``hook``; the first hook of a fresh site runs alone.

        Its backend's modules are compiled on import and their .pyc left in the site,
        so the hooks after it start at once (the compile is most of a first hook's
        CPU); run beside the first, each would compile them all again.
        """
        with self._lock:
            ready = self._warm.get(site)
            first = ready is None
            if ready is None:
                ready = self._warm[site] = threading.Event()
        if not first:
            ready.wait()
        try:
            return hook()
        finally:
            ready.set()

    def foresee(self, file: RemoteFile, target: Platform) -> None:
        """Ask ``file``'s backend now, in the background, what it adds on ``target``.

        Resolution calls this when an env has no wheel of the sdist whose metadata it
        reads: the env will most likely build it, and the hook (a process importing
        the backend, 0.5 s for setuptools) then runs beside the rest of the
        resolution instead of after it.  The answer waits in ``build_requires``.

        When the sdist's dependencies are not static, resolution waits for its
        metadata hook next: that hook runs first (the first hook of a fresh site runs
        alone, see ``_in_site``), and the answer waits in ``metadata``.
        """

        def ask() -> None:
            try:
                path = self.cache.get(file, existing=self._in_tree(file))
                self._prepared(path, file.filename)  # unpacked while resolution reads it
                if self._needs_metadata_hook(path, file.sha256):
                    self._hook_metadata(path, file.filename)
                self.build_requires(path, file.filename, target)
            except (MorganLikeError, OSError, ValueError):
                pass  # said when the build step asks

        with contextlib.suppress(RuntimeError):  # closing: the build step asks itself
            self._ahead.submit(ask)

    def metadata(self, sdist: Path, filename: str, sha256: str | None = None) -> DistMetadata:
        """The sdist's metadata as its backend computes it (prepare_metadata, else a build).

        Once per run per sdist, and remembered in the tree state by ``sha256``, so a
        re-run runs no hook.
        """
        with self._keyed("meta:" + filename):
            if filename in self._metadata:
                return self._metadata[filename]
            known = self.state.fact(sha256, METADATA_FACT) if self.state and sha256 else None
            if known is not None:
                raw = known.encode("utf-8")
            else:
                raw = self._hook_metadata(sdist, filename)
                if self.state is not None and sha256:
                    self.state.set_fact(sha256, METADATA_FACT, raw.decode("utf-8", "replace"))
            meta = parse_core_metadata(raw, filename, source="backend hook")
            self._metadata[filename] = meta
            return meta

    def _needs_metadata_hook(self, sdist: Path, sha256: str | None) -> bool:
        """Will resolution ask this sdist's metadata hook?  Its dependencies are not
        static (the run's one read of the archive says so) and no earlier run's hook
        answered."""
        if self.state is not None and sha256 and self.state.fact(sha256, METADATA_FACT):
            return False
        return self.cache.sdists.facts(sdist).metadata is None

    def _hook_metadata(self, sdist: Path, filename: str) -> bytes:
        """The metadata hook's answer, run once per run per sdist (a failure is not
        kept: ``metadata`` asks again and says it)."""
        with self._keyed("meta-hook:" + filename):
            raw = self._raw_metadata.get(filename)
            if raw is None:
                source, system, site = self._prepared(sdist, filename)
                raw = self._in_site(
                    site,
                    lambda: hook_metadata(
                        source, system, site, timeout=self.timeout, origin=filename
                    ),
                )
                self._raw_metadata[filename] = raw
            return raw

    def close(self) -> None:
        self._ahead.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._scratch, ignore_errors=True)
