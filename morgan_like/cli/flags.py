"""Every flag, and which commands take each flag: one table (the commands themselves
are in ``commandtable.py``).

morgan 0.15 had one flat parser, so every flag was accepted by every command and
most were silently ignored (``sync --prune``).  Here a flag belongs to the
commands that use it; ``parse.py`` builds one parser per command from this
table, and refuses a flag its command does not use, naming those that take it.

``serve`` also takes every serving flag of ``server.py`` itself (``--threads``,
``--timeout``, ``--auth-file``, ...): those are read from server.py's own parser
(``server_actions``), so a flag added there is passed through without an edit here.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from morgan_like.cli import values
from morgan_like.cli.commandtable import COMMAND_NAMES

ALL = frozenset(COMMAND_NAMES)


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    commands: frozenset[str]
    help: str | Mapping[str, str]  # one text, or one per command
    options: Mapping[str, Any] = field(default_factory=dict)  # argparse keywords
    per_command: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def help_for(self, command: str) -> str:
        return self.help if isinstance(self.help, str) else self.help[command]

    def options_for(self, command: str) -> dict[str, Any]:
        return {**self.options, **self.per_command.get(command, {}), "help": self.help_for(command)}


def _flag(names: str, commands: str, help: Any, **options: Any) -> Flag:
    """``commands``: the names of those that take the flag, or ``*`` for every one."""
    per_command = options.pop("per_command", {})
    where = ALL if commands == "*" else frozenset(commands.split())
    return Flag(tuple(names.split()), where, help, options, per_command)


_RUNS = "mirror sync"
FLAGS = (
    _flag(
        "-i --index-path",
        "mirror sync verify genlocal serve copy_server nginx-config export",
        {
            "export": "the tree to export from (default: the current directory)",
            "mirror": "the bundle's tree (default: the current directory); its morgan.ini is "
            "the config unless -c names one",
            "sync": "the mirror's tree; required unless the current directory is a sync tree",
            "verify": "the tree to check (default: the current directory)",
            "genlocal": "the tree whose sync state to rebuild (default: the current directory)",
            "serve": "the tree to serve (default: the current directory)",
            "copy_server": "the tree (default: the current directory)",
            "nginx-config": "the tree to serve (default: the current directory)",
        },
        type=values.index_path,
        metavar="DIR",
        per_command={
            command: {"metavar": "DIR|s3://BUCKET/PREFIX"}
            for command in ("mirror", "sync", "verify", "export", "nginx-config")
        },
    ),
    _flag(
        "--local-state",
        "mirror sync verify export nginx-config",
        "with -i s3://BUCKET/PREFIX: the local working tree (pages, state, lock) pushed to "
        "the bucket (default: ~/.cache/morgan-like/s3/<hash of the URL>/)",
        type=values.local_state,
        metavar="DIR",
    ),
    _flag(
        "-I --index-url",
        "mirror sync verify",
        {
            "mirror": "upstream index (default: [mirror] index-url, else pip's index, else PyPI)",
            "sync": "upstream index (default: [mirror] index-url, else pip's index, else PyPI)",
            "verify": "with --repair: where broken files are fetched from (default: the "
            "upstream the last sync used, else morgan.ini's, else pip's index)",
        },
        type=values.index_url,
        metavar="URL",
    ),
    _flag(
        "-c --config",
        _RUNS,
        "config file (default: DIR/morgan.ini)",
        nargs="?",
        metavar="FILE",
    ),
    _flag("--skip-server-copy", _RUNS, "do not copy server.py into the tree", action="store_true"),
    _flag(
        "-a --mirror-all-versions",
        "mirror",
        "for top-level requirements, mirror every matching version (each with its dependencies)",
        action="store_true",
    ),
    _flag(
        "--package-type-regex",
        "mirror",
        "regex on the file extension of files to mirror (default: (whl|zip|tar\\.gz))",
        type=values.package_type_regex,
        metavar="REGEX",
    ),
    _flag(
        "-W --mirror-all-wheels",
        "mirror",
        "for top-level requirements, mirror every compatible wheel, not only the one pip "
        "would pick",
        action="store_true",
    ),
    _flag("--pre", "mirror", "allow prereleases everywhere (as pip --pre)", action="store_true"),
    _flag(
        "--no-prefer-binary",
        "mirror",
        "pick the newest version that satisfies, even when only an older one has a wheel "
        "for the env (default: binary first, as pip --prefer-binary; or [mirror] "
        "prefer-binary)",
        dest="prefer_binary",
        action="store_false",
        default=None,
    ),
    _flag(
        "--static-metadata-only",
        "mirror",
        "never run an sdist's build backend to learn its dependencies or build "
        "requirements; stop instead when they are not static",
        action="store_true",
    ),
    _flag(
        "--dry-run",
        _RUNS,
        {
            "mirror": "resolve and print the plan; download only metadata",
            "sync": "print the plan and what it would download; write nothing",
        },
        action="store_true",
    ),
    _flag(
        "--workers",
        _RUNS,
        "parallel downloads (default: 32)",
        type=values.positive_int,
        metavar="N",
    ),
    _flag(
        "--diff-file",
        _RUNS,
        "write the paths this run created or changed to this file",
        metavar="PATH",
    ),
    _flag(
        "--diff-append-epoch",
        _RUNS,
        "append -<epoch> to the diff-file name",
        action="store_true",
    ),
    _flag("--prune", "mirror", "remove files no longer in the plan", action="store_true"),
    _flag(
        "--no-cross-host-redirects",
        _RUNS,
        "refuse an upstream redirect to another host, naming the URL (default: follow it "
        "and warn once per host; or cross-host-redirects in [mirror] / [sync])",
        dest="cross_host_redirects",
        action="store_false",
        default=None,
    ),
    _flag(
        "--wait-lock",
        "mirror sync copy_server genlocal verify",
        "when another run is writing the tree, wait for it (at most SECONDS, default: as "
        "long as it takes) instead of stopping at once",
        nargs="?",
        type=values.wait_seconds,
        const=math.inf,
        metavar="SECONDS",
        per_command={
            "verify": {
                "help": "with --repair / --remove-unreferenced: wait for another run "
                "writing the tree (at most SECONDS, default: as long as it takes)"
            }
        },
    ),
    _flag(
        "--serial-source",
        "sync",
        "where the upstream's serial list comes from: its PEP 691 root index, XML-RPC "
        "list_packages_with_serial, another mirror's local.json, or (names) the root "
        "index's names without serials, every page fetched each run (default: auto, in "
        "that order)",
        choices=("auto", "simple", "xmlrpc", "local-json", "names"),
    ),
    _flag(
        "--index-only",
        "sync",
        "write pages only, linking the upstream's file URLs; download no files",
        action="store_true",
        default=None,
    ),
    _flag(
        "--exclude",
        "sync",
        "leave out projects whose normalized name matches (at its start); repeatable",
        action="append",
        default=[],
        type=values.name_regex,
        metavar="REGEX",
    ),
    _flag(
        "--prerelease-exclude",
        "sync",
        "leave out the prereleases of matching projects; repeatable",
        action="append",
        default=[],
        type=values.name_regex,
        metavar="REGEX",
    ),
    _flag(
        "--max-deletions",
        "sync",
        "refuse the whole run (deleting nothing) when more than N projects would be "
        "removed (default: 1%% of the tree's projects, at least 10)",
        type=values.count,
        metavar="N",
    ),
    _flag(
        "--repair",
        "verify",
        "after the report, fetch missing or corrupt files again (by name and sha256) from "
        "-I, else the upstream the last sync used, else morgan.ini's, else pip's index",
        action="store_true",
    ),
    _flag(
        "--remove-unreferenced",
        "verify",
        "delete the files under packages/ that no page links (after the report)",
        action="store_true",
    ),
    _flag(
        "--provenance",
        "verify",
        "also check each file's PEP 740 provenance offline against the file (signatures "
        "too where pypi-attestations is importable) and name its publisher",
        action="store_true",
    ),
    _flag(
        "--from",
        "genlocal",
        "a tree written by bandersnatch or shadowmire to take over (default: -i itself)",
        dest="source",
        metavar="DIR",
    ),
    _flag(
        "--from-bandersnatch",
        "genconfig",
        "the bandersnatch.conf to translate",
        metavar="FILE",
    ),
    _flag(
        "-o --output",
        "export",
        "the empty folder (or disk) to write the export to",
        metavar="DIR",
    ),
    _flag("--site", "export", "the restricted site the export is for", metavar="NAME"),
    _flag(
        "--volume-size",
        "export",
        "the largest volume, e.g. 4G, 700M (default: 4G); a larger file gets a volume alone",
        type=values.byte_size,
        metavar="SIZE",
    ),
    _flag(
        "--full",
        "export",
        "send every file of the tree, not only what the site lacks",
        action="store_true",
    ),
    _flag(
        "--since",
        "export",
        "the generation the site's tree is at (default: the one it was last sent)",
        type=values.positive_int,
        metavar="GEN",
    ),
    _flag(
        "--list-sites",
        "export",
        "list each site's generation and what it lacks, and export nothing",
        action="store_true",
    ),
    _flag(
        "--receipt",
        "export",
        "record the site at the generation of this receipt (python3 server.py --receipt)",
        metavar="FILE",
    ),
    _flag(
        "--hmac-key-file",
        "export",
        "sign the manifest with HMAC-SHA256 and this key, shared with the far side",
        metavar="FILE",
    ),
    _flag(
        "-H --host",
        "serve nginx-config",
        "address to listen on (default: 0.0.0.0)",
        type=values.listen_host,
        default="0.0.0.0",
    ),
    _flag(
        "-p --port",
        "serve nginx-config",
        {
            "serve": "port (default: 8080; 0: any free port)",
            "nginx-config": "port (default: 8080)",
        },
        default=8080,
        per_command={
            "serve": {"type": values.server_port},
            "nginx-config": {"type": values.nginx_port},
        },
    ),
    _flag(
        "--no-metadata",
        "serve",
        "do not serve PEP 658 .metadata files (and drop their mention from the pages)",
        action="store_true",
    ),
    _flag(
        "-e --env",
        "generate_env",
        "the env's name (default: e.g. cpython3.12-linux-x86_64)",
        type=values.env_name,
        metavar="NAME",
    ),
    _flag(
        "-m --mode",
        "generate_reqs",
        "version operator of each line",
        choices=(">=", "==", "<="),
        default=">=",
    ),
    _flag(
        "-v --verbose",
        "*",
        "more output (-v: an unexpected error's traceback too)",
        action="count",
        default=0,
    ),
    _flag(
        "-q --quiet",
        "*",
        {
            **dict.fromkeys(COMMAND_NAMES, "less output"),
            "serve": "no access log",
        },
        action="count",
        default=0,
    ),
)

# server.py flags serve does not pass through: it sets -i and -q itself (above), and
# these do other jobs than serving (the verify command is --verify [--provenance];
# --import and --receipt are the offline side of export).
SERVER_NOT_SERVING = frozenset(
    {"-h", "--version", "--verify", "--provenance", "--hash-password", "-i", "-q"}
    | {"--import", "--hmac-key-file", "--receipt", "-o", "--output"}
)


def flags_of(command: str) -> list[Flag]:
    return [flag for flag in FLAGS if command in flag.commands]


def server_actions() -> list[argparse.Action]:
    """server.py's serving flags that our own table does not define (``--threads``,
    ``--timeout``, ``--access-log``, ``--log-format``, ``--certfile``, ``--keyfile``,
    ``--auth-file``, ...), copied from its parser with no default: only the flags given
    are passed on, and server.py keeps its own defaults.  Fresh copies: a parser owns
    the actions added to it."""
    return [copy.copy(action) for action in _server_actions()]


@functools.lru_cache(maxsize=1)
def _server_actions() -> tuple[argparse.Action, ...]:
    from morgan_like.modes.serve import load_server

    ours = {name for flag in flags_of("serve") for name in flag.names}
    found = []
    for action in load_server().build_parser()._actions:
        names = set(action.option_strings)
        if not names or names & (SERVER_NOT_SERVING | ours):
            continue
        action = copy.copy(action)
        action.default = argparse.SUPPRESS
        found.append(action)
    return tuple(found)
