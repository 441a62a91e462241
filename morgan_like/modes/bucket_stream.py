"""A sync into a bucket streams its projects up as it goes (tree.bucketstream); this is
the run-level part: what must hold before the stream starts, and its mark.

The stream uploads only what the state's ``unsent`` rows name, so the bucket must
already hold everything the working tree published before.  Before the run, under the
working tree's lock: the evictions a killed streaming run logged go into the state (so
the sync neither fetches those files again nor takes them for lost); a push cut short,
or a publish never pushed, is pushed first (the catch-up); and when the last streaming
run was killed (its mark is still there) the uploads it cut short are swept.  The mark
stands while the stream runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from morgan_like.output import Reporter

if TYPE_CHECKING:
    from morgan_like.modes.bucket import BucketRun
    from morgan_like.tree.bucketstream import StreamingPush
    from morgan_like.tree.state import TreeState


def behind(run: BucketRun) -> bool:
    """Whether the bucket may lack something the working tree holds outside the state's
    ``unsent`` rows: a push's journal is left, or the working tree's generation is not
    the one last pushed to this bucket (a publish never pushed; never pushed there at
    all, e.g. a working tree rebuilt or given to another bucket)."""
    from morgan_like.modes.bucket import pushed_generation
    from morgan_like.tree.bucketpush import read_journal
    from morgan_like.tree.generations import current
    from morgan_like.tree.state import TreeState

    root = run.working_tree
    if read_journal(root) is not None:
        return True
    with TreeState(root) as state:
        gen = current(state)
        return pushed_generation(state, run.target) != gen


def finished_before(state: TreeState) -> int:
    """The last sequence number of the state's finished-projects log (0: none)."""
    return int(state.query("SELECT COALESCE(MAX(seq), 0) FROM sync_finished")[0][0])


@contextlib.contextmanager
def streaming(run: BucketRun, reporter: Reporter) -> Iterator[StreamingPush]:
    """The stream around a sync on ``run``'s working tree (see the module docstring)."""
    from morgan_like.modes.bucket import describe_push, open_storage, push_locked
    from morgan_like.tree.bucketstream import STREAMING_MARK, StreamingPush, fold_evictions
    from morgan_like.tree.files import atomic_write_bytes
    from morgan_like.tree.layout import STATE_DIR
    from morgan_like.tree.lock import TreeLock
    from morgan_like.tree.state import STATE_NAME, TreeState

    root = run.working_tree
    storage = open_storage(run.target, run.storage)
    mark = root / STREAMING_MARK
    with TreeLock(root, "push", wait=run.wait_lock, on_wait=reporter.info):
        fresh = not (root / STATE_DIR / STATE_NAME).is_file()  # a first sync: nothing to catch up
        with TreeState(root) as state:
            fold_evictions(root, state, state.commit)
            # Only what this run finishes streams: the log's older rows are a killed run's
            # (the end push sends them; this run may be rewriting those projects).
            cursor = finished_before(state)
        if not fresh and behind(run):
            caught_up = push_locked(run)
            reporter.info(
                f"Brought {run.target.url} up to its working tree first: {describe_push(caught_up)}"
            )
        if mark.is_file():
            storage.sweep()  # a killed stream's cut-short multipart uploads
        mark.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(mark, b"", durable=True)
    stream = StreamingPush(root, storage, cursor=cursor)
    try:
        with stream:
            yield stream
    finally:
        stream.close()  # every upload it started has ended: nothing cut short to sweep
        with contextlib.suppress(FileNotFoundError):
            mark.unlink()
