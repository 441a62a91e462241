"""Lock files per env view: ``locks/pylock.<env>.toml`` (PEP 751) and
``locks/<env>.requirements.txt`` (``--hash`` lines), so a developer installs exactly
an env's pins with one command.

Both name only files the env's view lists, with the union page's sha256 and size,
and locate them relative to the lock (the tree is relocatable):

* the pylock's ``path`` entries are relative to the lock file's folder, as PEP 751
  says; uv resolves them so for a local lock, pip >= 26.1 for a local or fetched one.
  uv resolves a fetched lock's paths against its working directory instead, so
  ``server.py`` serves each ``path = "../packages/..."`` line as an absolute ``url``
  (one entry per line: a line edit, no TOML parser in a stdlib-only server);
* the requirements file says ``--no-index`` and one ``--find-links`` per project,
  the env view's project page as a path relative to the file, which pip resolves
  against a local requirements file's folder (never against a fetched one's): over
  HTTP, ``server.py`` puts ``--index-url <server>/envs/<env>/simple/`` in place of
  those lines.

A release that is only a build requirement of an env (another version of a project
the env also pins) stays out of the lock, which must hold one version per project;
pip finds it through the same index when it builds.  A view holding several
versions of a project with no pins to choose (a curated slice keeps several
releases) gets no lock: ``write_locks`` names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from morgan_like.dists.links import RemoteFile
from morgan_like.tree.files import drop_empty_dirs
from morgan_like.tree.layout import LOCKS_DIR, lock_relpaths, package_relpath, view_page_relpaths
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

CREATED_BY = "morgan-like"
# PEP 751's upload-time is a TOML offset date-time; the pages keep upstream's string.
_UPLOAD_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)\Z")


@dataclass(frozen=True)
class LockTarget:
    """What the run knows about one env beyond its view (None: not known this run).

    ``python``: the env's Python as "X.Y" (the lock's requires-python); ``pins``:
    normalized project -> the version the env installs (a view's other releases are
    build requirements); ``required_by``: normalized project -> the top-level
    requirements that pulled it in (the SBOM says so)."""

    env: str
    python: str | None = None
    pins: Mapping[str, str] | None = None
    required_by: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class LockedRelease:
    """One project's pinned release in a lock: its version and the view's files of it."""

    project: str
    version: str
    files: tuple[RemoteFile, ...]


@dataclass(frozen=True)
class EnvLock:
    """An env's lock as rendered: the releases it pins, every project its view lists."""

    env: str
    releases: tuple[LockedRelease, ...]
    projects: tuple[str, ...]
    python: str | None = None
    problems: tuple[str, ...] = field(default=())


def _toml_str(text: str) -> str:
    """A TOML basic string (control characters, quote and backslash escaped)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _lock_path(file: RemoteFile, project: str) -> str:
    """The file as seen from ``locks/``."""
    return f"../{package_relpath(project, file.filename)}"


def _file_table(file: RemoteFile, project: str) -> str:
    parts = [f"name = {_toml_str(file.filename)}", f"path = {_toml_str(_lock_path(file, project))}"]
    if file.upload_time and _UPLOAD_TIME.match(file.upload_time):
        parts.append(f"upload-time = {file.upload_time}")
    if file.size is not None:
        parts.append(f"size = {file.size}")
    parts.append(f"hashes = {{ sha256 = {_toml_str(file.sha256 or '')} }}")
    return "{ " + ", ".join(parts) + " }"


def render_pylock(lock: EnvLock) -> bytes:
    """PEP 751 ``pylock.<env>.toml``: one ``[[packages]]`` per release, its wheels and
    sdist each on one line (server.py rewrites a line's ``path`` into a ``url``)."""
    lines = [
        f"# Env {lock.env!r} of this tree: exactly the files its index view lists (PEP 751).",
        "# Paths are relative to this file; server.py serves them as absolute URLs.",
        'lock-version = "1.0"',
        f"created-by = {_toml_str(CREATED_BY)}",
    ]
    if lock.python:
        lines.append(f"requires-python = {_toml_str(f'=={lock.python}.*')}")
    for release in lock.releases:
        wheels = [f for f in release.files if f.is_wheel]
        sdists = [f for f in release.files if f.is_sdist]
        lines += [
            "",
            "[[packages]]",
            f"name = {_toml_str(release.project)}",
            f"version = {_toml_str(release.version)}",
        ]
        requires = {f.requires_python for f in release.files}
        if len(requires) == 1 and (only := requires.pop()):
            lines.append(f"requires-python = {_toml_str(only)}")
        if sdists:
            lines.append(f"sdist = {_file_table(sdists[0], release.project)}")
        if wheels:
            lines.append("wheels = [")
            lines += [f"    {_file_table(w, release.project)}," for w in wheels]
            lines.append("]")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_requirements(lock: EnvLock) -> bytes:
    """``<env>.requirements.txt``: ``name==version`` with every file's ``--hash`` (pip
    accepts whichever file it picks), after the options that find them offline."""
    lines = [
        f"# Env {lock.env!r} of this tree: exactly the releases its index view pins.",
        "#   pip install --require-hashes -r <this file>   (a local path, or from server.py)",
        "# Locally, pip reads each --find-links path against this file's folder; server.py",
        "# serves this file with --index-url <server>/envs/<env>/simple/ in their place.",
        "--no-index",
    ]
    for project in lock.projects:
        html_rel, _ = view_page_relpaths(lock.env, project)
        lines.append(f"--find-links ../{html_rel}")
    for release in lock.releases:
        hashes = sorted({f.sha256 for f in release.files if f.sha256})
        lines.append(f"{release.project}=={release.version} \\")
        lines += [f"    --hash=sha256:{h} \\" for h in hashes[:-1]]
        lines.append(f"    --hash=sha256:{hashes[-1]}" if hashes else "")
    return ("\n".join(lines) + "\n").encode("utf-8")


def env_lock(writer: TreeWriter, view: EnvView, target: LockTarget | None) -> EnvLock:
    """The lock of ``view``: the files its union pages list, one release per project."""
    releases: list[LockedRelease] = []
    problems: list[str] = []
    projects: list[str] = []
    pins = None if target is None or target.pins is None else target.pins
    for project in sorted(canonicalize_name(p) for p in view.projects):
        wanted = view.projects.get(project) or next(
            (files for p, files in view.projects.items() if canonicalize_name(p) == project),
            frozenset(),
        )
        if writer.is_leaving(project):
            continue
        files = [f for f in writer.existing_files(project) if f.filename in wanted and f.sha256]
        if not files:
            continue
        projects.append(project)
        by_version: dict[str, list[RemoteFile]] = {}
        for f in files:
            if f.version is not None:
                by_version.setdefault(str(f.version), []).append(f)
        if pins is not None:
            pinned = pins.get(project)
            chosen = _matching(by_version, pinned) if pinned else None
            if chosen is None:
                continue  # only a build requirement of this env
        elif len(by_version) == 1:
            chosen = next(iter(by_version))
        else:
            problems.append(
                f"{project}: the view lists {len(by_version)} versions "
                f"({', '.join(sorted(by_version, key=Version))}), a lock holds one"
            )
            continue
        releases.append(
            LockedRelease(project, chosen, tuple(sorted(by_version[chosen], key=_file_key)))
        )
    python = None if target is None else target.python
    return EnvLock(view.env, tuple(releases), tuple(projects), python, tuple(problems))


def _matching(by_version: Mapping[str, list[RemoteFile]], pinned: str) -> str | None:
    try:
        want = Version(pinned)
    except InvalidVersion:
        return pinned if pinned in by_version else None
    return next((v for v in by_version if Version(v) == want), None)


def _file_key(file: RemoteFile) -> tuple[bool, str]:
    return (not file.is_wheel, file.filename)


def write_locks(
    writer: TreeWriter, views: Sequence[EnvView], targets: Mapping[str, LockTarget]
) -> tuple[list[str], list[str]]:
    """Both lock files of every view, and no others in ``locks/``.  Returns the relpaths
    written and the problems (a view that cannot be one lock: no lock, said why)."""
    changed: list[str] = []
    problems: list[str] = []
    keep: set[str] = set()
    for view in views:
        lock = env_lock(writer, view, targets.get(view.env))
        if lock.problems:
            problems.append(f"env {view.env}: no lock files ({'; '.join(lock.problems)})")
            continue
        pylock_rel, reqs_rel = lock_relpaths(view.env)
        if pylock_rel in keep:  # "a.b" and "a_b": PEP 751 names allow no dot
            problems.append(f"env {view.env}: no lock files ({pylock_rel} is another env's)")
            continue
        keep.update((pylock_rel, reqs_rel))
        for rel, data in ((pylock_rel, render_pylock(lock)), (reqs_rel, render_requirements(lock))):
            if writer.write_file(rel, data):
                changed.append(rel)
    stale = {rel for rel, _ in writer.state.top_level() if rel.startswith(f"{LOCKS_DIR}/")}
    base = writer.root / LOCKS_DIR
    if base.is_dir():
        stale.update(
            f"{LOCKS_DIR}/{p.name}"
            for p in base.iterdir()
            if p.is_file() and not p.name.startswith(".")
        )
    writer.remove_paths(sorted(stale - keep))
    drop_empty_dirs(base, including_base=True)
    return changed, problems
