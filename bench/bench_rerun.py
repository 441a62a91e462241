"""Benchmark: what a no-op re-run of a bundle costs against its first run.

The synthetic graph of bench_mirror.py (fake upstream, 40 ms latency, three
envs, wheels plus sdists whose build requirements are read) is mirrored once,
then mirrored again with nothing changed upstream.  A re-run should cost what
changed: here nothing, so its wall time, requests and bytes should be a small
fraction of the first run's.

    python bench/bench_rerun.py [--projects 150] [--reruns 2] [--latency 0.04]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_mirror import build_graph, run, write_configs  # noqa: E402
from tests.fakeindex import FakeIndex  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=150)
    parser.add_argument("--reruns", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.04)
    args = parser.parse_args()
    cache = ROOT / "bench" / ".cache" / "dists"
    print(f"building the synthetic graph ({args.projects} projects) in {cache} ...", flush=True)
    files, roots = build_graph(cache, args.projects)
    with tempfile.TemporaryDirectory() as tmp, FakeIndex(latency=args.latency) as index:
        work = Path(tmp)
        for path in files:
            index.add(path)
        ours_ini, _ = write_configs(work, roots)
        tree = work / "tree"
        tree.mkdir()
        cmd = [sys.executable, "-m", "morgan_like", "mirror", "-q", "-i", str(tree)]
        cmd += ["-c", str(ours_ini), "-I", index.url]
        wall, sent, rss = run(cmd, index)
        requests = len(index.requests)
        tree_files = sum(1 for p in (tree / "packages").rglob("*") if p.suffix in (".whl", ".gz"))
        print(
            f"first run   {wall:6.2f}s  {requests:5d} requests  {sent / 1e6:7.2f} MB  "
            f"peak RSS {rss / 1024:5.1f} MB  ({tree_files} files in the tree)",
            flush=True,
        )
        for i in range(args.reruns):
            rewall, resent, rerss = run(cmd, index)
            rerequests = len(index.requests)
            print(
                f"re-run {i + 1}    {rewall:6.2f}s  {rerequests:5d} requests  {resent / 1e6:7.2f} MB  "
                f"peak RSS {rerss / 1024:5.1f} MB  -> {rewall / wall:.1%} of the first run's time",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
