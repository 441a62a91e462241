"""A synced tree is a trustworthy upstream: serials that move, metadata upstream left out,
Warehouse JSON's info, redirects to other hosts, and summaries that say what changed.

The upstream here is a plain PEP 503 index like pypiserver (``serials = False``,
``sizes = False``, HTML only): no ``_last-serial``, no ``<!--SERIAL n-->``, no
``X-PyPI-Last-Serial``, no sizes.  A second sync reads the first tree through its
own server.py, as another mirror would (bandersnatch at the end of the chain is in
test_sync_bandersnatch.py).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from morgan_like.modes.sync import SyncOptions, run_sync
from morgan_like.output import Reporter

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from ..server_support import SubprocessServer
from .sync_support import assert_matches_upstream, page, sync

SUMMARY = re.compile(r"(\d+) projects added, (\d+) updated, (\d+) removed")


def _plain(index: FakeIndex) -> FakeIndex:
    """The index as pypiserver serves it: HTML only, no serials, no sizes."""
    index.json = False
    index.serials = False
    index.sizes = False
    return index


def _serials(tree: Path, warehouse: bool = True) -> dict[str, int]:
    """Every serial the tree publishes for each project, checked to agree (a bundle has no
    Warehouse JSON)."""
    root = json.loads((tree / "simple/index.json").read_bytes())
    local = json.loads((tree / "local.json").read_bytes())
    found = {}
    for entry in root["projects"]:
        name, serial = entry["name"], entry["_last-serial"]
        assert local[name] == serial
        assert page(tree, name)["meta"]["_last-serial"] == serial
        if warehouse:
            assert json.loads((tree / "json" / name).read_bytes())["last_serial"] == serial
        html = (tree / "simple" / name / "index.html").read_text()
        assert html.rstrip().endswith(f"<!--SERIAL {serial}-->")
        found[name] = serial
    assert int((tree / "local.db.serial").read_text()) == max(found.values())
    assert root["meta"]["_last-serial"] == max(found.values())
    return found


def _run(tree: Path, url: str, **options) -> tuple[int, str]:
    """run_sync with its summary captured (stdout and warnings)."""
    out = io.StringIO()
    rc = run_sync(SyncOptions(index_path=tree, index_url=url, **options), Reporter(1, out))
    return rc, out.getvalue()


@pytest.fixture
def plain(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    wheel(fake_index, dists, "lib", "1.0")
    fake_index.dists = dists  # type: ignore[attr-defined]
    return _plain(fake_index)


def test_a_tree_of_an_upstream_without_serials_gives_its_own(
    plain: FakeIndex, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    assert sync(tree, plain).rc == 0
    first = _serials(tree)
    assert all(serial > 0 for serial in first.values()) and len(set(first.values())) == 2

    again = sync(tree, plain)  # nothing changed upstream: no serial moves, nothing written
    assert (again.rc, again.changed, again.removed) == (0, [], [])
    assert _serials(tree) == first

    sdist(plain, plain.dists, "lib", "1.0")  # type: ignore[attr-defined]
    run = sync(tree, plain)
    assert "packages/lib/lib-1.0.tar.gz" in run.changed
    moved = _serials(tree)
    assert moved["app"] == first["app"]
    assert moved["lib"] > max(first.values())


def test_a_second_mirror_sees_every_change_through_the_first(
    plain: FakeIndex, tmp_path: Path
) -> None:
    """Upstream without serials -> tree A -> A's server.py -> tree B, through a change."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert sync(a, plain).rc == 0
    with SubprocessServer(a) as server:
        url = f"http://127.0.0.1:{server.port}/simple/"
        rc, out = _run(b, url)
        assert rc == 0 and "(simple)" in out  # A's root index carries serials
        assert _serials(b) == _serials(a)
        sdist(plain, plain.dists, "lib", "1.0")  # type: ignore[attr-defined]
        wheel(plain, plain.dists, "lib", "2.0")  # type: ignore[attr-defined]
        assert sync(a, plain).rc == 0
        rc, out = _run(b, url)
        assert rc == 0
        assert SUMMARY.search(out).groups() == ("0", "1", "0"), out  # type: ignore[union-attr]
    for name in ("lib-1.0.tar.gz", "lib-2.0-py3-none-any.whl"):
        assert (b / "packages/lib" / name).read_bytes() == (a / "packages/lib" / name).read_bytes()
    assert _serials(b) == _serials(a)


def test_requires_python_and_size_come_from_the_files(
    plain: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """The upstream gives neither requires-python nor sizes: our pages carry both, from the
    wheel's METADATA and a static PKG-INFO; a dynamic one is not guessed."""
    plain.add(make := _wheel(dists, "py38", ">=3.8"), requires_python=None)
    plain.add(_sdist(dists, "py38", ">=3.8"), requires_python=None)
    plain.add(_sdist(dists, "guess", ">=3.9", dynamic=True), requires_python=None)
    tree = tmp_path / "tree"
    rc, out = _run(tree, plain.url, dry_run=True)
    assert "0 B" not in out and "size unknown" in out
    assert sync(tree, plain).rc == 0
    files = {f["filename"]: f for name in ("py38", "guess") for f in page(tree, name)["files"]}
    assert files[make.name]["requires-python"] == ">=3.8"
    assert files["py38-1.0.tar.gz"]["requires-python"] == ">=3.8"
    assert "requires-python" not in files["guess-1.0.tar.gz"]
    for name, entry in files.items():
        project = name.split("-")[0]
        assert entry["size"] == (tree / "packages" / project / name).stat().st_size
    html = (tree / "simple/py38/index.html").read_text()
    assert 'data-requires-python="&gt;=3.8"' in html and "data-size=" in html


def _wheel(dists: Path, name: str, requires_python: str) -> Path:
    from ..distbuilder import make_wheel

    return make_wheel(dists, name, "1.0", requires_python=requires_python)


def _sdist(dists: Path, name: str, requires_python: str, dynamic: bool = False) -> Path:
    from ..distbuilder import make_sdist

    return make_sdist(
        dists,
        name,
        "1.0",
        requires_python=requires_python,
        dynamic=["Requires-Python"] if dynamic else (),
    )


def test_warehouse_info_from_the_newest_release_metadata(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    extra = (
        "Summary: A library\nLicense: MIT\nClassifier: Programming Language :: Python :: 3\n"
        "Project-URL: Source, https://example.org/lib\n"
    )
    wheel(fake_index, dists, "lib", "1.0", extra_metadata="Summary: old\n")
    wheel(fake_index, dists, "lib", "2.0", requires_dist=["dep>=1"], extra_metadata=extra)
    sdist(fake_index, dists, "lib", "2.0")
    sdist(fake_index, dists, "only", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    doc = json.loads((tree / "json/lib").read_bytes())
    info = doc["info"]
    assert info["version"] == "2.0" and info["summary"] == "A library"
    assert info["requires_dist"] == ["dep>=1"]
    assert info["license"] == "MIT"
    assert info["classifiers"] == ["Programming Language :: Python :: 3"]
    assert info["project_urls"] == {"Source": "https://example.org/lib"}
    assert sorted(doc["releases"]) == ["1.0", "2.0"] and len(doc["releases"]["2.0"]) == 2
    only = json.loads((tree / "json/only").read_bytes())["info"]
    assert "summary" not in only and only["version"] == "1.0"  # sdist only: not guessed


def test_names_only_resync_counts_what_changed(
    plain: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No serials: every page is read each run, but a run that changed nothing says so;
    a name the root lists whose page is 404 is listed-but-missing, never removed; and auto
    remembers that only the names work, asking the root once."""
    plain.fail("/simple/ghost/", times=1000, status=404)
    plain.add_project("ghost")
    tree = tmp_path / "tree"
    rc, out = _run(tree, plain.url)
    err = capsys.readouterr().err
    assert rc == 0
    assert SUMMARY.search(out).groups() == ("2", "0", "0"), out  # type: ignore[union-attr]
    assert "listed by upstream's root have no page there (404): ghost" in err
    first = [r.path for r in plain.requests if not r.path.startswith(("/simple/", "/files/"))]
    assert [r.path for r in plain.requests].count("/simple/") == 1  # simple and names share it
    assert first == ["/local.json", "/pypi"]
    plain.reset_log()
    rc, out = _run(tree, plain.url)
    assert rc == 0
    assert SUMMARY.search(out).groups() == ("0", "0", "0"), out  # type: ignore[union-attr]
    assert "2 unchanged of 3 listed" in out
    paths = [r.path for r in plain.requests]
    assert paths.count("/simple/") == 1 and "/local.json" not in paths and "/pypi" not in paths


def test_names_source_matches_upstream_through_changes(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """--serial-source names against an upstream that has serials: the tree still matches."""
    wheel(fake_index, dists, "app", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, "--serial-source", "names").rc == 0
    wheel(fake_index, dists, "app", "2.0")
    assert sync(tree, fake_index, "--serial-source", "names").rc == 0
    assert_matches_upstream(tree, fake_index)


def test_redirects_to_another_host(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pypiserver answers a project it lacks with a 303 to another index: warned once per
    host by default; refused with [sync] cross-host-redirects = false."""
    wheel(fake_index, dists, "app", "1.0")
    with FakeIndex() as other:
        other.serials = False  # its serials are not upstream's: never "stale"
        for name in ("ghost", "spook"):
            wheel(other, dists, name, "1.0")
            fake_index.add_project(name)
            location = f"http://localhost:{other.port}/simple/{name}/"
            fake_index.redirects[f"/simple/{name}/"] = (303, location)
        tree = tmp_path / "tree"
        rc, _ = _run(tree, fake_index.url)
        err = capsys.readouterr().err
        assert rc == 0, err
        assert (tree / "packages/ghost/ghost-1.0-py3-none-any.whl").is_file()
        assert err.count("redirects to another host, localhost") == 1, err
        config = tmp_path / "sync.ini"
        config.write_text("[sync]\ncross-host-redirects = false\n")
        fake_index.add(wheel(other, dists, "ghost", "2.0"))  # ghost's serial moves
        other.reset_log()
        rc, out = _run(tree, fake_index.url, config_path=config)
        err = capsys.readouterr().err
        assert rc == 1
        assert f"GET {fake_index.url}ghost/: redirected to another host" in err, err
        assert not [r for r in other.requests if r.path.startswith("/simple/ghost")]


def test_a_bundle_is_an_upstream_with_serials_too(
    plain: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """A `mirror` tree publishes the same serials, local.json and local.db.serial: a sync
    from it reads the serial list, not every page, and sees the bundle change."""
    from .test_bundle import mirror, write_config

    bundle, b = tmp_path / "bundle", tmp_path / "b"
    write_config(bundle, "app =\n")
    assert mirror(bundle, plain) == 0
    first = _serials(bundle, warehouse=False)
    assert set(first) == {"app", "lib"} and min(first.values()) > 0
    assert mirror(bundle, plain) == 0
    assert _serials(bundle, warehouse=False) == first  # a re-run that changes nothing moves nothing
    with SubprocessServer(bundle) as server:
        url = f"http://127.0.0.1:{server.port}/simple/"
        rc, out = _run(b, url)
        assert rc == 0 and "(simple)" in out
        wheel(plain, dists, "lib", "2.0")
        assert mirror(bundle, plain) == 0
        assert _serials(bundle, warehouse=False)["lib"] > max(first.values())
        rc, out = _run(b, url)
        assert rc == 0 and (b / "packages/lib/lib-2.0-py3-none-any.whl").is_file()
        assert SUMMARY.search(out).groups() == ("0", "1", "0"), out  # type: ignore[union-attr]


def test_a_bundle_summary_counts_sizes_upstream_left_out(
    plain: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from morgan_like.cli import main

    from .test_bundle import write_config

    bundle = tmp_path / "bundle"
    write_config(bundle, "app =\n")
    assert main(["mirror", "-i", str(bundle), "-I", plain.url]) == 0
    table = capsys.readouterr().out.split("Bundle", 1)[1]
    row = next(line for line in table.splitlines() if "py3121" in line)
    assert "0 B" not in row and "KiB" in row, table


def test_mirror_refuses_a_cross_host_redirect_with_the_flag(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-cross-host-redirects on the command line, as the config key does: a bundle
    meant to come from one index never takes a project from another."""
    from morgan_like.cli import main

    from .test_bundle import mirror, write_config

    with FakeIndex() as other:
        wheel(other, dists, "ghost", "1.0")
        fake_index.add_project("ghost")
        fake_index.redirects["/simple/ghost/"] = (
            303,
            f"http://localhost:{other.port}/simple/ghost/",
        )
        bundle = tmp_path / "bundle"
        write_config(bundle, "ghost =\n")
        assert mirror(bundle, fake_index, "--no-cross-host-redirects") != 0
        err = capsys.readouterr().err
        assert "redirected to another host" in err, err
        assert "Traceback" not in err
        assert not [r for r in other.requests if r.path.startswith("/simple/ghost")]
        # Without it: followed, with a warning.
        assert main(["mirror", "-i", str(bundle), "-I", fake_index.url]) == 0
        assert "redirects to another host, localhost" in capsys.readouterr().err
