"""Output: rich tables for people, JSON for scripts (`--json` on every command)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def jobs_table(jobs: Iterable[Mapping[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("updated", "provider", "job", "status", "provider says", "progress", "attempt"):
        table.add_column(
            column,
            no_wrap=column != "job",
            overflow="fold" if column == "job" else "ellipsis",  # a job id is never cut short
            justify="right" if column in ("progress", "attempt") else "left",
        )
    for job in jobs:
        progress = job.get("progress")
        status = status_text(job.get("status"))
        if job.get("untracked_at"):
            status += " (untracked)"
        table.add_row(
            _cell(_seconds(job.get("updated_at"))),
            _cell(job.get("provider")),
            _cell(job.get("job_id")),
            status,
            _cell(job.get("provider_status")),
            "-" if progress is None else f"{progress:g}%",
            _cell(job.get("attempt")),
        )
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


def history_table(history: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="history", title_justify="left", header_style="bold")
    for column in ("time", "version", "attempt", "status", "provider says", "progress", "source"):
        table.add_column(column, justify="right" if column in ("version", "attempt", "progress") else "left")
    for entry in history:
        progress = entry.get("progress")
        table.add_row(
            _cell(entry.get("time")),
            _cell(entry.get("version")),
            _cell(entry.get("attempt")),
            status_text(entry.get("status")),
            _cell(entry.get("provider_status")),
            "-" if progress is None else f"{progress:g}%",
            _cell(entry.get("source")),
        )
    return table


def event_line(event: Mapping[str, Any], attributes: Mapping[str, str]) -> str:
    marks = " ".join(f"[{mark}]" for mark in ("replay", "test") if event.get(mark))
    label = "STALLED" if event.get("event") == "job.stalled" else event.get("status")
    detail = ""
    error = (event.get("job") or {}).get("error")
    if event.get("status") == "ERROR" and error:
        detail = f"  error: {error.get('message')}"
    return (
        f"{event.get('occurred_at')}  {event.get('event', '?'):<14} {label:<9} "
        f"{event.get('provider')} {event.get('job_id')}  attempt {event.get('attempt')}{detail} {marks}"
    ).rstrip()
