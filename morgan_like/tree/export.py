"""An export: the files a site lacks, in size-capped plain tar volumes, with a manifest.

Pure tree-level code (no network): what to send (:func:`delta_plan`, :func:`full_plan`),
in the order the far side must place it (:func:`file_order`, :func:`removal_order`),
split into volumes on file boundaries (:func:`split_volumes`) and written by
streaming each file through a hash into its tar member (:func:`write_volumes`), so
memory stays flat whatever the sizes.  The format is the contract with
``server.py --import``; ARCHITECTURE.md ("Transfer") describes it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from morgan_like.errors import MorganLikeError
from morgan_like.tree import generations
from morgan_like.tree.layout import (
    ENVS_DIR,
    JSON_DIR,
    MANIFEST_NAME,
    PACKAGES_DIR,
    ROOT_HTML,
    ROOT_JSON,
    SIMPLE_DIR,
    is_hidden,
    normalize_relpath,
)
from morgan_like.tree.state import TreeState

FORMAT = "morgan-like-export/1"
RECEIPT_FORMAT = "morgan-like-generation/1"
MANIFEST = "morgan-like-export.json"
HMAC_NAME = MANIFEST + ".hmac"
README_NAME = "README.txt"
_BLOCK = 512
_RECORD = 20 * _BLOCK  # tarfile pads an archive to a whole record
_CHUNK = 1 << 20


class ExportError(MorganLikeError):
    """An export refused or stopped: one paragraph naming what and what to do."""


@dataclass(frozen=True)
class ExportFile:
    path: str
    size: int


@dataclass(frozen=True)
class Plan:
    """What an export carries, files in placing order and removals in removing order."""

    base: int
    generation: int
    full: bool
    files: tuple[ExportFile, ...]
    removed: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def file_order(relpath: str) -> tuple:
    """Placing order: files, json/, project pages (JSON before HTML), the views' project
    pages, the views' roots, the root pages, other top-level files, manifest.json last;
    so that no page the far side serves ever links a file it lacks."""
    parts = relpath.split("/")
    leaf = {"index.json": 0, "index.html": 1}.get(parts[-1], 2)
    if parts[0] == PACKAGES_DIR:
        return (0, relpath)
    if parts[0] == JSON_DIR:
        return (1, relpath)
    if parts[0] == SIMPLE_DIR and len(parts) > 2:
        return (2, "/".join(parts[:-1]), leaf, relpath)
    if parts[0] == ENVS_DIR and len(parts) > 4:
        return (3, "/".join(parts[:-1]), leaf, relpath)
    if parts[0] == ENVS_DIR and len(parts) == 4:
        return (4, "/".join(parts[:-1]), leaf, relpath)
    if relpath in (ROOT_JSON, ROOT_HTML):
        return (5, "", leaf, relpath)
    if relpath == MANIFEST_NAME:
        return (7, relpath)
    return (6, relpath)


def removal_order(relpath: str) -> tuple:
    """Removing order: pages before what they list (HTML, then JSON), then files."""
    parts = relpath.split("/")
    html = 0 if parts[-1] == "index.html" else 1
    if parts[0] == ENVS_DIR and len(parts) == 4:
        return (0, html, relpath)
    if parts[0] == ENVS_DIR:
        return (1, html, relpath)
    if parts[0] == SIMPLE_DIR:
        return (2, html, relpath)
    if parts[0] == JSON_DIR:
        return (3, 0, relpath)
    if parts[0] == PACKAGES_DIR:
        return (4, 0, relpath)
    return (5, 0, relpath)


def _size_of(root: Path, relpath: str) -> int | None:
    """The size of a regular file at ``relpath`` (None: absent, or not a regular file)."""
    try:
        st = os.lstat(root / relpath)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def delta_plan(root: Path, state: TreeState, base: int) -> Plan:
    """The net delta from generation ``base`` to the tree's current one (see generations)."""
    files, removed = [], []
    for relpath in generations.touched_since(state, base):
        size = _size_of(root, relpath)
        if size is not None:
            files.append(ExportFile(relpath, size))
        elif generations.existed_at(state, relpath, base):
            removed.append(relpath)
    return Plan(
        base,
        generations.current(state),
        False,
        tuple(sorted(files, key=lambda f: file_order(f.path))),
        tuple(sorted(removed, key=removal_order)),
    )


def tree_files(root: Path) -> list[ExportFile]:
    """Every visible regular file of the tree (hidden state and symlinks left out)."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        for name in names:
            relpath = name if rel == "." else f"{rel}/{name}"
            size = _size_of(root, relpath)
            if size is not None and not is_hidden(relpath):
                found.append(ExportFile(normalize_relpath(relpath), size))
    return found


def full_plan(root: Path, state: TreeState) -> Plan:
    files = sorted(tree_files(root), key=lambda f: file_order(f.path))
    return Plan(0, generations.current(state), True, tuple(files), ())


def member_cost(file: ExportFile) -> int:
    """Bytes a file takes in a volume: its header (a pax header too for a long or
    non-ASCII name) and its data padded to whole blocks."""
    name = file.path.encode("utf-8")
    header = _BLOCK + (3 * _BLOCK if len(name) > 99 or not file.path.isascii() else 0)
    return header + -(-file.size // _BLOCK) * _BLOCK


def volume_bytes(members: int) -> int:
    """A volume's size from its members' cost: the end-of-archive blocks, record padding."""
    return -(-(members + 2 * _BLOCK) // _RECORD) * _RECORD


def split_volumes(files: Sequence[ExportFile], volume_size: int) -> list[list[ExportFile]]:
    """Files in order, cut into volumes at most ``volume_size`` bytes on file boundaries;
    a file too large for any volume gets one of its own."""
    volumes: list[list[ExportFile]] = []
    current: list[ExportFile] = []
    used = 0
    for file in files:
        cost = member_cost(file)
        if current and volume_bytes(used + cost) > volume_size:
            volumes.append(current)
            current, used = [], 0
        current.append(file)
        used += cost
    if current:
        volumes.append(current)
    return volumes


def volume_name(number: int) -> str:
    return f"vol-{number:05d}.tar"


class _HashingWriter:
    """A volume's output: hashes and counts what tarfile writes."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.digest, self.count = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.digest.update(data)
        self.count += len(data)
        return len(data)

    def tell(self) -> int:
        return self.count


class _HashingReader:
    """A file going into a member: hashed as tarfile reads it, progress told per chunk."""

    def __init__(self, fh: BinaryIO, progress: Callable[[int], None]) -> None:
        self.fh, self.digest, self.progress = fh, hashlib.sha256(), progress

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        self.progress(len(data))
        return data


def write_volume(
    root: Path, files: Sequence[ExportFile], target: Path, progress: Callable[[int], None]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write one volume; returns its manifest entry and its files' entries.

    Each file is hashed as it streams into the tar; one that is not the size planned
    (changed under the export) stops the export naming it.
    """
    entries = []
    with open(target, "wb") as raw:
        out = _HashingWriter(raw)
        with tarfile.TarFile(fileobj=cast(Any, out), mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.copybufsize = _CHUNK  # type: ignore[attr-defined]
            for file in files:
                with open(root / file.path, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    if st.st_size != file.size:
                        raise _changed(root, file)
                    info = tarfile.TarInfo(file.path)
                    info.size, info.mtime, info.mode = file.size, int(st.st_mtime), 0o644
                    reader = _HashingReader(fh, progress)
                    try:
                        tar.addfile(info, cast(Any, reader))
                    except OSError as exc:
                        if "unexpected end of data" in str(exc):
                            raise _changed(root, file) from None
                        raise
                    if fh.read(1):
                        raise _changed(root, file)
                entries.append(
                    {"path": file.path, "size": file.size, "sha256": reader.digest.hexdigest(),
                     "volume": target.name}
                )  # fmt: skip
        raw.flush()
        os.fsync(raw.fileno())
    volume = {"name": target.name, "size": out.count, "sha256": out.digest.hexdigest()}
    return volume, entries


def _changed(root: Path, file: ExportFile) -> ExportError:
    return ExportError(
        f"{root / file.path} changed while it was being exported (it is no longer "
        f"{file.size} bytes): another program is writing the tree; nothing was recorded "
        "for the site, run the export again once it is done"
    )


def manifest_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def read_key(path: Path) -> bytes:
    """An HMAC key file's bytes, surrounding whitespace stripped (as server.py --import reads it)."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ExportError(
            f"--hmac-key-file {path} cannot be read ({exc.strerror or exc}): give the file "
            "holding the key shared with the far side"
        ) from None
    if not key:
        raise ExportError(f"--hmac-key-file {path} is empty: give the file holding the shared key")
    return key


def signature(key: bytes, manifest: bytes) -> str:
    """The manifest's HMAC-SHA256 as lowercase hex (the .hmac file's whole content)."""
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def readme_text(doc: dict[str, Any], manifest_sha256: str, signed: bool) -> str:
    """README.txt: what this is and the one command to run on the far side."""
    if doc["full"]:
        needs = "any tree (a full export; it also removes files the tree has and this lacks)"
    else:
        needs = f"a tree at generation {doc['base']} of tree {doc['tree']}"
    lines = [
        f"morgan-like export for site {doc['site']}, made {doc['created']}",
        "",
        f"It brings {needs}",
        f"to generation {doc['generation']}: {len(doc['files'])} files in "
        f"{len(doc['volumes'])} volume(s), {len(doc['removed'])} removal(s).",
        "",
        "On the far side, with any Python 3.6 or newer, run:",
        "",
        "    python3 TREE/server.py --import THIS_FOLDER -i TREE",
        "",
        "where TREE is the tree the site serves and THIS_FOLDER the folder holding this",
        "file.  For a first, full import into an empty folder, take server.py out of",
        "the export first:  tar -xf THIS_FOLDER/" + _server_volume(doc) + " server.py",
        "",
        f"Manifest ({MANIFEST}) sha256: {manifest_sha256}",
    ]
    if signed:
        lines.append(
            f"Signed with the shared key: add --hmac-key-file KEY on the far side ({HMAC_NAME})."
        )
    else:
        lines.append(
            "Compare that sha256 with the one the export printed; the import prints it too."
        )
    return "\n".join(lines) + "\n"


def _server_volume(doc: dict[str, Any]) -> str:
    for entry in doc["files"]:
        if entry["path"] == "server.py":
            return str(entry["volume"])
    return "vol-NNNNN.tar"


def read_receipt(path: Path) -> tuple[str, int]:
    """(tree id, generation) of a receipt written by ``server.py --receipt``."""
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != RECEIPT_FORMAT:
            raise ValueError(f"its format is {doc.get('format')!r}, not {RECEIPT_FORMAT!r}")
        tree, gen = doc["tree"], doc["generation"]
        if not isinstance(tree, str) or isinstance(gen, bool) or not isinstance(gen, int):
            raise ValueError("its tree or generation is not what server.py --receipt writes")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else exc
        raise ExportError(
            f"--receipt {path} is no receipt ({why}): give the file that "
            "python3 server.py --receipt -i TREE -o FILE wrote on the far side"
        ) from None
    return tree, gen
