"""A curated slice's closures: one kept release of one allowlisted entry resolved alone
for one env (modes/slice.py runs them), what such a resolution read, and how a sync
decides which to resolve again.

``resolve_one`` pins ``name[extras]==V`` and resolves it with the bundle resolver
under ``Finder.recording()``, so the closure knows every page it read; a release none
of whose files installs in the env is "unsupported" there, not a failure.
``slice_key`` hashes what the config asks, so another config resolves everything
again; ``moved_since`` names the pages whose serial changed since the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from morgan_like.config.allowlist import AllowEntry
from morgan_like.config.syncconf import SyncConfig
from morgan_like.dists.links import RemoteFile
from morgan_like.dists.serials import SerialList
from morgan_like.errors import MorganLikeError, ResolutionError
from morgan_like.index.finder import Finder
from morgan_like.modes.slice_state import Closure, ClosureKey, SliceRecord
from morgan_like.resolve.candidates import usable_files
from morgan_like.resolve.plan import resolution_files
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions, resolve_env
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.writer import TreeWriter

if TYPE_CHECKING:
    from morgan_like.modes.sync import SyncSettings


@dataclass(frozen=True)
class Job:
    """One closure to resolve: ``entry`` pinned to ``version`` in ``env``."""

    entry: AllowEntry
    version: Version
    env: Environment

    @property
    def key(self) -> ClosureKey:
        return ClosureKey(str(self.entry.requirement), str(self.version), self.env.name)


@dataclass
class Outcome:
    job: Job
    closure: Closure
    resolution: EnvResolution | None = None


def slice_key(
    index_url: str, settings: SyncSettings, config: SyncConfig, envs: tuple[Environment, ...]
) -> str:
    """What the config asks, hashed: the config's bytes, the allowlist as read (its
    requirements files included), the envs' markers and tags, the filters the command
    line added, constraints and hashes.  Another key resolves everything again."""
    rules = settings.rules
    parts = [
        index_url,
        repr(settings.config_bytes),
        repr([p.pattern for p in rules.prerelease_excludes]),
        " ".join(
            (
                repr(sorted(rules.selection.exclude_platforms)),
                repr(sorted(rules.selection.package_types)),
                repr(rules.selection.max_file_size),
                repr([p.pattern for p in rules.selection.exclude_releases]),
            )
        ),
        repr(rules.keep_latest),
        *(f"{e.requirement}@{e.source}" for e in config.allowlist),
    ]
    for env in envs:
        parts.append(f"{env.name} {sorted(env.markers.items())} {env.binary_only}")
        parts.append(" ".join(str(tag) for tag in env.tags))
        constraints = config.constraints_for(env)
        parts.append(repr(sorted((n, str(c)) for n, c in constraints.items())))
        hashes = config.hashes_for(env)
        parts.append(repr(sorted((n, sorted(h)) for n, h in hashes.items())))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def resolve_one(job: Job, finder: Finder, options: ResolveOptions) -> Outcome:
    entry, env = job.entry, job.env
    name = entry.name
    files = [f for f in finder.page(name).files if f.version == job.version]
    usable = usable_files(files, env, options.file_filter)
    if env.binary_only:
        usable = [f for f in usable if f.is_wheel]
    if not usable:
        why = unsupported(files, env)
        return Outcome(job, Closure(job.key, frozenset({name}), unsupported=why))
    extras = f"[{','.join(sorted(entry.requirement.extras))}]" if entry.requirement.extras else ""
    pin = Requirement(f"{entry.requirement.name}{extras}=={job.version}")
    with finder.recording() as touched:
        error: str | None = None
        retry = False
        resolution: EnvResolution | None = None
        try:
            resolution = resolve_env(env, [pin], finder, options, {name: entry.source})
        except ResolutionError as exc:  # a conflict: stays until a page it read moves
            error = str(exc)
        except MorganLikeError as exc:  # the upstream failed: tried again next run
            error, retry = str(exc), True
    touched.add(name)
    closure = Closure(
        job.key,
        frozenset(canonicalize_name(n) for n in touched),
        tuple(sorted(package_relpath(p, f.filename) for p, f in resolution_files(resolution)))
        if resolution is not None
        else (),
        error,
        retry=retry,
    )
    return Outcome(job, closure, resolution)


def unsupported(files: list[RemoteFile], env: Environment) -> str:
    """Why no file of a release installs in ``env``."""
    if files and all(not env.admits_python(f.requires_python) for f in files):
        return f"requires Python {files[0].requires_python}"
    if env.binary_only and not any(f.is_wheel for f in files):
        return "no wheel, and the env is binary-only"
    return "no file of it installs there (wheel tags, file filters)"


def moved_since(record: SliceRecord, listed: SerialList) -> set[str]:
    """Projects the slice read whose serial changed since (or that left the list)."""
    known = cast(Mapping[str, int], listed.serials)
    return {name for name, serial in record.serials.items() if known.get(name) != serial}


def own_files(
    writer: TreeWriter, relpaths: tuple[str, ...]
) -> list[tuple[NormalizedName, RemoteFile]] | None:
    """The records of ``relpaths`` as our own pages list them; None when one is missing
    (the closure is then resolved again)."""
    found = []
    by_project: dict[NormalizedName, dict[str, RemoteFile]] = {}
    for relpath in relpaths:
        parts = relpath.split("/")
        if len(parts) != 3:
            return None
        project, filename = canonicalize_name(parts[1]), parts[2]
        if project not in by_project:
            by_project[project] = {f.filename: f for f in writer.existing_files(project)}
        rf = by_project[project].get(filename)
        if rf is None:
            return None
        found.append((project, rf))
    return found
