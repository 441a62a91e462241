"""A tree in an S3-compatible bucket: ``-i s3://BUCKET/PREFIX``, the run-level glue.

A run writes exactly as on disk into a local *working tree* (``--local-state``, default
under the user's cache dir, keyed by the URL): pages, ``.metadata``, the hidden state and
lock, and the files it fetched.  Then one push (``tree.bucketpush``) makes the bucket
equal to the working tree's visible files, files first and pages last, so that no page
in the bucket ever lists a missing object.  A sync does not wait for that push to send
its projects: each one goes up as soon as the sync commits it as finished, and its
files leave the working tree (``tree.bucketstream``, started by modes.bucket_stream);
the end push sends the rest (root pages, top-level files, the manifest, deletions) and
skips what streamed.  The disk code stays as it is; only these steps know the bucket.

What to push comes from the tree's generations (``tree.generations``): every publish
records the paths it changed or removed, and the last generation pushed is kept in the
state's ``meta`` table.  The paths touched since then are uploaded when the working tree
has them and deleted from the bucket when it no longer does.  A working tree that has
never pushed (or whose state was rebuilt) pushes in full: list the bucket, upload what
differs, delete what the tree lacks.  A push cut short leaves its journal in the working
tree; the next push finishes it first.

Endpoint, region and profile come from the config's ``[storage]`` section
(config.storageconf), else from the standard AWS variables (``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_PROFILE``); credentials from ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` or the ``~/.aws`` files, through the storage client.  Nothing
of them is written into the tree, and the endpoint is printed only redacted.

A working tree that is missing, or whose state was lost, is rebuilt from the bucket
before the run (modes.bucket_rebuild).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from morgan_like.errors import MorganLikeError
from morgan_like.output import Reporter

if TYPE_CHECKING:
    from morgan_like.config.storageconf import StorageSettings
    from morgan_like.modes.bucket_stream import StreamProcess
    from morgan_like.tree.bucketpush import PushResult, Sent
    from morgan_like.tree.state import TreeState
    from morgan_like.tree.storage import Storage

SCHEME = "s3://"
# S3's bucket naming rules (3 to 63 lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit); SeaweedFS, MinIO and Ceph RGW accept these too.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_PART = re.compile(r"[A-Za-z0-9!_.*'()-]+")
_PUSHED = "bucket.pushed_generation"  # the state's meta key: the last generation pushed
_PUSHED_TO = "bucket.url"  # ... and the bucket it went to
# In a working tree: the bucket it is pushed to.  Commands that read a tree on disk
# refuse it (cli/edge.py): its files may be in the bucket only, so an export would send
# them as removed, a genlocal record them as lost, server.py answer 404 for them.
WORKING_TREE_MARK = ".morgan-like/bucket.url"


class BucketError(MorganLikeError):
    """The bucket could not be reached, read or written: the message names the bucket
    (never a credential) and what to check."""


@dataclass(frozen=True)
class BucketURL:
    """``s3://BUCKET/PREFIX``: where a tree's objects live (``prefix`` without slashes
    at either end; empty for the bucket's top)."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, relpath: str) -> str:
        """The object key of a tree-relative path."""
        return f"{self.prefix}/{relpath}" if self.prefix else relpath


def working_tree_of(root: Path) -> str | None:
    """The bucket URL ``root`` is the working tree of; None: a tree of its own."""
    try:
        return (root / WORKING_TREE_MARK).read_text().strip() or None
    except OSError:
        return None


def is_bucket_url(value: str | None) -> bool:
    return bool(value) and str(value).lower().startswith(SCHEME)


def parse_bucket_url(value: str) -> BucketURL:
    """``s3://bucket[/prefix]``, checked: a bucket name S3 accepts, a prefix of plain key
    segments (no ``..``, no empty segment, no query); ValueError says what is wrong."""
    if not is_bucket_url(value):
        raise ValueError(f"{value!r} is not an s3:// URL (e.g. s3://pypi-mirror/tree)")
    rest = value[len(SCHEME) :]
    if "@" in rest.split("/", 1)[0]:
        raise ValueError(
            "an s3:// URL carries no credentials: give them in AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or an AWS profile"
        )
    if "?" in rest or "#" in rest:
        raise ValueError("an s3:// URL has no query (?...) or fragment (#...)")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"{bucket!r} is not a bucket name (3 to 63 lowercase letters, digits, dots "
            "and hyphens, e.g. s3://pypi-mirror/tree)"
        )
    prefix = prefix.strip("/")
    segments = prefix.split("/") if prefix else []
    for segment in segments:
        if segment in (".", "..") or not _KEY_PART.fullmatch(segment):
            raise ValueError(
                f"{segment!r} cannot be a part of the prefix (letters, digits and "
                "!_.*'()- only, no empty part, no . or ..)"
            )
    return BucketURL(bucket, "/".join(segments))


def cache_home() -> Path:
    """The user's cache dir: ``$XDG_CACHE_HOME``, else ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"


def default_state_dir(target: BucketURL) -> Path:
    """Where a bucket's working tree lives when ``--local-state`` is not given: one folder
    per URL, so two buckets (or two prefixes of one) never share a state."""
    digest = hashlib.sha256(target.url.encode()).hexdigest()[:16]
    return cache_home() / "morgan-like" / "s3" / digest


def endpoint_url() -> str | None:
    """The S3 endpoint as the AWS tools read it (``AWS_ENDPOINT_URL_S3``, then
    ``AWS_ENDPOINT_URL``); None: AWS itself."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _meta(state: TreeState, key: str) -> str | None:
    rows = state.query("SELECT value FROM meta WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


def pushed_generation(state: TreeState, target: BucketURL) -> int | None:
    """The last generation ``target`` received; None: never pushed there (push in full:
    a working tree given to another bucket with --local-state starts that one whole)."""
    value = _meta(state, _PUSHED)
    return int(value) if value is not None and _meta(state, _PUSHED_TO) == target.url else None


def set_pushed_generation(state: TreeState, target: BucketURL, gen: int) -> None:
    state.query("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_PUSHED, str(gen)))
    state.query("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_PUSHED_TO, target.url))


@dataclass(frozen=True)
class PushPlan:
    """What the bucket lacks: paths to upload, paths to delete, or everything (``full``)."""

    changed: tuple[str, ...]
    removed: tuple[str, ...]
    full: bool
    generation: int  # the working tree's generation once pushed


def plan_push(root: Path, target: BucketURL) -> PushPlan:
    """The paths touched since the last push, split by whether the working tree has them."""
    from morgan_like.tree.generations import current, touched_since
    from morgan_like.tree.state import TreeState

    with TreeState(root) as state:
        gen = current(state)
        base = pushed_generation(state, target)
        if base is None or base > gen:  # never pushed, or a state rebuilt since
            return PushPlan((), (), True, gen)
        touched = touched_since(state, base)
        # An evicted file lives in the bucket only: its absence here is no removal.
        changed = tuple(p for p in touched if (root / p).is_file())
        removed = tuple(p for p in touched if not (root / p).is_file() and not state.is_evicted(p))
    return PushPlan(changed, removed, False, gen)


def record_pushed(root: Path, target: BucketURL, gen: int) -> None:
    from morgan_like.tree.state import TreeState

    with TreeState(root) as state:
        set_pushed_generation(state, target, gen)
        state.commit()


@dataclass(frozen=True)
class BucketRun:
    """A run on a bucket: the URL, its working tree, and the lock's wait."""

    target: BucketURL
    working_tree: Path
    wait_lock: float | None = None
    evict: bool = False  # a curated slice keeps its files anyway (it looks for them on disk)
    storage: StorageSettings | None = None  # the config's [storage] section, if any


def run_on_bucket(run: BucketRun, mode: Callable[[Path], int], reporter: Reporter) -> int:
    """Run ``mode`` on the working tree, then push what it published to the bucket.

    The push runs after a failed run too (exit code 1: some projects failed): what it
    published is consistent and belongs in the bucket; a refused or crashed run raises
    and pushes nothing.  The push holds the working tree's lock, so no other run
    rewrites the tree while its pages are being uploaded."""
    from morgan_like.modes.bucket_rebuild import rebuild_if_lost

    rebuild_if_lost(run, open_storage(run.target, run.storage), reporter)
    mark = run.working_tree / WORKING_TREE_MARK
    if not mark.is_file() or mark.read_text().strip() != run.target.url:
        from morgan_like.tree.files import atomic_write_bytes

        mark.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(mark, f"{run.target.url}\n".encode(), durable=True)
    if not _evicting(run):
        code = mode(run.working_tree)
        return push_working_tree(run, reporter) or code if code in (0, 1) else code
    from morgan_like.modes.bucket_stream import streaming

    with streaming(run, reporter) as stream:
        code = mode(run.working_tree)
    if code not in (0, 1):
        return code
    return push_working_tree(run, reporter, stream) or code


def _evicting(run: BucketRun) -> bool:
    """Whether the working tree drops its files once they are in the bucket (a sync; a
    curated slice keeps them: it looks for them on disk)."""
    from morgan_like.tree.kind import SLICE_RECORD

    return run.evict and not (run.working_tree / SLICE_RECORD).is_file()


def push_working_tree(
    run: BucketRun, reporter: Reporter, stream: StreamProcess | None = None
) -> int:
    """Make the bucket equal to the working tree (its journal first, then the paths
    touched since the last push, or everything, less what ``stream`` sent with the bytes
    the working tree has); say what streamed, was uploaded and deleted."""
    from morgan_like.tree.lock import TreeLock

    if stream is not None:
        stream.close()
    with TreeLock(run.working_tree, "push", wait=run.wait_lock, on_wait=reporter.info):
        result = push_locked(run, stream.sent if stream is not None else None)
    if stream is not None:
        from dataclasses import replace

        streamed = stream.result
        if streamed.problem:
            reporter.warn(f"streaming to {run.target.url} stopped: {streamed.problem}")
        result = replace(
            result,
            streamed=streamed.objects,
            streamed_bytes=streamed.bytes,
            evicted=result.evicted + streamed.evicted,
        )
    reporter.info(f"Pushed to {run.target.url}: {describe_push(result)}")
    return 0


def push_locked(run: BucketRun, already: Mapping[str, Sent] | None = None) -> PushResult:
    """The push itself, under the working tree's lock held by the caller: the evictions a
    streaming run logged folded into the state first (an evicted file is no removal)."""
    from morgan_like.tree.bucketpush import push
    from morgan_like.tree.bucketstream import fold_evictions
    from morgan_like.tree.state import TreeState

    storage = open_storage(run.target, run.storage)
    root = run.working_tree
    with TreeState(root) as state:
        fold_evictions(root, state, state.commit)
    plan = plan_push(root, run.target)
    with TreeState(root) as state:
        # An evicted file's row stays verified (tree/state.py EVICTED): the next sync
        # neither fetches it again nor drops it from its project's page.
        result = push(
            root,
            storage,
            plan.changed,
            plan.removed,
            evict=_evicting(run),
            full=plan.full,
            on_evicted=state.mark_evicted,
            already=already,
        )
        state.commit()
    record_pushed(root, run.target, plan.generation)
    return result


def describe_push(result: PushResult) -> str:
    """The summary's line: what streamed during the run, what the push uploaded, deleted
    and evicted."""
    from morgan_like.output import human_size

    parts = []
    if result.streamed:
        parts.append(
            f"{result.streamed} objects streamed during the run "
            f"({human_size(result.streamed_bytes)})"
        )
    parts.append(f"{result.uploaded} objects uploaded ({human_size(result.bytes)})")
    parts.append(f"{result.deleted} deleted")
    if result.evicted:
        parts.append(f"{result.evicted} local files evicted")
    if result.resumed:
        parts.append("a push cut short finished first")
    return ", ".join(parts)


def verify_bucket_url(
    target: BucketURL, reporter: Reporter, settings: StorageSettings | None = None
) -> int:
    """``verify -i s3://...``: every page's objects, read from the bucket."""
    from morgan_like.modes.bucket_verify import verify_bucket

    return verify_bucket(open_storage(target, settings), reporter)


def storage_settings(given: StorageSettings | None = None) -> StorageSettings:
    """Where the store is: ``given`` (the config's [storage]), each setting it leaves
    unset from the AWS variables."""
    from morgan_like.config.storageconf import StorageSettings

    environ = StorageSettings(
        endpoint_url=endpoint_url(),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
        profile=None,  # boto3 reads AWS_PROFILE itself
    )
    return given.over(environ) if given is not None else environ


def open_storage(target: BucketURL, settings: StorageSettings | None = None) -> Storage:
    """The bucket's storage client (``tree.storage.S3Storage``): ``settings`` (the config's
    [storage]) first, then the AWS variables (storage_settings)."""
    from morgan_like.tree.storage import S3Storage

    where = storage_settings(settings)
    return S3Storage(
        target.bucket,
        target.prefix,
        endpoint=where.endpoint_url,
        region=where.region,
        profile=where.profile,
    )
