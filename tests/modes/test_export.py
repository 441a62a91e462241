"""``morgan-like export``: the net delta in volumes with a manifest, README.txt and an
optional HMAC; refusals; --list-sites and --receipt; sync and bundle trees alike.

An export is checked here by applying it with tarfile to a copy of the tree as the
site had it and comparing bytes with the source: independently of ``server.py
--import``, so these tests pin the format itself (tests/modes/test_transfer.py joins
the two sides).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tarfile
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.tree import generations
from morgan_like.tree.export import file_order
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex
from ..helpers import wheel
from .sync_support import sync
from .test_bundle import mirror, write_config


def export(tree: Path, *args: str) -> int:
    return main(["export", "-i", str(tree), "-q", *args])


def visible(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def apply(out: Path, copy: Path) -> dict:
    """Check an export against its manifest and apply it to ``copy``; the manifest."""
    doc = json.loads((out / "morgan-like-export.json").read_bytes())
    for vol in doc["volumes"]:
        data = (out / vol["name"]).read_bytes()
        assert len(data) == vol["size"] and hashlib.sha256(data).hexdigest() == vol["sha256"]
    order = []
    for vol in doc["volumes"]:
        with tarfile.open(out / vol["name"]) as tar:
            for member in tar.getmembers():
                assert member.isreg() and not member.name.startswith(("/", ".."))
                order.append(member.name)
                fh = tar.extractfile(member)
                assert fh is not None
                data = fh.read()
                entry = next(f for f in doc["files"] if f["path"] == member.name)
                assert entry["volume"] == vol["name"] and entry["size"] == len(data)
                assert entry["sha256"] == hashlib.sha256(data).hexdigest()
                (copy / member.name).parent.mkdir(parents=True, exist_ok=True)
                (copy / member.name).write_bytes(data)
    assert order == [f["path"] for f in doc["files"]] == sorted(order, key=file_order)
    for rel in doc["removed"]:
        (copy / rel).unlink(missing_ok=True)
    if doc["full"]:
        listed = {f["path"] for f in doc["files"]}
        for rel in set(visible(copy)) - listed:
            (copy / rel).unlink()
    return doc


@pytest.fixture
def source(small: FakeIndex, tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    return root


def test_full_then_delta_round_trip_of_a_bundle(
    source: Path, small: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    assert export(source, "-o", str(tmp_path / "e1"), "--site", "lab-b", "--full") == 0
    doc = apply(tmp_path / "e1", site)
    assert visible(site) == visible(source)
    assert doc["full"] and doc["base"] == 0 and doc["site"] == "lab-b"
    readme = (tmp_path / "e1" / "README.txt").read_text()
    assert "server.py --import" in readme
    assert (
        hashlib.sha256((tmp_path / "e1/morgan-like-export.json").read_bytes()).hexdigest() in readme
    )
    # upstream moves: lib 3.0 replaces 2.0 (lib 2.0's files leave with --prune)
    wheel(small, dists, "lib", "3.0")
    assert mirror(source, small, "--prune") == 0
    assert export(source, "-o", str(tmp_path / "e2"), "--site", "lab-b") == 0
    doc2 = apply(tmp_path / "e2", site)
    assert visible(site) == visible(source)
    assert doc2["base"] == doc["generation"] and not doc2["full"] and doc2["tree"] == doc["tree"]
    assert "packages/lib/lib-2.0-py3-none-any.whl" in doc2["removed"]
    assert "packages/app/app-1.0.tar.gz" not in {f["path"] for f in doc2["files"]}
    # nothing new: nothing to export, nothing written
    assert export(source, "-o", str(tmp_path / "e3"), "--site", "lab-b") == 0
    assert not (tmp_path / "e3").exists()


def test_a_sync_tree_exports_too(small: FakeIndex, tmp_path: Path) -> None:
    tree, site = tmp_path / "mirror", tmp_path / "site"
    assert sync(tree, small).rc == 0
    site.mkdir()
    assert export(tree, "-o", str(tmp_path / "e1"), "--site", "s", "--full") == 0
    apply(tmp_path / "e1", site)
    assert visible(site) == visible(tree)
    small.remove_project("app")
    assert sync(tree, small).rc == 0
    assert export(tree, "-o", str(tmp_path / "e2"), "--site", "s") == 0
    doc = apply(tmp_path / "e2", site)
    assert visible(site) == visible(tree)
    assert "simple/app/index.html" in doc["removed"]


def test_small_volumes_and_hmac(source: Path, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    out = tmp_path / "e"
    assert export(source, "-o", str(out), "--site", "a", "--full", "--volume-size", "64K",
                  "--hmac-key-file", str(key)) == 0  # fmt: skip
    doc = json.loads((out / "morgan-like-export.json").read_bytes())
    names = [v["name"] for v in doc["volumes"]]
    assert len(names) > 1 and names == sorted(names) and names[0] == "vol-00001.tar"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*names, "README.txt", "morgan-like-export.json", "morgan-like-export.json.hmac"]
    )
    for vol in doc["volumes"]:
        assert vol["size"] <= 64 << 10 or sum(f["volume"] == vol["name"] for f in doc["files"]) == 1
    expected = hmac.new(b"s3cret", (out / "morgan-like-export.json").read_bytes(), hashlib.sha256)
    assert (out / "morgan-like-export.json.hmac").read_text().strip() == expected.hexdigest()
    # exporting the same again into the same folder: said, nothing changed
    assert export(source, "-o", str(out), "--site", "a", "--full", "--volume-size", "64K") == 0
    site = tmp_path / "site"
    site.mkdir()
    apply(out, site)
    assert visible(site) == visible(source)


def test_refusals_name_what_and_what_to_do(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = tmp_path / "full"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    cases = [
        (["-o", str(busy), "--site", "a", "--full"], "is not empty"),
        (["-o", str(tmp_path / "n1"), "--site", "new"], "--full"),
        (["-o", str(tmp_path / "n2"), "--site", "a", "--since", "99"], "--since 99"),
        (["-o", str(tmp_path / "n3")], "--site"),
        (["-o", str(tmp_path / "n4"), "--site", "a", "--full", "--since", "1"], "not both"),
    ]
    for args, words in cases:
        assert export(source, *args) != 0, args
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and "unexpected" not in err, err
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(
        {"format": "morgan-like-generation/1", "tree": "0" * 32, "generation": 1}
    ))  # fmt: skip
    assert export(source, "--site", "a", "--receipt", str(receipt)) != 0
    assert "another tree" in capsys.readouterr().err
    assert not full.exists() and not any((tmp_path / f"n{i}").exists() for i in range(1, 5))
    with TreeState(source) as state:
        assert generations.sites(state) == []


def test_receipt_and_list_sites(
    source: Path, small: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with TreeState(source) as state:
        tree_id, gen = generations.tree_id(state), generations.current(state)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(
        {"format": "morgan-like-generation/1", "tree": tree_id, "generation": gen}
    ))  # fmt: skip
    assert export(source, "--site", "lab-a", "--receipt", str(receipt)) == 0
    wheel(small, dists, "lib", "3.0")
    assert mirror(source, small) == 0
    assert main(["export", "-i", str(source), "--list-sites"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "lab-a" in row)
    assert str(gen) in line and ("KiB" in line or " B" in line)
    with TreeState(source) as state:
        assert generations.site_generation(state, "lab-a") == gen
