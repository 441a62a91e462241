"""The tree on disk: .metadata files, simple/ pages, root pages, the manifest.

Shared by the bundle builder and full-mirror mode, so it takes plain records
(RemoteFile lists per project) and knows nothing of resolution.  Its one promise
is that an index never references a missing file: pages list only files that are
on disk, are written (atomically) after those files and their .metadata, and are
rewritten before prune deletes anything they list.

Call order for a run: write_project() per project -> prune() -> write_root() ->
finish().  ``changed`` / ``removed`` accumulate every relpath touched in the
session, ready for diff.write_diff().  A TreeWriter is not thread-safe; the
Manifest it shares with the downloader is.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from pathlib import Path

from packaging.utils import canonicalize_name

from morgan_like.dists.links import ProjectPage, RemoteFile, parse_html_page, parse_json_page
from morgan_like.dists.metadata import wheel_metadata_bytes
from morgan_like.errors import MetadataError
from morgan_like.tree.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    atomic_write_bytes,
    is_listed,
    normalize_relpath,
)
from morgan_like.tree.pages import (
    FileEntry,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)

log = logging.getLogger(__name__)

PACKAGES_DIR = "packages"
SIMPLE_DIR = "simple"
STATE_DIR = ".morgan-like"
METADATA_SUFFIX = ".metadata"
_SERIAL_TRAILER = re.compile(rb"<!--SERIAL (\d+)-->")


def _check_filename(filename: str) -> str:
    """Refuse filenames that would escape packages/<project>/ or hide themselves."""
    if (
        not filename
        or "/" in filename
        or "\\" in filename
        or filename.startswith(".")
        or "\x00" in filename
    ):
        raise ValueError(f"unsafe distribution filename: {filename!r}")
    return filename


def package_relpath(project: str, filename: str) -> str:
    """``packages/<normalized>/<filename>``; raises ValueError for an unsafe filename."""
    return f"{PACKAGES_DIR}/{canonicalize_name(project)}/{_check_filename(filename)}"


def page_relpaths(project: str) -> tuple[str, str]:
    """The (index.html, index.json) relpaths of a project page."""
    base = f"{SIMPLE_DIR}/{canonicalize_name(project)}"
    return f"{base}/index.html", f"{base}/index.json"


def file_url(project: str, filename: str) -> str:
    """A file's link as seen from its project page; relative, so the tree is relocatable."""
    return f"../../{package_relpath(project, filename)}"


class TreeWriter:
    """Writes one tree; see the module docstring for the call order."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = Path(root).absolute()
        self.manifest = manifest
        self.changed: set[str] = set()
        self.removed: set[str] = set()
        self.problems: list[str] = []
        self._serials: dict[str, int | None] = {}

    # --- bookkeeping ---------------------------------------------------------

    def _note_changed(self, relpath: str) -> None:
        self.changed.add(relpath)
        self.removed.discard(relpath)

    def _note_removed(self, relpath: str) -> None:
        self.removed.add(relpath)
        self.changed.discard(relpath)

    def _report(self, relpath: str, wrote: bool) -> bool:
        """Whether this relpath goes into this call's changed list: bytes written now, or an
        entry that differs from the manifest as loaded (a download, or a page rewritten by an
        earlier call such as prune).  So per-call lists are complete on their own; a path may
        be reported by several calls, which the diff-file dedupes."""
        if wrote or self.manifest.is_changed_since_load(relpath):
            self._note_changed(relpath)
            return True
        return False

    def _problem(self, message: str) -> None:
        log.warning("%s", message)
        self.problems.append(message)

    def _put(self, relpath: str, data: bytes) -> bool:
        """Atomically write unless the bytes are already there; keep the manifest in step."""
        path = self.root / relpath
        try:
            wrote = path.read_bytes() != data
        except OSError:
            wrote = True
        if wrote:
            atomic_write_bytes(path, data)
        if not is_listed(relpath):
            return wrote
        sha256 = hashlib.sha256(data).hexdigest()
        if wrote or not self.manifest.is_verified(relpath, sha256):
            self.manifest.record(relpath, len(data), sha256)
        return self._report(relpath, wrote)

    def _remove(self, relpath: str) -> bool:
        try:
            (self.root / relpath).unlink()
        except FileNotFoundError:
            existed = False
        else:
            existed = True
        listed = is_listed(relpath)
        if listed:
            existed = existed or self.manifest.get(relpath) is not None
            self.manifest.discard(relpath)
        if existed and listed:
            self._note_removed(relpath)
        return existed and listed

    def _entry(self, relpath: str, upstream_sha256: str | None) -> ManifestEntry:
        entry = self.manifest.get(relpath)
        if (
            entry is not None
            and self.manifest.is_verified(relpath)
            and (upstream_sha256 is None or upstream_sha256.lower() == entry.sha256)
        ):
            return entry
        entry = self.manifest.record_file(relpath)
        if upstream_sha256 and upstream_sha256.lower() != entry.sha256:
            self._problem(f"{relpath}: sha256 on disk differs from upstream's; listing ours")
        return entry

    # --- reading back ----------------------------------------------------------

    def _read_page(self, project: str) -> ProjectPage | None:
        html_rel, json_rel = page_relpaths(project)
        json_path, html_path = self.root / json_rel, self.root / html_rel
        try:
            return parse_json_page(project, json_path.read_bytes(), json_path.as_uri())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        try:
            text = html_path.read_text("utf-8")
            return parse_html_page(project, text, html_path.as_uri())
        except (OSError, ValueError):
            return None

    def existing_files(self, project: str) -> list[RemoteFile]:
        """What our own page lists now (urls are file:// URIs into this tree)."""
        page = self._read_page(project)
        return list(page.files) if page else []

    def existing_projects(self) -> list[str]:
        """Normalized names of the projects that have a page."""
        simple = self.root / SIMPLE_DIR
        if not simple.is_dir():
            return []
        return sorted(
            d.name
            for d in simple.iterdir()
            if not d.name.startswith(".")
            and d.is_dir()
            and ((d / "index.html").is_file() or (d / "index.json").is_file())
        )

    def _existing_serial(self, project: str) -> int | None:
        """The serial stamped on a page, read from the HTML trailer (no JSON parse)."""
        html_rel, _ = page_relpaths(project)
        try:
            with open(self.root / html_rel, "rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - 64))
                match = _SERIAL_TRAILER.search(fh.read())
        except OSError:
            return None
        return int(match.group(1)) if match else None

    # --- writing -----------------------------------------------------------------

    def _write_metadata(self, relpath: str, changed: list[str]) -> str | None:
        """Write ``<wheel>.metadata`` (byte-identical METADATA) and return its sha256."""
        meta_rel = relpath + METADATA_SUFFIX
        wheel_path, meta_path = self.root / relpath, self.root / meta_rel
        entry = self.manifest.get(meta_rel)
        try:
            fresh = meta_path.stat().st_mtime_ns >= wheel_path.stat().st_mtime_ns
        except OSError:
            fresh = False
        if (
            entry is not None
            and fresh
            and self.manifest.is_verified(meta_rel)
            and not self.manifest.is_changed_since_load(relpath)
        ):
            # Same wheel as when we wrote it: skip reopening the zip.
            if self._report(meta_rel, False):
                changed.append(meta_rel)
            return entry.sha256
        try:
            data = wheel_metadata_bytes(wheel_path)
        except (MetadataError, OSError) as exc:
            self._problem(f"{relpath}: no .metadata written: {exc}")
            self._remove(meta_rel)  # a stale one must not be advertised; noted in self.removed
            return None
        if self._put(meta_rel, data):
            changed.append(meta_rel)
        return hashlib.sha256(data).hexdigest()

    def write_project(
        self, project: str, files: list[RemoteFile], last_serial: int | None = None
    ) -> list[str]:
        """Write a project's .metadata files and pages; returns relpaths created or changed.

        Files not on disk are left out of the page.  When ``files`` names one filename
        twice the later record wins, so callers can append fresh upstream records after
        the ones read back with existing_files().
        """
        norm = canonicalize_name(project)
        chosen: dict[str, RemoteFile] = {}
        for rf in files:
            try:
                _check_filename(rf.filename)
            except ValueError as exc:
                self._problem(f"{norm}: skipped: {exc}")
                continue
            chosen[rf.filename] = rf
        changed: list[str] = []
        entries: list[FileEntry] = []
        for filename in sorted(chosen):
            rf = chosen[filename]
            relpath = package_relpath(norm, filename)
            if not (self.root / relpath).is_file():
                continue
            entry = self._entry(relpath, rf.sha256)
            if self._report(relpath, False):
                changed.append(relpath)
            metadata_sha256 = self._write_metadata(relpath, changed) if rf.is_wheel else None
            entries.append(
                FileEntry(
                    filename=filename,
                    url=file_url(norm, filename),
                    sha256=entry.sha256,
                    size=entry.size,
                    requires_python=rf.requires_python,
                    yanked=rf.yanked,
                    metadata_sha256=metadata_sha256,
                    upload_time=rf.upload_time,
                )
            )
        html_rel, json_rel = page_relpaths(norm)
        # JSON first, HTML last: pip and uv over file:// read only index.html.
        if self._put(json_rel, render_project_json(norm, entries, last_serial)):
            changed.append(json_rel)
        if self._put(html_rel, render_project_html(norm, entries, last_serial)):
            changed.append(html_rel)
        self._serials[norm] = last_serial
        return changed

    def remove_project(self, project: str) -> list[str]:
        """Remove a project's pages (first, so nothing lists a missing file), then its files."""
        norm = canonicalize_name(project)
        removed: list[str] = []
        for top in (SIMPLE_DIR, PACKAGES_DIR):
            base = self.root / top / norm
            for relpath in self._files_under(base, include_hidden=True):
                if self._remove(relpath):
                    removed.append(relpath)
            self._drop_empty_dirs(base, including_base=True)
        self._serials.pop(norm, None)
        return sorted(removed)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove files under packages/ not in ``keep`` (and their .metadata); returns them.

        Pages listing a doomed file are rewritten without it first (a project left with
        no files loses its pages), so no index ever references a missing file.
        """
        keep = {normalize_relpath(k) for k in keep}
        doomed: list[str] = []
        for relpath in self._files_under(self.root / PACKAGES_DIR):
            base = relpath[: -len(METADATA_SUFFIX)] if relpath.endswith(METADATA_SUFFIX) else None
            if relpath in keep or (base is not None and base in keep):
                continue
            doomed.append(relpath)
        doomed_set = set(doomed)
        removed: list[str] = []
        for norm in sorted({r.split("/")[1] for r in doomed}):
            page = self._read_page(norm)
            if page is None:
                continue
            survivors = [
                f
                for f in page.files
                if package_relpath(norm, f.filename) not in doomed_set
                and (self.root / package_relpath(norm, f.filename)).is_file()
            ]
            if survivors:
                self.write_project(norm, survivors, page.last_serial)
            else:
                for relpath in page_relpaths(norm)[::-1]:
                    if self._remove(relpath):
                        removed.append(relpath)
                self._drop_empty_dirs(self.root / SIMPLE_DIR / norm, including_base=True)
                self._serials.pop(norm, None)
        for relpath in doomed:
            if self._remove(relpath):
                removed.append(relpath)
        self._drop_empty_dirs(self.root / PACKAGES_DIR, including_base=False)
        return sorted(removed)

    def write_root(self) -> list[str]:
        """Root pages from the projects that have a page; returns changed relpaths."""
        projects = self.existing_projects()
        serials = [
            (p, self._serials[p] if p in self._serials else self._existing_serial(p))
            for p in projects
        ]
        known = [s for _, s in serials if s is not None]
        changed = []
        json_rel, html_rel = f"{SIMPLE_DIR}/index.json", f"{SIMPLE_DIR}/index.html"
        if self._put(json_rel, render_root_json(serials, max(known) if known else None)):
            changed.append(json_rel)
        if self._put(html_rel, render_root_html(projects)):
            changed.append(html_rel)
        return changed

    def write_file(self, relpath: str, data: bytes) -> bool:
        """Atomically write any other file (server.py, morgan.ini); returns whether it changed."""
        relpath = normalize_relpath(relpath)
        if relpath == MANIFEST_NAME:
            raise ValueError("manifest.json is written by finish()")
        return self._put(relpath, data)

    def finish(self) -> list[str]:
        """Save the manifest; returns ["manifest.json"] if it changed."""
        if self.manifest.save():
            self._note_changed(MANIFEST_NAME)
            return [MANIFEST_NAME]
        return []

    # --- helpers -----------------------------------------------------------------

    def _files_under(self, base: Path, include_hidden: bool = False) -> list[str]:
        """Tree-relative paths of the files below ``base``, sorted; hidden ones optionally."""
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            if not include_hidden:
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if include_hidden or not name.startswith("."):
                    rel = Path(dirpath, name).relative_to(self.root).as_posix()
                    found.append(rel)
        return sorted(found)

    def _drop_empty_dirs(self, base: Path, including_base: bool) -> None:
        if not base.is_dir():
            return
        for dirpath, _dirnames, _filenames in os.walk(base, topdown=False):
            if Path(dirpath) == base and not including_base:
                continue
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
