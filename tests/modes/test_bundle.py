"""The mirror command against the fake upstream: tree contents, re-runs, faults, diff-file."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

from morgan_like.cli import main
from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page

from ..backends import make_fake_setuptools_wheels
from ..distbuilder import make_sdist, make_wheel
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, wheel


def write_config(root: Path, requirements: str, *pythons: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    blocks = "".join(ini_env_block(f"py{p.replace('.', '')}", p) for p in pythons or ("3.12.1",))
    path = root / "morgan.ini"
    path.write_text(blocks + "[requirements]\n" + requirements)
    return path


def mirror(root: Path, index: FakeIndex, *extra: str) -> int:
    return main(["mirror", "-i", str(root), "-I", index.url, "-q", *extra])


def file_gets(index: FakeIndex) -> list[str]:
    gets = [r.path for r in index.requests if r.method == "GET"]
    return [p for p in gets if p.startswith("/files/") and not p.endswith(".metadata")]


def test_tree_layout_pages_and_manifest(small: FakeIndex, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    assert sorted(p.name for p in (root / "packages" / "lib").iterdir()) == [
        "lib-2.0-py3-none-any.whl",
        "lib-2.0-py3-none-any.whl.metadata",
    ]
    page = parse_json_page(
        "app", (root / "simple/app/index.json").read_bytes(), "http://x/simple/app/"
    )
    assert {f.filename for f in page.files} == {"app-1.0-py3-none-any.whl", "app-1.0.tar.gz"}
    html = parse_html_page(
        "app", (root / "simple/app/index.html").read_text(), "http://x/simple/app/"
    )
    assert all(f.url.startswith("http://x/packages/app/") for f in html.files)
    manifest = json.loads((root / "manifest.json").read_text())["files"]
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    # the manifest vouches for the top-level files; the pages for everything else
    assert set(manifest) == {
        "morgan.ini",
        "server.py",
        "simple/index.html",
        "simple/index.json",
        "envs/py3121/simple/index.html",  # the env's own view (tests/modes/test_bundle_views.py)
        "envs/py3121/simple/index.json",
        "local.json",  # serials for a mirror syncing from the bundle (test_sync_serials.py)
        "local.db.serial",
        "index.html",  # the landing page (tests/tree/test_landing.py)
        "locks/pylock.py3121.toml",  # the env's pins (tests/tree/test_lockfiles.py)
        "locks/py3121.requirements.txt",
        "sbom.cdx.json",  # the inventory (tests/tree/test_sbom.py)
    }
    assert "packages/tinybackend/tinybackend-1.0-py3-none-any.whl" in on_disk  # build requirement
    # only the tree state, the page cache and the lock file stay behind: no temp
    # downloads, no sdist cache
    assert {p.name for p in (root / ".morgan-like").iterdir()} <= {
        "lock",
        "plan.json",
        "landing.json",  # the landing page's summary per project (tree/landing.py)
        "pages.db",
        "pages.db-wal",
        "pages.db-shm",
        "state.db",
        "state.db-wal",
        "state.db-shm",
    }


def test_first_format_tree_is_upgraded_in_place(small: FakeIndex, tmp_path: Path) -> None:
    """A bundle built before the tree state (whole-tree manifest.json, no state.db) is
    upgraded on the next run without fetching or re-hashing anything."""
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    files = {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    old = {
        rel: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for rel, p in files.items()
        if rel != "manifest.json"
    }
    (root / "manifest.json").write_text(
        json.dumps({"format": "morgan-like-manifest/1", "files": old})
    )
    shutil.rmtree(root / ".morgan-like")
    small.reset_log()
    assert mirror(root, small, "--diff-file", str(tmp_path / "diff")) == 0
    assert file_gets(small) == []
    doc = json.loads((root / "manifest.json").read_text())
    assert doc["format"] == "morgan-like-manifest/2"
    assert set(doc["files"]) == {
        "morgan.ini",
        "server.py",
        "simple/index.html",
        "simple/index.json",
        "envs/py3121/simple/index.html",
        "envs/py3121/simple/index.json",
        "local.json",
        "local.db.serial",
        "index.html",
        "locks/pylock.py3121.toml",
        "locks/py3121.requirements.txt",
        "sbom.cdx.json",
    }
    diff = (tmp_path / "diff").read_text().split()
    assert "manifest.json" in diff and not [p for p in diff if p.startswith("packages/")]


def test_rerun_fetches_nothing_new_and_sdist_once(small: FakeIndex, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    gets = file_gets(small)
    assert gets.count("/files/app-1.0.tar.gz") == 1, (
        "the sdist read for build requirements is not fetched twice"
    )
    small.reset_log()
    assert mirror(root, small, "--diff-file", str(tmp_path / "diff")) == 0
    assert file_gets(small) == []
    assert (tmp_path / "diff").read_text() == ""
    # The wheels' metadata comes from the tree's own .metadata files: only pages are
    # asked, each revalidated with its ETag and answered 304 without a body.
    gets = [r for r in small.requests if r.method == "GET"]
    assert gets and all(r.path.startswith("/simple/") for r in gets), gets
    assert all(r.status == 304 for r in gets), [(r.path, r.status) for r in gets]


def test_new_requirement_adds_only_the_delta_to_the_diff(
    small: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    wheel(small, dists, "extra-thing", "1.0")
    write_config(root, "app =\nextra-thing =\n")
    assert mirror(root, small, "--diff-file", str(tmp_path / "diff")) == 0
    diff = (tmp_path / "diff").read_text().split()
    assert "packages/extra-thing/extra_thing-1.0-py3-none-any.whl" in diff
    assert "simple/extra-thing/index.html" in diff and "simple/index.html" in diff
    assert not any(p.startswith("packages/lib/") for p in diff)


def test_prune_removes_and_records(small: FakeIndex, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    write_config(root, "lib =\n")
    assert mirror(root, small, "--prune", "--diff-file", str(tmp_path / "diff")) == 0
    removed = (tmp_path / "diff.removed").read_text().split()
    assert "packages/app/app-1.0-py3-none-any.whl" in removed
    assert not (root / "simple" / "app").exists()
    assert "app/" not in (root / "simple/index.html").read_text()


def test_corrupt_file_is_reported_and_never_indexed(
    small: FakeIndex, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    small.corrupt("lib-2.0-py3-none-any.whl")
    assert mirror(root, small) == 1
    err = capsys.readouterr().err
    assert "lib-2.0-py3-none-any.whl" in err and "sha256" in err
    assert not (root / "packages/lib/lib-2.0-py3-none-any.whl").exists()
    assert "lib-2.0" not in (root / "simple/lib/index.html").read_text()
    assert (root / "packages/app/app-1.0-py3-none-any.whl").exists()


def test_truncated_download_is_retried(small: FakeIndex, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    small.truncate("lib-2.0-py3-none-any.whl", times=1)
    small.fail("app-1.0-py3-none-any.whl", times=1, status=503)
    assert mirror(root, small) == 0
    assert (root / "packages/lib/lib-2.0-py3-none-any.whl").exists()


def test_dry_run_downloads_only_metadata(small: FakeIndex, tmp_path: Path, capsys) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert main(["mirror", "-i", str(root), "-I", small.url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lib-2.0-py3-none-any.whl" in out and "total:" in out
    assert file_gets(small) == []
    assert not (root / "packages").exists()


def test_bad_config_downloads_nothing(small: FakeIndex, tmp_path: Path, capsys) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app = >>>1\n")
    assert mirror(root, small) == 2
    assert "morgan.ini" in capsys.readouterr().err
    assert small.requests == []


def test_legacy_sdist_brings_setuptools_and_wheel(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    fake_index.add(
        make_sdist(
            dists,
            "oldstyle",
            "1.0",
            build_requires=None,
            pkg_info_metadata_version="2.1",
            requires_dist=["lib"],  # from its setup.py, through the metadata hook
            include_requires_dist_in_pkg_info=False,
        )
    )
    for path in make_fake_setuptools_wheels(dists):
        fake_index.add(path)
    fake_index.add(make_wheel(dists, "lib", "1.0"))
    root = tmp_path / "bundle"
    write_config(root, "oldstyle =\n")
    assert mirror(root, fake_index) == 0
    for name in ("setuptools", "wheel", "lib", "oldstyle"):
        assert (root / "packages" / name).is_dir(), name


def test_all_versions_and_all_wheels(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    for version in ("1.0", "1.1", "2.0"):
        wheel(fake_index, dists, "multi", version)
    wheel(fake_index, dists, "native", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    wheel(fake_index, dists, "native", "1.0", tag="cp38-abi3-manylinux_2_17_x86_64")
    root = tmp_path / "bundle"
    write_config(root, "multi = >=1.1\nnative =\n")
    assert mirror(root, fake_index, "-a", "-W") == 0
    assert len(list((root / "packages/multi").glob("*.whl"))) == 2
    assert len(list((root / "packages/native").glob("*.whl"))) == 2


def test_multi_line_value_mirrors_each_line(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """Morgan's multi-line value: each line is its own request, even when they conflict."""
    for version in ("1.26.0", "2.2.0"):
        wheel(fake_index, dists, "urllib3", version)
    root = tmp_path / "bundle"
    write_config(root, "urllib3 = <1.27\n    >=2\n")
    assert mirror(root, fake_index) == 0
    names = sorted(p.name for p in (root / "packages/urllib3").glob("*.whl"))
    assert names == ["urllib3-1.26.0-py3-none-any.whl", "urllib3-2.2.0-py3-none-any.whl"]


def test_a_failing_env_leaves_no_stray_downloads(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """Envs that resolved start downloading; if another env fails, those files are taken back."""
    wheel(fake_index, dists, "modern", "1.0", requires_python=">=3.10")
    root = tmp_path / "bundle"
    write_config(root, "modern =\n", "3.12.1", "3.7.16")
    assert mirror(root, fake_index) == 1
    assert not list(root.glob("packages/**/*.whl"))
    assert not (root / "simple").exists()


def test_pages_without_validators_are_fetched_again(small: FakeIndex, tmp_path: Path) -> None:
    small.page_validators = False
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    small.reset_log()
    assert mirror(root, small) == 0
    gets = [r for r in small.requests if r.method == "GET"]
    assert gets and all(r.status == 200 and "If-None-Match" not in r.headers for r in gets)
    # A page that changed upstream is read afresh even when it was kept.
    small.page_validators = True
    assert mirror(root, small) == 0
    wheel(small, tmp_path / "more", "lib", "3.0")
    assert mirror(root, small) == 0
    assert "lib-3.0-py3-none-any.whl" in (root / "simple" / "lib" / "index.html").read_text()


def test_the_sbom_takes_sdist_licences_from_what_the_run_read(
    small: FakeIndex, tmp_path: Path, monkeypatch
) -> None:
    """The run reads each sdist once (dists.sdistread, for its metadata and build
    requirements): the SBOM takes its licence from that read, not from another walk
    of the whole archive."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an sdist read again for the SBOM")

    monkeypatch.setattr("morgan_like.tree.licences.read_archive", refuse)
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    doc = json.loads((root / "sbom.cdx.json").read_text())
    (sdist,) = [c for c in doc["components"] if c["bom-ref"].endswith("/app-1.0.tar.gz")]
    said = [p["value"] for p in sdist["properties"] if p["name"] == "morgan-like:license-from"]
    assert said == ["none"]  # a static PKG-INFO that names no licence


def test_a_resolved_run_prepares_its_end_while_the_files_arrive(
    small: FakeIndex, tmp_path: Path, monkeypatch, capsys
) -> None:
    """After resolving, the SBOM's library is imported and the pages read are digested
    in the background (not after the last download); a failure there is no error, the
    end does it again; a replayed plan needs neither."""
    from types import SimpleNamespace

    from morgan_like.modes import bundle

    started: list[str] = []
    real = bundle.TreeBundleRun._ahead_of_the_end

    class Broken:
        def page_names(self) -> list[str]:
            raise RuntimeError("digests failed ahead")

    def recorded(self: bundle.TreeBundleRun) -> None:
        started.append("ahead")
        real(SimpleNamespace(finder=Broken()))  # type: ignore[arg-type]
        real(self)

    monkeypatch.setattr(bundle.TreeBundleRun, "_ahead_of_the_end", recorded)
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    for thread in threading.enumerate():
        if thread.name == "end-ahead":
            thread.join()
    assert started == ["ahead"]
    assert "digests failed ahead" not in capsys.readouterr().err
    assert (root / ".morgan-like" / "plan.json").exists()
    assert mirror(root, small) == 0  # replayed
    assert started == ["ahead"]


def test_a_rerun_asks_the_state_once_for_the_files_already_present(
    small: FakeIndex, tmp_path: Path, monkeypatch
) -> None:
    """Every file of the plan the tree already has, verified, is known from one state
    query (TreeState.verified_all): none waits for a download thread to ask alone."""
    from morgan_like.fetch.download import Downloader
    from morgan_like.tree.state import TreeState

    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    one_by_one: list[str] = []
    real = Downloader._one

    def one(self: Downloader, file: object, relpath: str) -> object:
        one_by_one.append(relpath)
        return real(self, file, relpath)  # type: ignore[arg-type]

    batches: list[int] = []
    verified_all = TreeState.verified_all

    def counted(self: TreeState, wanted: list) -> dict:
        batches.append(len(wanted))
        return verified_all(self, wanted)

    monkeypatch.setattr(Downloader, "_one", one)
    monkeypatch.setattr(TreeState, "verified_all", counted)
    small.reset_log()
    assert mirror(root, small) == 0
    assert one_by_one == [] and file_gets(small) == []
    files = [p for p in (root / "packages").rglob("*") if p.is_file() and p.suffix != ".metadata"]
    assert batches and max(batches) == len(files)
