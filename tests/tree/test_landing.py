"""tree.landing: the landing page publish writes at the tree's root, and server.py's ``/``.

The page's data is read back from its JSON block (what the page's script renders);
the script itself is exercised in a real browser by tests/test_landing_browser.py.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.dists.links import RemoteFile
from morgan_like.modes.serve import server_source
from morgan_like.tree import readback
from morgan_like.tree.landing import LANDING_CACHE
from morgan_like.tree.landing_html import (
    EnvColumn,
    LandingData,
    ProjectRow,
    render_landing,
)
from morgan_like.tree.layout import LANDING_HTML, package_relpath
from morgan_like.tree.publish import Published, publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

from ..server_support import InProcessServer, load_server_module

_DATA = re.compile(r'<script type="application/json" id="data">(.*?)</script>', re.S)
_UPDATED = re.compile(r'<meta name="morgan-like:updated" content="([^"]+)">')

# project -> filename -> bytes
Files = Mapping[str, Mapping[str, bytes]]

ALPHA_BETA: Files = {
    "alpha": {
        "alpha-1.0.tar.gz": b"a" * 100,
        "alpha-2.0.tar.gz": b"b" * 200,
        "alpha-2.0-py3-none-any.whl": b"c" * 300,
    },
    "Beta": {"beta-0.1-py3-none-any.whl": b"d" * 50},
}


def _place(root: Path, project: str, filename: str, data: bytes) -> RemoteFile:
    path = root / package_relpath(project, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return RemoteFile(filename, f"https://upstream.invalid/{filename}")


def run_publish(
    root: Path,
    projects: Files | None = None,
    *,
    views: list[EnvView] | None = None,
    remove: tuple[str, ...] = (),
) -> Published:
    """One session: write these projects (each page: exactly these files), remove those."""
    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for project, files in (projects or {}).items():
            placed = [_place(root, project, name, data) for name, data in files.items()]
            writer.write_project(project, placed, replace=True)
        for project in remove:
            writer.remove_project(project)
        return publish(writer, server=b"# server\n", views=views)


def page_data(root: Path) -> dict:
    found = _DATA.search((root / LANDING_HTML).read_text("utf-8"))
    assert found is not None
    return json.loads(found.group(1))


def rows(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """name -> (newest, releases, files, bytes), as the page's script reads its columns."""
    doc = page_data(root)
    if not doc["count"]:
        return {}
    columns = zip(
        doc["names"].split("\n"),
        doc["newest"].split("\n"),
        doc["releases"].split(","),
        doc["files"].split(","),
        doc["sizes"].split(","),
    )
    return {n: (v, int(r), int(f), int(s)) for n, v, r, f, s in columns}


def env_versions(root: Path) -> dict[str, dict[str, str]]:
    doc = page_data(root)
    names = doc["names"].split("\n")
    return {
        e["name"]: {n: v for n, v in zip(names, e["versions"].split("\n")) if v}
        for e in doc["envs"]
    }


def updated(root: Path) -> str:
    found = _UPDATED.search((root / LANDING_HTML).read_text("utf-8"))
    assert found is not None
    return found.group(1)


def test_publish_writes_the_landing_page_of_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    run_publish(root, ALPHA_BETA)
    assert rows(root) == {"alpha": ("2.0", 2, 3, 600), "beta": ("0.1", 1, 1, 50)}
    text = (root / LANDING_HTML).read_text("utf-8")
    assert "2 projects, 4 files, 650 B" in text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", updated(root))
    # a top-level file like the others: the manifest vouches for it
    manifest = json.loads((root / "manifest.json").read_text())
    assert LANDING_HTML in manifest["files"]
    # no asset from anywhere: every link relative, no external script, style or font
    for attr in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert "://" not in attr and not attr.startswith("/"), attr
    assert "<link" not in text and "url(" not in text and "@import" not in text
    assert text.count("<script") == 2 and " src=" not in text


def test_each_env_view_shows_its_own_versions(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    views = [
        EnvView("py312", {"alpha": frozenset({"alpha-2.0-py3-none-any.whl"})}),
        EnvView(
            "py38",
            {
                "alpha": frozenset({"alpha-1.0.tar.gz", "alpha-2.0.tar.gz"}),
                "beta": frozenset({"beta-0.1-py3-none-any.whl"}),
                "gone": frozenset({"gone-1.0.tar.gz"}),  # no such file: not shown
            },
        ),
    ]
    run_publish(root, ALPHA_BETA, views=views)
    assert env_versions(root) == {
        "py312": {"alpha": "2.0"},
        "py38": {"alpha": "2.0 1.0", "beta": "0.1"},
    }
    text = (root / LANDING_HTML).read_text("utf-8")
    assert '<a href="envs/py38/simple/">envs/py38/simple/</a>' in text
    assert '<td class="n">2</td><td class="n">3</td><td class="n">350 B</td>' in text
    assert '<option value="py312">' in text
    # a later publish without views (a sync of the same tree) keeps the env columns
    run_publish(root, {"beta": {"beta-0.2-py3-none-any.whl": b"e"}})
    assert env_versions(root)["py312"] == {"alpha": "2.0"}
    # and one whose views are gone drops them
    run_publish(root, views=[])
    assert page_data(root)["envs"] == []


def _many(count: int) -> dict[str, dict[str, bytes]]:
    return {f"p{i:04d}": {f"p{i:04d}-1.0.tar.gz": b"x" * i} for i in range(count)}


def _pages_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The projects whose own page a publish reads back (parses) from here on, in order."""
    read: list[str] = []
    real = readback.OwnPages._parse

    def counting(self: readback.OwnPages, project: str):  # type: ignore[no-untyped-def]
        read.append(project)
        return real(self, project)

    monkeypatch.setattr(readback.OwnPages, "_parse", counting)
    return read


def test_a_publish_reads_again_only_the_pages_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary kept in .morgan-like/landing.json: a no-op publish reads no page and
    leaves index.html untouched; a change reads its own project's page only."""
    root = tmp_path / "tree"
    run_publish(root, _many(40))
    before = (root / LANDING_HTML).stat().st_mtime_ns
    read = _pages_read(monkeypatch)
    done = run_publish(root)
    assert read == [] and done.changed == ()
    assert (root / LANDING_HTML).stat().st_mtime_ns == before
    done = run_publish(root, {"p0007": {"p0007-2.0.tar.gz": b"new"}}, remove=("p0009",))
    assert set(read) <= {"p0007", "p0009"}
    assert LANDING_HTML in done.changed
    shown = rows(root)
    assert shown["p0007"] == ("2.0", 1, 1, 3) and "p0009" not in shown and len(shown) == 39


def test_the_time_moves_only_with_the_content(tmp_path: Path) -> None:
    """A page whose content is unchanged keeps its time (a state rebuilt from the tree, a
    summary lost: rebuilt from the pages, same bytes); a change gives it a new one."""
    root = tmp_path / "tree"
    run_publish(root, ALPHA_BETA)
    page = root / LANDING_HTML
    old = "2001-02-03T04:05:06Z"
    page.write_text(page.read_text().replace(updated(root), old))
    (root / LANDING_CACHE).unlink()
    run_publish(root)  # the summary rebuilt from the pages: the same content, its time kept
    assert updated(root) == old and rows(root)["alpha"] == ("2.0", 2, 3, 600)
    shutil.rmtree(root / ".morgan-like")  # a state rebuilt from the tree: nothing changes
    assert run_publish(root).changed == () and updated(root) == old
    run_publish(root, {"beta": {"beta-0.2-py3-none-any.whl": b"e"}})
    assert updated(root) != old and rows(root)["beta"] == ("0.2", 1, 1, 1)


def test_a_summary_not_matching_the_page_is_rebuilt(tmp_path: Path) -> None:
    """A summary that vouches for another page (an import brought a new one, a killed run)
    is not trusted: the projects come from their pages again."""
    root = tmp_path / "tree"
    run_publish(root, ALPHA_BETA)
    cache = root / LANDING_CACHE
    doc = json.loads(cache.read_text())
    doc["rows"] = [["alpha", "9.9", 1, 1, 1]]
    cache.write_text(json.dumps(doc))
    page = root / LANDING_HTML
    page.write_bytes(page.read_bytes() + b"\n")  # another page than the one it describes
    run_publish(root, {"beta": {"beta-0.2-py3-none-any.whl": b"e"}})
    assert rows(root) == {"alpha": ("2.0", 2, 3, 600), "beta": ("0.2", 1, 1, 1)}


def test_a_thousand_project_tree_page_stays_under_one_megabyte(tmp_path: Path) -> None:
    """Size, not time: a real 1,000-project publish, and the same page rendered with long
    names, many releases and three env columns."""
    root = tmp_path / "tree"
    run_publish(root, _many(1000))
    assert len(rows(root)) == 1000
    assert (root / LANDING_HTML).stat().st_size < 1_000_000
    names = [f"some-rather-long-project-name-{i:05d}" for i in range(1000)]
    envs = [
        EnvColumn(f"env{j}", 1000, 3000, 10**9, {n: "12.3.4 12.3.3" for n in names})
        for j in range(3)
    ]
    data = LandingData(
        tuple(ProjectRow(n, "2024.12.31rc1", 250, 2500, 123_456_789_012) for n in names),
        tuple(envs),
        "2026-01-01T00:00:00Z",
    )
    assert len(render_landing(data)) < 1_000_000


def test_no_value_can_close_the_script_or_add_markup() -> None:
    hostile = "</script><b>x</b><!--"
    data = LandingData(
        (ProjectRow(hostile, hostile, 1, 1, 1),),
        (EnvColumn("e", 1, 1, 1, {hostile: hostile}),),
        "2026-01-01T00:00:00Z",
    )
    text = render_landing(data).decode()
    assert text.count("</script>") == 2 and "<b>" not in text and "<!--" not in text
    found = _DATA.search(text)
    assert found is not None and json.loads(found.group(1))["names"] == hostile


# --- server.py ----------------------------------------------------------------------------


def _get(srv: InProcessServer, method: str, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def test_server_shows_the_landing_page_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    run_publish(root, ALPHA_BETA)
    page = (root / LANDING_HTML).read_bytes()
    with InProcessServer(root) as srv:
        for path in ("/", "/index.html"):
            resp, body = _get(srv, "GET", path)
            assert resp.status == 200 and body == page
            assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
            etag = resp.getheader("ETag")
            resp, body = _get(srv, "GET", path, {"If-None-Match": etag})
            assert resp.status == 304 and body == b""
        resp, body = _get(srv, "HEAD", "/")
        assert resp.status == 200 and body == b""
        assert _get(srv, "GET", "/index.html/")[0].status != 200
        # a tree without one (an older tree, or a copy without it): / goes to /simple/
        (root / LANDING_HTML).unlink()
        resp, _ = _get(srv, "GET", "/?x=1")
        assert resp.status == 301 and resp.getheader("Location") == "/simple/?x=1"
        assert _get(srv, "GET", "/index.html")[0].status == 404


def test_verify_checks_the_page_and_an_import_carries_it(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for project, files in ALPHA_BETA.items():
            placed = [_place(root, project, name, data) for name, data in files.items()]
            writer.write_project(project, placed)
        publish(writer, server=server_source().read_bytes())
    server = load_server_module()
    out, err = io.StringIO(), io.StringIO()
    assert server.verify(str(root), out, err) == 0, out.getvalue()
    # carried by an export into an empty copy, byte for byte
    assert (
        main(
            ["export", "-i", str(root), "-o", str(tmp_path / "out"), "--site", "s", "-q", "--full"]
        )
        == 0
    )
    copy = tmp_path / "copy"
    copy.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(root / "server.py"),
            "--import",
            str(tmp_path / "out"),
            "-i",
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (copy / LANDING_HTML).read_bytes() == (root / LANDING_HTML).read_bytes()
    # a page changed by hand is a problem --verify names
    page = root / LANDING_HTML
    page.write_bytes(page.read_bytes().replace(b"Python package index", b"Python package indeX"))
    out = io.StringIO()
    assert server.verify(str(root), out, io.StringIO()) == 1
    assert re.search(rf"^CORRUPT +{LANDING_HTML} ", out.getvalue(), re.M), out.getvalue()


def test_a_first_publish_reads_back_no_page_the_writer_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project's row comes from what the writer rendered its pages from in this run; a
    page is read only for a project this run did not write (a killed run's)."""
    root = tmp_path / "tree"
    with TreeState(root) as state:  # a run killed before its publish
        writer = TreeWriter(root, state)
        for project, files in ALPHA_BETA.items():
            placed = [_place(root, project, name, data) for name, data in files.items()]
            writer.write_project(project, placed, replace=True)
        writer.batch.flush()
        state.commit()
    read = _pages_read(monkeypatch)
    run_publish(root, {**_many(30), "alpha": ALPHA_BETA["alpha"]})
    assert read == ["beta"]
    expected = {f"p{i:04d}": ("1.0", 1, 1, i) for i in range(30)}
    assert rows(root) == {**expected, "alpha": ("2.0", 2, 3, 600), "beta": ("0.1", 1, 1, 50)}
    read.clear()
    (root / LANDING_CACHE).unlink()  # rebuilt from the pages: the same page
    page = (root / LANDING_HTML).read_bytes()
    run_publish(root, views=[])
    assert len(set(read)) == 32 and (root / LANDING_HTML).read_bytes() == page
