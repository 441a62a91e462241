"""Every command of ``morgan-like``: its name, its line in ``morgan-like --help`` and
the head of its own ``--help``, in the order ``--help`` lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # one line, in ``morgan-like --help``
    description: str  # the head of ``morgan-like NAME --help``


COMMANDS = (
    Command(
        "mirror",
        "build or update a bundle from the tree's morgan.ini",
        "Resolve every env of the config, download what each needs and write the tree "
        "(pages, per-env views, server.py).  Reads -i's morgan.ini unless -c names a config.",
    ),
    Command(
        "sync",
        "keep a full mirror (a whole index, or a filtered slice) in step",
        "Sync the tree named by -i (required unless the current directory is a sync tree) "
        "from the upstream's serial list.",
    ),
    Command(
        "verify",
        "check a tree offline; --repair / --remove-unreferenced mend it",
        "Check every file against its page and the top-level files against manifest.json "
        "(as python3 server.py --verify), then mend the tree when asked.",
    ),
    Command(
        "genlocal",
        "rebuild a sync's state from a tree (ours, bandersnatch's, shadowmire's)",
        "Rebuild the sync state from a tree, so that sync takes over incrementally.",
    ),
    Command(
        "serve",
        "serve the tree with server.py",
        "Run the tree's index server (the same as python3 server.py) in this process.",
    ),
    Command(
        "export",
        "write what a restricted site lacks as tar volumes to carry across the gap",
        "Write the files site --site does not have yet (or all, with --full) into numbered "
        "plain tar volumes with a manifest and a README.txt, for python3 server.py --import "
        "on the far side.",
    ),
    Command("copy_server", "copy server.py into the tree", "Copy server.py into the tree."),
    Command(
        "nginx-config",
        "print an nginx config serving the tree as server.py does",
        "Print an nginx config (a map and a server block) serving the tree.",
    ),
    Command(
        "generate_env",
        "print an [env.NAME] block for this interpreter",
        "Print this interpreter's markers and exact tags as an [env.NAME] block.",
    ),
    Command(
        "generate_reqs",
        "print a [requirements] block of the installed distributions",
        "Print a [requirements] block pinning every installed distribution.",
    ),
    Command(
        "genconfig",
        "print a sync config translated from a bandersnatch.conf",
        "Print the [mirror] and [sync] sections that make sync keep what a bandersnatch "
        "8.2 config keeps, naming each option that could not be translated.",
    ),
    Command("version", "print the version", "Print morgan-like's version."),
)
COMMAND_NAMES = tuple(c.name for c in COMMANDS)
