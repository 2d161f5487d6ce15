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

from transcode_core.errors import DependencyUnavailable
from transcode_core.estimate import BASIS_TEXT, ESTIMATE_FIELDS
from transcode_core.providers import PROVIDER_IDS, get_spec
from transcode_core.status import is_terminal
from transcode_core.store import public_item
from transcode_core.times import utc_now
from transcode_status_cli import listing, render
from transcode_status_cli.errors import CREDENTIALS, FAILED, NOT_FOUND, USAGE, CliError
from transcode_status_cli.options import PROVIDER, STATUS, examples, target_options
from transcode_status_cli.target import Target


@click.group()
def jobs() -> None:
    """The jobs table: list, show, track, untrack, watch."""


def _filters(command: Any) -> Any:
    command = click.option("--since", help="Changed since: an age (30m, 2h, 7d) or a time (2026-11-28T09:00Z).")(
        command
    )
    command = click.option(
        "--status",
        "statuses",
        multiple=True,
        type=STATUS,
        metavar="STATUS",  # the nine choices in one bracket would not fit an 80-column terminal
        help=f"Only this status (repeatable): {', '.join(STATUS.choices)}.",
    )(command)
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
        return _with_estimates(target, [public_item(item) for item in items]), token

    return page


def _with_estimates(target: Target, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listed jobs with the estimated finish of those still running (the list's index does not hold it:
    one BatchGetItem per provider reads it). Without that read (e.g. a policy that does not allow it) the
    list is shown as it is, and a line on stderr says why the estimates are missing."""
    running: dict[str, list[str]] = {}
    for job in jobs:
        if not is_terminal(job.get("status", "")):
            running.setdefault(job["provider"], []).append(job["job_id"])
    found: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for provider, job_ids in running.items():
            for job_id, item in target.store.get_many(provider, job_ids).items():
                found[(provider, job_id)] = {key: item[key] for key in ESTIMATE_FIELDS if key in item}
    except DependencyUnavailable as exc:
        click.echo(f"transcode-status: estimated finish times not shown ({exc})", err=True)
        return jobs
    return [{**job, **found.get((job["provider"], job["job_id"]), {})} for job in jobs]


def _job_id(provider: str, job_id: str) -> str:
    if not get_spec(provider).is_job_id(job_id):
        raise CliError(f"{job_id!r} is not a valid {provider} job id", USAGE)
    return job_id


@jobs.command(
    "list",
    epilog=examples(
        "jobs list --stack transcode-status",
        "jobs list --provider xvid --status ERROR --since 2h",
        "jobs list --all --json | jq '.jobs[].job_id'",
    ),
)
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
    if found:
        console.print(render.jobs_table(found, width=console.width))
    else:
        console.print(_no_jobs(providers, statuses, since), soft_wrap=True)
    if token:
        console.print(f"more: --next-token {token}", highlight=False, soft_wrap=True)


def _no_jobs(providers: tuple[str, ...], statuses: tuple[str, ...], since: str | None) -> str:
    """The line an empty listing prints (an empty table reads as a broken one)."""
    filters = [
        f"provider {', '.join(providers)}" if providers else "",
        f"status {', '.join(statuses)}" if statuses else "",
        f"changed since {since}" if since else "",
    ]
    said = "; ".join(part for part in filters if part)
    return f"no jobs ({said})" if said else "no jobs in the table yet (`jobs track PROVIDER JOB_ID` adds one)"


@jobs.command(
    "show",
    epilog=examples("jobs show encoding_com 31000001", "jobs show vod_station '10019:/media/keynote.mp4' --json"),
)
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
        ("expected end", _expected_end(job)),
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
    console.print(render.history_table(history, width=console.width))


def _expected_end(job: dict[str, Any]) -> str | None:
    """The estimated finish, how far off it is and what it comes from: "2026-12-01T12:40:00Z (in 12m, from its
    progress)"."""
    moment = job.get("estimated_finish_at")
    if not moment:
        return None
    basis = BASIS_TEXT.get(job.get("estimate_basis"), "estimated")
    return f"{moment} ({render.until(moment, utc_now())}, {basis})"


def _tracking(item: dict[str, Any]) -> str:
    if item.get("untracked_at"):
        return f"stopped at {item['untracked_at']} (jobs untrack); `jobs track` resumes"
    if item.get("active_provider") and not is_terminal(item.get("status", "SUBMITTED")):
        return "polled"
    if item.get("rewatch_until"):
        return f"watched again until {item['rewatch_until']}"
    return "finished" if is_terminal(item.get("status", "")) else "tracked"


@jobs.command(
    "track", epilog=examples("jobs track encoding_com 31000001", "jobs track vod_station '10019:/media/keynote.mp4'")
)
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


@jobs.command("untrack", epilog=examples("jobs untrack xvid 559cbbec14ea67a7cad60001"))
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
        raise CliError(f"jobs API refused the request (HTTP 403: {message}): {_refusal_reason(message)}", CREDENTIALS)
    if status == 400:
        raise CliError(f"jobs API: {message}", USAGE)
    raise CliError(f"jobs API answered HTTP {status}: {message}", FAILED)


def _refusal_reason(message: str) -> str:
    """What a 403 of API Gateway's IAM authorizer means, from its message."""
    lowered = message.lower()
    if "signature" in lowered:  # "...signature we calculated does not match...", "Signature expired: ..."
        return "the request signature is wrong: check the secret access key and this machine's clock"
    if "security token" in lowered:  # "The security token included in the request is invalid/expired"
        return "the credentials are invalid or expired: renew them (e.g. aws sso login)"
    if "missing authentication token" in lowered:
        return "the request was not signed, or no such route (check --api-url)"
    if "not authorized" in lowered or "explicit deny" in lowered:
        return "these credentials need execute-api:Invoke on the jobs API"
    return "check the credentials and that they may call execute-api:Invoke on the jobs API"


@jobs.command(
    "watch", epilog=examples("jobs watch --status PROCESSING", "jobs watch --provider vod_station --interval 10")
)
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
                title = f"{stamp}  every {interval:g}s, Ctrl-C to stop"
                shown = render.jobs_table(found, title=title, width=live.console.width) if found else None
                live.update(shown or f"{title}\n{_no_jobs(providers, statuses, since)}", refresh=True)
            else:
                console = render.console()
                if found:
                    console.print(render.jobs_table(found, title=stamp, width=console.width))
                else:
                    console.print(f"{stamp}  {_no_jobs(providers, statuses, since)}", soft_wrap=True)
            if max_iterations and iteration >= max_iterations:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    finally:
        if live:
            live.stop()
