"""manifest.json: load/save, stable output, is_verified, tolerance of a corrupt file."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from morgan_like.tree.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    atomic_write_bytes,
    is_listed,
    normalize_relpath,
)


def _put(root: Path, relpath: str, data: bytes) -> str:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_missing_manifest_starts_empty(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    assert m.paths() == set()
    assert m.load_problem is None


def test_save_load_round_trip(tmp_path: Path) -> None:
    sha = _put(tmp_path, "packages/a/a-1.0-py3-none-any.whl", b"wheel")
    m = Manifest(tmp_path)
    entry = m.record_file("packages/a/a-1.0-py3-none-any.whl")
    assert entry == ManifestEntry(5, sha)
    m.record("simple/a/index.html", 3, "B" * 64)
    assert m.save() is True
    assert m.save() is False

    doc = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert doc == {
        "format": MANIFEST_FORMAT,
        "files": {
            "packages/a/a-1.0-py3-none-any.whl": {"size": 5, "sha256": sha},
            "simple/a/index.html": {"size": 3, "sha256": "b" * 64},
        },
    }
    again = Manifest(tmp_path)
    assert again.load_problem is None
    assert again.get("packages/a/a-1.0-py3-none-any.whl") == ManifestEntry(5, sha)
    assert again.paths() == m.paths()
    assert again.save() is False
    assert again.changed_since_load() == set()


def test_output_is_stable_and_sorted(tmp_path: Path) -> None:
    a, b = Manifest(tmp_path / "a"), Manifest(tmp_path / "b")
    names = ["z/1", "a/2", "m/3"]
    for name in names:
        a.record(name, 1, "c" * 64)
    for name in reversed(names):
        b.record(name, 1, "c" * 64)
    assert a.to_bytes() == b.to_bytes()
    keys = list(json.loads(a.to_bytes())["files"])
    assert keys == sorted(keys)
    assert list(json.loads(a.to_bytes())) == ["format", "files"]


def test_save_reports_change_only_when_content_changes(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    assert m.save() is True  # first save of an empty manifest creates the file
    assert m.save() is False
    m.record("x", 1, "d" * 64)
    assert m.save() is True
    m.record("x", 1, "d" * 64)
    assert m.save() is False
    m.discard("x")
    assert m.save() is True
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["files"] == {}


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.record("x", 1, "d" * 64)
    m.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"format": "other/1", "files": {}}',
        b'{"format": "morgan-like-manifest/1"}',
    ],
)
def test_corrupt_manifest_starts_empty_and_says_so(tmp_path: Path, content: bytes) -> None:
    (tmp_path / MANIFEST_NAME).write_bytes(content)
    m = Manifest(tmp_path)
    assert m.paths() == set()
    assert m.load_problem
    assert m.save() is True
    assert Manifest(tmp_path).load_problem is None


def test_malformed_entries_are_dropped(tmp_path: Path) -> None:
    doc = {
        "format": MANIFEST_FORMAT,
        "files": {
            "good": {"size": 1, "sha256": "e" * 64},
            "bad-size": {"size": "1", "sha256": "e" * 64},
            "bad-hash": {"size": 1, "sha256": "xyz"},
            "../escape": {"size": 1, "sha256": "e" * 64},
            ".hidden/x": {"size": 1, "sha256": "e" * 64},
        },
    }
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(doc))
    m = Manifest(tmp_path)
    assert m.paths() == {"good"}
    assert "4" in (m.load_problem or "")


def test_is_verified(tmp_path: Path) -> None:
    rel = "packages/a/a-1.0.tar.gz"
    sha = _put(tmp_path, rel, b"12345")
    m = Manifest(tmp_path)
    assert not m.is_verified(rel)
    m.record(rel, 5, sha)
    assert m.is_verified(rel)
    assert m.is_verified(rel, sha)
    assert m.is_verified(rel, sha.upper())
    assert not m.is_verified(rel, "f" * 64)
    (tmp_path / rel).write_bytes(b"123456")  # size differs: stat catches it
    assert not m.is_verified(rel)
    (tmp_path / rel).unlink()
    assert not m.is_verified(rel)


def test_is_verified_does_not_rehash(tmp_path: Path) -> None:
    rel = "f.whl"
    sha = _put(tmp_path, rel, b"abcde")
    m = Manifest(tmp_path)
    m.record(rel, 5, sha)
    (tmp_path / rel).write_bytes(b"vwxyz")  # same size: documented stat-only check
    assert m.is_verified(rel)


def test_relpaths_use_slashes_and_stay_inside(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.record("packages\\a\\f.whl", 1, "0" * 64)
    assert m.paths() == {"packages/a/f.whl"}
    assert m.get("./packages/a/f.whl") is not None
    for bad in ("../x", "/etc/passwd", "", "a/../../x", "C:/x"):
        with pytest.raises(ValueError):
            normalize_relpath(bad)


def test_hidden_paths_and_manifest_itself_never_listed(tmp_path: Path) -> None:
    assert not is_listed(MANIFEST_NAME)
    assert not is_listed(".morgan-like/tmp/x")
    assert not is_listed("packages/a/.f.whl.tmp")
    assert is_listed("packages/a/f.whl")
    assert is_listed("sub/manifest.json")
    m = Manifest(tmp_path)
    for bad in (MANIFEST_NAME, ".morgan-like/x"):
        with pytest.raises(ValueError):
            m.record(bad, 1, "0" * 64)
    with pytest.raises(ValueError):
        m.record("x", 1, "not-a-hash")


def test_discard_and_changed_since_load(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.record("a", 1, "1" * 64)
    m.record("b", 1, "1" * 64)
    m.save()
    m = Manifest(tmp_path)
    m.record("b", 2, "2" * 64)
    m.record("c", 1, "1" * 64)
    m.discard("a")
    m.discard("never-there")
    assert m.changed_since_load() == {"b", "c"}
    assert m.removed_since_load() == {"a"}


def test_concurrent_record(tmp_path: Path) -> None:
    m = Manifest(tmp_path)

    def work(n: int) -> None:
        for i in range(200):
            m.record(f"p/{n}/{i}", i, f"{n:064x}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(m.paths()) == 1600
    m.save()
    assert len(Manifest(tmp_path).paths()) == 1600


def test_atomic_write_bytes(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f.txt"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]
