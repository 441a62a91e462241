"""tree/bucketpush.py: the push's order, its journal, kill -9 at any step, full reconcile,
and no credential anywhere a push leaves something.

The order is checked on what a client would see: after every single PUT or DELETE the
store's pages link only objects the store holds.  The kill tests push a real synced
working tree into a real SeaweedFS from a subprocess stopped with SIGKILL at steps
spread over its whole run (tree/crashpoints.py).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from morgan_like.tree import crashpoints
from morgan_like.tree.bucketpush import (
    IMMUTABLE,
    JOURNAL,
    NO_CACHE,
    Journal,
    cache_control,
    content_type,
    push,
    rank,
    read_journal,
)
from morgan_like.tree.files import files_under
from morgan_like.tree.storage import FsStorage, ObjectStat, Storage
from tests.helpers import wheel
from tests.modes.sync_support import sync
from tests.seaweed import SECRET_KEY, Seaweed

ROOT = Path(__file__).resolve().parents[2]
KILL_POINTS = 9

# --------------------------------------------------------------------- what a client sees

_HREF = re.compile(r'href="([^"]+)"')


def _links(key: str, body: bytes) -> Iterator[str]:
    """The store keys a page points at (files, their .metadata, project pages)."""
    base = "http://store/" + key
    name = key.rsplit("/", 1)[-1]
    targets: list[str] = []
    if name == "index.json":
        doc = json.loads(body)
        for f in doc.get("files", []):
            targets.append(f["url"])
            if f.get("core-metadata") or f.get("dist-info-metadata"):
                targets.append(f["url"].split("#")[0] + ".metadata")
        for p in doc.get("projects", []):
            targets.append(_canonical(p["name"]) + "/index.json")
    elif name == "index.html":
        text = body.decode()
        for href in _HREF.findall(text):
            targets.append(href)
            if "data-core-metadata" in text or "data-dist-info-metadata" in text:
                for line in text.splitlines():
                    if f'href="{href}"' in line and "core-metadata" in line:
                        targets.append(href.split("#")[0] + ".metadata")
    for target in targets:
        url = urljoin(base, target)
        if url.startswith("http://store/"):
            path = urlsplit(url).path.lstrip("/")
            yield path + "index.html" if path.endswith("/") else path


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_page(key: str) -> bool:
    parts = key.split("/")
    return key.endswith(("index.json", "index.html")) and (
        parts[0] == "simple" or (parts[0] == "envs" and "simple" in parts)
    )


def dangling(objects: dict[str, bytes]) -> list[str]:
    """``page -> missing`` for every link of a stored page to an object the store lacks."""
    return [
        f"{key} -> {target}"
        for key, body in sorted(objects.items())
        if _is_page(key)
        for target in _links(key, body)
        if target not in objects
    ]


def visible(root: Path) -> dict[str, bytes]:
    return {p: (root / p).read_bytes() for p in files_under(root, root)}


# --------------------------------------------------------------------- a recording store


class RecordingStorage(FsStorage):
    """An FsStorage that logs each PUT and DELETE and checks the store is whole after it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.log: list[tuple[str, str]] = []
        self.broken: list[str] = []
        self._lock = threading.Lock()  # the push runs requests side by side: one at a time here

    def _after(self, op: str, key: str) -> None:
        self.log.append((op, key))
        objects = {s.key: self.get(s.key) for s in self.list()}
        self.broken += [f"after {op} {key}: {d}" for d in dangling(objects)]

    def put_file(self, key, path, *, content_type, cache_control=None):  # type: ignore[no-untyped-def]
        with self._lock:
            super().put_file(key, path, content_type=content_type, cache_control=cache_control)
            self._after("put", key)

    def delete(self, key: str) -> None:
        with self._lock:
            super().delete(key)
            self._after("delete", key)


# --------------------------------------------------------------------- a real working tree


@pytest.fixture
def trees(fake_index, dists: Path, tmp_path: Path) -> tuple[Path, Path, list[str], list[str]]:
    """(first, second, changed, removed): a synced tree, and the same after upstream moved
    (a new release, a project gone, a file gone), with what the second sync published."""
    wheel(fake_index, dists, "alpha", "1.0")
    wheel(fake_index, dists, "alpha", "1.1")
    wheel(fake_index, dists, "beta", "1.0")
    wheel(fake_index, dists, "gamma", "2.0")
    first = tmp_path / "first"
    assert sync(first, fake_index).rc == 0
    second = tmp_path / "second"
    shutil.copytree(first, second)
    wheel(fake_index, dists, "alpha", "2.0")
    wheel(fake_index, dists, "delta", "0.1")
    fake_index.remove_project("beta")
    fake_index.remove("alpha-1.0-py3-none-any.whl")
    run = sync(second, fake_index)
    assert run.rc == 0 and run.removed, run
    return first, second, run.changed, run.removed


def test_content_types_and_cache_control() -> None:
    assert content_type("simple/a/index.json") == "application/vnd.pypi.simple.v1+json"
    assert content_type("envs/py311/simple/index.json") == "application/vnd.pypi.simple.v1+json"
    assert content_type("simple/a/index.html") == "text/html; charset=utf-8"
    assert content_type("packages/a/a-1.0-py3-none-any.whl") == "application/octet-stream"
    assert content_type("packages/a/a-1.0-py3-none-any.whl.metadata") == "application/octet-stream"
    assert content_type("packages/a/a-1.0.tar.gz.provenance") == "application/json"
    assert content_type("json/a") == "application/json"
    assert content_type("local.json") == "application/json"
    assert content_type("local.db.serial") == "text/plain; charset=utf-8"
    assert content_type("sbom.cdx.json") == "application/vnd.cyclonedx+json"
    assert content_type("locks/pylock.py311.toml") == "application/toml; charset=utf-8"
    assert content_type("index.html") == "text/html; charset=utf-8"
    assert cache_control("packages/a/a-1.0.tar.gz") == IMMUTABLE
    assert cache_control("simple/a/index.html") == NO_CACHE
    assert cache_control("local.json") == NO_CACHE


def test_ranks() -> None:
    order = [
        "packages/a/a-1.0.whl",
        "packages/a/a-1.0.whl.metadata",
        "simple/a/index.json",
        "simple/index.json",
        "local.json",
        "manifest.json",
    ]
    assert [rank(p) for p in order] == sorted(rank(p) for p in order)
    assert rank("envs/e/simple/a/index.html") == rank("json/a") == rank("simple/a/index.html")
    assert rank("envs/e/simple/index.html") == rank("simple/index.html")
    assert rank("locks/e.requirements.txt") == rank("local.db.serial")


def test_push_order_never_shows_a_page_with_a_missing_object(trees, tmp_path: Path) -> None:
    first, second, changed, removed = trees
    store = RecordingStorage(tmp_path / "store")
    push(first, store, [], [], full=True)
    assert visible(tmp_path / "store") == visible(first)
    store.log.clear()

    result = push(second, store, changed, removed)
    assert store.broken == []
    assert visible(tmp_path / "store") == visible(second)
    ops = [op for op, _ in store.log]
    assert "delete" in ops and ops == sorted(ops, key=lambda op: op == "delete")
    puts = [key for op, key in store.log if op == "put"]
    assert [rank(k) for k in puts] == sorted(rank(k) for k in puts)
    assert puts[-1] == "manifest.json"
    deletes = [key for op, key in store.log if op == "delete"]
    assert [rank(k) for k in deletes] == sorted((rank(k) for k in deletes), reverse=True)
    assert any(k.startswith("simple/beta/") for k in deletes)
    assert "packages/alpha/alpha-1.0-py3-none-any.whl" in deletes
    assert result.uploaded == len(puts) and result.deleted == len(deletes)
    assert not (second / JOURNAL).exists()


def test_a_bundle_with_env_views_pushes_whole(fake_index, dists: Path, tmp_path: Path) -> None:
    """Env views (envs/<env>/simple/) link files four folders up: their pages wait for
    the files too, and a view's root for its pages."""
    from tests.modes.test_bundle import mirror, write_config

    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "old", "1.0")
    root = tmp_path / "bundle"
    write_config(root, "app = ==1.0\nold =\n", "3.11.4", "3.12.1")
    assert mirror(root, fake_index) == 0
    view_page = next(root.glob("envs/*/simple/lib/index.json")).relative_to(root).as_posix()
    assert "packages/lib/lib-1.0-py3-none-any.whl" in _links(
        view_page, (root / view_page).read_bytes()
    )
    store = RecordingStorage(tmp_path / "store")
    push(root, store, [], [], full=True)
    wheel(fake_index, dists, "app", "2.0", requires_dist=["lib>=2"])
    wheel(fake_index, dists, "lib", "2.0")
    write_config(root, "app =\n", "3.11.4", "3.12.1")
    assert mirror(root, fake_index, "--prune") == 0
    push(root, store, [], [], full=True)
    assert store.broken == []
    assert any(op == "delete" and k.startswith("envs/") for op, k in store.log)
    assert visible(tmp_path / "store") == visible(root)


class FailingStorage(FsStorage):
    """Fails the Nth request (a network cut): the push stops with its journal left."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root)
        self.fail_at = fail_at
        self.count = 0

    def _tick(self) -> None:
        self.count += 1
        if self.count == self.fail_at:
            raise OSError("connection reset")

    def put_file(self, key, path, *, content_type, cache_control=None):  # type: ignore[no-untyped-def]
        self._tick()
        super().put_file(key, path, content_type=content_type, cache_control=cache_control)

    def delete(self, key: str) -> None:
        self._tick()
        super().delete(key)


def test_a_failed_push_leaves_its_journal_and_the_next_finishes(trees, tmp_path: Path) -> None:
    first, second, changed, removed = trees
    target = tmp_path / "store"
    push(first, FsStorage(target), [], [], full=True)
    with pytest.raises(OSError):
        push(second, FailingStorage(target, fail_at=3), changed, removed)
    pending = read_journal(second)
    assert pending and not pending.full and set(pending.paths) <= set(changed) | set(removed)
    assert dangling(visible(target)) == []
    # The next push is told nothing new: the journal alone finishes the work, and first
    # sweeps what a put cut short left in the store.
    leftover = target / "packages/alpha/.~storage-cut-short"
    leftover.write_bytes(b"half")
    store = RecordingStorage(target)
    result = push(second, store, [], [])
    assert not leftover.exists()
    assert result.resumed and store.broken == []
    assert visible(target) == visible(second)
    assert read_journal(second) is None


def test_full_reconcile_uploads_what_differs_and_deletes_strays(trees, tmp_path: Path) -> None:
    first, second, _, _ = trees
    target = tmp_path / "store"
    push(first, FsStorage(target), [], [], full=True)
    # A page of the same size with other bytes, a stray object, a missing file.
    page = "simple/gamma/index.json"
    size = len((first / page).read_bytes())
    (target / page).write_bytes(b'{"files": [], "x": "' + b"-" * (size - 22) + b'"}')
    assert (target / page).stat().st_size == size
    (target / "packages/stray/stray-1.0.tar.gz").parent.mkdir(parents=True)
    (target / "packages/stray/stray-1.0.tar.gz").write_bytes(b"stray")
    (target / "packages/gamma/gamma-2.0-py3-none-any.whl").unlink()
    store = RecordingStorage(target)
    push(second, store, [], [], full=True)
    assert visible(target) == visible(second)  # (the store was broken on purpose before)
    again = push(second, store, [], [], full=True)
    assert (again.uploaded, again.deleted) == (0, 0)


def test_a_killed_full_push_resumes_in_full(trees, tmp_path: Path) -> None:
    first = trees[0]
    target = tmp_path / "store"
    with pytest.raises(OSError):
        push(first, FailingStorage(target, fail_at=4), [], [], full=True)
    assert read_journal(first) == Journal((), full=True)
    result = push(first, FsStorage(target), [], [])
    assert result.resumed and visible(target) == visible(first)
    assert read_journal(first) is None
    # An unreadable journal (a disk that lost it half-written) is a full push too.
    (first / "packages/alpha/alpha-1.1-py3-none-any.whl").touch()
    (target / "simple/alpha/index.json").unlink()
    (first / JOURNAL).write_text("{not json")
    push(first, FsStorage(target), [], [])
    assert visible(target) == visible(first)


def test_evict_drops_local_distributions_and_full_push_keeps_them(trees, tmp_path: Path) -> None:
    first, _, _, _ = trees
    target = tmp_path / "store"
    before = visible(first)
    result = push(first, FsStorage(target), [], [], full=True, evict=True)
    wheels = [p for p in before if p.endswith(".whl")]
    assert result.evicted == len(wheels) > 0
    assert not any((first / p).exists() for p in wheels)
    assert all((first / (p + ".metadata")).exists() for p in wheels)
    assert visible(target) == before
    again = push(first, FsStorage(target), [], [], full=True, evict=True)
    assert again.deleted == 0 and visible(target) == before
    # The state lost (or a run without eviction): the pages still list the files, so a
    # full reconcile keeps them in the store.
    shutil.rmtree(first / ".morgan-like")
    lost = push(first, FsStorage(target), [], [], full=True)
    assert lost.deleted == 0 and visible(target) == before
    # A caller that takes an evicted file for a removal (it is not on disk) cannot make the
    # store drop a file a page still lists.
    told = push(first, FsStorage(target), [], wheels)
    assert told.deleted == 0 and visible(target) == before
    # A run fetched one again (its project's page was rewritten): the next push drops it
    # without uploading it, as the store has it; one the store lacks stays.
    back = first / wheels[0]
    back.write_bytes(before[wheels[0]])
    stray = first / "packages/alpha/alpha-9.9-py3-none-any.whl"
    stray.write_bytes(b"not in the store")
    third = push(first, FsStorage(target), [], [], evict=True)
    assert (third.uploaded, third.evicted) == (0, 1)
    assert not back.exists() and stray.exists()


# --------------------------------------------------------------------- SeaweedFS, kill -9

_PUSH_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from morgan_like.tree.bucketpush import push
    from morgan_like.tree.storage import S3Storage

    root, bucket, changed, removed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    store = S3Storage(bucket, "mirror", endpoint=os.environ["AWS_ENDPOINT_URL"])
    result = push(Path(root), store, json.loads(changed), json.loads(removed))
    print(result)
    """
)


def _push_in_subprocess(
    seaweed: Seaweed, root: Path, bucket: str, changed: list[str], removed: list[str], **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PUSH_SCRIPT, str(root), bucket, json.dumps(changed), json.dumps(removed)],
        cwd=ROOT,
        env={**seaweed.client_env(), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def _count_steps(second: Path, changed: list[str], removed: list[str], tmp_path: Path) -> int:
    probe = tmp_path / "probe"
    shutil.copytree(second, probe)
    count = 0
    real_step = crashpoints.step

    def counting() -> None:
        nonlocal count
        count += 1

    crashpoints.step = counting  # type: ignore[assignment]
    try:
        push(probe, FsStorage(tmp_path / "probe-store"), changed, removed)
    finally:
        crashpoints.step = real_step  # type: ignore[assignment]
    shutil.rmtree(probe)
    return count


@pytest.mark.e2e
def test_kill_minus_9_anywhere_in_a_push(seaweed: Seaweed, trees, tmp_path: Path) -> None:
    first, second, changed, removed = trees
    total = _count_steps(second, changed, removed, tmp_path)
    points = sorted({1 + round(i * (total - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)})
    assert total >= 10 and len(points) >= 5
    resumed = 0
    for point in points:
        bucket = seaweed.new_bucket("kill")
        push(first, seaweed.storage(bucket, "mirror"), [], [], full=True)
        work = tmp_path / f"kill{point}"
        shutil.copytree(second, work)
        run = _push_in_subprocess(
            seaweed, work, bucket, changed, removed, MORGAN_LIKE_CRASH_AFTER=str(point)
        )
        assert run.returncode == -signal.SIGKILL, (point, run.returncode, run.stderr[-2000:])
        seen = seaweed.objects(bucket, "mirror/")
        assert dangling(seen) == [], f"killed at step {point} of {total}"
        assert set(seen) <= set(visible(first)) | set(visible(second))
        # Killed before its journal landed, the push did nothing yet and its caller still
        # has the lists (modes/bucket.py records the generation pushed only once a push
        # returns); past that, the journal alone finishes the work.
        journalled = read_journal(work) is not None
        again = _push_in_subprocess(
            seaweed, work, bucket, *(([], []) if journalled else (changed, removed))
        )
        resumed += journalled
        assert again.returncode == 0, again.stderr[-2000:]
        assert seaweed.objects(bucket, "mirror/") == visible(second), f"after a kill at {point}"
        assert read_journal(work) is None
        shutil.rmtree(work)
    assert resumed >= len(points) - 1


def test_s3_objects_carry_their_types(seaweed: Seaweed, trees) -> None:
    first = trees[0]
    bucket = seaweed.new_bucket()
    push(first, seaweed.storage(bucket, "mirror"), [], [], full=True)
    client = seaweed.boto3_client()
    page = client.head_object(Bucket=bucket, Key="mirror/simple/alpha/index.json")
    assert page["ContentType"] == "application/vnd.pypi.simple.v1+json"
    assert page["CacheControl"] == NO_CACHE
    whl = client.head_object(Bucket=bucket, Key="mirror/packages/alpha/alpha-1.1-py3-none-any.whl")
    assert whl["CacheControl"] == IMMUTABLE


def test_credentials_are_never_in_the_bucket_the_tree_or_the_output(
    seaweed: Seaweed, trees
) -> None:
    first, second, changed, removed = trees
    bucket = seaweed.new_bucket()
    push(first, seaweed.storage(bucket, "mirror"), [], [], full=True)
    run = _push_in_subprocess(seaweed, second, bucket, changed, removed)
    assert run.returncode == 0, run.stderr
    secrets = (SECRET_KEY.encode(), seaweed.access_key.encode())
    assert not any(s in (run.stdout + run.stderr).encode() for s in secrets)
    for body in seaweed.objects(bucket).values():
        assert not any(s in body for s in secrets)
    for path in second.rglob("*"):
        if path.is_file():
            assert not any(s in path.read_bytes() for s in secrets), path


def test_store_stat_is_what_full_push_compares(tmp_path: Path) -> None:
    """A filesystem store has no ETag: a full push compares the bytes themselves."""
    store: Storage = FsStorage(tmp_path / "s")
    store.put_bytes("simple/a/index.json", b"{}", content_type="x")
    assert store.stat("simple/a/index.json") == ObjectStat("simple/a/index.json", 2, None)
