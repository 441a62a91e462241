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
from typing import Union

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


Key = Union[tuple[int, int, int, int], str]


class SdistReader:
    """A run's sdist answers, keyed by the file's identity (device, inode, size, mtime)
    and, when the asker knows it, by its verified sha256.

    The identity survives the rename that moves a cached sdist into the tree, so
    the build step finds what resolution read; the sha256 finds it too when the tree
    got its own copy (fetched by the download step while the cache's was under way).
    Thread-safe: concurrent askers of the same sdist wait for one read, done in
    ``processes`` when given.
    """

    def __init__(self, processes: WorkerProcesses | None = None) -> None:
        self._lock = threading.Lock()
        self._facts: dict[Key, Future[SdistFacts]] = {}
        self._digests: dict[Key, str] = {}  # identity -> sha256, told by ``same`` before a read
        self.processes = processes or WorkerProcesses()

    def facts(self, path: Path, *, ahead: bool = False, sha256: str | None = None) -> SdistFacts:
        """Everything ``path`` tells, read once.  ``ahead``: nobody waits for it yet (a
        guess read while a resolution runs): it waits behind every read someone waits for.
        ``sha256``: the file's, verified when it was fetched."""
        st = os.stat(path)
        keys: list[Key] = [(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)]
        with self._lock:
            sha256 = sha256 or self._digests.get(keys[0])
            if sha256:
                keys.append(sha256)
            future = next((self._facts[k] for k in keys if k in self._facts), None)
            owner = future is None
            if future is None:
                future = Future()
            for key in keys:
                self._facts.setdefault(key, future)
        if owner:
            try:
                # Smallest first: a small sdist read sooner starts its chain of build
                # requirements sooner; a large one rarely has one.
                priority = st.st_size + (AHEAD_PRIORITY if ahead else 0)
                future.set_result(self.processes.run(read_sdist, path, priority=priority))
            except BaseException as exc:
                with self._lock:
                    for key in keys:  # an unexpected failure is not remembered
                        if self._facts.get(key) is future:
                            del self._facts[key]
                future.set_exception(exc)
        return future.result()

    def known(self, path: Path, sha256: str | None = None) -> SdistFacts | None:
        """What this run already read of the file at ``path`` (or of one with ``sha256``),
        without reading it."""
        keys: list[Key] = [sha256] if sha256 else []
        try:
            st = os.stat(path)
            keys.insert(0, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            pass
        with self._lock:
            future = next((self._facts[k] for k in keys if k in self._facts), None)
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def same(self, path: Path, sha256: str | None) -> None:
        """``path`` holds the file of verified ``sha256``: what was read of that file (or
        is being read) is this one's too."""
        if not sha256:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            future = self._facts.get(sha256)
            if future is not None:
                self._facts.setdefault(identity, future)
            else:
                self._digests[identity] = sha256  # read first here: a copy finds this read

    def metadata(self, path: Path) -> DistMetadata:
        return self.facts(path).static_metadata()

    def build_requires(self, path: Path) -> list[Requirement]:
        return self.facts(path).requirements_for_build()
