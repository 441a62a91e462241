"""The end of every run, in one place: root pages, top-level files, manifest, diff-file.

Every mode (bundle today; full mirror and import next) writes its projects
through the TreeWriter, then calls :func:`publish`.  The order is the tree's
crash-safety argument, so that a kill at any moment leaves every root link with
its page and every page link with its file:

1. the root pages (and a full mirror's local.json), after the project pages they
   link and without the projects leaving the tree (whose pages and files are all
   still there); then each env's index view (``tree.views``: its project pages, its
   root, then the view pages it no longer lists), all before any file goes;
2. a commit of the tree state, whose projects now say what the root pages list;
3. the removals the writer queued: a leaving project's pages, then its files; the
   files replaced pages no longer list;
4. ``server.py``, the config, then the manifest that vouches for them;
5. the final commit of the tree state, then the diff-file naming exactly what this
   session changed, plus what an earlier run killed before its own diff-file changed
   (the state keeps every changed path until a publish has handed it on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from morgan_like.tree.diff import write_diff
from morgan_like.tree.views import EnvView, write_views
from morgan_like.tree.writer import TreeWriter

SERVER_NAME = "server.py"
CONFIG_NAME = "morgan.ini"


@dataclass(frozen=True)
class DiffRequest:
    """Where to write the diff-file (bandersnatch's ``diff-file`` / ``diff-append-epoch``)."""

    path: str | Path
    append_epoch: bool = False


@dataclass(frozen=True)
class Published:
    """What a publish did: every relpath changed or removed this session, and the diff files."""

    changed: tuple[str, ...]
    removed: tuple[str, ...]
    diff_file: Path | None = None
    removed_file: Path | None = None


def publish(
    writer: TreeWriter,
    *,
    server: bytes | None = None,
    config: bytes | None = None,
    diff: DiffRequest | None = None,
    serial_list: bool = False,
    synced_serial: int | None = None,
    views: Sequence[EnvView] | None = None,
) -> Published:
    """Finish a run: root pages, removals, ``server.py``, the config, manifest.json, state,
    diff-file (in this order; see the module docstring).

    ``server``/``config`` are the bytes to place (None leaves what is there); the
    caller reads them, so the tree never needs to know where the package lives.
    ``serial_list``: a full mirror also publishes local.json and, with ``synced_serial``,
    local.db.serial, beside the root pages (they list the same projects).
    ``views``: the env views the tree has from now on (``envs/`` is made to hold exactly
    these); None leaves ``envs/`` as it is.
    """
    writer.write_root()
    if serial_list:
        writer.write_serial_list(synced_serial)
    if views is not None:
        write_views(writer, views)
    writer.state.commit()
    writer.apply_removals()
    if server is not None:
        writer.write_file(SERVER_NAME, server)
    if config is not None:
        writer.write_file(CONFIG_NAME, config)
    writer.write_manifest()
    writer.state.commit()
    # With what a run killed before its diff-file changed: the far side needs that too.
    unsent_changed, unsent_removed = writer.inherited
    changed_set = writer.changed.union(unsent_changed) - writer.removed
    removed_set = writer.removed.union(unsent_removed) - writer.changed
    changed, removed = tuple(sorted(changed_set)), tuple(sorted(removed_set))
    if diff is None:
        published = Published(changed, removed)
    else:
        diff_file, removed_file = write_diff(
            writer.root, diff.path, changed, removed, append_epoch=diff.append_epoch
        )
        published = Published(changed, removed, diff_file, removed_file)
    writer.state.clear_unsent()
    writer.state.commit()
    return published
