"""TreeWriter: .metadata files, pages that never list a missing file, idempotent re-runs, replace."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import RemoteFile, parse_json_page
from morgan_like.tree import entries as entries_mod
from morgan_like.tree.layout import MANIFEST_NAME, is_top_level, package_relpath, page_relpaths
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

from ..distbuilder import read_wheel_metadata


def place(tree: Path, built: Path, **fields: object) -> RemoteFile:
    """Put a built distribution where the downloader would and return its upstream record."""
    rf = RemoteFile(filename=built.name, url=f"https://upstream.invalid/{built.name}", **fields)  # type: ignore[arg-type]
    dest = tree / package_relpath(str(rf.project), built.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, dest)
    return rf


def session(tree: Path, state: TreeState | None = None) -> TreeWriter:
    return TreeWriter(tree, state or TreeState(tree))


def finish(w: TreeWriter) -> list[str]:
    """End the session as every mode does; returns this session's changed relpaths."""
    return list(publish(w).changed)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_files(tree: Path) -> dict[str, bytes]:
    """The tree's visible files (the hidden state database changes as it likes)."""
    return {
        p.relative_to(tree).as_posix(): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and ".morgan-like" not in p.relative_to(tree).parts
    }


def assert_consistent(tree: Path) -> None:
    """Every page link resolves to a file with the advertised hash, size and .metadata,
    and the manifest describes exactly the tree's top-level files."""
    for project_dir in (tree / "simple").iterdir():
        if not project_dir.is_dir():
            continue
        html_path = project_dir / "index.html"
        pages = [
            parse_html_page(project_dir.name, html_path.read_text(), html_path.as_uri()),
            parse_json_page(
                project_dir.name,
                (project_dir / "index.json").read_bytes(),
                (project_dir / "index.json").as_uri(),
            ),
        ]
        for page in pages:
            for f in page.files:
                path = Path(unquote(urlparse(f.url).path))
                assert path.is_file(), f"{page.name} lists missing {path}"
                assert sha(path) == f.sha256
                assert path.stat().st_size == f.size
                if f.core_metadata:
                    meta = Path(str(path) + ".metadata")
                    assert sha(meta) == f.core_metadata
                    assert meta.read_bytes() == read_wheel_metadata(path)
    manifest = json.loads((tree / MANIFEST_NAME).read_text())["files"]
    on_disk = {rel for rel in tree_files(tree) if is_top_level(rel)}
    assert set(manifest) == on_disk
    for rel, entry in manifest.items():
        assert entry == {"size": (tree / rel).stat().st_size, "sha256": sha(tree / rel)}
    leftovers = [p for p in tree.rglob(".*") if ".morgan-like" not in p.parts]
    assert leftovers == []


def _standard(tree: Path, built: dict[str, Path]) -> list[RemoteFile]:
    return [
        place(
            tree,
            built["w10"],
            requires_python=">=3.8",
            upload_time="2023-01-01T00:00:00.000001Z",
            sha256=sha(built["w10"]),
        ),
        place(tree, built["s10"], upload_time="2023-01-01T00:00:00Z"),
        place(tree, built["w20"], yanked="bad build", upload_time="2024-01-01T00:00:00Z"),
        place(tree, built["local"]),
        RemoteFile(
            "foo_bar-3.0-py3-none-any.whl", "https://upstream.invalid/x.whl", sha256="0" * 64
        ),
    ]


def test_write_project_lists_only_present_files(tree: Path, built: dict[str, Path]) -> None:
    w = session(tree)
    changed = w.write_project("Foo.Bar", _standard(tree, built), last_serial=5)
    w.write_root()
    finish(w)
    assert_consistent(tree)
    html_rel, json_rel = page_relpaths("foo-bar")
    doc = json.loads((tree / json_rel).read_text())
    names = {f["filename"] for f in doc["files"]}
    assert names == {built[k].name for k in ("w10", "s10", "w20", "local")}
    assert "foo_bar-3.0-py3-none-any.whl" not in (tree / html_rel).read_text()
    assert doc["meta"]["_last-serial"] == 5
    assert doc["versions"] == ["1.0", "1.5+local.1", "2.0"]
    by_name = {f["filename"]: f for f in doc["files"]}
    w10 = by_name[built["w10"].name]
    assert w10["requires-python"] == ">=3.8"
    assert w10["upload-time"] == "2023-01-01T00:00:00.000001Z"
    assert w10["size"] == built["w10"].stat().st_size  # filled from disk
    assert w10["core-metadata"] == {
        "sha256": hashlib.sha256(read_wheel_metadata(built["w10"])).hexdigest()
    }
    assert by_name[built["w20"].name]["yanked"] == "bad build"
    assert "core-metadata" not in by_name[built["s10"].name]
    assert not (tree / (package_relpath("foo-bar", built["s10"].name) + ".metadata")).exists()
    # everything new shows up in the changed list: files, .metadata, pages
    wheel_rel = package_relpath("foo-bar", built["w10"].name)
    assert {wheel_rel, wheel_rel + ".metadata", html_rel, json_rel} <= set(changed)
    assert set(changed) <= w.changed


def test_rerun_is_idempotent(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files, last_serial=5)
    w.write_root()
    finish(w)
    before = tree_files(tree)
    # same session: still reported (changed since the run started), nothing rewritten
    again = w.write_project("foo-bar", files, last_serial=5)
    assert set(again) == {r for r in w.changed if r.startswith(("packages/", "simple/foo-bar/"))}
    assert tree_files(tree) == before
    # next run, and a run fed back from our own page
    w2 = session(tree)
    assert w2.write_project("foo-bar", files, last_serial=5) == []
    assert w2.write_project("foo-bar", w2.existing_files("foo-bar"), last_serial=5) == []
    assert w2.write_root() == []
    assert finish(w2) == []
    assert w2.changed == set() and w2.removed == set()
    assert tree_files(tree) == before


def test_unchanged_metadata_not_reextracted(
    tree: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    calls: list[Path] = []

    def counting(path: Path) -> bytes:
        calls.append(path)
        return read_wheel_metadata(path)

    monkeypatch.setattr(entries_mod, "wheel_metadata_bytes", counting)
    session(tree).write_project("foo-bar", files)
    assert calls == []


def test_change_reports_only_what_changed(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    yanked = [replace(f, yanked=True) if f.filename == built["w10"].name else f for f in files]
    w2 = session(tree)
    assert sorted(w2.write_project("foo-bar", yanked)) == sorted(page_relpaths("foo-bar"))
    # pages vouch for themselves: the manifest (top-level files only) does not change
    assert finish(w2) == sorted(page_relpaths("foo-bar"))
    assert 'data-yanked=""' in (tree / page_relpaths("foo-bar")[0]).read_text()


def test_new_download_is_reported(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    state = TreeState(tree)
    new = place(tree, built["other"])
    rel = package_relpath("other", new.filename)
    state.record_file(rel)  # as the downloader does
    w2 = TreeWriter(tree, state)
    changed = w2.write_project("other", [new])
    assert rel in changed and rel + ".metadata" in changed
    finish(w2)
    assert session(tree).write_project("other", [new]) == []


def test_replaced_file_is_rehashed(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    rel = package_relpath("foo-bar", built["s10"].name)
    (tree / rel).write_bytes(b"different content, different size")
    w2 = session(tree)
    changed = w2.write_project("foo-bar", files)
    assert rel in changed
    finish(w2)
    assert_consistent(tree)


def test_missing_file_dropped_from_page(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    (tree / package_relpath("foo-bar", built["w20"].name)).unlink()
    w2 = session(tree)
    w2.write_project("foo-bar", files)
    w2.batch.flush()  # pages go with their batch (tree/pagebatch.py)
    assert built["w20"].name not in (tree / page_relpaths("foo-bar")[0]).read_text()


def test_unsafe_filenames_skipped(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    evil = RemoteFile("../../manifest.json", "https://upstream.invalid/x")
    seen: list[str] = []
    w = TreeWriter(tree, TreeState(tree), on_problem=seen.append)  # the mode's reporter
    w.write_project("foo-bar", [*files, evil])
    assert any("unsafe" in p for p in w.problems) and seen == w.problems
    with pytest.raises(ValueError):
        package_relpath("foo", "../x.whl")
    with pytest.raises(ValueError):
        package_relpath("foo", ".hidden.whl")


def test_broken_wheel_gets_no_metadata(tree: Path, dists: Path) -> None:
    bad = dists / "broken-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    rf = place(tree, bad)
    w = session(tree)
    w.write_project("broken", [rf])
    finish(w)
    text = (tree / page_relpaths("broken")[0]).read_text()
    assert "broken-1.0-py3-none-any.whl" in text and "metadata" not in text
    assert w.problems
    assert_consistent(tree)


def test_existing_files_and_projects(tree: Path, built: dict[str, Path]) -> None:
    w = session(tree)
    assert w.existing_files("foo-bar") == [] and w.existing_projects() == []
    files = _standard(tree, built)
    w.write_project("Foo_Bar", files, last_serial=9)
    back = {f.filename: f for f in w.existing_files("foo.bar")}
    assert set(back) == {built[k].name for k in ("w10", "s10", "w20", "local")}
    w20 = back[built["w20"].name]
    assert w20.yanked == "bad build" and w20.upload_time == "2024-01-01T00:00:00.000000Z"
    assert Path(unquote(urlparse(w20.url).path)).is_file()
    (tree / "simple" / ".hidden").mkdir()
    (tree / "packages" / "stray").mkdir()  # files left by a killed run: --prune must see them
    assert w.existing_projects() == ["foo-bar", "stray"]
    # corrupt JSON: read back from the HTML page instead
    (tree / page_relpaths("foo-bar")[1]).write_text("{")
    assert {f.filename for f in w.existing_files("foo-bar")} == set(back)


def test_root_pages_and_serials(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files, last_serial=7)
    w.write_project("other", [place(tree, built["other"])])
    assert sorted(w.write_root()) == ["simple/index.html", "simple/index.json"]
    finish(w)
    doc = json.loads((tree / "simple/index.json").read_text())
    assert doc == {
        "meta": {"api-version": "1.1", "_last-serial": 7},
        "projects": [{"name": "foo-bar", "_last-serial": 7}, {"name": "other"}],
    }
    root_html = (tree / "simple/index.html").read_text()
    assert '<a href="foo-bar/">foo-bar</a>' in root_html
    # a later run that does not touch foo-bar keeps its serial (read from the HTML trailer)
    w2 = session(tree)
    w2.write_project("other", [place(tree, built["other"])], last_serial=8)
    w2.write_root()
    doc = json.loads((tree / "simple/index.json").read_text())
    assert doc["projects"] == [
        {"name": "foo-bar", "_last-serial": 7},
        {"name": "other", "_last-serial": 8},
    ]
    assert doc["meta"]["_last-serial"] == 8


def test_replace(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    w.write_project("other", [place(tree, built["other"])])
    finish(w)
    stray = tree / "packages" / "foo-bar" / "foo_bar-0.1.tar.gz"  # left by a killed run
    stray.write_bytes(b"x")
    w2 = session(tree)
    w2.write_project("foo-bar", [files[0]], replace=True)
    assert {f.filename for f in w2.existing_files("foo-bar")} == {built["w10"].name}
    assert set(page_relpaths("foo-bar")) <= w2.changed
    # nothing left to list: the project goes, pages included
    assert w2.write_project("other", [], replace=True) == []
    # nothing is deleted before publish: the root pages go first
    assert stray.exists() and (tree / page_relpaths("other")[0]).is_file()
    assert w2.removed == set()
    finish(w2)
    keep_rel = package_relpath("foo-bar", built["w10"].name)
    assert keep_rel not in w2.removed and keep_rel + ".metadata" not in w2.removed
    assert package_relpath("foo-bar", built["w20"].name) + ".metadata" in w2.removed
    assert package_relpath("foo-bar", built["s10"].name) in w2.removed
    assert "packages/foo-bar/foo_bar-0.1.tar.gz" in w2.removed
    assert set(page_relpaths("other")) <= w2.removed
    assert not (tree / "packages" / "other").exists() and not (tree / "simple" / "other").exists()
    assert "other" not in (tree / "simple/index.html").read_text()
    assert_consistent(tree)
    w3 = session(tree)
    w3.write_project("foo-bar", [files[0]], replace=True)
    assert finish(w3) == [] and w3.removed == set()


def test_replace_writes_the_page_before_deleting(
    tree: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At every moment of a replace, the pages list only files that exist: the new page
    is in place before the first old file goes, so a client never sees a missing file
    or a missing project."""
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    new = place(tree, built["local"])
    w2 = session(tree)
    real_remove = w2._remove

    def checked_remove(relpath: str) -> bool:
        assert_pages_resolve(tree)
        assert (tree / page_relpaths("foo-bar")[0]).is_file()
        return real_remove(relpath)

    monkeypatch.setattr(w2, "_remove", checked_remove)
    w2.write_project("foo-bar", [new], replace=True)
    assert {f.filename for f in w2.existing_files("foo-bar")} == {new.filename}
    assert_pages_resolve(tree)


def assert_pages_resolve(tree: Path) -> None:
    for html in (tree / "simple").glob("*/index.html"):
        for f in parse_html_page(html.parent.name, html.read_text(), html.as_uri()).files:
            assert Path(unquote(urlparse(f.url).path)).is_file(), f.url


def test_remove_project(tree: Path, built: dict[str, Path]) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    w.write_project("other", [place(tree, built["other"])])
    finish(w)
    w.remove_project("Other")
    assert (tree / "simple" / "other").exists()  # until publish
    finish(w)
    other = package_relpath("other", built["other"].name)
    assert w.removed == {*page_relpaths("other"), other, other + ".metadata"}
    assert not (tree / "simple" / "other").exists()
    assert not (tree / "packages" / "other").exists()
    assert w.existing_projects() == ["foo-bar"]
    assert_consistent(tree)
    w2 = session(tree, w.state)
    w2.remove_project("other")
    assert finish(w2) == [] and w2.removed == set()


def test_write_file(tree: Path) -> None:
    w = session(tree)
    assert w.write_file("server.py", b"print()\n") is True
    assert w.write_file("server.py", b"print(1)\n") is True
    assert w.write_file("server.py", b"print(1)\n") is True  # still new since the run began
    for bad in (MANIFEST_NAME, ".morgan-like/state", "../outside", "packages/a/a.whl"):
        with pytest.raises(ValueError):
            w.write_file(bad, b"x")
    assert w.write_manifest() == [MANIFEST_NAME]
    assert [rel for rel, _ in w.state.top_level()] == ["server.py"]
    assert w.changed == {"server.py", MANIFEST_NAME}
    w.state.close()
    assert session(tree).write_file("server.py", b"print(1)\n") is False


def test_failed_page_write_keeps_old_page(
    tree: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files)
    finish(w)
    before = tree_files(tree)

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    w = session(tree)
    w.write_project("foo-bar", files, last_serial=99)
    with pytest.raises(OSError):
        w.batch.flush()  # pages go with their batch (tree/pagebatch.py)
    assert tree_files(tree) == before  # old pages intact, no temp files left
    assert w.state.project("foo-bar")[1] != 99  # nor a serial for pages not written


def _pip_download(index: Path, spec: str, dest: Path) -> list[str]:
    pip_python = Path("/root/.pyenv/versions/3.12.1/bin/python")
    if not pip_python.exists():
        pytest.skip("no reference pip interpreter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    cmd = [str(pip_python), "-m", "pip", "download", "--no-deps", "-d", str(dest)]
    cmd += ["--index-url", index.as_uri() + "/", spec]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(p.name for p in dest.iterdir())


def _built_tree(tree: Path, built: dict[str, Path]) -> Path:
    w = session(tree)
    w.write_project("foo-bar", _standard(tree, built))
    w.write_project("other", [place(tree, built["other"])])
    w.write_root()
    finish(w)
    return tree / "simple"


@pytest.mark.e2e
def test_pip_reads_tree_over_file_url(tree: Path, built: dict[str, Path], tmp_path: Path) -> None:
    index = _built_tree(tree, built)
    # 2.0 is yanked, so the unpinned request gets 1.5+local.1 (its href is %2B-quoted)
    got = _pip_download(index, "Foo.Bar", tmp_path / "a")
    assert got == [built["local"].name]
    got = _pip_download(index, "foo-bar==2.0", tmp_path / "b")  # yanked, but pinned
    assert got == [built["w20"].name]
    got = _pip_download(index, "foo_bar<1.5", tmp_path / "c")
    assert got == [built["w10"].name]


@pytest.mark.e2e
def test_uv_reads_tree_over_file_url(tree: Path, built: dict[str, Path], tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv not installed")
    index = _built_tree(tree, built)
    base = [uv, "pip", "install", "--no-cache", "--python", sys.executable]
    base += ["--index-url", index.as_uri() + "/", "--no-config"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}

    def install(spec: str, *extra: str) -> str:
        target = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        cmd = [*base, "--target", str(target), *extra, spec]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        (dist_info,) = [p.name for p in target.glob("*.dist-info")]
        return dist_info

    assert install("foo-bar") == "foo_bar-1.5+local.1.dist-info"
    assert install("foo-bar==2.0") == "foo_bar-2.0.dist-info"
    # upload-time is read from our pages: the 2023 files only
    assert install("foo-bar<1.5", "--exclude-newer", "2023-06-01T00:00:00Z") == (
        "foo_bar-1.0.dist-info"
    )
    assert install("foo-bar", "--exclude-newer", "2023-06-01T00:00:00Z") == (
        "foo_bar-1.0.dist-info"
    )


def test_a_batch_of_projects_shares_one_intent_commit(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages go a batch at a time (tree/pagebatch.py): one commit of the diff-file's
    intents for all of them, and a project counts as finished (its serial, the sync's
    sync_done) only once its pages are on disk."""
    state = TreeState(tree)
    state.set_sync_todo({f"p{i}": i + 1 for i in range(5)})
    state.commit()
    w = TreeWriter(tree, state, index_only=True, warehouse=True)
    commits: list[int] = []
    real_commit = TreeState.commit
    monkeypatch.setattr(TreeState, "commit", lambda self: commits.append(1) or real_commit(self))
    for i in range(5):
        sha = hashlib.sha256(f"p{i}".encode()).hexdigest()
        rf = RemoteFile(f"p{i}-1.0.tar.gz", f"https://upstream.invalid/p{i}-1.0.tar.gz", sha)
        w.write_project(f"p{i}", [rf], i + 1, replace=True, keep_empty=True)
        state.sync_done(f"p{i}")
    # Nothing on disk nor finished yet; the reads settle the batch first.
    assert not (tree / page_relpaths("p0")[0]).exists() and commits == []
    assert state.sync_todo() == {}  # read after the batch's pages went
    assert len(commits) == 1
    for i in range(5):
        assert (tree / page_relpaths(f"p{i}")[0]).exists()
        assert state.project(f"p{i}") == (True, i + 1)


def test_a_new_project_reads_no_page_of_its_missing_folder(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its folder in simple/, neither of its pages is read (one stat instead)."""
    from morgan_like.tree import projectpages

    read: list[str] = []
    real = projectpages.read_bytes
    monkeypatch.setattr(projectpages, "read_bytes", lambda p: read.append(str(p)) or real(p))
    w = TreeWriter(tree, TreeState(tree), index_only=True, warehouse=True)
    sha = hashlib.sha256(b"x").hexdigest()
    rf = RemoteFile("new-1.0.tar.gz", "https://upstream.invalid/new-1.0.tar.gz", sha)
    w.write_project("new", [rf], 1, replace=True, keep_empty=True)
    assert [Path(p).relative_to(tree).as_posix() for p in read] == ["json/new"]
    finish(w)
    read.clear()
    w = TreeWriter(tree, TreeState(tree), index_only=True, warehouse=True)
    w.write_project("new", [rf], 2, replace=True, keep_empty=True)
    assert len(read) == 3  # its folder is there now: every page is read


def test_a_project_with_nothing_to_remove_keeps_no_removal_set(
    tree: Path, built: dict[str, Path]
) -> None:
    """A first sync replaces hundreds of thousands of projects with nothing to remove;
    the writer keeps a set of stale files only for a project that has some."""
    files = _standard(tree, built)
    w = session(tree)
    w.write_project("foo-bar", files, last_serial=5, replace=True)
    w.batch.flush()
    assert w.removals.stale == {}
    w.write_project("foo-bar", files[:1], last_serial=6, replace=True)
    w.batch.flush()
    assert set(w.removals.stale) == {"foo-bar"} and w.removals.stale["foo-bar"]
    finish(w)
