"""The end of every run, in one place: root pages, top-level files, manifest, diff-file.

Every mode (bundle today; full mirror and import next) writes its projects
through the TreeWriter, then calls :func:`publish`.  The order is the tree's
crash-safety argument, so that a kill at any moment leaves every root link with
its page and every page link with its file:

1. the root pages (and local.json), after the project pages they
   link and without the projects leaving the tree (whose pages and files are all
   still there); then each env's index view (``tree.views``: its project pages, its
   root, then the view pages it no longer lists), each view's lock files
   (``tree.lockfiles``, ``locks/``) and the SBOM (``tree.sbom``), all before any file goes;
2. a commit of the tree state, whose projects now say what the root pages list;
3. the removals the writer queued: a leaving project's pages, then its files; the
   files replaced pages no longer list;
4. ``server.py``, the config's input files (``inputs/``), the config that names
   them, the inputs it no longer names, the landing page ``index.html`` (``tree.landing``:
   what the tree holds, for a browser), then the manifest that vouches for them;
5. the final commit of the tree state, then the diff-file naming exactly what this
   session changed, plus what an earlier run killed before its own diff-file changed
   (the state keeps every changed path until a publish has handed it on); the same
   paths make the tree's next generation (``tree.generations``), committed together
   with the hand-on, so a killed publish leaves them for the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from morgan_like.tree.diff import write_diff
from morgan_like.tree.files import drop_empty_dirs, files_under
from morgan_like.tree.generations import record_generation
from morgan_like.tree.landing import write_landing
from morgan_like.tree.layout import INPUTS_DIR
from morgan_like.tree.lockfiles import LockTarget, write_locks
from morgan_like.tree.pathbook import PathBook
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
    """What a publish did: every relpath changed or removed this session (each iterates
    sorted: a PathBook, or a tuple), and the diff files."""

    changed: PathBook | tuple[str, ...]
    removed: PathBook | tuple[str, ...]
    diff_file: Path | None = None
    removed_file: Path | None = None
    generation: int | None = None  # the generation recorded (None: nothing changed)
    notes: tuple[str, ...] = ()  # what publish left out and why (an env with no lock files)


def publish(
    writer: TreeWriter,
    *,
    server: bytes | None = None,
    config: bytes | None = None,
    inputs: Mapping[str, bytes] | None = None,
    diff: DiffRequest | None = None,
    serial_list: bool = False,
    synced_serial: int | None = None,
    views: Sequence[EnvView] | None = None,
    targets: Sequence[LockTarget] = (),
) -> Published:
    """Finish a run: root pages, removals, ``server.py``, inputs, the config, manifest.json,
    state, diff-file (in this order; see the module docstring).

    ``server``/``config`` are the bytes to place (None leaves what is there); the
    caller reads them, so the tree never needs to know where the package lives.
    ``inputs``: ``inputs/...`` relpath -> bytes, what ``inputs/`` holds from now on (the
    files an outside config read, see ``config.inputs``); None leaves it as it is, and
    the manifest vouches for it as it is (the tree's own config reads those files).
    ``serial_list``: local.json and, with ``synced_serial``, local.db.serial, beside the
    root pages (they list the same projects), so another mirror can sync from the tree
    (every sync and bundle tree publishes them).
    ``views``: the env views the tree has from now on (``envs/`` is made to hold exactly
    these); None leaves ``envs/`` as it is.  With views come each view's lock files
    (``locks/``, tree/lockfiles.py) and the SBOM (tree/sbom.py); ``targets``: what the
    run knows of each env beyond its view (its Python, pins, requirement chains).
    """
    notes: list[str] = []
    writer.write_root()
    if serial_list:
        writer.write_serial_list(synced_serial)
    if views is not None:
        # Imported here: cyclonedx takes ~0.3 s to import, and a sync (no views) never
        # writes an SBOM, so its every run, a no-op re-sync too, would pay it for nothing.
        from morgan_like.tree.sbom import write_sbom

        write_views(writer, views)
        by_env = {t.env: t for t in targets}
        _, notes = write_locks(writer, views, by_env)
        write_sbom(writer, views, by_env)
    writer.state.commit()
    writer.apply_removals()
    if server is not None:
        writer.write_file(SERVER_NAME, server)
    kept = _write_inputs(writer, inputs)
    if config is not None:
        writer.write_file(CONFIG_NAME, config)
    _drop_inputs(writer, kept)
    write_landing(writer, views)
    writer.write_manifest()
    writer.state.commit()
    # With what a run killed before its diff-file changed: the far side needs that too.
    # New books, not the writer's, which a caller may go on writing through.
    unsent_changed, unsent_removed = writer.inherited
    changed = writer.changed.merged(unsent_changed, minus=writer.removed)
    removed = writer.removed.merged(unsent_removed, minus=writer.changed)
    generation = record_generation(writer.state, changed, removed) if changed or removed else None
    if diff is None:
        published = Published(changed, removed, generation=generation, notes=tuple(notes))
    else:
        diff_file, removed_file = write_diff(
            writer.root, diff.path, changed, removed, append_epoch=diff.append_epoch
        )
        published = Published(
            changed, removed, diff_file, removed_file, generation, notes=tuple(notes)
        )
    writer.state.clear_unsent()
    writer.state.commit()
    return published


def _write_inputs(writer: TreeWriter, inputs: Mapping[str, bytes] | None) -> set[str] | None:
    """Write ``inputs``; or, without, record ``inputs/`` as it is on disk (a rebuilt state
    knows none of it, a file edited by hand is news).  Returns what ``inputs/`` keeps
    (None: all of it).  A tree without ``inputs/`` costs one stat here, no listing."""
    base = writer.root / INPUTS_DIR
    if inputs is None:
        if not base.is_dir():
            return None
        on_disk = files_under(writer.root, base)
        for relpath in on_disk:  # a name with a backslash is no tree path: verify says so
            if "\\" not in relpath and not writer.state.is_verified(relpath):
                writer.write_file(relpath, (writer.root / relpath).read_bytes())
        return set(on_disk)
    for relpath, data in sorted(inputs.items()):
        writer.write_file(relpath, data)
    return set(inputs)


def _drop_inputs(writer: TreeWriter, keep: set[str] | None) -> None:
    """Remove the rest of ``inputs/``: files recorded in the state or on disk."""
    if keep is None:
        return
    base = writer.root / INPUTS_DIR
    known = {rel for rel, _ in writer.state.top_level() if rel.startswith(f"{INPUTS_DIR}/")}
    if base.is_dir():
        known.update(files_under(writer.root, base))
    writer.remove_paths(sorted(known - keep))
    drop_empty_dirs(base, including_base=True)
