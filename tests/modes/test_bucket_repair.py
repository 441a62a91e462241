"""``verify -i s3://... --repair / --remove-unreferenced`` (modes/bucket_repair.py): what a
page links is put back byte for byte from upstream, what no page links goes, and an
upstream out of reach changes nothing.  The scenario runs against a real SeaweedFS
(tests/seaweed.py, e2e); which objects count as linked is checked on an FsStorage."""

# ruff: noqa: F811 (the fixtures imported from test_bucket are taken as arguments)
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Synced:
    """A bucket ``sync`` filled from the fake upstream, and a plain client beside it to
    break it with (keys relative to the tree's prefix)."""

    seaweed: Any
    bucket: str
    state: Path  # the working tree
    client: Any

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/tree"

    def objects(self) -> dict[str, bytes]:
        return self.seaweed.objects(self.bucket, "tree/")

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"tree/{key}", Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"tree/{key}")

    def verify(self, *args: str) -> int:
        return main(["verify", "-i", self.url, "--local-state", str(self.state), *args])


def _synced(seaweed, upstream, tmp_path: Path, stem: str) -> Synced:
    synced = Synced(seaweed, seaweed.new_bucket(stem), tmp_path / "state", seaweed.boto3_client())
    argv = ["sync", "-i", synced.url, "--local-state", str(synced.state), "-I", upstream.url]
    assert main([*argv, "-q"]) == 0
    return synced


@pytest.mark.e2e
def test_repair_puts_back_what_the_pages_link_byte_for_byte(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    tree = _synced(seaweed, upstream, tmp_path, "repair")
    before = tree.objects()
    tree.put(WHEEL, b"corrupt")
    tree.delete("packages/app/app-1.0.tar.gz")
    tree.delete("packages/lib/lib-1.0-py3-none-any.whl.metadata")
    # the corrupt wheel's .metadata too, and the working tree's copy of it: it is written
    # again from the wheel once the wheel is back (the other from the working tree's copy)
    tree.delete(f"{WHEEL}.metadata")
    (tree.state / f"{WHEEL}.metadata").unlink()
    capsys.readouterr()
    assert tree.verify("--repair", "-I", upstream.url) == 0
    out = capsys.readouterr()
    report = [line.split()[0] for line in out.out.splitlines()]
    assert sorted(k for k in report if k.isupper()) == ["CORRUPT", "MISSING", "MISSING", "MISSING"]
    assert "mended all 4 problems found" in out.out and not out.err, out
    assert tree.objects() == before
    head = tree.client.head_object(Bucket=tree.bucket, Key=f"tree/{WHEEL}")
    assert head["ContentType"] == "application/octet-stream"
    assert "immutable" in head["CacheControl"]
    assert not list((tree.state / "packages").rglob("*.whl"))  # the fetched copies are dropped
    assert main(["verify", "-i", tree.url]) == 0
    assert "0 problems" in capsys.readouterr().out


@pytest.mark.e2e
def test_remove_unreferenced_removes_strays_and_never_a_linked_object(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    tree = _synced(seaweed, upstream, tmp_path, "strays")
    before = tree.objects()
    strays = ["packages/lib/lib-0.1-py3-none-any.whl", "packages/gone/gone-1.0.tar.gz"]
    for key in strays:
        tree.put(key, b"stray")
    capsys.readouterr()
    assert tree.verify("--remove-unreferenced") == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("UNREFERENCED")] == [
        "packages/gone/gone-1.0.tar.gz",
        "packages/lib/lib-0.1-py3-none-any.whl",
    ]
    assert tree.objects() == before
    assert tree.verify("--remove-unreferenced") == 0  # nothing left to remove
    assert "UNREFERENCED" not in capsys.readouterr().out


@pytest.mark.e2e
def test_a_repair_that_cannot_reach_upstream_is_one_line_and_changes_nothing(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    tree = _synced(seaweed, upstream, tmp_path, "offline")
    tree.delete(WHEEL)
    tree.delete("packages/lib/lib-1.0-py3-none-any.whl.metadata")
    before = tree.objects()
    capsys.readouterr()
    nowhere = f"http://127.0.0.1:{free_port()}/simple/"
    assert tree.verify("--repair", "-I", nowhere) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "nothing was changed" in err and "unexpected" not in err and "Traceback" not in err
    assert tree.objects() == before


@pytest.mark.e2e
def test_verify_of_a_bucket_takes_the_endpoint_of_the_working_trees_storage_section(
    seaweed, s3_env, upstream, tmp_path, monkeypatch, capsys
):
    tree = _synced(seaweed, upstream, tmp_path, "where")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    (tree.state / "morgan.ini").write_text(f"[storage]\nendpoint-url = {seaweed.endpoint}\n")
    capsys.readouterr()
    assert tree.verify() == 0
    assert "0 problems" in capsys.readouterr().out
