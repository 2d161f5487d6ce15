"""Output: rich tables for people, JSON for scripts (`--json` on every command)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from transcode_core.times import to_datetime, utc_now

STATUS_STYLE = {
    "COMPLETE": "green",
    "ERROR": "bold red",
    "CANCELED": "yellow",
    "UNKNOWN": "magenta",
    "STALLED": "bold yellow",
}


def console() -> Console:
    # Built per call, so that the stream is the one in use now (tests capture sys.stdout).
    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160  # a pipe: wide rows, not wrapped
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=wide)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def status_text(status: str | None) -> str:
    status = status or "-"
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value).replace("[", "\\[")


def _seconds(moment: str | None) -> str | None:
    """An ISO Z time to the second, for tables (JSON output keeps the stored value)."""
    return re.sub(r"\.\d+Z$", "Z", moment) if moment else moment


def until(moment: str | None, now: datetime) -> str | None:
    """How far an ISO time is from `now`, in a few characters: "in 12m", "in 1h05m", "3m ago", "now"."""
    when = to_datetime(moment)
    if when is None:
        return None
    ahead = round((when - now).total_seconds() / 60)
    if ahead == 0:
        return "now"
    minutes = abs(ahead)
    if minutes < 60:
        span = f"{minutes}m"
    elif minutes < 48 * 60:
        span = f"{minutes // 60}h{minutes % 60:02d}m"
    else:
        span = f"{minutes // (24 * 60)}d"
    return f"in {span}" if ahead > 0 else f"{span} ago"


# A list's columns, the ones a narrow terminal may drop first last; job and status are always shown. "ends"
# (the estimated finish) is shown only when a listed job has one.
JOB_COLUMNS = ("updated", "provider", "job", "status", "provider says", "progress", "ends", "attempt")
_DROPPED_FIRST = ("provider says", "attempt", "ends", "progress", "updated")
_MIN_JOB_WIDTH = 20  # below this, other columns go before the job id wraps further


def jobs_table(
    jobs: Iterable[Mapping[str, Any]], title: str | None = None, width: int = 160, now: datetime | None = None
) -> Table:
    """Jobs as a table `width` characters wide at most. A job id is never cut: the least useful columns
    are dropped while the row does not fit, then the id wraps (folds) rather than shrinking away."""
    now = now or utc_now()
    rows = []
    for job in jobs:
        progress = job.get("progress")
        status = status_text(job.get("status"))
        if job.get("untracked_at"):
            status += " (untracked)"
        rows.append(
            {
                "updated": _cell(_seconds(job.get("updated_at"))),
                "provider": _cell(job.get("provider")),
                "job": _cell(job.get("job_id")),
                "status": status,
                "provider says": _cell(job.get("provider_status")),
                "progress": "-" if progress is None else f"{progress:g}%",
                "ends": _cell(until(job.get("estimated_finish_at"), now)),
                "attempt": _cell(job.get("attempt")),
            }
        )
    natural = {
        column: max([len(column), *(Text.from_markup(row[column]).cell_len for row in rows)]) for column in JOB_COLUMNS
    }
    shown = [column for column in JOB_COLUMNS if column != "ends" or any(row["ends"] != "-" for row in rows)]

    def job_room() -> int:  # what is left for the job id: each column takes its padding and a border
        return width - 1 - sum(natural[column] + 3 for column in shown if column != "job") - 3

    for column in _DROPPED_FIRST:
        if job_room() >= min(natural["job"], _MIN_JOB_WIDTH):
            break
        if column in shown:
            shown.remove(column)
    # Still too narrow (provider and status alone fill it): they fold too, and the job id keeps its share.
    squeezed = job_room() < min(natural["job"], _MIN_JOB_WIDTH)
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in shown:
        justify = "right" if column in ("progress", "attempt") else "left"
        if column == "job":
            room = min(natural["job"], _MIN_JOB_WIDTH if squeezed else job_room())
            table.add_column(column, overflow="fold", min_width=room)
        elif squeezed:
            table.add_column(column, overflow="fold", justify=justify)
        else:
            table.add_column(column, no_wrap=True, min_width=natural[column], justify=justify)
    for row in rows:
        table.add_row(*(row[column] for column in shown))
    return table


def fields_table(rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value if isinstance(value, Text) else _cell(value))
    return table


def outputs_table(outputs: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="outputs", title_justify="left", header_style="bold")
    for column in ("id", "status", "provider says", "progress", "size", "destinations"):
        table.add_column(column)
    for output in outputs:
        destinations = "\n".join(
            " ".join(_cell(part) for part in (d.get("url"), d.get("status"), d.get("error")) if part)
            for d in output.get("destinations") or []
        )
        progress = output.get("progress")
        table.add_row(
            _cell(output.get("id")),
            status_text(output.get("status")),
            _cell(output.get("provider_status")),
            "-" if progress is None else f"{progress:g}%",
            _cell(output.get("size_bytes")),
            destinations or "-",
        )
    return table


HISTORY_COLUMNS = ("time", "version", "attempt", "status", "provider says", "progress", "source")
_HISTORY_DROPPED_FIRST = ("version", "progress", "attempt")


def history_table(history: Iterable[Mapping[str, Any]], width: int = 160) -> Table:
    """A job's history, `width` characters wide at most: a time is never cut, the least useful columns are
    dropped while a row does not fit."""
    rows = []
    for entry in history:
        progress = entry.get("progress")
        rows.append(
            {
                "time": _cell(_seconds(entry.get("time"))),
                "version": _cell(entry.get("version")),
                "attempt": _cell(entry.get("attempt")),
                "status": status_text(entry.get("status")),
                "provider says": _cell(entry.get("provider_status")),
                "progress": "-" if progress is None else f"{progress:g}%",
                "source": _cell(entry.get("source")),
            }
        )
    natural = {
        column: max([len(column), *(Text.from_markup(row[column]).cell_len for row in rows)])
        for column in HISTORY_COLUMNS
    }
    shown = list(HISTORY_COLUMNS)
    for column in _HISTORY_DROPPED_FIRST:
        if 1 + sum(natural[name] + 3 for name in shown) <= width:
            break
        shown.remove(column)
    table = Table(title="history", title_justify="left", header_style="bold")
    for column in shown:
        right = column in ("version", "attempt", "progress")
        if column == "time":  # never cut: the other columns fold first
            table.add_column(column, no_wrap=True, min_width=natural[column])
        else:
            table.add_column(column, overflow="fold", justify="right" if right else "left")
    for row in rows:
        table.add_row(*(row[column] for column in shown))
    return table


def event_line(event: Mapping[str, Any], attributes: Mapping[str, str]) -> str:
    marks = " ".join(f"[{mark}]" for mark in ("replay", "test") if event.get(mark))
    label = "STALLED" if event.get("event") == "job.stalled" else event.get("status")
    detail = ""
    error = (event.get("job") or {}).get("error")
    if event.get("status") == "ERROR" and error:
        detail = f"  error: {error.get('message')}"
    due = (event.get("job") or {}).get("estimated_finish_at")
    if event.get("event") == "job.stalled" and due:
        detail = f"  expected to finish {due}"
    return (
        f"{event.get('occurred_at')}  {event.get('event', '?'):<14} {label:<9} "
        f"{event.get('provider')} {event.get('job_id')}  attempt {event.get('attempt')}{detail} {marks}"
    ).rstrip()
