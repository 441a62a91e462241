"""``morgan-like serve``: morgan 0.15's command, the tree's server.py run in-process with
the flags it was given (any invocation used to end in "unexpected AttributeError")."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

from morgan_like.cli.commands import server_argv
from morgan_like.cli.parse import parse_command_line
from morgan_like.modes.serve import load_server

from .clients import CHECK, MATRIX_DISTS, installed, make_venv, pip_install
from .server_support import SubprocessServer, write_tree


def _console_script() -> Path:
    script = shutil.which("morgan-like", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the morgan-like console script is not installed next to this python")
    return Path(script)


def _serve(root: Path, *args: str) -> SubprocessServer:
    """``morgan-like serve -i ROOT -H 127.0.0.1 -p 0 ARGS`` (SubprocessServer runs
    ``PYTHON SCRIPT -i ...``: here the console script and its command)."""
    return SubprocessServer(root, python=str(_console_script()), script=Path("serve"), args=args)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served") / "tree"
    write_tree(root, MATRIX_DISTS)
    return root


def test_serve_passes_each_given_flag_and_leaves_the_rest_to_server_py(tmp_path: Path) -> None:
    parsed = parse_command_line(
        ["-i", str(tmp_path), "serve", "--threads", "4", "--timeout", "2.5"]
        + ["--access-log", "log.txt", "--log-format", "combined", "--auth-file", "users"]
        + ["--certfile", "c.pem", "--keyfile", "k.pem", "--view-by-user-agent", "-p", "0"]
    )
    argv = server_argv(parsed.args)
    assert argv[:6] == ["-i", str(tmp_path), "-H", "0.0.0.0", "-p", "0"]
    assert argv[6:] == [
        "--threads", "4", "--timeout", "2.5", "--access-log", "log.txt",
        "--log-format", "combined", "--certfile", "c.pem", "--keyfile", "k.pem",
        "--auth-file", "users", "--view-by-user-agent",
    ]  # fmt: skip
    server = load_server().build_parser().parse_args(argv)
    assert (server.threads, server.timeout, server.log_format) == (4, 2.5, "combined")
    plain = server_argv(parse_command_line(["serve", "-q", "--no-metadata"]).args)
    assert plain[-2:] == ["--no-metadata", "-q"] and "--threads" not in plain


def test_serve_serves_the_tree_with_the_flags_it_was_given(tree: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    args = ("--threads", "3", "--timeout", "5", "--access-log", str(log))
    with _serve(tree, *args, "--log-format", "combined") as server:
        assert "3 threads" in server.startup_line
        request = urllib.request.Request(
            f"{server.base}/simple/gamma/", headers={"User-Agent": "probe/1", "Referer": "r"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert b"gamma-0.5-py3-none-any.whl" in answer.read()
    line = log.read_text().splitlines()[-1]
    assert '"GET /simple/gamma/ HTTP/1.1" 200' in line and line.endswith('"r" "probe/1"')


def _logged(tree: Path, *args: str) -> list[str]:
    server = _serve(tree, *args)
    try:
        urllib.request.urlopen(f"{server.base}/simple/", timeout=30).read()
    finally:
        rc, err = server.stop()
    assert rc == 0 and "Traceback" not in err, err
    return [line for line in server.log_lines if "GET /simple/ " in line]


def test_serve_logs_to_stdout_by_default_and_q_turns_it_off(tree: Path) -> None:
    """The README: the access log is on by default (stdout); -q turns it off."""
    assert len(_logged(tree)) == 1
    assert _logged(tree, "-q") == []


@pytest.mark.e2e
def test_pip_installs_through_morgan_like_serve(tree: Path, tmp_path: Path) -> None:
    venv = make_venv(sys.executable, tmp_path / "venv")
    with _serve(tree, "--threads", "8", "--timeout", "20") as server:
        pip_install(venv, f"{server.base}/simple/", "gamma")
    assert installed(venv, CHECK) == "2.0 1.0 0.5"


def test_the_readme_says_the_servers_defaults() -> None:
    """The Commands section's defaults for serve are server.py's."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    defaults = load_server().build_parser().parse_args([])
    assert f"`--threads` (default {defaults.threads})" in section
    assert f"`--timeout` (default {defaults.timeout:g} s)" in section
    assert defaults.access_log == "-" and not defaults.quiet
    assert "the access log is on, to stdout" in " ".join(section.split())
    assert "all off by default" not in section
    for action in load_server().build_parser()._actions:
        if action.dest in ("threads", "timeout", "access_log", "log_format", "auth_file"):
            assert f"`{action.option_strings[-1]}`" in section
