"""``morgan-like sync``: the scenarios of a full mirror kept in step with a changing upstream.

Each step changes the fake upstream's catalogue, syncs, then checks the tree
against the upstream (root, pages, files, ``server.py --verify``) and the
diff-file's exact contents.  Real clients installing from the synced tree are
in test_sync_clients.py (e2e).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from .sync_support import assert_matches_upstream, page, snapshot, sync, sync_api


def _project_paths(name: str, *files: str) -> list[str]:
    """A project's pages (HTML, JSON, Warehouse JSON) plus the given packages/ paths."""
    return sorted(
        [
            f"json/{name}",
            f"simple/{name}/index.html",
            f"simple/{name}/index.json",
            *(f"packages/{name}/{f}" for f in files),
        ]
    )


TOP = [
    "index.html",  # the landing page: what any change of a project shows
    "local.db.serial",
    "local.json",
    "manifest.json",
    "simple/index.html",
    "simple/index.json",
]
# A project's serial moved, no project came or went: the root HTML (names only) stays.
MOVED = [p for p in TOP if p != "simple/index.html"]


@pytest.fixture
def upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    fake_index.dists = dists  # type: ignore[attr-defined]
    return fake_index


def test_first_sync_then_noop(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    run = sync(tree, upstream)
    assert run.rc == 0
    assert_matches_upstream(tree, upstream)
    assert run.changed == sorted(
        [
            *TOP,
            "server.py",
            *_project_paths(
                "app",
                "app-1.0-py3-none-any.whl",
                "app-1.0-py3-none-any.whl.metadata",
                "app-1.0.tar.gz",
            ),
            *_project_paths("lib", "lib-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl.metadata"),
        ]
    )
    assert run.removed == []
    assert json.loads((tree / "local.json").read_bytes()) == {
        "app": upstream.project_serial("app"),
        "lib": upstream.project_serial("lib"),
    }
    assert (tree / "local.db.serial").read_text() == f"{upstream.serial}\n"

    upstream.reset_log()
    again = sync(tree, upstream)
    assert (again.rc, again.changed, again.removed) == (0, [], [])
    # A no-op re-sync reads the serial list and nothing else.
    assert [r.path for r in upstream.requests] == ["/simple/"]


def test_new_release_new_file_yank_deleted_file(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    dists = upstream.dists  # type: ignore[attr-defined]
    assert sync(tree, upstream).rc == 0

    wheel(upstream, dists, "lib", "2.0")  # a new release
    run = sync(tree, upstream)
    assert run.rc == 0
    assert_matches_upstream(tree, upstream)
    assert run.changed == sorted(
        [
            *MOVED,
            *_project_paths("lib", "lib-2.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl.metadata"),
        ]
    )
    assert run.removed == []

    sdist(upstream, dists, "lib", "1.0")  # a new file for an old release
    run = sync(tree, upstream)
    assert_matches_upstream(tree, upstream)
    assert run.changed == sorted([*MOVED, *_project_paths("lib", "lib-1.0.tar.gz")])

    upstream.yank("lib-2.0-py3-none-any.whl", "broken build")  # a yank: pages only
    run = sync(tree, upstream)
    assert_matches_upstream(tree, upstream)
    # the landing page shows no yank: it stays as it was
    assert run.changed == sorted([*(p for p in MOVED if p != "index.html"), *_project_paths("lib")])
    entry = {f["filename"]: f for f in page(tree, "lib")["files"]}["lib-2.0-py3-none-any.whl"]
    assert entry["yanked"] == "broken build"
    html = (tree / "simple/lib/index.html").read_text()
    assert 'data-yanked="broken build"' in html

    upstream.remove("lib-1.0.tar.gz")  # a deleted file
    run = sync(tree, upstream)
    assert run.rc == 0
    assert_matches_upstream(tree, upstream)
    assert run.changed == sorted([*MOVED, *_project_paths("lib")])
    assert run.removed == ["packages/lib/lib-1.0.tar.gz"]
    assert not (tree / "packages/lib/lib-1.0.tar.gz").exists()


def test_deleted_project_leaves_everywhere(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    assert sync(tree, upstream).rc == 0
    upstream.remove_project("app")
    run = sync(tree, upstream)
    assert run.rc == 0
    assert_matches_upstream(tree, upstream)
    assert run.changed == TOP
    assert run.removed == _project_paths(
        "app", "app-1.0-py3-none-any.whl", "app-1.0-py3-none-any.whl.metadata", "app-1.0.tar.gz"
    )
    assert not (tree / "simple/app").exists() and not (tree / "packages/app").exists()
    assert not (tree / "json/app").exists()
    assert "app" not in json.loads((tree / "local.json").read_bytes())


def test_quarantined_project_lists_nothing_and_loses_its_files(
    upstream: FakeIndex, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    assert sync(tree, upstream).rc == 0
    upstream.set_status("app", "quarantined")
    run = sync(tree, upstream)
    assert run.rc == 0
    assert_matches_upstream(tree, upstream)
    doc = page(tree, "app")
    assert doc["files"] == [] and doc["project-status"] == {"status": "quarantined"}
    assert doc["meta"]["api-version"] == "1.4"
    html = (tree / "simple/app/index.html").read_text()
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert run.changed == sorted([*MOVED, *_project_paths("app")])
    assert run.removed == [
        "packages/app/app-1.0-py3-none-any.whl",
        "packages/app/app-1.0-py3-none-any.whl.metadata",
        "packages/app/app-1.0.tar.gz",
    ]

    upstream.set_status("app", None)  # released from quarantine: the files come back
    run = sync(tree, upstream)
    assert_matches_upstream(tree, upstream)
    assert "packages/app/app-1.0.tar.gz" in run.changed


def test_archived_deprecated_and_tracks_are_carried(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    upstream.set_status("app", "archived", "moved to app2")
    upstream.set_status("lib", "deprecated")
    upstream.set_tracks(
        "lib", ["https://pypi.example.org/simple/lib/"], ["https://example.org/lib/"]
    )
    assert sync(tree, upstream).rc == 0
    assert_matches_upstream(tree, upstream)
    app = page(tree, "app")
    assert app["project-status"] == {"status": "archived", "reason": "moved to app2"}
    assert len(app["files"]) == 2  # archived projects keep their files
    lib = page(tree, "lib")
    assert lib["tracks"] == ["https://pypi.example.org/simple/lib/"]
    assert lib["alternate-locations"] == ["https://example.org/lib/"]
    html = (tree / "simple/lib/index.html").read_text()
    assert '<meta name="pypi:project-status" content="deprecated">' in html
    assert '<meta name="pypi:tracks" content="https://pypi.example.org/simple/lib/">' in html
    assert '<meta name="pypi:alternate-locations" content="https://example.org/lib/">' in html
    app_html = (tree / "simple/app/index.html").read_text()
    assert '<meta name="pypi:project-status-reason" content="moved to app2">' in app_html


def test_stale_page_is_retried_and_never_recorded(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    dists = upstream.dists  # type: ignore[attr-defined]
    assert sync(tree, upstream).rc == 0
    upstream.stale("lib", times=1)  # the CDN keeps the old page for one more request
    wheel(upstream, dists, "lib", "2.0")
    assert sync_api(tree, upstream, stale_delay=0.01) == 0
    assert_matches_upstream(tree, upstream)

    # Stale for longer than the retries: left for the next run, serial not advanced.
    before = (tree / "local.db.serial").read_text()
    upstream.stale("lib", times=10)
    wheel(upstream, dists, "lib", "3.0")
    assert sync_api(tree, upstream, stale_delay=0.01, stale_retries=2) == 1
    assert not (tree / "packages/lib/lib-3.0-py3-none-any.whl").exists()
    assert (tree / "local.db.serial").read_text() == before
    local = json.loads((tree / "local.json").read_bytes())
    assert local["lib"] < upstream.project_serial("lib")
    upstream.clear_faults()
    upstream.stale("lib", times=0)
    assert sync(tree, upstream).rc == 0
    assert_matches_upstream(tree, upstream)
    assert (tree / "local.db.serial").read_text() == f"{upstream.serial}\n"


def test_errors_mid_sync_then_resume(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    dists = upstream.dists  # type: ignore[attr-defined]
    upstream.fail("/simple/lib/", times=100, status=503)
    upstream.fail("app-1.0.tar.gz", times=100, status=500)
    run = sync(tree, upstream)
    assert run.rc == 1
    # What arrived is listed; nothing is recorded as synced; no serial is claimed.
    assert not (tree / "simple/lib").exists()
    assert (tree / "packages/app/app-1.0-py3-none-any.whl").exists()
    assert not (tree / "local.db.serial").exists()
    assert "app" not in json.loads((tree / "local.json").read_bytes())

    upstream.clear_faults()
    wheel(upstream, dists, "lib", "2.0")
    run = sync(tree, upstream)
    assert run.rc == 0
    assert_matches_upstream(tree, upstream)
    assert "packages/app/app-1.0.tar.gz" in run.changed
    assert "packages/app/app-1.0-py3-none-any.whl" not in run.changed
    assert (tree / "local.db.serial").read_text() == f"{upstream.serial}\n"


def test_empty_list_is_refused(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    assert sync(tree, upstream).rc == 0
    before = snapshot(tree)
    for name in list(upstream.projects):
        upstream.remove_project(name)
    run = sync(tree, upstream)
    assert run.rc == 3
    assert snapshot(tree) == before
    assert run.changed == [] and run.removed == []


def test_deletion_guard_and_override(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for n in range(14):
        wheel(fake_index, dists, f"p{n}", "1.0")
    assert sync(tree, fake_index).rc == 0
    for n in range(11):  # 11 of 14 go: more than the default limit (10)
        fake_index.remove_project(f"p{n}")
    before = snapshot(tree)
    assert sync(tree, fake_index).rc == 3
    assert snapshot(tree) == before
    assert sync(tree, fake_index, "--max-deletions", "10").rc == 3
    run = sync(tree, fake_index, "--max-deletions", "11")
    assert run.rc == 0
    assert_matches_upstream(tree, fake_index)


def test_dry_run_changes_nothing(upstream: FakeIndex, tmp_path: Path, capsys) -> None:
    tree = tmp_path / "tree"
    assert sync(tree, upstream).rc == 0
    dists = upstream.dists  # type: ignore[attr-defined]
    wheel(upstream, dists, "lib", "2.0")
    wheel(upstream, dists, "new", "1.0")
    upstream.remove_project("app")
    before = snapshot(tree)
    from morgan_like.cli import main

    capsys.readouterr()
    assert main(["sync", "-i", str(tree), "-I", upstream.url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert snapshot(tree) == before
    assert "new" in out and "app" in out and "lib" in out
    assert "Would download 2 files" in out
    assert "Would remove 1 projects" in out


def test_filters(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    wheel(fake_index, dists, "keep", "1.0")
    wheel(fake_index, dists, "keep", "2.0rc1")
    wheel(fake_index, dists, "pre-ok", "2.0rc1")
    wheel(fake_index, dists, "test-junk", "1.0")
    wheel(fake_index, dists, "native", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    wheel(fake_index, dists, "native", "1.0", tag="cp312-cp312-win_amd64")
    sdist(fake_index, dists, "native", "1.0")
    config = tmp_path / "sync.ini"
    from ..helpers import ini_env_block

    config.write_text(
        "[sync]\nexclude =\n    ^test-\nprerelease-exclude = keep\n\n"
        + ini_env_block("l", "3.12.1")
    )
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, "-c", str(config)).rc == 0
    assert sorted(p.name for p in (tree / "simple").iterdir() if p.is_dir()) == [
        "keep",
        "native",
        "pre-ok",
    ]
    assert [f["filename"] for f in page(tree, "keep")["files"]] == ["keep-1.0-py3-none-any.whl"]
    assert [f["filename"] for f in page(tree, "pre-ok")["files"]] == [
        "pre_ok-2.0rc1-py3-none-any.whl"
    ]
    assert [f["filename"] for f in page(tree, "native")["files"]] == [
        "native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "native-1.0.tar.gz",
    ]
    # The same filter on the command line; a project the filters now exclude leaves.
    run = sync(tree, fake_index, "-c", str(config), "--exclude", "pre-")
    assert run.rc == 0
    assert not (tree / "simple/pre-ok").exists()
    assert "simple/pre-ok/index.html" in run.removed


def test_index_only_links_upstream(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    run = sync(tree, upstream, "--index-only")
    assert run.rc == 0
    assert_matches_upstream(tree, upstream, files=False)
    assert not (tree / "packages").exists()
    entry = page(tree, "lib")["files"][0]
    assert entry["url"] == upstream.file_url("lib-1.0-py3-none-any.whl")
    assert "core-metadata" in entry
    html = (tree / "simple/lib/index.html").read_text()
    assert f'href="{upstream.file_url("lib-1.0-py3-none-any.whl")}#sha256=' in html


def test_bad_config_is_one_clear_error(upstream: FakeIndex, tmp_path: Path, capsys) -> None:
    config = tmp_path / "sync.ini"
    config.write_text("[sync]\nexclude = (\n")
    from morgan_like.cli import main

    rc = main(["sync", "-i", str(tmp_path / "tree"), "-I", upstream.url, "-c", str(config)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{config}:2 [sync] exclude" in err and "invalid regular expression" in err
    config.write_text("[sync]\nmax-deletion = 5\n")
    assert main(["sync", "-i", str(tmp_path / "tree"), "-c", str(config)]) == 2
    assert "did you mean 'max-deletions'" in capsys.readouterr().err


def test_pages_fetched_in_worker_processes(
    upstream: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the threshold, pages come from worker processes: same tree, same failures."""
    from morgan_like.modes import sync_run as sync_mode

    monkeypatch.setattr(sync_mode, "PROCESS_THRESHOLD", 1)
    monkeypatch.setattr(sync_mode, "PAGE_PROCESSES", 2)
    dists = upstream.dists  # type: ignore[attr-defined]
    for n in range(6):
        wheel(upstream, dists, f"extra{n}", "1.0")
    upstream.fail("/simple/extra3/", times=100)
    tree = tmp_path / "tree"
    assert sync(tree, upstream).rc == 1
    assert not (tree / "simple/extra3").exists() and (tree / "simple/extra4").is_dir()
    upstream.clear_faults()
    assert sync(tree, upstream).rc == 0
    assert_matches_upstream(tree, upstream)


@pytest.mark.parametrize("kind", ["xmlrpc", "html-only"])
def test_other_serial_sources(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, kind: str
) -> None:
    """XML-RPC serials; and an index with no serials at all (a plain PEP 503 index, or a
    proxy answering the root only in HTML): every page is read each run, still correct."""
    wheel(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    if kind == "xmlrpc":
        fake_index.xmlrpc = True
        args = ["--serial-source", "xmlrpc"]
    else:
        fake_index.json = False
        args = []
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, *args).rc == 0
    assert_matches_upstream(tree, fake_index)
    wheel(fake_index, dists, "lib", "2.0")
    fake_index.remove_project("app")
    run = sync(tree, fake_index, *args)
    assert run.rc == 0
    assert_matches_upstream(tree, fake_index)
    assert "packages/lib/lib-2.0-py3-none-any.whl" in run.changed
    assert "packages/app/app-1.0-py3-none-any.whl" in run.removed
    again = sync(tree, fake_index, *args)
    assert (again.rc, again.changed, again.removed) == (0, [], [])
