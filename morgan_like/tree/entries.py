"""What our page says of each file of ours: its verified record, its ``.metadata``, the
Requires-Python upstream left out, and our copy of its PEP 740 provenance.

A file is listed only once it is on disk, with the size and sha256 we verified
(the tree state answers with one row and one stat; upstream's hash, when it
differs, is reported and ours listed).  A wheel gets ``<wheel>.metadata``, its
METADATA byte for byte (PEP 658), written again only when the wheel changed.
The writer hands over its bookkeeping (``put``, ``report``, ``problem``), so the
diff-file hears of every path this writes, exactly as of the writer's own.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import wheel_metadata_bytes
from morgan_like.errors import MetadataError
from morgan_like.tree.filemeta import requires_python
from morgan_like.tree.layout import METADATA_SUFFIX, PROVENANCE_SUFFIX, file_url, package_relpath
from morgan_like.tree.pages import FileEntry, with_version
from morgan_like.tree.removals import Removals
from morgan_like.tree.state import FileRecord, TreeState

# The writer's own: put(relpath, data, unlisted=...) -> written or news; report(relpath,
# wrote) -> goes into this call's changed list; problem(message).
Put = Callable[..., bool]


class LocalEntries:
    """The page entries of one writer's local files."""

    def __init__(
        self,
        root: Path,
        state: TreeState,
        removals: Removals,
        put: Put,
        report: Callable[[str, bool], bool],
        problem: Callable[[str], None],
    ) -> None:
        self.root, self.state, self.removals = root, state, removals
        self._put, self._report, self._problem = put, report, problem

    def entry(
        self,
        norm: str,
        rf: RemoteFile,
        before: tuple[str | None, str | None],
        changed: list[str],
        fill_requires_python: bool,
    ) -> FileEntry | None:
        """``rf`` as our page lists it, None while the file is not on disk.

        ``before``: (sha256, .metadata sha256) as the current page lists it; a path that
        is news to the far side goes into ``changed``.  ``fill_requires_python``: read
        it from the file when upstream gives none (tree/filemeta.py).
        """
        relpath = package_relpath(norm, rf.filename)
        # One stat of the file answers "on disk?", its record's check and the .metadata's
        # freshness: each costs a release of the GIL the downloads contend for.
        st: os.stat_result | None
        try:
            st = os.stat(os.path.join(self.root, relpath))
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            if not self.state.is_evicted(relpath):
                return None  # (an evicted file is in the tree's object store: still listed)
            st = None
        record = self._record(relpath, rf.sha256, st)
        before_sha256, before_metadata = before
        if self._report(relpath, before_sha256 != record.sha256):
            changed.append(relpath)
        metadata_sha256 = (
            self._metadata(relpath, changed, before_metadata, st) if rf.is_wheel else None
        )
        declared = rf.requires_python
        if not declared and fill_requires_python:
            declared = requires_python(self.root, relpath, record.sha256, self.state)
        url = file_url(norm, rf.filename)
        provenance = self._provenance(relpath, rf, changed)
        entry = FileEntry(
            filename=rf.filename,
            url=url,
            sha256=record.sha256,
            size=record.size,
            requires_python=declared,
            yanked=rf.yanked,
            metadata_sha256=metadata_sha256,
            upload_time=rf.upload_time,
            provenance=url + PROVENANCE_SUFFIX if provenance else None,
        )
        return with_version(entry, rf)

    def _provenance(self, relpath: str, rf: RemoteFile, changed: list[str]) -> bool:
        """Whether the page points at our copy of the file's PEP 740 provenance: only while
        upstream offers one (else it goes with the page's other unlisted files) and the
        fetch placed it here (checked against this file's sha256 as it landed)."""
        if not rf.provenance:
            return False
        prov_rel = relpath + PROVENANCE_SUFFIX
        if not (self.root / prov_rel).is_file():
            self._problem(
                f"{relpath}: upstream's provenance was not kept (refused or not "
                "fetched); our pages list the file without one"
            )
            return False
        if self._report(prov_rel, False):  # fetched by this run: news for the far side
            changed.append(prov_rel)
        return True

    def _record(
        self, relpath: str, upstream_sha256: str | None, st: os.stat_result | None
    ) -> FileRecord:
        entry = self.state.verified(relpath, upstream_sha256, st)
        if entry is not None:
            return entry
        entry = self.state.record_file(relpath)
        if upstream_sha256 and upstream_sha256.lower() != entry.sha256:
            self._problem(f"{relpath}: sha256 on disk differs from upstream's; listing ours")
        return entry

    def _metadata(
        self, relpath: str, changed: list[str], before: str | None, st: os.stat_result | None
    ) -> str | None:
        """Write ``<wheel>.metadata`` (byte-identical METADATA) and return its sha256.

        ``before``: the .metadata hash the current page lists, if any; ``st``: the
        wheel's stat (None: evicted, in the object store only).
        """
        meta_rel = relpath + METADATA_SUFFIX
        try:
            meta_st: os.stat_result | None = os.stat(os.path.join(self.root, meta_rel))
        except OSError:
            meta_st = None
        if meta_st is None:
            fresh = False
        elif st is not None:
            fresh = meta_st.st_mtime_ns >= st.st_mtime_ns
        else:
            # An evicted wheel (in the object store only) keeps the .metadata written
            # from it while it was here.
            fresh = stat.S_ISREG(meta_st.st_mode) and self.state.is_evicted(relpath)
        entry = self.state.verified(meta_rel, st=meta_st) if fresh else None
        if entry is not None and not self.state.is_changed(relpath):
            # Same wheel as when we wrote it: skip reopening the zip.
            if self._report(meta_rel, before != entry.sha256):
                changed.append(meta_rel)
            return entry.sha256
        try:
            data = wheel_metadata_bytes(self.root / relpath)
        except (MetadataError, OSError) as exc:
            self._problem(f"{relpath}: no .metadata written: {exc}")
            # A stale one must not stay: it goes at publish, once no page advertises it.
            self.removals.stale.setdefault(relpath.split("/")[1], set()).add(meta_rel)
            return None
        sha256 = hashlib.sha256(data).hexdigest()
        if self._put(meta_rel, data, unlisted=before != sha256):
            changed.append(meta_rel)
        return sha256
