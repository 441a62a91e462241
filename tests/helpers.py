"""Small builders for resolver/plan/mirror tests: envs, finders, populated fake indexes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from morgan_like.config.envsections import environment_from_section
from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import DistMetadata
from morgan_like.fetch.sdistcache import SdistCache
from morgan_like.index.finder import Finder
from morgan_like.index.upstream import Upstream
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions, resolve_env
from morgan_like.targets.environments import Environment

from .distbuilder import make_sdist, make_wheel
from .fakeindex import FakeIndex

LINUX = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
}
WINDOWS = {
    "os_name": "nt",
    "sys_platform": "win32",
    "platform_machine": "AMD64",
    "platform_system": "Windows",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
}


def env(name: str, python: str, base: Mapping[str, str] = LINUX, **extra: str) -> Environment:
    keys = dict(base, python_full_version=python, python_version=".".join(python.split(".")[:2]))
    keys.update(extra)
    return environment_from_section(name, keys, file="test.ini")


def ini_env_block(name: str, python: str, base: Mapping[str, str] = LINUX, **extra: str) -> str:
    keys = dict(base, python_full_version=python, python_version=".".join(python.split(".")[:2]))
    keys.update(extra)
    return f"[env.{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n"


def wheel(index: FakeIndex, dist_dir: Path, name: str, version: str, **kwargs) -> Path:
    """Build a wheel and publish it; index-level options (yanked=...) go to the index."""
    add = {k: kwargs.pop(k) for k in ("yanked", "serve_metadata") if k in kwargs}
    path = make_wheel(dist_dir, name, version, **kwargs)
    index.add(path, **add)
    return path


def sdist(index: FakeIndex, dist_dir: Path, name: str, version: str, **kwargs) -> Path:
    add = {k: kwargs.pop(k) for k in ("yanked",) if k in kwargs}
    path = make_sdist(dist_dir, name, version, **kwargs)
    index.add(path, **add)
    return path


class PlainRequests:
    """The Finder's requests answered plainly (index.finder.FinderRequests): sdists from
    ``cache``, nothing read ahead, no metadata kept from a previous run."""

    def __init__(self, cache: SdistCache) -> None:
        self.cache = cache

    def sdist(self, file: RemoteFile) -> Path:
        return self.cache.get(file)

    def likely_metadata(self, page: ProjectPage) -> list[RemoteFile]:
        return []

    def applies(self, requirement: Requirement) -> bool:
        return False

    def kept_metadata(self, file: RemoteFile) -> DistMetadata | None:
        return None


class Resolving:
    """A Finder over a fake index, closed at the end of the test."""

    def __init__(self, index: FakeIndex, tmp: Path) -> None:
        self.upstream = Upstream(index.url, retries=1, backoff=0.01)
        self.cache = SdistCache(self.upstream, tmp)
        self.finder = Finder(self.upstream, PlainRequests(self.cache))

    def resolve(self, environment: Environment, *reqs: str, **options) -> EnvResolution:
        return resolve_env(
            environment, [Requirement(r) for r in reqs], self.finder, ResolveOptions(**options)
        )

    def pins(self, environment: Environment, *reqs: str, **options) -> dict[str, str]:
        result = self.resolve(environment, *reqs, **options)
        return {str(name): str(c.version) for name, c in result.pins.items()}

    def close(self) -> None:
        self.finder.close()
        self.upstream.close()


def record_closes(monkeypatch: Any) -> list[str]:
    """The names of what a mode's run closes, in the order it closes them: its tree state
    ("state"), page cache ("pages"), upstream and resolving session ("session")."""
    from morgan_like.index.pagecache import PageCache
    from morgan_like.modes.resolving import ResolveSession
    from morgan_like.tree.state import TreeState

    closed: list[str] = []
    kinds = ((TreeState, "state"), (PageCache, "pages"), (Upstream, "upstream"))
    for kind, name in (*kinds, (ResolveSession, "session")):

        def recording(self: object, _close: Any = kind.close, _name: str = name) -> None:
            closed.append(_name)
            _close(self)

        monkeypatch.setattr(kind, "close", recording)
    return closed


# Top-level documents that say when their tree last changed (the landing page, the SBOM),
# and the manifest that hashes them: two trees built at different moments differ there.
STAMPED = ("index.html", "sbom.cdx.json", "manifest.json")


def unstamped(files: Mapping[str, Any]) -> dict[str, Any]:
    """``files`` (tree-relative path -> bytes or hash) without STAMPED."""
    return {path: value for path, value in files.items() if path not in STAMPED}


def manifest_entries(root: Path) -> dict[str, Any]:
    """manifest.json's files without the STAMPED documents."""
    import json

    doc = json.loads((root / "manifest.json").read_bytes())
    return {path: entry for path, entry in doc["files"].items() if path not in STAMPED}
