"""``server.py --verify``: an offline, streaming integrity check of a tree.

The project pages vouch for every file under ``packages/`` (sha256, size, the wheel's
core-metadata hash); ``manifest.json`` (format 2) lists only the top-level files.
The trees here are placed by hand (build_tree() below: fake wheels, pages rendered by
tree.pages, the writer's own renderer), so each test controls every byte; one also runs
against a tree from the real TreeWriter.
Corruptions are made by editing files on disk, then calling verify.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from morgan_like.tree import pages
from morgan_like.tree.pages import FileEntry

from ..clients import pyenv_python
from ..server_support import SERVER_PY, InProcessServer, load_server_module

PY36 = pyenv_python("3.6.15")
UPLOAD_TIME = "2024-01-02T03:04:05.123456Z"
SERIAL = 7

# ---------------------------------------------------------------------------------------
# Trees in the new format, written by hand (the writer is not needed)
# ---------------------------------------------------------------------------------------


@dataclass
class HandFile:
    project: str
    filename: str
    relpath: str
    sha256: str
    size: int
    metadata_sha256: str | None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entries(files: list[HandFile]) -> list[FileEntry]:
    return [
        FileEntry(
            filename=f.filename,
            url="../../" + f.relpath,
            sha256=f.sha256,
            size=f.size,
            metadata_sha256=f.metadata_sha256,
            upload_time=UPLOAD_TIME,
        )
        for f in files
    ]


def render_project_html(name: str, files: list[HandFile]) -> str:
    return pages.render_project_html(name, _entries(files), SERIAL).decode()


def render_project_json(name: str, files: list[HandFile]) -> str:
    return pages.render_project_json(name, _entries(files), SERIAL).decode()


def render_root_html(names: list[str]) -> str:
    return pages.render_root_html(names).decode()


def render_root_json(projects: list[tuple[str, int | None]], serial=SERIAL, layout="lines") -> str:
    """The root page: one project object a line (what the writer writes), or old-style JSON."""
    if layout == "lines":
        return pages.render_root_json(projects, serial).decode()
    meta = {"api-version": "1.1", "_last-serial": serial}
    entries = [
        {"name": n, "_last-serial": s} if s is not None else {"name": n} for n, s in projects
    ]
    if layout == "one-line":
        return json.dumps({"meta": meta, "projects": entries}) + "\n"
    assert layout == "indented", layout
    return json.dumps({"meta": meta, "projects": entries}, indent=2) + "\n"


def build_tree(
    root: Path,
    projects: dict[str, list[str]],
    *,
    sdist_for: tuple[str, ...] = (),
    manifest_format: int = 2,
    root_json: str = "lines",
) -> dict:
    """A tree in the format server.py reads: {"files": [HandFile...], "projects": [...]}.

    Every version gets a (fake) wheel and its .metadata, projects in ``sdist_for`` an
    sdist too.  manifest_format 2 lists the top-level files, 1 every file.
    """
    root.mkdir(parents=True, exist_ok=True)
    built = []
    names = sorted(projects)
    for name in names:
        stem = name.replace("-", "_")
        pkgdir, pagedir = root / "packages" / name, root / "simple" / name
        pkgdir.mkdir(parents=True, exist_ok=True)
        pagedir.mkdir(parents=True, exist_ok=True)
        files = []
        for version in projects[name]:
            whl = f"{stem}-{version}-py3-none-any.whl"
            data = b"PK\x03\x04 not really a wheel " + whl.encode() * 3
            meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
            (pkgdir / whl).write_bytes(data)
            (pkgdir / (whl + ".metadata")).write_bytes(meta)
            files.append(
                HandFile(name, whl, f"packages/{name}/{whl}", _sha(data), len(data), _sha(meta))
            )
            if name in sdist_for:
                sdist = f"{stem}-{version}.tar.gz"
                data = b"\x1f\x8b not really a tarball " + sdist.encode()
                (pkgdir / sdist).write_bytes(data)
                files.append(
                    HandFile(name, sdist, f"packages/{name}/{sdist}", _sha(data), len(data), None)
                )
        files.sort(key=lambda f: f.filename)
        (pagedir / "index.html").write_text(render_project_html(name, files), "utf-8")
        (pagedir / "index.json").write_text(render_project_json(name, files), "utf-8")
        built += files
    (root / "simple" / "index.html").write_text(render_root_html(names), "utf-8")
    (root / "simple" / "index.json").write_text(
        render_root_json([(n, SERIAL) for n in names], layout=root_json), "utf-8"
    )
    (root / "morgan.ini").write_text("[env.test]\npython_version = 3.11\n[requirements]\n")
    (root / "server.py").write_bytes(SERVER_PY.read_bytes())
    hidden = root / ".morgan-like"
    hidden.mkdir(exist_ok=True)
    (hidden / "state.db").write_bytes(b"SQLite format 3\x00secret-state")
    if manifest_format == 1:
        listed = [
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]
    else:
        listed = ["morgan.ini", "server.py", "simple/index.html", "simple/index.json"]
    entries = {}
    for rel in sorted(listed):
        if rel != "manifest.json":
            data = (root / rel).read_bytes()
            entries[rel] = {"size": len(data), "sha256": _sha(data)}
    lines_ = [f"  {json.dumps(rel)}: {json.dumps(e)}" for rel, e in entries.items()]
    fmt = f"morgan-like-manifest/{manifest_format}"
    (root / "manifest.json").write_text(
        '{"format": ' + json.dumps(fmt) + ', "files": {\n' + ",\n".join(lines_) + "\n}}\n"
    )
    return {"files": built, "projects": names}


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new), "utf-8")


@pytest.fixture
def tree(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "tree"
    info = build_tree(root, {"alpha": ["1.0", "1.1"], "beta": ["2.0"]}, sdist_for=("beta",))
    return root, info


def run_verify(root: Path, python: str = sys.executable, cwd=None) -> subprocess.CompletedProcess:
    cmd = [python, str(SERVER_PY), "--verify"]
    if root is not None:
        cmd += ["-i", str(root)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=env, cwd=cwd and str(cwd)
    )


def verify_in_process(root: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = load_server_module().verify(str(root), out, err)
    return code, out.getvalue(), err.getvalue()


def lines(text: str, kind: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(kind + " ")]


def wheel(info: dict, project: str = "alpha"):
    return next(f for f in info["files"] if f.project == project and f.metadata_sha256)


# ---------------------------------------------------------------------------------------
# An intact tree
# ---------------------------------------------------------------------------------------


def test_intact_tree_passes(tree):
    proc = run_verify(tree[0])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problems" in proc.stdout
    assert "2 projects" in proc.stdout
    # 3 wheels + 3 .metadata + 1 sdist + the 4 top-level files
    assert "11 files checked" in proc.stdout
    assert "6 pages checked" in proc.stdout
    assert proc.stderr == ""


def test_verify_in_process(tree):
    code, out, err = verify_in_process(tree[0])
    assert code == 0, out + err
    assert load_server_module().main(["--verify", "-i", str(tree[0])]) == 0


def test_intact_tree_written_by_the_tree_writer(tmp_path):
    """The real writer's output verifies (whichever manifest format it writes today)."""
    try:
        from ..server_support import Dist, write_tree
    except ImportError as exc:  # the writer is being changed underneath
        pytest.skip(f"tests/server_support does not import: {exc}")
    root = tmp_path / "tree"
    write_tree(
        root,
        [Dist("alpha", "1.0"), Dist("alpha", "1.1"), Dist("beta", "2.0", requires=["alpha"])],
        sdist_for=("beta",),
    )
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel_path = next((root / "packages" / "alpha").glob("*.whl"))
    wheel_path.write_bytes(wheel_path.read_bytes()[:-1] + b"!")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "CORRUPT" in proc.stdout and wheel_path.name in proc.stdout


def test_hidden_files_are_ignored(tree):
    root, _ = tree
    (root / ".morgan-like" / "tmp-download").write_bytes(b"partial")
    (root / "packages" / ".DS_Store").write_bytes(b"mac")
    (root / "packages" / "alpha" / ".alpha-2.0.whl.abc.tmp").write_bytes(b"in flight")
    (root / "simple" / "alpha" / ".index.html.x.tmp").write_bytes(b"in flight")
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout


def test_no_manifest_warns_and_checks_the_pages(tree):
    root, info = tree
    (root / "manifest.json").unlink()
    (root / "extra.txt").write_text("not listed anywhere, but there is no manifest")
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout
    assert "manifest.json" in proc.stderr and "warning" in proc.stderr
    path = root / info["files"][0].relpath
    path.write_bytes(b"x" + path.read_bytes()[1:])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "CORRUPT") == [
        f"CORRUPT     {info['files'][0].relpath} (sha256 mismatch)"
    ]


def test_not_a_tree(tmp_path):
    proc = run_verify(tmp_path)
    assert proc.returncode == 2
    assert "no simple/ directory" in proc.stderr
    assert run_verify(tmp_path / "nowhere").returncode == 2


def test_default_index_path_is_the_copied_tree(tree, tmp_path):
    """`python3 server.py --verify` inside a copied tree checks that tree (no -i)."""
    root, _ = tree
    proc = subprocess.run(
        [sys.executable, str(root / "server.py"), "--verify"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(root) in proc.stdout


def test_help_describes_the_verify():
    proc = subprocess.run(
        [sys.executable, str(SERVER_PY), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "--verify" in proc.stdout and "pages" in proc.stdout
    assert "against manifest.json and exit" not in proc.stdout


# ---------------------------------------------------------------------------------------
# Distribution files and their .metadata
# ---------------------------------------------------------------------------------------


def test_flipped_byte(tree):
    root, info = tree
    rel = info["files"][0].relpath
    path = root / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "CORRUPT") == [f"CORRUPT     {rel} (sha256 mismatch)"]
    assert "1 problem" in proc.stdout


def test_truncated_file(tree):
    root, info = tree
    bf = info["files"][1]
    path = root / bf.relpath
    path.write_bytes(path.read_bytes()[:-10])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "CORRUPT") == [
        f"CORRUPT     {bf.relpath} (size {bf.size - 10}, page says {bf.size})"
    ]


def test_missing_file(tree):
    root, info = tree
    rel = info["files"][2].relpath
    (root / rel).unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"MISSING     {rel} (linked by simple/" in proc.stdout
    assert "index.html" in proc.stdout and "index.json" in proc.stdout


def test_missing_metadata(tree):
    root, info = tree
    bf = wheel(info)
    (root / (bf.relpath + ".metadata")).unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "MISSING") == [
        f"MISSING     {bf.relpath}.metadata "
        "(advertised by simple/alpha/index.html, simple/alpha/index.json)"
    ]


def test_corrupt_metadata_file(tree):
    root, info = tree
    bf = wheel(info)
    meta = root / (bf.relpath + ".metadata")
    meta.write_bytes(meta.read_bytes() + b"Extra: header\n")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "CORRUPT") == [f"CORRUPT     {bf.relpath}.metadata (sha256 mismatch)"]


def test_pages_give_a_wrong_metadata_hash(tree):
    root, info = tree
    bf = wheel(info)
    for name in ("index.html", "index.json"):
        rewrite(root / "simple" / "alpha" / name, bf.metadata_sha256, "e" * 64)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"CORRUPT     {bf.relpath}.metadata (sha256 mismatch)" in proc.stdout


def test_one_page_gives_a_wrong_metadata_hash(tree):
    root, info = tree
    bf = wheel(info)
    rewrite(root / "simple" / "alpha" / "index.html", bf.metadata_sha256, "e" * 64)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert (
        f"DISAGREE    simple/alpha/ ({bf.filename}: index.json and index.html give different "
        "core-metadata)" in proc.stdout
    )
    assert (
        f"BAD-HASH    simple/alpha/index.html ({bf.filename}.metadata: sha256 does not match "
        "the file)" in proc.stdout
    )
    assert "CORRUPT" not in proc.stdout


def test_metadata_advertised_without_a_hash(tree):
    root, info = tree
    bf = wheel(info)
    page = root / "simple" / "alpha" / "index.json"
    data = json.loads(page.read_text())
    for entry in data["files"]:
        if entry["filename"] == bf.filename:
            entry["core-metadata"] = True
    page.write_text(json.dumps(data))
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"BAD-LINK    simple/alpha/index.json ({bf.filename}: core-metadata without" in (
        proc.stdout
    )


# ---------------------------------------------------------------------------------------
# Unexpected files
# ---------------------------------------------------------------------------------------


def test_unexpected_file_in_packages(tree):
    root, _ = tree
    (root / "packages" / "alpha" / "evil-6.6-py3-none-any.whl").write_bytes(b"x")
    (root / "packages" / "stray.whl").write_bytes(b"x")
    (root / "packages" / "alpha" / "sub").mkdir()
    (root / "packages" / "alpha" / "sub" / "deep.txt").write_bytes(b"x")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "UNEXPECTED") == [
        "UNEXPECTED  packages/alpha/evil-6.6-py3-none-any.whl",
        "UNEXPECTED  packages/alpha/sub/deep.txt",
        "UNEXPECTED  packages/stray.whl",
    ]


def test_unexpected_files_at_the_top_level(tree):
    root, _ = tree
    (root / "extra.txt").write_text("x")
    (root / "docs").mkdir()
    (root / "docs" / "readme.txt").write_text("x")
    (root / "simple" / "stray.html").write_text("x")
    (root / "simple" / "alpha" / "old.html").write_text("x")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert sorted(lines(proc.stdout, "UNEXPECTED")) == [
        "UNEXPECTED  docs/readme.txt",
        "UNEXPECTED  extra.txt",
        "UNEXPECTED  simple/alpha/old.html",
        "UNEXPECTED  simple/stray.html",
    ]


def test_project_files_without_any_page(tree):
    root, _ = tree
    orphan = root / "packages" / "orphan"
    orphan.mkdir()
    (orphan / "orphan-1.0.tar.gz").write_bytes(b"x")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "UNEXPECTED") == ["UNEXPECTED  packages/orphan/orphan-1.0.tar.gz"]


def test_file_linked_from_another_projects_page_is_not_unexpected(tree):
    root, info = tree
    beta_page = root / "simple" / "beta" / "index.html"
    bf = wheel(info, "alpha")
    link = (
        f'<a href="../../{bf.relpath}#sha256={bf.sha256}" data-size="{bf.size}">'
        f"{bf.filename}</a><br>\n  </body>"
    )
    rewrite(beta_page, "  </body>", link)
    proc = run_verify(root)
    # the pages of beta disagree now, but alpha's file is accounted for
    assert "UNEXPECTED" not in proc.stdout
    assert f"DISAGREE    simple/beta/ ({bf.filename}: in index.html, not in index.json)" in (
        proc.stdout
    )


def test_names_that_are_not_utf8(tree):
    root, _ = tree
    base = os.fsencode(root)
    with open(os.path.join(base, b"packages", b"alpha", b"bad\xff.whl"), "wb") as f:
        f.write(b"x")
    os.mkdir(os.path.join(base, b"packages", b"w\xfe"))
    with open(os.path.join(base, b"packages", b"w\xfe", b"f.whl"), "wb") as f:
        f.write(b"x")
    code, out, err = verify_in_process(root)
    assert code == 1, out + err
    assert sorted(line.split()[1] for line in lines(out, "UNEXPECTED")) == [
        "packages/alpha/bad\udcff.whl",
        "packages/w\udcfe",
    ]
    assert "not a UTF-8 name" in out


def test_symlink_reported(tree, tmp_path):
    root, _ = tree
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    (root / "packages" / "alpha" / "link.whl").symlink_to(outside)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "SYMLINK     packages/alpha/link.whl" in proc.stdout


def test_symlinked_project_directory(tree, tmp_path):
    root, _ = tree
    elsewhere = tmp_path / "elsewhere"
    (root / "packages" / "beta").rename(elsewhere)
    (root / "packages" / "beta").symlink_to(elsewhere)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "SYMLINK     packages/beta" in proc.stdout


# ---------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------


def test_page_listed_by_the_root_pages_but_missing(tree):
    root, _ = tree
    for name in ("index.html", "index.json"):
        (root / "simple" / "beta" / name).unlink()
    (root / "simple" / "beta").rmdir()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "BROKEN-LINK") == [
        "BROKEN-LINK simple/index.html (beta/: no simple/beta/index.html)",
        "BROKEN-LINK simple/index.json (beta/: no simple/beta/index.html)",
    ]
    # nothing links beta's files any more
    assert lines(proc.stdout, "UNEXPECTED")
    assert all("packages/beta/" in line for line in lines(proc.stdout, "UNEXPECTED"))


def test_project_directory_without_its_pages(tree):
    root, _ = tree
    (root / "simple" / "beta" / "index.html").unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "MISSING     simple/beta/index.html (file:// clients need it)" in proc.stdout


def test_page_not_in_the_root_pages(tree):
    root, _ = tree
    build_tree(root / "other", {"gamma": ["0.1"]})
    (root / "other" / "simple" / "gamma").rename(root / "simple" / "gamma")
    (root / "other" / "packages" / "gamma").rename(root / "packages" / "gamma")
    for path in sorted((root / "other").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "other").rmdir()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "UNLISTED") == ["UNLISTED    simple/gamma/ (no root page lists it)"]
    assert "gamma" not in proc.stdout.replace("UNLISTED    simple/gamma/", "")


def test_root_pages_disagree(tree):
    root, _ = tree
    page = root / "simple" / "index.json"
    page.write_text(render_root_json([("alpha", SERIAL)]))
    rewrite(root / "simple" / "index.html", "</body>", '<a href="gamma/">gamma</a>\n</body>')
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "DISAGREE") == [
        "DISAGREE    simple/ (beta: in simple/index.html, not in simple/index.json)",
        "DISAGREE    simple/ (gamma: in simple/index.html, not in simple/index.json)",
    ]
    # the edit also shows against manifest.json
    assert "CORRUPT     simple/index.json" in proc.stdout


def test_root_page_referencing_missing_project(tree):
    root, _ = tree
    rewrite(root / "simple" / "index.html", "</body>", '<a href="gone/">gone</a>\n</body>')
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "BROKEN-LINK simple/index.html (gone/: no simple/gone/index.html)" in proc.stdout


def test_json_and_html_pages_disagree_on_files(tree):
    root, info = tree
    bf = wheel(info)
    page = root / "simple" / "alpha" / "index.html"
    page.write_text(
        "".join(line for line in page.read_text().splitlines(True) if bf.filename not in line)
    )
    proc = run_verify(root)
    assert proc.returncode == 1
    assert lines(proc.stdout, "DISAGREE") == [
        f"DISAGREE    simple/alpha/ ({bf.filename}: in index.json, not in index.html)"
    ]


def test_json_and_html_pages_disagree_on_a_hash(tree):
    root, info = tree
    bf = info["files"][0]
    rewrite(root / "simple" / bf.project / "index.html", bf.sha256, "0" * 64)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert (
        f"DISAGREE    simple/{bf.project}/ ({bf.filename}: index.json and index.html give "
        "different sha256)" in proc.stdout
    )
    assert (
        f"BAD-HASH    simple/{bf.project}/index.html ({bf.filename}: sha256 does not match "
        "the file)" in proc.stdout
    )


def test_both_pages_give_a_wrong_size(tree):
    root, info = tree
    bf = next(f for f in info["files"] if f.filename.endswith(".tar.gz"))
    for name in ("index.html", "index.json"):
        page = root / "simple" / bf.project / name
        old = f'data-size="{bf.size}"' if name == "index.html" else f'"size": {bf.size}'
        rewrite(page, old, old.replace(str(bf.size), str(bf.size + 1)))
    proc = run_verify(root)
    assert lines(proc.stdout, "CORRUPT") == [
        f"CORRUPT     {bf.relpath} (size {bf.size}, page says {bf.size + 1})"
    ]


def test_page_referencing_missing_file(tree):
    root, _ = tree
    rewrite(
        root / "simple" / "alpha" / "index.html",
        "</body>",
        f'<a href="../../packages/alpha/ghost-1.0.tar.gz#sha256={"1" * 64}">ghost</a>\n</body>',
    )
    proc = run_verify(root)
    assert proc.returncode == 1
    assert (
        "MISSING     packages/alpha/ghost-1.0.tar.gz (linked by simple/alpha/index.html)"
        in proc.stdout
    )


def test_json_page_referencing_missing_file(tree):
    root, _ = tree
    page = root / "simple" / "beta" / "index.json"
    data = json.loads(page.read_text())
    data["files"].append(
        {"filename": "x.whl", "url": "../../packages/beta/x.whl", "hashes": {"sha256": "1" * 64}}
    )
    page.write_text(json.dumps(data))
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "MISSING     packages/beta/x.whl (linked by simple/beta/index.json)" in proc.stdout


def test_link_without_a_hash(tree):
    root, info = tree
    bf = info["files"][0]
    rewrite(root / "simple" / bf.project / "index.html", f"#sha256={bf.sha256}", "")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"BAD-LINK    simple/{bf.project}/index.html" in proc.stdout and "no sha256" in (
        proc.stdout
    )


def test_link_leaving_the_tree(tree):
    root, _ = tree
    rewrite(
        root / "simple" / "alpha" / "index.html",
        "</body>",
        '<a href="https://example.org/x.whl">x</a>\n<a href="../../../etc/passwd">p</a>\n</body>',
    )
    proc = run_verify(root)
    assert proc.returncode == 1
    assert len([line for line in lines(proc.stdout, "BAD-LINK") if "leaves the tree" in line]) == 2


def test_link_outside_packages(tree):
    root, _ = tree
    rewrite(
        root / "simple" / "alpha" / "index.html",
        "</body>",
        f'<a href="../../morgan.ini#sha256={"1" * 64}">x</a>\n</body>',
    )
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "morgan.ini is not a file under packages/" in proc.stdout


def test_malformed_pages(tree):
    root, _ = tree
    (root / "simple" / "alpha" / "index.json").write_text('{"files": [')
    (root / "simple" / "beta" / "index.json").write_text(
        json.dumps({"name": "someone-else", "files": []})
    )
    proc = run_verify(root)
    assert proc.returncode == 1
    bad = lines(proc.stdout, "BAD-PAGE")
    assert [line.split()[1] for line in bad] == [
        "simple/alpha/index.json",
        "simple/beta/index.json",
    ]


def test_malformed_root_json(tree):
    root, _ = tree
    (root / "simple" / "index.json").write_text('{"meta": {}, "projects": [{"name": "alpha"},')
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "BAD-PAGE    simple/index.json" in proc.stdout
    # a broken root page is not compared with the other one
    assert "DISAGREE" not in proc.stdout and "UNLISTED" not in proc.stdout


# ---------------------------------------------------------------------------------------
# manifest.json: the top-level files
# ---------------------------------------------------------------------------------------


def test_top_level_file_corrupt_or_missing(tree):
    root, _ = tree
    (root / "server.py").write_text("print('pwned')\n")
    (root / "morgan.ini").unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "CORRUPT     server.py (size" in proc.stdout
    assert "MISSING     morgan.ini" in proc.stdout


def test_corrupt_manifest(tree):
    root, _ = tree
    (root / "manifest.json").write_text('{"format": "morgan-like-manifest/2", "files": [1]}')
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "CORRUPT     manifest.json" in proc.stdout


def test_manifest_entry_leaving_the_tree(tree):
    root, _ = tree
    data = json.loads((root / "manifest.json").read_text())
    data["files"]["../outside"] = {"size": 1, "sha256": "0" * 64}
    (root / "manifest.json").write_text(json.dumps(data))
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "BAD-ENTRY   ../outside (not a tree-relative path)" in proc.stdout


def test_format_1_tree_still_verifies(tmp_path):
    """Old trees: manifest.json lists every file; the root index.json is one line."""
    root = tmp_path / "tree"
    info = build_tree(
        root,
        {"alpha": ["1.0", "1.1"], "beta": ["2.0"]},
        sdist_for=("beta",),
        manifest_format=1,
        root_json="one-line",
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == "morgan-like-manifest/1"
    assert "packages/alpha/alpha-1.0-py3-none-any.whl" in manifest["files"]
    assert len((root / "simple" / "index.json").read_text().splitlines()) == 1
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problems" in proc.stdout and "11 files checked" in proc.stdout
    # still catches a corrupt file, and still checks the top-level files
    rel = info["files"][0].relpath
    (root / rel).write_bytes(b"broken")
    (root / "morgan.ini").write_text("[changed]\n")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"CORRUPT     {rel} (size 6, page says" in proc.stdout
    assert "CORRUPT     morgan.ini" in proc.stdout


def test_root_json_layouts(tmp_path):
    """The root index.json streams in the new one-project-a-line layout and the old one."""
    for layout in ("lines", "one-line", "indented"):
        root = tmp_path / layout
        build_tree(root, {f"p{i}": ["1.0"] for i in range(30)}, root_json=layout)
        code, out, err = verify_in_process(root)
        assert code == 0, (layout, out, err)
        assert "30 projects" in out


def test_progress_by_projects_on_a_terminal(tree):
    class TTY(io.StringIO):
        def isatty(self):
            return True

    out, err = io.StringIO(), TTY()
    assert load_server_module().verify(str(tree[0]), out, err) == 0
    assert "verifying: 2/2 projects" in err.getvalue()


# ---------------------------------------------------------------------------------------
# The streaming JSON reader
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 65536])
def test_json_stream_any_chunking(chunk):
    mod = load_server_module()
    doc = {
        "meta": {"api-version": "1.1", "_last-serial": 1234567},
        "projects": [{"name": "a" * n, "_last-serial": 10**n} for n in range(1, 12)],
        "tail": 12345678901234567890,
        "text": 'with "quotes", brackets ]} and \u00e9',
    }
    for text in (
        json.dumps(doc),
        json.dumps(doc, indent=2),
        render_root_json([(p["name"], p["_last-serial"]) for p in doc["projects"]], 1234567),
    ):
        expected = json.loads(text)
        stream = mod._JSONStream(io.StringIO(text), chunk=chunk)
        got = {}
        projects = []
        for key, value in stream.members("projects"):
            if key == "projects":
                projects.append(value)
            else:
                got[key] = value
        assert stream.streamed
        assert projects == expected["projects"]
        assert got == {k: v for k, v in expected.items() if k != "projects"}


@pytest.mark.parametrize(
    "text",
    ['{"files": {"a": 1,}}', '{"files": {"a" 1}}', '{"files": {"a": 1}} x', "[]", '{"a": 1'],
)
def test_json_stream_rejects_malformed(text):
    mod = load_server_module()
    with pytest.raises(ValueError):
        list(mod._JSONStream(io.StringIO(text), chunk=3).members("files"))


# ---------------------------------------------------------------------------------------
# Other interpreters
# ---------------------------------------------------------------------------------------


def test_verify_on_python36(tree):
    if not PY36.exists():
        pytest.skip("no CPython 3.6")
    root, info = tree
    proc = run_verify(root, str(PY36))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (root / info["files"][0].relpath).write_bytes(b"broken")
    (root / "packages" / "alpha" / "evil.whl").write_bytes(b"x")
    (root / "simple" / "index.json").write_text('{"meta": {}, "projects": [{"name": "alpha"}]}')
    proc = run_verify(root, str(PY36))
    assert proc.returncode == 1
    assert "CORRUPT     " + info["files"][0].relpath in proc.stdout
    assert "UNEXPECTED  packages/alpha/evil.whl" in proc.stdout
    assert "DISAGREE    simple/ (beta: in simple/index.html, not in simple/index.json)" in (
        proc.stdout
    )


def test_format_1_tree_on_python36(tmp_path):
    if not PY36.exists():
        pytest.skip("no CPython 3.6")
    root = tmp_path / "tree"
    build_tree(root, {"alpha": ["1.0"]}, manifest_format=1, root_json="one-line")
    proc = run_verify(root, str(PY36))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------
# The server's ETags come from the project pages, not from a manifest
# ---------------------------------------------------------------------------------------


def get(srv: InProcessServer, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def test_file_etag_from_the_project_page_without_a_manifest(tree):
    root, info = tree
    (root / "manifest.json").unlink()
    bf = wheel(info)
    with InProcessServer(root) as srv:
        resp, body = get(srv, "/" + bf.relpath)
        assert resp.status == 200 and len(body) == bf.size
        etag = resp.getheader("ETag")
        assert etag == f'"sha256-{bf.sha256}"'
        resp, body = get(srv, "/" + bf.relpath, {"If-None-Match": etag})
        assert resp.status == 304 and body == b""
        assert resp.getheader("ETag") == etag
        # the .metadata file: the page's core-metadata hash
        resp, _ = get(srv, "/" + bf.relpath + ".metadata")
        assert resp.getheader("ETag") == f'"sha256-{bf.metadata_sha256}"'
        # an sdist (no .metadata)
        sdist = next(f for f in info["files"] if f.filename.endswith(".tar.gz"))
        resp, _ = get(srv, "/" + sdist.relpath)
        assert resp.getheader("ETag") == f'"sha256-{sdist.sha256}"'


def test_file_etag_follows_a_rewritten_page(tree):
    root, info = tree
    bf = wheel(info)
    with InProcessServer(root) as srv:
        resp, _ = get(srv, "/" + bf.relpath)
        assert resp.getheader("ETag") == f'"sha256-{bf.sha256}"'
        # the page no longer describes the file (size differs): the mtime/size ETag
        path = root / bf.relpath
        path.write_bytes(path.read_bytes() + b"more")
        resp, _ = get(srv, "/" + bf.relpath)
        fallback = resp.getheader("ETag")
        assert fallback.startswith('"f') and "sha256" not in fallback
        # a rewritten page (new size and hash) is read again
        data = path.read_bytes()
        new_sha = hashlib.sha256(data).hexdigest()
        for name in ("index.json", "index.html"):
            page = root / "simple" / "alpha" / name
            text = page.read_text().replace(bf.sha256, new_sha)
            text = text.replace(f'"size": {bf.size}', f'"size": {len(data)}')
            text = text.replace(f'data-size="{bf.size}"', f'data-size="{len(data)}"')
            page.write_text(text)
            os.utime(page, ns=(1, 1))  # a different stat signature, whatever the clock
        resp, _ = get(srv, "/" + bf.relpath)
        assert resp.getheader("ETag") == f'"sha256-{new_sha}"'


def test_file_etag_without_any_page(tree):
    root, info = tree
    bf = info["files"][0]
    for name in ("index.json", "index.html"):
        (root / "simple" / bf.project / name).unlink()
    with InProcessServer(root) as srv:
        resp, body = get(srv, "/" + bf.relpath)
        assert resp.status == 200
        etag = resp.getheader("ETag")
        assert etag.startswith('"f')
        resp, _ = get(srv, "/" + bf.relpath, {"If-None-Match": etag})
        assert resp.status == 304


def test_file_etag_from_the_html_page_when_there_is_no_json(tree):
    root, info = tree
    bf = wheel(info)
    (root / "simple" / "alpha" / "index.json").unlink()
    with InProcessServer(root) as srv:
        resp, _ = get(srv, "/" + bf.relpath)
        assert resp.getheader("ETag") == f'"sha256-{bf.sha256}"'


def test_page_hash_never_injects_headers(tree):
    root, info = tree
    bf = wheel(info)
    page = root / "simple" / "alpha" / "index.json"
    data = json.loads(page.read_text())
    for entry in data["files"]:
        entry["hashes"]["sha256"] = 'x"\r\nSet-Cookie: a=b'
    page.write_text(json.dumps(data))
    (root / "simple" / "alpha" / "index.html").unlink()
    with InProcessServer(root) as srv:
        resp, _ = get(srv, "/" + bf.relpath)
        assert resp.status == 200
        assert resp.getheader("Set-Cookie") is None
        assert resp.getheader("ETag").startswith('"f')


def test_server_start_up_reads_no_page(tree, monkeypatch):
    """Start-up loads no per-file state: no page or manifest is opened."""
    root, _ = tree
    mod = load_server_module()
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(mod, "open", spy, raising=False)
    tree_obj = mod.Tree(str(root))
    assert tree_obj is not None
    assert not [p for p in opened if p.endswith((".json", ".html"))]
