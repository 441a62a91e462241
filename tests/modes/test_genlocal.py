"""``genlocal``: a tree's sync state rebuilt from disk (ours, bandersnatch's, shadowmire's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.tree.state import TreeState

from ..fakeindex import Dist, FakeIndex
from ..helpers import sdist, wheel
from .sync_support import assert_matches_upstream, sha256, snapshot, sync


def _upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0", requires_python=">=3.8")
    sdist(fake_index, dists, "Zope.Interface", "5.0")
    fake_index.yank("app-1.0.tar.gz", "broken build")
    return fake_index


def _server_verify(tree: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(tree / "server.py"), "--verify", "-i", str(tree)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _resync_fetches_no_file(tree: Path, index: FakeIndex) -> None:
    index.reset_log()
    assert sync(tree, index).rc == 0
    paths = [r.path for r in index.requests]
    assert not [p for p in paths if p.startswith("/files/")], paths
    assert_matches_upstream(tree, index)


def _visible(tree: Path) -> dict[str, str]:
    return {k: v for k, v in snapshot(tree).items() if not k.startswith(".")}


def test_our_own_tree_without_state(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    index = _upstream(fake_index, dists)
    tree = tmp_path / "tree"
    assert sync(tree, index).rc == 0
    before = _visible(tree)
    (tree / ".morgan-like/state.db").unlink()
    (tree / "local.json").unlink()
    assert main(["genlocal", "-i", str(tree)]) == 0
    # Every page, file and top-level file as it was, local.json back, and nothing else.
    assert _visible(tree) == before
    assert json.loads((tree / "local.json").read_bytes()) == {
        name: index.project_serial(name) for name in index.projects
    }
    with TreeState(tree) as state:
        assert state.is_verified(
            "packages/app/app-1.0.tar.gz", index.files["app-1.0.tar.gz"].sha256
        )
        assert state.is_verified("packages/app/app-1.0-py3-none-any.whl.metadata")
        assert state.sync_value("serial") == str(index.serial)
    index.reset_log()
    again = sync(tree, index)
    assert (again.rc, again.changed, again.removed) == (0, [], [])
    assert [r.path for r in index.requests] == ["/simple/"]
    assert _visible(tree) == before


def test_a_damaged_file_of_our_tree_is_left_for_the_next_sync(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _upstream(fake_index, dists)
    tree = tmp_path / "tree"
    assert sync(tree, index).rc == 0
    shutil.rmtree(tree / ".morgan-like")
    victim = tree / "packages/lib/lib-1.0-py3-none-any.whl"
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert main(["genlocal", "-i", str(tree)]) == 1
    err = capsys.readouterr().err
    assert "packages/lib/lib-1.0-py3-none-any.whl: corrupt: sha256 differs from the page" in err
    with TreeState(tree) as state:
        assert state.get("packages/lib/lib-1.0-py3-none-any.whl") is None
        assert state.sync_todo() == {"lib": index.project_serial("lib")}
    # local.json still lists it (a downstream must not take it for deleted).
    assert "lib" in json.loads((tree / "local.json").read_bytes())
    index.reset_log()
    assert sync(tree, index).rc == 0
    fetched = [r.path for r in index.requests if r.path.startswith("/files/")]
    assert fetched == ["/files/lib-1.0-py3-none-any.whl"]
    assert_matches_upstream(tree, index)


def test_an_index_only_tree_keeps_its_pages(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    index = _upstream(fake_index, dists)
    tree = tmp_path / "tree"
    assert sync(tree, index, "--index-only").rc == 0
    before = _visible(tree)
    shutil.rmtree(tree / ".morgan-like")
    assert main(["genlocal", "-i", str(tree), "-q"]) == 0
    assert _visible(tree) == before
    index.reset_log()
    assert sync(tree, index, "--index-only").rc == 0
    assert [r.path for r in index.requests] == ["/simple/"]


def _foreign_tree(index: FakeIndex, where: Path, layout: str) -> Path:
    """A tree as bandersnatch (``layout`` "bandersnatch", or "bandersnatch-hashed": with
    hash-index and root_uri) or shadowmire writes one, holding the index's files.

    Modelled on their page generators: PyPI's hashed packages/ layout, ``_last-serial``
    as a string, ``""`` for an absent requires-python or upload time, core-metadata as an
    object, the HTML ending in ``<!--SERIAL n-->``; shadowmire's index.html is a symlink.
    """
    bandersnatch = layout.startswith("bandersnatch")
    web = where / "web" if bandersnatch else where
    prefix = "https://mirror.example" if layout == "bandersnatch-hashed" else "../.."
    for name, dists in index.projects.items():
        links, files = [], []
        for dist in sorted(dists.values()):
            rel = f"packages/{dist.sha256[:2]}/{dist.sha256[2:4]}/{dist.sha256[4:]}/{dist.filename}"
            (web / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.path, web / rel)
            tags = ""
            if dist.requires_python:
                tags += f' data-requires-python="{dist.requires_python}"'
            if dist.metadata_sha256:
                (web / f"{rel}.metadata").write_bytes(index_metadata(dist))
                tags += f' data-core-metadata="sha256={dist.metadata_sha256}"'
            if dist.yanked:
                tags += f' data-yanked="{dist.yanked if isinstance(dist.yanked, str) else ""}"'
            links.append(
                f'    <a href="{prefix}/{rel}#sha256={dist.sha256}"{tags}>{dist.filename}</a><br/>'
            )
            entry = {
                "filename": dist.filename,
                "hashes": {"sha256": dist.sha256},
                "requires-python": dist.requires_python or "",
                "size": dist.size,
                "upload-time": dist.upload_time or "",
                "url": f"{prefix}/{rel}",
                "yanked": dist.yanked,
            }
            if dist.metadata_sha256:
                entry["core-metadata"] = {"sha256": dist.metadata_sha256}
            files.append(entry)
        serial = index.project_serial(name)
        folder = web / "simple" / (f"{name[0]}/{name}" if layout == "bandersnatch-hashed" else name)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"api-version": "1.1", "_last-serial": str(serial)}
        doc = {"files": files, "meta": meta, "name": name, "versions": []}
        (folder / "index.v1_json").write_text(json.dumps(doc))
        html = (
            f"<!DOCTYPE html>\n<html>\n  <body>\n    <h1>Links for {name}</h1>\n"
            + "\n".join(links)
            + f"\n  </body>\n</html>\n<!--SERIAL {serial}-->"
        )
        (folder / "index.v1_html").write_text(html)
        if bandersnatch:
            (folder / "index.html").write_text(html)
        else:
            os.symlink("index.v1_html", folder / "index.html")
        (web / "json").mkdir(exist_ok=True)
        (web / "json" / name).write_text(json.dumps({"last_serial": serial, "releases": {}}))
    if bandersnatch:
        (where / "status").write_text(str(index.serial))
        (where / "generation").write_text("5")
    else:
        (web / "local.json").write_text(
            json.dumps({n: index.project_serial(n) for n in index.projects})
        )
        (web / "local.db.serial").write_text(str(index.serial))
    return where


def index_metadata(dist: Dist) -> bytes:
    assert dist.metadata is not None
    return dist.metadata if isinstance(dist.metadata, bytes) else Path(dist.metadata).read_bytes()


def _hashes(where: Path) -> dict[str, tuple[str, int]]:
    """Every file of a tree with its hash and inode number (symlinks as their target)."""
    return {
        str(p.relative_to(where)): (sha256(p), p.lstat().st_ino)
        for p in where.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("layout", ["bandersnatch", "bandersnatch-hashed", "shadowmire"])
def test_a_foreign_tree_is_taken_over(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, layout: str
) -> None:
    index = _upstream(fake_index, dists)
    source = _foreign_tree(index, tmp_path / "src", layout)
    before = _hashes(source)
    tree = tmp_path / "tree"
    assert main(["genlocal", "-i", str(tree), "--from", str(source)]) == 0
    assert _hashes(source) == before, "the source tree must not change"
    assert (tree / "local.db.serial").read_text() == f"{index.serial}\n"
    # Adopted by hard link: the same inode as the source's file.
    app = tree / "packages/app/app-1.0.tar.gz"
    assert app.stat().st_nlink == 2 and sha256(app) == index.files["app-1.0.tar.gz"].sha256
    _server_verify(tree)
    _resync_fetches_no_file(tree, index)
    assert _hashes(source) == before, "nor after a sync of the new tree"


def test_a_file_that_does_not_match_its_page_is_a_problem(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _upstream(fake_index, dists)
    source = _foreign_tree(index, tmp_path / "src", "shadowmire")
    victim = next(p for p in (source / "packages").rglob("lib-1.0-py3-none-any.whl"))
    victim.write_bytes(b"not the file")
    tree = tmp_path / "tree"
    assert main(["genlocal", "-i", str(tree), "--from", str(source)]) == 1
    assert "lib: lib-1.0-py3-none-any.whl: sha256 differs from its page" in capsys.readouterr().err
    assert not (tree / "packages/lib/lib-1.0-py3-none-any.whl").exists()
    assert not (tree / "local.db.serial").exists()  # no serial claimed for a tree with holes
    _server_verify(tree)
    index.reset_log()
    assert sync(tree, index).rc == 0
    fetched = [r.path for r in index.requests if r.path.startswith("/files/")]
    assert fetched == ["/files/lib-1.0-py3-none-any.whl"]
    assert_matches_upstream(tree, index)


def test_not_a_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bander" / "web" / "simple").mkdir(parents=True)
    assert main(["genlocal", "-i", str(tmp_path / "bander")]) == 1
    assert "taken over with --from" in capsys.readouterr().err
    assert main(["genlocal", "-i", str(tmp_path / "t"), "--from", str(tmp_path / "nowhere")]) == 1
    assert "not a mirror tree" in capsys.readouterr().err


def test_files_are_copied_when_they_cannot_be_linked(
    fake_index: FakeIndex,
    dists: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = _upstream(fake_index, dists)
    source = _foreign_tree(index, tmp_path / "src", "shadowmire")

    def cross_device(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    tree = tmp_path / "tree"
    assert main(["genlocal", "-i", str(tree), "--from", str(source)]) == 0
    assert "0 hard-linked, 4 copied" in capsys.readouterr().out
    app = tree / "packages/app/app-1.0.tar.gz"
    assert app.stat().st_nlink == 1 and sha256(app) == index.files["app-1.0.tar.gz"].sha256
    _server_verify(tree)
