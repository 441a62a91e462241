"""Benchmark: our server.py vs morgan 0.15.0's server, ``python -m http.server`` and nginx.

Not a test.  Everything runs on 127.0.0.1 with bounded durations:

    /tmp/dev/bin/python bench/bench_server.py [--seconds 5] [--only ours,morgan,...]

For each server it measures, from separate client processes:

* index pages/s: keep-alive GETs of one project page with pip's Accept header
  (``wrk`` when installed, else a threaded Python client);
* MB/s on a 50 MB file with 8 concurrent clients;
* peak RSS (VmHWM, summed over the server's processes) after start, after the page
  run and after the large-file runs with 8 and 32 clients (memory must stay flat);
* wall time of a 40-package ``pip install`` (pip 23.2.1 from CPython 3.11, fresh
  ``--target`` directory, no cache).

It prints a table and the ratios vs morgan's server and vs nginx.  Targets: >= 3x
morgan on index pages, >= 50% of nginx on large files, memory flat under concurrency.

``--stalled`` runs another scenario instead: the wait of a normal GET while 32, 64
and 200 clients that pipeline requests for a 1 MB file and never read are connected,
on each interpreter of ``--stalled-pythons`` (3.6 and 3.13 by default), with the
server's peak RSS.  ``--server-script`` runs another server.py (e.g. an older one:
``git show REV:server.py > /tmp/server_before.py``)::

    python bench/bench_server.py --stalled --server-script /tmp/server_before.py

Requirements: morgan 0.15.0 in a venv (``--morgan-python``, default
/tmp/morganvenv/bin/python; created with ``pip install morgan==0.15.0`` when
``--install-morgan`` is given), ``nginx`` (Debian package) for the nginx column,
``wrk`` optional.  Servers that are missing are skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from morgan_like.modes.nginx import render_nginx_config  # noqa: E402
from tests.nginx_support import nginx_main_config  # noqa: E402
from tests.server_support import Dist, write_tree  # noqa: E402

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
BIG_SIZE = 50 * 1024 * 1024
N_PACKAGES = 40


# ------------------------------------------------------------------------------ the trees


def build_trees(work: Path) -> tuple[Path, Path]:
    """Our layout (simple/ + packages/) and morgan's (<project>/<files> + .hash)."""
    ours = work / "tree"
    morgan = work / "morgan-tree"
    if (ours / "manifest.json").exists() and (morgan / "big").is_dir():
        return ours, morgan
    shutil.rmtree(ours, ignore_errors=True)
    shutil.rmtree(morgan, ignore_errors=True)
    dists = []
    for i in range(1, N_PACKAGES):
        for minor in range(3):
            dists.append(Dist(f"pkg-{i:03d}", f"1.{minor}"))
    dists.append(Dist("bench-root", "1.0", requires=[f"pkg-{i:03d}" for i in range(1, N_PACKAGES)]))
    dists.append(Dist("big", "1.0", payload=os.urandom(BIG_SIZE)))
    write_tree(ours, dists)
    for pkgdir in (ours / "packages").iterdir():
        dest = morgan / pkgdir.name
        dest.mkdir(parents=True)
        for f in pkgdir.iterdir():
            os.link(f, dest / f.name)
            if not f.name.endswith(".metadata"):
                digest = hashlib.sha256(f.read_bytes()).hexdigest()
                (dest / (f.name + ".hash")).write_text(f"sha256={digest}")
    return ours, morgan


# ---------------------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


class Server:
    def __init__(self, name, cmd, port, page_path, file_path, index_url, cwd=None):
        self.name = name
        self.cmd = cmd
        self.port = port
        self.page_path = page_path
        self.file_path = file_path
        self.index_url = index_url
        self.cwd = cwd
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.cwd
        )
        wait_listening(self.port, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def peak_rss_mb(self) -> float:
        """VmHWM of the server process plus its children (nginx workers), MB."""
        total = 0
        for pid in [self.proc.pid, *children(self.proc.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    out = []
    for child in text.split():
        out.append(int(child))
        out.extend(children(int(child)))
    return out


def make_servers(ours: Path, morgan_tree: Path, work: Path, args) -> list[Server]:
    servers = []
    py = sys.executable
    page = "/simple/pkg-001/"
    big = "/packages/big/big-1.0-py3-none-any.whl"
    p = free_port()
    servers.append(
        Server("ours", [args.python or py, args.server_script or str(REPO / "server.py"), "-i", str(ours), "-H", "127.0.0.1", "-p", str(p), "-q"],
               p, page, big, f"http://127.0.0.1:{p}/simple/")
    )  # fmt: skip
    morgan_py = Path(args.morgan_python)
    if not morgan_py.exists() and args.install_morgan:
        venv = morgan_py.parent.parent
        subprocess.run([py, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "morgan==0.15.0"], check=True)
    if morgan_py.exists():
        p = free_port()
        servers.append(
            Server("morgan", [str(morgan_py), "-m", "morgan.server", "-i", str(morgan_tree), "-H", "127.0.0.1", "-p", str(p)],
                   p, "/pkg-001/", "/big/big-1.0-py3-none-any.whl", f"http://127.0.0.1:{p}/")
        )  # fmt: skip
    else:
        print(f"skipping morgan: {morgan_py} not found (use --install-morgan)")
    p = free_port()
    servers.append(
        Server("http.server", [py, "-m", "http.server", str(p), "--bind", "127.0.0.1", "--directory", str(ours)],
               p, page, big, f"http://127.0.0.1:{p}/simple/")
    )  # fmt: skip
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx:
        p = free_port()
        nwork = work / "nginx"
        nwork.mkdir(exist_ok=True)
        (nwork / "nginx.conf").write_text(
            nginx_main_config(
                nwork,
                render_nginx_config(ours, "127.0.0.1", p),
                access_log=False,
                workers=args.nginx_workers,
            )
        )
        servers.append(
            Server("nginx", [nginx, "-p", str(nwork), "-c", str(nwork / "nginx.conf")], p, page, big,
                   f"http://127.0.0.1:{p}/simple/")
        )  # fmt: skip
    else:
        print("skipping nginx: not installed")
    if args.only:
        keep = set(args.only.split(","))
        servers = [s for s in servers if s.name in keep]
    return servers


# ------------------------------------------------------------------------------- the load


def wrk(url: str, conns: int, seconds: float, headers: dict[str, str]) -> dict:
    cmd = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{max(1, int(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    scale = {"B": 1 / 1e6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}[m.group(2)]
    errors = 0
    m2 = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m2:
        errors += int(m2.group(1))
    m3 = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m3:
        errors += sum(int(x) for x in m3.groups())
    return {"rps": rps, "mbps": float(m.group(1)) * scale, "errors": errors}


PY_CLIENT = r"""
import http.client, sys, threading, time
host, port, path, conns, seconds, accept = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
count = [0]; nbytes = [0]; errors = [0]; lock = threading.Lock()
stop = time.monotonic() + seconds
def worker():
    c = None; n = b = e = 0
    while time.monotonic() < stop:
        try:
            if c is None:
                c = http.client.HTTPConnection(host, port, timeout=10)
            c.request("GET", path, headers={"Accept": accept})
            r = c.getresponse()
            while True:
                chunk = r.read(1 << 20)
                if not chunk: break
                b += len(chunk)
            if r.status != 200: e += 1
            n += 1
            if r.will_close: c.close(); c = None
        except Exception:
            e += 1; c = None
    with lock:
        count[0] += n; nbytes[0] += b; errors[0] += e
ts = [threading.Thread(target=worker) for _ in range(conns)]
t0 = time.monotonic()
[t.start() for t in ts]; [t.join() for t in ts]
dt = time.monotonic() - t0
print(count[0] / dt, nbytes[0] / dt / 1e6, errors[0])
"""


def py_load(port: int, path: str, conns: int, seconds: float, accept: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            PY_CLIENT,
            "127.0.0.1",
            str(port),
            path,
            str(conns),
            str(seconds),
            accept,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout.split()
    return {"rps": float(out[0]), "mbps": float(out[1]), "errors": int(out[2])}


def load(server: Server, path: str, conns: int, seconds: float, use_wrk: bool) -> dict:
    if use_wrk:
        return wrk(f"http://127.0.0.1:{server.port}{path}", conns, seconds, {"Accept": PIP_ACCEPT})
    return py_load(server.port, path, conns, seconds, PIP_ACCEPT)


def check_page(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", server.page_path, headers={"Accept": PIP_ACCEPT})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200 or b"pkg_001" not in body:
        raise RuntimeError(f"{server.name}: bad page answer {resp.status}")


def pip_install_time(server: Server, pip_python: str, work: Path) -> float | str:
    target = Path(tempfile.mkdtemp(prefix="pip-target-", dir=work))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    t0 = time.monotonic()
    proc = subprocess.run(
        [pip_python, "-m", "pip", "install", "-q", "--no-cache-dir", "--target", str(target),
         "--index-url", server.index_url, "bench-root"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    shutil.rmtree(target, ignore_errors=True)
    if proc.returncode != 0:
        return "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:80]
    return elapsed


# ---------------------------------------------------------------- clients that never read

STALLED_PAYLOAD = 1_000_000  # bigger than default socket buffers, smaller than autotuned ones
STALLED_PIPELINE = 8  # requests each non-reading client sends at once


def build_stalled_tree(work: Path) -> tuple[Path, str]:
    """A tree with one 1 MB wheel; returns (root, the wheel's URL path)."""
    root = work / "stalled-tree"
    if not (root / "manifest.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        write_tree(
            root, [Dist("mid", "1.0", payload=os.urandom(STALLED_PAYLOAD)), Dist("beta", "1.0")]
        )
    wheel = next((root / "packages" / "mid").glob("*.whl"))
    return root, "/" + wheel.relative_to(root).as_posix()


def stalled_wait(python: str, script: str, root: Path, path: str, clients: int, cap: float) -> dict:
    """Seconds a GET of a small page waits while ``clients`` non-reading pipeliners are
    connected (None when it got no answer within ``cap``), and the server's peak RSS."""
    port = free_port()
    server = Server("stalled", [python, script, "-i", str(root), "-H", "127.0.0.1", "-p", str(port), "-q"],
                    port, "/simple/beta/", path, "")  # fmt: skip
    server.start()
    socks = []
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * STALLED_PIPELINE
        for _ in range(clients):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            s.sendall(request)
            socks.append(s)
        time.sleep(1.0)  # the sockets fill up
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=cap)
            conn.request("GET", "/simple/beta/", headers={"Accept": "text/html"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            wait = time.monotonic() - t0 if resp.status == 200 else None
        except OSError:
            wait = None
        return {"wait": wait, "rss": server.peak_rss_mb()}
    finally:
        for s in socks:
            s.close()
        server.stop()


def run_stalled(args, work: Path) -> int:
    root, path = build_stalled_tree(work)
    script = args.server_script or str(REPO / "server.py")
    counts = [int(n) for n in args.stalled_clients.split(",")]
    print(f"server: {script}; {STALLED_PIPELINE} pipelined GETs of a 1 MB file per client, "
          f"none read; normal GET given up after {args.stalled_cap:.0f}s", flush=True)  # fmt: skip
    print(f"{'python':10} {'clients':>8} {'GET wait':>10} {'peak RSS':>9}")
    for python in args.stalled_pythons.split(","):
        if not Path(python).exists():
            print(f"skipping {python}: not installed")
            continue
        version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout.strip()  # fmt: skip
        for n in counts:
            r = stalled_wait(python, script, root, path, n, args.stalled_cap)
            wait = f"{r['wait']:9.2f}s" if r["wait"] is not None else f">{args.stalled_cap:.0f}s"
            print(f"{version:10} {n:8d} {wait:>10} {r['rss']:8.1f}M", flush=True)
    return 0


# -------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load run")
    parser.add_argument("--work", default="/tmp/morgan-like-bench", help="where trees and logs go")
    parser.add_argument("--only", help="comma-separated subset: ours,morgan,http.server,nginx")
    parser.add_argument("--python", help="interpreter for our server.py (default: this one)")
    parser.add_argument("--morgan-python", default="/tmp/morganvenv/bin/python")
    parser.add_argument(
        "--install-morgan", action="store_true", help="pip install morgan==0.15.0 if missing"
    )
    parser.add_argument("--pip-python", default="/root/.pyenv/versions/3.11.7/bin/python")
    parser.add_argument("--nginx-workers", default="1", help="nginx worker_processes (default 1)")
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the Python load client even if wrk exists"
    )
    parser.add_argument(
        "--stalled", action="store_true", help="run only the non-reading-clients scenario"
    )
    parser.add_argument("--stalled-clients", default="32,64,200", help="client counts")
    parser.add_argument(
        "--stalled-pythons",
        default="/root/.pyenv/versions/3.6.15/bin/python3,/root/.pyenv/versions/3.13.0/bin/python3",
        help="comma-separated interpreters for the server",
    )
    parser.add_argument(
        "--stalled-cap", type=float, default=90.0, help="seconds before a GET is given up on"
    )
    parser.add_argument("--server-script", help="the server.py to run (default: this checkout's)")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.stalled:
        return run_stalled(args, work)
    print("building trees ...", flush=True)
    ours, morgan_tree = build_trees(work)
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    print(f"load client: {'wrk' if use_wrk else 'python threads'}; {args.seconds:.0f}s per run; "
          f"{os.cpu_count()} CPUs shared by client and server", flush=True)  # fmt: skip
    pip_venv = work / "pipvenv"
    if not (pip_venv / "bin" / "python").exists():
        subprocess.run([args.pip_python, "-m", "venv", str(pip_venv)], check=True)
    pip_python = str(pip_venv / "bin" / "python")

    results = {}
    for server in make_servers(ours, morgan_tree, work, args):
        print(f"--- {server.name}", flush=True)
        server.start()
        try:
            check_page(server)
            r = {"rss_start": server.peak_rss_mb()}
            r["pages"] = load(server, server.page_path, 16, args.seconds, use_wrk)
            r["rss_pages"] = server.peak_rss_mb()
            r["big8"] = load(server, server.file_path, 8, args.seconds, use_wrk)
            r["rss_big8"] = server.peak_rss_mb()
            r["big32"] = load(server, server.file_path, 32, args.seconds, use_wrk)
            r["rss_big32"] = server.peak_rss_mb()
            r["pip"] = pip_install_time(server, pip_python, work)
            results[server.name] = r
            print(json.dumps(r), flush=True)
        finally:
            server.stop()

    def fmt_pip(v):
        return f"{v:6.2f}s" if isinstance(v, float) else v

    print()
    print(f"{'server':12} {'pages/s':>9} {'MB/s x8':>9} {'MB/s x32':>9} {'RSS start':>10} {'RSS pages':>10} "
          f"{'RSS big8':>9} {'RSS big32':>10} {'pip 40 pkgs':>12}  errors")  # fmt: skip
    for name, r in results.items():
        errors = r["pages"]["errors"] + r["big8"]["errors"] + r["big32"]["errors"]
        print(f"{name:12} {r['pages']['rps']:9.0f} {r['big8']['mbps']:9.0f} {r['big32']['mbps']:9.0f} "
              f"{r['rss_start']:9.1f}M {r['rss_pages']:9.1f}M {r['rss_big8']:8.1f}M {r['rss_big32']:9.1f}M "
              f"{fmt_pip(r['pip']):>12}  {errors}")  # fmt: skip
    if "ours" in results:
        o = results["ours"]
        for other in ("morgan", "nginx", "http.server"):
            if other not in results:
                continue
            x = results[other]
            parts = [
                f"pages {o['pages']['rps'] / max(x['pages']['rps'], 1e-9):.2f}x",
                f"50MB x8 {o['big8']['mbps'] / max(x['big8']['mbps'], 1e-9):.2f}x",
            ]
            if isinstance(o["pip"], float) and isinstance(x["pip"], float):
                parts.append(f"pip wall {o['pip'] / x['pip']:.2f}x")
            print(f"ours vs {other:11}: " + ", ".join(parts))
        if "morgan" in results:
            ok = o["pages"]["rps"] >= 3 * results["morgan"]["pages"]["rps"]
            print(f"target >= 3x morgan on index pages: {'met' if ok else 'NOT met'}")
        if "nginx" in results:
            ok = o["big8"]["mbps"] >= 0.5 * results["nginx"]["big8"]["mbps"]
            print(f"target >= 50% of nginx on large files: {'met' if ok else 'NOT met'}")
        flat = o["rss_big32"] - o["rss_pages"] < 32
        print(
            f"memory flat under concurrency (ours, +{o['rss_big32'] - o['rss_start']:.1f} MB): {'yes' if flat else 'NO'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
