"""Live PyPI: morgan-like mirror vs morgan 0.15.0 and vs the network's floor, same run.

    python bench/bench_live.py [--rounds 3] [--connections 4] [--profile FILE]

Both tools build morgan's README example (envs i686 CPython 3.7 and x86_64
CPython 3.10; requests, protobuf 3.20.1, redis 4.1.x, xonsh[full] 0.11) from
pypi.org into a fresh folder each round, alternating which goes first.  For each
run it prints wall time, user+system CPU and peak RSS (``os.wait4``, the same
figure as ``/usr/bin/time -f %M``); ours is then run again in its tree, a no-op
re-run (the last plan replayed, see modes/bundle_replay.py); the floor
(``bench/floor.py``: the same pages and files fetched with the list known in
advance) is measured after each round.  It ends with the medians and the
ratios: morgan / ours, ours / floor, our re-run / our first run, our CPU
seconds per 100 files.  ``--profile FILE`` also runs ours once under
cProfile and prints the top lines by cumulative and by own time.

Needs the internet.  morgan 0.15.0 is installed into bench/.venv-morgan on first
use, as ``bench/bench_mirror.py`` does.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_mirror import morgan_binary  # noqa: E402
from floor import measure_floor, tree_contents  # noqa: E402

CONFIG = """\
[env.legacy]
python_version = 3.7
python_full_version = 3.7.7
os_name = posix
platform_tag = linux-i686
sys_platform = linux
platform_machine = i686
platform_python_implementation = CPython
platform_system = Linux
implementation_name = cpython

[env.edge]
os_name = posix
platform_tag = linux-x86_64
sys_platform = linux
platform_machine = x86_64
platform_python_implementation = CPython
platform_system = Linux
python_version = 3.10
python_full_version = 3.10.6
implementation_name = cpython

[requirements]
requests = >=2.24.0
protobuf = ==3.20.1
redis = >4.1.0,<4.2.1
xonsh = [full]~=0.11.0
"""


def clean_env() -> dict[str, str]:
    """The environment without pip settings that would change what either tool sees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def run(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, children included) and peak RSS in KiB."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=clean_env()
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            tail = err.read()[-800:].decode(errors="replace")
            print(f"  ! {cmd[0]} exited {status}: {tail}", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def fresh(work: Path, name: str) -> Path:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "morgan.ini").write_text(CONFIG, encoding="utf-8")
    return folder


def count_files(tree: Path) -> int:
    return sum(len(names) for names in tree_contents(tree).values())


# The CLI ends with os._exit (no slow thread teardown), so ``-m cProfile`` would never
# write its file: the profile is taken around cli.main and dumped before that exit.
PROFILED = """\
import cProfile, sys
from morgan_like.cli import main
if __name__ == "__main__":
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        main(sys.argv[2:])
    finally:
        profiler.disable()
        profiler.dump_stats(sys.argv[1])
"""


def profile(work: Path, out: Path) -> None:
    tree = fresh(work, "profiled")
    cmd = [sys.executable, "-c", PROFILED, str(out)]
    run([*cmd, "mirror", "-i", str(tree)], tree)
    stats = pstats.Stats(str(out))
    for key in ("cumulative", "tottime"):
        print(f"\n--- profile, top 25 by {key} ---")
        stats.sort_stats(key).print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="4", help="floor connection counts, e.g. 4,16")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output file")
    parser.add_argument("--skip-morgan", action="store_true")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-live-"))
    ours_cmd = [str(Path(sys.executable).parent / "morgan-like"), "mirror", "-i"]
    morgan = None if args.skip_morgan else str(morgan_binary())
    counts = tuple(int(c) for c in args.connections.split(","))
    results: dict[str, list[tuple[float, float, int]]] = {"ours": [], "morgan": []}
    floors: list[float] = []
    reruns: list[float] = []
    files = 0
    for round_no in range(args.rounds):
        order = ["ours", "morgan"] if round_no % 2 == 0 else ["morgan", "ours"]
        for tool in order:
            if tool == "morgan" and morgan is None:
                continue
            tree = fresh(work, tool)
            cmd = [*ours_cmd, str(tree)] if tool == "ours" else [morgan, "-i", str(tree), "mirror"]
            wall, cpu, rss = run(cmd, tree)
            results[tool].append((wall, cpu, rss))
            print(
                f"round {round_no + 1} {tool:6}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                f"{rss / 1024:.0f} MB peak RSS",
                flush=True,
            )
            if tool == "ours":
                again, again_cpu, _ = run(cmd, tree)
                reruns.append(again / wall)
                print(
                    f"round {round_no + 1} ours re-run (no-op): {again:.2f} s wall, "
                    f"{again_cpu:.2f} s CPU, {again / wall:.0%} of the first run",
                    flush=True,
                )
        files = count_files(work / "ours")
        floors.append(min(measure_floor(work / "ours", connections=counts).values()))
    ours = statistics.median(r[0] for r in results["ours"])
    ours_cpu = statistics.median(r[1] for r in results["ours"])
    ours_rss = max(r[2] for r in results["ours"])
    floor = statistics.median(floors)
    print(
        f"\nours: median {ours:.2f} s wall, {ours_cpu:.2f} s CPU for {files} files "
        f"({ours_cpu / files * 100:.2f} s CPU per 100 files), peak RSS {ours_rss / 1024:.0f} MB"
    )
    print(
        f"floor: median {floor:.2f} s; ours / floor = {ours / floor:.2f}x "
        f"(target <= 3x: {'met' if ours / floor <= 3 else 'missed'})"
    )
    print(f"no-op re-run / first run: median {statistics.median(reruns):.0%}")
    if results["morgan"]:
        theirs = statistics.median(r[0] for r in results["morgan"])
        print(
            f"morgan 0.15: median {theirs:.2f} s; morgan / ours = {theirs / ours:.2f}x "
            f"(target >= 5x: {'met' if theirs / ours >= 5 else 'missed'})"
        )
    if args.profile:
        profile(work, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
