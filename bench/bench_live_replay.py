"""The live example replayed on 127.0.0.1: two checkouts alternated, same upstream, same run.

    python bench/bench_live_replay.py TREE [--against REV|DIR] [--code DIR] [--rounds 4]
        [--latency 0.04]

``bench/bench_live.py`` measures against live PyPI through this machine's proxy,
whose latency and the machine's load move a run by seconds from one round to the
next.  This script serves the files of a tree that bench_live built (``TREE``:
its ``--work`` folder's ``ours``) from the test suite's fake upstream
(tests/fakeindex.py, ``--latency`` seconds per request), builds morgan's README
example from it with the working tree's code (or ``--code DIR``'s, a folder holding
``morgan_like/`` and ``server.py``) and with ``REV``'s (``git archive`` into a
temporary folder; or such a folder), alternating which goes first, and prints each run's
wall time and CPU (user + system, children included), the medians and the ratio
of the medians.  Only the project's files are served, so every version a
resolution picks is one the live run picked; the two trees' file lists are
compared at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_live import CONFIG, clean_env  # noqa: E402
from floor import tree_contents  # noqa: E402

from tests.fakeindex import FakeIndex  # noqa: E402


def serve(tree: Path, latency: float) -> FakeIndex:
    index = FakeIndex(latency=latency).start()
    for path in sorted((tree / "packages").glob("*/*")):
        if path.name.endswith((".whl", ".tar.gz", ".zip")):
            index.add(path)
    return index


def checkout(rev: str, dest: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "morgan_like", "server.py"],
        check=True,
        capture_output=True,
    ).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run(code: Path, tree: Path, url: str) -> tuple[float, float]:
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    (tree / "morgan.ini").write_text(CONFIG, encoding="utf-8")
    env = clean_env()
    env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-m", "morgan_like", "mirror", "-q", "-i", str(tree), "-I", url]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{code}: the run failed (exit {status}): {err[-600:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path, help="a tree bench_live.py built (its work/ours)")
    parser.add_argument("--against", default="HEAD", help="the other checkout: REV or DIR")
    parser.add_argument("--code", type=Path, default=ROOT, help="this side's code (a DIR)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.04)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    against = Path(args.against)
    other = against if against.is_dir() else checkout(args.against, work / "rev")
    codes = {"work": args.code, args.against: other}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in codes}
    index = serve(args.tree, args.latency)
    try:
        for round_no in range(args.rounds):
            order = list(codes) if round_no % 2 == 0 else list(reversed(codes))
            for name in order:
                wall, cpu = run(codes[name], work / name, index.url)
                times[name].append((wall, cpu))
                print(
                    f"round {round_no + 1} {name:10}: {wall:.2f} s wall, {cpu:.2f} s CPU",
                    flush=True,
                )
    finally:
        index.stop()
    print()
    for name, rows in times.items():
        print(
            f"{name:10}: median {statistics.median(r[0] for r in rows):.2f} s wall, "
            f"{statistics.median(r[1] for r in rows):.2f} s CPU"
        )
    work_wall = statistics.median(r[0] for r in times["work"])
    rev_wall = statistics.median(r[0] for r in times[args.against])
    print(f"work / {args.against} = {work_wall / rev_wall:.2f}x wall")
    same = tree_contents(work / "work") == tree_contents(work / args.against)
    print(f"same files in both trees: {same}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
