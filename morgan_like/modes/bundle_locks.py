"""The locks' packages, per env, as plan entries: each locked file found upstream by name and hash.

A lock (``config.locks``) says which packages an env installs and which files
each may come from; nothing is resolved again.  The files are fetched from
the upstream project page, not from the URLs in the lock: the upstream is the
one index a bundle reads (the lock may name another index, a proxy or a host
this machine cannot reach), and a file there with the lock's filename and
sha256 is the file the lock means.  A file the upstream no longer lists under
that name and hash stops the run before anything is fetched, naming the lock,
the package and the file: a bundle that silently left it out, or served
another build, would fail the targets' ``--require-hashes`` installs.

Of a package's locked files an env's view gets what pip there would use: the
best wheel for its tags and the sdist (the sdist alone when no wheel fits; no
sdist in a binary-only env), as for a resolved pin (``resolve.candidates``).
Only those files must be upstream; a lock's wheels for platforms no env has
are never asked for.  Their sdists go into the plan before the build
requirements are read, so an sdist an env must build gets them as in bundle
mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from packaging.utils import NormalizedName

from morgan_like.config.ini import Config
from morgan_like.config.locks import Lock, LockedFile, LockedPackage
from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.errors import ConfigError, MorganLikeError, UpstreamError
from morgan_like.index.finder import Finder
from morgan_like.resolve.candidates import pick_files
from morgan_like.resolve.plan import Plan, PlannedFile
from morgan_like.resolve.resolver import EnvResolution
from morgan_like.targets.environments import Environment
from morgan_like.tree.layout import package_relpath

_SHOWN = 20  # gone files listed in one message


@dataclass(frozen=True)
class LockedPin:
    """A locked package in one env, with the upstream files that env's view gets."""

    lock: Lock
    package: LockedPackage
    files: tuple[RemoteFile, ...]


@dataclass(frozen=True)
class LockedEnv:
    """Every locked package ``env`` installs, from every lock that is for it."""

    env: Environment
    pins: tuple[LockedPin, ...]


class LockedFileGone(UpstreamError):
    """Locked files the upstream no longer lists with the lock's name and sha256."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        shown = self.lines[:_SHOWN]
        more = len(self.lines) - len(shown)
        tail = [f"  ... and {more} more"] if more else []
        return "\n".join(
            [
                "locked files the upstream no longer has (nothing was fetched or changed):",
                *(f"  {line}" for line in shown),
                *tail,
                "  hint: lock again against the index (uv lock --upgrade-package NAME, pip lock), "
                "or bring the files back upstream",
            ]
        )


def locked_envs(config: Config, finder: Finder, problems: list[str]) -> list[LockedEnv]:
    """Each env's locked packages and their files, all looked up upstream first.

    Raises LockedFileGone naming every locked file an env needs that upstream
    lacks; a package none of whose locked files installs in an env is one line
    in ``problems`` (pip there would fail on it too).
    """
    wanted: list[tuple[Environment, Lock, list[LockedPackage]]] = []
    for env in config.environments:
        for lock in config.locks:
            if lock.excludes(env) is None:  # else said once, as a config warning
                wanted.append((env, lock, [p for p in lock.packages_for(env) if not p.local]))
    names = sorted({p.name for _, _, packages in wanted for p in packages})
    for name in names:
        finder.prefetch_page(name)
    pages: dict[NormalizedName, ProjectPage | MorganLikeError] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(names)))) as pool:
        for name, page in zip(names, pool.map(lambda n: _page(finder, n), names)):
            pages[name] = page
    gone: dict[str, None] = {}
    out: list[LockedEnv] = []
    for env in config.environments:
        pins: list[LockedPin] = []
        for where, lock, packages in wanted:
            if where is not env:
                continue
            for package in packages:
                files = _env_files(lock, package, env, pages[package.name], gone)
                if not files:
                    problems.append(
                        f"env {env.name}: {lock.path} locks {package.label}, and none of its "
                        f"locked files ({', '.join(f.filename for f in package.files)}) installs "
                        "there: it is left out of this env"
                    )
                    continue
                pins.append(LockedPin(lock, package, files))
        out.append(LockedEnv(env, tuple(pins)))
    if gone:
        raise LockedFileGone(list(gone))
    return out


def _page(finder: Finder, name: str) -> ProjectPage | MorganLikeError:
    try:
        return finder.page(name)
    except MorganLikeError as exc:  # said for each locked file that needs it
        return exc


def _env_files(
    lock: Lock,
    package: LockedPackage,
    env: Environment,
    page: ProjectPage | MorganLikeError,
    gone: dict[str, None],
) -> tuple[RemoteFile, ...]:
    """The upstream files ``env``'s view gets of ``package``: pip's choice among the
    locked files; a chosen one upstream lacks is added to ``gone``."""
    files = () if isinstance(page, MorganLikeError) else page.files
    listed = {f.filename: f for f in files}
    by_hash = {f.sha256: f for f in files if f.sha256}
    stand_ins: dict[str, tuple[LockedFile, str]] = {}
    candidates: list[RemoteFile] = []
    for locked in package.files:
        found = listed.get(locked.filename) or by_hash.get(locked.sha256)
        if found is not None and (found.sha256 or locked.sha256) == locked.sha256:
            # Upstream's entry; the download is checked against the lock's sha256.
            candidates.append(replace(found, sha256=locked.sha256))
            continue
        if isinstance(page, MorganLikeError):
            why = f"its page cannot be read: {page}"
        elif found is not None:
            why = f"upstream lists it with sha256 {found.sha256}"
        else:
            why = "upstream does not list it"
        stand_ins[locked.filename] = (locked, why)
        candidates.append(RemoteFile(locked.filename, "", sha256=locked.sha256, size=locked.size))
    chosen = [f for f in pick_files(candidates, env) if f.is_wheel or not env.binary_only]
    for file in chosen:
        if file.filename in stand_ins:
            locked, why = stand_ins[file.filename]
            line = (
                f"{lock.path}: {package.label}: {locked.filename} (sha256 {locked.sha256}): {why}"
            )
            gone[line] = None
    return tuple(chosen)


def add_locked(plan: Plan, locked: list[LockedEnv]) -> list[PlannedFile]:
    """Each env's locked files into ``plan``; returns the entries new to it."""
    added: list[PlannedFile] = []
    for entry in locked:
        for pin in entry.pins:
            for file in pin.files:
                if plan.add(pin.package.name, file, entry.env.name):
                    added.append(plan.files[package_relpath(pin.package.name, file.filename)])
    return added


def check_resolved(
    locked: list[LockedEnv], resolutions: list[EnvResolution], roots: Mapping[str, str]
) -> None:
    """A project an env both takes from a lock and resolves from the requirements must be
    at one version there: two are a conflict in the config, named with both sides."""
    by_env = {entry.env.name: entry for entry in locked}
    for resolution in resolutions:
        entry = by_env.get(resolution.env.name)
        for pin in entry.pins if entry is not None else ():
            name = pin.package.name
            got = resolution.pins.get(name)
            if got is None or got.version == pin.package.version:
                continue
            why = resolution.parents.get(name) or roots.get(name, "the requirements")
            raise ConfigError(
                file=str(pin.lock.path),
                line=pin.package.line,
                problem=f"env {resolution.env.name}: this lock pins {pin.package.label}, and the "
                f"requirements resolve {got.name} {got.version} there (required by {why})",
                hint=f"pin {got.name}=={pin.package.version} in the requirements (or a "
                "constraint), or lock again with the requirements' version",
            )
