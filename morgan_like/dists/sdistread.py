"""Each sdist read once per run, for everything we take from it.

Resolution wants an sdist's static metadata, the build step its build
requirements, the SBOM its licence (PKG-INFO's headers, tree/licences.py).  All
come from the same few members, so the archive is read in one pass
(``read_sdist``) and the answers kept (``SdistReader``): a large or hostile sdist
costs one bounded pass, not one per question.

Reading a tar is mostly tarfile's pure-Python header parsing (thousands of
members in a large sdist), which holds the GIL the resolver threads need: given
``processes`` (a pool of worker processes, morgan_like/workers.py), archives are
read there.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from morgan_like.dists.metadata import DistMetadata
from morgan_like.dists.sdist import build_requires, read_archive, static_metadata
from morgan_like.errors import MetadataError
from morgan_like.workers import WorkerProcesses


@dataclass(frozen=True)
class SdistFacts:
    """What one sdist told us; an error message stands in for an answer it could not give.

    ``pkg_info``: PKG-INFO's headers (None: it has none); ``unreadable``: why the
    archive could not be read at all."""

    filename: str
    metadata: DistMetadata | None = None
    metadata_error: str | None = None
    build_requires: tuple[Requirement, ...] | None = None
    build_error: str | None = None
    pkg_info: bytes | None = None
    unreadable: str | None = None

    def static_metadata(self) -> DistMetadata:
        if self.metadata is None:
            raise MetadataError(self.metadata_error or f"{self.filename}: no metadata")
        return self.metadata

    def requirements_for_build(self) -> list[Requirement]:
        if self.build_requires is None:
            raise MetadataError(self.build_error or f"{self.filename}: no build requirements")
        return list(self.build_requires)


def pkg_info_headers(raw: bytes | None) -> bytes | None:
    """PKG-INFO up to the end of its headers: the email parser reads the same fields
    from it, and a run keeps it for each sdist without the description's bulk."""
    if raw is None:
        return None
    end = 0
    for line in raw.splitlines(keepends=True):  # the email parser's line ends
        end += len(line)
        if not line.rstrip(b"\r\n"):  # the empty line that ends the headers
            break
    return raw[:end]


def read_sdist(path: Path) -> SdistFacts:
    """Every answer from one read of the archive."""
    path = Path(path)
    try:
        sdist = read_archive(path)
    except MetadataError as exc:
        return SdistFacts(
            path.name, metadata_error=str(exc), build_error=str(exc), unreadable=str(exc)
        )
    meta: DistMetadata | None = None
    reqs: tuple[Requirement, ...] | None = None
    meta_error = build_error = None
    try:
        meta = static_metadata(sdist)
    except MetadataError as exc:
        meta_error = str(exc)
    try:
        reqs = tuple(build_requires(sdist))
    except MetadataError as exc:
        build_error = str(exc)
    return SdistFacts(
        path.name,
        meta,
        meta_error,
        reqs,
        build_error,
        pkg_info_headers(sdist.files.get("PKG-INFO")),
    )


AHEAD_PRIORITY = float(1 << 40)  # past any sdist's size: after every read someone waits for


class SdistReader:
    """A run's sdist answers, keyed by the file's identity (device, inode, size, mtime).

    The identity survives the rename that moves a cached sdist into the tree, so
    the build step finds what resolution read.  Thread-safe: concurrent askers
    of the same sdist wait for one read, done in ``processes`` when given.
    """

    def __init__(self, processes: WorkerProcesses | None = None) -> None:
        self._lock = threading.Lock()
        self._facts: dict[tuple[int, int, int, int], Future[SdistFacts]] = {}
        self.processes = processes or WorkerProcesses()

    def facts(self, path: Path, *, ahead: bool = False) -> SdistFacts:
        """Everything ``path`` tells, read once.  ``ahead``: nobody waits for it yet (a
        guess read while a resolution runs): it waits behind every read someone waits for."""
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            future = self._facts.get(key)
            owner = future is None
            if future is None:
                future = self._facts[key] = Future()
        if owner:
            try:
                # Smallest first: a small sdist read sooner starts its chain of build
                # requirements sooner; a large one rarely has one.
                priority = st.st_size + (AHEAD_PRIORITY if ahead else 0)
                future.set_result(self.processes.run(read_sdist, path, priority=priority))
            except BaseException as exc:
                with self._lock:
                    del self._facts[key]  # an unexpected failure is not remembered
                future.set_exception(exc)
        return future.result()

    def known(self, path: Path) -> SdistFacts | None:
        """What this run already read of the file at ``path``, without reading it."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        with self._lock:
            future = self._facts.get((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def metadata(self, path: Path) -> DistMetadata:
        return self.facts(path).static_metadata()

    def build_requires(self, path: Path) -> list[Requirement]:
        return self.facts(path).requirements_for_build()
