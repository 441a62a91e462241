"""server.py and per-env index views: ``envs/NAME/simple/`` beside the union ``simple/``.

A view lists a subset of the union's files, with links one level deeper
(``../../../../packages/<project>/<file>``) into the shared ``packages/``.  Its two root
pages are top-level files (listed by manifest.json), its project pages vouch for
themselves like the union's.  The trees are built by hand (build_tree() of
test_verify.py, pages from the writer's renderers in morgan_like.tree.pages), then the
views are added here, so each test controls every byte.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import platform
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest

from morgan_like.tree import pages
from morgan_like.tree.pages import FileEntry

from ..clients import PIP_ACCEPT, UV_ACCEPT
from ..server_support import InProcessServer, SubprocessServer, load_server_module, raw_request
from .test_verify import (
    PY36,
    SERIAL,
    UPLOAD_TIME,
    HandFile,
    build_tree,
    lines,
    rewrite,
    run_verify,
    verify_in_process,
)

JSON = "application/vnd.pypi.simple.v1+json"
V1HTML = "application/vnd.pypi.simple.v1+html"
TEXT = "text/html; charset=utf-8"
ENV = "py311"
WIN = "Win.x64-3_12"  # exact case, dots, underscores: not normalized


# ---------------------------------------------------------------------------------------
# Trees with views
# ---------------------------------------------------------------------------------------


def view_entries(files: list[HandFile]) -> list[FileEntry]:
    return [
        FileEntry(
            filename=f.filename,
            url="../../../../" + f.relpath,
            sha256=f.sha256,
            size=f.size,
            metadata_sha256=f.metadata_sha256,
            upload_time=UPLOAD_TIME,
        )
        for f in files
    ]


def write_view_page(root: Path, env: str, project: str, files: list[HandFile]) -> None:
    pagedir = root / "envs" / env / "simple" / project
    pagedir.mkdir(parents=True, exist_ok=True)
    entries = view_entries(files)
    (pagedir / "index.json").write_bytes(pages.render_project_json(project, entries, SERIAL))
    (pagedir / "index.html").write_bytes(pages.render_project_html(project, entries, SERIAL))


def write_view_roots(root: Path, env: str, projects: list[str]) -> list[str]:
    base = root / "envs" / env / "simple"
    base.mkdir(parents=True, exist_ok=True)
    (base / "index.html").write_bytes(pages.render_root_html(projects))
    (base / "index.json").write_bytes(
        pages.render_root_json([(p, SERIAL) for p in projects], SERIAL)
    )
    return [f"envs/{env}/simple/index.html", f"envs/{env}/simple/index.json"]


def add_to_manifest(root: Path, relpaths: list[str]) -> None:
    """List (or re-hash) top-level files in manifest.json, as the writer does."""
    path = root / "manifest.json"
    doc = json.loads(path.read_text("utf-8"))
    for rel in relpaths:
        data = (root / rel).read_bytes()
        doc["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    path.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")


def add_view(root: Path, env: str, files: list[HandFile], *, manifest: bool = True) -> None:
    """envs/<env>/simple/: a root page pair and one page pair per project of ``files``."""
    by_project: dict[str, list[HandFile]] = {}
    for f in files:
        by_project.setdefault(f.project, []).append(f)
    for project, mine in by_project.items():
        write_view_page(root, env, project, mine)
    roots = write_view_roots(root, env, sorted(by_project))
    if manifest:
        add_to_manifest(root, roots)


def build_views_tree(root: Path) -> dict:
    """alpha 1.0 + 1.1, beta 2.0 (wheel + sdist), gamma 0.1; view py311: alpha 1.1 and
    beta; view Win.x64-3_12: alpha 1.0."""
    info = build_tree(
        root, {"alpha": ["1.0", "1.1"], "beta": ["2.0"], "gamma": ["0.1"]}, sdist_for=("beta",)
    )
    files = {f.filename: f for f in info["files"]}
    info["by_name"] = files
    info[ENV] = [
        files["alpha-1.1-py3-none-any.whl"],
        files["beta-2.0-py3-none-any.whl"],
        files["beta-2.0.tar.gz"],
    ]
    info[WIN] = [files["alpha-1.0-py3-none-any.whl"]]
    add_view(root, ENV, info[ENV])
    add_view(root, WIN, info[WIN])
    return info


@pytest.fixture
def vtree(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "tree"
    return root, build_views_tree(root)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("views") / "tree"
    info = build_views_tree(root)
    with InProcessServer(root) as srv:
        yield srv, root, info


def request(srv, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# Serving a view
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP_ACCEPT, JSON),
        (UV_ACCEPT, JSON),
        (None, TEXT),
        ("text/html", TEXT),
        ("*/*", TEXT),
        ("application/vnd.pypi.simple.v1+html", V1HTML),
        ("application/vnd.pypi.simple.latest+json", JSON),
    ],
)
def test_view_root_page_negotiated(served, accept, expected):
    srv, _, _ = served
    resp, body = request(srv, f"/envs/{ENV}/simple/", {} if accept is None else {"Accept": accept})
    assert resp.status == 200
    assert resp.getheader("Content-Type") == expected
    assert "Accept" in resp.getheader("Vary")
    if expected == JSON:
        assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha", "beta"]
    else:
        assert b'href="alpha/"' in body and b'href="beta/"' in body
        assert b"gamma" not in body


def test_view_root_406_and_format_override(served):
    srv, _, _ = served
    resp, _ = request(srv, f"/envs/{ENV}/simple/", {"Accept": "application/json"})
    assert resp.status == 406
    resp, body = request(srv, f"/envs/{ENV}/simple/?format={JSON}", {"Accept": "text/html"})
    assert resp.status == 200 and resp.getheader("Content-Type") == JSON
    assert json.loads(body)["projects"]
    resp, _ = request(srv, f"/envs/{ENV}/simple/alpha/?format=text/html", {"Accept": JSON})
    assert resp.status == 200 and resp.getheader("Content-Type") == TEXT


def test_view_project_page_lists_the_subset_and_its_links_resolve(served):
    srv, root, info = served
    page_url = f"{srv.base}/envs/{ENV}/simple/alpha/"
    resp, body = request(srv, f"/envs/{ENV}/simple/alpha/", {"Accept": PIP_ACCEPT})
    assert resp.status == 200 and resp.getheader("Content-Type") == JSON
    doc = json.loads(body)
    assert doc["name"] == "alpha"
    assert [f["filename"] for f in doc["files"]] == ["alpha-1.1-py3-none-any.whl"]
    entry = doc["files"][0]
    assert entry["url"] == "../../../../packages/alpha/alpha-1.1-py3-none-any.whl"
    target = urljoin(page_url, entry["url"])
    assert target == f"{srv.base}/packages/alpha/alpha-1.1-py3-none-any.whl"
    resp, data = request(srv, target[len(srv.base) :])
    assert resp.status == 200
    assert hashlib.sha256(data).hexdigest() == entry["hashes"]["sha256"]
    resp, meta = request(srv, target[len(srv.base) :] + ".metadata")
    assert resp.status == 200
    assert hashlib.sha256(meta).hexdigest() == entry["core-metadata"]["sha256"]
    # the HTML page: the same file, with the same link
    resp, body = request(srv, f"/envs/{ENV}/simple/alpha/")
    assert resp.getheader("Content-Type") == TEXT
    html = body.decode()
    assert 'href="../../../../packages/alpha/alpha-1.1-py3-none-any.whl#sha256=' in html
    assert "alpha-1.0" not in html
    # the other view lists the other version
    resp, body = request(srv, f"/envs/{WIN}/simple/alpha/", {"Accept": UV_ACCEPT})
    assert [f["filename"] for f in json.loads(body)["files"]] == ["alpha-1.0-py3-none-any.whl"]


def test_view_fixed_index_files(served):
    srv, _, _ = served
    resp, body = request(srv, f"/envs/{ENV}/simple/index.json", {"Accept": "text/html"})
    assert resp.status == 200 and resp.getheader("Content-Type") == JSON
    resp, body = request(srv, f"/envs/{ENV}/simple/beta/index.html", {"Accept": JSON})
    assert resp.status == 200 and resp.getheader("Content-Type") == TEXT
    assert b"beta-2.0.tar.gz" in body
    resp, _ = request(srv, f"/envs/{ENV}/simple/Beta/index.html")
    assert resp.status == 404


@pytest.mark.parametrize(
    ("path", "location"),
    [
        (f"/envs/{ENV}", f"/envs/{ENV}/simple/"),
        (f"/envs/{ENV}/", f"/envs/{ENV}/simple/"),
        (f"/envs/{ENV}/simple", f"/envs/{ENV}/simple/"),
        (f"/envs/{ENV}/simple?format=text/html", f"/envs/{ENV}/simple/?format=text/html"),
        (f"/envs/{ENV}/simple/alpha", f"/envs/{ENV}/simple/alpha/"),
        (f"/envs/{ENV}/simple/Alpha/", f"/envs/{ENV}/simple/alpha/"),
        (f"/envs/{ENV}/simple/ALPHA", f"/envs/{ENV}/simple/alpha/"),
        (f"/envs/{WIN}/simple/Alpha_/?x=1", f"/envs/{WIN}/simple/alpha-/?x=1"),
        (f"/envs/{WIN}", f"/envs/{WIN}/simple/"),
        ("/envs", "/envs/"),
    ],
)
def test_view_redirects(served, path, location):
    srv, _, _ = served
    resp, _ = request(srv, path)
    assert resp.status == 301
    assert resp.getheader("Location") == location


@pytest.mark.parametrize(
    "path",
    [
        "/envs/nope/simple/",
        "/envs/nope",
        "/envs/-bad/simple/",
        "/envs/_bad/simple/",
        "/envs/b~d/simple/",
        "/envs/%C3%A9/simple/",
        f"/envs/{ENV.upper()}/simple/",  # exact case
        f"/envs/{ENV}/simple/gamma/",  # in the union, not in this view
        f"/envs/{ENV}/simple/nothere/",
        f"/envs/{ENV}/other/",
        f"/envs/{ENV}/packages/alpha/alpha-1.1-py3-none-any.whl",
        f"/envs/{ENV}/simple/alpha/extra/",
        f"/envs/{ENV}/simple/alpha/index.htm",
        f"/envs/{ENV}/simple/alpha/alpha-1.1-py3-none-any.whl",
    ],
)
def test_view_404(served, path):
    srv, _, _ = served
    resp, body = request(srv, path)
    assert resp.status == 404
    assert b"PK\x03\x04" not in body


VIEW_TRAVERSALS = [
    "/envs/../packages/alpha/alpha-1.1-py3-none-any.whl",
    "/envs/../manifest.json",
    "/envs/%2e%2e/manifest.json",
    "/envs/%2E%2E/packages/alpha/alpha-1.1-py3-none-any.whl",
    "/envs/%2e%2e/simple/",
    f"/envs/{ENV}/simple/../../../morgan.ini",
    f"/envs/{ENV}/simple/%2e%2e/%2e%2e/%2e%2e/manifest.json",
    f"/envs/{ENV}%2f..%2f..%2fmorgan.ini",
    "/envs/%252e%252e/manifest.json",
    "/envs/.hidden/simple/",
    f"/envs/{ENV}/simple/..%5c..%5cmorgan.ini",
    "/envs//simple/",
]


@pytest.mark.parametrize("target", VIEW_TRAVERSALS)
def test_view_traversal_attempts(served, target):
    srv, _, _ = served
    out = raw_request(
        srv.port, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert int(out[9:12]) in (400, 404), out[:200]
    assert b"morgan-like-manifest" not in out and b"[env" not in out
    assert b"PK\x03\x04" not in out


def test_view_symlinked_out_of_the_tree_is_404(tmp_path):
    root = tmp_path / "tree"
    build_views_tree(root)
    outside = tmp_path / "outside" / "simple"
    outside.mkdir(parents=True)
    (outside / "index.html").write_text("<html>SECRET</html>")
    (root / "envs" / "evil").symlink_to(tmp_path / "outside")
    with InProcessServer(root) as srv:
        for path in ("/envs/evil/simple/", "/envs/evil/simple/index.html", "/envs/evil/"):
            resp, body = request(srv, path)
            assert resp.status == 404, path
            assert b"SECRET" not in body
        resp, body = request(srv, "/envs/")
        assert resp.status == 200 and b"evil" not in body and ENV.encode() in body


def test_view_etag_304_and_gzip(served):
    srv, _, _ = served
    path = f"/envs/{ENV}/simple/beta/"
    resp, body = request(srv, path, {"Accept": "text/html"})
    etag = resp.getheader("ETag")
    assert resp.status == 200 and etag and resp.getheader("Cache-Control") == "no-cache"
    resp, again = request(srv, path, {"Accept": "text/html", "If-None-Match": etag})
    assert resp.status == 304 and again == b""
    assert len(body) >= 512  # worth compressing
    resp, zipped = request(srv, path, {"Accept": "text/html", "Accept-Encoding": "gzip"})
    assert resp.status == 200 and resp.getheader("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in resp.getheader("Vary")
    assert gzip.decompress(zipped) == body
    resp, _ = request(srv, path, {"Accept": PIP_ACCEPT, "If-None-Match": etag})
    assert resp.status == 200  # the JSON representation has its own ETag


def test_head_on_a_view_page(served):
    srv, _, _ = served
    resp, body = request(srv, f"/envs/{ENV}/simple/", method="HEAD")
    assert resp.status == 200 and body == b""
    assert int(resp.getheader("Content-Length")) > 0


def test_envs_lists_the_views(served):
    srv, _, _ = served
    resp, body = request(srv, "/envs/")
    assert resp.status == 200 and resp.getheader("Content-Type") == TEXT
    text = body.decode()
    assert f'href="{ENV}/simple/"' in text and f'href="{WIN}/simple/"' in text
    for link in (f"{ENV}/simple/", f"{WIN}/simple/"):
        resp, _ = request(srv, urljoin("/envs/", link))
        assert resp.status == 200


def test_no_views_no_envs_page(tmp_path):
    root = tmp_path / "tree"
    build_tree(root, {"alpha": ["1.0"]})
    with InProcessServer(root) as srv:
        for path in ("/envs/", "/envs/x/simple/", "/envs/x"):
            resp, _ = request(srv, path)
            assert resp.status == 404, path
        resp, _ = request(srv, "/simple/alpha/")
        assert resp.status == 200


def test_union_unchanged_beside_views(served):
    srv, _, _ = served
    resp, body = request(srv, "/simple/", {"Accept": JSON})
    assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha", "beta", "gamma"]
    resp, body = request(srv, "/simple/alpha/", {"Accept": JSON})
    assert [f["url"] for f in json.loads(body)["files"]] == [
        "../../packages/alpha/alpha-1.0-py3-none-any.whl",
        "../../packages/alpha/alpha-1.1-py3-none-any.whl",
    ]
    resp, _ = request(srv, "/simple/Alpha")
    assert resp.status == 301 and resp.getheader("Location") == "/simple/alpha/"


# ---------------------------------------------------------------------------------------
# Start-up lines
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("python", [sys.executable, str(PY36)], ids=["current", "py36"])
def test_startup_lines_name_each_view(vtree, python):
    if not Path(python).exists():
        pytest.skip(f"{python} not installed")
    root, _ = vtree
    srv = SubprocessServer(root, python=python, args=["-q"])
    try:  # the views are served on this interpreter too
        resp, body = request(srv, f"/envs/{ENV}/simple/alpha/", {"Accept": UV_ACCEPT})
        assert resp.status == 200 and resp.getheader("Content-Type") == JSON
        assert [f["filename"] for f in json.loads(body)["files"]] == ["alpha-1.1-py3-none-any.whl"]
        resp, _ = request(srv, f"/envs/{ENV}")
        assert resp.status == 301
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert "/simple/" in srv.startup_line
    views = [line.rstrip("\n") for line in srv.log_lines if line.startswith("  env ")]
    base = f"http://127.0.0.1:{srv.port}"
    assert views == [  # sorted by code point: "W" before "p"
        f"  env {env}: pip install --index-url {base}/envs/{env}/simple/ PACKAGE"
        f'  (uv: [[index]] url = "{base}/envs/{env}/simple/")'
        for env in (WIN, ENV)
    ]


def test_startup_without_views_prints_no_view_line(tmp_path):
    root = tmp_path / "tree"
    build_tree(root, {"alpha": ["1.0"]})
    (root / "envs" / "bad~name" / "simple").mkdir(parents=True)
    (root / "envs" / "bad~name" / "simple" / "index.html").write_text("x")
    (root / "envs" / "empty" / "simple").mkdir(parents=True)
    srv = SubprocessServer(root, args=["-q"])
    code, err = srv.stop()
    assert code == 0, err
    assert not [line for line in srv.log_lines if "env " in line]


# ---------------------------------------------------------------------------------------
# --verify and the views
# ---------------------------------------------------------------------------------------


def test_verify_passes_with_views(vtree):
    root, _ = vtree
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 projects, 2 views," in proc.stdout
    assert "0 problems" in proc.stdout
    # 4 wheels + 4 .metadata + 1 sdist, 4 top-level files, 4 view root pages
    assert "17 files checked" in proc.stdout
    # union: 2 roots + 3 x 2; views: 2 x 2 roots + 3 x 2 project pages
    assert "18 pages checked" in proc.stdout
    assert proc.stderr == ""


def test_verify_in_process_with_views(vtree):
    code, out, err = verify_in_process(vtree[0])
    assert code == 0, out + err


def test_tree_without_views_says_nothing_of_views(tmp_path):
    root = tmp_path / "tree"
    build_tree(root, {"alpha": ["1.0"]})
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout
    assert "1 projects, 6 files checked" in proc.stdout


def test_view_links_a_missing_file(vtree):
    root, info = vtree
    ghost = HandFile(
        "alpha",
        "alpha-9.0-py3-none-any.whl",
        "packages/alpha/alpha-9.0-py3-none-any.whl",
        "ab" * 32,
        10,
        None,
    )
    write_view_page(root, ENV, "alpha", [info["by_name"]["alpha-1.1-py3-none-any.whl"], ghost])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "MISSING") == [
        f"MISSING     {ghost.relpath} (linked by envs/{ENV}/simple/alpha/index.html, "
        f"envs/{ENV}/simple/alpha/index.json)"
    ]
    assert lines(proc.stdout, "VIEW-ONLY") == [
        f"VIEW-ONLY   envs/{ENV}/simple/alpha/ ({ghost.filename}: simple/alpha/ does not list it)"
    ]


def test_view_gives_a_wrong_sha256(vtree):
    root, info = vtree
    bf = info["by_name"]["alpha-1.1-py3-none-any.whl"]
    for name in ("index.html", "index.json"):
        rewrite(root / "envs" / ENV / "simple" / "alpha" / name, bf.sha256, "0" * 64)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "VIEW-ONLY") == [
        f"VIEW-ONLY   envs/{ENV}/simple/alpha/{page} "
        f"({bf.filename}: simple/alpha/ lists it with another sha256)"
        for page in ("index.html", "index.json")
    ]
    # the file itself is intact: the union page vouches for it
    assert f"CORRUPT     {bf.relpath}" not in proc.stdout


def test_view_gives_a_wrong_size_or_metadata_hash(vtree):
    root, info = vtree
    bf = info["by_name"]["alpha-1.1-py3-none-any.whl"]
    page = root / "envs" / ENV / "simple" / "alpha" / "index.json"
    rewrite(page, f'"size": {bf.size}', f'"size": {bf.size + 1}')
    rewrite(page, bf.metadata_sha256, "1" * 64)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "DISAGREE") == [
        f"DISAGREE    envs/{ENV}/simple/alpha/ ({bf.filename}: index.json and index.html "
        "give different size, core-metadata)",
        f"DISAGREE    envs/{ENV}/simple/alpha/index.json "
        f"({bf.filename}: different size, core-metadata than simple/alpha/)",
    ]


def test_view_only_file_is_linked_but_reported_once(vtree):
    """A file under packages/ only a view links: VIEW-ONLY, not also UNEXPECTED."""
    root, info = vtree
    data = b"PK\x03\x04 a wheel only the view knows"
    rel = "packages/alpha/alpha-0.9-py3-none-any.whl"
    (root / rel).write_bytes(data)
    extra = HandFile(
        "alpha", rel.rsplit("/", 1)[1], rel, hashlib.sha256(data).hexdigest(), len(data), None
    )
    write_view_page(root, WIN, "alpha", [info["by_name"]["alpha-1.0-py3-none-any.whl"], extra])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "UNEXPECTED" not in proc.stdout
    assert lines(proc.stdout, "VIEW-ONLY") == [
        f"VIEW-ONLY   envs/{WIN}/simple/alpha/ ({extra.filename}: simple/alpha/ does not list it)"
    ]
    assert "1 problem\n" in proc.stdout
    # ... and it is checked: a flipped byte is CORRUPT
    (root / rel).write_bytes(data[:-1] + b"!")
    proc = run_verify(root)
    assert f"CORRUPT     {rel} (sha256 mismatch)" in proc.stdout


def test_view_links_outside_packages(vtree):
    root, info = vtree
    page = root / "envs" / ENV / "simple" / "alpha" / "index.html"
    rewrite(page, "../../../../packages/alpha/", "../../../../simple/alpha/")
    proc = run_verify(root)
    assert proc.returncode == 1
    bad = lines(proc.stdout, "BAD-LINK")
    assert len(bad) == 1 and bad[0].startswith(f"BAD-LINK    envs/{ENV}/simple/alpha/index.html")
    assert "is not a file under packages/" in bad[0]
    # one level short: the union's link, wrong from a view's page
    page.write_text(
        page.read_text().replace("../../../../simple/alpha/", "../../packages/alpha/"), "utf-8"
    )
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"envs/{ENV}/simple/alpha/index.html" in "".join(lines(proc.stdout, "BAD-LINK"))


def test_view_project_page_not_listed_by_its_root(vtree):
    root, info = vtree
    write_view_page(root, ENV, "gamma", [info["by_name"]["gamma-0.1-py3-none-any.whl"]])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "UNLISTED") == [
        f"UNLISTED    envs/{ENV}/simple/gamma/ (no root page of the view lists it)"
    ]


def test_view_root_lists_a_project_without_a_page(vtree):
    root, _ = vtree
    roots = write_view_roots(root, WIN, ["alpha", "beta"])
    add_to_manifest(root, roots)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "BROKEN-LINK") == [
        f"BROKEN-LINK envs/{WIN}/simple/index.{ext} (beta/: no envs/{WIN}/simple/beta/index.html)"
        for ext in ("html", "json")
    ]


def test_view_root_pages_disagree(vtree):
    root, _ = vtree
    base = root / "envs" / ENV / "simple"
    (base / "index.json").write_bytes(pages.render_root_json([("alpha", SERIAL)], SERIAL))
    add_to_manifest(root, [f"envs/{ENV}/simple/index.json"])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "DISAGREE") == [
        f"DISAGREE    envs/{ENV}/simple/ (beta: in index.html, not in index.json)"
    ]


def test_view_project_page_missing_its_json(vtree):
    root, _ = vtree
    (root / "envs" / ENV / "simple" / "beta" / "index.json").unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "MISSING") == [f"MISSING     envs/{ENV}/simple/beta/index.json"]


@pytest.mark.parametrize("name", ["index.html", "index.json"])
def test_view_root_page_changed_after_the_manifest(vtree, name):
    root, _ = vtree
    page = root / "envs" / ENV / "simple" / name
    data = page.read_bytes()
    page.write_bytes(data + b"\n")  # still a good page, just not the one manifest.json lists
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "CORRUPT") == [
        f"CORRUPT     envs/{ENV}/simple/{name} (size {len(data) + 1}, manifest says {len(data)})"
    ]
    assert "1 problem\n" in proc.stdout
    # same size, other bytes
    page.write_bytes(data[:-1] + (b" " if data[-1:] != b" " else b"\n"))
    proc = run_verify(root)
    assert lines(proc.stdout, "CORRUPT") == [
        f"CORRUPT     envs/{ENV}/simple/{name} (sha256 mismatch)"
    ]
    assert "1 problem\n" in proc.stdout


def test_view_root_page_the_manifest_does_not_list(vtree):
    root, info = vtree
    add_view(root, "new", [info["by_name"]["gamma-0.1-py3-none-any.whl"]], manifest=False)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "UNEXPECTED") == [
        "UNEXPECTED  envs/new/simple/index.html",
        "UNEXPECTED  envs/new/simple/index.json",
    ]


def test_view_root_page_the_manifest_lists_is_missing(vtree):
    root, _ = vtree
    (root / "envs" / WIN / "simple" / "index.json").unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "MISSING") == [f"MISSING     envs/{WIN}/simple/index.json"]


def test_unexpected_files_under_envs(vtree):
    root, _ = vtree
    extras = [
        "envs/README.txt",
        f"envs/{ENV}/notes.txt",
        f"envs/{ENV}/packages/alpha/x.whl",
        f"envs/{ENV}/simple/stray.html",
        f"envs/{ENV}/simple/alpha/extra.txt",
        "envs/bad~name/simple/index.html",
    ]
    for rel in extras:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / "envs" / ENV / "simple" / ".index.html.tmp").write_text("in flight: hidden")
    (root / "envs" / "empty" / "simple").mkdir(parents=True)  # no view: ignored
    proc = run_verify(root)
    assert proc.returncode == 1
    assert sorted(lines(proc.stdout, "UNEXPECTED")) == sorted(
        f"UNEXPECTED  {rel}" for rel in extras
    )
    assert f"{len(extras)} problems" in proc.stdout


def test_symlink_under_envs(vtree, tmp_path):
    root, _ = vtree
    (root / "envs" / "linked").symlink_to(root / "envs" / ENV)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "SYMLINK") == ["SYMLINK     envs/linked"]


def test_format_1_manifest_skips_view_project_pages(tmp_path):
    """A first-format manifest listed every file: a view's project pages are the pages'
    to vouch for, its root pages the manifest's."""
    root = tmp_path / "tree"
    info = build_tree(root, {"alpha": ["1.0"]}, manifest_format=1)
    add_view(root, ENV, info["files"])
    add_to_manifest(root, [f"envs/{ENV}/simple/alpha/index.html"])
    page = root / "envs" / ENV / "simple" / "alpha" / "index.html"
    page.write_text(page.read_text() + "<!-- rewritten -->\n")
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    is_project = load_server_module()._is_project_path
    assert is_project(f"envs/{ENV}/simple/alpha/index.html")
    assert not is_project(f"envs/{ENV}/simple/index.html")
    assert not is_project(f"envs/{ENV}/other/alpha/index.html")


def test_verify_views_on_python36(vtree):
    if not PY36.exists():
        pytest.skip("no CPython 3.6")
    root, info = vtree
    proc = run_verify(root, str(PY36))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 views" in proc.stdout
    bf = info["by_name"]["alpha-1.1-py3-none-any.whl"]
    rewrite(root / "envs" / ENV / "simple" / "alpha" / "index.json", bf.sha256, "0" * 64)
    (root / "envs" / "stray.txt").write_text("x")
    write_view_page(root, WIN, "gamma", [info["by_name"]["gamma-0.1-py3-none-any.whl"]])
    proc = run_verify(root, str(PY36))
    assert proc.returncode == 1
    assert f"VIEW-ONLY   envs/{ENV}/simple/alpha/index.json" in proc.stdout
    assert "UNEXPECTED  envs/stray.txt" in proc.stdout
    assert f"UNLISTED    envs/{WIN}/simple/gamma/" in proc.stdout


# ---------------------------------------------------------------------------------------
# --view-by-user-agent (off by default)
# ---------------------------------------------------------------------------------------


def pip_agent(python: str, system: str, cpu: str, impl: str = "CPython") -> str:
    """What pip sends: ``pip/X`` and its linehaul JSON (sorted keys, no spaces)."""
    data = {
        "installer": {"name": "pip", "version": "24.0"},
        "python": python,
        "implementation": {"name": impl, "version": python},
        "system": {"name": system, "release": "6.1.0"},
        "cpu": cpu,
        "ci": None,
    }
    return "pip/24.0 " + json.dumps(data, separators=(",", ":"), sort_keys=True)


def uv_agent(python: str | None, system: str | None, cpu: str | None) -> str:
    """What uv sends: ``uv/X`` and its linehaul JSON (struct order, nulls kept)."""
    data = {
        "installer": {"name": "uv", "version": "0.5.11", "subcommand": ["pip", "install"]},
        "python": python,
        "implementation": {"name": "CPython", "version": python},
        "distro": None,
        "system": {"name": system, "release": "10"},
        "cpu": cpu,
        "openssl_version": None,
        "setuptools_version": None,
        "rustc_version": None,
        "ci": None,
    }
    return "uv/0.5.11 " + json.dumps(data, separators=(",", ":"))


VIEW_INI = f"""[env.{ENV}]
os_name = posix
sys_platform = linux
platform_machine = x86_64
platform_system = Linux
python_version = 3.11
python_full_version = 3.11.7

[env.{WIN}]
sys_platform = win32
platform_machine = AMD64
python_version = 3.12

[env.noview]
python_version = 3.10

[requirements]
alpha =
"""


@pytest.fixture(scope="module")
def by_agent(tmp_path_factory):
    root = tmp_path_factory.mktemp("by-agent") / "tree"
    info = build_views_tree(root)
    (root / "morgan.ini").write_text(VIEW_INI, "utf-8")
    with InProcessServer(root, view_by_user_agent=True) as srv:
        yield srv, root, info


def test_ua_markers_of_pip_and_uv():
    mod = load_server_module()
    assert mod.ua_markers(pip_agent("3.11.7", "Linux", "x86_64")) == {
        "python_full_version": "3.11.7",
        "python_version": "3.11",
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
    }
    assert mod.ua_markers(uv_agent("3.12.8", "Windows", "AMD64"))["sys_platform"] == "win32"
    assert mod.ua_markers(uv_agent("3.12.8", "Darwin", "arm64"))["sys_platform"] == "darwin"
    assert "python_version" not in mod.ua_markers(uv_agent(None, "Linux", "x86_64"))
    for agent in (
        None,
        "",
        "curl/8.5.0",
        "pip/24.0",
        "pip/24.0 {not json",
        'pip/24.0 ["a list"]',
        "Mozilla/5.0 (X11; Linux x86_64)",
        'uv/0.5 {"python": 3.11}',
        "pip/24.0 {" + " " * 20000 + "}",
    ):
        assert mod.ua_markers(agent) is None, agent


@pytest.mark.parametrize(
    ("agent", "view"),
    [
        (pip_agent("3.11.7", "Linux", "x86_64"), ENV),
        (uv_agent("3.11.7", "Linux", "x86_64"), ENV),
        (uv_agent("3.12.8", "Windows", "AMD64"), WIN),
        (pip_agent("3.12.1", "Windows", "amd64"), WIN),  # machine: case-insensitive
        (pip_agent("3.11.8", "Linux", "x86_64"), None),  # python_full_version differs
        (pip_agent("3.11.7", "Linux", "aarch64"), None),
        (pip_agent("3.12.1", "Linux", "AMD64"), None),  # sys_platform differs
        (pip_agent("3.10.13", "Linux", "x86_64"), None),  # an env without a view
        (uv_agent(None, "Linux", "x86_64"), None),  # no python: cannot match
        ("curl/8.5.0", None),
        (None, None),
    ],
)
def test_view_chosen_by_user_agent(by_agent, agent, view):
    srv, _, _ = by_agent
    headers = {"Accept": JSON}
    if agent is not None:
        headers["User-Agent"] = agent
    resp, body = request(srv, "/simple/", headers)
    assert resp.status == 200
    assert resp.getheader("X-Morgan-Like-View") == view
    assert resp.getheader("Vary") == "Accept, Accept-Encoding, User-Agent"
    names = [p["name"] for p in json.loads(body)["projects"]]
    expected = {ENV: ["alpha", "beta"], WIN: ["alpha"], None: ["alpha", "beta", "gamma"]}
    assert names == expected[view]


def test_view_by_user_agent_project_pages(by_agent):
    srv, root, info = by_agent
    agent = {"User-Agent": pip_agent("3.11.7", "Linux", "x86_64")}
    resp, body = request(srv, "/simple/alpha/", {"Accept": PIP_ACCEPT, **agent})
    assert resp.status == 200 and resp.getheader("X-Morgan-Like-View") == ENV
    files = json.loads(body)["files"]
    assert [f["filename"] for f in files] == ["alpha-1.1-py3-none-any.whl"]
    # the view's link, one level deeper, resolves from /simple/alpha/ too (clamped at /)
    target = urljoin(f"{srv.base}/simple/alpha/", files[0]["url"])
    assert target == f"{srv.base}/packages/alpha/alpha-1.1-py3-none-any.whl"
    resp, data = request(srv, target[len(srv.base) :], agent)
    assert hashlib.sha256(data).hexdigest() == files[0]["hashes"]["sha256"]
    # HTML, ETag / 304 per view
    resp, body = request(srv, "/simple/beta/", agent)
    assert resp.status == 200 and resp.getheader("Content-Type") == TEXT
    etag = resp.getheader("ETag")
    assert ENV in etag
    resp, _ = request(srv, "/simple/beta/", {"If-None-Match": etag, **agent})
    assert resp.status == 304 and resp.getheader("X-Morgan-Like-View") == ENV
    resp, _ = request(srv, "/simple/beta/", {"If-None-Match": etag})  # the union's page
    assert resp.status == 200 and resp.getheader("X-Morgan-Like-View") is None
    # not in the view: 404; redirects stay under /simple/
    resp, _ = request(srv, "/simple/gamma/", agent)
    assert resp.status == 404 and resp.getheader("X-Morgan-Like-View") == ENV
    assert "User-Agent" in resp.getheader("Vary")
    resp, _ = request(srv, "/simple/gamma/")
    assert resp.status == 200
    resp, _ = request(srv, "/simple/Alpha", agent)
    assert resp.status == 301 and resp.getheader("Location") == "/simple/alpha/"
    resp, body = request(srv, "/simple/index.json", agent)
    assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha", "beta"]
    # the views' own URLs are not affected
    resp, body = request(srv, f"/envs/{WIN}/simple/", {"Accept": JSON, **agent})
    assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha"]
    assert resp.getheader("X-Morgan-Like-View") is None


def test_view_by_user_agent_is_off_by_default(served):
    srv, _, _ = served
    agent = pip_agent("3.11.7", "Linux", "x86_64")
    resp, body = request(srv, "/simple/", {"Accept": JSON, "User-Agent": agent})
    assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha", "beta", "gamma"]
    assert resp.getheader("X-Morgan-Like-View") is None
    assert "User-Agent" not in resp.getheader("Vary")


PYTHONS = [
    pytest.param(sys.executable, id="current"),
    pytest.param(str(PY36), id="py36"),
]


@pytest.mark.parametrize("python", PYTHONS)
def test_view_by_user_agent_cli_and_startup_line(tmp_path, python):
    if not Path(python).exists():
        pytest.skip(f"{python} not installed")
    root = tmp_path / "tree"
    build_views_tree(root)
    (root / "morgan.ini").write_text(VIEW_INI, "utf-8")
    srv = SubprocessServer(root, python=python, args=["-q", "--view-by-user-agent"])
    try:
        agent = pip_agent("3.12.4", "Windows", "AMD64")
        resp, body = request(srv, "/simple/", {"User-Agent": agent, "Accept": JSON})
        assert resp.getheader("X-Morgan-Like-View") == WIN
        assert [p["name"] for p in json.loads(body)["projects"]] == ["alpha"]
        resp, _ = request(srv, "/simple/", {"User-Agent": "curl/8"})
        assert resp.getheader("X-Morgan-Like-View") is None
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert any("User-Agent" in line and "2 of them" in line for line in srv.log_lines)


@pytest.mark.e2e
def test_view_by_user_agent_with_real_clients(tmp_path):
    """pip and uv send the User-Agent the option reads: each gets its env's view."""
    from ..clients import client_env, find_uv
    from ..server_support import Dist, write_tree

    root = tmp_path / "tree"
    info = write_tree(root, [Dist("alpha", "1.0"), Dist("alpha", "1.1"), Dist("gamma", "0.1")])
    files = {f.filename: f for f in info["files"]}
    add_view(root, "here", [files["alpha-1.0-py3-none-any.whl"]])
    add_view(root, "elsewhere", [files["alpha-1.1-py3-none-any.whl"]])
    system = platform.system()
    (root / "morgan.ini").write_text(
        "[env.here]\n"
        f"python_full_version = {platform.python_version()}\n"
        f"sys_platform = {sys.platform}\n"
        f"platform_machine = {platform.machine()}\n"
        "[env.elsewhere]\npython_version = 2.7\n"
    )
    with SubprocessServer(root, args=["-q", "--view-by-user-agent"]) as srv:
        index = f"{srv.base}/simple/"
        pip = [sys.executable, "-m", "pip", "download", "--no-cache-dir", "--no-deps"]
        pip += ["--index-url", index, "-d", str(tmp_path / "dl")]
        got = subprocess.run(
            [*pip, "alpha"], env=client_env(), capture_output=True, text=True, timeout=180
        )
        assert got.returncode == 0, got.stdout + got.stderr
        assert [p.name for p in (tmp_path / "dl").iterdir()] == ["alpha-1.0-py3-none-any.whl"]
        got = subprocess.run(
            [*pip, "gamma"], env=client_env(), capture_output=True, text=True, timeout=180
        )
        assert got.returncode != 0  # not in this env's view
        uv = find_uv()
        assert uv is not None, "the test extra installs uv"
        if system in ("Linux", "Darwin", "Windows"):
            out = subprocess.run(
                [*uv, "pip", "compile", "--no-config", "--no-cache", "-p", sys.executable]
                + ["--index-url", index, "-"],
                input="alpha\n",
                env=client_env(),
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert out.returncode == 0, out.stdout + out.stderr
            assert "alpha==1.0" in out.stdout
