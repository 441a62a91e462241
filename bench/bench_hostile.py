"""Benchmark: `morgan-like mirror` against a hostile upstream, one bomb at a time.

Each scenario serves one trap from the test suite's fake upstream (in this
process) and runs `morgan-like mirror` in a child process under
``/usr/bin/time -f %M`` with its address space capped (``ulimit -v``, default
3 GiB) so that code which reads a bomb whole fails with MemoryError instead of
taking the machine down.  For each scenario it prints the exit code, the wall
time to finish or give up, the peak RSS, the largest ``.metadata`` written into
the tree, and the run's last error line.

    python bench/bench_hostile.py [--code DIR] [--only NAME ...] [--limit-gib 3]

``--code`` runs the morgan_like package found in DIR (PYTHONPATH=DIR), e.g. a
``git worktree`` of an older commit, to compare before and after a change;
``--flag=--static-metadata-only`` (repeatable) passes a flag to every run.

Scenarios (sizes as in the defect reports):
  zip-bomb-pep658    a 0.5 MB wheel whose METADATA inflates to 512 MiB, also served
                     as a 512 MiB PEP 658 .metadata
  zip-bomb           the same wheel from an index without PEP 658
  gzip-page          a 400 KB gzip'ed project page inflating to 400 MB
  huge-metadata      an ordinary wheel whose PEP 658 .metadata is 200 MB
  drip               a file sent one byte every 5 s
  gzip-sdist         a 1.5 MB sdist inflating to 1.5 GiB (a zero-filled member)
  big-sdist          an sdist inflating to 900 MiB (under the cap: read once, not twice)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.distbuilder import (  # noqa: E402
    core_metadata,
    gzip_bomb_json_page,
    make_bomb_sdist,
    make_bomb_wheel,
    make_tiny_backend_wheel,
    make_wheel,
    write_bomb_metadata,
)
from tests.fakeindex import FakeIndex  # noqa: E402

ENV_BLOCK = """[env.linux]
os_name = posix
sys_platform = linux
platform_machine = x86_64
platform_system = Linux
platform_python_implementation = CPython
implementation_name = cpython
python_version = 3.12
python_full_version = 3.12.1

"""
MIB = 1024 * 1024


def zip_bomb(work: Path, pep658: bool) -> tuple[FakeIndex, str]:
    wheel = make_bomb_wheel(work, "bomb", "1.0", 512)
    index = FakeIndex(pep658=pep658).start()
    metadata = write_bomb_metadata(work / "bomb.metadata", "bomb", "1.0", 512) if pep658 else False
    index.add(wheel, serve_metadata=metadata)
    return index, "bomb"


def gzip_page(work: Path) -> tuple[FakeIndex, str]:
    index = FakeIndex().start()
    index.raw_page("bomb", gzip_bomb_json_page("bomb", 382), content_encoding="gzip")
    return index, "bomb"


def huge_metadata(work: Path) -> tuple[FakeIndex, str]:
    wheel = make_wheel(work, "meta", "1.0")
    path = work / "meta.metadata"
    with open(path, "wb") as f:
        f.write(core_metadata("meta", "1.0").encode() + b"\n")
        for _ in range(200):
            f.write(b" " * 1_000_000)
    index = FakeIndex().start()
    index.add(wheel, serve_metadata=path)
    return index, "meta"


def drip(work: Path) -> tuple[FakeIndex, str]:
    wheel = make_wheel(work, "slow", "1.0")
    index = FakeIndex().start()
    index.add(wheel)
    index.drip(wheel.name, interval=5.0)
    return index, "slow"


def sdist_bomb(work: Path, mib: int) -> tuple[FakeIndex, str]:
    index = FakeIndex().start()
    index.add(make_tiny_backend_wheel(work))
    index.add(make_bomb_sdist(work, "bomb", "1.0", mib))
    return index, "bomb"


SCENARIOS: dict[str, tuple[Callable[[Path], tuple[FakeIndex, str]], float]] = {
    # name: (set-up, seconds before the run is killed)
    "zip-bomb-pep658": (lambda w: zip_bomb(w, True), 300),
    "zip-bomb": (lambda w: zip_bomb(w, False), 300),
    "gzip-page": (gzip_page, 300),
    "huge-metadata": (huge_metadata, 300),
    "drip": (drip, 180),
    "gzip-sdist": (lambda w: sdist_bomb(w, 1536), 600),
    "big-sdist": (lambda w: sdist_bomb(w, 900), 600),
}


def run(
    code: Path,
    index: FakeIndex,
    project: str,
    tree: Path,
    limit: int,
    timeout: float,
    flags: list[str],
):
    """Run the mirror; return (exit code or None if killed, seconds, peak RSS KiB, stderr)."""
    tree.mkdir(parents=True)
    (tree / "morgan.ini").write_text(ENV_BLOCK + f"[requirements]\n{project} =\n")
    env = dict(os.environ, PYTHONPATH=str(code), MALLOC_ARENA_MAX="2")
    env.pop("PIP_FIND_LINKS", None)
    cmd = ["/usr/bin/time", "-f", "MAXRSS %M", sys.executable, "-m", "morgan_like.cli"]
    cmd += ["mirror", "-i", str(tree), "-I", index.url, "--skip-server-copy", *flags]

    def cap() -> None:  # ulimit -v for the child (and /usr/bin/time)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=code,  # -m puts the working directory first on sys.path
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=cap,
        start_new_session=True,  # so a kill reaches the mirror, not only /usr/bin/time
    )
    try:
        _, err = proc.communicate(timeout=timeout)
        code_ = proc.returncode
    except subprocess.TimeoutExpired:
        hwm = _peak_rss_kib(proc.pid)  # /usr/bin/time reports nothing once killed
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        err += f"\nMAXRSS {hwm}\n".encode()
        code_ = None
    elapsed = time.monotonic() - started
    text = err.decode("utf-8", "replace")
    rss = next(
        (int(line.split()[1]) for line in text.splitlines() if line.startswith("MAXRSS ")), 0
    )
    return code_, elapsed, rss, text


def _peak_rss_kib(time_pid: int) -> int:
    """VmHWM of the mirror process (the child of /usr/bin/time), from /proc."""
    try:
        children = Path(f"/proc/{time_pid}/task/{time_pid}/children").read_text().split()
        status = Path(f"/proc/{children[0]}/status").read_text()
    except (OSError, IndexError):
        return 0
    line = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1])


def outcome(code: int | None, text: str, timeout: float) -> str:
    if code is None:
        return f"no result after {timeout:.0f}s (killed)"
    if "MemoryError" in text:
        return "MemoryError"
    lines = [ln for ln in text.splitlines() if ln.startswith(("error:", "warning:"))]
    if "Traceback" in text:
        last = [ln for ln in text.splitlines() if ln and not ln.startswith(("MAXRSS", " "))]
        return "traceback: " + (last[-1] if last else "?")
    return lines[-1] if lines else "ok"


def largest_metadata(tree: Path) -> int:
    return max((p.stat().st_size for p in tree.rglob("*.metadata")), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="directory holding morgan_like/")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="scenarios to run")
    parser.add_argument("--limit-gib", type=float, default=3.0, help="address-space cap (GiB)")
    parser.add_argument(
        "--flag", action="append", default=[], help="extra mirror flag, e.g. --flag=-v"
    )
    args = parser.parse_args()
    limit = int(args.limit_gib * 1024 * MIB)
    where = subprocess.run(
        [sys.executable, "-c", "import morgan_like; print(morgan_like.__file__)"],
        cwd=args.code,
        env=dict(os.environ, PYTHONPATH=str(args.code)),
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"code: {where}  address-space cap: {args.limit_gib:g} GiB")
    print(f"{'scenario':17} {'exit':>5} {'wall s':>7} {'peak RSS':>10} {'.metadata':>10}  outcome")
    for name in args.only or SCENARIOS:
        setup, timeout = SCENARIOS[name]
        work = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
        try:
            index, project = setup(work / "dists")
            try:
                code, elapsed, rss, text = run(
                    args.code, index, project, work / "tree", limit, timeout, args.flag
                )
            finally:
                index.stop()
            meta = largest_metadata(work / "tree")
            print(
                f"{name:17} {str(code):>5} {elapsed:7.1f} {rss / 1024:7.0f} MiB "
                f"{meta / MIB:6.1f} MiB  {outcome(code, text, timeout)[:150]}",
                flush=True,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
