"""tree/storage.py: the filesystem and the S3 backend pass the same behaviour tests.

The S3 backend runs against a real SeaweedFS (tests/seaweed.py), a bucket per test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from morgan_like.tree.storage import FsStorage, ObjectStat, S3Storage, Storage, StorageError
from tests.seaweed import SECRET_KEY, Seaweed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["fs", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "fs":
        yield FsStorage(tmp_path / "store")
    else:
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        yield seaweed.storage(prefix="tree/sub")


def test_put_get_stat_list_delete(store: Storage, tmp_path: Path) -> None:
    assert store.stat("packages/a/a-1.0.tar.gz") is None
    assert list(store.list()) == []
    store.put_bytes("simple/a/index.html", b"<a>page</a>", content_type="text/html")
    src = tmp_path / "a-1.0.tar.gz"
    src.write_bytes(b"x" * 70_000)
    store.put_file("packages/a/a-1.0.tar.gz", src, content_type="application/octet-stream")
    store.put_bytes("local.json", b"{}", content_type="application/json")

    assert store.get("simple/a/index.html") == b"<a>page</a>"
    stat = store.stat("packages/a/a-1.0.tar.gz")
    assert stat is not None and (stat.key, stat.size) == ("packages/a/a-1.0.tar.gz", 70_000)
    with store.open("packages/a/a-1.0.tar.gz") as reader:
        assert reader.read(10) == b"x" * 10
        assert len(reader.read()) == 69_990
    assert [(s.key, s.size) for s in store.list()] == [
        ("local.json", 2),
        ("packages/a/a-1.0.tar.gz", 70_000),
        ("simple/a/index.html", 11),
    ]
    assert [s.key for s in store.list("packages/")] == ["packages/a/a-1.0.tar.gz"]
    assert [s.key for s in store.list("simple/b")] == []

    store.put_bytes("simple/a/index.html", b"new", content_type="text/html")
    assert store.get("simple/a/index.html") == b"new"
    store.delete("simple/a/index.html")
    store.delete("simple/a/index.html")  # a missing object: not an error
    assert store.stat("simple/a/index.html") is None
    with pytest.raises(StorageError, match="no such object"):
        store.get("simple/a/index.html")
    with pytest.raises(StorageError, match="no such object"), store.open("nope/x"):
        pass


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_keys_that_escape_or_are_empty_are_refused(store: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x", content_type="text/plain")


def test_s3_sets_content_type_and_cache_control_and_keeps_the_prefix(seaweed: Seaweed) -> None:
    bucket = seaweed.new_bucket()
    store = seaweed.storage(bucket, prefix="mirror")
    store.put_bytes(
        "simple/a/index.json",
        b"{}",
        content_type="application/vnd.pypi.simple.v1+json",
        cache_control="no-cache",
    )
    head = seaweed.boto3_client().head_object(Bucket=bucket, Key="mirror/simple/a/index.json")
    assert head["ContentType"] == "application/vnd.pypi.simple.v1+json"
    assert head["CacheControl"] == "no-cache"
    assert store.describe() == f"s3://{bucket}/mirror"
    stat = store.stat("simple/a/index.json")
    assert stat == ObjectStat("simple/a/index.json", 2, stat.etag if stat else None)
    assert stat is not None and stat.etag and '"' not in stat.etag


def test_s3_multipart_upload_is_whole(seaweed: Seaweed, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("morgan_like.tree.storage.MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    store = seaweed.storage()
    big = tmp_path / "big.whl"
    big.write_bytes(bytes(range(256)) * (12 * 1024 * 1024 // 256 + 7))
    store.put_file("packages/big/big.whl", big, content_type="application/octet-stream")
    assert store.get("packages/big/big.whl") == big.read_bytes()


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import morgan_like.tree.storage as storage

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    kind, target, key, src = sys.argv[1:5]
    if kind == "fs":
        store = storage.FsStorage(Path(target))
        os.replace = die  # the temp file is written and synced; the rename never happens
    else:
        storage.MULTIPART_THRESHOLD = 5 * 1024 * 1024
        store = storage.S3Storage(
            target, "p", endpoint=os.environ["AWS_ENDPOINT_URL"], region="us-east-1"
        )
        # Killed once the first part has landed: the upload never completes.
        store._client.meta.events.register("after-call.s3.UploadPart", die)
    store.put_file(key, Path(src), content_type="application/octet-stream")
    """
)


@pytest.mark.parametrize("kind", ["fs", "s3"])
def test_a_killed_put_leaves_the_old_object_or_none(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src = tmp_path / "big.whl"
    src.write_bytes(b"n" * (12 * 1024 * 1024))
    env = None
    if kind == "fs":
        store: Storage = FsStorage(tmp_path / "store")
        target = str(tmp_path / "store")
    else:
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        target = seaweed.new_bucket()
        store = seaweed.storage(target, prefix="p")
        env = seaweed.client_env()
    store.put_bytes("packages/a/old.whl", b"old", content_type="application/octet-stream")
    for key in ("packages/a/new.whl", "packages/a/old.whl"):
        proc = subprocess.run(
            [sys.executable, "-c", _KILL_SCRIPT, kind, target, key, str(src)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert store.stat("packages/a/new.whl") is None
    assert store.get("packages/a/old.whl") == b"old"
    assert [s.key for s in store.list()] == ["packages/a/old.whl"]
    # What the kills left (a temp file; an unfinished multipart upload) is swept.
    assert store.sweep() == 2
    assert store.sweep() == 0
    if kind == "fs":
        assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == ["old.whl"]
    else:
        uploads = seaweed.boto3_client().list_multipart_uploads(Bucket=target)
        assert uploads.get("Uploads", []) == []
    assert [s.key for s in store.list()] == ["packages/a/old.whl"]


def test_s3_errors_name_the_object_never_the_secret(seaweed: Seaweed) -> None:
    bucket = seaweed.new_bucket()
    wrong = S3Storage(
        bucket,
        "p",
        endpoint=seaweed.endpoint,
        region=seaweed.region,
        access_key_id=seaweed.access_key,
        secret_access_key=SECRET_KEY + "-wrong",
    )
    with pytest.raises(StorageError) as info:
        wrong.put_bytes("simple/index.html", b"x", content_type="text/html")
    message = str(info.value)
    assert f"s3://{bucket}/p/simple/index.html" in message
    assert SECRET_KEY not in message and seaweed.access_key not in message

    # a name no other test of the session writes to (SeaweedFS makes a bucket on a PUT)
    absent = f"no-such-bucket-{uuid.uuid4().hex[:12]}"
    missing = seaweed.storage(absent, prefix="p")
    with pytest.raises(StorageError, match=f"s3://{absent}"):
        list(missing.list())
    assert missing.stat("x") is None  # a HEAD cannot tell a missing bucket from a missing key


def test_s3_unreachable_endpoint_is_one_message(tmp_path: Path) -> None:
    from tests.server_support import free_port

    store = S3Storage(
        "bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key=SECRET_KEY,
    )
    with pytest.raises(StorageError) as info:
        store.stat("x")
    assert "s3://bucket/x" in str(info.value) and SECRET_KEY not in str(info.value)


def test_s3_credentials_from_a_profile_file(seaweed: Seaweed, tmp_path: Path) -> None:
    """No key given: boto3's standard chain finds them in AWS_PROFILE's section of the
    shared credentials file, as every AWS tool does."""
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[mirror]\naws_access_key_id = {seaweed.access_key}\n"
        f"aws_secret_access_key = {seaweed.secret_key}\n"
    )
    bucket = seaweed.new_bucket()
    code = (
        "import os, sys\n"
        "from morgan_like.tree.storage import S3Storage\n"
        "s = S3Storage(sys.argv[1], 'p', endpoint=os.environ['AWS_ENDPOINT_URL'])\n"
        "s.put_bytes('simple/index.html', b'ok', content_type='text/html')\n"
        "print(s.get('simple/index.html').decode())\n"
    )
    env = seaweed.client_env()
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_PROFILE="mirror")
    proc = subprocess.run(
        [sys.executable, "-c", code, bucket], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    env["AWS_PROFILE"] = "nosuchprofile"
    proc = subprocess.run(
        [sys.executable, "-c", code, bucket], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "StorageError" in proc.stderr and "nosuchprofile" in proc.stderr
    assert seaweed.secret_key not in proc.stderr


def test_a_readers_own_error_is_not_taken_for_the_stores(store: Storage) -> None:
    store.put_bytes("packages/a/a.whl", b"abc" * 1000, content_type="application/octet-stream")
    with pytest.raises(KeyError), store.open("packages/a/a.whl") as reader:
        assert reader.read(3) == b"abc"
        raise KeyError("the caller's own")


def test_the_test_store_serves_anonymous_reads_only(seaweed: Seaweed) -> None:
    """What nginx in front of the bucket relies on: a GET without credentials gets the
    object with the type and Cache-Control it was stored with; a PUT without is refused."""
    import urllib.error
    import urllib.request

    store = seaweed.storage(prefix="m")
    store.put_bytes(
        "simple/index.html", b"hello", content_type="text/html", cache_control="no-cache"
    )
    url = f"{seaweed.endpoint}/{store.bucket}/m/simple/index.html"
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.read() == b"hello"
        assert reply.headers["Content-Type"] == "text/html"
        assert reply.headers["Cache-Control"] == "no-cache"
    put = urllib.request.Request(url, data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(put, timeout=30)
    assert info.value.code == 403


def test_fs_objects_are_readable_by_a_web_server(tmp_path: Path) -> None:
    store = FsStorage(tmp_path / "store")
    store.put_bytes("simple/index.html", b"x", content_type="text/html")
    assert (tmp_path / "store/simple/index.html").stat().st_mode & 0o777 == 0o644
