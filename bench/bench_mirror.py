"""Benchmark: morgan-like mirror vs morgan 0.15.0 on the same synthetic graph.

Setup: the test suite's fake upstream with 40 ms of latency per request, and a
synthetic graph of ~150 projects (3 versions each; wheels for manylinux,
Windows and macOS, plus an sdist) with realistic fan-out and depth.  Both
tools build the same three envs; runs alternate; the script prints the
wall-time ratio, the bytes each fetched, bytes fetched beyond the final tree,
and peak memory (max RSS of the child process).

    python bench/bench_mirror.py [--projects 150] [--rounds 2] [--latency 0.04]

morgan 0.15.0 is installed into bench/.venv-morgan on first use (needs PyPI).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.distbuilder import make_sdist, make_tiny_backend_wheel, make_wheel  # noqa: E402
from tests.fakeindex import FakeIndex  # noqa: E402

# py3-none-<platform>: platform wheels that morgan 0.15 can match at all (it misreads
# "cp312" as Python 312 and so never selects a cpXY wheel for 3.10+).
PLATFORMS = (
    "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "py3-none-win_amd64",
    "py3-none-macosx_11_0_arm64",
)
VERSIONS = ("1.0", "1.1", "2.0")
ENVS = {
    # name: (markers, morgan's platform_tag regex, which morgan matches with fullmatch)
    "linux": (
        {
            "sys_platform": "linux",
            "platform_machine": "x86_64",
            "platform_system": "Linux",
            "os_name": "posix",
        },
        r"manylinux.*_x86_64",
    ),
    "windows": (
        {
            "sys_platform": "win32",
            "platform_machine": "AMD64",
            "platform_system": "Windows",
            "os_name": "nt",
        },
        r"win_amd64",
    ),
    "macos": (
        {
            "sys_platform": "darwin",
            "platform_machine": "arm64",
            "platform_system": "Darwin",
            "os_name": "posix",
        },
        r"macosx_.*_arm64",
    ),
}


def build_graph(
    dist_dir: Path, projects: int, seed: int = 7, platforms: tuple[str, ...] = PLATFORMS
) -> tuple[list[Path], list[str]]:
    """A layered DAG like real dependency trees: 7 layers (apps -> frameworks -> ... ->
    leaf utilities), each project depending on 0-5 projects of the next two layers."""
    rng = random.Random(seed)
    # No dash in the names: morgan 0.15 misreads the version of "name-with-dash-1.0.tar.gz"
    # and would then skip every wheel, doing far less work than we do.
    names = [f"proj{i:03d}" for i in range(projects)]
    shares = (0.08, 0.12, 0.16, 0.18, 0.18, 0.16, 0.12)
    bounds, start = [], 0
    for share in shares:
        end = min(projects, start + max(1, round(share * projects)))
        bounds.append((start, end))
        start = end
    bounds[-1] = (bounds[-1][0], projects)
    deps: dict[int, list[int]] = {}
    for layer, (lo, hi) in enumerate(bounds):
        below = [i for lo2, hi2 in bounds[layer + 1 : layer + 3] for i in range(lo2, hi2)]
        for i in range(lo, hi):
            fanout = min(len(below), rng.choice((0, 1, 2, 2, 3, 3, 4, 5)))
            deps[i] = sorted(rng.sample(below, fanout))
    depended = {d for ds in deps.values() for d in ds}
    roots = [names[i] for i in range(projects) if i not in depended]
    marker = dist_dir / f".built-{projects}-{seed}-{len(platforms)}-v4"
    if not marker.exists():
        shutil.rmtree(dist_dir, ignore_errors=True)
        dist_dir.mkdir(parents=True)
        make_tiny_backend_wheel(dist_dir)
        for i, name in enumerate(names):
            for vi, version in enumerate(VERSIONS):
                reqs = [f"{names[d]}>=1.0" for d in deps[i][: max(0, len(deps[i]) - (2 - vi))]]
                rp = ">=3.8" if version == "2.0" else ">=3.6"
                for tag in platforms:
                    pad = rng.randint(20_000, 150_000)
                    make_wheel(
                        dist_dir,
                        name,
                        version,
                        requires_dist=reqs,
                        requires_python=rp,
                        tag=tag,
                        pad_bytes=pad,
                    )
                make_sdist(dist_dir, name, version, requires_dist=reqs, requires_python=rp)
        marker.write_text("ok")
    files = sorted(p for p in dist_dir.iterdir() if p.suffix in (".whl", ".gz"))
    return files, roots


def write_configs(work: Path, roots: list[str]) -> tuple[Path, Path]:
    common = {
        "python_version": "3.12",
        "python_full_version": "3.12.7",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    reqs = "[requirements]\n" + "".join(f"{r} = >=1.0\n" for r in roots)
    ours, theirs = [], []
    for name, (markers, regex) in ENVS.items():
        keys = dict(common, **markers)
        block = "".join(f"{k} = {v}\n" for k, v in keys.items())
        ours.append(f"[env.{name}]\n{block}\n")
        theirs.append(f"[env.{name}]\n{block}platform_tag = {regex}\n\n")
    ours_path, theirs_path = work / "ours.ini", work / "morgan.ini"
    ours_path.write_text("".join(ours) + reqs)
    theirs_path.write_text("".join(theirs) + reqs)
    return ours_path, theirs_path


def morgan_binary() -> Path:
    venv = ROOT / "bench" / ".venv-morgan"
    binary = venv / "bin" / "morgan"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "morgan==0.15.0"],
            check=True,
        )
    return binary


def tree_size(root: Path) -> int:
    return sum(
        p.stat().st_size for p in root.rglob("*") if p.is_file() and (p.suffix in (".whl", ".gz"))
    )


def run(cmd: list[str], index: FakeIndex) -> tuple[float, int, int]:
    """Wall time, bytes the upstream sent, and the child's peak RSS (KiB)."""
    index.reset_log()
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read()[-600:].decode(errors="replace")
            print(f"  ! {' '.join(cmd[:3])} exited {proc.returncode}: {tail}", file=sys.stderr)
    return elapsed, index.bytes_sent, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.04)
    parser.add_argument("--skip-morgan", action="store_true")
    parser.add_argument(
        "--pure",
        action="store_true",
        help="py3-none-any wheels only (one per version), so morgan fetches the same files",
    )
    args = parser.parse_args()

    platforms = ("py3-none-any",) if args.pure else PLATFORMS
    cache = ROOT / "bench" / ".cache" / ("dists-pure" if args.pure else "dists")
    print(f"building the synthetic graph ({args.projects} projects) in {cache} ...", flush=True)
    files, roots = build_graph(cache, args.projects, platforms=platforms)
    morgan = None if args.skip_morgan else morgan_binary()
    ours_cmd = [sys.executable, "-m", "morgan_like"]
    with tempfile.TemporaryDirectory() as tmp, FakeIndex(latency=args.latency) as index:
        work = Path(tmp)
        for path in files:
            index.add(path)
        ours_ini, morgan_ini = write_configs(work, roots)
        print(
            f"{len(files)} files upstream, {len(roots)} top-level requirements, latency {args.latency * 1000:.0f} ms"
        )
        results: dict[str, list[tuple[float, int, int, int]]] = {"morgan-like": [], "morgan": []}
        for rnd in range(args.rounds):
            for tool in ("morgan-like", "morgan"):
                if tool == "morgan" and morgan is None:
                    continue
                tree = work / f"{tool}-{rnd}"
                tree.mkdir()
                if tool == "morgan-like":
                    cmd = ours_cmd + [
                        "mirror",
                        "-q",
                        "-i",
                        str(tree),
                        "-c",
                        str(ours_ini),
                        "-I",
                        index.url,
                    ]
                else:
                    cmd = [
                        str(morgan),
                        "-i",
                        str(tree),
                        "-c",
                        str(morgan_ini),
                        "-I",
                        index.url,
                        "mirror",
                    ]
                wall, sent, rss = run(cmd, index)
                size = tree_size(tree)
                results[tool].append((wall, sent, rss, size))
                print(
                    f"round {rnd + 1} {tool:12s} {wall:7.2f}s  fetched {sent / 1e6:7.1f} MB  tree {size / 1e6:7.1f} MB  peak RSS {rss / 1024:6.1f} MB",
                    flush=True,
                )
        ours = min(results["morgan-like"])
        print()
        print(
            f"morgan-like: best {ours[0]:.2f}s; fetched beyond the tree: {(ours[1] - ours[3]) / max(ours[3], 1) * 100:.2f}% of its size; peak RSS {ours[2] / 1024:.1f} MB"
        )
        if results["morgan"]:
            theirs = min(results["morgan"])
            print(
                f"morgan 0.15: best {theirs[0]:.2f}s; fetched {theirs[1] / 1e6:.1f} MB (tree {theirs[3] / 1e6:.1f} MB)"
            )
            print(f"speed ratio (morgan / morgan-like wall time): {theirs[0] / ours[0]:.1f}x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
