"""A sync into a bucket streams each finished project up during the run
(tree/bucketstream.py, modes/bucket_stream.py): against a real SeaweedFS (tests/seaweed.py),
the objects are there before the sync ends, the working tree keeps no distribution file,
a kill -9 mid-stream leaves a bucket whose pages list only what it holds, and the next
sync ends as an uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.tree.state import EVICTED, TreeState
from morgan_like.tree.statereader import StateReader

from ..seaweed import broken_links
from .test_bucket import REPO, _untimed

# The writer puts pages on disk a batch of projects at a time (tree/pagebatch.py) and a
# project counts as finished, for the stream too, once its batch is: small batches here,
# so that a sync of a few projects has finished ones to stream while it runs.
BATCH = 2
RUN_WITH_BATCH = (
    f"import sys, morgan_like.tree.pagebatch as b; b.BATCH_PROJECTS = {BATCH}; "
    "from morgan_like.cli import main; sys.exit(main(sys.argv[1:]))"
)
PROJECTS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
# One project at a time, each request answered a little late: a run lasts a few of the
# writer's commit intervals, so the stream has finished projects to send while it runs.
SLOW = ["--workers", "1"]
LATENCY = 0.25  # the stream's process starts at the first finished project: runs of seconds


@pytest.fixture
def many(fake_index, dists):
    from ..helpers import sdist, wheel

    for name in PROJECTS:
        wheel(fake_index, dists, name, "1.0")
        wheel(fake_index, dists, name, "2.0")
        sdist(fake_index, dists, name, "2.0")
    return fake_index


def _local_dists(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in (root / "packages").rglob("*")
        if p.is_file() and p.suffix in (".whl", ".gz")
    )


def _sync(url: str, state: Path, index_url: str, *extra: str) -> int:
    return main(["sync", "-i", url, "--local-state", str(state), "-I", index_url, *extra])


@pytest.mark.e2e
def test_a_sync_streams_each_finished_project_during_the_run(
    seaweed, s3_env, many, tmp_path, monkeypatch, capsys
):
    from ..transfer_support import tree_files

    bucket = seaweed.new_bucket("stream")
    url, state, disk = f"s3://{bucket}/m", tmp_path / "state", tmp_path / "disk"
    storage = seaweed.storage(bucket, "m")
    finished: list[str] = []
    seen: dict[str, object] = {}
    real = TreeState.sync_done

    def sync_done(self, name):
        # The sync's last project: hold the run here (its writer) until the bucket shows
        # the pages of every project committed as finished (all but the last batch's).
        if len(finished) == len(PROJECTS) - 1 and "keys" not in seen:
            reader = StateReader(state)
            done = [n for _, n in reader.finished_since(0)]
            reader.close()
            deadline = time.monotonic() + 120
            pages = [f"simple/{p}/index.html" for p in done]
            while time.monotonic() < deadline:
                if all(storage.stat(p) is not None for p in pages):
                    break
                time.sleep(0.1)
            seen["keys"] = {s.key for s in storage.list()}
            seen["local"] = _local_dists(state)
            seen["done"] = done
        finished.append(name)
        return real(self, name)

    monkeypatch.setattr(TreeState, "sync_done", sync_done)
    monkeypatch.setattr("morgan_like.tree.pagebatch.BATCH_PROJECTS", BATCH)
    assert _sync(url, state, many.url) == 0
    out = capsys.readouterr().out
    keys, done = seen["keys"], seen["done"]
    assert isinstance(keys, set) and isinstance(done, list)
    assert len(done) >= BATCH, done  # a batch at least, streamed before the run ended
    for name in done:  # streamed while the sync still ran: pages, files, .metadata
        assert {f"simple/{name}/index.html", f"simple/{name}/index.json", f"json/{name}"} <= keys
        assert f"packages/{name}/{name}-2.0-py3-none-any.whl" in keys
        assert f"packages/{name}/{name}-2.0-py3-none-any.whl.metadata" in keys
        assert f"packages/{name}/{name}-2.0.tar.gz" in keys
        # ... and evicted from the working tree at once
        assert not [p for p in seen["local"] if p.startswith(f"packages/{name}/")]
    assert "simple/index.json" not in keys  # root pages wait for the end push
    assert "objects streamed during the run" in out, out

    # the end: no distribution file left locally, each row EVICTED, the bucket equal to
    # a disk tree synced from the same upstream, byte for byte
    assert _local_dists(state) == []
    with TreeState(state) as st:
        rows = st.query("SELECT relpath, mtime_ns FROM files WHERE relpath GLOB 'packages/*'")
    dist_rows = {r: m for r, m in rows if not r.endswith((".metadata", ".provenance"))}
    assert len(dist_rows) == 3 * len(PROJECTS)
    assert set(dist_rows.values()) == {EVICTED}
    assert main(["sync", "-i", str(disk), "-I", many.url, "-q"]) == 0
    objects = seaweed.objects(bucket, "m/")
    assert _untimed(objects) == _untimed(tree_files(disk))
    working = tree_files(state)
    assert {k: objects[k] for k in working} == working
    assert broken_links(storage) == []

    # a no-op re-sync streams nothing and uploads no file
    client = seaweed.boto3_client()

    def etags() -> dict[str, str]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix="m/")["Contents"]
        return {o["Key"]: o["ETag"] for o in listing}

    before = etags()
    capsys.readouterr()
    assert _sync(url, state, many.url) == 0
    out = capsys.readouterr().out
    assert "streamed" not in out, out
    after = etags()
    assert {k: v for k, v in after.items() if "/packages/" in k} == {
        k: v for k, v in before.items() if "/packages/" in k
    }
    assert {k for k in after if k != "m/index.html" and after[k] != before.get(k)} <= {
        "m/manifest.json"
    }


def _stream_kill_points(seaweed, many, tmp_path) -> list[int]:
    """Steps of the run's own process in a first sync into a bucket (traced in this
    process), spread over the second half of the sync, before its end push: the stream
    (a process of its own, gone with the run) is busy sending finished projects then."""
    from morgan_like.tree import crashpoints

    trace: list[str] = []
    real = crashpoints.step

    def tracing() -> None:
        trace.append(sys._getframe(1).f_code.co_filename)

    import morgan_like.tree.pagebatch as pagebatch

    crashpoints.step = tracing
    batch, pagebatch.BATCH_PROJECTS = pagebatch.BATCH_PROJECTS, BATCH
    try:
        url = f"s3://{seaweed.new_bucket('trace')}/t"
        assert _sync(url, tmp_path / "trace-state", many.url, *SLOW) == 0
    finally:
        crashpoints.step = real
        pagebatch.BATCH_PROJECTS = batch
    pushing = [i for i, f in enumerate(trace) if f.endswith("bucketpush.py")]
    assert pushing, "the end push takes no steps"
    before = pushing[0]
    return sorted({max(1, before * k // 10) for k in range(4, 10)})


@pytest.mark.e2e
def test_kill_9_while_streaming_leaves_a_whole_bucket_and_the_next_sync_completes_it(
    seaweed, s3_env, many, tmp_path, capsys
):
    from ..transfer_support import tree_files

    disk = tmp_path / "disk"
    assert main(["sync", "-i", str(disk), "-I", many.url, "-q"]) == 0
    many.latency = LATENCY
    points = _stream_kill_points(seaweed, many, tmp_path)
    assert len(points) >= 3, points
    env = {k: v for k, v in s3_env.items() if not k.startswith(("PIP_", "MORGAN_LIKE_"))}
    env.update(PYTHONPATH=str(REPO), PIP_CONFIG_FILE=os.devnull)
    killed_mid_stream = 0
    for point in points:
        bucket = seaweed.new_bucket(f"skill{point}")
        url, state = f"s3://{bucket}/t", tmp_path / f"state{point}"
        argv = [sys.executable, "-c", RUN_WITH_BATCH, "sync", "-i", url]
        argv += ["--local-state", str(state), "-I", many.url, "-q", *SLOW]
        killed = subprocess.run(
            argv, env={**env, "MORGAN_LIKE_CRASH_AFTER": str(point)}, capture_output=True
        )
        assert killed.returncode in (-9, 137), (point, killed.stderr)
        storage = seaweed.storage(bucket, "t")
        assert broken_links(storage) == [], point
        if any(s.key.startswith("simple/") for s in storage.list()):
            killed_mid_stream += 1
        again = subprocess.run(argv, env=env, capture_output=True, text=True)
        assert again.returncode == 0, (point, again.stderr)
        objects = seaweed.objects(bucket, "t/")
        assert _untimed(objects) == _untimed(tree_files(disk)), point
        assert broken_links(storage) == []
        assert _local_dists(state) == [], point
        with TreeState(state) as st:
            rows = st.query("SELECT mtime_ns FROM files WHERE relpath GLOB 'packages/*.whl'")
        assert {r[0] for r in rows} == {EVICTED}, point
    assert killed_mid_stream, "no kill landed after a page had streamed"
