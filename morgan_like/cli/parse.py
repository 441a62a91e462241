"""The command line: ``morgan-like [FLAGS] COMMAND [FLAGS]``, one parser per command.

morgan 0.15 read ``morgan [options] COMMAND`` with one flat parser, options before
or after the command.  Both positions keep working here, with the same spellings
(``-i DIR``, ``--index-path=DIR``, ``-iDIR``, and any long flag shortened while it is
unambiguous), but each command has its own parser, built from ``flags.py``: its own
``--help``, and a flag it does not use is refused, naming the commands that take it.

Parsing a line:

1. the command is the first word that names one (``-c mirror mirror`` aside: see 3);
2. the line is parsed by that command's parser; a shortened long flag is written out
   first as the flat parser read it, among every command's flags (``sync --pre`` is
   mirror's ``--pre``, refused, never a short ``--prerelease-exclude``; ``serve --c`` is
   ``--config``, refused, not ``--certfile``);
3. when that fails, one parser holding every flag of every command (values not checked)
   says why: a flag of other commands (the error names them), or a command word that
   was a flag's value (``-e mirror generate_env``), then parsed as its own command.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from morgan_like.cli.commandtable import COMMAND_NAMES, COMMANDS
from morgan_like.cli.flags import FLAGS, flags_of, server_actions

PROG = "morgan-like"


class CommandLineError(Exception):
    """A command line refused while parsing: one line, exit code 2."""

    exit_code = 2

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog
        self.message = message

    def __str__(self) -> str:
        # one line whatever the words given: a newline or an escape in them is shown escaped
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.message)
        return f"{self.prog}: error: {message} (see {self.prog} --help)"


class _Ambiguous(CommandLineError):
    def __init__(self, prog: str, name: str, matches: list[str]) -> None:
        super().__init__(prog, f"ambiguous option: {name} could match {', '.join(matches)}")
        self.name, self.matches = name, matches


class HelpShown(Exception):
    """``--help`` was printed: nothing to run (exit code 0)."""

    exit_code = 0


@dataclass(frozen=True)
class Parsed:
    command: str
    args: argparse.Namespace


class _Parser(argparse.ArgumentParser):
    """Errors and --help raise instead of exiting, so that main() decides the exit code
    and a failed parse can be explained (step 3)."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self.prog, message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        if status:
            raise CommandLineError(self.prog, (message or "").strip() or "refused")
        raise HelpShown()


@functools.cache
def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one command: exactly its flags, and its --help (built once: a
    parser keeps nothing of the lines it parses)."""
    about = next(c for c in COMMANDS if c.name == command)
    parser = _Parser(
        prog=f"{PROG} {command}",
        description=about.description,
        epilog=f"Flags may also come before the command, as with morgan: {PROG} [FLAGS] "
        f"{command} [FLAGS].",
        allow_abbrev=False,  # shortened flags are written out by _expand
    )
    parser.add_argument("command", choices=(command,), help=argparse.SUPPRESS)
    for flag in flags_of(command):
        parser.add_argument(*flag.names, **flag.options_for(command))
    if command == "serve":
        group = parser.add_argument_group(
            "server.py's options (passed on; defaults as python3 server.py --help says)"
        )
        for action in server_actions():
            group._add_action(action)
    return parser


@functools.lru_cache(maxsize=1)
def _union_parser() -> argparse.ArgumentParser:
    """Every flag of every command, values unchecked and nothing defaulted: which flags a
    line gives, and where its command is."""
    parser = _Parser(prog=PROG, add_help=False, allow_abbrev=False)
    parser.add_argument("-h", "--help", action="store_true", default=argparse.SUPPRESS)
    parser.add_argument("command", nargs="?", default=argparse.SUPPRESS)
    for flag in FLAGS:
        options = {
            key: value
            for key, value in flag.options.items()
            if key not in ("type", "choices", "default", "metavar")
        }
        parser.add_argument(*flag.names, default=argparse.SUPPRESS, **options)
    for action in server_actions():
        action.type, action.choices = None, None
        parser._add_action(action)
    return parser


@functools.lru_cache(maxsize=1)
def _owners() -> dict[str, tuple[str, frozenset[str]]]:
    """dest and each option string -> (the flag as shown, the commands that take it)."""
    owners = {}
    for flag in FLAGS:
        dest = flag.options.get("dest") or flag.names[-1].lstrip("-").replace("-", "_")
        for key in (dest, *flag.names):
            owners[key] = ("/".join(flag.names), flag.commands)
    for action in server_actions():
        for key in (action.dest, *action.option_strings):
            owners[key] = ("/".join(action.option_strings), frozenset({"serve"}))
    return owners


def _taken_by(takers: frozenset[str]) -> str:
    return ", ".join(name for name in COMMAND_NAMES if name in takers)


def _foreign_prefix(command: str, ambiguous: _Ambiguous) -> CommandLineError:
    """A shortened flag that is none of the command's: say which flags it could be."""
    owners = _owners()
    could = " or ".join(
        f"{match} (taken by {_taken_by(owners[match][1])})" for match in ambiguous.matches
    )
    return CommandLineError(
        f"{PROG} {command}", f"{ambiguous.name} is not a {command} flag; it could be {could}"
    )


@functools.cache
def _long_flags(server: bool) -> frozenset[str]:
    """Our long flags (the flat parser's), or the ones serve takes from server.py."""
    ours = {name for flag in FLAGS for name in flag.names if name.startswith("--")}
    if not server:
        return frozenset(ours)
    return frozenset(s for a in server_actions() for s in a.option_strings if s.startswith("--"))


def _written_out(name: str, prog: str) -> str | None:
    """The long flag ``name`` is, or shortens, as the flat parser read it: among our own
    flags first (``--c`` stays ``--config``, ``--v`` ``--verbose``), then server.py's
    (read only for a flag that is none of ours); None: no flag."""
    for server in (False, True):
        flags = _long_flags(server)
        if name in flags:
            return name
        matches = sorted(flag for flag in flags if flag.startswith(name))
        if len(matches) > 1 and not server:
            # --v stays --verbose for mirror when export adds --volume-size: among several,
            # the one flag the command takes (the others it would refuse anyway)
            command = prog.rsplit(" ", 1)[-1]
            taken = [m for m in matches if command in _owners()[m][1]]
            matches = taken if len(taken) == 1 else matches
        if len(matches) > 1:
            raise _Ambiguous(prog, name, matches)
        if matches:
            return matches[0]
    return None


def _expand(tokens: Sequence[str], prog: str) -> list[str]:
    """Shortened long flags written out (``--dry`` -> ``--dry-run``) as the flat parser
    resolved them, among every command's flags, so that a shortened form means the same
    flag whatever the command (and is refused as such where that flag is not taken)."""
    out: list[str] = []
    for index, token in enumerate(tokens):
        if token == "--":
            return out + list(tokens[index:])
        if not token.startswith("--"):
            out.append(token)
            continue
        name, eq, value = token.partition("=")
        flag = _written_out(name, prog)
        out.append(flag + eq + value if flag else token)
    return out


def _parse_as(command: str, tokens: Sequence[str]) -> Parsed:
    parser = command_parser(command)
    return Parsed(command, parser.parse_args(_expand(tokens, parser.prog)))


def _overview() -> str:
    width = max(len(name) for name in COMMAND_NAMES)
    lines = [
        f"usage: {PROG} [FLAGS] COMMAND [FLAGS]",
        "",
        "Build offline PyPI bundles that real pip and uv install from.",
        "",
        "commands:",
        *(f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS),
        "",
        f"Each command takes its own flags: {PROG} COMMAND --help lists them.",
        f"Example: {PROG} mirror -i ./bundle   (reads ./bundle/morgan.ini)",
    ]
    return "\n".join(lines) + "\n"


def _without_command(tokens: Sequence[str]) -> NoReturn:
    try:
        given = vars(_union_parser().parse_args(_expand(tokens, PROG)))
    except CommandLineError:
        given = {}
    if given.get("help"):
        sys.stdout.write(_overview())
        raise HelpShown()
    word = given.get("command")
    choices = ", ".join(COMMAND_NAMES)
    if word:
        raise CommandLineError(PROG, f"unknown command {word!r} (choose from {choices})")
    raise CommandLineError(PROG, f"a command is required: one of {choices}")


def parse_command_line(argv: Sequence[str] | None = None) -> Parsed:
    """The command and its options, parsed; CommandLineError or HelpShown otherwise."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    named = [t for t in tokens if t in COMMAND_NAMES]
    if not named:
        _without_command(tokens)
    try:
        return _parse_as(named[0], tokens)
    except _Ambiguous as ambiguous:
        owners = _owners()
        if any(named[0] in owners[match][1] for match in ambiguous.matches):
            raise
        raise _foreign_prefix(named[0], ambiguous) from None
    except CommandLineError as error:
        first_error = error
    try:  # words left over (a switch given a value: sync --pre x) leave it to first_error
        known, _ = _union_parser().parse_known_args(_expand(tokens, PROG))
    except CommandLineError:
        raise first_error from None
    given: dict[str, Any] = vars(known)
    command = given.pop("command", None)
    given.pop("help", None)
    if command not in COMMAND_NAMES:
        raise first_error
    owners = _owners()
    for dest in given:
        shown, takers = owners[dest]
        if command not in takers:
            raise CommandLineError(
                f"{PROG} {command}",
                f"{shown} is not a {command} flag; it is taken by {_taken_by(takers)}",
            )
    if command != named[0]:
        return _parse_as(command, tokens)
    raise first_error
