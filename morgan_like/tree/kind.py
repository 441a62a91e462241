"""Which command built a tree: ``mirror`` (a bundle) or ``sync`` (a full mirror).

The two kinds must not be mixed: a sync writes every project of its upstream
into a bundle's pages (and removes what the bundle resolved), a bundle run
replaces a mirror's pages with the few projects of its config.  The kind is
read from what each command alone leaves in a tree, so that it holds for a tree
copied without its hidden state too:

* a bundle: its env views ``envs/`` or its replayable plan ``.morgan-like/plan.json``
  (sync writes neither); a tree older than both is a bundle when its ``morgan.ini``
  names requirements (``[requirements]`` / ``[requirements_from]``) and nothing below
  says sync;
* a sync tree: ``local.db.serial``, ``local.json``, ``json/`` (Warehouse JSON), or a
  ``sync.*`` value in the hidden state (a first sync killed before it published).

A curated slice (a sync of an allowlist with its dependencies) writes env views
too: its record ``.morgan-like/slice.json`` (a first run writes a stub before
anything else) or a ``morgan.ini`` with a ``[sync]`` section say sync
first.  Otherwise bundle evidence is read first: bundles publish ``local.json`` and
serials too (every tree is an upstream for other mirrors), and their views still
say what they are.
"""

from __future__ import annotations

import configparser
import sqlite3
from pathlib import Path
from typing import Literal

from morgan_like.tree.layout import ENVS_DIR, JSON_DIR, LOCAL_JSON, LOCAL_SERIAL, STATE_DIR

TreeKind = Literal["bundle", "sync"]

BUNDLE_PLAN = f"{STATE_DIR}/plan.json"  # modes/bundle_replay.py's REPLAY_NAME
STATE_DB = f"{STATE_DIR}/state.db"
SLICE_RECORD = f"{STATE_DIR}/slice.json"  # modes/slice_state.py's SLICE_NAME
_CONFIG_CAP = 1 << 20  # a morgan.ini is a few KiB; a bigger one is no bundle's


def tree_kind(root: Path) -> TreeKind | None:
    """``bundle``, ``sync``, or None: a new or empty folder, or a tree of another tool."""
    if (root / SLICE_RECORD).is_file() or _has_sync_section(root):
        return "sync"
    if (root / ENVS_DIR).is_dir() or (root / BUNDLE_PLAN).is_file():
        return "bundle"
    if _sync_evidence(root):
        return "sync"
    if (root / "simple").is_dir() and _names_requirements(root / "morgan.ini"):
        return "bundle"
    return None


def _sync_evidence(root: Path) -> bool:
    if (root / LOCAL_SERIAL).is_file() or (root / LOCAL_JSON).is_file():
        return True
    if (root / JSON_DIR).is_dir():
        return True
    state = root / STATE_DB
    if not state.is_file():
        return False
    try:
        db = sqlite3.connect(f"{state.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = db.execute("SELECT 1 FROM meta WHERE key LIKE 'sync.%' LIMIT 1").fetchone()
    except sqlite3.Error:  # an unreadable or older state: the files above decide
        return False
    finally:
        db.close()
    return row is not None


def _read_config(config: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        if not config.is_file() or config.stat().st_size > _CONFIG_CAP:
            return None
        parser.read_string(config.read_text("utf-8-sig", errors="replace"))
    except (OSError, configparser.Error):
        return None
    return parser


def _names_requirements(config: Path) -> bool:
    parser = _read_config(config)
    if parser is None:
        return False
    return parser.has_section("requirements") or parser.has_section("requirements_from")


def _has_sync_section(root: Path) -> bool:
    parser = _read_config(root / "morgan.ini")
    return parser is not None and parser.has_section("sync")
