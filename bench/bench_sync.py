"""Full-mirror benchmark: ``morgan-like sync`` against bandersnatch 8.2 on one local upstream.

    python bench/bench_sync.py [--projects 5000] [--file-projects 1000] [--changes N] [--only-files]

A synthetic upstream (N projects, three releases each; a wheel and an sdist per
release) is written to disk once and served by nginx, with what both tools read:
the PEP 691 root index with ``_last-serial`` (``/simple`` and ``/simple/``), PEP 691
project pages (ours), Warehouse JSON at ``/pypi/<name>/json`` with its
``X-PyPI-Last-Serial`` header (bandersnatch), and the files.  Each measurement runs
both tools, alternating which goes first, each in its own process wrapped in
``/usr/bin/time -f %M`` for peak RSS:

1. first sync, index-only (ours ``--index-only``; bandersnatch ``release-files = false``);
2. a no-op re-sync of that tree;
3. a re-sync after ``--changes`` projects gained a release (default: 1 % of the phase's);
4. first sync with files, on the first ``--file-projects`` projects (bandersnatch
   ``release-files = true``).

It prints each run's wall time, projects/s (MB/s with files) and peak RSS, the
ratio bandersnatch time / our time, the issue's target for that row (first
sync index-only >= 3x, with files >= 2x, re-syncs > 1x: "met" or "missed"), and
last each side's CPU seconds (user + system, worker processes included) and
their ratio, which a busy machine moves less than the wall times.  bandersnatch needs Python >= 3.12: a venv is
made in ~/.cache/morgan-like-bench/bandersnatch (``pip install bandersnatch==8.2.0``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "morgan-like-bench"
BS_VENV = CACHE / "bandersnatch"
# The venv .ci/run prepares for the bandersnatch tests serves as well when it is there.
TEST_VENV = Path.home() / ".cache" / "morgan-like-test-bandersnatch" / "venv"
PYTHONS = [Path.home() / ".pyenv/versions" / v / "bin/python" for v in ("3.12.1", "3.13.0")]
VERSIONS = ("1.0", "1.1", "2.0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bandersnatch() -> Path:
    for exe in (BS_VENV / "bin" / "bandersnatch", TEST_VENV / "bin" / "bandersnatch"):
        if exe.exists():
            return exe
    exe = BS_VENV / "bin" / "bandersnatch"
    python = next((p for p in PYTHONS if p.exists()), None)
    if python is None:
        sys.exit("bandersnatch 8.2 needs Python >= 3.12 (no pyenv 3.12/3.13 found)")
    subprocess.run([str(python), "-m", "venv", str(BS_VENV)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run(
        [str(BS_VENV / "bin/pip"), "install", "-q", "bandersnatch==8.2.0"], check=True, env=env
    )
    return exe


class Upstream:
    """The synthetic index on disk, and nginx serving it on ``port``."""

    def __init__(self, root: Path, port: int, with_files: bool = True) -> None:
        self.root, self.port = root, port
        self.with_files = with_files  # an index-only sync reads no file: none written
        self.serial = 0
        self.serials: dict[str, int] = {}
        self.files: dict[str, list[tuple[str, str, int]]] = {}  # name -> (filename, sha, size)
        self.proc: subprocess.Popen | None = None
        self._dirty: set[str] = set()

    def _file(self, name: str, filename: str) -> tuple[str, str, int]:
        data = hashlib.sha256(filename.encode()).digest() * 40  # 1280 bytes, distinct
        if self.with_files:
            path = self.root / "packages" / name / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return filename, hashlib.sha256(data).hexdigest(), len(data)

    def release(self, name: str, version: str) -> None:
        self.serial += 1
        self.serials[name] = self.serial
        for filename in (f"{name}-{version}-py3-none-any.whl", f"{name}-{version}.tar.gz"):
            self.files.setdefault(name, []).append(self._file(name, filename))
        self._dirty.add(name)

    def _pages(self, name: str) -> None:
        base = f"http://127.0.0.1:{self.port}"
        files, releases = [], {}
        for filename, sha, size in self.files[name]:
            url = f"/packages/{name}/{filename}"
            stamp = "2024-01-01T00:00:00.000000Z"
            files.append(
                {"filename": filename, "url": url, "hashes": {"sha256": sha}, "size": size,
                 "requires-python": ">=3.8", "yanked": False, "upload-time": stamp}
            )  # fmt: skip
            version = filename[len(name) + 1 :].split("-")[0].removesuffix(".tar.gz")
            releases.setdefault(version, []).append(
                {"filename": filename, "url": base + url, "digests": {"sha256": sha},
                 "size": size, "upload_time_iso_8601": stamp, "requires_python": ">=3.8",
                 "yanked": False, "yanked_reason": None, "core-metadata": False,
                 "packagetype": "sdist" if filename.endswith(".gz") else "bdist_wheel"}
            )  # fmt: skip
        serial = self.serials[name]
        page = {"meta": {"api-version": "1.1", "_last-serial": serial}, "name": name,
                "versions": sorted(releases), "files": files}  # fmt: skip
        (self.root / "simple" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "simple" / name / "index.json").write_text(json.dumps(page))
        doc = {"info": {"name": name, "version": max(releases)}, "last_serial": serial,
               "releases": releases, "urls": releases[max(releases)]}  # fmt: skip
        (self.root / "pypi" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "pypi" / name / "json").write_text(json.dumps(doc))

    def publish(self) -> None:
        """Pages of the changed projects, the root index, and the serial map nginx sends
        as X-PyPI-Last-Serial."""
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
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location = /simple {{ default_type application/vnd.pypi.simple.v1+json;
                          try_files /simple/index.json =404; }}
    location /simple/ {{ default_type application/vnd.pypi.simple.v1+json;
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


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int, float]:
    """(wall seconds, peak RSS KiB, exit code, CPU seconds: user + system, children too)."""
    started = time.perf_counter()
    run = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", *cmd], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - started
    last = run.stderr.strip().splitlines()[-1].split() if run.stderr.strip() else []
    rss, cpu = (int(last[0]), float(last[1]) + float(last[2])) if len(last) == 3 else (0, 0.0)
    if run.returncode != 0:
        print(f"  ! {cmd[0]} exited {run.returncode}: {run.stderr[-500:]}", file=sys.stderr)
    return wall, rss, run.returncode, cpu


def ours(tree: Path, upstream: Upstream, index_only: bool) -> tuple[float, int, int]:
    cmd = [sys.executable, "-m", "morgan_like", "sync", "-i", str(tree), "-q"]
    cmd += ["-I", f"http://127.0.0.1:{upstream.port}/simple/"]
    return timed(cmd + (["--index-only"] if index_only else []))


def theirs(exe: Path, work: Path, upstream: Upstream, index_only: bool) -> tuple[float, int, int]:
    conf = work / "bandersnatch.conf"
    work.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "[mirror]\n"
        f"directory = {work / 'mirror'}\nmaster = http://127.0.0.1:{upstream.port}\n"
        "allow-non-https = true\njson = false\ncore-metadata = false\nworkers = 10\n"
        f"release-files = {'false' if index_only else 'true'}\n"
        f"root_uri = http://127.0.0.1:{upstream.port}\n"
        "timeout = 30\nglobal-timeout = 36000\nstop-on-error = false\n"
        "hash-index = false\nsimple-format = ALL\ncompare-method = stat\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return timed([str(exe), "-c", str(conf), "mirror"], env)


def row(
    label: str, n: int, mine: tuple, other: tuple, target: float, mb: float | None = None
) -> None:
    def rate(wall: float) -> str:
        if mb is not None:
            return f"{mb / wall:7.1f} MB/s {n / wall:7.0f} proj/s"
        return f"{n / wall:7.0f} proj/s" if n else ""

    print(
        f"{label:28} ours {mine[0]:7.2f} s {rate(mine[0])} {mine[1] / 1024:5.0f} MB | "
        f"bandersnatch {other[0]:7.2f} s {rate(other[0])} {other[1] / 1024:5.0f} MB | "
        f"ratio {other[0] / mine[0]:5.2f}x (target {'>=' if target > 1 else '>'} {target:g}x: "
        f"{'met' if other[0] / mine[0] >= target and other[0] > mine[0] else 'missed'}) | "
        # CPU moves less than wall time with what else the machine runs.
        f"CPU ours {mine[3]:6.2f} s bandersnatch {other[3]:6.2f} s ratio {other[3] / max(mine[3], 0.01):5.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=5_000)
    parser.add_argument("--file-projects", type=int, default=1_000)
    parser.add_argument("--changes", type=int, default=None, help="default: 1 %% of each phase")
    parser.add_argument("--work", type=Path, default=None, help="keep trees here")
    parser.add_argument(
        "--only-files", action="store_true", help="only the with-files rows (no index-only phase)"
    )
    args = parser.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is needed to serve the synthetic upstream (apt-get install nginx)")
    exe = bandersnatch()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # nginx's workers read the upstream as another user
    results = {}
    phases = (
        ("index-only", args.projects, True, 3.0),
        ("with files", args.file_projects, False, 2.0),
    )
    for phase, n, index_only, target in phases[1:] if args.only_files else phases:
        changes = args.changes or max(1, n // 100)
        up = Upstream(work / f"upstream-{phase[:5].strip()}", _free_port(), not index_only)
        shutil.rmtree(up.root, ignore_errors=True)
        started = time.perf_counter()
        for i in range(n):
            for version in VERSIONS:
                up.release(f"proj{i:06d}", version)
        up.publish()
        up.start()
        print(f"upstream {phase}: {n} projects in {time.perf_counter() - started:.0f} s")
        try:
            mine_tree, their_dir = (
                work / f"ours-{phase[:5].strip()}",
                work / f"theirs-{phase[:5].strip()}",
            )
            for stale in (mine_tree, their_dir):
                shutil.rmtree(stale, ignore_errors=True)
            first = [ours(mine_tree, up, index_only), theirs(exe, their_dir, up, index_only)]
            mb = None if index_only else sum(s for f in up.files.values() for _, _, s in f) / 1e6
            row(f"first sync, {phase}", n, first[0], first[1], target, mb)
            # Alternate who goes first from here on.
            other = theirs(exe, their_dir, up, index_only)
            mine = ours(mine_tree, up, index_only)
            row(f"no-op re-sync, {phase}", 0, mine, other, 1.0)
            for i in range(0, n, max(1, n // changes))[:changes]:
                up.release(f"proj{i:06d}", "3.0")
            up.publish()
            mine = ours(mine_tree, up, index_only)
            other = theirs(exe, their_dir, up, index_only)
            row(f"{changes} changes, {phase}", changes, mine, other, 1.0)
            results[phase] = first
        finally:
            up.stop()
    print(f"trees and upstreams in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
