"""Benchmark: tree state at full-mirror scale (50,000 projects, 500,000 files).

Writes a synthetic tree through the real TreeWriter (tiny sdists, so the disk is
not the subject), then measures, each in a fresh child process:

* a no-op publish (nothing changed);
* a publish after changing one project, and the size of its diff-file;
* ``server.py --verify`` on the tree (time and peak RSS), with every CPython the
  machine has among 3.6 and the running one;
* ``server.py`` start-up: time until ``/simple/`` answers.

Peak RSS is the child's max RSS (``/usr/bin/time -f %M`` when present, else
``getrusage``).  Targets from the issue: no-op publish < 2 s, one-project change
< 2 s, verify < 300 MB.  Not a test: the machine is shared and noisy.

    python bench/bench_tree.py [--projects 50000] [--files 10] [--dir PATH] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from morgan_like.dists.links import RemoteFile  # noqa: E402
from morgan_like.tree.layout import package_relpath  # noqa: E402
from morgan_like.tree.publish import publish  # noqa: E402
from morgan_like.tree.state import TreeState  # noqa: E402
from morgan_like.tree.writer import TreeWriter  # noqa: E402

SERVER = ROOT / "server.py"
PY36 = Path("/root/.pyenv/versions/3.6.15/bin/python")
CONFIG = b"[requirements]\n"

PUBLISH = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from morgan_like.dists.links import RemoteFile
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.publish import DiffRequest, publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter
tree = Path({tree!r})
started = time.perf_counter()
with TreeState(tree) as state:
    writer = TreeWriter(tree, state)
    name = {change!r}
    if name:
        files = writer.existing_files(name)
        path = tree / package_relpath(name, name + "-99.0.tar.gz")
        path.write_bytes(b"changed " + str(time.time()).encode())
        files.append(RemoteFile(path.name, "https://upstream.invalid/" + path.name))
        writer.write_project(name, files, last_serial={serial})  # upstream's new serial
    done = publish(writer, server=Path({server!r}).read_bytes(), config={config!r},
                   diff=DiffRequest({diff!r}))
print("%.3f %d" % (time.perf_counter() - started, len(done.changed)))
"""


def _timed(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MiB, stdout) of a child process."""
    time_bin = shutil.which("time") or "/usr/bin/time"
    fd, rss_path = tempfile.mkstemp()
    os.close(fd)
    wrap = [time_bin, "-f", "%M", "-o", rss_path] if os.path.exists(time_bin) else []
    started = time.perf_counter()
    proc = subprocess.run([*wrap, *cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    try:
        rss = int(Path(rss_path).read_text().split()[-1]) // 1024
    except (ValueError, IndexError):
        rss = 0
    os.unlink(rss_path)
    return elapsed, rss, proc.stdout


def build(tree: Path, projects: int, files: int) -> float:
    started = time.perf_counter()
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        for i in range(projects):
            name = f"proj{i:06d}"
            listed = []
            for v in range(files):
                filename = f"{name}-{v}.0.tar.gz"
                data = f"{filename}\n".encode()
                path = tree / package_relpath(name, filename)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                # as the downloader does: recorded once, never re-hashed
                state.record(path.relative_to(tree).as_posix(), len(data), _sha(data))
                listed.append(RemoteFile(filename, f"https://upstream.invalid/{filename}"))
            writer.write_project(name, listed, last_serial=i + 1)
            if i % 5000 == 4999:
                state.commit()
                print(f"  {i + 1} projects", file=sys.stderr)
        publish(writer, server=SERVER.read_bytes(), config=CONFIG)
    return time.perf_counter() - started


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _publish(
    tree: Path, change: str | None, diff: Path, serial: int = 0
) -> tuple[float, float, int, str]:
    code = PUBLISH.format(
        root=str(ROOT),
        tree=str(tree),
        change=change,
        server=str(SERVER),
        config=CONFIG,
        diff=str(diff),
        serial=serial,
    )
    wall, rss, out = _timed([sys.executable, "-c", code])
    inner, _changed = out.split()
    return wall, float(inner), rss, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _startup(tree: Path, python: str) -> float:
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [python, str(SERVER), "-i", str(tree), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < 30:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=5) as r:
                    r.read()
                return time.perf_counter() - started
            except OSError:
                time.sleep(0.01)
        return float("nan")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=10, help="files per project")
    parser.add_argument("--dir", type=Path, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the tree afterwards")
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-tree-"))
    tree = base / "tree"
    if not (tree / "manifest.json").exists():
        print(f"building {args.projects} projects x {args.files} files in {tree} ...")
        print(f"  built in {build(tree, args.projects, args.files):.1f}s")
    files = sum(1 for _ in (tree / "packages").rglob("*"))
    print(f"tree: {args.projects} projects, {files} entries under packages/")
    try:
        rows = []
        wall, inner, rss, _ = _publish(tree, None, base / "diff-noop")
        noop_lines = len((base / "diff-noop").read_text().split())
        rows.append(("no-op publish", f"{inner:.2f}s (process {wall:.2f}s)", f"{rss} MB", "< 2 s"))
        wall, inner, rss, _ = _publish(tree, "proj000042", base / "diff-one", args.projects + 1)
        diff = (base / "diff-one").read_text().split()
        rows.append(
            ("one-project publish", f"{inner:.2f}s (process {wall:.2f}s)", f"{rss} MB", "< 2 s")
        )
        pythons = [sys.executable] + ([str(PY36)] if PY36.exists() else [])
        for python in pythons:
            version = subprocess.run(
                [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            wall, rss, out = _timed([python, str(SERVER), "--verify", "-i", str(tree)])
            summary = out.strip().splitlines()[-1] if out.strip() else "?"
            rows.append((f"verify (CPython {version})", f"{wall:.1f}s", f"{rss} MB", "< 300 MB"))
            print(f"  {summary}")
            rows.append(
                (f"server start-up ({version})", f"{_startup(tree, python):.2f}s", "", "< 1 s")
            )
        width = max(len(r[0]) for r in rows)
        for name, took, rss, target in rows:
            print(f"{name:<{width}}  {took:<26} {rss:>8}   target {target}")
        print(f"no-op diff-file: {noop_lines} paths")
        print(f"one-project diff-file: {len(diff)} paths: {' '.join(diff)}")
        print(f"manifest.json: {(tree / 'manifest.json').stat().st_size} bytes")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
