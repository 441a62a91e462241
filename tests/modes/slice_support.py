"""The curated slice's upstream, its expected contents and the offline-install check.

Shared by tests/modes/test_slice.py and bench/bench_slice.py.  The upstream is
described as plain records (``Rel``), published into a FakeIndex as real wheels and
sdists, and changed through ``Upstream`` so that the model knows every move.  What
the tree must hold is computed from that model alone (kept releases, one naive
resolution per kept release and env), never read back from the tree: a test that
asked the engine what it kept would only check that the engine agrees with itself.

The check (``check_installs``) asks real clients, offline, to install
``name[extras]==V`` from one env's view, through server.py and through file://.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from morgan_like.cli import main

from ..clients import client_env, find_uv, make_venv, uv_venv
from ..distbuilder import escaped_name, make_sdist, make_wheel
from ..fakeindex import FakeIndex
from ..helpers import LINUX
from ..server_support import SubprocessServer

# env name -> the pyenv interpreter it stands for (tests/clients.py VERSIONS)
ENVS = {"py311": "3.11.7", "py312": "3.12.1"}
TINYBACKEND = "tinybackend-1.0-py3-none-any.whl"


@dataclass(frozen=True)
class Rel:
    """One release upstream: its requirements, extras and which files it has."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[tuple[str, tuple[str, ...]], ...] = ()
    requires_python: str | None = None
    wheel: bool = True
    sdist: bool = False
    pad: int = 0  # incompressible bytes in the wheel, for the bench's sizes

    @property
    def key(self) -> tuple[str, str]:
        return canonicalize_name(self.name), self.version

    def filenames(self) -> list[str]:
        out = []
        if self.wheel:
            out.append(f"{escaped_name(self.name)}-{self.version}-py3-none-any.whl")
        if self.sdist:
            out.append(f"{self.name}-{self.version}.tar.gz")
        return out

    def requires_dist(self) -> list[str]:
        lines = list(self.requires)
        for extra, reqs in self.extras:
            lines += [f'{r} ; extra == "{extra}"' for r in reqs]
        return lines

    def build(self, where: Path) -> list[Path]:
        common = dict(
            requires_dist=self.requires_dist(),
            requires_python=self.requires_python,
            provides_extra=[e for e, _ in self.extras],
        )
        out = []
        if self.wheel:
            out.append(make_wheel(where, self.name, self.version, pad_bytes=self.pad, **common))
        if self.sdist:
            out.append(make_sdist(where, self.name, self.version, **common))
        return out


@dataclass(frozen=True)
class Case:
    """One promise of the slice: ``requirement`` installs offline in ``env``; ``pins`` is
    what a resolution there picks (None: it cannot resolve, the run must say so)."""

    env: str
    project: str
    version: str
    requirement: str
    pins: tuple[tuple[str, str], ...] | None  # sorted (project, version)
    files: frozenset[tuple[str, str]] = frozenset()  # (project, filename) of the pins


class Catalog:
    """What an upstream holds, as the model sees it: releases, yanks, deleted files."""

    def __init__(self) -> None:
        self.rels: dict[tuple[str, str], Rel] = {}
        self.yanked: set[tuple[str, str]] = set()
        self.deleted: set[str] = set()

    def files(self, rel: Rel) -> list[str]:
        return [f for f in rel.filenames() if f not in self.deleted]

    def releases(self, name: str) -> list[Rel]:
        """Every release of ``name`` with a file left, newest first."""
        norm = canonicalize_name(name)
        found = [r for (n, _), r in self.rels.items() if n == norm and self.files(r)]
        return sorted(found, key=lambda r: Version(r.version), reverse=True)


class Upstream(Catalog):
    """A FakeIndex and the model of what it holds, changed together."""

    def __init__(self, index: FakeIndex, dists: Path, rels: Iterable[Rel] = ()) -> None:
        super().__init__()
        self.index, self.dists = index, dists
        for rel in rels:
            self.publish(rel)

    def publish(self, rel: Rel) -> None:
        for path in rel.build(self.dists):
            self.index.add(path)
        self.rels[rel.key] = rel

    def yank(self, name: str, version: str) -> None:
        key = (canonicalize_name(name), version)
        for filename in self.rels[key].filenames():
            self.index.yank(filename, "broken")
        self.yanked.add(key)

    def delete(self, filename: str) -> None:
        self.index.remove(filename)
        self.deleted.add(filename)


# --- the five-project scenario -----------------------------------------------------------

ALLOWLIST = ("alpha[fast]", "bravo", "charlie", "echo < 3", "hotel")
KEEP_LATEST = 2
_OLD_PYTHON = 'legacyshim ; python_version < "3.12"'
_WINDOWS = 'winhelper ; sys_platform == "win32"'


def scenario() -> list[Rel]:
    """Deep (alpha -> beta -> gamma -> delta) and diamond (alpha -> epsilon -> delta < 2)
    dependencies; an extra (alpha[fast] -> fastlib, whose range moves between releases);
    markers (legacyshim below 3.12, winhelper on Windows only); an sdist-only dependency
    (srconly, built by tinybackend); gamma 1.1 and bravo 2.0 each for one env only
    (Requires-Python); hotel 1.0 needing alpha 1.1, which keep-latest will push out of
    alpha's own releases; a specifier (echo < 3) that leaves out the newest release."""
    fast_old, fast_new = (("fast", ("fastlib<2",)),), (("fast", ("fastlib>=2",)),)
    return [
        Rel("alpha", "1.0", ("beta<2", "epsilon"), fast_old),
        Rel("alpha", "1.1", ("beta<2", "epsilon", _OLD_PYTHON, _WINDOWS), fast_old),
        Rel("alpha", "2.0", ("beta>=2", "epsilon", _OLD_PYTHON, _WINDOWS), fast_new),
        Rel("beta", "1.0", ("gamma",)),
        Rel("beta", "2.0", ("gamma>=1",)),
        Rel("gamma", "1.0", ("delta>=1",)),
        Rel("gamma", "1.1", ("delta>=1",), requires_python=">=3.12"),
        Rel("delta", "1.0"),
        Rel("delta", "1.5"),
        Rel("delta", "2.0"),
        Rel("epsilon", "1.0", ("delta<2",)),
        Rel("fastlib", "1.0"),
        Rel("fastlib", "2.0"),
        Rel("legacyshim", "1.0"),
        Rel("winhelper", "1.0"),
        Rel("bravo", "1.0", ("foxtrot",)),
        Rel("bravo", "2.0", ("foxtrot<2", "srconly"), requires_python="<3.12"),
        Rel("bravo", "3.0", ("foxtrot>=2", "srconly")),
        Rel("foxtrot", "1.0"),
        Rel("foxtrot", "2.0"),
        Rel("srconly", "1.0", wheel=False, sdist=True),
        Rel("srconly", "1.1", wheel=False, sdist=True),
        Rel("charlie", "0.9", ("gamma",), sdist=True),
        Rel("charlie", "1.0", ("gamma", "delta>=2"), sdist=True),
        Rel("echo", "1.0"),
        Rel("echo", "2.0", ("gamma",)),
        Rel("echo", "2.5", ("gamma",)),
        Rel("echo", "3.0", ("gamma",)),
        Rel("hotel", "1.0", ("alpha<2",)),
        Rel("hotel", "2.0", ("alpha>=2", "srconly")),
    ]


@dataclass(frozen=True)
class Change:
    """One move upstream, then a re-sync; ``fails``: (project, version, env) the run must
    report as unresolvable."""

    what: str
    apply: Callable[[Upstream], None]
    fails: tuple[tuple[str, str, str], ...] = ()


CHANGES = (
    # alpha 1.1 leaves alpha's kept releases but stays for hotel 1.0; fastlib 1.0 (only
    # alpha[fast]==1.1 wanted it) leaves the tree.
    Change(
        "a new release of an allowlisted project",
        lambda up: up.publish(
            Rel("alpha", "2.1", ("beta>=2", "epsilon", _OLD_PYTHON), (("fast", ("fastlib>=2",)),))
        ),
    ),
    # epsilon's delta < 2 now picks 1.6: every alpha closure moves, delta 1.5 leaves.
    Change("a new release of a dependency", lambda up: up.publish(Rel("delta", "1.6"))),
    # echo < 3 keeps 2.0 and 1.0 now.
    Change("a yanked allowlisted release", lambda up: up.yank("echo", "2.5")),
    # py312's closures fall back to gamma 1.0.
    Change("a yanked dependency", lambda up: up.yank("gamma", "1.1")),
    # bravo 2.0 (py311 only) needs foxtrot < 2, whose only file is gone.
    Change(
        "a dependency's file deleted",
        lambda up: up.delete("foxtrot-1.0-py3-none-any.whl"),
        fails=(("bravo", "2.0", "py311"),),
    ),
)


# --- what the slice must hold, from the model alone ----------------------------------


def markers(env: str) -> dict[str, str]:
    full = ENVS[env]
    return dict(LINUX, python_full_version=full, python_version=".".join(full.split(".")[:2]))


def admits(rel: Rel, env: str) -> bool:
    spec = SpecifierSet(rel.requires_python or "")
    return spec.contains(ENVS[env], prereleases=True)


def kept(up: Catalog, entry: str, keep_latest: int) -> list[Rel]:
    """An allowlist entry's kept releases: not yanked, matching its specifier, newest N."""
    req = Requirement(entry)
    live = [r for r in up.releases(req.name) if r.key not in up.yanked]
    return [r for r in live if req.specifier.contains(r.version)][:keep_latest]


def resolve(up: Catalog, env: str, root: Requirement) -> dict[str, str] | None:
    """Newest acceptable version of everything reachable, to a fixpoint (the scenarios
    are built so that no backtracking is needed); None when something has no candidate.
    A yanked release is only taken by the root's exact pin."""
    where = markers(env)
    pins: dict[str, Rel] = {}
    for _ in range(50):
        wanted: dict[str, list[SpecifierSet]] = {canonicalize_name(root.name): [root.specifier]}
        extras: dict[str, set[str]] = {canonicalize_name(root.name): set(root.extras)}
        for name, rel in pins.items():
            for line in rel.requires_dist():
                req = Requirement(line)
                if req.marker and not any(
                    req.marker.evaluate(dict(where, extra=e)) for e in ("", *extras.get(name, ()))
                ):
                    continue
                dep = canonicalize_name(req.name)
                wanted.setdefault(dep, []).append(req.specifier)
                extras.setdefault(dep, set()).update(req.extras)
        new: dict[str, Rel] = {}
        for name, specs in wanted.items():
            is_root = name == canonicalize_name(root.name)
            choice = next(
                (
                    r
                    for r in up.releases(name)
                    if (is_root or r.key not in up.yanked)
                    and admits(r, env)
                    and all(s.contains(r.version, prereleases=True) for s in specs)
                ),
                None,
            )
            if choice is None:
                return None
            new[name] = choice
        if new == pins:
            return {n: r.version for n, r in pins.items()}
        pins = new
    raise AssertionError(f"the model did not settle for {root} in {env}")


def cases(
    up: Catalog, allowlist: Sequence[str], keep_latest: int, *, pins: bool = True
) -> list[Case]:
    """Every (kept release, env whose Python it admits) of the allowlist; ``pins=False``:
    without the model's resolution (pins empty: any successful install counts)."""
    out = []
    for entry in allowlist:
        req = Requirement(entry)
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        for rel in kept(up, entry, keep_latest):
            for env in ENVS:
                if admits(rel, env):
                    pinned = Requirement(f"{req.name}{extras}=={rel.version}")
                    resolved = resolve(up, env, pinned) if pins else {}
                    picked = None if resolved is None else tuple(sorted(resolved.items()))
                    files = frozenset(
                        (name, f)
                        for name, version in picked or ()
                        for f in up.files(up.rels[(name, version)])
                    )
                    name = canonicalize_name(req.name)
                    out.append(Case(env, name, rel.version, str(pinned), picked, files))
    return out


def expected_views(all_cases: Iterable[Case]) -> dict[str, dict[str, set[str]]]:
    """env -> project -> filenames its view must list: the files of every pin of every
    resolvable case, plus the build backend wherever an sdist is listed."""
    views: dict[str, dict[str, set[str]]] = {env: {} for env in ENVS}
    for case in all_cases:
        for name, filename in case.files:
            views[case.env].setdefault(name, set()).add(filename)
    for view in views.values():
        if any(f.endswith(".tar.gz") for files in view.values() for f in files):
            view.setdefault("tinybackend", set()).add(TINYBACKEND)
    return views


def union(views: Mapping[str, Mapping[str, set[str]]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for view in views.values():
        for name, files in view.items():
            out.setdefault(name, set()).update(files)
    return out


# --- what the tree holds ---------------------------------------------------------------


def listed(simple: Path) -> dict[str, set[str]]:
    """project -> filenames, for every project an index folder's root lists; HTML and
    JSON pages must agree."""
    root = json.loads((simple / "index.json").read_bytes())
    out = {}
    for project in (p["name"] for p in root["projects"]):
        doc = json.loads((simple / project / "index.json").read_bytes())
        page = (simple / project / "index.html").read_text()
        names = {f["filename"] for f in doc["files"]}
        assert all(f">{n}</a>" in page for n in names), project
        out[project] = names
    return out


def on_disk(tree: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (tree / "packages").glob("*/*"):
        if path.suffix != ".metadata":
            out.setdefault(path.parent.name, set()).add(path.name)
    return out


def verify(tree: Path) -> str:
    """server.py --verify's complaints (empty when the tree is whole)."""
    proc = subprocess.run(
        ["python3", str(tree / "server.py"), "--verify", "-i", str(tree)],
        capture_output=True,
        text=True,
    )
    return "" if proc.returncode == 0 else proc.stdout + proc.stderr


# --- running a sync ----------------------------------------------------------------


@dataclass(frozen=True)
class SyncRun:
    rc: int
    changed: frozenset[str]
    removed: frozenset[str]
    output: str


def write_config(
    path: Path, allowlist: Sequence[str], keep_latest: int, envs: Iterable[str] = ENVS
) -> Path:
    lines = ["[sync]", "projects =", *(f"    {e}" for e in allowlist)]
    lines += [f"keep-latest = {keep_latest}", ""]
    for env in envs:
        lines += [f"[env.{env}]", *(f"{k} = {v}" for k, v in markers(env).items()), ""]
    path.write_text("\n".join(lines))
    return path


def sync_slice(tree: Path, url: str, config: Path, *args: str) -> SyncRun:
    """``morgan-like sync -c CONFIG --diff-file`` in this process, its output captured."""
    diff = tree.parent / f"{tree.name}.diff"
    removed_file = diff.with_name(diff.name + ".removed")
    for stale in (diff, removed_file):
        stale.unlink(missing_ok=True)
    out = io.StringIO()
    cmd = ["sync", "-i", str(tree), "-I", url, "-c", str(config), "--diff-file", str(diff)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main([*cmd, *args])

    def read(p: Path) -> frozenset[str]:
        return frozenset(p.read_text().split()) if p.exists() else frozenset()

    return SyncRun(rc, read(diff), read(removed_file), out.getvalue())


# --- the offline install check ---------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    """How one case is tried: pip or uv; through server.py or file://; a real install
    into a fresh target folder, or a dry run (which still reads every page and
    metadata file, and builds what it must to learn an sdist's dependencies)."""

    client: str
    transport: str
    install: bool = False

    def __str__(self) -> str:
        return f"{self.client} {'install' if self.install else '--dry-run'} via {self.transport}"


@dataclass(frozen=True)
class Failure:
    case: Case
    leg: Leg
    detail: str

    def __str__(self) -> str:
        return f"{self.case.requirement} in {self.case.env}, {self.leg}: {self.detail}"


@dataclass
class Clients:
    """One pip venv and one uv venv per env, made once and reused (installs go to fresh
    target folders, dry runs ignore what is installed)."""

    work: Path
    pythons: Mapping[str, Path]
    _venvs: dict[tuple[str, str], Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        uv = find_uv()
        assert uv is not None, "uv is a test dependency"
        self.uv = uv

    def venv(self, env: str, client: str) -> Path:
        key = (env, client)
        if key not in self._venvs:
            where = self.work / f"{client}-{env}"
            python = self.pythons[env]
            made = make_venv(python, where) if client == "pip" else uv_venv(self.uv, python, where)
            self._venvs[key] = made
        return self._venvs[key]

    def command(self, case: Case, leg: Leg, url: str, scratch: Path) -> list[str]:
        vpy = str(self.venv(case.env, leg.client))
        if leg.client == "pip":
            cmd = [vpy, "-m", "pip", "install", "--no-cache-dir", "--index-url", url]
            if leg.install:
                return [*cmd, "--target", str(scratch / "target"), case.requirement]
            report = ["--report", str(scratch / "report.json")]
            return [*cmd, "--dry-run", "--ignore-installed", *report, case.requirement]
        cmd = [*self.uv, "pip", "install", "--no-config", "--no-cache", "-p", vpy]
        cmd += ["--index-url", url]
        where = ["--target", str(scratch / "target")] if leg.install else ["--dry-run"]
        return [*cmd, *where, case.requirement]

    def attempt(
        self, case: Case, leg: Leg, url: str, scratch: Path
    ) -> tuple[Failure | None, dict[str, str]]:
        """One client run for one case from ``url``: its failure (None when it installed
        what the case's pins say, or anything when they are empty) and what it picked."""
        scratch.mkdir(parents=True)
        try:
            proc = subprocess.run(
                self.command(case, leg, url, scratch),
                env=client_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return Failure(case, leg, "timed out"), {}
        if proc.returncode != 0:
            return Failure(case, leg, (proc.stdout + proc.stderr)[-3000:]), {}
        picked = _picked(leg, proc, scratch)
        if case.pins and picked != dict(case.pins):
            wrong = f"picked {sorted(picked.items())}, expected {case.pins}"
            return Failure(case, leg, wrong), picked
        return None, picked


def _picked(leg: Leg, proc: subprocess.CompletedProcess, scratch: Path) -> dict[str, str]:
    """What the client installed (or would): pip's report or its target's dist-info
    folders, uv's ``+ name==version`` lines."""
    if leg.client == "pip" and not leg.install:
        doc = json.loads((scratch / "report.json").read_text())
        return {
            canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
            for i in doc["install"]
        }
    pins = {}
    if leg.client == "pip":
        for info in (scratch / "target").glob("*.dist-info"):
            name, _, version = info.name[: -len(".dist-info")].partition("-")
            pins[canonicalize_name(name)] = version
        return pins
    for line in (proc.stdout + proc.stderr).splitlines():
        name, sep, version = line.strip().removeprefix("+ ").partition("==")
        if line.strip().startswith("+ ") and sep:
            pins[canonicalize_name(name)] = version.split()[0]
    return pins


def check_installs(
    tree: Path,
    all_cases: Sequence[Case],
    legs: Callable[[Case], Sequence[Leg]],
    clients: Clients,
    *,
    index: Callable[[str], str] = lambda env: f"envs/{env}/simple",
    workers: int = 2,
) -> list[Failure]:
    """Try every case with each of its legs against its env's index (``index``: the
    env's index folder, relative to ``tree``); the failures.

    A case whose pins are None is skipped (the run must report it instead).  A client
    that succeeds but picks other versions than the model is a failure too: the view
    then offers something the slice did not mean to (empty pins: not compared)."""
    jobs = [(c, leg) for c in all_cases if c.pins is not None for leg in legs(c)]
    uses_server = any(leg.transport == "server" for _, leg in jobs)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(SubprocessServer(tree, args=["-q"])) if uses_server else None
        scratch_root = Path(stack.enter_context(_scratch(clients.work)))

        def one(job: tuple[int, tuple[Case, Leg]]) -> Failure | None:
            n, (case, leg) = job
            if leg.transport == "server":
                assert server is not None
                url = f"{server.base}/{index(case.env)}/"
            else:
                url = (tree / index(case.env)).as_uri() + "/"
            return clients.attempt(case, leg, url, scratch_root / str(n))[0]

        for env, client in sorted({(c.env, leg.client) for c, leg in jobs}):
            clients.venv(env, client)
        with ThreadPoolExecutor(workers) as pool:
            return [f for f in pool.map(one, enumerate(jobs)) if f is not None]


@contextlib.contextmanager
def _scratch(work: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="slice-check-", dir=work))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
