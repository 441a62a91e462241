"""``server.py --import`` / ``--receipt``: an export applied offline with the stdlib.

The source trees are real (tests/server_support.write_tree: the writer's pages,
manifest.json, server.py); the exports are built by tests/transfer_support.make_export
per the transfer format.  Each refusal must leave the site's tree byte-identical,
hidden state included.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ..clients import pyenv_python
from ..server_support import SERVER_PY, Dist, load_server_module, write_tree
from ..transfer_support import (
    MANIFEST,
    TREE_ID,
    make_export,
    snapshot,
    tree_delta,
    tree_files,
    write_manifest,
)

KEY = b"shared secret key"


def run(*args, python=sys.executable, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), str(SERVER_PY), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Generation 1 (a 1.0, b 1.0 with an sdist) and generation 2 (a 2.0 added, b gone,
    c new): new files, changed pages and removals."""
    base = tmp_path_factory.mktemp("trees")
    v1, v2 = base / "v1", base / "v2"
    write_tree(v1, [Dist("a", "1.0"), Dist("b", "1.0")], sdist_for=("b",))
    shutil.copytree(v1, v2)
    shutil.rmtree(v2 / "packages" / "b")
    shutil.rmtree(v2 / "simple" / "b")
    write_tree(v2, [Dist("a", "1.0"), Dist("a", "2.0", payload=b"x" * 5000), Dist("c", "1.0")])
    return v1, v2


def make_site(path: Path, tree: Path, generation: int = 1, tree_id: str = TREE_ID) -> Path:
    """A copy of TREE's visible files that took generation GENERATION of TREE_ID."""
    shutil.copytree(tree, path, ignore=shutil.ignore_patterns(".*"))
    (path / ".morgan-like").mkdir()
    (path / ".morgan-like" / "generation.json").write_text(
        json.dumps(
            {"format": "morgan-like-generation/1", "tree": tree_id, "generation": generation}
        )
    )
    return path


@pytest.fixture
def site(tmp_path, trees):
    return make_site(tmp_path / "site", trees[0])


@pytest.fixture
def delta(tmp_path, trees):
    """The export taking generation 1 to 2, in volumes of about 4 kB (several)."""
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    out = tmp_path / "export"
    make_export(out, v2, files, removed, base=1, generation=2, volume_size=4000)
    return out


def assert_refused(result, site_before, site, *words):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "import refused:" in result.stderr
    for word in words:
        assert word in result.stderr
    assert snapshot(site) == site_before


def assert_at(site: Path, tree: Path, generation: int):
    assert tree_files(site) == tree_files(tree)
    assert run("--verify", "-i", site).returncode == 0
    receipt = json.loads(run("--receipt", "-i", site).stdout)
    assert receipt == {
        "format": "morgan-like-generation/1",
        "tree": TREE_ID,
        "generation": generation,
    }
    assert not (site / ".morgan-like" / "import").exists()


# ---------------------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------------------


def test_delta_applies_and_second_import_changes_nothing(site, delta, trees):
    assert len(list(delta.glob("vol-*.tar"))) > 1
    result = run("--import", delta, "-i", site)
    assert result.returncode == 0, result.stderr
    assert "export manifest sha256:" in result.stdout
    assert "now at generation 2" in result.stdout
    assert_at(site, trees[1], 2)
    assert not (site / "packages" / "b").exists()

    before = snapshot(site)
    again = run("--import", delta, "-i", site)
    assert again.returncode == 0, again.stderr
    assert "nothing to do, nothing changed" in again.stdout
    assert snapshot(site) == before


def test_full_export_into_an_empty_directory_then_a_delta(tmp_path, trees, delta):
    v1, v2 = trees
    files, _ = tree_delta(None, v1)
    full = tmp_path / "full"
    make_export(full, v1, files, base=0, generation=1, full=True)
    site = tmp_path / "empty"
    site.mkdir()
    assert run("--import", full, "-i", site).returncode == 0
    assert_at(site, v1, 1)
    assert run("--import", delta, "-i", site).returncode == 0
    assert_at(site, v2, 2)


def test_full_export_removes_what_it_does_not_list(tmp_path, trees):
    v1, v2 = trees
    site = make_site(tmp_path / "site", v1, generation=7, tree_id="f" * 32)
    files, _ = tree_delta(None, v2)
    full = tmp_path / "full"
    make_export(full, v2, files, base=0, generation=2, full=True)
    assert run("--import", full, "-i", site).returncode == 0
    assert_at(site, v2, 2)


def test_plain_directory_unpacked_by_hand(tmp_path, site, trees):
    """No volume in DIR: the files lie under DIR at their paths, the manifest beside."""
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    built = tmp_path / "built"
    make_export(built, v2, files, removed, base=1, generation=2)
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(built / MANIFEST, plain / MANIFEST)
    for rel in files:
        (plain / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(v2 / rel, plain / rel)
    result = run("--import", plain, "-i", site)
    assert result.returncode == 0, result.stderr
    assert_at(site, v2, 2)


def test_hmac_signed_export(tmp_path, site, trees):
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    out = tmp_path / "signed"
    make_export(out, v2, files, removed, base=1, generation=2, hmac_key=KEY)
    key = tmp_path / "key"
    key.write_bytes(KEY + b"\n")
    result = run("--import", out, "-i", site, "--hmac-key-file", key)
    assert result.returncode == 0, result.stderr
    assert "signature verified" in result.stdout
    assert_at(site, v2, 2)


def test_receipt_to_a_file_and_before_any_import(tmp_path, site, trees):
    target = tmp_path / "receipt.json"
    assert run("--receipt", "-i", site, "-o", target).returncode == 0
    assert json.loads(target.read_text())["generation"] == 1
    bare = tmp_path / "bare"
    shutil.copytree(trees[0], bare, ignore=shutil.ignore_patterns(".*"))
    result = run("--receipt", "-i", bare)
    assert result.returncode == 1
    assert "--full" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--receipt", "--import", "DIR"],
        ["-o", "x.json"],
        ["--hmac-key-file", "k"],
        ["--import", "/no/such/export"],
        ["--import", "DIR", "--hmac-key-file", "/no/such/key"],
    ],
)
def test_bad_options_exit_2(args, site, delta):
    args = [str(delta) if a == "DIR" else a for a in args]
    result = run(*args, "-i", site)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------
# Refusals: the tree stays byte-identical
# ---------------------------------------------------------------------------------------


def _corrupt(delta: Path):
    vol = delta / "vol-00001.tar"
    data = bytearray(vol.read_bytes())
    data[700] ^= 0xFF  # inside the first member's bytes
    vol.write_bytes(bytes(data))
    return "vol-00001.tar"


def _missing(delta: Path):
    (delta / "vol-00002.tar").unlink()
    return "vol-00002.tar"


def _truncated(delta: Path):
    vol = sorted(delta.glob("vol-*.tar"))[-1]
    vol.write_bytes(vol.read_bytes()[:-1024])
    return "truncated"


def _foreign(delta: Path):
    """vol-00001.tar of another export of the same tree (other files, same name)."""
    other = delta.parent / "other"
    manifest = json.loads((delta / MANIFEST).read_text())
    tree = delta.parent / "tree"
    (tree / "packages" / "z").mkdir(parents=True)
    (tree / "packages" / "z" / "z-1.0.tar.gz").write_bytes(b"z" * 3000)
    make_export(other, tree, ["packages/z/z-1.0.tar.gz"], base=1, generation=2)
    shutil.copyfile(other / "vol-00001.tar", delta / "vol-00001.tar")
    entry = manifest["volumes"][0]
    if (delta / "vol-00001.tar").stat().st_size != entry["size"]:
        return "vol-00001.tar"
    return "another export"


def _edited(delta: Path):
    manifest = json.loads((delta / MANIFEST).read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    write_manifest(delta, manifest)
    return manifest["files"][0]["path"]


@pytest.mark.parametrize(
    "damage", [_corrupt, _missing, _truncated, _foreign, _edited], ids=lambda f: f.__name__[1:]
)
def test_damaged_export_is_refused(site, delta, damage):
    before = snapshot(site)
    word = damage(delta)
    assert_refused(run("--import", delta, "-i", site), before, site, word)


@pytest.fixture
def signed(tmp_path, trees):
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    out = tmp_path / "signed"
    make_export(out, v2, files, removed, base=1, generation=2, hmac_key=KEY)
    key = tmp_path / "key"
    key.write_bytes(KEY)
    return out, key


def test_edited_signed_manifest_is_refused(site, signed):
    out, key = signed
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["removed"] = []  # keep a file the export removes: consistent, but not signed
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    before = snapshot(site)
    result = run("--import", out, "-i", site, "--hmac-key-file", key)
    assert_refused(result, before, site, MANIFEST + ".hmac", "does not match")


def test_signature_missing_or_other_key_is_refused(tmp_path, site, signed):
    out, key = signed
    before = snapshot(site)
    other = tmp_path / "other-key"
    other.write_bytes(b"another key")
    assert_refused(
        run("--import", out, "-i", site, "--hmac-key-file", other), before, site, "another key"
    )
    (out / (MANIFEST + ".hmac")).unlink()
    assert_refused(run("--import", out, "-i", site, "--hmac-key-file", key), before, site, ".hmac")


def test_wrong_base_names_both_generations(tmp_path, site, trees):
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    out = tmp_path / "late"
    make_export(out, v2, files, removed, base=3, generation=4)
    before = snapshot(site)
    result = run("--import", out, "-i", site)
    assert_refused(result, before, site, "generation 1", "needs generation 3", "--since 1")


def test_other_tree_is_refused(tmp_path, site, trees):
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    out = tmp_path / "other"
    make_export(out, v2, files, removed, base=1, generation=2, tree="e" * 32)
    before = snapshot(site)
    assert_refused(run("--import", out, "-i", site), before, site, "e" * 32, "--full")


def _member(name, kind=tarfile.REGTYPE, data=b"", linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.linkname = linkname
    return (info, data) if data else info


@pytest.mark.parametrize(
    "member, word",
    [
        (_member("../x", data=b"x"), "'../x'"),
        (_member("/etc/x", data=b"x"), "'/etc/x'"),
        (_member("packages/a/.hidden", data=b"x"), "packages/a/.hidden"),
        (_member("packages/a/evil", tarfile.SYMTYPE, linkname="/etc/passwd"), "symlink"),
        (_member("packages/a/hard", tarfile.LNKTYPE, linkname="server.py"), "hard link"),
        (_member("packages/a/dev", tarfile.CHRTYPE), "device"),
        (_member("packages/a/a-9.0.tar.gz", data=b"not listed"), "does not place"),
    ],
    ids=["dotdot", "absolute", "hidden", "symlink", "hardlink", "device", "unlisted"],
)
def test_unsafe_or_unlisted_member_is_refused(tmp_path, site, trees, member, word):
    v1, v2 = trees
    files, removed = tree_delta(v1, v2)
    out = tmp_path / "evil"
    make_export(out, v2, files, removed, base=1, generation=2, extra_members=[member])
    before = snapshot(site)
    assert_refused(run("--import", out, "-i", site), before, site, word)
    assert not (tmp_path / "x").exists()


def test_a_full_disk_while_staging_leaves_the_tree_at_its_generation(site, delta, capsys):
    server = load_server_module()
    before = snapshot(site)
    original = server._ImportProgress.add

    def full_disk(self, n):
        original(self, n)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    server._ImportProgress.add = full_disk
    try:
        out, err = io.StringIO(), io.StringIO()
        assert server.import_export(str(delta), str(site), None, out, err) == 1
    finally:
        server._ImportProgress.add = original
    assert "the disk is full" in err.getvalue()
    assert "stays at generation 1" in err.getvalue()
    assert snapshot(site) == before


# ---------------------------------------------------------------------------------------
# kill -9 half-way: the re-run finishes
# ---------------------------------------------------------------------------------------


def _steps(trees) -> int:
    files, removed = tree_delta(*trees)
    # each staged file, the journal (2), each rename, each removal, generation.json (2)
    return 2 * len(files) + len(removed) + 4


@pytest.mark.parametrize("where", [0.0, 0.3, 0.5, 0.55, 0.7, 0.9, 0.97, 1.0])
def test_killed_import_is_finished_by_a_rerun(site, delta, trees, where):
    step = max(1, round(where * _steps(trees)))
    env = dict(os.environ, MORGAN_LIKE_CRASH_AFTER=str(step))
    killed = run("--import", delta, "-i", site, env=env)
    assert killed.returncode == -9, (step, killed.stdout, killed.stderr)
    result = run("--import", delta, "-i", site)
    assert result.returncode == 0, result.stderr
    assert_at(site, trees[1], 2)


# ---------------------------------------------------------------------------------------
# The oldest and newest Pythons server.py supports
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.6.15", "3.13.0"])
def test_import_and_receipt_under_pyenv(version, site, delta, trees, tmp_path):
    python = pyenv_python(version)
    if not python.exists():
        pytest.skip(f"pyenv {version} not installed")
    result = run("--import", delta, "-i", site, python=python)
    assert result.returncode == 0, result.stderr
    assert tree_files(site) == tree_files(trees[1])
    receipt = run("--receipt", "-i", site, python=python)
    assert json.loads(receipt.stdout)["generation"] == 2
    # a refusal there too: one paragraph, no traceback
    (delta / "vol-00001.tar").unlink()
    again = make_site(tmp_path / "again", trees[0])
    refused = run("--import", delta, "-i", again, python=python)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
