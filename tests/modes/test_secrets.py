"""No secret is printed or written: credentials given in ``-I`` never leave the process.

The fake upstream wants basic auth; mirror, sync and verify --repair run with
the password in the upstream URL, at every verbosity, through failures that
name URLs (a missing project, a file that cannot be fetched).  Then every line
they printed and every file of the tree, the hidden state included, is
searched for the password: the state keeps the upstream without its
credentials (a repair that needs them takes -I again, or ~/.netrc).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.cli import main

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel

USER, PASSWORD = "alice", "s3cr3t-Pa55word"


@pytest.fixture
def private(fake_index: FakeIndex, dists: Path, tiny_backend_wheel: Path) -> FakeIndex:
    fake_index.add(tiny_backend_wheel)
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    sdist(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    wheel(fake_index, dists, "lib", "1.0")
    fake_index.auth = (USER, PASSWORD)
    return fake_index


def _url(index: FakeIndex) -> str:
    return index.url.replace("://", f"://{USER}:{PASSWORD}@")


def _leaks(tree: Path) -> list[str]:
    """Every file under ``tree`` (hidden ones too) whose bytes hold the password."""
    secret = PASSWORD.encode()
    return [
        p.relative_to(tree).as_posix()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and secret in p.read_bytes()
    ]


def _config(tree: Path, requirements: str) -> None:
    tree.mkdir(parents=True, exist_ok=True)
    text = ini_env_block("linux", "3.12.1") + "[requirements]\n" + requirements
    (tree / "morgan.ini").write_text(text)


def test_mirror_prints_and_writes_no_password(
    private: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "bundle"
    _config(tree, "app =\n")
    assert main(["mirror", "-i", str(tree), "-I", _url(private), "-vv"]) == 0
    assert (tree / "packages/lib/lib-1.0-py3-none-any.whl").is_file()  # it did authenticate
    # A file that cannot be fetched: its error names the URL.
    wheel(private, tmp_path / "dists", "lib", "2.0")
    private.corrupt("lib-2.0-py3-none-any.whl")
    assert main(["mirror", "-i", str(tree), "-I", _url(private), "-v"]) == 1
    # A project upstream does not have: its error names the index.
    _config(tree, "app =\nno-such-project =\n")
    assert main(["mirror", "-i", str(tree), "-I", _url(private), "-v"]) != 0
    out = capsys.readouterr()
    assert "Resolving" in out.out + out.err and "no-such-project" in out.out + out.err
    assert PASSWORD not in out.out + out.err
    assert _leaks(tree) == []
    # The dry run too.
    assert main(["mirror", "-i", str(tree), "-I", _url(private), "--dry-run", "-vv"]) != 0
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err


def test_sync_and_repair_print_and_write_no_password(
    private: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "mirror"
    diff = tmp_path / "diff.txt"
    argv = ["sync", "-i", str(tree), "-I", _url(private), "--diff-file", str(diff), "-vv"]
    assert main(argv) == 0
    assert (tree / "packages/lib/lib-1.0-py3-none-any.whl").is_file()
    (tree / "packages/lib/lib-1.0-py3-none-any.whl").unlink()
    # Without -I the repair reads the upstream from the state: no credentials kept there.
    assert main(["verify", "-i", str(tree), "--repair"]) == 1
    assert main(["verify", "-i", str(tree), "--repair", "-I", _url(private)]) == 0
    out = capsys.readouterr()
    assert "Serial list from" in out.out + out.err
    assert PASSWORD not in out.out + out.err
    assert _leaks(tree) == []
    assert PASSWORD not in diff.read_text()


def test_a_password_in_morgan_ini_is_warned_about_and_not_printed(
    private: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config is the user's file, copied into the tree as written: its password is
    used, never printed, and the run says to keep it elsewhere."""
    tree = tmp_path / "bundle"
    _config(tree, "app =\n")
    with open(tree / "morgan.ini", "a") as fh:
        fh.write(f"[mirror]\nindex-url = {_url(private)}\n")
    assert main(["mirror", "-i", str(tree), "-v"]) == 0
    out = capsys.readouterr()
    assert "index-url holds a password" in out.err + out.out
    assert PASSWORD not in out.out + out.err
    assert _leaks(tree) == ["morgan.ini"]  # the user's own config, as written


def test_a_token_given_as_the_user_is_not_printed(
    private: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``https://TOKEN@host/``: the user part is the secret (redacted as pip does)."""
    token = "tok-5ecret-0123456789"
    private.auth = (token, "")
    tree = tmp_path / "bundle"
    _config(tree, "app =\n")
    url = private.url.replace("://", f"://{token}@")
    assert main(["mirror", "-i", str(tree), "-I", url, "-v"]) == 0
    out = capsys.readouterr()
    assert "Resolving" in out.out and "://****@127.0.0.1" in out.out
    assert token not in out.out + out.err
