"""``verify --repair`` / ``--remove-unreferenced``: find what is wrong with a tree, then mend it.

The check reads every project page (our own JSON pages), hashes every file they
link and each wheel's ``.metadata``, lists ``packages/`` for files no page links,
and compares the tree state with the disk.  Everything found is reported before
anything changes.  ``--repair`` fetches each missing or corrupt file again from
the upstream (the file of that name and the page's sha256, hash-verified) and
rewrites a bad ``.metadata`` from its wheel; ``--remove-unreferenced`` deletes
the files no page links.  Nothing a page links is ever deleted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from morgan_like.config.ini import load_config
from morgan_like.dists.links import RemoteFile, parse_json_page
from morgan_like.dists.metadata import wheel_metadata_bytes
from morgan_like.errors import DownloadError, MetadataError, MorganLikeError, UpstreamError
from morgan_like.fetch.download import fetch_verified
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.index.upstream import Upstream
from morgan_like.output import Reporter
from morgan_like.tree.files import atomic_write_bytes, scratch_dir, sha256_file, sweep_scratch
from morgan_like.tree.layout import (
    METADATA_SUFFIX,
    PACKAGES_DIR,
    SIMPLE_DIR,
    is_hidden,
    package_relpath,
)
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.state import TreeState

MISSING, CORRUPT, METADATA, UNREFERENCED, STALE_ROW = (
    "missing",
    "corrupt",
    "bad .metadata",
    "unreferenced",
    "stale state row",
)


@dataclass(frozen=True)
class Finding:
    """One thing wrong: its kind, the tree path, and the page's promise for it."""

    kind: str
    relpath: str
    project: str = ""
    file: RemoteFile | None = None
    detail: str = ""


def _pages(root: Path) -> list[tuple[str, Path]]:
    found = []
    simple = root / SIMPLE_DIR
    with os.scandir(simple) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            page = simple / entry.name / "index.json"
            if entry.is_dir() and not entry.name.startswith(".") and page.is_file():
                found.append((entry.name, page))
    return found


def _sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)[1]
    except OSError:
        return None


def find_problems(root: Path, state: TreeState) -> tuple[list[Finding], int]:
    """Every problem of the tree, and how many linked files were checked."""
    findings: list[Finding] = []
    referenced: set[str] = set()
    checked = 0
    for name, page_path in _pages(root):
        try:
            page = parse_json_page(name, page_path.read_bytes(), page_path.as_uri())
        except (OSError, ValueError) as exc:
            findings.append(
                Finding(CORRUPT, str(page_path.relative_to(root)), name, None, str(exc))
            )
            continue
        for rf in page.files:
            if not rf.url.startswith("file:"):
                continue  # an index-only page links upstream's file
            relpath = package_relpath(name, rf.filename)
            referenced.add(relpath)
            checked += 1
            path = root / relpath
            if not path.is_file():
                findings.append(Finding(MISSING, relpath, name, rf))
                continue
            actual = _sha256(path)
            if rf.sha256 and actual != rf.sha256.lower():
                findings.append(Finding(CORRUPT, relpath, name, rf, "sha256 differs from the page"))
                continue
            if isinstance(rf.core_metadata, str):
                meta_rel = relpath + METADATA_SUFFIX
                referenced.add(meta_rel)
                if _sha256(root / meta_rel) != rf.core_metadata.lower():
                    findings.append(Finding(METADATA, meta_rel, name, rf))
    packages = root / PACKAGES_DIR
    for folder, dirs, files in os.walk(packages):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for filename in sorted(files):
            relpath = Path(folder, filename).relative_to(root).as_posix()
            if not is_hidden(relpath) and relpath not in referenced:
                findings.append(Finding(UNREFERENCED, relpath))
    for relpath in state.relpaths_under(PACKAGES_DIR):
        if relpath not in referenced and not (root / relpath).exists():
            findings.append(Finding(STALE_ROW, relpath))
    return findings, checked


def _upstream_url(root: Path, state: TreeState, index_url: str | None) -> str:
    if index_url:
        return index_url
    synced_from = state.sync_value("upstream")
    if synced_from:
        return synced_from
    try:
        config = load_config(root / "morgan.ini")
        if config.index_url:
            return config.index_url
    except MorganLikeError:
        pass
    return configured_index_url()


def _repair_file(upstream: Upstream, root: Path, state: TreeState, finding: Finding) -> str | None:
    """Fetch the page's file again; None when done, else why not."""
    assert finding.file is not None
    try:
        page = upstream.project_page(finding.project)
    except UpstreamError as exc:
        return str(exc)
    wanted = (finding.file.sha256 or "").lower()
    match = next(
        (
            f
            for f in page.files
            if f.filename == finding.file.filename and (f.sha256 or "").lower() == wanted
        ),
        None,
    )
    if match is None:
        return f"upstream no longer has {finding.file.filename} with sha256 {wanted[:12]}..."
    try:
        size, sha256 = fetch_verified(upstream, match, root / finding.relpath, scratch_dir(root))
    except DownloadError as exc:
        return str(exc)
    state.record(finding.relpath, size, sha256)
    return None


def _repair_metadata(root: Path, state: TreeState, finding: Finding) -> str | None:
    assert finding.file is not None
    wheel = root / finding.relpath[: -len(METADATA_SUFFIX)]
    try:
        data = wheel_metadata_bytes(wheel)
    except (MetadataError, OSError) as exc:
        return str(exc)
    if hashlib.sha256(data).hexdigest() != finding.file.core_metadata:
        return "the wheel's METADATA does not match the page's hash"
    atomic_write_bytes(root / finding.relpath, data, tmp_dir=scratch_dir(root))
    state.record(finding.relpath, len(data), hashlib.sha256(data).hexdigest())
    return None


def run_treecheck(
    root: Path,
    reporter: Reporter,
    *,
    repair: bool,
    remove_unreferenced: bool,
    index_url: str | None = None,
    wait_lock: float | None = None,
) -> int:
    """Report, then mend as asked; 0 when the tree is sound at the end, 1 otherwise."""
    if not (root / SIMPLE_DIR).is_dir():
        raise MorganLikeError(f"{root} is not a tree (no {SIMPLE_DIR}/ directory)")
    with TreeLock(root, "verify", wait=wait_lock, on_wait=reporter.info), TreeState(root) as state:
        sweep_scratch(root)
        findings, checked = find_problems(root, state)
        for f in findings:
            reporter.info(f"{f.kind:16} {f.relpath}{': ' + f.detail if f.detail else ''}")
        reporter.info(f"checked {checked} files: {len(findings)} problems")
        left = 0
        fetchable = [f for f in findings if f.kind in (MISSING, CORRUPT) and f.file is not None]
        if repair and fetchable:
            url = _upstream_url(root, state, index_url)
            with Upstream(url) as upstream:
                for f in fetchable:
                    why = _repair_file(upstream, root, state, f)
                    if why is None:
                        reporter.info(f"repaired {f.relpath}")
                    else:
                        reporter.error(f"{f.relpath}: not repaired: {why}")
                        left += 1
        elif fetchable:
            left += len(fetchable)
        for f in findings:
            if f.kind == METADATA:
                why = _repair_metadata(root, state, f) if repair else "use --repair"
                if why is None:
                    reporter.info(f"rewrote {f.relpath}")
                else:
                    left += 1
                    if repair:
                        reporter.error(f"{f.relpath}: not repaired: {why}")
            elif f.kind == STALE_ROW:
                state.discard(f.relpath)  # the state only: nothing on disk
            elif f.kind == UNREFERENCED:
                if remove_unreferenced:
                    (root / f.relpath).unlink(missing_ok=True)
                    state.discard(f.relpath)
                    reporter.info(f"removed {f.relpath}")
                else:
                    left += 1
            elif f.kind == CORRUPT and f.file is None:
                left += 1  # an unreadable page: nothing to fetch it from
        state.commit()
        sweep_scratch(root)
    return 1 if left else 0
