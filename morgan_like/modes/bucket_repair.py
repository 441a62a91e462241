"""``verify -i s3://BUCKET/PREFIX --repair / --remove-unreferenced``: mend what the bucket serves.

The check is ``verify``'s (modes/bucket_verify.py: every object a page in the bucket
links, streamed through SHA-256), and everything it finds is printed before anything
changes, as ``verify --repair`` does on disk (modes/treecheck.py).

``--repair`` puts back each missing or corrupt distribution file: the working tree's own
copy when it still has one with the page's SHA-256, else the upstream's file of that
name *and* that SHA-256 (the page stays true; nothing upstream changed since slips in),
downloaded into the working tree's scratch (fetch/download.fetch_verified: size and hash
checked before anything is stored), uploaded with the push's Content-Type and
Cache-Control, then dropped.  A missing or corrupt ``.metadata`` is put back from the
working tree (which keeps them) when its copy is the page's, else written again from its
wheel, read back from the bucket (and checked against the page) once the wheel is sound
there.  Every upstream page needed is read before the first change: an upstream
that cannot be reached stops the repair, one line, with nothing changed.  A file whose
page cannot be read is never touched: what it should be is unknown.

``--remove-unreferenced`` deletes the objects under ``packages/`` that no page in the
bucket links (root-listed or not, env views included, a file's ``.metadata`` and
provenance with it) and no page of the working tree links either (a push cut short may
have uploaded files whose pages have not gone up yet).  Nothing is deleted in the folder
of a project one of whose pages cannot be read.

Both run under the working tree's lock, so no push writes the bucket meanwhile.  Memory
stays flat: files stream to and from disk, pages are read one at a time, and the
listing of ``packages/`` is judged one project folder at a time.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import wheel_metadata_bytes
from morgan_like.errors import MorganLikeError, ProjectNotFound
from morgan_like.fetch.download import fetch_verified
from morgan_like.index.httputil import redact_url
from morgan_like.index.upstream import Upstream
from morgan_like.modes.bucket import BucketError, BucketRun, open_storage
from morgan_like.modes.bucket_verify import Problem, page_claims, scan_bucket, summary
from morgan_like.modes.treecheck import upstream_settings
from morgan_like.output import Reporter
from morgan_like.tree.bucketpush import _Listed, cache_control, content_type
from morgan_like.tree.files import scratch_dir, sha256_file, sweep_scratch
from morgan_like.tree.layout import (
    ENVS_DIR,
    METADATA_SUFFIX,
    PACKAGES_DIR,
    PROVENANCE_SUFFIX,
    SIMPLE_DIR,
    is_hidden,
)
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.state import TreeState
from morgan_like.tree.storage import Storage

UNREFERENCED = "UNREFERENCED"
_CHUNK = 1 << 20


def _env_names(storage: Storage) -> list[str]:
    """The env views the bucket holds (``envs/<e>/simple/``)."""
    names: set[str] = set()
    for obj in storage.list(f"{ENVS_DIR}/"):
        parts = obj.key.split("/")
        if len(parts) > 3 and parts[2] == SIMPLE_DIR:
            names.add(parts[1])
    return sorted(names)


def project_links(storage: Storage, envs: list[str], project: str) -> set[str] | None:
    """What the bucket's pages of ``project`` (its own and each env view's) link, with
    each file's ``.metadata`` and provenance; None when one of them cannot be read (what
    it links is unknown)."""
    keys: set[str] = set()
    for folder in [
        f"{SIMPLE_DIR}/{project}",
        *(f"{ENVS_DIR}/{e}/{SIMPLE_DIR}/{project}" for e in envs),
    ]:
        page_key = f"{folder}/index.json"
        if storage.stat(page_key) is None:
            if storage.stat(f"{folder}/index.html") is not None:
                return None  # an HTML page alone: not ours to read
            continue
        try:
            claims = list(page_claims(page_key, json.loads(storage.get(page_key))))
        except (ValueError, TypeError, AttributeError):
            return None
        for claim in claims:
            keys.update((claim.key, claim.key + METADATA_SUFFIX, claim.key + PROVENANCE_SUFFIX))
    return keys


def unreferenced(storage: Storage, root: Path) -> list[str]:
    """The objects under ``packages/`` no page (the bucket's or the working tree's) links.

    The listing comes in key order, so one project's folder at a time: only that
    project's links are held, whatever the size of the bucket."""
    envs = _env_names(storage)
    strays: list[str] = []
    project, links, listed = "", None, _Listed(root)
    for obj in storage.list(f"{PACKAGES_DIR}/"):
        parts = obj.key.split("/")
        if is_hidden(obj.key):
            continue
        if len(parts) > 2 and parts[1] != project:
            project, listed = parts[1], _Listed(root)
            links = project_links(storage, envs, project)
        if len(parts) > 2 and (links is None or obj.key in links or listed(obj.key)):
            continue
        strays.append(obj.key)
    return strays


def _upstream_pages(upstream: Upstream, projects: list[str]) -> dict[str, ProjectPage | str]:
    """Each project's upstream page (or why it has none), all read before any change: an
    upstream that cannot be reached stops the repair here."""
    pages: dict[str, ProjectPage | str] = {}
    for project in projects:
        try:
            pages[project] = upstream.project_page(project)
        except ProjectNotFound as exc:
            pages[project] = str(exc)
        except MorganLikeError as exc:
            raise BucketError(
                f"cannot repair {redact_url(upstream.index_url)}'s files: {exc} "
                "(nothing was changed)"
            ) from None
    return pages


def _put(storage: Storage, key: str, path: Path) -> None:
    storage.put_file(key, path, content_type=content_type(key), cache_control=cache_control(key))


def _repair_file(
    root: Path, storage: Storage, upstream: Upstream, page: ProjectPage | str, problem: Problem
) -> str | None:
    """Put the page's file back into the bucket; None when done, else why not."""
    claim = problem.claim
    assert claim is not None
    wanted = (claim.sha256 or "").lower()
    if not wanted:
        return "its page gives no sha256"
    local = root / claim.key
    if local.is_file() and sha256_file(local)[1] == wanted:
        _put(storage, claim.key, local)
        return None
    if isinstance(page, str):
        return page
    filename = claim.key.rsplit("/", 1)[-1]
    match: RemoteFile | None = next(
        (f for f in page.files if f.filename == filename and (f.sha256 or "").lower() == wanted),
        None,
    )
    if match is None:
        return f"upstream no longer has {filename} with sha256 {wanted[:12]}..."
    try:
        fetch_verified(
            upstream,
            match,
            local,
            scratch_dir(root),
            place=lambda tmp, _dest, _size, _sha: _put(storage, claim.key, tmp),
        )
    except MorganLikeError as exc:
        return str(exc)
    return None


def _rewrite_metadata(root: Path, storage: Storage, problem: Problem) -> str | None:
    """Write ``<wheel>.metadata`` again (the working tree's copy when it is the page's,
    else from the bucket's wheel); None when done, else why not."""
    claim = problem.claim
    assert claim is not None
    if _local_copy_is_sound(root, problem):  # kept after eviction: no wheel to download
        _put(storage, claim.key, root / claim.key)
        return None
    wheel_key = claim.key[: -len(METADATA_SUFFIX)]
    folder = scratch_dir(root) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    wheel = folder / wheel_key.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    try:
        with storage.open(wheel_key) as body, open(wheel, "wb") as out:
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if claim.of is None or digest.hexdigest() != claim.of.lower():
            return "its wheel in the bucket is not the page's"
        data = wheel_metadata_bytes(wheel)
    except (MorganLikeError, OSError) as exc:
        return str(exc)
    finally:
        wheel.unlink(missing_ok=True)
        folder.rmdir()
    if claim.sha256 and hashlib.sha256(data).hexdigest() != claim.sha256.lower():
        return "the wheel's METADATA does not match the page's core-metadata hash"
    storage.put_bytes(
        claim.key,
        data,
        content_type=content_type(claim.key),
        cache_control=cache_control(claim.key),
    )
    return None


def _repair(
    root: Path,
    storage: Storage,
    state: TreeState,
    reporter: Reporter,
    problems: list[Problem],
    index_url: str | None,
) -> int:
    """Mend the objects ``problems`` name; returns how many are left."""
    mendable = [p for p in problems if p.claim is not None]
    left = len(problems) - len(mendable)
    files = [p for p in mendable if not p.key.endswith(METADATA_SUFFIX)]
    metas = [p for p in mendable if p.key.endswith(METADATA_SUFFIX)]
    failed: set[str] = set()
    if files:
        url, options = upstream_settings(root, state, index_url)
        with Upstream(url, options=options) as upstream:
            need = [p for p in files if not _local_copy_is_sound(root, p)]
            pages = _upstream_pages(upstream, sorted({p.claim.project for p in need if p.claim}))
            if need:
                reporter.info(f"fetching {len(need)} files again from {redact_url(url)}")
            for p in files:
                assert p.claim is not None
                why = _repair_file(root, storage, upstream, pages.get(p.claim.project, ""), p)
                left += _said(reporter, p.key, why, "repaired")
                if why is not None:
                    failed.add(p.key)
    for p in metas:
        if p.key[: -len(METADATA_SUFFIX)] in failed:
            left += _said(reporter, p.key, "its wheel is not repaired", "rewrote")
        else:
            left += _said(reporter, p.key, _rewrite_metadata(root, storage, p), "rewrote")
    return left


def _local_copy_is_sound(root: Path, problem: Problem) -> bool:
    claim = problem.claim
    local = root / problem.key
    return bool(
        claim and claim.sha256 and local.is_file() and sha256_file(local)[1] == claim.sha256.lower()
    )


def _said(reporter: Reporter, key: str, why: str | None, done: str) -> int:
    if why is None:
        reporter.info(f"{done} {key}")
        return 0
    reporter.error(f"{key}: not repaired: {why}")
    return 1


def run_bucket_repair(
    run: BucketRun,
    reporter: Reporter,
    *,
    repair: bool,
    remove_unreferenced: bool,
    index_url: str | None = None,
) -> int:
    """Report, then mend as asked; 0 when everything found is mended, 1 otherwise."""
    root = run.working_tree
    if not (root / SIMPLE_DIR).is_dir():
        raise BucketError(
            f"no working tree of {run.target.url} at {root}: give --local-state the folder "
            "its sync uses (the repair takes its lock and its upstream), or run a sync "
            "first, which rebuilds a lost working tree from the bucket"
        )
    storage = open_storage(run.target, run.storage)
    with (
        TreeLock(root, "verify", wait=run.wait_lock, on_wait=reporter.info),
        TreeState(root) as state,
    ):
        sweep_scratch(root)
        problems: list[Problem] = []

        def report(problem: Problem) -> None:
            problems.append(problem)
            sys.stdout.write(problem.line() + "\n")

        tally = scan_bucket(storage, report)
        strays = unreferenced(storage, root) if remove_unreferenced else []
        for key in strays:
            sys.stdout.write(Problem(UNREFERENCED, key).line() + "\n")
        reporter.info(summary(storage, tally) + (f", {len(strays)} unreferenced" if strays else ""))
        left = (
            _repair(root, storage, state, reporter, problems, index_url)
            if repair
            else len(problems)
        )
        for key in strays:
            storage.delete(key)
            reporter.info(f"removed {key}")
        sweep_scratch(root)
    found = len(problems) + len(strays)
    if found and not left:
        reporter.info(f"mended all {found} problems found")
    elif left:
        reporter.info(f"{left} of {found} problems found are not mended")
    return 1 if left else 0
