"""fetch_in_threads queues a bounded number of projects, however many the sync lists."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from morgan_like.fetch.projects import IN_FLIGHT, ProjectGone, ProjectJob, fetch_in_threads
from morgan_like.index.upstream import Upstream

from ..fakeindex import FakeIndex


def _keep_all(name, files):  # noqa: ANN001, ANN202 - a sync's FileRules.keep
    return files


def test_projects_are_queued_a_bounded_number_at_a_time(fake_index: FakeIndex) -> None:
    threads, total = 2, 300
    lock = threading.Lock()
    delivered: list[object] = []
    leads: list[int] = []

    def items() -> Iterator[tuple[str, int]]:
        for i in range(total):
            with lock:
                leads.append(i - len(delivered))  # taken from the list, not yet delivered
            yield f"gone{i}", 0

    def deliver(outcome: object) -> None:
        with lock:
            delivered.append(outcome)

    job = ProjectJob(fake_index.url, {}, _keep_all, None, stale_retries=0, stale_delay=0.0)
    with Upstream(fake_index.url, retries=0) as upstream:
        fetch_in_threads(upstream, job, items(), threads, deliver)
    assert len(delivered) == total
    assert all(isinstance(o, ProjectGone) for o in delivered)
    assert max(leads) <= threads * IN_FLIGHT
