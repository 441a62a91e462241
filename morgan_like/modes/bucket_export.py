"""``export -i s3://BUCKET/PREFIX``: the transfer export of a tree kept in a bucket.

The export itself (modes/export.py) is the disk tree's, run on the bucket's working
tree.  That tree has its pages and state but, after a sync's eviction, not its files,
and the export takes a file the tree lacks for one it removed.  So the files the export
will send (every recorded one with ``--full``, else those the generations since the
site's base touched) and the working tree lacks are fetched back from the bucket first,
each checked against the size and SHA-256 the state recorded, and dropped again once the
export is written: the local disk holds them only while the volumes are being written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from morgan_like.modes.bucket import BucketError, BucketRun, open_storage
from morgan_like.modes.export import ExportOptions, run_export
from morgan_like.output import Reporter
from morgan_like.tree import generations
from morgan_like.tree.layout import PACKAGES_DIR, STATE_DIR
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.state import FileRecord, TreeState
from morgan_like.tree.storage import Storage

WORKERS = 8
_CHUNK = 1 << 20
_SCRATCH = f"{STATE_DIR}/bucket-export"


def files_to_fetch(root: Path, state: TreeState, options: ExportOptions) -> list[str]:
    """The recorded distribution files the export will read and ``root`` lacks (none
    where the export will refuse or list: it then says why itself)."""
    if options.list_sites or options.output is None or options.site is None:
        return []
    if options.full:
        candidates = [r[0] for r in state.query("SELECT relpath FROM files")]
    else:
        base = options.since
        if base is None:
            base = generations.site_generation(state, options.site)
        if base is None:
            return []
        candidates = generations.touched_since(state, base)
    return sorted(
        p
        for p in candidates
        if p.startswith(f"{PACKAGES_DIR}/") and not (root / p).exists() and state.get(p)
    )


def fetch_back(root: Path, storage: Storage, relpath: str, record: FileRecord) -> None:
    """The bucket's copy of ``relpath`` into the working tree (temp name, then rename),
    refused unless it has the recorded size and SHA-256."""
    scratch = root / _SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    temp = scratch / hashlib.sha256(relpath.encode()).hexdigest()
    digest, size = hashlib.sha256(), 0
    with storage.open(relpath) as body, open(temp, "wb") as out:
        while chunk := body.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != record.size or digest.hexdigest() != record.sha256:
        temp.unlink(missing_ok=True)
        raise BucketError(
            f"{storage.describe()}/{relpath} is not the file this tree recorded "
            f"({size} bytes, the tree says {record.size}): run morgan-like verify -i "
            f"{storage.describe()} and sync again before exporting"
        )
    (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, root / relpath)


def run_bucket_export(run: BucketRun, options: ExportOptions, reporter: Reporter) -> int:
    """Fetch back what the export will read, export, then drop what was fetched."""
    root = run.working_tree
    options = dataclasses.replace(options, index_path=root)
    needed: list[str] = []
    try:
        if (root / "simple").is_dir():
            with TreeLock(root, "export", wait=run.wait_lock), TreeState(root) as state:
                records = {p: state.get(p) for p in files_to_fetch(root, state, options)}
                needed = sorted(records)
                if needed:
                    storage = open_storage(run.target, run.storage)
                    reporter.info(f"fetching {len(needed)} files back from {run.target.url}")
                    with ThreadPoolExecutor(WORKERS) as pool:
                        jobs = [
                            pool.submit(fetch_back, root, storage, p, rec)
                            for p, rec in records.items()
                            if rec is not None
                        ]
                        for job in jobs:
                            job.result()
        return run_export(options, reporter)
    finally:
        if needed:
            with TreeLock(root, "export", wait=run.wait_lock):
                for relpath in needed:
                    with contextlib.suppress(FileNotFoundError):
                        (root / relpath).unlink()
