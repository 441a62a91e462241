"""manifest.json: relpath -> size and sha256 of every file in the tree.

It lets a re-run trust files already downloaded with a stat instead of a re-hash,
and lets the stdlib-only server.py verify a tree after a USB transfer.  It lists
every file except manifest.json itself and hidden paths (any component starting
with "."), which are working state and never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "morgan-like-manifest/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestEntry:
    size: int
    sha256: str


def normalize_relpath(relpath: str) -> str:
    """A tree-relative path with "/" separators; refuses absolute paths and "..".

    Raises ValueError: a path escaping the tree is a bug (or a hostile filename).
    """
    text = str(relpath).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or text.startswith("/") or ".." in parts or ":" in parts[0]:
        raise ValueError(f"not a relative path inside the tree: {relpath!r}")
    return "/".join(parts)


def is_listed(relpath: str) -> bool:
    """Whether a (normalized) relpath belongs in the manifest: not itself, not hidden."""
    if relpath == MANIFEST_NAME:
        return False
    return not any(part.startswith(".") for part in PurePosixPath(relpath).parts)


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks so large wheels do not sit in memory."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write via a hidden temp file in the same directory, then os.replace.

    Readers (pip over file://, server.py, rsync) see the old or the new file, never half.
    ``durable`` adds an fsync; the tree pays for one ``os.sync`` before its manifest
    is saved instead of an fsync per page (hundreds of them on a big tree).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Manifest:
    """The manifest of one tree; thread-safe, since download workers record concurrently.

    A missing or corrupt manifest.json is not fatal: we start empty (files then get
    re-hashed) and say why in ``load_problem``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / MANIFEST_NAME
        self._lock = threading.Lock()
        self._files: dict[str, ManifestEntry] = {}
        self._loaded: dict[str, ManifestEntry] = {}
        self._saved_bytes: bytes | None = None
        self.load_problem: str | None = None
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.load_problem = f"cannot read {MANIFEST_NAME}: {exc}"
            return
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is not {MANIFEST_FORMAT!r}")
            files = doc.get("files")
            if not isinstance(files, dict):
                raise ValueError('no "files" object')
        except ValueError as exc:
            self.load_problem = f"{MANIFEST_NAME} is corrupt ({exc}); starting empty"
            return
        bad = 0
        for relpath, value in files.items():
            entry = _entry(value)
            try:
                key = normalize_relpath(relpath)
            except ValueError:
                entry = None
            if entry is None or not is_listed(key):
                bad += 1
                continue
            self._files[key] = entry
        if bad:
            self.load_problem = f"{MANIFEST_NAME}: ignored {bad} malformed entries"
        self._loaded = dict(self._files)
        self._saved_bytes = raw

    def get(self, relpath: str) -> ManifestEntry | None:
        key = normalize_relpath(relpath)
        with self._lock:
            return self._files.get(key)

    def record(self, relpath: str, size: int, sha256: str) -> None:
        """Note a file's size and hash; raises ValueError for hidden paths or a bad hash."""
        key = normalize_relpath(relpath)
        if not is_listed(key):
            raise ValueError(f"{relpath!r} is never listed in the manifest")
        sha256 = sha256.lower()
        if not _HEX64.fullmatch(sha256) or size < 0:
            raise ValueError(f"bad manifest entry for {relpath!r}: {size}, {sha256!r}")
        with self._lock:
            self._files[key] = ManifestEntry(int(size), sha256)

    def record_file(self, relpath: str) -> ManifestEntry:
        """Hash and stat the file on disk and record it."""
        key = normalize_relpath(relpath)
        size, sha256 = sha256_file(self.root / key)
        self.record(key, size, sha256)
        return ManifestEntry(size, sha256)

    def discard(self, relpath: str) -> None:
        key = normalize_relpath(relpath)
        with self._lock:
            self._files.pop(key, None)

    def is_verified(self, relpath: str, sha256: str | None = None) -> bool:
        """Entry exists, the file on disk has its size (stat only), and the hash matches if given."""
        entry = self.get(relpath)
        if entry is None:
            return False
        if sha256 is not None and sha256.lower() != entry.sha256:
            return False
        try:
            st = (self.root / normalize_relpath(relpath)).stat()
        except OSError:
            return False
        return st.st_size == entry.size

    def paths(self) -> set[str]:
        with self._lock:
            return set(self._files)

    def changed_since_load(self) -> set[str]:
        """Relpaths added or changed since the manifest was loaded (new downloads, new pages)."""
        with self._lock:
            return {k for k, v in self._files.items() if self._loaded.get(k) != v}

    def is_changed_since_load(self, relpath: str) -> bool:
        """Whether one relpath's entry differs from the loaded manifest (cheap, unlike the set)."""
        key = normalize_relpath(relpath)
        with self._lock:
            return self._files.get(key) != self._loaded.get(key)

    def removed_since_load(self) -> set[str]:
        with self._lock:
            return set(self._loaded) - set(self._files)

    def to_bytes(self) -> bytes:
        """Stable serialization: sorted paths, one file per line, so it diffs and greps well."""
        with self._lock:
            items = sorted(self._files.items())
        lines = [
            f"  {json.dumps(k)}: {json.dumps({'size': e.size, 'sha256': e.sha256})}"
            for k, e in items
        ]
        body = ",\n".join(lines)
        head = f'{{"format": {json.dumps(MANIFEST_FORMAT)}, "files": {{'
        text = f"{head}\n{body}\n}}}}\n" if lines else f"{head}}}}}\n"
        return text.encode("utf-8")

    def save(self) -> bool:
        """Write manifest.json atomically; returns whether its content changed."""
        data = self.to_bytes()
        if data == self._saved_bytes and self.path.is_file():
            return False
        try:
            current = self.path.read_bytes()
        except OSError:
            current = None
        if current != data:
            # Everything the manifest vouches for reaches the disk before it does.
            if hasattr(os, "sync"):
                os.sync()
            atomic_write_bytes(self.path, data, durable=True)
        self._saved_bytes = data
        return current != data


def _entry(value: object) -> ManifestEntry | None:
    if not isinstance(value, dict):
        return None
    size, sha256 = value.get("size"), value.get("sha256")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        return None
    return ManifestEntry(size, sha256)
