"""A full mirror on an object store: ``sync`` into SeaweedFS against ``sync`` to disk and
bandersnatch 8.2 to disk, on one local upstream, in one run.

    python bench/bench_bucket.py [--projects 1000] [--workers 8,16] [--no-stream-row] [--thread-row]

The upstream is bench_sync.py's (N projects, three releases each, a wheel and an sdist
per release, served by nginx).  The bucket is a real SeaweedFS (tests/seaweed.py's
``weed server -s3`` on 127.0.0.1).  Each tool runs in its own process wrapped in
``/usr/bin/time`` (peak RSS; CPU seconds, user + system, its child processes such as
the bucket stream's included): the first sync with files, then a no-op re-sync.
Requests to the store are counted inside the bucket run (every HTTP request boto3
sends, retries included) and given per project.  The peak local disk use of each tree's
``packages/`` is sampled during the run (a thread walks it every half second): a sync into
the bucket streams each finished project up and evicts its files, so its working tree
holds only what is in flight.  ``--workers`` runs the bucket sync once per value of the
stream's (and the end push's) upload concurrency; the "no stream" row is the same sync
with streaming off (everything in the end push), the "thread" row the stream as a thread
of the run's process instead of a process of its own, for the ratios.  The requests of
the stream's process are not counted (req/proj: the run's process only).  Not a test: it
prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
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
workers = int(os.environ.get("BENCH_WORKERS") or 0)
if workers:
    import morgan_like.tree.bucketpush as bucketpush
    import morgan_like.tree.bucketstream as bucketstream
    bucketpush.WORKERS = bucketstream.WORKERS = workers
if os.environ.get("BENCH_STREAM") in ("thread", "none"):
    import morgan_like.modes.bucket_stream as bucket_stream
    from morgan_like.tree.bucketstream import StreamingPush, StreamResult

    class InProcess:  # the stream as a thread of the run's own process, or no stream
        ended_cleanly = True

        def __init__(self, root, opener, cursor):
            self.stream = StreamingPush(root, opener(), cursor=cursor)
            if os.environ["BENCH_STREAM"] == "none":
                self.stream._follow_log = lambda: None

        def __enter__(self):
            self.stream.__enter__()
            return self

        def __exit__(self, *exc):
            self.close()

        def close(self):
            self.stream.close()
            self.sent, self.result = self.stream.sent, self.stream.result

    bucket_stream.StreamProcess = InProcess
from morgan_like.cli import main
code = main(sys.argv[1:])
with open(os.environ["BENCH_REQUESTS"], "w") as out:
    out.write(str(sent[0]))
sys.exit(code)
"""


class PeakDu:
    """The largest size ``folder`` reached while the ``with`` block ran (sampled)."""

    def __init__(self, folder: Path, every: float = 0.5) -> None:
        self.folder, self.every, self.peak = folder, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, du(self.folder))
            if self._stop.wait(self.every):
                self.peak = max(self.peak, du(self.folder))
                return

    def __enter__(self) -> PeakDu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sync_disk(tree: Path, up: Upstream) -> tuple[float, int, int, float, None, int]:
    cmd = [sys.executable, "-m", "morgan_like", "sync", "-i", str(tree), "-q"]
    with PeakDu(tree / "packages") as peak:
        run = timed([*cmd, "-I", f"http://127.0.0.1:{up.port}/simple/"])
    return (*run, None, peak.peak)


def sync_bucket(
    url: str, state: Path, up: Upstream, env: dict[str, str], counts: Path, extra: dict[str, str]
):
    cmd = [sys.executable, "-c", COUNTING, "sync", "-i", url, "--local-state", str(state)]
    cmd += ["-q", "-I", f"http://127.0.0.1:{up.port}/simple/"]
    env = {**env, "BENCH_REQUESTS": str(counts), "PYTHONPATH": str(REPO), **extra}
    with PeakDu(state / "packages") as peak:
        run = timed(cmd, env)
    return (*run, int(counts.read_text()) if counts.exists() else 0, peak.peak)


def du(path: Path) -> int:
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=None, help="keep trees here")
    parser.add_argument(
        "--workers", default="", help="upload concurrencies to run the bucket sync with (8,16)"
    )
    parser.add_argument(
        "--no-stream-row", action="store_true", help="also the bucket sync with streaming off"
    )
    parser.add_argument(
        "--thread-row", action="store_true", help="also the stream as a thread of the run"
    )
    args = parser.parse_args()
    variants = [(f"bucket w={w}", {"BENCH_WORKERS": w}) for w in args.workers.split(",") if w]
    variants = variants or [("bucket", {})]
    if args.thread_row:
        variants.append(("bucket thread", {"BENCH_STREAM": "thread"}))
    if args.no_stream_row:
        variants.append(("bucket no stream", {"BENCH_STREAM": "none"}))
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
            targets = {}
            for i, (name, _) in enumerate(variants):
                targets[name] = (f"s3://{weed.new_bucket('bench')}/pypi", work / f"state{i}")
            disk, theirs_dir = work / "disk", work / "bandersnatch"
            for first, label in ((True, "first sync"), (False, "no-op re-sync")):
                # alternate who goes first between the two phases
                order = ["disk", *(name for name, _ in variants), "bandersnatch"]
                for who in order if first else order[::-1]:
                    if who == "disk":
                        rows.append((label, who, sync_disk(disk, up)))
                    elif who == "bandersnatch":
                        with PeakDu(theirs_dir / "mirror" / "web" / "packages") as peak:
                            run = theirs(exe, theirs_dir, up, False)
                        rows.append((label, who, (*run, None, peak.peak)))
                    else:
                        url, state = targets[who]
                        extra = dict(variants)[who]
                        counts = work / f"requests-{len(rows)}"
                        rows.append((label, who, sync_bucket(url, state, up, env, counts, extra)))
            local = {name: du(state) for name, (_, state) in targets.items()}
    finally:
        up.stop()
    print(f"{'run':15} {'tree':18} {'wall s':>8} {'CPU s':>7} {'proj/s':>8} {'MB/s':>7} "
          f"{'req/proj':>8} {'peak RSS MB':>11} {'peak pkgs MB':>12}")  # fmt: skip
    for label, who, (wall, rss, code, cpu, requests, peak) in rows:
        rate = n / wall
        mbs = f"{mb / wall:7.1f}" if label == "first sync" else "      -"
        per = f"{requests / n:8.2f}" if requests is not None else "       -"
        flag = "" if code == 0 else f"  (exit {code})"
        print(
            f"{label:15} {who:18} {wall:8.2f} {cpu:7.2f} {rate:8.0f} {mbs} {per} {rss / 1024:11.0f} "
            f"{peak / 1e6:12.1f}{flag}"
        )
    for name, size in local.items():
        print(f"working tree of {name} after the runs: {size / 1e6:.1f} MB on local disk")
    print(f"trees and upstream in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
