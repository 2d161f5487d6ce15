"""A PollContext as the pipeline builds one, for the adapters' own tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from transcode_core.providers.base import PollContext
from transcode_core.stored_items import ActiveJobs, StoredItems


def poll_context(
    active_jobs: Iterable[Mapping[str, Any]],
    lookup: Callable[[Sequence[str]], Mapping[str, Any]] = lambda job_ids: {},
    **fields: Any,
) -> PollContext:
    """The active jobs' ids held and their items read when asked for, as in a poll; `lookup` finds the other
    jobs' items (it is not asked for the active ones)."""
    active = {job["job_id"]: job for job in active_jobs}

    def read(job_ids: Sequence[str]) -> dict[str, Any]:
        others = [job_id for job_id in job_ids if job_id not in active]
        found = dict(lookup(others)) if others else {}
        found.update({job_id: active[job_id] for job_id in job_ids if job_id in active})
        return found

    items = StoredItems(read)
    return PollContext(ActiveJobs(active, items), items.items_of, **fields)
