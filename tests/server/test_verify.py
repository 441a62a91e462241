"""``server.py --verify``: an offline integrity check of a tree against manifest.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..server_support import SERVER_PY, Dist, load_server_module, write_manifest, write_tree


@pytest.fixture
def tree(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "tree"
    info = write_tree(
        root,
        [Dist("alpha", "1.0"), Dist("alpha", "1.1"), Dist("beta", "2.0", requires=["alpha"])],
        sdist_for=("beta",),
    )
    return root, info


def run_verify(root: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, str(SERVER_PY), "--verify", "-i", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_intact_tree_passes(tree):
    proc = run_verify(tree[0])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problems" in proc.stdout


def test_verify_in_process(tree, capsys):
    mod = load_server_module()
    assert mod.verify(str(tree[0])) == 0
    assert mod.main(["--verify", "-i", str(tree[0])]) == 0


def test_flipped_byte(tree):
    root, info = tree
    path = root / info["files"][0].relpath
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "CORRUPT" in proc.stdout and info["files"][0].relpath in proc.stdout
    assert "sha256" in proc.stdout


def test_truncated_file(tree):
    root, info = tree
    path = root / info["files"][1].relpath
    path.write_bytes(path.read_bytes()[:-10])
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "CORRUPT" in proc.stdout and "size" in proc.stdout


def test_missing_file(tree):
    root, info = tree
    rel = info["files"][2].relpath
    (root / rel).unlink()
    proc = run_verify(root)
    assert proc.returncode == 1
    assert f"MISSING     {rel}" in proc.stdout
    # the page that links it is reported too
    assert "BROKEN-LINK" in proc.stdout


def test_unexpected_file(tree):
    root, _ = tree
    (root / "packages" / "alpha" / "evil-6.6-py3-none-any.whl").write_bytes(b"x")
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "UNEXPECTED  packages/alpha/evil-6.6-py3-none-any.whl" in proc.stdout


def test_hidden_files_are_ignored(tree):
    root, _ = tree
    (root / ".morgan-like" / "tmp-download").write_bytes(b"partial")
    (root / "packages" / ".DS_Store").write_bytes(b"mac")
    proc = run_verify(root)
    assert proc.returncode == 0, proc.stdout


def test_page_referencing_missing_file(tree):
    root, _ = tree
    page = root / "simple" / "alpha" / "index.html"
    page.write_text(
        page.read_text().replace(
            "</body>", '<a href="../../packages/alpha/ghost-1.0.tar.gz">ghost</a>\n</body>'
        )
    )
    write_manifest(root)  # the manifest agrees with the bad page: only the link check sees it
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "BROKEN-LINK" in proc.stdout and "ghost-1.0.tar.gz" in proc.stdout


def test_json_page_referencing_missing_file(tree):
    root, _ = tree
    page = root / "simple" / "beta" / "index.json"
    data = json.loads(page.read_text())
    data["files"].append({"filename": "x.whl", "url": "../../packages/beta/x.whl", "hashes": {}})
    page.write_text(json.dumps(data))
    write_manifest(root)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "simple/beta/index.json" in proc.stdout and "x.whl" in proc.stdout


def test_root_page_referencing_missing_project(tree):
    root, _ = tree
    page = root / "simple" / "index.html"
    page.write_text(page.read_text().replace("</body>", '<a href="gone/">gone</a>\n</body>'))
    write_manifest(root)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "gone" in proc.stdout


def test_page_hash_disagrees_with_manifest(tree):
    root, info = tree
    bf = info["files"][0]
    page = root / "simple" / bf.project / "index.html"
    page.write_text(page.read_text().replace(bf.sha256, "0" * 64))
    write_manifest(root)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "BAD-HASH" in proc.stdout


def test_link_leaving_the_tree(tree):
    root, _ = tree
    page = root / "simple" / "alpha" / "index.html"
    page.write_text(
        page.read_text().replace("</body>", '<a href="https://example.org/x.whl">x</a>\n</body>')
    )
    write_manifest(root)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "leaves the tree" in proc.stdout


def test_no_manifest(tree):
    (tree[0] / "manifest.json").unlink()
    proc = run_verify(tree[0])
    assert proc.returncode == 2
    assert "manifest.json" in proc.stderr


def test_symlink_reported(tree, tmp_path):
    root, _ = tree
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    (root / "packages" / "alpha" / "link.whl").symlink_to(outside)
    proc = run_verify(root)
    assert proc.returncode == 1
    assert "SYMLINK" in proc.stdout


def test_verify_on_python36(tree):
    py36 = Path("/root/.pyenv/versions/3.6.15/bin/python")
    if not py36.exists():
        pytest.skip("no CPython 3.6")
    root, info = tree
    assert run_verify(root, str(py36)).returncode == 0
    (root / info["files"][0].relpath).write_bytes(b"broken")
    proc = run_verify(root, str(py36))
    assert proc.returncode == 1 and "CORRUPT" in proc.stdout


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
