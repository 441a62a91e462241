"""Paths from the command line, resolved once, and the tree each command may write.

Every mode gets absolute paths: a relative ``-i`` made ``verify --repair`` fail
("relative path can't be expressed as a file URI") and ``sync --dry-run`` stop with an
unexpected error.  Paths are made absolute here, without following symlinks (a tree
reached through a symlink keeps that name in what is printed).

A tree holds one kind of index (``tree/kind.py``): ``sync`` refuses a bundle's tree,
``mirror`` a full mirror's, and ``sync`` never starts in a folder nobody named.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from morgan_like.tree.kind import tree_kind

if TYPE_CHECKING:
    from morgan_like.modes.bucket import BucketRun


class Refused(Exception):
    """A command line refused before any work (exit code 2): the message names the flag,
    what is wrong and what to give instead; main() prints it as a parse error."""


def absolute(value: str | None) -> Path:
    """``value`` (default: the current directory) as an absolute path."""
    return Path(os.path.abspath(value if value is not None else os.getcwd()))


def tree_path(value: str | None, flag: str = "-i") -> Path:
    """The tree a command works on: absolute, and a folder (or not there yet)."""
    from morgan_like.modes.bucket import is_bucket_url

    if is_bucket_url(value):
        raise Refused(
            f"{flag} {value}: this command works on a tree on local disk; a tree in a "
            "bucket is written by sync or mirror and served by nginx "
            f"(morgan-like nginx-config -i {value})"
        )
    path = absolute(value)
    for place in (path, *path.parents):
        if not place.exists() and not place.is_symlink():
            continue
        if place.is_dir():
            break
        shown = value if place == path else f"{value} (its {place})"
        hint = f"; {flag} names a tree's folder (the one holding morgan.ini, simple/, packages/)"
        if flag == "-i" and place == path and place.suffix in (".ini", ".cfg", ".toml", ".txt"):
            hint += f"; a config file goes with -c {value}"
        raise Refused(f"{flag} {shown} is not a folder{hint}")
    return path


def disk_tree(value: str | None) -> Path:
    """A tree on local disk a command reads as it is (serve, verify, export, genlocal,
    copy_server, nginx-config): never a bucket's working tree, whose files may be in the
    bucket only."""
    from morgan_like.modes.bucket import working_tree_of

    root = tree_path(value)
    url = working_tree_of(root)
    if url is not None:
        raise Refused(
            f"-i {root} is the working tree of {url} (its files are in the bucket, not "
            f"here): give -i {url} to verify or nginx-config; the other commands work on "
            "trees on local disk"
        )
    return root


def sync_tree(value: str | None) -> Path:
    """The tree sync writes: named by -i, or the current directory when it already is a
    sync tree (a sync started by accident would fetch a whole index into it)."""
    if value is None:
        here = absolute(None)
        if tree_kind(here) != "sync":
            raise Refused(
                f"sync needs the tree to write: give -i DIR (a new folder, or one sync made); "
                f"the current directory {here} is no sync tree, and a full mirror of PyPI "
                "is millions of files"
            )
        return here
    return not_a_bundle(tree_path(value), "sync")


def not_a_bundle(root: Path, command: str) -> Path:
    """``root``, unless mirror built it: sync (and genlocal, which hands a tree to sync)
    would replace a bundle's pages with the whole upstream's."""
    if tree_kind(root) == "bundle":
        raise Refused(
            f"-i {root} is a bundle built by mirror (it has env views or a mirror plan): "
            f"{command} makes a tree a full mirror, whose sync would replace the bundle's "
            "pages with the whole upstream's; give the full mirror a folder of its own, and "
            f"keep this bundle up to date with: morgan-like mirror -i {root}"
        )
    return root


def bundle_tree(value: str | None) -> Path:
    """The tree mirror writes: never a full mirror's."""
    root = tree_path(value)
    if tree_kind(root) == "sync":
        raise Refused(
            f"-i {root} is a full mirror kept by sync (it has local.json, local.db.serial, "
            "json/ or a sync's state): mirror would replace its pages with the few projects "
            "of a config; give the bundle a folder of its own, and keep this mirror up to "
            f"date with: morgan-like sync -i {root}"
        )
    return root


def bucket_run(
    value: str | None,
    state_dir: str | None,
    wait_lock: float | None = None,
    config: Path | None = None,
) -> BucketRun | None:
    """For ``-i s3://BUCKET/PREFIX``: the bucket and its local working tree (``--local-state``,
    or one under the user's cache dir keyed by the URL); None for a tree on disk, where
    ``--local-state`` is refused (the state lives in the tree).  The ``[storage]`` section
    of ``config`` (else of the working tree's morgan.ini) says where the bucket is."""
    from morgan_like.modes.bucket import (
        BucketRun,
        default_state_dir,
        is_bucket_url,
        parse_bucket_url,
    )

    if not is_bucket_url(value):
        if state_dir is not None:
            raise Refused(
                "--local-state goes with -i s3://BUCKET/PREFIX only (a tree on disk keeps "
                "its state inside it)"
            )
        return None
    assert value is not None
    target = parse_bucket_url(value)
    working = tree_path(state_dir, "--local-state") if state_dir else default_state_dir(target)
    from morgan_like.config.storageconf import storage_of

    if config is None and (working / "morgan.ini").is_file():
        config = working / "morgan.ini"
    storage = storage_of(config) if config is not None else None
    return BucketRun(target, working, wait_lock, storage=storage)
