"""The command line: morgan 0.15's commands and flags keep their meaning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like import __version__
from morgan_like.cli import main
from morgan_like.cli.parse import parse_command_line
from morgan_like.config.ini import load_config

# morgan 0.15's commands with the flags each of them uses, in morgan's spellings.
MORGAN_FORMS = {
    "mirror": [
        ["-i", "x"],
        ["-I", "http://127.0.0.1:1/simple/"],
        ["-c", "x.ini"],
        ["--skip-server-copy"],
        ["-a"],
        ["--package-type-regex", "whl"],
        ["-W"],
    ],
    "serve": [["-i", "x"], ["-H", "127.0.0.1"], ["-p", "9000"], ["--no-metadata"]],
    "copy_server": [["-i", "x"]],
    "generate_env": [["-e", "name"]],
    "generate_reqs": [["-m", "=="]],
    "version": [],
}


@pytest.mark.parametrize("command", sorted(MORGAN_FORMS))
def test_every_morgan_command_and_flag_parses_before_or_after_the_command(command: str) -> None:
    """``morgan -i DIR mirror`` (morgan's own order) and ``morgan mirror -i DIR``."""
    argv = [arg for flag in MORGAN_FORMS[command] for arg in flag]
    for line in ([*argv, command], [command, *argv], [*argv[:2], command, *argv[2:]]):
        parsed = parse_command_line(line)
        assert parsed.command == command
        if command == "mirror":
            assert parsed.args.mirror_all_versions and parsed.args.mirror_all_wheels
            assert parsed.args.config == "x.ini" and parsed.args.index_path == "x"
        if command == "serve":
            assert parsed.args.no_metadata and parsed.args.port == 9000


def test_version(capsys) -> None:
    assert main(["version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "morgan_like", "version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_the_quick_exit_keeps_the_exit_code_and_flushes_piped_output(tmp_path: Path) -> None:
    """run() ends with os._exit: what was buffered for a pipe must still come out, and
    the code must be main's."""
    proc = subprocess.run(
        [sys.executable, "-m", "morgan_like", "mirror", "-i", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "config file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "morgan_like", "generate_reqs"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.endswith("\n") and len(proc.stdout) > 100


def test_generate_env_output_loads_back(tmp_path: Path, capsys) -> None:
    assert main(["generate_env", "-e", "here"]) == 0
    block = capsys.readouterr().out
    assert "[env.here]" in block
    (tmp_path / "morgan.ini").write_text(block + "\n[requirements]\nrequests =\n")
    config = load_config(tmp_path / "morgan.ini")
    assert [e.name for e in config.environments] == ["here"]


def test_generate_env_without_name_never_says_none(capsys) -> None:
    assert main(["generate_env"]) == 0
    assert "[env.None]" not in capsys.readouterr().out


def test_copy_server_writes_it_into_the_tree(tmp_path: Path, capsys) -> None:
    assert main(["copy_server", "-i", str(tmp_path)]) == 0
    assert (tmp_path / "server.py").is_file()
    assert "server.py" in (tmp_path / "manifest.json").read_text()


def test_missing_config_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["mirror", "-i", str(tmp_path), "-I", "http://127.0.0.1:9/simple/"]) == 2
    err = capsys.readouterr().err
    assert "morgan.ini" in err


def test_bad_index_url_is_rejected(capsys) -> None:
    assert main(["mirror", "-I", "not a url"]) == 2
    assert "argument -I/--index-url: " in capsys.readouterr().err


def test_verify_command_checks_a_built_tree(tmp_path: Path, fake_index, dists) -> None:
    from .helpers import ini_env_block, wheel

    wheel(fake_index, dists, "solo", "1.0")
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("e", "3.12.1") + "[requirements]\nsolo =\n")
    assert main(["mirror", "-q", "-i", str(root), "-I", fake_index.url]) == 0
    assert main(["verify", "-i", str(root)]) == 0
    victim = root / "packages/solo/solo-1.0-py3-none-any.whl"
    data = bytearray(victim.read_bytes())
    data[10] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert main(["verify", "-i", str(root)]) != 0
