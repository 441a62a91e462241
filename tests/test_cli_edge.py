"""The command line's edge: values refused naming their flag, paths resolved once, and
each command kept to its own kind of tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.modes.nginx import render_nginx_config
from morgan_like.targets.generate import generate_env
from morgan_like.tree.kind import tree_kind

from .fakeindex import FakeIndex
from .helpers import ini_env_block, wheel
from .modes.sync_support import sync


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected" not in err, err
    for text in expected:
        assert text in err, (text, err)
    return err


@pytest.fixture
def bundle(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> Path:
    wheel(fake_index, dists, "solo", "1.0")
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("e", "3.12.1") + "[requirements]\nsolo =\n")
    assert main(["mirror", "-q", "-i", str(root), "-I", fake_index.url]) == 0
    return root


@pytest.fixture
def mirror_tree(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> Path:
    wheel(fake_index, dists, "solo", "1.0")
    tree = tmp_path / "mirror"
    assert sync(tree, fake_index).rc == 0
    return tree


# --- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:99999/simple/", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1:0/simple/", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1:x/simple/", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1/simple/?a=1", "no query (?...) or fragment (#...)"),
        ("http://127.0.0.1/simple/#frag", "no query (?...) or fragment (#...)"),
        ("http://127.0.0.1/sim ple/", "no spaces or control characters"),
        ("ftp://127.0.0.1/simple/", "not an index URL"),
    ],
)
def test_a_bad_index_url_is_refused_naming_the_flag(url, expected, capsys) -> None:
    _refused(["mirror", "-I", url], capsys, "argument -I/--index-url", expected)


def test_an_index_url_ends_in_one_slash() -> None:
    from morgan_like.cli.values import index_url

    assert index_url("http://h/simple") == "http://h/simple/"
    assert index_url("http://h/simple//") == "http://h/simple/"
    assert index_url("https://u:p@h:8443") == "https://u:p@h:8443/"


def test_an_index_urls_password_is_not_echoed(capsys) -> None:
    err = _refused(["sync", "-I", "https://me:s3cret@127.0.0.1:99999/simple/"], capsys)
    assert "s3cret" not in err and "me:****@" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nginx-config", "-p", "99999"], "argument -p/--port: 99999 is not a port (1 to 65535)"),
        (["nginx-config", "-p", "0"], "argument -p/--port: 0 is not a port (1 to 65535)"),
        (["nginx-config", "-p", "-1"], "argument -p/--port"),
        (["nginx-config", "-H", "a;b"], "argument -H/--host: 'a;b' is neither an IP address"),
        (["nginx-config", "-H", "a b"], "argument -H/--host"),
        (["nginx-config", "-H", "1.2.3.999"], "argument -H/--host"),
        (["serve", "-p", "65536"], "argument -p/--port: 65536 is not a port (0 to 65535)"),
        (["serve", "-H", "}"], "argument -H/--host"),
        (["mirror", "--package-type-regex", "("], "argument --package-type-regex: '(' is not"),
        (["sync", "--exclude", "("], "argument --exclude: '(' is not a regular expression"),
        (["mirror", "--wait-lock", "nan"], "argument --wait-lock: 'nan' is not a number"),
        (["mirror", "--wait-lock", "-1"], "argument --wait-lock"),
        (["copy_server", "--wait-lock", "inf"], "argument --wait-lock"),
        (["mirror", "--workers", "0"], "argument --workers: '0' is not a whole number of 1"),
        (["sync", "--max-deletions", "-1"], "argument --max-deletions"),
        (["generate_env", "-e", "a\nb"], "argument -e/--env: 'a\\nb' cannot name an env"),
        (["generate_env", "-e", "../x"], "argument -e/--env"),
        (["generate_env", "-e", "a" * 101], "argument -e/--env"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(argv, expected, capsys) -> None:
    err = _refused(argv, capsys, expected)
    assert err.count("\n") == 1


def test_good_hosts_and_ports_pass(tmp_path: Path, capsys) -> None:
    (tmp_path / "simple").mkdir()
    for host in ("0.0.0.0", "::1", "[::1]", "localhost", "mirror.example.org", "10.0.0.1"):
        assert main(["nginx-config", "-i", str(tmp_path), "-H", host, "-p", "65535"]) == 0
    out = capsys.readouterr().out
    assert "listen [::1]:65535;" in out and "listen mirror.example.org:65535;" in out


def test_nginx_config_never_writes_a_bad_listen(tmp_path: Path) -> None:
    for host, port in (("a;b", 80), ("0.0.0.0", 99999), ("0.0.0.0", 0), ("x\n}", 80)):
        with pytest.raises(ValueError, match="cannot listen on this"):
            render_nginx_config(tmp_path, host, port)


def test_generate_env_refuses_a_name_no_env_can_have() -> None:
    with pytest.raises(ValueError, match="cannot name an env"):
        generate_env("a\nb")
    assert generate_env(" fine-1.0_x ").startswith("[env.fine-1.0_x]\n")


# --- paths -------------------------------------------------------------------------------


def test_index_path_naming_a_file_says_so(tmp_path: Path, capsys) -> None:
    config = tmp_path / "morgan.ini"
    config.write_text("[requirements]\n")
    _refused(
        ["mirror", "-i", str(config)],
        capsys,
        f"-i {config} is not a folder",
        "-i names a tree's folder",
        f"a config file goes with -c {config}",
    )
    _refused(["verify", "-i", str(config / "below")], capsys, "is not a folder")
    _refused(["copy_server", "-i", str(config)], capsys, "is not a folder")
    _refused(["genlocal", "-i", str(tmp_path), "--from", str(config)], capsys, "--from")


def test_a_relative_index_path_works_for_verify_repair_and_remove_unreferenced(
    mirror_tree: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(mirror_tree.parent)
    (mirror_tree / "packages/solo/stray.bin").write_bytes(b"x")
    capsys.readouterr()
    assert main(["verify", "-i", mirror_tree.name, "--remove-unreferenced"]) == 0
    assert not (mirror_tree / "packages/solo/stray.bin").exists()
    (mirror_tree / "packages/solo/solo-1.0-py3-none-any.whl").unlink()
    assert main(["verify", "-i", mirror_tree.name, "--repair"]) == 0
    assert (mirror_tree / "packages/solo/solo-1.0-py3-none-any.whl").is_file()
    assert main(["verify", "-i", mirror_tree.name]) == 0
    err = capsys.readouterr().err
    assert "unexpected" not in err and "relative path" not in err


def test_a_relative_index_path_works_for_a_sync_dry_run(
    mirror_tree: Path, fake_index: FakeIndex, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(mirror_tree.parent)
    rc = main(["sync", "-i", mirror_tree.name, "-I", fake_index.url, "--dry-run"])
    assert rc == 0, capsys.readouterr().err
    assert "unexpected" not in capsys.readouterr().err


def test_verify_refuses_flags_it_uses_only_when_mending(bundle: Path, capsys) -> None:
    _refused(["verify", "-i", str(bundle), "-I", "http://127.0.0.1:9/"], capsys, "--repair")
    _refused(["verify", "-i", str(bundle), "--wait-lock"], capsys, "--wait-lock only with")


# --- which tree each command writes --------------------------------------------------


def test_sync_without_a_tree_refuses_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    _refused(["sync", "-I", "http://127.0.0.1:9/simple/"], capsys, "give -i DIR")
    _refused(["sync", "--dry-run", "-I", "http://127.0.0.1:9/simple/"], capsys, "give -i DIR")
    assert list(tmp_path.iterdir()) == []


def test_sync_without_i_in_a_sync_tree_syncs_it(
    mirror_tree: Path, fake_index: FakeIndex, dists: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel(fake_index, dists, "more", "1.0")
    monkeypatch.chdir(mirror_tree)
    assert main(["sync", "-q", "-I", fake_index.url]) == 0
    assert (mirror_tree / "simple/more/index.html").is_file()


def test_sync_refuses_a_bundle_and_mirror_a_sync_tree(
    bundle: Path, mirror_tree: Path, fake_index: FakeIndex, capsys
) -> None:
    assert tree_kind(bundle) == "bundle" and tree_kind(mirror_tree) == "sync"
    before = sorted(p.name for p in (bundle / "simple").iterdir())
    _refused(
        ["sync", "-i", str(bundle), "-I", fake_index.url],
        capsys,
        "is a bundle built by mirror",
        f"morgan-like mirror -i {bundle}",
    )
    _refused(["sync", "-i", str(bundle), "-I", fake_index.url, "--dry-run"], capsys, "bundle")
    assert sorted(p.name for p in (bundle / "simple").iterdir()) == before
    (mirror_tree / "morgan.ini").write_text(
        ini_env_block("e", "3.12.1") + "[requirements]\nsolo =\n"
    )
    _refused(
        ["mirror", "-i", str(mirror_tree), "-I", fake_index.url],
        capsys,
        "is a full mirror kept by sync",
        f"morgan-like sync -i {mirror_tree}",
    )
    assert not (mirror_tree / "envs").exists()


def test_genlocal_refuses_a_bundle_and_nginx_config_a_folder_that_is_no_tree(
    bundle: Path, tmp_path: Path, capsys
) -> None:
    before = sorted((p, p.stat().st_mtime_ns) for p in bundle.rglob("*") if p.is_file())
    _refused(["genlocal", "-i", str(bundle)], capsys, "is a bundle built by mirror")
    assert sorted((p, p.stat().st_mtime_ns) for p in bundle.rglob("*") if p.is_file()) == before
    _refused(["nginx-config", "-i", str(tmp_path / "none")], capsys, "has no simple/")
    assert main(["nginx-config", "-i", str(bundle)]) == 0


def test_tree_kind_reads_what_each_command_leaves(tmp_path: Path) -> None:
    assert tree_kind(tmp_path / "none") is None
    assert tree_kind(tmp_path) is None
    (tmp_path / "simple").mkdir()
    assert tree_kind(tmp_path) is None
    (tmp_path / "morgan.ini").write_text("[requirements]\nx =\n")
    assert tree_kind(tmp_path) == "bundle"  # a bundle older than views and plan.json
    (tmp_path / "local.db.serial").write_text("5\n")
    assert tree_kind(tmp_path) == "sync"
    (tmp_path / "envs").mkdir()
    assert tree_kind(tmp_path) == "bundle"  # views: only mirror writes them
    other = tmp_path / "other"
    (other / "json").mkdir(parents=True)
    assert tree_kind(other) == "sync"


def test_a_killed_first_sync_is_a_sync_tree(
    mirror_tree: Path, tmp_path: Path, fake_index: FakeIndex
) -> None:
    """Its state says sync before anything is published."""
    for name in ("local.json", "local.db.serial"):
        (mirror_tree / name).unlink()
    for path in sorted((mirror_tree / "json").iterdir()):
        path.unlink()
    (mirror_tree / "json").rmdir()
    assert tree_kind(mirror_tree) == "sync"
    assert json.loads((mirror_tree / "manifest.json").read_text())  # still a tree
