"""Seeding a tree's working state from the tree itself: once, for a tree without (usable)
state (state.db missing, corrupt or of another format).

Projects come from ``simple/`` and their serials from the pages' trailers.  A tree
of the first format carries a whole-tree manifest.json: its hashes are taken for
the files whose size still matches, so nothing is re-hashed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from morgan_like.tree.layout import (
    MANIFEST_NAME,
    SIMPLE_DIR,
    is_hidden,
    normalize_relpath,
    page_relpaths,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SERIAL_TRAILER = re.compile(rb"<!--SERIAL (\d+)-->")


def seed_from_tree(root: Path, db: sqlite3.Connection) -> None:
    """Fill the emptied ``projects`` and ``files`` tables of ``db`` from the tree at ``root``."""
    simple = root / SIMPLE_DIR
    rows = []
    with contextlib.suppress(OSError), os.scandir(simple) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            html_rel, json_rel = page_relpaths(entry.name)
            if (root / html_rel).is_file() or (root / json_rel).is_file():
                rows.append((entry.name, _page_serial(root / html_rel)))
    db.executemany("INSERT OR REPLACE INTO projects VALUES (?, ?)", rows)
    for relpath, size, sha256 in _old_manifest(root / MANIFEST_NAME):
        try:
            st = (root / relpath).stat()
        except OSError:
            continue
        if st.st_size == size:
            db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                (relpath, size, sha256, st.st_mtime_ns),
            )


def _page_serial(html_path: Path) -> int | None:
    """The serial stamped on a page, read from the HTML trailer (no parse)."""
    try:
        with open(html_path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 64))
            match = _SERIAL_TRAILER.search(fh.read())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _old_manifest(path: Path) -> Iterator[tuple[str, int, str]]:
    """The entries of a first-format, whole-tree manifest.json (empty if absent or odd)."""
    try:
        doc = json.loads(path.read_bytes())
        files = doc["files"] if doc.get("format") == "morgan-like-manifest/1" else {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return
    if not isinstance(files, dict):
        return
    for relpath, value in files.items():
        try:
            key = normalize_relpath(relpath)
            size, sha256 = value["size"], value["sha256"]
        except (ValueError, TypeError, KeyError):
            continue
        if is_hidden(key) or isinstance(size, bool) or not isinstance(size, int):
            continue
        if isinstance(sha256, str) and _HEX64.fullmatch(sha256) and size >= 0:
            yield key, size, sha256
