"""Generations: a numbered record of what each publish changed, so an export carries only
what a site lacks.

Every :func:`tree.publish.publish` that changed or removed something records one
generation (1, 2, ...): its time, and each relpath it changed or removed.  A site
(a restricted zone fed by exports) is known by the last generation it was sent or
confirmed by a receipt.  The net delta from a base generation B to now is every path
touched after B: a path on disk now travels once with its current bytes, a path gone
now is removed on the far side (unless it is known not to have existed at B, such as a
file added and removed again after B).

The tables live in the tree state (``tree.state``); only the connected side has them.
A lost or rebuilt state loses them too: the next export of each site then needs
``--full``.  Generations are never compacted: a row per changed path costs tens of
bytes, far less than the files it stands for, and it keeps every base valid.

The tree id (32 hex characters) is made once, with the first generation or the first
export, and names the tree in every export manifest and receipt, so that an export
is never applied to another tree by mistake.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timezone

from morgan_like.tree.pathbook import PathBook
from morgan_like.tree.state import TreeState

_TREE_ID = "tree.id"
# Set with the first generation when it covers every recorded file: the history then
# describes the whole tree, and a path never recorded at or before a base did not exist.
_COMPLETE = "generations.complete"


def _meta(state: TreeState, key: str) -> str | None:
    rows = state.query("SELECT value FROM meta WHERE key = ?", (key,))
    return rows[0][0] if rows else None


def tree_id(state: TreeState) -> str:
    """The tree's id, made on first use (the caller commits the state)."""
    found = _meta(state, _TREE_ID)
    if found is None:
        found = uuid.uuid4().hex
        state.query("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_TREE_ID, found))
    return found


def current(state: TreeState) -> int:
    """The tree's generation: the last one recorded, 0 for none."""
    return int(state.query("SELECT COALESCE(MAX(gen), 0) FROM generations")[0][0])


def oldest(state: TreeState) -> int:
    """The first generation kept (0: none recorded)."""
    return int(state.query("SELECT COALESCE(MIN(gen), 0) FROM generations")[0][0])


def record_generation(state: TreeState, changed: Iterable[str], removed: Iterable[str]) -> int:
    """Record a new generation of these paths; returns its number (committed by the caller
    with the rest of the publish, so a killed publish records none and its paths stay
    in the state's unsent list for the next)."""
    # PathBooks (a publish's): sorted and small however many pages a first sync wrote.
    changed = changed if isinstance(changed, PathBook) else PathBook(changed)
    removed = (removed if isinstance(removed, PathBook) else PathBook(removed)).merged(
        PathBook(), minus=changed
    )
    tree_id(state)
    gen = current(state) + 1
    if gen == 1:
        recorded = (row[0] for row in state.query("SELECT relpath FROM files"))
        complete = all(relpath in changed for relpath in recorded)
        state.query("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_COMPLETE, str(int(complete))))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    state.query("INSERT INTO generations VALUES (?, ?)", (gen, now))
    insert = "INSERT INTO gen_paths VALUES (?, ?, ?)"
    state.query_many(insert, ((gen, relpath, 0) for relpath in changed))
    state.query_many(insert, ((gen, relpath, 1) for relpath in removed))
    return gen


def touched_since(state: TreeState, base: int) -> list[str]:
    """Every path a generation after ``base`` changed or removed, sorted, each once."""
    rows = state.query(
        "SELECT DISTINCT relpath FROM gen_paths WHERE gen > ? ORDER BY relpath", (base,)
    )
    return [r[0] for r in rows]


def existed_at(state: TreeState, relpath: str, base: int) -> bool:
    """Whether ``relpath`` was in the tree at generation ``base``; True when unknown (a
    removal sent for a path the far side lacks costs nothing)."""
    rows = state.query(
        "SELECT removed FROM gen_paths WHERE relpath = ? AND gen <= ? ORDER BY gen DESC LIMIT 1",
        (relpath, base),
    )
    if rows:
        return not rows[0][0]
    return _meta(state, _COMPLETE) != "1"


def site_generation(state: TreeState, site: str) -> int | None:
    """The generation ``site`` was last sent (or confirmed by a receipt); None: unknown."""
    rows = state.query("SELECT gen FROM sites WHERE name = ?", (site,))
    return int(rows[0][0]) if rows else None


def set_site(state: TreeState, site: str, gen: int) -> None:
    state.query("INSERT OR REPLACE INTO sites VALUES (?, ?)", (site, gen))


def sites(state: TreeState) -> list[tuple[str, int]]:
    """Every known site with its generation, sorted by name."""
    return [(r[0], int(r[1])) for r in state.query("SELECT name, gen FROM sites ORDER BY name")]
