"""`jobs list` across providers: one Query per provider on the JobsByProvider index (newest first), merged,
with a page token that remembers where each provider's listing stopped."""

from __future__ import annotations

import base64
import heapq
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from transcode_core.store import JOB_SK, JobStore
from transcode_core.times import iso_z, parse_time, utc_now
from transcode_status_cli.errors import USAGE, CliError

_DONE = "done"
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_iso(text: str | None) -> str | None:
    """`--since`: an age (`90s`, `30m`, `2h`, `7d`) or a date/time (ISO 8601; no offset means UTC)."""
    if not text:
        return None
    match = _AGO.match(text.strip())
    if match:
        return iso_z(utc_now() - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))}))
    moment = parse_time(text)
    if moment is None:
        raise CliError(f"--since {text!r}: give an age like 30m, 2h, 7d or a time like 2026-11-28T09:00:00Z", USAGE)
    return moment


def page(
    store: JobStore,
    providers: Sequence[str],
    *,
    since: str | None,
    statuses: Sequence[str],
    limit: int,
    token: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` jobs of `providers`, newest first, and the token of the next page (None: the last)."""
    cursors = _decode(token, providers) if token else dict.fromkeys(providers)
    fetched: dict[str, list[dict[str, Any]]] = {}
    more: dict[str, bool] = {}
    for provider in providers:
        if cursors[provider] == _DONE:
            continue
        cursor = cursors[provider]
        start_after = (
            {"pk": cursor[0], "sk": JOB_SK, "listed_provider": provider, "updated_at": cursor[1]} if cursor else None
        )
        items, last = store.list_jobs(provider, since=since, statuses=statuses, limit=limit, start_after=start_after)
        fetched[provider], more[provider] = items, last is not None
    # Each provider's list keeps the index's order, so what a page takes of it is a prefix (its cursor).
    merged = list(heapq.merge(*fetched.values(), key=lambda item: item.get("updated_at", ""), reverse=True))[:limit]
    for provider, items in fetched.items():
        taken = [item for item in merged if item["listed_provider"] == provider]
        if taken:  # the index key of the last job shown; sk and listed_provider are implied
            cursors[provider] = [taken[-1]["pk"], taken[-1]["updated_at"]]
        if len(taken) == len(items) and not more[provider]:
            cursors[provider] = _DONE
    finished = all(cursor == _DONE for cursor in cursors.values())
    return merged, None if finished else _encode(cursors)


def _encode(cursors: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursors, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str, providers: Sequence[str]) -> dict[str, Any]:
    try:
        cursors = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise CliError("--next-token is not a token this command printed", USAGE) from None
    if not isinstance(cursors, dict) or set(cursors) != set(providers):
        raise CliError("--next-token belongs to another listing: repeat the same --provider options", USAGE)
    return cursors
