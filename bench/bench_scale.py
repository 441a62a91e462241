"""PyPI's scale: ``morgan-like sync --index-only`` against a simulated upstream of N projects.

The upstream is a threaded stdlib HTTP server (a child process, so that it does not
share an interpreter lock with anything measured) serving:

* a PEP 691 root index, ``{"meta": {"_last-serial"}, "projects": [{"name",
  "_last-serial"}]}``, with names shaped like PyPI's (words, hyphens, underscores,
  digits and capitals; about 14 characters on average, as PyPI's 927,088 names);
* each project's PEP 691 page, made on request: one wheel, its serial derived from
  the name, so the server holds no per-project map.

Figures (``/usr/bin/time -f "%M %U %S"``: peak RSS, CPU):

* ``first``: a first index-only sync of each ``--first`` size (default 50,000), then a
  no-op re-sync of the same tree; with two sizes or more, the first sync's peak RSS
  per project between them (the slope) and what it gives at ``--projects``;
* ``kept``: the same first syncs with the writer keeping landing rows for ``--kept``
  projects only (what a sync does past pagesummary.MAX_KEPT, 200,000): the slope
  beyond that bound, from sizes a session can afford;
* ``root``: the root-list parse and the plan against an empty state, in a child
  process, at ``--projects`` names (default 900,000): what the serial list alone costs;
* ``noop``: a no-op re-sync at ``--projects`` names, of a tree whose state is seeded
  through ``TreeState`` (the state a first sync leaves: every project at its serial),
  since a first sync of 900,000 pages does not fit a session on a 2-core machine; one
  sync writes the root pages and local.json the seeded state lacks, the next is timed.

Usage::

    .venv/bin/python bench/bench_scale.py                      # all three
    .venv/bin/python bench/bench_scale.py --only root --projects 927088
    .venv/bin/python bench/bench_scale.py --only first --first 50000 100000
    .venv/bin/python bench/bench_scale.py --only kept --first 100000 200000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

_WORDS = [
    "py",
    "django",
    "flask",
    "sql",
    "alchemy",
    "data",
    "json",
    "yaml",
    "http",
    "client",
    "api",
    "tools",
    "utils",
    "test",
    "aws",
    "azure",
    "google",
    "cloud",
    "sdk",
    "plugin",
    "pytest",
    "async",
    "io",
    "web",
    "scraper",
    "bot",
    "ml",
    "torch",
    "tensor",
    "vision",
    "text",
    "nlp",
    "parse",
    "config",
    "log",
    "cli",
    "core",
    "lib",
    "kit",
    "auth",
    "oauth",
    "redis",
    "mongo",
    "kafka",
    "grpc",
    "proto",
    "ai",
    "model",
    "odoo",
    "addon",
    "l10n",
    "openstack",
    "ansible",
    "collection",
    "sphinx",
    "theme",
    "jupyter",
    "widget",
    "geo",
    "map",
    "time",
    "mock",
    "fake",
    "stub",
    "db",
    "orm",
    "rest",
    "graph",
    "ql",
    "fast",
    "simple",
    "easy",
    "my",
    "super",
    "mini",
    "micro",
    "hello",
    "world",
]


def project_names(count: int, seed: int = 923) -> list[str]:
    """``count`` distinct names shaped like PyPI's: 1-4 words joined by ``-``, ``_``,
    ``.`` or nothing, sometimes a number or capitals (distinct once normalized)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    names = []
    while len(names) < count:
        words = [rng.choice(_WORDS) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))]
        if rng.random() < 0.3:
            words.append(str(rng.randrange(1, 1000)))
        if rng.random() < 0.4:
            words.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4)))
        name = rng.choice(("-", "-", "_", "", ".")).join(words)
        if rng.random() < 0.15:
            name = name.title()
        key = _normalize(name)
        if key in seen:
            name = f"{name}-{len(names)}"
            key = _normalize(name)
        seen.add(key)
        names.append(name)
    return names


def _normalize(name: str) -> str:
    out = []
    sep = False
    for ch in name.lower():
        if ch in "-_.":
            sep = True
            continue
        if sep and out:
            out.append("-")
        sep = False
        out.append(ch)
    return "".join(out)


def serial_of(normalized: str) -> int:
    return 1 + zlib.crc32(normalized.encode()) % 20_000_000


def root_body(names: list[str]) -> bytes:
    projects = [{"name": n, "_last-serial": serial_of(_normalize(n))} for n in names]
    last = max(p["_last-serial"] for p in projects)
    doc = {"meta": {"api-version": "1.1", "_last-serial": last}, "projects": projects}
    return json.dumps(doc).encode()


def page_body(normalized: str) -> bytes:
    wheel = f"{normalized.replace('-', '_')}-1.0-py3-none-any.whl"
    digest = hashlib.sha256(wheel.encode()).hexdigest()
    doc = {
        "meta": {"api-version": "1.1", "_last-serial": serial_of(normalized)},
        "name": normalized,
        "versions": ["1.0"],
        "files": [
            {
                "filename": wheel,
                "url": f"/files/{wheel}",
                "hashes": {"sha256": digest},
                "size": 1000,
                "upload-time": "2024-01-01T00:00:00.000000Z",
            }
        ],
    }
    return json.dumps(doc).encode()


def serve(count: int, port_file: str) -> None:
    """The child process: the upstream of ``count`` projects, until terminated."""
    root = root_body(project_names(count))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: with Nagle's algorithm the body waits
        # for the client's delayed ACK of the headers, some 40 ms a request.
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            parts = [p for p in path.split("/") if p]
            if parts == ["simple"]:
                body = root
            elif len(parts) == 2 and parts[0] == "simple":
                body = page_body(parts[1])
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


class Upstream:
    def __init__(self, count: int) -> None:
        self.port_file = tempfile.mktemp(prefix="bench-scale-port-")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(count), self.port_file]
        )
        while not os.path.exists(self.port_file) or not Path(self.port_file).read_text():
            if self.proc.poll() is not None:
                raise SystemExit("the upstream did not start")
            time.sleep(0.2)
        self.url = f"http://127.0.0.1:{Path(self.port_file).read_text()}/simple/"
        with socket.create_connection(("127.0.0.1", int(self.url.split(":")[2].split("/")[0]))):
            pass

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        os.unlink(self.port_file)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def timed(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS MiB, CPU seconds) of one command."""
    started = time.perf_counter()
    run = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", *cmd], capture_output=True, text=True, env=_env()
    )
    wall = time.perf_counter() - started
    last = run.stderr.strip().splitlines()[-1].split()
    if run.returncode != 0:
        print(f"  ! exited {run.returncode}: {run.stderr[-800:]}", file=sys.stderr)
    return wall, int(last[0]) // 1024, float(last[1]) + float(last[2])


def sync(tree: Path, upstream: Upstream) -> tuple[float, int, float]:
    cmd = [sys.executable, "-m", "morgan_like", "sync", "-i", str(tree), "-q"]
    return timed(cmd + ["-I", upstream.url, "--index-only", "--skip-server-copy"])


def show(label: str, figures: tuple[float, int, float], projects: int) -> None:
    wall, rss, cpu = figures
    rate = f"{projects / wall:8.0f} projects/s" if "first" in label else ""
    print(f"{label:<34} wall {wall:7.2f} s  peak RSS {rss:5d} MiB  CPU {cpu:7.2f} s  {rate}")


def slopes(peaks: list[tuple[int, int]], target: int) -> None:
    """The first sync's peak RSS per project between consecutive sizes, and the peak it
    gives at ``target`` projects from the last two sizes."""
    for (n1, rss1), (n2, rss2) in zip(peaks, peaks[1:]):
        slope = (rss2 - rss1) * 1024 * 1024 / (n2 - n1)
        at = rss2 + slope * (target - n2) / (1024 * 1024)
        print(
            f"first-sync peak RSS slope {n1:,} -> {n2:,}: {slope:6.0f} bytes a project; "
            f"at {target:,} projects: {at:6.0f} MiB"
        )


# A first sync whose writer keeps landing rows for at most argv[3] projects (what a sync
# past pagesummary.MAX_KEPT projects does from there on), to see the slope beyond it.
_KEPT = """
import sys
from morgan_like.tree import pagesummary
pagesummary.PageSummaries.__init__.__defaults__ = (int(sys.argv[3]),)
from morgan_like.cli import main
args = ["sync", "-i", sys.argv[1], "-q", "-I", sys.argv[2], "--index-only", "--skip-server-copy"]
sys.exit(main(args))
"""

_ROOT_ONLY = """
import sys
from morgan_like.index.upstream import Upstream
from morgan_like.index.serials import fetch_serials
from morgan_like.modes.sync_plan import NameFilter, make_plan
with Upstream(sys.argv[1]) as up:
    listed = fetch_serials(up, "simple")
plan = make_plan(listed, {}, NameFilter(()), {})
print(len(listed.serials), len(plan.todo))
"""

_SEED = """
import sys, json
from pathlib import Path
from morgan_like.tree.state import TreeState
from morgan_like.dists.serials import parse_root_serials
listed = parse_root_serials(Path(sys.argv[2]).read_bytes(), "bench")
with TreeState(Path(sys.argv[1])) as state:
    for name, serial in listed.serials.items():
        state.set_project(name, serial)
    state.set_sync_value("serial", str(listed.last_serial))
    state.set_sync_value("serial-source", "simple")
    state.commit()
"""


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=900_000)
    parser.add_argument("--first", type=int, nargs="+", default=[50_000])
    parser.add_argument("--only", choices=("first", "kept", "root", "noop"))
    parser.add_argument("--kept", type=int, default=2000, help="--only kept: rows kept")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        if args.only in (None, "first"):
            peaks = []
            for size in sorted(args.first):
                tree = work / f"first-{size}"
                with Upstream(size) as upstream:
                    first = sync(tree, upstream)
                    show(f"first sync, {size:,} projects", first, size)
                    show(f"no-op re-sync, {size:,}", sync(tree, upstream), size)
                shutil.rmtree(tree)
                peaks.append((size, first[1]))
            slopes(peaks, args.projects)
        if args.only == "kept":
            peaks = []
            for size in sorted(args.first):
                tree = work / f"kept-{size}"
                with Upstream(size) as upstream:
                    cmd = [sys.executable, "-c", _KEPT, str(tree), upstream.url, str(args.kept)]
                    first = timed(cmd)
                    show(f"first sync, {size:,}, {args.kept:,} rows kept", first, size)
                shutil.rmtree(tree)
                peaks.append((size, first[1]))
            slopes(peaks, args.projects)
        if args.only in (None, "root", "noop"):
            with Upstream(args.projects) as upstream:
                if args.only in (None, "root"):
                    cmd = [sys.executable, "-c", _ROOT_ONLY, upstream.url]
                    show(f"root list + plan, {args.projects:,}", timed(cmd), args.projects)
                if args.only in (None, "noop"):
                    tree = work / f"noop-{args.projects}"
                    body = work / "root.json"
                    body.write_bytes(root_body(project_names(args.projects)))
                    seeded = timed([sys.executable, "-c", _SEED, str(tree), str(body)])
                    show(f"(state seeded, {args.projects:,})", seeded, args.projects)
                    # The seeded state has no root pages nor local.json: this run writes them.
                    show(f"(root pages written, {args.projects:,})", sync(tree, upstream), 0)
                    show(f"no-op re-sync, {args.projects:,}", sync(tree, upstream), args.projects)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
