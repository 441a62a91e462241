"""Curated slice benchmark: ``morgan-like sync`` of an allowlist with its dependencies,
against the bandersnatch workaround, on one hermetic upstream.

    python bench/bench_slice.py [--projects 2000] [--allowlist 100] [--keep 3]
                                [--change 1.0] [--seed 1] [--workers 3] [--work DIR]

The upstream is generated (a layered graph: apps -> frameworks -> ... -> leaf
utilities, apps depending on 2-8 projects of the next two layers, frameworks on 1-4,
utilities on 0-2, popular ones shared, so a closure holds ~17 projects; 3-6 releases
each, 8-15 for a few, older releases with upper bounds that newer releases broke,
Requires-Python that splits the envs, markers, extras, a few sdist-only projects
built by tinybackend in ~12 % of the closures), written to a folder and served by
nginx with what
both tools read: PEP 691 root and project pages with PEP 658 metadata (ours, and pip),
Warehouse JSON at /pypi/<name>/json with X-PyPI-Last-Serial (bandersnatch).

Two envs (CPython 3.11 and 3.12 on Linux, the pyenv interpreters); ``keep-latest``
releases of each allowlisted project.  The two contenders, in the same run, taking
turns at going first:

* ours: ``morgan-like sync -c slice.ini`` (projects, keep-latest, two [env.NAME]);
* the workaround bandersnatch's tracker gives (pypa/bandersnatch 110, 1472, 1849): for
  every env and every kept release, ``pip install --dry-run --ignore-installed
  --report`` with that env's own pip against the upstream (what ``pip freeze`` in a
  venv would say), every pin pasted into ``[allowlist] packages`` next to the
  allowlisted names, ``latest_release keep = N``; then ``bandersnatch mirror``
  (8.2, ~/.cache/morgan-like-test-bandersnatch/venv).  Its time is the pip runs plus
  bandersnatch's.

Measured: wall time of the first sync and of a re-sync after ``--change`` % of the
projects gained a release (the workaround re-runs every pip resolution: it cannot know
which closures moved), bytes on disk, and the share of (kept release, env) pairs whose
``pip install --dry-run name[extras]==V`` succeeds offline (file://) from what each
built: our env's view, bandersnatch's one index (tests/modes/slice_support.py's
check_installs, the guarantee test's check; pip runs in long-lived processes here,
BatchClients, to keep the default size under 15 minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.clients import client_env, pyenv_python  # noqa: E402
from tests.distbuilder import make_tiny_backend_wheel, read_wheel_metadata  # noqa: E402
from tests.modes.slice_support import (  # noqa: E402
    ENVS,
    Case,
    Catalog,
    Clients,
    Failure,
    Leg,
    Rel,
    cases,
    check_installs,
    write_config,
)

BANDERSNATCH = Path.home() / ".cache/morgan-like-test-bandersnatch/venv/bin/bandersnatch"
LAYERS = (0.08, 0.12, 0.16, 0.18, 0.18, 0.16, 0.12)
REACH = 40  # an sdist-only project is needed by at most this many others
# Dependencies per project: apps and frameworks many, utilities few (closures of ~20).
FANOUT = ((2, 3, 4, 5, 6, 8), (1, 2, 2, 3, 3, 4), (0, 1, 1, 1, 2, 2))
STAMP = "2024-01-01T00:00:00.000000Z"
OLD_PYTHON = '; python_version < "3.12"'
WINDOWS = '; sys_platform == "win32"'


# --- the upstream -------------------------------------------------------------------------


def _versions(rng: random.Random, count: int) -> list[str]:
    major, minor, out = 1, 0, []
    for _ in range(count):
        out.append(f"{major}.{minor}")
        if rng.random() < 0.4:
            major, minor = major + 1, 0
        else:
            minor += 1
    return out


def generate(projects: int, allowlist: int, seed: int) -> tuple[list[Rel], list[str]]:
    """The releases of every project and the allowlist (apps of the top two layers).

    Every requirement is satisfiable by its target's second release (lower bounds come
    from the first two releases, upper bounds leave out the newest one to six releases but
    never the first two, Requires-Python only ever excludes the newest or the oldest),
    so every kept
    release resolves in every env its Requires-Python admits: what fails to install
    offline fails for want of a file, never for want of a solution."""
    rng = random.Random(seed)
    names = [f"pk{i:04d}" for i in range(projects)]
    bounds, start = [], 0
    for share in LAYERS:
        end = min(projects, start + max(1, round(share * projects)))
        bounds.append((start, end))
        start = end
    bounds[-1] = (bounds[-1][0], projects)
    # 3-6 releases each; 5 % release often (boto3, setuptools): 8-15.
    counts = {i: rng.choice((3, 3, 4, 4, 5, 6)) for i in range(projects)}
    counts.update({i: rng.randint(8, 15) for i in range(projects) if rng.random() < 0.05})
    versions = {i: _versions(rng, counts[i]) for i in range(projects)}
    deps: dict[int, list[int]] = {}
    extra_of: dict[int, int] = {}
    for layer, (lo, hi) in enumerate(bounds):
        below = [i for lo2, hi2 in bounds[layer + 1 : layer + 3] for i in range(lo2, hi2)]
        # Popular projects (the first of each 50) are shared by many: numpy, requests.
        weights = [1 / (1 + (i - bounds[layer + 1][0]) % 50) ** 0.8 for i in below]
        for i in range(lo, hi):
            fanout = min(len(below), rng.choice(FANOUT[min(layer, 2)]))
            deps[i] = sorted(set(rng.choices(below, weights, k=fanout))) if fanout else []
            if below and rng.random() < 0.10:
                extra_of[i] = rng.choice(below)
    # A few sdist-only utilities (docopt, sgmllib3k): 2 % of the lower layers' projects,
    # among those few others reach (a popular one would be in every closure).
    parents: dict[int, set[int]] = {i: set() for i in range(projects)}
    for i, ds in deps.items():
        for d in ds:
            parents[d].add(i)
    reach = {}
    for i in range(projects - 1, -1, -1):  # a project's dependents come before it
        seen, todo = set(), list(parents[i])
        while todo:
            j = todo.pop()
            if j not in seen:
                seen.add(j)
                todo.extend(parents[j])
        reach[i] = len(seen)
    lower = [i for i in range(bounds[4][0], projects) if 0 < reach[i] <= REACH]
    sdist_only = set(rng.sample(lower, min(len(lower), round(0.02 * (projects - bounds[4][0])))))
    newest_py312 = {i for i in range(projects) if rng.random() < 0.10}
    oldest_py311 = {i for i in range(projects) if rng.random() < 0.05}
    rels: list[Rel] = []
    for i in range(projects):
        count = len(versions[i])
        for k, version in enumerate(versions[i]):
            reqs = []
            # Older releases had fewer dependencies, and upper bounds newer majors broke.
            for d in deps[i][: max(1, len(deps[i]) - (count - 1 - k))] if deps[i] else []:
                dv = versions[d]
                spec = f">={dv[rng.randrange(2)]}"
                if k < count - 1 and rng.random() < 0.4:
                    spec += f",<{dv[rng.randint(max(2, len(dv) - 6), len(dv) - 1)]}"
                roll = rng.random()
                marker = OLD_PYTHON if roll < 0.08 else WINDOWS if roll < 0.11 else ""
                reqs.append(f"{names[d]}{spec}{marker}")
            extras = ()
            if i in extra_of:
                extras = (("speed", (f"{names[extra_of[i]]}>={versions[extra_of[i]][0]}",)),)
            rp = None
            if k == count - 1 and i in newest_py312:
                rp = ">=3.12"
            elif k == 0 and i in oldest_py311:
                rp = "<3.12"
            pad = int(min(2e6, math.exp(rng.gauss(math.log(20_000), 1.0))))
            wheel = i not in sdist_only
            sdist = not wheel or rng.random() < 0.5
            rels.append(Rel(names[i], version, tuple(reqs), extras, rp, wheel, sdist, pad))
    apps = list(range(bounds[0][0], bounds[1][1]))
    chosen = sorted(rng.sample(apps, min(allowlist, len(apps))))
    entries = [
        f"{names[i]}[speed]" if i in extra_of and rng.random() < 0.5 else names[i] for i in chosen
    ]
    return rels, entries


class Served(Catalog):
    """The upstream folder nginx serves: files, .metadata, pages, Warehouse JSON."""

    def __init__(self, root: Path, port: int) -> None:
        super().__init__()
        self.root, self.port = root, port
        self.serial = 0
        self.serials: dict[str, int] = {}
        self.entries: dict[str, list[dict]] = {}
        self.proc: subprocess.Popen | None = None
        self._dirty: set[str] = set()
        self._build = root / "build"

    def publish(self, rel: Rel) -> None:
        name = rel.key[0]
        folder = self.root / "packages" / name
        folder.mkdir(parents=True, exist_ok=True)
        for built in rel.build(self._build):
            path = folder / built.name
            built.replace(path)
            self._add(name, path, rel.requires_python)
        self.rels[rel.key] = rel
        self.serial += 1
        self.serials[name] = self.serial
        self._dirty.add(name)

    def add_file(self, path: Path) -> None:
        name = path.name.split("-")[0]
        folder = self.root / "packages" / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.name)
        self._add(name, folder / path.name)
        self.serial += 1
        self.serials[name] = self.serial
        self._dirty.add(name)

    def _add(self, name: str, path: Path, requires_python: str | None = None) -> None:
        data = path.read_bytes()
        entry = {
            "filename": path.name,
            "url": f"/packages/{name}/{path.name}",
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "size": len(data),
            "yanked": False,
            "upload-time": STAMP,
        }
        if requires_python:  # every file of the release, as PyPI lists it
            entry["requires-python"] = requires_python
        if path.suffix == ".whl":
            meta = read_wheel_metadata(path)
            path.with_name(path.name + ".metadata").write_bytes(meta)
            entry["core-metadata"] = {"sha256": hashlib.sha256(meta).hexdigest()}
        self.entries.setdefault(name, []).append(entry)

    def _pages(self, name: str) -> None:
        base, releases = f"http://127.0.0.1:{self.port}", {}
        for e in self.entries[name]:
            filename = e["filename"]
            version = filename[len(name) + 1 :].split("-")[0].removesuffix(".tar.gz")
            releases.setdefault(version, []).append(
                {"filename": filename, "url": base + e["url"], "digests": e["hashes"],
                 "size": e["size"], "upload_time_iso_8601": STAMP,
                 "requires_python": e.get("requires-python"), "yanked": False,
                 "yanked_reason": None,
                 "packagetype": "sdist" if filename.endswith(".gz") else "bdist_wheel"}
            )  # fmt: skip
        serial = self.serials[name]
        page = {"meta": {"api-version": "1.1", "_last-serial": serial}, "name": name,
                "versions": sorted(releases), "files": self.entries[name]}  # fmt: skip
        (self.root / "simple" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "simple" / name / "index.json").write_text(json.dumps(page))
        newest = max(releases, key=lambda v: tuple(int(x) for x in v.split(".")))
        doc = {"info": {"name": name, "version": newest}, "last_serial": serial,
               "releases": releases, "urls": releases[newest]}  # fmt: skip
        (self.root / "pypi" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "pypi" / name / "json").write_text(json.dumps(doc))

    def flush(self) -> None:
        """Pages of the changed projects, the root index, the serial map (nginx reloads)."""
        for name in sorted(self._dirty):
            self._pages(name)
        self._dirty.clear()
        projects = [{"name": n, "_last-serial": s} for n, s in sorted(self.serials.items())]
        root = {"meta": {"api-version": "1.1", "_last-serial": self.serial}, "projects": projects}
        (self.root / "simple" / "index.json").write_text(json.dumps(root))
        lines = [f"/pypi/{n}/json {s};" for n, s in self.serials.items()]
        (self.root / "serials.map").write_text("\n".join(lines) + "\n")
        if self.proc is not None:
            subprocess.run(["nginx", "-p", str(self.root), "-c", "nginx.conf", "-s", "reload"])
            time.sleep(1.0)

    def start(self) -> None:
        conf = f"""
worker_processes 1; daemon off; pid nginx.pid; error_log error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off; keepalive_requests 1000000; sendfile on;
  map_hash_max_size 262144; map_hash_bucket_size 128;
  map $uri $serial {{ default ""; include serials.map; }}
  types {{ application/octet-stream whl gz metadata; }}
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location = /simple {{ default_type application/vnd.pypi.simple.v1+json;
                          try_files /simple/index.json =404; }}
    location /simple/ {{ default_type application/vnd.pypi.simple.v1+json;
                         add_header X-PyPI-Last-Serial $serial;
                         try_files $uri $uri/index.json =404; }}
    location /pypi/ {{ default_type application/json; add_header X-PyPI-Last-Serial $serial;
                       try_files $uri =404; }}
    location /packages/ {{ default_type application/octet-stream; }}
  }}
}}
"""
        (self.root / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(["nginx", "-p", str(self.root), "-c", "nginx.conf"])
        time.sleep(1.0)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"


# --- pip, many runs per process ---------------------------------------------------------

# pip's own main(), once per request line, output captured: the import and start-up
# (a third of a dry run here) paid once per process instead of 2,000 times.
DRIVER = r"""
import contextlib, io, json, sys
from pip._internal.cli.main import main
for line in sys.stdin:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main(json.loads(line))
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - reported, the next run goes on
            rc, _ = 99, out.write(repr(exc))
    sys.__stdout__.write(json.dumps({"rc": rc, "out": out.getvalue()[-3000:]}) + "\n")
    sys.__stdout__.flush()
"""


class BatchClients(Clients):
    """Clients whose pip dry runs go to long-lived driver processes of the env's own pip
    (one per env and worker).  pip caches parsed pages by URL for the life of a process,
    so ``close()`` after each pass: a pass must see the upstream as it is."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._idle: dict[str, queue.SimpleQueue[subprocess.Popen]] = {}
        self._started: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def _take(self, env: str) -> subprocess.Popen:
        with self._lock:
            idle = self._idle.setdefault(env, queue.SimpleQueue())
            if not idle.empty():
                return idle.get()
            proc = subprocess.Popen(
                [str(self.venv(env, "pip")), "-c", DRIVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=client_env(),
                text=True,
            )
            self._started.append(proc)
            return proc

    def attempt(self, case: Case, leg: Leg, url: str, scratch: Path):
        if leg.client != "pip" or leg.install:
            return super().attempt(case, leg, url, scratch)
        scratch.mkdir(parents=True)
        args = self.command(case, leg, url, scratch)[3:]  # after "python -m pip"
        proc = self._take(case.env)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(args) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
        finally:
            self._idle[case.env].put(proc)
        if answer["rc"] != 0:
            return Failure(case, leg, answer["out"]), {}
        report = json.loads((scratch / "report.json").read_text())
        return None, {i["metadata"]["name"]: i["metadata"]["version"] for i in report["install"]}

    def close(self) -> None:
        for proc in self._started:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(30)
        self._started.clear()
        self._idle.clear()


# --- the contenders ------------------------------------------------------------------------


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        print(f"  ! {Path(cmd[0]).name} exited {run.returncode}: {run.stderr[-800:]}")
    return wall


def ours(tree: Path, up: Served, config: Path) -> float:
    cmd = [sys.executable, "-m", "morgan_like", "sync", "-i", str(tree), "-q"]
    return timed([*cmd, "-I", up.url, "-c", str(config)])


def pins(
    up: Served, kept: Sequence[Case], clients: BatchClients, work: Path, workers: int
) -> tuple[set[str], float, int]:
    """The workaround's first half: every kept release resolved by its env's pip against
    the upstream; the pins (name==version), the seconds it took, how many failed."""
    started = time.perf_counter()
    leg = Leg("pip", "upstream")
    scratch = Path(tempfile.mkdtemp(prefix="pins-", dir=work))
    for env in ENVS:
        clients.venv(env, "pip")

    def one(job: tuple[int, Case]) -> tuple[bool, dict[str, str]]:
        n, case = job
        failure, picked = clients.attempt(case, leg, up.url, scratch / str(n))
        return failure is None, picked

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, enumerate(kept)))
    shutil.rmtree(scratch, ignore_errors=True)
    clients.close()
    found = {f"{n}=={v}" for ok, picked in results if ok for n, v in picked.items()}
    return found, time.perf_counter() - started, sum(1 for ok, _ in results if not ok)


def theirs(
    mirror: Path, up: Served, allowlist: Sequence[str], pinned: set[str], keep: int
) -> float:
    names = sorted({e.split("[")[0] for e in allowlist})
    conf = mirror.parent / "bandersnatch.conf"
    packages = "".join(f"    {line}\n" for line in [*names, *sorted(pinned)])
    conf.write_text(
        "[mirror]\n"
        f"directory = {mirror}\nmaster = http://127.0.0.1:{up.port}\n"
        "allow-non-https = true\njson = false\ncore-metadata = false\nworkers = 4\n"
        "release-files = true\ntimeout = 30\nglobal-timeout = 36000\nstop-on-error = false\n"
        "hash-index = false\nsimple-format = ALL\ncompare-method = stat\n\n"
        "[plugins]\nenabled =\n    allowlist_project\n    allowlist_release\n    latest_release\n\n"
        f"[allowlist]\npackages =\n{packages}\n"
        f"[latest_release]\nkeep = {keep}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env["HOME"] = str(mirror.parent)
    return timed([str(BANDERSNATCH), "-c", str(conf), "mirror"], env)


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def share(
    tree: Path, kept: Sequence[Case], clients: BatchClients, index, workers: int
) -> list[Failure]:
    """check_installs with pip --dry-run over file:// (the same check as the tests')."""
    legs = [Leg("pip", "file")]
    failures = check_installs(tree, kept, lambda c: legs, clients, index=index, workers=workers)
    clients.close()
    return failures


def _why(detail: str) -> str:
    """A failed dry run's cause, from pip's output."""
    if "tinybackend" in detail:
        return "an sdist's build requirement is missing"
    if "No matching distribution found" in detail:
        return "a dependency's release is missing"
    return "other"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--allowlist", type=int, default=100)
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--change", type=float, default=1.0, help="percent of projects")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=3, help="pip runs at a time")
    parser.add_argument("--work", type=Path, default=None, help="keep everything here")
    args = parser.parse_args()
    for need in ("nginx",):
        if not shutil.which(need):
            sys.exit(f"{need} is needed (apt-get install {need})")
    if not BANDERSNATCH.exists():
        sys.exit(f"bandersnatch 8.2 is needed at {BANDERSNATCH}")
    pythons = {env: pyenv_python(version) for env, version in ENVS.items()}
    missing = [str(p) for p in pythons.values() if not p.exists()]
    if missing:
        sys.exit(f"pyenv interpreters missing: {', '.join(missing)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-slice-"))
    for stale in ("upstream", "ours", "theirs", "clients"):
        shutil.rmtree(work / stale, ignore_errors=True)
    (work / "theirs").mkdir(parents=True)
    (work / "clients").mkdir()
    clients = BatchClients(work / "clients", pythons)

    started = time.perf_counter()
    rels, allowlist = generate(args.projects, args.allowlist, args.seed)
    up = Served(work / "upstream", _free_port())
    up.add_file(make_tiny_backend_wheel(work / "upstream" / "build"))
    for rel in rels:
        up.publish(rel)
    up.flush()
    up.start()
    size = disk(up.root / "packages")
    print(f"upstream: {args.projects} projects, {len(rels)} releases, {size / 1e6:.0f} MB "
          f"in {time.perf_counter() - started:.0f} s; allowlist {len(allowlist)}, keep {args.keep}")  # fmt: skip
    tree, mirror = work / "ours", work / "theirs" / "mirror"
    config = write_config(work / "slice.ini", allowlist, args.keep)
    rows = []
    try:
        kept = cases(up, allowlist, args.keep, pins=False)
        print(f"kept: {len(kept)} (release, env) pairs")
        mine = ours(tree, up, config)
        pinned, pip_s, pip_failed = pins(up, kept, clients, work, args.workers)
        band_s = theirs(mirror, up, allowlist, pinned, args.keep)
        rows.append(("first sync", mine, pip_s, band_s, pip_failed))

        rng = random.Random(args.seed + 1)
        moved = rng.sample(
            sorted({r.key[0] for r in rels}), max(1, round(args.projects * args.change / 100))
        )
        for name in moved:
            newest = up.releases(name)[0]
            bumped = f"{newest.version.split('.')[0]}.{int(newest.version.split('.')[1]) + 1}"
            up.publish(
                Rel(
                    newest.name,
                    bumped,
                    newest.requires,
                    newest.extras,
                    newest.requires_python,
                    newest.wheel,
                    newest.sdist,
                    newest.pad,
                )
            )
        up.flush()
        kept = cases(up, allowlist, args.keep, pins=False)
        pinned, pip_s, pip_failed = pins(up, kept, clients, work, args.workers)
        band_s = theirs(mirror, up, allowlist, pinned, args.keep)
        mine = ours(tree, up, config)
        rows.append(
            (f"{len(moved)} projects moved ({args.change:g} %)", mine, pip_s, band_s, pip_failed)
        )
    finally:
        up.stop()
    failed_ours = share(tree, kept, clients, lambda env: f"envs/{env}/simple", args.workers)
    failed_theirs = share(mirror / "web", kept, clients, lambda env: "simple", args.workers)
    for who, failed in (("ours", failed_ours), ("workaround", failed_theirs)):
        why = Counter(_why(f.detail) for f in failed)
        for reason, count in why.most_common():
            print(f"  {who}: {count} (release, env) pairs failed: {reason}")
        for failure in failed[:3]:
            lines = [line for line in failure.detail.splitlines() if line.strip()]
            said = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
            print(f"  {who}: {failure.case.requirement} in {failure.case.env}: {said[-1]}")
        if len(failed) > 3:
            print(f"  {who}: ... and {len(failed) - 3} more")
    ok_ours = (len(kept) - len(failed_ours), len(kept))
    ok_theirs = (len(kept) - len(failed_theirs), len(kept))

    print()
    print(
        f"{'':32} {'ours':>10} {'workaround':>12} {'(pip runs':>10} {'+ bandersnatch)':>16} {'ratio':>7}"
    )
    for label, mine, pip_s, band_s, failed in rows:
        total = pip_s + band_s
        note = f"  ({failed} pip runs failed against the upstream)" if failed else ""
        print(
            f"{label:32} {mine:9.1f}s {total:11.1f}s {pip_s:9.1f}s {band_s:15.1f}s {total / mine:6.1f}x{note}"
        )
    for label, mine_b, their_b in (
        ("bytes on disk", disk(tree), disk(mirror)),
        ("  of which distribution files", disk(tree / "packages"), disk(mirror / "web/packages")),
    ):
        ratio = their_b / mine_b
        print(f"{label:32} {mine_b / 1e6:8.1f}MB {their_b / 1e6:10.1f}MB {'':27} {ratio:6.2f}x")
    print(f"{'kept releases installable':32} {100 * ok_ours[0] / ok_ours[1]:8.1f} % {100 * ok_theirs[0] / ok_theirs[1]:10.1f} %"
          f"   ({ok_ours[0]}/{ok_ours[1]} and {ok_theirs[0]}/{ok_theirs[1]} (release, env) pairs, pip --dry-run over file://)")  # fmt: skip
    print(f"trees and upstream in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
