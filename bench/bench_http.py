"""HTTP clients on a sync's traffic: CPU and wall per GET, peak RSS, as ratios.

    python bench/bench_http.py [--projects 1000] [--rounds 3] [--threads 1 8]
                               [--clients upstream,requests,urllib3,httpclient,pycurl,aiohttp]

The upstream is bench_sync.py's synthetic index (PEP 691 project pages and their
files, 1,280 bytes each) served by nginx on 127.0.0.1.  Every client GETs the
same URLs (each project's page, then its files) and reads each body whole, in a
process of its own so that peak RSS and CPU are its own; clients take turns in
every round, the order reversed each round, so the machine's noise falls on all.

``upstream`` is morgan_like's own client (index/upstream.py: retries, caps,
deadlines, byte accounting); the others are the bare libraries with one pooled
connection per thread.  ``pycurl`` (libcurl's multi interface) and ``aiohttp``
are optional: a client whose module is missing is left out, named.  Printed: CPU
ms per GET (user + system of the process), wall, GETs/s, peak RSS, and each
client's CPU and wall as a ratio to ``requests``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

ACCEPT = "application/vnd.pypi.simple.v1+json"
CLIENTS = ("upstream", "requests", "urllib3", "httpclient", "pycurl", "aiohttp")


# ------------------------------------------------------------------ clients (child side)


def _ok(response, status):  # noqa: ANN001, ANN202 - any client's response
    code = response.getinfo(status) if isinstance(status, int) else getattr(response, status)
    if code != 200:
        raise RuntimeError(f"HTTP {code}")
    return response


def _threads_run(get: Callable[[str], int], urls: list[str], threads: int) -> int:
    if threads == 1:
        return sum(get(u) for u in urls)
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(get, urls, chunksize=16))


def run_upstream(base: str, urls: list[str], threads: int) -> int:
    from morgan_like.index.upstream import Upstream

    with Upstream(base + "/simple/", pool_size=max(threads, 2)) as up:
        return _threads_run(
            lambda u: len(up.get(u, headers={"Accept": ACCEPT}).content), urls, threads
        )


def run_requests(base: str, urls: list[str], threads: int) -> int:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=max(threads, 2), max_retries=0))
    session.trust_env = False

    def get(url: str) -> int:
        response = session.get(url, headers={"Accept": ACCEPT}, timeout=30)
        response.raise_for_status()
        return len(response.content)

    return _threads_run(get, urls, threads)


def run_urllib3(base: str, urls: list[str], threads: int) -> int:
    import urllib3

    pool = urllib3.PoolManager(maxsize=max(threads, 2), retries=False, timeout=30)

    def get(url: str) -> int:
        return len(_ok(pool.request("GET", url, headers={"Accept": ACCEPT}), "status").data)

    return _threads_run(get, urls, threads)


def run_httpclient(base: str, urls: list[str], threads: int) -> int:
    import http.client
    import threading
    from urllib.parse import urlsplit

    local = threading.local()
    host = urlsplit(base).netloc

    def get(url: str) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, timeout=30)
        conn.request("GET", url, headers={"Accept": ACCEPT})
        return len(_ok(conn.getresponse(), "status").read())

    return _threads_run(get, urls, threads)


def run_pycurl(base: str, urls: list[str], threads: int) -> int:
    import io

    import pycurl

    def handle() -> pycurl.Curl:
        c = pycurl.Curl()
        c.setopt(pycurl.HTTPHEADER, [f"Accept: {ACCEPT}"])
        c.setopt(pycurl.TIMEOUT, 30)
        return c

    if threads == 1:
        c, total = handle(), 0
        for url in urls:
            buf = io.BytesIO()
            c.setopt(pycurl.URL, url)
            c.setopt(pycurl.WRITEDATA, buf)
            c.perform()
            _ok(c, pycurl.RESPONSE_CODE)
            total += len(buf.getvalue())
        return total
    multi = pycurl.CurlMulti()
    free = [handle() for _ in range(threads)]
    pending, total, active = list(reversed(urls)), 0, 0
    while pending or active:
        while pending and free:
            c = free.pop()
            c.buf = io.BytesIO()  # type: ignore[attr-defined]
            c.setopt(pycurl.URL, pending.pop())
            c.setopt(pycurl.WRITEDATA, c.buf)  # type: ignore[attr-defined]
            multi.add_handle(c)
            active += 1
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        _queued, done, failed = multi.info_read()
        for c in done:
            _ok(c, pycurl.RESPONSE_CODE)
            total += len(c.buf.getvalue())  # type: ignore[attr-defined]
            multi.remove_handle(c)
            free.append(c)
            active -= 1
        if failed:
            raise RuntimeError(failed)
        multi.select(1.0)
    return total


def run_aiohttp(base: str, urls: list[str], threads: int) -> int:
    import asyncio

    import aiohttp

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=threads)
        async with aiohttp.ClientSession(connector=connector) as session:
            sem = asyncio.Semaphore(threads)

            async def get(url: str) -> int:
                async with sem, session.get(url, headers={"Accept": ACCEPT}) as r:
                    return len(await _ok(r, "status").read())

            return sum(await asyncio.gather(*(get(u) for u in urls)))

    return asyncio.run(main())


def child(client: str, base: str, url_file: Path, threads: int) -> None:
    urls = json.loads(url_file.read_text())
    runner = globals()[f"run_{client}"]
    runner(base, urls[:20], threads)  # imports and first connections, not measured
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    total = runner(base, urls, threads)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"cpu": cpu, "wall": wall, "bytes": total, "n": len(urls),
                      "rss": after.ru_maxrss}))  # fmt: skip


# ------------------------------------------------------------------ parent


def available(client: str) -> bool:
    module = {"httpclient": "http.client", "upstream": "morgan_like"}.get(client, client)
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base, args.urls, args.threads[0])
        return 0

    from bench_sync import VERSIONS, Upstream, _free_port

    clients = [c for c in args.clients.split(",") if c]
    missing = [c for c in clients if not available(c)]
    clients = [c for c in clients if c not in missing]
    if missing:
        print(f"left out (not importable): {', '.join(missing)}")
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    work.chmod(0o755)  # nginx's workers read it as another user
    up = Upstream(work / "upstream", _free_port(), with_files=True)
    for i in range(args.projects):
        for version in VERSIONS:
            up.release(f"proj{i:06d}", version)
    up.publish()
    up.start()
    base = f"http://127.0.0.1:{up.port}"
    urls = []
    for name, files in up.files.items():
        urls.append(f"{base}/simple/{name}/")
        urls += [f"{base}/packages/{name}/{filename}" for filename, _, _ in files]
    url_file = work / "urls.json"
    url_file.write_text(json.dumps(urls))
    print(f"{len(urls)} GETs per run ({args.projects} pages, their files), {args.rounds} rounds")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(sys.path[:2] + [os.environ.get("PYTHONPATH", "")])
    )
    try:
        for threads in args.threads:
            runs: dict[str, list[dict]] = {c: [] for c in clients}
            for r in range(args.rounds):
                for client in clients if r % 2 == 0 else reversed(clients):
                    cmd = [sys.executable, __file__, "--child", client, "--base", base]
                    cmd += ["--urls", str(url_file), "--threads", str(threads)]
                    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                    if out.returncode != 0:
                        print(f"  ! {client}: {out.stderr.strip()[-300:]}", file=sys.stderr)
                        continue
                    runs[client].append(json.loads(out.stdout.strip().splitlines()[-1]))
            report(threads, runs)
    finally:
        up.stop()
    return 0


def report(threads: int, runs: dict[str, list[dict]]) -> None:
    def best(client: str, key: str) -> float:
        return min(run[key] for run in runs[client])

    done = [c for c in runs if runs[c]]
    ref = "requests" if "requests" in done else done[0]
    print(f"\n{threads} thread(s); best of the rounds; ratio = {ref} / client (higher is better)")
    for client in done:
        n = runs[client][0]["n"]
        cpu, wall = best(client, "cpu"), best(client, "wall")
        rss = max(run["rss"] for run in runs[client]) / 1024
        print(
            f"  {client:11} CPU {cpu / n * 1000:6.3f} ms/GET  wall {wall:6.2f} s "
            f"{n / wall:7.0f} GET/s  peak RSS {rss:5.0f} MB | "
            f"CPU ratio {best(ref, 'cpu') / cpu:5.2f}x  wall ratio {best(ref, 'wall') / wall:5.2f}x"
        )


if __name__ == "__main__":
    raise SystemExit(main())
