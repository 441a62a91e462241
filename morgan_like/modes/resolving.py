"""The machinery a resolving run owns, for ``mirror`` (bundles) and curated ``sync`` slices.

Both resolve requirements per env the same way and fetch what the resolutions
pick: one Finder (pages and metadata read ahead, shared by every resolution),
one SdistCache (each sdist fetched once, read in a worker process), the
backends' hook environments (BuildEnvs) unless ``--static-metadata-only``,
BuildFacts (each sdist's build requirements, remembered by sha256), and a
Downloader into the tree (none for a dry run).  ``ResolveSession`` builds them
in the order they need each other and closes them in one ExitStack, so a mode
holds one object instead of six and cannot forget to close one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import Requirement

from morgan_like.dists.archive import MAX_METADATA
from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import DistMetadata, parse_core_metadata
from morgan_like.dists.sdistread import SdistFacts, SdistReader
from morgan_like.fetch.download import Downloader, DownloadResult
from morgan_like.fetch.sdistcache import SdistCache
from morgan_like.index.finder import Finder
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop
from morgan_like.modes.bundle_report import download_log
from morgan_like.modes.files_ahead import FilesAhead
from morgan_like.output import Reporter
from morgan_like.resolve.builddeps import BuildFacts, BuildRequirements
from morgan_like.resolve.buildenv import BuildEnvs
from morgan_like.resolve.candidates import likely_metadata_files
from morgan_like.resolve.plan import Plan, PlannedFile
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import METADATA_SUFFIX, package_relpath
from morgan_like.tree.state import TreeState
from morgan_like.workers import WorkerProcesses, default_processes


@dataclass(frozen=True)
class SessionRequest:
    """What a resolving run asks of its session.

    ``root``: the tree; ``scratch``: where sdists and temp files go (the tree when
    it is locked, a private folder for a dry run); ``dry_run``: nothing is downloaded
    into the tree (no Downloader); ``requirements``: the run's own, which the files
    fetched ahead of the plan keep to (modes/files_ahead.py).
    """

    root: Path
    scratch: Path
    envs: tuple[Environment, ...]
    workers: int
    static_metadata_only: bool = False
    dry_run: bool = False
    requirements: tuple[Requirement, ...] = ()


class TreeSdists:
    """The run's answer to the build step's requests for sdists (resolve.builddeps.SdistSource).

    An sdist the tree has is read there; with a Downloader, one of the plan is asked
    for first (ahead of the queued wheels) and read from the tree when it lands, so
    nothing is fetched twice; a dry run reads it from the sdist cache (fetched there
    once) and downloads nothing.
    """

    def __init__(self, cache: SdistCache, root: Path, downloader: Downloader | None) -> None:
        self.cache = cache
        self.root = root
        self.downloader = downloader

    def path(self, entry: PlannedFile) -> Path:
        if self.downloader is not None:
            self.downloader.now(entry.file, entry.relpath)
        path = self.cache.get(entry.file, existing=self.root / entry.relpath)
        self.cache.sdists.same(path, entry.file.sha256)  # a copy of one read is not read again
        return path

    def here(self, entry: PlannedFile) -> bool:
        return self.cache.cached(entry.file) or (self.root / entry.relpath).exists()

    def want(self, entries: list[PlannedFile]) -> None:
        if self.downloader is not None:
            self.downloader.submit_all((entry.file, entry.relpath) for entry in entries)


class SessionPages:
    """The run's answers to the Finder (index.finder.FinderRequests): an sdist from the
    tree or the sdist cache; the files of a page each env would most likely pick, read
    ahead; a dependency followed when some env's markers take it; a wheel's metadata
    from the tree when this tree already holds it, verified."""

    def __init__(
        self,
        cache: SdistCache,
        root: Path,
        envs: tuple[Environment, ...],
        policy: ResolveOptions,
        state: TreeState | None,
        ahead: FilesAhead | None = None,
    ) -> None:
        self.cache, self.root, self.envs, self.policy, self.state = cache, root, envs, policy, state
        self.ahead = ahead

    def sdist(self, file: RemoteFile) -> Path:
        return self.cache.get(file, existing=in_tree(self.root, file))

    def likely_metadata(self, page: ProjectPage) -> list[RemoteFile]:
        if self.ahead is not None:  # the files the plan will most likely hold, fetched now
            self.ahead.guess(page.files)
        return likely_metadata_files(page.files, self.envs, self.policy.file_filter)

    def applies(self, requirement: Requirement) -> bool:
        applies = any(env.evaluate(requirement.marker) for env in self.envs)
        if applies and self.ahead is not None:
            self.ahead.want(requirement)  # its page comes next: a guess there is one it allows
        return applies

    def kept_metadata(self, file: RemoteFile) -> DistMetadata | None:
        return None if self.state is None else tree_metadata(self.root, self.state, file)


class SessionHooks:
    """The resolver's requests to the backends' hooks (resolve.records.BuildHooks):
    an sdist's metadata from its metadata hook, and a word ahead of each sdist an env
    will most likely build (its get_requires_for_build_wheel started early)."""

    def __init__(self, buildenvs: BuildEnvs, sdists: TreeSdists, facts: BuildFacts) -> None:
        self.buildenvs = buildenvs
        self.sdists = sdists
        self.facts = facts

    def metadata(self, file: RemoteFile) -> DistMetadata:
        path = self.sdists.cache.get(file, existing=in_tree(self.sdists.root, file))
        return self.buildenvs.metadata(path, file.filename, file.sha256)

    def foresee(self, file: RemoteFile, env: Environment) -> None:
        self.facts.foresee(file, env)


class ResolveSession:
    """Finder, sdist cache, hook environments, build facts and downloader of one run.

    ``policy``: how to resolve (filters, pre, overrides); the session's ``options`` are
    those with its hooks (none with static metadata only), made once, before any
    resolution starts, and never changed.
    """

    def __init__(
        self,
        request: SessionRequest,
        upstream: Upstream,
        state: TreeState | None,
        policy: ResolveOptions,
        reporter: Reporter,
        stop: Stop,
    ) -> None:
        self._stack = ExitStack()
        root = request.root
        try:
            self.processes = WorkerProcesses(default_processes())
            self._stack.callback(self.processes.close)
            self._hooks_wanted = not request.static_metadata_only
            self.cache = cache = SdistCache(
                upstream, request.scratch, SdistReader(self.processes), stop=stop
            )
            # A run that downloads fetches what its plan will most likely hold while it
            # resolves (modes/files_ahead.py), until the plan is known (build_requirements).
            self._ahead: FilesAhead | None = None
            if not request.dry_run:
                self._ahead = FilesAhead(cache, root, request.envs, policy.file_filter)
                self._stack.callback(self._ahead.close)
                for requirement in request.requirements:
                    self._ahead.want(requirement)
            self.finder = Finder(
                upstream,
                SessionPages(cache, root, request.envs, policy, state, self._ahead),
                workers=max(request.workers, 16),
                on_problem=reporter.warn,
                sdists=cache.sdists,
                stop=stop,
            )
            self._stack.callback(self.finder.close)
            self.downloader: Downloader | None = None
            if not request.dry_run:
                assert state is not None, "a run that downloads records what it placed"
                self.downloader = Downloader(
                    upstream,
                    root,
                    state,
                    cache=cache,
                    workers=request.workers,
                    on_done=download_log(reporter),
                    stop=stop,
                )
                self._stack.callback(self.downloader.close)
            self.sdists = TreeSdists(cache, root, self.downloader)
            self.buildenvs: BuildEnvs | None = None
            if not request.static_metadata_only:
                self.buildenvs = BuildEnvs(
                    self.finder, cache, policy, state=state, root=root, processes=self.processes
                )
                self._stack.callback(self.buildenvs.close)
            self.facts = BuildFacts(self.sdists, cache.sdists, state, self.buildenvs)
            hooks = None
            if self.buildenvs is not None:
                hooks = SessionHooks(self.buildenvs, self.sdists, self.facts)
            self.options = replace(policy, hooks=hooks)
        except BaseException:
            self._stack.close()
            raise

    def close(self) -> None:
        """Everything closed in the reverse order of its making."""
        self._stack.close()

    def __enter__(self) -> ResolveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolving(self) -> None:
        """A resolution begins: the worker processes start now, beside its first page
        fetches, so the first sdist an env has no wheel of is unpacked for its hook the
        moment it arrives.  A run that replays its last plan never calls this, and
        never starts them (a spawned interpreter costs ~0.1 s of CPU)."""
        if self._hooks_wanted:
            self.processes.warm()

    def submit(self, entries: list[PlannedFile]) -> None:
        """Queue each entry's download (no-op for a dry run) and read ahead the pages its
        build requirements will want."""
        self.sdists.want(entries)
        self.facts.prefetch_pages(entries, self.finder)

    def build_requirements(self, plan: Plan, resolutions: list[EnvResolution]) -> int:
        """The build step (resolve.builddeps) over ``plan``; a dry run reads only the
        sdists already on disk.  Returns how many sdists were not read."""
        if self._ahead is not None:
            self._ahead.planned()
        step = BuildRequirements(
            plan, self.finder, self.options, self.facts, fetch_sdists=self.downloader is not None
        )
        return step.add(resolutions)

    def sdists_read(self, plan: Plan) -> list[tuple[str, SdistFacts]]:
        """(sha256, what was read) of each sdist of the plan this run read, without
        reading any: the SBOM's licences come from these (tree/licences.py)."""
        found = []
        for entry in plan.files.values():
            if entry.file.is_sdist and entry.file.sha256:
                facts = self.cache.sdists.known(self.sdists.root / entry.relpath, entry.file.sha256)
                if facts is not None:
                    found.append((entry.file.sha256, facts))
        return found

    def abandon(self) -> None:
        """Take back every file and folder this run's downloads added (none in a dry run)."""
        if self.downloader is not None:
            self.downloader.abandon()

    def await_downloads(
        self, plan: Plan, reporter: Reporter, during: Callable[[], object] | None = None
    ) -> list[DownloadResult]:
        """Queue whatever the plan has that is not queued yet, run ``during`` (which may add
        to the plan) while the files arrive, then wait for all, with a progress bar."""
        downloader = self.downloader
        assert downloader is not None, "a dry run downloads nothing"
        downloader.submit_all((entry.file, entry.relpath) for entry in plan.files.values())
        with reporter.transferring("Downloading", plan.total_size) as counter:
            downloader.attach(counter.advance)
            if during is not None:
                during()
                downloader.submit_all((e.file, e.relpath) for e in plan.files.values())
                counter.set_total(plan.total_size)
            return downloader.results()


def tree_metadata(root: Path, state: TreeState, file: RemoteFile) -> DistMetadata | None:
    """A wheel already in the tree, verified with upstream's sha256, has its METADATA
    next to it (the PEP 658 file we serve): a re-run reads that, not upstream."""
    if not file.is_wheel or file.project is None or not file.sha256:
        return None
    relpath = package_relpath(file.project, file.filename)
    if not state.is_verified(relpath, file.sha256):
        return None
    try:
        with open(root / (relpath + METADATA_SUFFIX), "rb") as handle:
            raw = handle.read(MAX_METADATA + 1)
    except OSError:
        return None
    if len(raw) > MAX_METADATA:
        return None
    return parse_core_metadata(raw, file.filename, source="tree")


def in_tree(root: Path, file: RemoteFile) -> Path | None:
    """A file a previous run already placed in the tree is read there, not fetched again."""
    if file.project is None:
        return None
    return root / package_relpath(file.project, file.filename)
