"""Snapshots and the rules of change (CONTRACT "Canonical status and the rules of change"); the statuses
themselves are in `status`.

Pure: no I/O, no AWS, no Lambda. The pipeline asks `decide()` what a snapshot means for a stored job and
writes exactly what it answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from transcode_core.status import TERMINAL, Status, rank
from transcode_core.times import is_later


@dataclass(frozen=True)
class Destination:
    url: str
    status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Output:
    id: str
    status: Status | None = None
    provider_status: str | None = None
    progress: float | None = None
    size_bytes: int | None = None
    destinations: tuple[Destination, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)  # provider extras (filename, label, link)


@dataclass(frozen=True)
class JobError:
    message: str
    code: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What a provider says about one job right now, already normalized by its adapter."""

    provider: str
    job_id: str
    status: Status
    provider_status: str
    progress: float | None = None
    source_url: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    outputs: tuple[Output, ...] = ()
    error: JobError | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # provider extras kept on the item
    requeued: bool = False  # the provider says outright that this is a new run of the job
    progress_rescaled: bool = False  # the adapter corrected its reading of the progress scale: it may go down
    # The provider's own estimate of the time to the job's end, where its answer gives one (estimate.py): not a
    # field of the item, so a countdown alone never writes; the estimate is refreshed with the job's changes.
    time_left_seconds: float | None = None
    # The adapter times its next read of this job from this one: the store keeps when it was read even when
    # nothing changed (`updated_at` only moves on a change).
    note_read: bool = False


class Kind(StrEnum):
    """What a decided change is; also the metric dimension of writes."""

    NEW = "new"
    ADVANCE = "advance"
    PROGRESS = "progress"
    REFRESH = "refresh"
    NEW_ATTEMPT = "new_attempt"
    UNKNOWN_WORD = "unknown_word"
    STALLED = "stalled"


@dataclass(frozen=True)
class Change:
    """The job's fields after the change (only the public, CONTRACT fields) and what kind of change it is."""

    kind: Kind
    fields: dict[str, Any]
    previous_status: Status | None
    publishes: bool  # a terminal status was entered (or a stall seen): an event goes into the outbox


def clamp_progress(value: Any) -> float | None:
    """A percentage as a number in 0..100; None when absent or not a number."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number:  # NaN
        return None
    number = min(max(number, 0.0), 100.0)
    return int(number) if number.is_integer() else round(number, 2)


def mean_progress(outputs: Sequence[Output]) -> float | None:
    """The outputs' mean progress, of those that report one; None when none does."""
    known = [progress for output in outputs if (progress := clamp_progress(output.progress)) is not None]
    return round(math.fsum(known) / len(known), 2) if known else None  # statistics.fmean, without its import


def snapshot_fields(snapshot: Snapshot) -> dict[str, Any]:
    """The item fields a snapshot describes; None and empty values are left out."""
    fields: dict[str, Any] = {
        "status": snapshot.status.value,
        "provider_status": snapshot.provider_status,
        "progress": clamp_progress(snapshot.progress),
        "source_url": snapshot.source_url,
        "created_at": snapshot.created_at,
        "started_at": snapshot.started_at,
        "finished_at": snapshot.finished_at,
        "outputs": [_output_map(output) for output in snapshot.outputs] or None,
        "error": drop_none({"message": snapshot.error.message, "code": snapshot.error.code})
        if snapshot.error
        else None,
        "details": drop_none(snapshot.details) or None,
    }
    return drop_none(fields)


def _output_map(output: Output) -> dict[str, Any]:
    mapped = {
        "id": output.id,
        "status": output.status.value if output.status else None,
        "provider_status": output.provider_status,
        "progress": clamp_progress(output.progress),
        "size_bytes": output.size_bytes,
        "destinations": [drop_none(vars(d)) for d in output.destinations],
    }
    mapped.update(output.details)
    return drop_none(mapped)


def drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping without its None values (an item stores no nulls)."""
    return {key: value for key, value in mapping.items() if value is not None}


# What a new attempt does not inherit from the previous one.
_PER_ATTEMPT = ("progress", "finished_at", "error", "outputs")


def decide(stored: Mapping[str, Any] | None, snapshot: Snapshot) -> Change | None:
    """Applies the CONTRACT's rules of change. None means: write nothing."""
    observed = snapshot_fields(snapshot)
    if stored is None or "status" not in stored:
        # First sight (or a job registered through the API and never polled yet).
        fields = dict(observed)
        if stored:
            fields = {**snapshot_part(stored), **observed}
        return Change(Kind.NEW, fields, None, snapshot.status in TERMINAL)

    current = Status(stored["status"])
    new = snapshot.status
    base = snapshot_part(stored)

    if new is Status.UNKNOWN:
        # Rule 5: keep the raw word, never move, never publish.
        if stored.get("provider_status") == snapshot.provider_status:
            return None
        return Change(Kind.UNKNOWN_WORD, {**base, "provider_status": snapshot.provider_status}, current, False)

    if current in TERMINAL:
        if _is_new_attempt(stored, snapshot):
            fields = {key: value for key, value in base.items() if key not in _PER_ATTEMPT}
            fields.update(observed)
            return Change(Kind.NEW_ATTEMPT, fields, current, new in TERMINAL)
        if new is not current:
            return None  # rule 1/2: a terminal job does not leave its state without a new attempt
        return _same_status(stored, base, observed, current, snapshot.progress_rescaled)

    if rank(new) < rank(current):
        return None  # rule 1: stale
    if new is current:
        return _same_status(stored, base, observed, current, snapshot.progress_rescaled)
    fields = {**base, **observed}
    if new not in TERMINAL and "progress" not in observed:
        fields.pop("progress", None)  # the old stage's progress says nothing about the new one
    return Change(Kind.ADVANCE, fields, current, new in TERMINAL)


def _same_status(
    stored: Mapping[str, Any], base: dict, observed: dict, current: Status, rescaled: bool = False
) -> Change | None:
    fields = {**base, **observed}
    old_progress = stored.get("progress")
    new_progress = observed.get("progress")
    lowered = rescaled and new_progress is not None  # a corrected scale: the old value was read wrongly
    if old_progress is not None and not lowered and (new_progress is None or new_progress < old_progress):
        fields["progress"] = old_progress  # rule 3: progress never goes down within a status
    if fields == base:
        return None  # rule 4
    progressed_only = {k: v for k, v in fields.items() if k != "progress"} == {
        k: v for k, v in base.items() if k != "progress"
    }
    kind = Kind.PROGRESS if progressed_only else Kind.REFRESH
    return Change(kind, fields, current, False)


def _is_new_attempt(stored: Mapping[str, Any], snapshot: Snapshot) -> bool:
    if snapshot.requeued:
        # The adapter judged against the item it read; a run that won the write since may already hold this
        # very run (same end, same time): re-deciding against it must not start another attempt.
        return not (
            snapshot.finished_at is not None
            and snapshot.finished_at == stored.get("finished_at")
            and snapshot.status.value == stored.get("status")
        )
    return is_later(snapshot.started_at, stored.get("started_at"))


# The item fields that snapshots own; keys, version, attempt and bookkeeping belong to the store.
SNAPSHOT_FIELDS = frozenset(
    {
        "status",
        "provider_status",
        "progress",
        "source_url",
        "created_at",
        "started_at",
        "finished_at",
        "outputs",
        "error",
        "details",
    }
)


def snapshot_part(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a stored item that snapshots own."""
    return {key: value for key, value in stored.items() if key in SNAPSHOT_FIELDS}
