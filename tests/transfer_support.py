"""Export directories for the import tests, built by hand per the transfer format.

``make_export`` writes what ``morgan-like export`` writes (same directory, same
manifest, same volumes; see ARCHITECTURE.md "Transfer") from any two folders, trees
without the exporter's state included: it takes the files to send and the paths to
remove, so a test also builds exports no exporter would (a foreign member, a symlink,
``../x``).  tests/modes/test_transfer.py runs the real exporter into the import.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tarfile
from pathlib import Path

TREE_ID = "0123456789abcdef0123456789abcdef"
MANIFEST = "morgan-like-export.json"


def tree_files(root: Path) -> dict[str, bytes]:
    """Every visible file of a tree (hidden state left out): relpath -> bytes."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                path = Path(dirpath, name)
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a tree, hidden ones too (an import's leftovers would show)."""
    found = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _rank(rel: str) -> tuple:
    parts = rel.split("/")
    if parts[0] == "packages":
        return (0, rel)
    if parts[0] == "json":
        return (1, rel)
    if parts[0] == "simple" and len(parts) == 3:
        return (2, parts[1], parts[2] != "index.json")
    if parts[0] == "envs" and len(parts) == 5:
        return (3, rel.rsplit("/", 1)[0], parts[4] != "index.json")
    if parts[0] == "envs":
        return (4, rel)
    if parts[0] == "simple":
        return (5, parts[1] != "index.json")
    if rel == "manifest.json":
        return (7, rel)
    return (6, rel)


def _removal_rank(rel: str) -> tuple:
    return (0 if rel.endswith("index.html") else 1 if rel.endswith("index.json") else 2, rel)


def tree_delta(old: Path | None, new: Path) -> tuple[list[str], list[str]]:
    """(files to send in manifest order, paths to remove) taking OLD to NEW."""
    before = tree_files(old) if old is not None else {}
    after = tree_files(new)
    files = sorted((r for r in after if before.get(r) != after[r]), key=_rank)
    removed = sorted((r for r in before if r not in after), key=_removal_rank)
    return files, removed


def make_export(
    out: Path,
    src: Path,
    files: list[str],
    removed: list[str] = (),
    *,
    base: int,
    generation: int,
    tree: str = TREE_ID,
    full: bool = False,
    volume_size: int = 1 << 30,
    hmac_key: bytes | None = None,
    extra_members: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = (),
) -> dict:
    """Write an export of SRC's FILES into OUT (volumes, manifest, .hmac); returns the
    manifest.  ``extra_members`` go into the last volume after its files (unlisted)."""
    out.mkdir(parents=True, exist_ok=True)
    volumes: list[list[str]] = [[]]
    size = 0
    for rel in files:
        n = (src / rel).stat().st_size
        if volumes[-1] and size + n > volume_size:
            volumes.append([])
            size = 0
        volumes[-1].append(rel)
        size += n
    entries, vol_entries = [], []
    for number, members in enumerate(volumes, 1):
        if not members and files:
            continue
        name = f"vol-{number:05d}.tar"
        with tarfile.open(out / name, "w", format=tarfile.PAX_FORMAT) as tf:
            for rel in members:
                data = (src / rel).read_bytes()
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                info.mtime = 0
                tf.addfile(info, io.BytesIO(data))
                entries.append(
                    {
                        "path": rel,
                        "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "volume": name,
                    }
                )
            if number == len(volumes):
                for extra in extra_members:
                    info, data = extra if isinstance(extra, tuple) else (extra, b"")
                    tf.addfile(info, io.BytesIO(data) if data else None)
        raw = (out / name).read_bytes()
        vol_entries.append(
            {"name": name, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        )
    manifest = {
        "format": "morgan-like-export/1",
        "tree": tree,
        "site": "lab-b",
        "created": "2026-12-07T06:00:00Z",
        "base": base,
        "generation": generation,
        "full": full,
        "volumes": vol_entries,
        "files": entries,
        "removed": list(removed),
    }
    write_manifest(out, manifest, hmac_key)
    return manifest


def write_manifest(out: Path, manifest: dict, hmac_key: bytes | None = None) -> None:
    raw = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    (out / MANIFEST).write_bytes(raw)
    if hmac_key is not None:
        sig = hmac.new(hmac_key, raw, hashlib.sha256).hexdigest()
        (out / (MANIFEST + ".hmac")).write_text(sig + "\n")
