"""TreeWriter and publish under kills: nothing is deleted while a page (or the root) lists it.

A run may be killed between any two of its changes to disk; these tests check the
order of those changes one removal at a time, and what a killed run leaves for the
next one (rows of files already gone, temp files).  The end-to-end kill sweep over a
real ``mirror --prune`` lives in tests/modes/test_crash.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from morgan_like.tree.layout import package_relpath, page_relpaths
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

from .test_writer import _standard, assert_consistent, assert_pages_resolve, finish, place, session


def _root_links(tree: Path) -> set[str]:
    html = tree / "simple/index.html"
    return set(re.findall(r'href="([^"/]+)/"', html.read_text())) if html.exists() else set()


def assert_every_link_resolves(tree: Path) -> None:
    """What a client sees at this instant: each root link has its page, each page link its file."""
    for name in _root_links(tree):
        assert (tree / page_relpaths(name)[0]).is_file(), f"root links {name}/, no page"
        assert (tree / page_relpaths(name)[1]).is_file(), f"root links {name}/, no JSON page"
    assert_pages_resolve(tree)


def test_a_leaving_project_leaves_the_root_pages_before_its_pages_and_files(
    tree: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between two removals never leaves the root linking a missing page: the root
    pages are rewritten without the project before its first file goes."""
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    w.write_project("other", [place(tree, built["other"])])
    finish(w)
    w2 = session(tree)
    real_remove = w2._remove
    seen: list[str] = []

    def checked_remove(relpath: str) -> bool:
        assert "other" not in _root_links(tree)
        assert "other" not in (tree / "simple/index.json").read_text()
        assert_every_link_resolves(tree)
        seen.append(relpath)
        return real_remove(relpath)

    monkeypatch.setattr(w2, "_remove", checked_remove)
    w2.remove_project("other")
    w2.write_project("foo-bar", [files[0]], replace=True)
    finish(w2)
    assert seen[:2] == list(page_relpaths("other"))  # HTML (what pip reads), then JSON
    assert_every_link_resolves(tree)
    assert_consistent(tree)


def test_apply_removals_refuses_before_the_root_pages(tree: Path, built: dict[str, Path]) -> None:
    w = session(tree)
    w.write_project("other", [place(tree, built["other"])])
    finish(w)
    w2 = session(tree)
    w2.remove_project("other")
    with pytest.raises(RuntimeError):
        w2.apply_removals()
    assert (tree / page_relpaths("other")[0]).is_file()


def test_a_stopped_run_keeps_a_leaving_project(tree: Path, built: dict[str, Path]) -> None:
    """remove_project changes nothing until publish, not even the state (which a run
    stopped by Ctrl-C still commits): the root pages keep listing a project with a page."""
    w = session(tree)
    w.write_project("other", [place(tree, built["other"])])
    finish(w)
    w2 = session(tree)
    w2.remove_project("other")
    w2.state.close()  # the run ends here
    with TreeState(tree) as state:
        assert state.project("other")[0]
    assert (tree / page_relpaths("other")[0]).is_file()


def test_replace_forgets_files_already_gone(tree: Path, built: dict[str, Path]) -> None:
    """A killed prune can unlink a file after the state's last commit: its row comes back.
    The next replace forgets it although no file is left on disk to find it by."""
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    gone = package_relpath("foo-bar", built["s10"].name)
    (tree / gone).unlink()
    w2 = session(tree)
    w2.write_project("foo-bar", [files[0]], replace=True)
    finish(w2)
    assert w2.state.get(gone) is None and gone in w2.removed
    wheel_rel = package_relpath("foo-bar", built["w10"].name)
    assert w2.state.relpaths_under("packages/foo-bar") == [wheel_rel, wheel_rel + ".metadata"]


def test_atomic_writes_go_through_the_scratch_folder(
    tree: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between a temp file's write and its rename leaves it in .morgan-like/tmp,
    which the next run sweeps without listing the tree; never next to its target."""
    sources: list[Path] = []
    real_replace = os.replace

    def recording(src: str | Path, dst: str | Path) -> None:
        sources.append(Path(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording)
    w = session(tree)
    w.write_project("foo-bar", _standard(tree, built))
    publish(w, server=b"# server\n", config=b"[requirements]\n")
    assert len(sources) >= 6  # .metadata files, pages, root pages, top-level files, manifest
    assert all(src.parent == tree / ".morgan-like" / "tmp" for src in sources), sources


def test_replace_sweeps_temp_files_of_older_versions(tree: Path, built: dict[str, Path]) -> None:
    """Older versions left ``.NAME.xxxxxxxx.tmp`` next to targets when killed; a replace
    lists the project's folders anyway, so it sweeps them there."""
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    legacy = [
        tree / "packages/foo-bar" / f".{built['w10'].name}.metadata.k2j4h5_x.tmp",
        tree / "simple/foo-bar/.index.html.a1b2c3d4.tmp",
    ]
    for path in legacy:
        path.write_bytes(b"half")
    keep = tree / "packages/foo-bar/.keep"  # a hidden file that is not ours stays
    keep.write_bytes(b"")
    w2 = session(tree)
    w2.write_project("foo-bar", files, replace=True)
    finish(w2)
    assert not any(path.exists() for path in legacy) and keep.exists()
    assert_every_link_resolves(tree)


class _Killed(BaseException):
    """Stands for a kill -9: nothing after it runs, nothing uncommitted survives."""


def _kill_publish_at_third_removal(
    tree: Path, w: TreeWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_remove = w._remove
    calls: list[str] = []

    def dying(relpath: str) -> bool:
        calls.append(relpath)
        if len(calls) == 3:
            raise _Killed
        return real_remove(relpath)

    monkeypatch.setattr(w, "_remove", dying)
    with pytest.raises(_Killed):
        publish(w)
    w.state._db.close()  # the process is gone: its open transaction with it
    assert not any((tree / rel).exists() for rel in page_relpaths("other"))
    assert (tree / "packages/other").is_dir()


@pytest.mark.parametrize("comes_back", [False, True])
def test_a_removal_killed_half_way_is_finished_by_the_next_run(
    tree: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch, comes_back: bool
) -> None:
    """The projects a run took out of the root pages are remembered in the tree state
    until their pages and files are gone: the next run finishes deleting them whatever it
    was asked to do (here no prune at all), unless it lists the project again."""
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    w.write_project("other", [place(tree, built["other"])])
    finish(w)
    w2 = session(tree)
    w2.remove_project("other")
    _kill_publish_at_third_removal(tree, w2, monkeypatch)
    w3 = session(tree)
    w3.write_project("foo-bar", files)
    if comes_back:
        w3.write_project("other", [place(tree, built["other"])])
    finish(w3)
    assert w3.state.leaving() == []
    assert ("other" in _root_links(tree)) is comes_back
    assert (tree / "packages/other").is_dir() is comes_back
    if not comes_back:
        assert w3.state.relpaths_under("packages/other") == []
    assert_consistent(tree)
