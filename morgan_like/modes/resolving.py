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
from dataclasses import dataclass
from pathlib import Path

from morgan_like.dists.archive import MAX_METADATA
from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import DistMetadata, parse_core_metadata
from morgan_like.dists.sdistread import SdistReader
from morgan_like.fetch.download import Downloader, DownloadResult, SdistCache
from morgan_like.index.finder import Finder
from morgan_like.index.upstream import Upstream
from morgan_like.interrupt import Stop
from morgan_like.modes.bundle_report import download_log
from morgan_like.output import Reporter
from morgan_like.resolve.builddeps import BuildFacts
from morgan_like.resolve.buildenv import BuildEnvs
from morgan_like.resolve.candidates import likely_metadata_files
from morgan_like.resolve.plan import Plan, PlannedFile
from morgan_like.resolve.resolver import ResolveOptions
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import METADATA_SUFFIX, package_relpath
from morgan_like.tree.state import TreeState
from morgan_like.workers import Workers, default_processes


@dataclass(frozen=True)
class SessionRequest:
    """What a resolving run asks of its session.

    ``root``: the tree; ``scratch``: where sdists and temp files go (the tree when
    it is locked, a private folder for a dry run); ``state`` None is a dry run (no
    downloads into the tree).
    """

    root: Path
    scratch: Path
    envs: tuple[Environment, ...]
    workers: int
    static_metadata_only: bool = False


class ResolveSession:
    """Finder, sdist cache, hook environments, build facts and downloader of one run.

    ``ropts`` gets the session's ``dynamic_metadata`` (the backend's metadata hook,
    unless static metadata only) and ``foresee_build``: set here, once, before any
    resolution starts.
    """

    def __init__(
        self,
        request: SessionRequest,
        upstream: Upstream,
        state: TreeState | None,
        ropts: ResolveOptions,
        reporter: Reporter,
        stop: Stop,
    ) -> None:
        self._stack = ExitStack()
        root = request.root
        try:
            self.processes = Workers(default_processes())
            self._stack.callback(self.processes.close)
            if not request.static_metadata_only:
                # Started now, beside the first page fetches: the first sdist an env has no
                # wheel of is unpacked for its hook the moment it arrives.
                self.processes.warm()
            self.cache = cache = SdistCache(
                upstream, request.scratch, SdistReader(self.processes), stop=stop
            )
            envs = request.envs
            self.finder = Finder(
                upstream,
                lambda f: cache.get(f, existing=in_tree(root, f)),
                workers=max(request.workers, 16),
                lookahead=lambda page: likely_metadata_files(page.files, envs, ropts.file_filter),
                follow=lambda req: any(env.evaluate(req.marker) for env in envs),
                on_problem=reporter.warn,
                sdists=cache.sdists,
                known_metadata=None if state is None else lambda f: tree_metadata(root, state, f),
                stop=stop,
            )
            self._stack.callback(self.finder.close)
            self.downloader: Downloader | None = None
            if state is not None:
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
            self.buildenvs: BuildEnvs | None = None
            if not request.static_metadata_only:
                self.buildenvs = buildenvs = BuildEnvs(
                    self.finder, cache, ropts, state=state, root=root, workers=self.processes
                )
                self._stack.callback(buildenvs.close)

                def dynamic_metadata(file: RemoteFile) -> DistMetadata:
                    path = cache.get(file, existing=in_tree(root, file))
                    return buildenvs.metadata(path, file.filename, file.sha256)

                ropts.dynamic_metadata = dynamic_metadata
            self.facts = BuildFacts(cache, root, state, self.buildenvs, downloader=self.downloader)
            ropts.foresee_build = self.facts.foresee
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

    def submit(self, entries: list[PlannedFile]) -> None:
        """Queue each entry's download (no-op for a dry run) and read ahead the pages its
        build requirements will want."""
        if self.downloader is not None:
            for entry in entries:
                self.downloader.submit(entry.file, entry.relpath)
        self.facts.prefetch_pages(entries, self.finder)

    def await_downloads(
        self, plan: Plan, reporter: Reporter, during: Callable[[], object] | None = None
    ) -> list[DownloadResult]:
        """Queue whatever the plan has that is not queued yet, run ``during`` (which may add
        to the plan) while the files arrive, then wait for all, with a progress bar."""
        downloader = self.downloader
        assert downloader is not None, "a dry run downloads nothing"
        for entry in plan.files.values():
            downloader.submit(entry.file, entry.relpath)
        with reporter.transferring("Downloading", plan.total_size) as counter:
            downloader.attach(counter.advance)
            if during is not None:
                during()
                for entry in plan.files.values():
                    downloader.submit(entry.file, entry.relpath)
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
