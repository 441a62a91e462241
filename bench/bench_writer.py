"""Benchmark: the tree writer alone, per project, in bench_sync's shape.

    python bench/bench_writer.py [--projects 3000] [--files] [--rounds 3] [--code DIR ...]

Each project has three releases, a wheel and an sdist each, as bench/bench_sync.py's
upstream lists them; ``--files`` places the files first (not timed) and records them
as a sync does, else the pages are index-only.  The projects go through
TreeWriter.write_project (with the sync's sync_done), then publish.  Each round runs
every ``--code`` tree (a checkout, e.g. one made with ``git archive REV | tar -x -C DIR``;
default: this one) in a child process, alternated, and prints its CPU and wall time
per project; the ratio of the minimum CPU of each against the first is what to read
on a shared machine.  Not a test: the machine is noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(projects: int, root: Path, files: bool) -> None:
    from morgan_like.dists.links import RemoteFile
    from morgan_like.tree.publish import publish
    from morgan_like.tree.state import TreeState
    from morgan_like.tree.writer import TreeWriter

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    work = []
    for i in range(projects):
        name, listed = f"proj{i:06d}", []
        for version in ("1.0", "1.1", "2.0"):
            for filename in (f"{name}-{version}-py3-none-any.whl", f"{name}-{version}.tar.gz"):
                data = hashlib.sha256(filename.encode()).digest() * 40
                if files:
                    (root / "packages" / name).mkdir(parents=True, exist_ok=True)
                    (root / "packages" / name / filename).write_bytes(data)
                url = f"http://127.0.0.1:1/packages/{name}/{filename}"
                sha = hashlib.sha256(data).hexdigest()
                stamp = "2024-01-01T00:00:00.000000Z"
                listed.append(RemoteFile(filename, url, sha, ">=3.8", False, None, 1280, stamp))
        work.append((name, listed))
    state = TreeState(root)
    writer = TreeWriter(
        root, state, on_problem=lambda _: None, index_only=not files, warehouse=True
    )
    wall, cpu = time.perf_counter(), time.process_time()
    for i, (name, listed) in enumerate(work):
        if files:
            for rf in listed:
                state.record(f"packages/{name}/{rf.filename}", 1280, rf.sha256 or "", new=True)
        writer.write_project(name, listed, 3 * i + 3, replace=True, keep_empty=True)
        state.sync_done(name)
    publish(writer, serial_list=True, synced_serial=3 * projects)
    state.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{cpu / projects * 1000:.3f} {wall / projects * 1000:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=3000)
    parser.add_argument("--files", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", type=Path, action="append", default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.projects, args.child, args.files)
        return 0
    codes = args.code or [REPO]
    work = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    best: dict[Path, float] = {}
    try:
        for _ in range(args.rounds):
            for code in codes:
                env = dict(os.environ, PYTHONPATH=str(code))
                cmd = [sys.executable, __file__, "--projects", str(args.projects)]
                cmd += ["--child", str(work / "tree"), *(["--files"] if args.files else [])]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                cpu, wall = map(float, out.stdout.split())
                best[code] = min(best.get(code, cpu), cpu)
                print(f"{code}: {cpu:.3f} ms CPU, {wall:.3f} ms wall per project")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = best[codes[0]]
    for code in codes:
        print(
            f"min {code}: {best[code]:.3f} ms CPU per project, {first / best[code]:.2f}x the first"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
