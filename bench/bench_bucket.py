"""A full mirror on an object store: ``sync`` into SeaweedFS against ``sync`` to disk and
bandersnatch 8.2 to disk, on one local upstream, in one run.

    python bench/bench_bucket.py [--projects 1000]

The upstream is bench_sync.py's (N projects, three releases each, a wheel and an sdist
per release, served by nginx).  The bucket is a real SeaweedFS (tests/seaweed.py's
``weed server -s3`` on 127.0.0.1).  Each tool runs in its own process wrapped in
``/usr/bin/time -f %M`` (peak RSS): the first sync with files, then a no-op re-sync.
Requests to the store are counted inside the bucket run (every HTTP request boto3
sends, retries included) and given per project.  Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_sync import Upstream, _free_port, bandersnatch, theirs, timed  # noqa: E402

from tests.seaweed import cannot_run_reason, running_seaweed  # noqa: E402

TEST_BANDERSNATCH = Path.home() / ".cache/morgan-like-test-bandersnatch/venv/bin/bandersnatch"

# Runs morgan-like's CLI with boto3's sends counted; the count goes to $BENCH_REQUESTS.
COUNTING = """
import os, sys
import botocore.endpoint as endpoint
sent = [0]
send = endpoint.Endpoint._send
def counted(self, request):
    sent[0] += 1
    return send(self, request)
endpoint.Endpoint._send = counted
from morgan_like.cli import main
code = main(sys.argv[1:])
with open(os.environ["BENCH_REQUESTS"], "w") as out:
    out.write(str(sent[0]))
sys.exit(code)
"""


def sync_disk(tree: Path, up: Upstream) -> tuple[float, int, int]:
    cmd = [sys.executable, "-m", "morgan_like", "sync", "-i", str(tree), "-q"]
    return timed([*cmd, "-I", f"http://127.0.0.1:{up.port}/simple/"])


def sync_bucket(url: str, state: Path, up: Upstream, env: dict[str, str], counts: Path):
    cmd = [sys.executable, "-c", COUNTING, "sync", "-i", url, "--local-state", str(state)]
    cmd += ["-q", "-I", f"http://127.0.0.1:{up.port}/simple/"]
    run = timed(cmd, {**env, "BENCH_REQUESTS": str(counts), "PYTHONPATH": str(REPO)})
    return (*run, int(counts.read_text()) if counts.exists() else 0)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=None, help="keep trees here")
    args = parser.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is needed to serve the synthetic upstream (apt-get install nginx)")
    reason = cannot_run_reason()
    if reason:
        sys.exit(f"SeaweedFS cannot run here: {reason}")
    exe = TEST_BANDERSNATCH if TEST_BANDERSNATCH.exists() else bandersnatch()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-bucket-"))
    work.chmod(0o755)  # nginx's workers (nobody) read the upstream under it
    n = args.projects
    up = Upstream(work / "upstream", _free_port(), True)
    shutil.rmtree(up.root, ignore_errors=True)
    for i in range(n):
        for version in ("1.0", "1.1", "2.0"):
            up.release(f"proj{i:06d}", version)
    up.publish()
    up.start()
    mb = sum(s for f in up.files.values() for _, _, s in f) / 1e6
    print(f"upstream: {n} projects, {sum(map(len, up.files.values()))} files, {mb:.1f} MB")
    rows: list[tuple[str, str, tuple]] = []
    try:
        with running_seaweed(work / "seaweed") as weed:
            env = weed.client_env()
            bucket = weed.new_bucket("bench")
            url, state = f"s3://{bucket}/pypi", work / "state"
            disk, theirs_dir = work / "disk", work / "bandersnatch"
            for first, label in ((True, "first sync"), (False, "no-op re-sync")):
                # alternate who goes first between the two phases
                order = ["disk", "bucket", "bandersnatch"]
                for who in order if first else order[::-1]:
                    if who == "disk":
                        rows.append((label, who, (*sync_disk(disk, up), None)))
                    elif who == "bucket":
                        counts = work / f"requests-{len(rows)}"
                        rows.append((label, who, sync_bucket(url, state, up, env, counts)))
                    else:
                        rows.append((label, who, (*theirs(exe, theirs_dir, up, False), None)))
            local = du(state)
    finally:
        up.stop()
    print(f"{'run':15} {'tree':13} {'wall s':>8} {'proj/s':>8} {'MB/s':>7} "
          f"{'req/proj':>8} {'peak RSS MB':>11}")  # fmt: skip
    for label, who, (wall, rss, code, requests) in rows:
        rate = n / wall
        mbs = f"{mb / wall:7.1f}" if label == "first sync" else "      -"
        per = f"{requests / n:8.2f}" if requests is not None else "       -"
        flag = "" if code == 0 else f"  (exit {code})"
        print(f"{label:15} {who:13} {wall:8.2f} {rate:8.0f} {mbs} {per} {rss / 1024:11.0f}{flag}")
    print(f"working tree of the bucket run after eviction: {local / 1e6:.1f} MB on local disk")
    print(f"trees and upstream in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
