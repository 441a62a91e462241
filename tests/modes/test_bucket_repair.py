"""``verify -i s3://... --repair / --remove-unreferenced`` (modes/bucket_repair.py): what a
page links is put back byte for byte from upstream, what no page links goes, and an
upstream out of reach changes nothing.  The scenario runs against a real SeaweedFS
(tests/seaweed.py, e2e); which objects count as linked is checked on an FsStorage."""

# ruff: noqa: F811 (the fixtures imported from test_bucket are taken as arguments)
from __future__ import annotations

import json
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.modes.bucket_repair import unreferenced
from morgan_like.tree.storage import FsStorage

from ..server_support import free_port
from .test_bucket import upstream  # noqa: F401 (fixture)

WHEEL = "packages/lib/lib-2.0-py3-none-any.whl"


def _page(files: list[tuple[str, str]]) -> bytes:
    return json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "p",
            "files": [
                {"filename": url.rsplit("/", 1)[-1], "url": url, "hashes": {"sha256": sha}}
                for url, sha in files
            ],
        }
    ).encode()


def test_unreferenced_counts_env_views_working_tree_pages_and_unreadable_pages(tmp_path):
    store, working = tmp_path / "store", tmp_path / "working"
    objects = {
        "simple/a/index.json": _page([("../../packages/a/a-1.whl", "0" * 64)]),
        "simple/a/index.html": b"<html></html>",
        "envs/prod/simple/b/index.json": _page([("../../../../packages/b/b-1.whl", "1" * 64)]),
        "simple/c/index.json": b"not json",
        "packages/a/a-1.whl": b"a",
        "packages/a/a-1.whl.metadata": b"m",
        "packages/a/a-0.whl": b"stray",
        "packages/b/b-1.whl": b"b",
        "packages/c/c-1.whl": b"c",  # its project's page is unreadable: left alone
        "packages/d/d-1.whl": b"d",  # linked by the working tree's page only
        "packages/e/e-1.whl": b"stray too",
    }
    for key, data in objects.items():
        (store / key).parent.mkdir(parents=True, exist_ok=True)
        (store / key).write_bytes(data)
    (working / "simple/d").mkdir(parents=True)
    (working / "simple/d/index.json").write_bytes(_page([("../../packages/d/d-1.whl", "2" * 64)]))
    assert unreferenced(FsStorage(store), working) == ["packages/a/a-0.whl", "packages/e/e-1.whl"]


def test_verify_of_a_bucket_takes_I_with_repair_only(capsys):
    assert main(["verify", "-i", "s3://pypi-mirror/tree", "-I", "http://127.0.0.1:9/"]) == 2
    assert "only with --repair" in capsys.readouterr().err


def test_mending_a_bucket_wants_its_working_tree(tmp_path, capsys):
    argv = ["verify", "-i", "s3://pypi-mirror/tree", "--local-state", str(tmp_path / "none")]
    assert main([*argv, "--repair"]) != 0
    err = capsys.readouterr().err
    assert "no working tree" in err and "unexpected" not in err and len(err.splitlines()) == 1


def _synced(seaweed, upstream, tmp_path: Path, stem: str) -> tuple[str, str, Path]:
    bucket = seaweed.new_bucket(stem)
    url, state = f"s3://{bucket}/tree", tmp_path / "state"
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    return bucket, url, state


@pytest.mark.e2e
def test_repair_puts_back_what_the_pages_link_byte_for_byte(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    bucket, url, state = _synced(seaweed, upstream, tmp_path, "repair")
    before = seaweed.objects(bucket, "tree/")
    client = seaweed.boto3_client()
    client.put_object(Bucket=bucket, Key=f"tree/{WHEEL}", Body=b"corrupt")
    client.delete_object(Bucket=bucket, Key="tree/packages/app/app-1.0.tar.gz")
    client.delete_object(Bucket=bucket, Key="tree/packages/lib/lib-1.0-py3-none-any.whl.metadata")
    # the corrupt wheel's .metadata too, and the working tree's copy of it: it is written
    # again from the wheel once the wheel is back (the other from the working tree's copy)
    client.delete_object(Bucket=bucket, Key=f"tree/{WHEEL}.metadata")
    (state / f"{WHEEL}.metadata").unlink()
    capsys.readouterr()
    argv = ["verify", "-i", url, "--local-state", str(state)]
    assert main([*argv, "--repair", "-I", upstream.url]) == 0
    out = capsys.readouterr()
    report = [line.split()[0] for line in out.out.splitlines()]
    assert sorted(k for k in report if k.isupper()) == ["CORRUPT", "MISSING", "MISSING", "MISSING"]
    assert "mended all 4 problems found" in out.out and not out.err, out
    assert seaweed.objects(bucket, "tree/") == before
    head = client.head_object(Bucket=bucket, Key=f"tree/{WHEEL}")
    assert head["ContentType"] == "application/octet-stream"
    assert "immutable" in head["CacheControl"]
    assert not list((state / "packages").rglob("*.whl"))  # the fetched copies are dropped
    assert main(["verify", "-i", url]) == 0
    assert "0 problems" in capsys.readouterr().out


@pytest.mark.e2e
def test_remove_unreferenced_removes_strays_and_never_a_linked_object(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    bucket, url, state = _synced(seaweed, upstream, tmp_path, "strays")
    before = seaweed.objects(bucket, "tree/")
    client = seaweed.boto3_client()
    strays = ["packages/lib/lib-0.1-py3-none-any.whl", "packages/gone/gone-1.0.tar.gz"]
    for key in strays:
        client.put_object(Bucket=bucket, Key=f"tree/{key}", Body=b"stray")
    capsys.readouterr()
    argv = ["verify", "-i", url, "--local-state", str(state), "--remove-unreferenced"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("UNREFERENCED")] == [
        "packages/gone/gone-1.0.tar.gz",
        "packages/lib/lib-0.1-py3-none-any.whl",
    ]
    assert seaweed.objects(bucket, "tree/") == before
    assert main(argv) == 0  # nothing left to remove
    assert "UNREFERENCED" not in capsys.readouterr().out


@pytest.mark.e2e
def test_a_repair_that_cannot_reach_upstream_is_one_line_and_changes_nothing(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    bucket, url, state = _synced(seaweed, upstream, tmp_path, "offline")
    client = seaweed.boto3_client()
    client.delete_object(Bucket=bucket, Key=f"tree/{WHEEL}")
    client.delete_object(Bucket=bucket, Key="tree/packages/lib/lib-1.0-py3-none-any.whl.metadata")
    before = seaweed.objects(bucket, "tree/")
    capsys.readouterr()
    nowhere = f"http://127.0.0.1:{free_port()}/simple/"
    argv = ["verify", "-i", url, "--local-state", str(state), "--repair", "-I", nowhere]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "nothing was changed" in err and "unexpected" not in err and "Traceback" not in err
    assert seaweed.objects(bucket, "tree/") == before


@pytest.mark.e2e
def test_verify_of_a_bucket_takes_the_endpoint_of_the_working_trees_storage_section(
    seaweed, s3_env, upstream, tmp_path, monkeypatch, capsys
):
    _bucket, url, state = _synced(seaweed, upstream, tmp_path, "where")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    (state / "morgan.ini").write_text(f"[storage]\nendpoint-url = {seaweed.endpoint}\n")
    capsys.readouterr()
    assert main(["verify", "-i", url, "--local-state", str(state)]) == 0
    assert "0 problems" in capsys.readouterr().out
