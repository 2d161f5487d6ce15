"""`transcode-status jobs ...`: list, show, track, untrack, watch."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

import click
from rich.live import Live
from rich.text import Text

from transcode_core.model import is_terminal
from transcode_core.providers import PROVIDER_IDS, get_spec
from transcode_core.store import public_item
from transcode_status_cli import listing, render
from transcode_status_cli.errors import FAILED, NOT_FOUND, USAGE, CliError
from transcode_status_cli.options import PROVIDER, STATUS, target_options
from transcode_status_cli.target import Target


@click.group()
def jobs() -> None:
    """The jobs table: list, show, track, untrack, watch."""


def _filters(command: Any) -> Any:
    command = click.option("--since", help="Changed since: an age (30m, 2h, 7d) or a time (2026-11-28T09:00Z).")(
        command
    )
    command = click.option("--status", "statuses", multiple=True, type=STATUS, help="Only this status (repeatable).")(
        command
    )
    return click.option(
        "--provider", "providers", multiple=True, type=PROVIDER, help="Only this provider (repeatable)."
    )(command)


def _pages(
    target: Target, providers: tuple[str, ...], statuses: tuple[str, ...], since: str | None
) -> Callable[[int, str | None], tuple[list[dict[str, Any]], str | None]]:
    """The listing the filters ask for: called with (limit, token), returns a page and the next token."""
    chosen = list(providers or PROVIDER_IDS)
    since_iso = listing.since_iso(since)
    wanted = [status.upper() for status in statuses]

    def page(limit: int, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        items, token = listing.page(target.store, chosen, since=since_iso, statuses=wanted, limit=limit, token=token)
        return [public_item(item) for item in items], token

    return page


def _job_id(provider: str, job_id: str) -> str:
    if not get_spec(provider).is_job_id(job_id):
        raise CliError(f"{job_id!r} is not a valid {provider} job id", USAGE)
    return job_id


@jobs.command("list")
@target_options
@_filters
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Jobs per page.")
@click.option("--next-token", help="Continue a listing where the previous page ended.")
@click.option("--all", "all_pages", is_flag=True, help="Every page, not just the first.")
def list_jobs(
    target: Target,
    as_json: bool,
    providers: tuple[str, ...],
    statuses: tuple[str, ...],
    since: str | None,
    limit: int,
    next_token: str | None,
    all_pages: bool,
) -> None:
    """Jobs, newest change first (an index query per provider, never a table scan)."""
    page = _pages(target, providers, statuses, since)
    found: list[dict[str, Any]] = []
    token = next_token
    while True:
        items, token = page(limit, token)
        found.extend(items)
        if not (all_pages and token):
            break
    if as_json:
        render.print_json({"jobs": found, "next_token": token})
        return
    console = render.console()
    console.print(render.jobs_table(found))
    if token:
        console.print(f"more: --next-token {token}", highlight=False, soft_wrap=True)


@jobs.command("show")
@target_options
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@click.argument("job_id")
def show_job(target: Target, as_json: bool, provider: str, job_id: str) -> None:
    """One job: state, outputs, error, attempts and its history as a timeline."""
    item = target.store.get(provider, _job_id(provider, job_id))
    if item is None:
        raise CliError(f"{provider} job {job_id} is not tracked", NOT_FOUND)
    history = [
        {"time": entry["sk"].split("#")[1], **{k: v for k, v in entry.items() if k not in ("pk", "sk", "expires_at")}}
        for entry in sorted(target.store.history(provider, job_id), key=lambda entry: entry.get("version", 0))
    ]
    tracking = _tracking(item)
    job = public_item(item)
    if as_json:
        render.print_json(
            {"job": job, "tracking": tracking, "pending_events": sorted(item.get("outbox") or {}), "history": history}
        )
        return
    console = render.console()
    error = job.get("error") or {}
    rows: list[tuple[str, Any]] = [
        ("job", f"{provider} {job_id}"),
        ("status", Text.from_markup(render.status_text(job.get("status")))),
        ("provider says", job.get("provider_status")),
        ("progress", None if job.get("progress") is None else f"{job['progress']:g}%"),
        ("attempt", job.get("attempt")),
        ("version", job.get("version")),
        ("tracking", tracking),
        ("created", job.get("created_at")),
        ("started", job.get("started_at")),
        ("finished", job.get("finished_at")),
        ("updated", job.get("updated_at")),
        ("source", job.get("source_url")),
    ]
    if error:
        code = f" (code {error['code']})" if error.get("code") not in (None, "") else ""
        rows.append(("error", f"{error.get('message')}{code}"))
    if item.get("outbox"):
        rows.append(("pending events", ", ".join(sorted(item["outbox"]))))
    for name, value in (job.get("details") or {}).items():
        rows.append((name, value))
    console.print(render.fields_table(rows))
    if job.get("outputs"):
        console.print(render.outputs_table(job["outputs"]))
    console.print(render.history_table(history))


def _tracking(item: dict[str, Any]) -> str:
    if item.get("untracked_at"):
        return f"stopped at {item['untracked_at']} (jobs untrack); `jobs track` resumes"
    if item.get("active_provider") and not is_terminal(item.get("status", "SUBMITTED")):
        return "polled"
    if item.get("rewatch_until"):
        return f"watched again until {item['rewatch_until']}"
    return "finished" if is_terminal(item.get("status", "")) else "tracked"


@jobs.command("track")
@target_options
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@click.argument("job_id")
def track_job(target: Target, as_json: bool, provider: str, job_id: str) -> None:
    """Start tracking a job (jobs API PUT, SigV4-signed); a finished job is watched again."""
    status, body = target.call_api("PUT", provider, _job_id(provider, job_id))
    if status not in (200, 201):
        _api_failure(status, body, provider, job_id)
    if as_json:
        render.print_json({"created": status == 201, "job": body})
        return
    what = "now tracked" if status == 201 else "tracked (it was in the table already)"
    click.echo(f"{provider} job {job_id} {what} (HTTP {status}): {body.get('status')}, attempt {body.get('attempt')}")


@jobs.command("untrack")
@target_options
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@click.argument("job_id")
def untrack_job(target: Target, as_json: bool, provider: str, job_id: str) -> None:
    """Stop tracking a job (jobs API DELETE): no more polls; item and history stay; only a PUT resumes it."""
    status, body = target.call_api("DELETE", provider, _job_id(provider, job_id))
    if status != 204:
        _api_failure(status, body, provider, job_id)
    if as_json:
        render.print_json({"untracked": True, "provider": provider, "job_id": job_id})
        return
    click.echo(f"{provider} job {job_id} is no longer tracked (HTTP 204); `jobs track` resumes it")


def _api_failure(status: int, body: Any, provider: str, job_id: str) -> None:
    message = (body or {}).get("error") or (body or {}).get("message") or "no details"
    if status == 404:
        raise CliError(f"{provider} job {job_id} is not tracked", NOT_FOUND)
    if status == 403:
        raise CliError(f"jobs API refused the request (HTTP 403: {message}): needs execute-api:Invoke", 4)
    if status == 400:
        raise CliError(f"jobs API: {message}", USAGE)
    raise CliError(f"jobs API answered HTTP {status}: {message}", FAILED)


@jobs.command("watch")
@target_options
@_filters
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Jobs shown.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1), help="Seconds between reads.")
@click.option(
    "--max-iterations", default=0, type=click.IntRange(0), help="Stop after this many reads (0: until Ctrl-C)."
)
def watch_jobs(
    target: Target,
    as_json: bool,
    providers: tuple[str, ...],
    statuses: tuple[str, ...],
    since: str | None,
    limit: int,
    interval: float,
    max_iterations: int,
) -> None:
    """A live view of the newest jobs, refreshed until Ctrl-C."""
    page = _pages(target, providers, statuses, since)
    live = Live(console=render.console(), auto_refresh=False) if sys.stdout.isatty() and not as_json else None
    try:
        if live:
            live.start()
        for iteration in itertools.count(1):
            found, _ = page(limit, None)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if as_json:
                render.print_json({"time": stamp, "jobs": found})
            elif live:
                live.update(
                    render.jobs_table(found, title=f"{stamp}  every {interval:g}s, Ctrl-C to stop"), refresh=True
                )
            else:
                render.console().print(render.jobs_table(found, title=stamp))
            if max_iterations and iteration >= max_iterations:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    finally:
        if live:
            live.stop()
