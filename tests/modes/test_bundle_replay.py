"""A no-op re-run replays the last plan: only when the config and every page it read are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..distbuilder import make_wheel
from ..fakeindex import FakeIndex
from ..helpers import wheel
from .test_bundle import mirror, write_config


def _no_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("resolved although nothing changed")

    monkeypatch.setattr("morgan_like.modes.bundle_resolve.resolve_all", refuse)


def test_noop_rerun_replays_the_plan_without_resolving(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    before = sorted(p.name for p in (root / "packages").rglob("*") if p.is_file())
    _no_resolution(monkeypatch)
    small.reset_log()
    capsys.readouterr()
    assert main(["mirror", "-i", str(root), "-I", small.url, "-v"]) == 0
    assert "the last plan is used" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "packages").rglob("*") if p.is_file()) == before
    gets = [r for r in small.requests if r.method == "GET"]
    assert gets and all(r.status == 304 for r in gets)
    # A replayed run keeps what the plan depends on: the next one checks the same pages.
    small.reset_log()
    assert mirror(root, small) == 0
    assert sorted(r.path for r in small.requests) == sorted(r.path for r in gets)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".morgan-like" not in p.parts
    }


def test_a_replay_keeps_views_locks_and_sbom_without_rendering_them(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replayed plan is the one envs/, locks/ and the SBOM were written from: the
    replay leaves them (and every other file) as they are, without rendering them."""
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    before = _tree_bytes(root)
    assert any(name.startswith("envs/") for name in before)

    def refuse(*args, **kwargs):
        raise AssertionError("views, locks or SBOM rendered for a replayed plan")

    for name in ("publish.write_views", "publish.write_locks", "sbom.write_sbom"):
        monkeypatch.setattr(f"morgan_like.tree.{name}", refuse)
    _no_resolution(monkeypatch)
    assert mirror(root, small) == 0
    assert _tree_bytes(root) == before


def test_a_replay_starts_no_worker_process(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker processes start when a resolution begins: a replayed plan reads no
    sdist and unpacks nothing, so it never pays for spawning them."""
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0

    def refuse(self: object) -> None:
        raise AssertionError("a worker process started for a replayed plan")

    monkeypatch.setattr("morgan_like.workers.WorkerProcesses._started", refuse)
    _no_resolution(monkeypatch)
    assert mirror(root, small) == 0


def test_a_changed_page_or_config_resolves_again(
    small: FakeIndex, tmp_path: Path, dists: Path
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    wheel(small, dists, "lib", "3.0")  # a page the plan read changed
    assert mirror(root, small) == 0
    assert (root / "packages" / "lib" / "lib-3.0-py3-none-any.whl").exists()
    write_config(root, "app =\nlib = <3\n")  # the config changed
    assert mirror(root, small, "--prune") == 0
    assert not (root / "packages" / "lib" / "lib-3.0-py3-none-any.whl").exists()


def test_a_failed_run_keeps_no_plan(small: FakeIndex, tmp_path: Path, dists: Path) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    wheel(small, dists, "lib", "3.0")
    small.fail("lib-3.0-py3-none-any.whl", times=100, status=404)
    assert mirror(root, small) == 1
    assert not (root / ".morgan-like" / "plan.json").exists()


def _page_gets(index: FakeIndex) -> list[str]:
    return [r.path for r in index.requests if r.method == "GET" and r.path.startswith("/simple/")]


def test_an_upstream_without_validators_replays_on_identical_pages(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Pages sent whole (a proxy that strips ETag and Last-Modified) replay when their
    digests are the last run's: each page read once, nothing resolved, no file fetched."""
    small.page_validators = False
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    read = json.loads((root / ".morgan-like" / "plan.json").read_bytes())["pages"]
    _no_resolution(monkeypatch)
    small.reset_log()
    capsys.readouterr()
    assert main(["mirror", "-i", str(root), "-I", small.url, "-v"]) == 0
    assert "the last plan is used" in capsys.readouterr().out
    pages = _page_gets(small)
    assert sorted(pages) == sorted(f"/simple/{name}/" for name in read)
    assert all(r.status == 200 for r in small.requests)  # sent whole, not 304
    assert [r.path for r in small.requests if r.path.startswith("/files/")] == []


@pytest.mark.parametrize("validators", [True, False])
def test_a_page_whose_serial_alone_moved_still_replays(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validators: bool
) -> None:
    """PyPI moves a page's ``_last-serial`` on events no file shows; the page's bytes
    change (no 304), what the resolution reads of it does not."""
    small.page_validators = validators
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    small.touch("lib")
    _no_resolution(monkeypatch)
    small.reset_log()
    assert mirror(root, small) == 0
    lib = [r for r in small.requests if r.path == "/simple/lib/"]
    assert [r.status for r in lib] == [200]


@pytest.mark.parametrize("validators", [True, False])
@pytest.mark.parametrize("change", ["new file", "yank"])
def test_a_page_changed_in_what_matters_resolves_with_the_pages_already_read(
    small: FakeIndex, tmp_path: Path, dists: Path, validators: bool, change: str
) -> None:
    """The full resolution after a failed check asks for no page a second time."""
    small.page_validators = validators
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    if change == "new file":
        wheel(small, dists, "lib", "3.0")
        picked = "lib-3.0-py3-none-any.whl"
    else:
        small.yank("lib-2.0-py3-none-any.whl")
        picked = "lib-1.0-py3-none-any.whl"
    small.reset_log()
    assert mirror(root, small, "--prune") == 0
    assert (root / "packages" / "lib" / picked).exists()
    pages = _page_gets(small)
    assert pages and len(pages) == len(set(pages))
    plan = json.loads((root / ".morgan-like" / "plan.json").read_bytes())
    assert any(f["file"]["filename"] == picked for f in plan["files"])


@pytest.mark.parametrize("validators", [True, False])
def test_a_replay_of_unchanged_pages_parses_none(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validators: bool
) -> None:
    """Pages whose bytes are the last run's (a 304, or the same body sent whole) are
    compared by the digest of those bytes: none is parsed or serialized again, and the
    kept plan is not written again."""
    small.page_validators = validators
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    kept = root / ".morgan-like" / "plan.json"
    before = kept.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("a page parsed or digested although its bytes are the same")

    for name in ("parse_json_page", "parse_html_page"):
        monkeypatch.setattr(f"morgan_like.index.pagebody.{name}", refuse)
    monkeypatch.setattr("morgan_like.modes.bundle_replay.page_digest", refuse)
    _no_resolution(monkeypatch)
    small.reset_log()
    assert mirror(root, small) == 0
    assert _page_gets(small)
    assert all(r.status == (304 if validators else 200) for r in small.requests)
    assert kept.stat().st_mtime_ns == before


@pytest.mark.parametrize("validators", [True, False])
def test_a_page_behind_a_redirect_replays_until_the_redirect_moves(
    tmp_path: Path, dists: Path, tiny_backend_wheel: Path, validators: bool
) -> None:
    """A page's links are relative to where it was found: the same bytes found at
    another URL (a redirect that now points elsewhere, with the same ETag) list other
    files, so the plan is resolved again; found where they were, they replay."""
    with FakeIndex(relative_urls=True) as here, FakeIndex(relative_urls=True) as there:
        app = make_wheel(dists, "app", "1.0", requires_dist=["lib>=1"])
        lib = make_wheel(dists, "lib", "1.0")
        for index in (here, there):  # the same files in the same order: the same pages
            index.page_validators = validators
            for path in (tiny_backend_wheel, app, lib):
                index.add(path)
        root = tmp_path / "bundle"
        write_config(root, "app =\n")
        assert mirror(root, here) == 0
        here.redirects["/simple/lib/"] = (302, f"{there.url}lib/")
        there.reset_log()
        assert mirror(root, here) == 0
        kept = json.loads((root / ".morgan-like" / "plan.json").read_bytes())
        urls = [f["file"]["url"] for f in kept["files"] if f["project"] == "lib"]
        assert urls and all(url.startswith(there.base_url) for url in urls), urls
        assert [r.path for r in there.requests if r.path.startswith("/simple/")] == [
            "/simple/lib/"
        ], "the full resolution parses the page the check fetched"
        assert mirror(root, here) == 0  # the redirect as last time: replayed
        again = json.loads((root / ".morgan-like" / "plan.json").read_bytes())
        assert again == kept


def test_a_page_gone_since_the_plan_resolves_and_names_it(
    small: FakeIndex, tmp_path: Path, dists: Path, capsys
) -> None:
    """A page the check cannot read falls back to a resolution, which says what is wrong
    (no traceback, no replay of a plan upstream no longer backs)."""
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    small.remove_project("lib")
    capsys.readouterr()
    assert mirror(root, small) != 0
    err = capsys.readouterr().err
    assert "lib" in err and "Traceback" not in err and "unexpected" not in err
    assert not (root / ".morgan-like" / "plan.json").exists()


def test_page_digest_covers_every_field_but_the_serial() -> None:
    """What the resolution reads of a page moves its digest; the serial does not."""
    import dataclasses

    from morgan_like.dists.links import ProjectMeta, ProjectPage, RemoteFile
    from morgan_like.modes.bundle_replay import page_digest

    file = RemoteFile("lib-1.0-py3-none-any.whl", "https://x.invalid/lib-1.0.whl", "ab" * 32)
    page = ProjectPage("lib", [file], ["1.0"], last_serial=7)
    base = page_digest(page)
    assert page_digest(dataclasses.replace(page, last_serial=8)) == base
    changed = {
        "sha256": "cd" * 32,
        "requires_python": ">=3.9",
        "yanked": "broken",
        "core_metadata": "ef" * 32,
        "size": 10,
        "upload_time": "2024-01-01T00:00:00Z",
        "provenance": "https://x.invalid/provenance",
        "url": "https://y.invalid/lib-1.0.whl",
    }
    assert set(changed) | {"filename"} == {f.name for f in dataclasses.fields(RemoteFile)}
    for name, value in changed.items():
        moved = dataclasses.replace(page, files=[dataclasses.replace(file, **{name: value})])
        assert page_digest(moved) != base, name
    assert page_digest(dataclasses.replace(page, meta=ProjectMeta("archived"))) != base
    assert page_digest(dataclasses.replace(page, problems=["skipped x"])) != base
    assert page_digest(dataclasses.replace(page, versions=["1.0", "2.0"])) != base


def _publishes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the run's publishes (the writing of the tree's pages and top-level files)."""
    import morgan_like.tree.publish as publish

    calls: list[int] = []
    real = publish.publish

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(publish, "publish", counting)
    return calls


def test_a_noop_replay_writes_nothing(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replayed plan whose files are all in place, into the tree its last publish
    left, would publish the same bytes: no page is written, nothing published."""
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    before = _tree_bytes(root)

    def refuse(*args, **kwargs):
        raise AssertionError("the tree written although nothing changed")

    monkeypatch.setattr("morgan_like.tree.writer.TreeWriter", refuse)
    monkeypatch.setattr("morgan_like.tree.publish.publish", refuse)
    _no_resolution(monkeypatch)
    assert mirror(root, small) == 0
    assert mirror(root, small) == 0  # the kept plan still says what the tree holds
    assert _tree_bytes(root) == before


@pytest.mark.parametrize("moved", ["prune", "server", "another publish", "a killed publish"])
def test_a_replay_publishes_when_what_it_publishes_moved(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moved: str
) -> None:
    from morgan_like.tree.generations import record_generation
    from morgan_like.tree.state import TreeState

    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    extra: tuple[str, ...] = ()
    if moved == "prune":
        extra = ("--prune",)
    elif moved == "server":
        other = tmp_path / "server.py"
        other.write_text("# another server\n")
        monkeypatch.setattr("morgan_like.modes.serve.server_source", lambda: other)
    else:
        with TreeState(root) as state:
            if moved == "another publish":
                record_generation(state, ["simple/app/index.html"], [])
            else:
                state.note_unsent_all(["simple/app/index.html"], False)
            state.commit()
    publishes = _publishes(monkeypatch)
    _no_resolution(monkeypatch)
    assert mirror(root, small, *extra) == 0
    assert publishes == [1]
    if moved == "server":
        assert (root / "server.py").read_text() == "# another server\n"
    assert mirror(root, small, *extra) == 0
    assert publishes == [1], "published once more, and then as it left the tree"
