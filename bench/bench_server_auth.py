"""Benchmark: a logged-in client's latency while server.py is attacked (issue 18).

Not a test.  Everything runs on 127.0.0.1, each server as its own process::

    python bench/bench_server_auth.py [--before REV] [--python PY ...] [--seconds 10]

Two attacks, each against the current ``server.py`` and the one of ``--before`` (a git
revision, default the last commit before the hardening; ``--before ''`` skips it):

* ``auth``: ``--auth-file`` with one user at the real PBKDF2 cost (600,000
  iterations); 40 connections (``--attackers``) send fresh wrong passwords as fast as
  the server answers, from one address (``auth``) or from 40 (``auth-40-addresses``:
  127.0.0.2 and up, so only the bound on parallel checks holds them).  One logged-in
  client (its credentials already checked) fetches a project page over keep-alive.
* ``slots``: one address opens ``--holders`` (default 1,100: more than the server's
  1,000 connection slots) connections that send half a head and wait; a client from
  another address fetches pages on new connections (a refused or timed-out one counts
  as failed).

For each it prints the client's median and p95 latency without the attack and under
it, their ratio (attack / quiet), failed requests (5 s without an answer counts as
failed), the attackers' answers by status, and the server's peak RSS (VmHWM).
Target: the logged-in client stays under 50 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.server_support import Dist, SubprocessServer, write_tree  # noqa: E402

BEFORE = "94b234c"  # the last commit before issue 18's server hardening
PAGE = "/simple/beta/"
USER, PASSWORD = "alice", "correct horse"

ATTACKER = r"""
import base64, http.client, os, socket, sys, threading, time
port, n, seconds, spread, mode = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
stop = time.monotonic() + seconds
counts = {}
lock = threading.Lock()
socks = []

def source(i):
    return ("127.0.0.%d" % (2 + i), 0) if spread else None

def guess(i):
    conn = None
    k = 0
    while time.monotonic() < stop:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=source(i))
            k += 1
            token = base64.b64encode(("alice:wrong-%d-%d-%s" % (i, k, os.urandom(4).hex())).encode()).decode()
            conn.request("GET", "/simple/", headers={"Authorization": "Basic " + token})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as exc:
            status = type(exc).__name__
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
        with lock:
            counts[status] = counts.get(status, 0) + 1

def hold(i):
    try:
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
        status = "held"
    except Exception as exc:
        status = type(exc).__name__
    with lock:
        counts[status] = counts.get(status, 0) + 1

if mode == "guess":
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
else:
    for i in range(n):
        hold(i)
    print("ready", flush=True)
    # keep each connection alive: a byte of a header line now and then (slowloris),
    # until the bench closes our stdin
    import select
    while not select.select([sys.stdin], [], [], 1.0)[0]:
        for s in list(socks):
            try:
                s.send(b"a")
            except OSError:
                socks.remove(s)
                with lock:
                    counts["dropped"] = counts.get("dropped", 0) + 1
print(" ".join("%s:%s" % kv for kv in sorted(counts.items(), key=str)), flush=True)
"""


def make_tree(work: Path) -> Path:
    root = work / "tree"
    write_tree(root, [Dist("alpha", "1.0"), Dist("beta", "1.0"), Dist("gamma", "2.0")])
    return root


def auth_file(work: Path, python: str, script: Path) -> Path:
    line = subprocess.run(
        [python, str(script), "--hash-password", USER],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = work / "users"
    path.write_text(line)
    return path


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    """The measured client: keep-alive GETs of one page (``fresh``: a new connection
    per request, from ``source``)."""

    def __init__(self, port: int, authorization: str | None, fresh=False, source=None):
        self.port = port
        self.headers = {"Accept": "text/html"}
        if authorization:
            self.headers["Authorization"] = authorization
        self.fresh = fresh
        self.source = source
        self.conn = None

    def once(self) -> float | None:
        t0 = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=5, source_address=self.source
                )
            self.conn.request("GET", PAGE, headers=self.headers)
            resp = self.conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        if self.fresh or not ok:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        return time.perf_counter() - t0 if ok else None

    def run(self, seconds: float, max_requests: int) -> tuple[list[float], int]:
        times, failed = [], 0
        stop = time.monotonic() + seconds
        while time.monotonic() < stop and len(times) + failed < max_requests:
            took = self.once()
            if took is None:
                failed += 1
            else:
                times.append(took)
            if self.fresh:
                time.sleep(0.005)
        return times, failed


def stats(times: list[float]) -> tuple[float, float]:
    if not times:
        return float("nan"), float("nan")
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1000, p95 * 1000


def scenario(name: str, python: str, script: Path, tree: Path, work: Path, opts) -> dict:
    spread = name == "auth-40-addresses"
    args = ["-q"]
    authorization = None
    if name.startswith("auth"):
        args += ["--auth-file", str(auth_file(work, python, script))]
        authorization = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    srv = SubprocessServer(tree, python=python, args=args, script=script)
    try:
        if name == "slots":
            client = Client(srv.port, None, fresh=True, source=("127.0.0.2", 0))
        else:
            client = Client(srv.port, authorization)
            assert client.once() is not None, "the logged-in client cannot log in"
        quiet, quiet_failed = client.run(opts.seconds, opts.requests)
        n = opts.attackers if name.startswith("auth") else opts.holders
        mode = "guess" if name.startswith("auth") else "hold"
        attack = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ATTACKER,
                str(srv.port),
                str(n),
                str(opts.seconds + 5 + (30 if mode == "hold" else 0)),
                "1" if spread else "0",
                mode,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if mode == "hold":
            attack.stdout.readline()  # every connection is open (or refused)
        time.sleep(2.0)
        loaded, loaded_failed = client.run(opts.seconds, opts.requests)
        answers = attack.communicate(timeout=120)[0].strip()  # closes its stdin
        rss = peak_rss_mib(srv.proc.pid)
    finally:
        srv.stop()
    return {
        "quiet": stats(quiet),
        "loaded": stats(loaded),
        "n": (len(quiet), len(loaded)),
        "failed": (quiet_failed, loaded_failed),
        "answers": answers,
        "rss": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE, help="git revision to compare with ('' none)")
    parser.add_argument("--python", action="append", help="interpreter(s) to run the servers")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--requests", type=int, default=500, help="at most, per measurement")
    parser.add_argument("--attackers", type=int, default=40)
    parser.add_argument("--holders", type=int, default=1100)
    parser.add_argument(
        "--only", default="auth,auth-40-addresses,slots", help="scenarios, comma-separated"
    )
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    pythons = opts.python or [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = make_tree(work)
        scripts = [("after", REPO / "server.py")]
        if opts.before:
            before = work / "server_before.py"
            before.write_bytes(
                subprocess.run(
                    ["git", "-C", str(REPO), "show", f"{opts.before}:server.py"],
                    capture_output=True,
                    check=True,
                ).stdout
            )
            scripts.insert(0, ("before", before))
        print(
            f"{'scenario':<18} {'server':<7} {'python':<6} {'quiet med/p95 ms':>17} "
            f"{'attacked med/p95 ms':>20} {'ratio med/p95':>14} {'failed':>7} {'RSS MiB':>8}  "
            "attackers' answers"
        )
        for name in opts.only.split(","):
            for python in pythons:
                version = subprocess.run(
                    [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                for label, script in scripts:
                    r = scenario(name, python, script, tree, work, opts)
                    (qm, qp), (lm, lp) = r["quiet"], r["loaded"]
                    if r["n"][1]:
                        attacked = f"{lm:10.1f}/{lp:<9.1f}"
                        ratio = f"{lm / qm:.1f}x/{lp / qp:.1f}x"
                    else:  # every request failed (timed out after 5 s)
                        attacked, ratio = f"{'all failed':>20}", "-"
                    print(
                        f"{name:<18} {label:<7} {version:<6} {qm:8.1f}/{qp:<8.1f} "
                        f"{attacked} {ratio:>14} "
                        f"{r['failed'][1]:>3}/{r['n'][1] + r['failed'][1]:<3} {r['rss']:8.1f}  "
                        f"{r['answers']}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)
    sys.exit(main())
