"""What a ``mirror`` run was asked (``MirrorOptions``, from the command line) and the
flags settled over the config once (``BundleSettings``): the command line wins, the
config's ``[mirror]`` section fills the rest, and every options record the run hands
its stages is built whole here, never changed after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from morgan_like.config.ini import Config
from morgan_like.config.options import parse_bool
from morgan_like.fetch.download import DEFAULT_WORKERS
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.modes.bundle_replay import replay_key
from morgan_like.resolve.candidates import FileFilter
from morgan_like.resolve.resolver import ResolveOptions

if TYPE_CHECKING:
    # Imported where a diff-file is asked for: a run without one never imports publish
    # before it has something to write.
    from morgan_like.tree.publish import DiffRequest


@dataclass
class MirrorOptions:
    index_path: Path
    config_path: Path | None = None
    index_url: str | None = None
    mirror_all_versions: bool = False
    mirror_all_wheels: bool = False
    package_type_regex: str | None = None
    pre: bool = False
    dry_run: bool = False
    workers: int | None = None
    diff_file: str | None = None
    diff_append_epoch: bool = False
    prune: bool = False
    skip_server_copy: bool = False
    wait_lock: float | None = None  # seconds to wait for another run's tree lock (None: refuse)
    prefer_binary: bool | None = None  # None: [mirror] prefer-binary (default true)
    static_metadata_only: bool = False  # never run a backend hook; refuse instead
    # False: a redirect to another host fails its request (--no-cross-host-redirects);
    # None: [mirror] cross-host-redirects, else followed with one warning per host.
    cross_host_redirects: bool | None = None


@dataclass(frozen=True)
class BundleSettings:
    """The run's flags settled over the config once (the command line wins): where from,
    how to resolve (the policy the session adds its hooks to), how many downloads at
    once, the diff-file, and the key a kept plan must match to be replayed."""

    index_url: str
    policy: ResolveOptions
    workers: int
    diff: DiffRequest | None
    replay_key: str

    @classmethod
    def settle(cls, options: MirrorOptions, config: Config) -> BundleSettings:
        mirror_opts = config.options
        index_url = options.index_url or config.index_url or configured_index_url()
        regex = options.package_type_regex or mirror_opts.get("package-type-regex")
        prefer_binary = (
            config.prefer_binary if options.prefer_binary is None else options.prefer_binary
        )
        diff_file = options.diff_file or mirror_opts.get("diff-file")
        append_epoch = options.diff_append_epoch or bool(
            parse_bool(mirror_opts.get("diff-append-epoch"))
        )
        diff = None
        if diff_file:
            from morgan_like.tree.publish import DiffRequest

            diff = DiffRequest(diff_file, append_epoch)
        key = replay_key(
            config,
            (
                index_url,
                regex,
                options.pre,
                prefer_binary,
                options.static_metadata_only,
                options.mirror_all_versions,
                options.mirror_all_wheels,
            ),
        )
        return cls(
            index_url=index_url,
            policy=ResolveOptions(
                file_filter=FileFilter(regex) if regex else FileFilter(),
                pre=options.pre,
                prefer_binary=prefer_binary,
                dependency_overrides=config.dependency_overrides,
            ),
            workers=options.workers or int(mirror_opts.get("workers", DEFAULT_WORKERS)),
            diff=diff,
            replay_key=key,
        )
