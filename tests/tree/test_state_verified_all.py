"""TreeState.verified_all: many "already present?" questions in one query, the same
answers as asking ``verified`` one file at a time."""

from __future__ import annotations

import hashlib
from pathlib import Path

from morgan_like.tree.state import TreeState


def _place(tree: Path, relpath: str, data: bytes, state: TreeState) -> str:
    path = tree / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    state.record(relpath, len(data), sha256)
    return sha256


def test_verified_all_answers_as_verified_does(tmp_path: Path) -> None:
    with TreeState(tmp_path) as state:
        good = _place(tmp_path, "packages/a/a-1.0.tar.gz", b"a", state)
        edited = _place(tmp_path, "packages/b/b-1.0.tar.gz", b"b", state)
        (tmp_path / "packages/b/b-1.0.tar.gz").write_bytes(b"bb")  # changed on disk
        gone = _place(tmp_path, "packages/c/c-1.0.tar.gz", b"c", state)
        (tmp_path / "packages/c/c-1.0.tar.gz").unlink()
        other = _place(tmp_path, "packages/d/d-1.0.tar.gz", b"d", state)
        many = [(f"packages/e/e-{i}.tar.gz", None) for i in range(1200)]  # over one chunk
        wanted = [
            ("packages/a/a-1.0.tar.gz", good),
            ("packages/b/b-1.0.tar.gz", edited),
            ("packages/c/c-1.0.tar.gz", gone),
            ("packages/d/d-1.0.tar.gz", "0" * 64),  # another hash than the recorded one
            ("packages/d/d-1.0.tar.gz", None),  # any hash
            ("packages/never/x-1.0.tar.gz", None),
            *many,
        ]
        found = state.verified_all(wanted)
        assert found == {
            rel: record for rel, sha in wanted if (record := state.verified(rel, sha)) is not None
        }
        assert set(found) == {"packages/a/a-1.0.tar.gz", "packages/d/d-1.0.tar.gz"}
        assert found["packages/d/d-1.0.tar.gz"].sha256 == other
