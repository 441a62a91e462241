"""``genlocal``: a tree's sync state rebuilt from disk (ours, bandersnatch's, shadowmire's)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from morgan_like.cli import main

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from .sync_support import assert_matches_upstream, sync


def _upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    return fake_index


def _resync_fetches_nothing(tree: Path, index: FakeIndex) -> None:
    index.reset_log()
    run = sync(tree, index)
    assert run.rc == 0
    paths = [r.path for r in index.requests]
    assert not [p for p in paths if p.startswith("/files/")], paths
    assert_matches_upstream(tree, index)


def test_our_own_tree_without_state(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    index = _upstream(fake_index, dists)
    tree = tmp_path / "tree"
    assert sync(tree, index).rc == 0
    shutil.rmtree(tree / ".morgan-like")
    (tree / "local.json").unlink()
    assert main(["genlocal", "-i", str(tree)]) == 0
    assert json.loads((tree / "local.json").read_bytes()) == {
        "app": index.project_serial("app"),
        "lib": index.project_serial("lib"),
    }
    index.reset_log()
    again = sync(tree, index)
    assert (again.rc, again.changed, again.removed) == (0, [], [])
    assert [r.path for r in index.requests] == ["/simple/"]


def _foreign_tree(index: FakeIndex, where: Path, layout: str) -> Path:
    """A hand-made bandersnatch / shadowmire tree holding the index's files."""
    web = where / "web" if layout == "bandersnatch" else where
    for name, dists in index.projects.items():
        links = []
        files = []
        for dist in dists.values():
            rel = f"packages/{dist.sha256[:2]}/{dist.sha256[2:4]}/{dist.sha256[4:]}/{dist.filename}"
            (web / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.path, web / rel)
            links.append(f'<a href="../../{rel}#sha256={dist.sha256}">{dist.filename}</a><br/>')
            entry = {"filename": dist.filename, "url": f"../../{rel}", "hashes": {"sha256": dist.sha256},
                     "yanked": dist.yanked, "size": dist.size, "upload-time": dist.upload_time}  # fmt: skip
            if dist.requires_python:
                entry["requires-python"] = dist.requires_python
            files.append(entry)
        page = web / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        # Both write PEP 691 JSON beside the HTML (bandersnatch: simple-format = ALL).
        meta = {"api-version": "1.1", "_last-serial": index.project_serial(name)}
        doc = {"meta": meta, "name": name, "files": files}
        (page.parent / "index.v1_json").write_text(json.dumps(doc))
        page.write_text(
            f"<html><body>{''.join(links)}</body></html>\n"
            + ("" if layout == "bandersnatch" else f"<!--SERIAL {index.project_serial(name)}-->\n")
        )
        if layout == "bandersnatch":
            (web / "json").mkdir(exist_ok=True)
            doc = {"last_serial": index.project_serial(name), "releases": {}}
            (web / "json" / name).write_text(json.dumps(doc))
    if layout == "bandersnatch":
        (where / "status").write_text(f"{index.serial}\n")
    else:
        (web / "local.json").write_text(
            json.dumps({n: index.project_serial(n) for n in index.projects})
        )
        (web / "local.db.serial").write_text(f"{index.serial}\n")
    return where


def test_foreign_trees_are_taken_over(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    index = _upstream(fake_index, dists)
    for layout in ("bandersnatch", "shadowmire"):
        source = _foreign_tree(index, tmp_path / f"{layout}-src", layout)
        before = {
            p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()
        }
        tree = tmp_path / f"{layout}-tree"
        assert main(["genlocal", "-i", str(tree), "--from", str(source)]) == 0
        assert (tree / "local.db.serial").read_text() == f"{index.serial}\n"
        after = {
            p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()
        }
        assert after == before, "the source tree must not change"
        _resync_fetches_nothing(tree, index)


def test_a_file_that_does_not_match_its_page_is_a_problem(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys
) -> None:
    index = _upstream(fake_index, dists)
    source = _foreign_tree(index, tmp_path / "src", "shadowmire")
    victim = next(p for p in (source / "packages").rglob("*.whl"))
    victim.write_bytes(b"not the file")
    assert main(["genlocal", "-i", str(tmp_path / "tree"), "--from", str(source)]) == 1
    assert "sha256 differs from its page" in capsys.readouterr().err
