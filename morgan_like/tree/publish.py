"""The end of every run, in one place: root pages, top-level files, manifest, diff-file.

Every mode (bundle today; full mirror and import next) writes its projects
through the TreeWriter, then calls :func:`publish`.  The order is the tree's
crash-safety argument: the root pages follow the project pages they link, the
manifest follows every top-level file it vouches for, and the tree state is
committed only once all of it is on disk.  The diff-file comes last and names
exactly what this session changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from morgan_like.tree.diff import write_diff
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
) -> Published:
    """Finish a run: root pages, ``server.py``, the config, manifest.json, state, diff-file.

    ``server``/``config`` are the bytes to place (None leaves what is there); the
    caller reads them, so the tree never needs to know where the package lives.
    """
    writer.write_root()
    if server is not None:
        writer.write_file(SERVER_NAME, server)
    if config is not None:
        writer.write_file(CONFIG_NAME, config)
    writer.write_manifest()
    writer.state.commit()
    changed, removed = tuple(sorted(writer.changed)), tuple(sorted(writer.removed))
    if diff is None:
        return Published(changed, removed)
    diff_file, removed_file = write_diff(
        writer.root, diff.path, changed, removed, append_epoch=diff.append_epoch
    )
    return Published(changed, removed, diff_file, removed_file)
