"""Benchmark: what a no-op re-run of a bundle costs against its first run.

The synthetic graph of bench_mirror.py (fake upstream, 40 ms latency, three
envs, wheels plus sdists whose build requirements are read) is mirrored into
two trees: one while the upstream sends ``ETag`` / ``Last-Modified`` (a re-run
gets 304s), one while it strips them, as many proxies do (a re-run gets every
page whole and must compare it with the last run's).  Then each is mirrored
again with nothing changed upstream, the two alternated.  A re-run should cost
what changed: here nothing, so its wall time should be a small fraction of
its own tree's first run (targets: 10 % with validators, 25 % without).

It also prints the floor of any no-op re-run, measured in the same rounds: a
fresh interpreter importing what ``mirror`` imports, plus one round trip at the
upstream's latency (every page asked for at once); and the rounds the page check
needs with the connections an upstream keeps (``Upstream.pool_size``).

    python bench/bench_rerun.py [--projects 150] [--reruns 2] [--firsts 1] [--latency 0.04]

On a loaded machine one first run can be far off: ``--firsts N`` makes N first
runs per mode (each into a fresh tree, the modes alternated) and divides by the
fastest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_mirror import build_graph, run, write_configs  # noqa: E402
from morgan_like.index.upstream import Upstream  # noqa: E402
from tests.fakeindex import FakeIndex  # noqa: E402

# mode, the upstream sends ETag / Last-Modified, the target (re-run / first run)
MODES = (("validators", True, 0.10), ("stripped", False, 0.25))
# What every mirror run imports before it does anything.
IMPORTS = "import morgan_like.cli, morgan_like.cli.commands, morgan_like.modes.bundle"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=150)
    parser.add_argument("--reruns", type=int, default=2)
    parser.add_argument("--firsts", type=int, default=1)
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
        firsts: dict[str, float] = {}
        reruns: dict[str, list[float]] = {mode: [] for mode, _, _ in MODES}

        def mirror(mode: str, validators: bool, label: str, tree: Path) -> float:
            tree.mkdir(exist_ok=True)
            index.page_validators = validators
            cmd = [sys.executable, "-m", "morgan_like", "mirror", "-q", "-i", str(tree)]
            cmd += ["-c", str(ours_ini), "-I", index.url]
            wall, sent, rss = run(cmd, index)
            requests = len(index.requests)
            shown = mode in firsts and label != "first"
            share = f"  -> {wall / firsts[mode]:.1%} of the first run" if shown else ""
            print(
                f"{mode:10s} {label:9s} {wall:6.2f}s  {requests:5d} requests  "
                f"{sent / 1e6:7.2f} MB  peak RSS {rss / 1024:5.1f} MB{share}",
                flush=True,
            )
            return wall

        for i in range(args.firsts):
            for mode, validators, _ in MODES:
                wall = mirror(mode, validators, "first", work / f"{mode}-{i}")
                firsts[mode] = min(wall, firsts.get(mode, wall))
        imports: list[float] = []
        for i in range(args.reruns):
            for mode, validators, _ in MODES:  # each re-run beside an import alone
                tree = work / f"{mode}-{args.firsts - 1}"
                reruns[mode].append(mirror(mode, validators, f"re-run {i + 1}", tree))
                imports.append(run([sys.executable, "-c", IMPORTS], index)[0])
                print(f"{'imports':10s} {f'round {i + 1}':9s} {imports[-1]:6.2f}s", flush=True)
        print()
        pages = len(
            json.loads((work / "validators-0" / ".morgan-like" / "plan.json").read_bytes())["pages"]
        )
        pool = Upstream.__init__.__kwdefaults__["pool_size"]
        rounds = -(-pages // pool)
        floor = min(imports) + args.latency
        check = min(imports) + rounds * args.latency
        for mode, _, _ in MODES:
            print(
                f"floor / first run, {mode:10s}: interpreter + imports {min(imports):.2f}s + one "
                f"round {args.latency:.2f}s = {floor / firsts[mode]:.1%}; with the check's "
                f"{rounds} rounds ({pages} pages, {pool} connections) {check / firsts[mode]:.1%}"
            )
        for mode, _, target in MODES:
            best = min(reruns[mode]) / firsts[mode]
            verdict = "met" if best <= target else "missed"
            print(
                f"no-op re-run / first run, {mode:10s}: {best:.1%} (best of {args.reruns} re-runs "
                f"/ best of {args.firsts} first runs; target <= {target:.0%}: {verdict})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
