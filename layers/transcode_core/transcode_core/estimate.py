"""When a job will end: `estimated_finish_at` and `estimate_basis` on the job item (docs/events.md
"When a job will end").

Pure: the pipeline calls `estimate_fields` on every write of a job item, with the provider's own estimate
of the time left when its answer held one. The provider's estimate wins; else the job's progress over time
gives one: a straight line from the first progress reading of the attempt (kept on the item as the internal
`estimate_from`) to the latest. A new attempt, or progress lower than the last reading, starts the line
again; a job without progress, or with one reading only, has no estimate; a terminal job has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from transcode_core.status import is_terminal
from transcode_core.times import iso_z, to_datetime

ESTIMATE_FIELDS = ("estimated_finish_at", "estimate_basis")
READING_FIELD = "estimate_from"  # bookkeeping: {"at": ISO time, "progress": percent} of the line's start
PROVIDER = "provider"
PROGRESS = "progress"
BASIS_TEXT = {PROVIDER: "the provider's own estimate", PROGRESS: "from its progress"}  # e-mail and CLI words
# A line this flat says nothing useful (0.01% an hour is centuries): no estimate rather than a silly one.
MAX_AHEAD = timedelta(days=30)


def estimate_fields(
    stored: Mapping[str, Any] | None,
    item: Mapping[str, Any],
    now: datetime,
    *,
    time_left_seconds: float | None = None,
    reading: bool = True,
) -> dict[str, Any]:
    """The estimate fields (and the line's start) the item gets in this write; empty when it has none.

    `item` is the item being written (status, progress and attempt already decided), `stored` the one it
    replaces. `reading` is False for writes that read nothing from the provider (a stall): the estimate
    stays as it was."""
    stored = stored or {}
    if is_terminal(item.get("status", "")):
        return {}
    if not reading:
        return {key: stored[key] for key in (*ESTIMATE_FIELDS, READING_FIELD) if key in stored}
    fields: dict[str, Any] = {}
    progress = item.get("progress")
    start = _line_start(stored, item, progress)
    if progress is not None:
        fields[READING_FIELD] = start or {"at": iso_z(now), "progress": progress}
    finish: datetime | None = None
    if time_left_seconds is not None and 0 < time_left_seconds <= MAX_AHEAD.total_seconds():
        finish, fields["estimate_basis"] = now + timedelta(seconds=time_left_seconds), PROVIDER
    elif start is not None and progress is not None:
        finish = _extrapolated(start, progress, now)
        if finish is not None:
            fields["estimate_basis"] = PROGRESS
    if finish is not None:
        fields["estimated_finish_at"] = iso_z(finish.replace(microsecond=0))
    return fields


def _line_start(stored: Mapping[str, Any], item: Mapping[str, Any], progress: Any) -> dict[str, Any] | None:
    """The stored start of the progress line, while it still holds for this reading."""
    start = stored.get(READING_FIELD)
    if not isinstance(start, Mapping) or progress is None:
        return None
    if stored.get("attempt", 1) != item.get("attempt", 1):
        return None  # a new attempt runs from its own start
    previous = stored.get("progress")
    if progress < start.get("progress", 0) or (previous is not None and progress < previous):
        return None  # progress went back (a new stage counting from 0, a corrected scale): start again
    return dict(start)


def _extrapolated(start: Mapping[str, Any], progress: float, now: datetime) -> datetime | None:
    began = to_datetime(start.get("at"))
    done = float(progress) - float(start.get("progress", 0))
    if began is None or done <= 0 or now <= began:
        return None  # one reading, or no progress since it: no line yet
    seconds_per_percent = (now - began).total_seconds() / done
    ahead = timedelta(seconds=seconds_per_percent * (100 - float(progress)))
    return now + ahead if ahead <= MAX_AHEAD else None
