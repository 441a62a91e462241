"""The whole (command, flag) matrix: each command accepts exactly the flags it uses, and
every form the old flat parser accepted for those flags parses to the same values.

``_old_parser`` is the flat parser morgan_like had before each command got its own
(morgan 0.15's design: every flag for every command, options before or after the
command), kept here as it was so that the forms it accepted stay the reference.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections.abc import Iterator

import pytest

from morgan_like.cli import main
from morgan_like.cli.flags import COMMAND_NAMES, server_actions
from morgan_like.cli.parse import CommandLineError, HelpShown, command_parser, parse_command_line

OLD_COMMANDS = (
    "generate_env", "generate_reqs", "mirror", "sync", "genlocal", "serve", "copy_server",
    "version", "verify", "nginx-config",
)  # fmt: skip


def _old_url(value: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"not an index URL: {value!r}")
    return value if value.endswith("/") else value + "/"


class _Refused(Exception):
    pass


class _OldParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise _Refused(message)


def _old_parser() -> argparse.ArgumentParser:
    """The parser of morgan_like/cli.py before one parser per command (help texts left out)."""
    p = _OldParser(prog="morgan-like")
    p.add_argument("command", choices=OLD_COMMANDS)
    p.add_argument("-i", "--index-path", default="CWD")
    p.add_argument("-I", "--index-url", type=_old_url)
    p.add_argument("-c", "--config", nargs="?")
    p.add_argument("--skip-server-copy", action="store_true")
    p.add_argument("-a", "--mirror-all-versions", action="store_true")
    p.add_argument("--package-type-regex", default=None)
    p.add_argument("-W", "--mirror-all-wheels", action="store_true")
    p.add_argument("--pre", action="store_true")
    p.add_argument("--no-prefer-binary", dest="prefer_binary", action="store_false", default=None)
    p.add_argument("--static-metadata-only", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--diff-file")
    p.add_argument("--diff-append-epoch", action="store_true")
    p.add_argument("--prune", action="store_true")
    p.add_argument("--wait-lock", nargs="?", type=float, const=math.inf, default=None)
    p.add_argument("--serial-source", choices=("auto", "simple", "xmlrpc", "local-json", "names"))
    p.add_argument("--index-only", action="store_true", default=None)
    p.add_argument("--exclude", action="append", default=[])
    p.add_argument("--prerelease-exclude", action="append", default=[])
    p.add_argument("--max-deletions", type=int, default=None)
    p.add_argument("--repair", action="store_true")
    p.add_argument("--remove-unreferenced", action="store_true")
    p.add_argument("--from", dest="source", default=None)
    p.add_argument("-H", "--host", default="0.0.0.0")
    p.add_argument("-p", "--port", type=int, default=8080)
    p.add_argument("--no-metadata", action="store_true")
    p.add_argument("-e", "--env")
    p.add_argument("-m", "--mode", choices=[">=", "==", "<="], default=">=")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--quiet", action="count", default=0)
    return p


# Which command uses which flag (by dest): the specification the matrix checks.
_RUNS = {"index_path", "index_url", "config", "skip_server_copy", "dry_run", "workers"}
_RUNS |= {"diff_file", "diff_append_epoch", "wait_lock", "cross_host_redirects"}
_SERVER = {"index_path", "host", "port", "no_metadata"}
_SERVER |= {"threads", "timeout", "access_log", "log_format", "certfile", "keyfile"}
_SERVER |= {"auth_file", "view_by_user_agent"}
USES = {
    "mirror": _RUNS
    | {"mirror_all_versions", "package_type_regex", "mirror_all_wheels", "pre"}
    | {"prefer_binary", "static_metadata_only", "prune", "local_state"},
    "sync": _RUNS
    | {"serial_source", "index_only", "exclude", "prerelease_exclude"}
    | {"max_deletions", "local_state"},
    "verify": {
        "index_path",
        "repair",
        "remove_unreferenced",
        "index_url",
        "wait_lock",
        "provenance",
        "local_state",
    },
    "genlocal": {"index_path", "source", "wait_lock"},
    # and whatever else server.py serves with: passed through as server.py defines it
    "serve": _SERVER | {action.dest for action in server_actions()},
    "copy_server": {"index_path", "wait_lock"},
    "export": {"index_path", "output", "site", "volume_size", "full", "since", "list_sites"}
    | {"receipt", "hmac_key_file", "local_state"},
    "nginx-config": {"index_path", "host", "port", "local_state"},
    "generate_env": {"env"},
    "generate_reqs": {"mode"},
    "genconfig": {"from_bandersnatch"},
    "version": set(),
}
COMMON = {"verbose", "quiet"}

# A value every command taking the flag accepts, old parser and new.
VALUES = {
    "index_path": "x",
    "index_url": "http://127.0.0.1:1/simple/",
    "config": "x.ini",
    "package_type_regex": "whl",
    "workers": "3",
    "diff_file": "d.txt",
    "wait_lock": "5",
    "serial_source": "simple",
    "exclude": "foo",
    "prerelease_exclude": "bar",
    "max_deletions": "4",
    "volume_size": "700M",
    "since": "3",
    "source": "src",
    "host": "127.0.0.1",
    "port": "9000",
    "env": "name",
    "mode": "==",
    "threads": "4",
    "timeout": "7",
    "access_log": "-",
    "log_format": "combined",
    "certfile": "c.pem",
    "keyfile": "k.pem",
    "auth_file": "users",
    "public_url": "https://mirror.example.org/",
    "max_per_address": "8",
}


def _value(action: argparse.Action) -> str:
    """VALUES's, else one server.py's parser takes for a flag it added since."""
    if action.dest in VALUES:
        return VALUES[action.dest]
    if action.choices:
        return str(list(action.choices)[0])
    return "3" if action.type in (int, float) else "x"


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _spellings(parser: argparse.ArgumentParser) -> Iterator[tuple[str, list[str]]]:
    """(dest, tokens) for every way of giving each flag: each option string, with its
    value apart, attached (-iX) or after '=' (--index-path=X), a switch twice or
    clustered (-vv), and every shortened long form the old parser resolved."""
    longs = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = VALUES.get(action.dest, "")
        for option in action.option_strings:
            names = [option]
            if option.startswith("--"):
                names += [
                    option[:n]
                    for n in range(3, len(option))
                    if [s for s in longs if s.startswith(option[:n])] == [option]
                ]
            for name in names:
                if not _takes_value(action):
                    yield action.dest, [name]
                    if action.nargs == 0 and isinstance(action, argparse._CountAction):
                        yield action.dest, [name, name]
                    continue
                yield action.dest, [name, value]
                yield action.dest, [f"{name}={value}"] if name.startswith("--") else [name + value]
                if action.nargs == "?":
                    yield action.dest, [name]
        if isinstance(action, argparse._CountAction):
            short = [s for s in action.option_strings if not s.startswith("--")][0]
            yield action.dest, [short + short[1:]]


def _old(argv: list[str]) -> argparse.Namespace | None:
    try:
        return _old_parser().parse_args(argv)
    except _Refused:
        return None


def _new(argv: list[str]) -> argparse.Namespace:
    return parse_command_line(argv).args


def _forms() -> Iterator[tuple[str, str, list[str]]]:
    for command in COMMAND_NAMES:
        for dest, tokens in _spellings(_old_parser()):
            for argv in ([command, *tokens], [*tokens, command]):
                yield command, dest, argv


FORMS = list(_forms())


def test_the_old_forms_of_a_commands_flags_parse_to_the_same_values() -> None:
    checked = 0
    for command, dest, argv in FORMS:
        if dest not in USES[command] | COMMON:
            continue
        old = _old(argv)
        if old is None:  # the old parser refused it too (-c taking the command as its value)
            continue
        new = _new(argv)
        assert getattr(new, dest) == getattr(old, dest), argv
        checked += 1
    assert checked > 500


def test_a_flag_the_command_does_not_use_is_refused_naming_who_takes_it() -> None:
    refused = 0
    for command, dest, argv in FORMS:
        if dest in USES[command] | COMMON or _old(argv) is None:
            continue
        with pytest.raises(CommandLineError) as caught:
            _new(argv)
        message = str(caught.value)
        assert "\n" not in message, argv
        takers = [c for c in COMMAND_NAMES if dest in USES[c]]
        assert f"is not a {command} flag" in message or "ambiguous" in message, (argv, message)
        if "it could be" in message:  # a shortened flag now matching several
            assert all(c in message for c in takers), message
        elif "ambiguous" not in message:
            assert message.split("it is taken by ")[1].startswith(", ".join(takers)), message
        refused += 1
    assert refused > 500


def test_each_command_takes_exactly_its_flags() -> None:
    """Every flag of the new parsers too (serve's server.py flags included)."""
    every: dict[str, argparse.Action] = {}
    for command in COMMAND_NAMES:
        for action in command_parser(command)._actions:
            if action.option_strings and action.dest != "help":
                every.setdefault(action.dest, action)
    assert set(every) == set().union(*USES.values()) | COMMON
    for command in COMMAND_NAMES:
        for dest, action in every.items():
            argv = [command, action.option_strings[0]]
            if action.nargs != 0 and dest != "wait_lock":
                argv.append(_value(action))
            if dest in USES[command] | COMMON:
                assert getattr(_new(argv), dest) is not None, argv
            else:
                with pytest.raises(CommandLineError, match=f"not a {command} flag"):
                    _new(argv)


def test_serve_passes_every_serving_flag_of_server_py() -> None:
    given = {a.dest for a in server_actions()}
    assert {"threads", "timeout", "access_log", "log_format", "certfile"} <= given
    assert {"keyfile", "auth_file"} <= given
    assert not given & {"verify", "hash_password", "version", "index_path", "quiet"}


@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_each_command_has_its_own_help(command: str, capsys) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: morgan-like {command} ")
    shown = {s for a in command_parser(command)._actions for s in a.option_strings}
    for names in (
        ["--prune"],
        ["--serial-source"],
        ["--remove-unreferenced"],
        ["--threads"],
        ["--env"],
    ):
        assert (names[0] in out) == (names[0] in shown), (command, names)


def test_help_before_the_command_and_the_overview(capsys) -> None:
    assert main(["-h", "sync"]) == 0
    assert capsys.readouterr().out.startswith("usage: morgan-like sync ")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMAND_NAMES) and "--prune" not in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sync", "--prune"], "--prune is not a sync flag; it is taken by mirror"),
        (["sync", "--pre"], "--pre is not a sync flag; it is taken by mirror"),
        (["sync", "--repair"], "--repair is not a sync flag; it is taken by verify"),
        (
            ["-H", "h", "mirror"],
            "-H/--host is not a mirror flag; it is taken by serve, nginx-config",
        ),
        (["nginx-config", "--no-metadata"], "--no-metadata is not a nginx-config flag"),
        (["version", "-i", "x"], "-i/--index-path is not a version flag"),
        ([], "a command is required"),
        (["mirrorr"], "unknown command 'mirrorr'"),
        (["mirror", "--bogus"], "unrecognized arguments: --bogus"),
        (["mirror", "--d"], "ambiguous option: --d could match"),
    ],
)
def test_refusals_are_one_line_with_exit_code_2(argv, expected, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_command_word_that_is_a_flags_value_is_not_the_command() -> None:
    parsed = parse_command_line(["-e", "mirror", "generate_env"])
    assert parsed.command == "generate_env" and parsed.args.env == "mirror"
    parsed = parse_command_line(["-i", "sync", "mirror"])
    assert parsed.command == "mirror" and parsed.args.index_path == "sync"
    parsed = parse_command_line(["mirror", "-c", "sync"])
    assert parsed.command == "mirror" and parsed.args.config == "sync"


def test_a_shortened_flag_means_what_it_meant_for_every_command() -> None:
    """``sync --prerel`` is --prerelease-exclude; ``--pre`` stays mirror's flag; ``--c``
    is --config (not serve's --certfile), ``--v`` --verbose; server.py's flags shorten
    among themselves."""
    assert parse_command_line(["sync", "--prerel", "x"]).args.prerelease_exclude == ["x"]
    assert parse_command_line(["mirror", "--dry"]).args.dry_run is True
    assert parse_command_line(["serve", "--v"]).args.verbose == 1
    assert parse_command_line(["serve", "--thr", "3"]).args.threads == 3
    with pytest.raises(CommandLineError, match="--pre is not a sync flag"):
        parse_command_line(["sync", "--pre", "x"])
    with pytest.raises(CommandLineError, match="-c/--config is not a serve flag"):
        parse_command_line(["serve", "--c", "x"])
    with pytest.raises(CommandLineError, match="ambiguous option: --t could match"):
        parse_command_line(["serve", "--t", "3"])


def test_the_console_script_refuses_in_one_line(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "morgan_like", "sync", "-i", str(tmp_path), "--prune"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "morgan-like sync: error: --prune is not a sync flag; it is taken by mirror "
        "(see morgan-like sync --help)"
    ]


def test_help_is_not_an_error() -> None:
    with pytest.raises(HelpShown):
        parse_command_line(["mirror", "-h"])
