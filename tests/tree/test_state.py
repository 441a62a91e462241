"""Tree state: the hidden sqlite working state, its rebuild from a tree, and manifest.json."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from morgan_like.tree import state as state_mod
from morgan_like.tree.files import atomic_write_bytes, is_legacy_temp, sweep_scratch
from morgan_like.tree.layout import MANIFEST_NAME, is_hidden, is_top_level, normalize_relpath
from morgan_like.tree.manifest import MANIFEST_FORMAT, render_manifest
from morgan_like.tree.state import FileRecord, TreeState


def _put(root: Path, relpath: str, data: bytes) -> str:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_fresh_state_is_empty(tmp_path: Path) -> None:
    with TreeState(tmp_path) as s:
        assert s.load_problem is None
        assert s.projects() == [] and s.top_level() == []
        assert s.get("packages/a/a.whl") is None
    assert (tmp_path / ".morgan-like" / "state.db").is_file()


def test_record_get_verify_and_persist(tmp_path: Path) -> None:
    rel = "packages/a/a-1.0-py3-none-any.whl"
    sha = _put(tmp_path, rel, b"wheel")
    with TreeState(tmp_path) as s:
        assert s.record_file(rel, new=True) == FileRecord(5, sha)
        assert s.is_verified(rel) and s.is_verified(rel, sha.upper())
        assert not s.is_verified(rel, "0" * 64)
        assert s.is_changed(rel) and not s.is_changed("packages/a/other.whl")
    with TreeState(tmp_path) as s:
        assert s.get(rel) == FileRecord(5, sha)
        assert s.is_verified(rel)
        assert not s.is_changed(rel)  # changed in an earlier run, not this one
        s.record(rel, 5, sha)  # same content again: still not a change
        assert not s.is_changed(rel)
        (tmp_path / rel).write_bytes(b"other")  # same size, new mtime: no longer trusted
        os.utime(tmp_path / rel, ns=(1, 1))
        assert not s.is_verified(rel)
        (tmp_path / rel).unlink()
        assert not s.is_verified(rel)
        assert s.discard(rel) and not s.discard(rel)
        assert s.is_changed(rel) and s.get(rel) is None


def test_refuses_hidden_paths_bad_hashes_and_escapes(tmp_path: Path) -> None:
    _put(tmp_path, "x", b"1")
    with TreeState(tmp_path) as s:
        for bad in (MANIFEST_NAME, ".morgan-like/x", "packages/a/.f.whl.tmp"):
            with pytest.raises(ValueError):
                s.record(bad, 1, "0" * 64)
        with pytest.raises(ValueError):
            s.record("x", 1, "not-a-hash")
        s.record("x", 1, "A" * 64)
        assert s.get("./x") == FileRecord(1, "a" * 64)
    for bad in ("../x", "/etc/passwd", "", "a/../../x", "C:/x"):
        with pytest.raises(ValueError):
            normalize_relpath(bad)
    assert normalize_relpath("packages\\a\\f.whl") == "packages/a/f.whl"


def test_path_classes() -> None:
    assert is_hidden(".morgan-like/tmp/x") and is_hidden("packages/a/.f.whl.tmp")
    assert not is_hidden("packages/a/f.whl")
    for rel in ("morgan.ini", "server.py", "simple/index.html", "simple/index.json"):
        assert is_top_level(rel)
    for rel in (MANIFEST_NAME, "packages/a/f.whl", "simple/a/index.html", ".morgan-like/x"):
        assert not is_top_level(rel)


def test_projects_and_change_flag(tmp_path: Path) -> None:
    with TreeState(tmp_path) as s:
        s.set_project("b", None)
        s.set_project("a", 3)
        assert s.projects_changed
        assert s.projects() == [("a", 3), ("b", None)]
        s.projects_changed = False
        s.set_project("a", 3)  # same serial: root pages need no rewrite
        assert not s.projects_changed
        s.set_project("a", 4)
        assert s.projects_changed and s.project("a") == (True, 4)
        s.projects_changed = False
        s.drop_project("zzz")
        assert not s.projects_changed
        s.drop_project("b")
        assert s.projects_changed and s.project_names() == ["a"]


def test_top_level_lists_only_top_level_files(tmp_path: Path) -> None:
    with TreeState(tmp_path) as s:
        for rel in ("server.py", "simple/index.html", "packages/a/a.whl", "morgan.ini"):
            _put(tmp_path, rel, rel.encode())
            s.record_file(rel)
        assert [rel for rel, _ in s.top_level()] == ["morgan.ini", "server.py", "simple/index.html"]


def test_concurrent_record(tmp_path: Path) -> None:
    with TreeState(tmp_path) as s:

        def work(n: int) -> None:
            for i in range(100):
                rel = f"packages/p{n}/{i}"
                _put(tmp_path, rel, b"x")
                s.record(rel, 1, f"{n:064x}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with TreeState(tmp_path) as s:
        assert all(s.is_verified(f"packages/p{n}/{i}") for n in range(8) for i in range(100))


@pytest.mark.parametrize("content", [b"", b"not a database at all", b"SQLite format 3\x00junk"])
def test_corrupt_state_is_rebuilt_and_says_so(tmp_path: Path, content: bytes) -> None:
    _put(tmp_path, "simple/a/index.html", b"<html></html>\n<!--SERIAL 12-->\n")
    _put(tmp_path, ".morgan-like/state.db", content)
    with TreeState(tmp_path) as s:
        assert s.projects() == [("a", 12)]
        if content:
            assert s.load_problem and "rebuilt" in s.load_problem


def test_rebuild_from_a_first_format_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree built before the tree state existed: projects come from simple/, and the
    whole-tree manifest.json's hashes are trusted where sizes still match (no re-hash)."""
    good = "packages/a/a-1.0-py3-none-any.whl"
    sha = _put(tmp_path, good, b"wheel")
    _put(tmp_path, "packages/a/a-1.0.tar.gz", b"resized since")
    _put(tmp_path, "simple/a/index.html", b"<html></html>\n")
    _put(tmp_path, "simple/b/index.json", b"{}")
    (tmp_path / "simple" / "not-a-project").mkdir()
    old = {
        "format": "morgan-like-manifest/1",
        "files": {
            good: {"size": 5, "sha256": sha},
            "packages/a/a-1.0.tar.gz": {"size": 1, "sha256": "1" * 64},
            "packages/a/gone.whl": {"size": 1, "sha256": "1" * 64},
            "../evil": {"size": 1, "sha256": "1" * 64},
            "packages/a/odd.whl": {"size": "1", "sha256": "1" * 64},
        },
    }
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(old))
    monkeypatch.setattr(state_mod, "sha256_file", None)  # any re-hash would fail
    with TreeState(tmp_path) as s:
        assert s.projects() == [("a", None), ("b", None)] and s.projects_changed
        assert s.is_verified(good, sha)
        assert s.get("packages/a/a-1.0.tar.gz") is None
        assert s.get("packages/a/gone.whl") is None


def test_manifest_is_small_stable_and_sorted() -> None:
    records = [("server.py", FileRecord(3, "b" * 64)), ("morgan.ini", FileRecord(1, "a" * 64))]
    data = render_manifest(records)
    assert data == render_manifest(list(reversed(records)))
    doc = json.loads(data)
    assert doc["format"] == MANIFEST_FORMAT
    assert list(doc["files"]) == ["morgan.ini", "server.py"]
    assert doc["files"]["server.py"] == {"size": 3, "sha256": "b" * 64}
    assert json.loads(render_manifest([])) == {"format": MANIFEST_FORMAT, "files": {}}


def test_atomic_write_bytes(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f.txt"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two", durable=True)
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_relpaths_under_is_one_folder(tmp_path: Path) -> None:
    """Rows of one project's folder only: not ``packages/ab`` for ``packages/a``."""
    with TreeState(tmp_path) as s:
        for rel in ("packages/a/a-1.whl", "packages/a/x/y", "packages/ab/ab-1.whl", "packages/a0"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(rel.encode())
            s.record_file(rel)
        (tmp_path / "packages/a/a-1.whl").unlink()  # gone from disk: still a row
        assert s.relpaths_under("packages/a") == ["packages/a/a-1.whl", "packages/a/x/y"]
        assert s.relpaths_under("packages/none") == []


def test_atomic_write_through_a_scratch_folder(tmp_path: Path, monkeypatch) -> None:
    target, scratch = tmp_path / "d" / "f.txt", tmp_path / ".morgan-like" / "tmp"
    atomic_write_bytes(target, b"one", tmp_dir=scratch)
    assert target.read_bytes() == b"one" and list(scratch.iterdir()) == []
    real_replace = os.replace
    calls: list[str] = []

    def cross_device(src, dst):  # a scratch folder on another filesystem: EXDEV
        calls.append(str(src))
        if Path(src).parent == scratch:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    atomic_write_bytes(target, b"two", tmp_dir=scratch)
    assert target.read_bytes() == b"two" and len(calls) == 2
    assert list(scratch.iterdir()) == [] and [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_sweep_scratch_clears_only_the_scratch(tmp_path: Path) -> None:
    for rel in (".morgan-like/tmp/x.part", ".morgan-like/tmp/.index.html.ab12cd34.tmp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"left by a killed run")
    (tmp_path / ".morgan-like/cache").mkdir()
    (tmp_path / ".morgan-like/cache/a-1.0.tar.gz").write_bytes(b"sdist")
    (tmp_path / ".morgan-like/state.db").write_bytes(b"")
    (tmp_path / ".morgan-like/lock").write_bytes(b"")
    sweep_scratch(tmp_path)
    assert sorted(p.name for p in (tmp_path / ".morgan-like").iterdir()) == ["lock", "state.db"]
    assert is_legacy_temp(".index.html.ab12cd34.tmp") and not is_legacy_temp("a-1.0.tar.gz")
    assert not is_legacy_temp(".keep") and not is_legacy_temp("x.tmp")


def test_recording_a_new_file_is_one_statement(tree: Path) -> None:
    """A download new to the state costs one statement (a first sync records each file);
    a record that changes is still noticed as a change, one that does not is not."""
    (tree / "packages/p").mkdir(parents=True)
    (tree / "packages/p/p-1.tar.gz").write_bytes(b"one")
    state = TreeState(tree)
    statements: list[str] = []
    state._db.set_trace_callback(statements.append)
    state.record("packages/p/p-1.tar.gz", 3, hashlib.sha256(b"one").hexdigest())
    files = [s for s in statements if "files" in s]
    assert len(files) == 1 and state.is_changed("packages/p/p-1.tar.gz")
    state.commit()
    again = TreeState(tree)
    again.record("packages/p/p-1.tar.gz", 3, hashlib.sha256(b"one").hexdigest(), new=True)
    assert not again.is_changed("packages/p/p-1.tar.gz")  # the same bytes as recorded
    again.record("packages/p/p-1.tar.gz", 3, hashlib.sha256(b"two").hexdigest(), new=False)
    assert again.is_changed("packages/p/p-1.tar.gz")  # other bytes than recorded
