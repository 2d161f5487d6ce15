"""NAVER Cloud VOD Station: a signed, paged status listing and per-output callbacks.

The API names no job and cannot read one. A job here is one input file in one category (job_id
"<categoryId>:<filePath>"); the listing and the callbacks speak of its outputs, one per encoding option
(`outputType`), and the job's status is derived from them (`derive_status`).

Decisions (README "VOD Station"):
- Every request is signed over exactly the path and query that are sent: the path of the configured URL
  joined with `api/v2/status` (a path prefix in PROVIDER_API_URL is sent and signed) and a query string
  built here, in a fixed order, and sent as it is.
- The listing filters on work *start*, which no item shows (`lastWorkTime` is the last work). A job found
  in a window [from, to] started at or after `from`: that bound is kept (`details.work_started_after`) and
  a poll reads from the earliest bound of its active jobs (the discovery look-back for a job never listed
  yet, e.g. one registered through the jobs API) to now plus FUTURE_MARGIN, so a job is never lost because
  it started long before it was first seen. Outputs of one job may be spread over pages, so a job is judged
  only once every page was read; when a page fails, jobs already stored are still updated (their other
  outputs come from the store) and new jobs wait for a complete read.
- An active job that a complete read does not list is marked (`details.not_listed_since`); still missing
  after NOT_LISTED_GRACE (or STALL_MINUTES, if longer) it ends in ERROR, code NOT_LISTED, and its event says so.
- `created_at` is the oldest `lastWorkTime` ever seen for the job (the API has no start time per item);
  `started_at` is left unset because no value would be stable; `finished_at` is the latest `lastWorkTime`
  once the job is terminal. A terminal job that the listing shows with work later than its `finished_at`
  (running again, or already finished again, even the other way) is a new attempt (`requeued`).
- A callback carries one output. It is merged into the stored job's outputs (an output never moves back)
  and the job's status is derived with the same rule, except that a callback alone never completes a job
  whose full set of outputs has not been seen in a listing (`details.output_types`): until then it stays
  PROCESSING and the next poll completes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from transcode_core.errors import BadRequest, ConfigurationError, ProviderError
from transcode_core.http import json_body, send
from transcode_core.model import (
    Destination,
    JobError,
    Output,
    Snapshot,
    Status,
    clamp_progress,
    drop_none,
    is_terminal,
    map_status,
    mean_progress,
    rank,
    status_words,
)
from transcode_core.observability import logger
from transcode_core.providers import values
from transcode_core.providers.base import (
    Adapter,
    PollContext,
    PollFailure,
    ProviderSpec,
    StoredJob,
    unprintable_character,
)
from transcode_core.times import from_epoch_ms, iso_z, to_datetime, to_epoch_ms
from transcode_core.urls import join_url, redact_url
from transcode_core.webhook import WebhookBody

PROVIDER = "vod_station"
DEFAULT_API_URL = "https://vodstation.apigw.ntruss.com/"
STATUS_PATH = "api/v2/status"

WORDS = status_words(
    {
        Status.QUEUED: ("WAITING",),
        Status.PROCESSING: ("RUNNING",),
        Status.COMPLETE: ("COMPLETE",),
        Status.ERROR: ("FAILURE",),
        Status.CANCELED: ("CANCELED",),
    }
)

NOT_LISTED_GRACE = timedelta(hours=2)  # an active job missing from complete reads this long has ended
NOT_LISTED = "NOT_LISTED"
FUTURE_MARGIN = timedelta(minutes=5)  # the gateway's clock may run ahead of ours
AUTH_REJECTED = (401, 403)  # wrong keys, signature or clock: no page can be read this run
# `pk` ("vod_station#" + job id) is also the ActiveJobs index's sort key, which holds at most 1024 bytes.
MAX_JOB_ID_BYTES = 1000
_JOB_ID = re.compile(r"[0-9]+:.+", re.DOTALL)
MAX_PAGES = 1000  # a guard against a `total` that never ends


class AuthenticationRejected(ProviderError):
    """The gateway refused the keys, the signature or the timestamp (HTTP 401/403): nothing can be read."""


def sign(method: str, path_with_query: str, timestamp_ms: str, access_key: str, secret_key: str) -> str:
    """API Gateway signature v2: base64(HMAC-SHA256(secret, "METHOD path?query\\ntimestamp\\naccess_key"))."""
    message = f"{method} {path_with_query}\n{timestamp_ms}\n{access_key}"
    digest = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- the job's status from its outputs ----------------------------------------------------------------


def derive_status(outputs: Sequence[Output]) -> Status:
    """The job's status from its outputs' statuses, first rule that holds:
    1. any output failed -> ERROR (the job will not deliver everything it was asked for);
    2. every output complete -> COMPLETE; every output canceled -> CANCELED;
       only complete and canceled outputs -> COMPLETE (what was not canceled was delivered);
    3. any output running, or some finished while others wait -> PROCESSING;
    4. every output waiting (or canceled) -> QUEUED;
    5. otherwise (an unknown word decides the rest) -> UNKNOWN.
    Rules that need every output's status (2, 4) do not hold while any word is unknown."""
    statuses = [output.status or Status.UNKNOWN for output in outputs]
    if not statuses:
        return Status.UNKNOWN
    present = set(statuses)
    if Status.ERROR in present:
        return Status.ERROR
    if present == {Status.COMPLETE} or present == {Status.COMPLETE, Status.CANCELED}:
        return Status.COMPLETE
    if present == {Status.CANCELED}:
        return Status.CANCELED
    finished = present & {Status.COMPLETE, Status.CANCELED}
    if Status.PROCESSING in present or (Status.COMPLETE in finished and Status.QUEUED in present):
        return Status.PROCESSING
    if present <= {Status.QUEUED, Status.CANCELED}:
        return Status.QUEUED
    return Status.UNKNOWN


def summarize_words(outputs: Sequence[Output]) -> str:
    """The outputs' words, deduplicated and sorted: "COMPLETE" when all agree, else e.g. "COMPLETE,RUNNING"."""
    return ",".join(sorted({output.provider_status or "" for output in outputs} - {""})) or "UNKNOWN"


def is_job_id(value: str) -> bool:
    """`<categoryId>:<filePath>`, one line of printable text short enough (in UTF-8 bytes) to be a key of the
    table and its index."""
    return (
        bool(_JOB_ID.fullmatch(value))
        and unprintable_character(value) is None
        and len(value.encode("utf-8")) <= MAX_JOB_ID_BYTES
    )


def job_id_of(category_id: object, file_path: str) -> str:
    return f"{category_id}:{file_path}"


# --- the adapter --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One listing item or callback: one output of one job."""

    job_id: str
    category_id: str
    category_name: str | None
    file_path: str
    output: Output
    last_work: datetime | None  # None for callbacks: they carry no time


class VodStationAdapter(Adapter):
    provider = PROVIDER

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        missing = [key for key in ("access_key", "secret_key") if not self.credentials.get(key)]
        if missing:
            raise ConfigurationError(f"vod_station credentials lack: {', '.join(missing)}")
        self.clock: Callable[[], float] = time.time  # the signature's timestamp; the gateway checks it

    # --- client ---------------------------------------------------------------------------------------
    def list_page(self, page_no: int, window: tuple[int, int]) -> dict[str, Any]:
        """One page of GET /api/v2/status; ProviderError for an error body, any HTTP status."""
        query = urlencode(
            [
                ("pageNo", page_no),
                ("pageSizeNo", self.settings.page_size),
                ("workStartTimeFrom", window[0]),
                ("workStartTimeTo", window[1]),
            ]
        )
        url = f"{join_url(self.api_url, STATUS_PATH)}?{query}"
        response = send(
            self.provider, self.session, "GET", url, headers=self._signed_headers("GET", url), deadline=self.deadline
        )
        try:
            document = json_body(self.provider, response)
        except ProviderError:
            if response.status_code < 400:
                raise
            document = None  # a gateway refusal need not be JSON: its status says enough
        error = document.get("error") if isinstance(document, dict) else None
        if error or response.status_code >= 400:
            rejected = response.status_code in AUTH_REJECTED
            raise (AuthenticationRejected if rejected else ProviderError)(
                self.provider, _error_text(response.status_code, error)
            )
        if not isinstance(document, dict) or not isinstance(document.get("content", []), list):
            raise ProviderError(self.provider, f"HTTP {response.status_code}: the listing has no content list")
        return document

    def _signed_headers(self, method: str, url: str) -> dict[str, str]:
        # The gateway verifies over the path and query it receives, so sign exactly the URL being sent.
        parts = urlsplit(url)
        path_with_query = f"{parts.path}?{parts.query}" if parts.query else parts.path
        timestamp = str(int(self.clock() * 1000))
        access_key, secret_key = self.credentials["access_key"], self.credentials["secret_key"]
        return {
            "x-ncp-apigw-timestamp": timestamp,
            "x-ncp-iam-access-key": access_key,
            "x-ncp-apigw-signature-v2": sign(method, path_with_query, timestamp, access_key, secret_key),
        }

    # --- poll -----------------------------------------------------------------------------------------
    def window(self, active_jobs: Sequence[StoredJob], now: datetime) -> tuple[int, int]:
        """(workStartTimeFrom, workStartTimeTo) in epoch ms: from the earliest work start any active job may
        have (its kept bound; the discovery look-back for a job never listed) to now plus a margin."""
        earliest = now - timedelta(days=self.settings.discovery_days)
        bounds = [_work_start_bound(job) or earliest for job in active_jobs]
        return to_epoch_ms(min(bounds, default=earliest)), to_epoch_ms(now + FUTURE_MARGIN)

    def poll(self, context: PollContext) -> Iterator[Snapshot | PollFailure]:
        window = self.window(context.active_jobs, context.now)
        items, failure = self._read_listing(window, context.stats)
        if failure:
            yield failure
        by_job: dict[str, list[_Item]] = {}
        for item in items:
            by_job.setdefault(item.job_id, []).append(item)
        stored = context.stored_jobs(by_job)
        found_after = from_epoch_ms(window[0])
        for job_id, job_items in by_job.items():
            job = stored.get(job_id)
            if failure and job is None:
                context.stats["discoveries_deferred"] += 1  # some of its outputs may be on the unread pages
                continue
            snapshot = self._listed_snapshot(job_id, job_items, job, found_after)
            if job_id not in context.active_by_id and job is not None and _settled(job, snapshot):
                context.stats["settled_jobs_skipped"] += 1  # finished before, and the listing shows no more
                continue
            yield snapshot
        if failure:
            return
        # A complete read covers every active job's window: one it does not list is gone from the provider.
        for job_id, job in context.active_by_id.items():
            if job_id not in by_job and not is_terminal(job.get("status") or Status.SUBMITTED):
                context.stats["not_listed"] += 1
                yield self._not_listed(job_id, job, context.now)

    def _not_listed(self, job_id: str, stored: StoredJob, now: datetime) -> Snapshot:
        """A missing job is marked once; missing past the grace period, it ends in ERROR (NOT_LISTED)."""
        details = dict(stored.get("details") or {})
        since = to_datetime(details.get("not_listed_since"))
        grace = max(NOT_LISTED_GRACE, timedelta(minutes=self.settings.stall_minutes))
        outputs = tuple(_stored_outputs(stored))
        common = {
            "provider": self.provider,
            "job_id": job_id,
            "progress": clamp_progress(stored.get("progress")),
            "source_url": stored.get("source_url"),
            "created_at": stored.get("created_at"),
            "outputs": outputs,
        }
        if since is not None and now - since >= grace:
            message = (
                f"VOD Station has not listed this job since {iso_z(since)} although every window that could "
                "hold it was read; it is no longer followed"
            )
            return Snapshot(
                status=Status.ERROR,
                provider_status=NOT_LISTED,
                error=JobError(message, NOT_LISTED),
                finished_at=iso_z(now),
                details=details,
                **common,
            )
        if since is None:
            details["not_listed_since"] = iso_z(now)
        status = Status(stored.get("status") or Status.SUBMITTED)
        return Snapshot(
            status=status, provider_status=stored.get("provider_status") or NOT_LISTED, details=details, **common
        )

    def _read_listing(self, window: tuple[int, int], stats: Counter[str]) -> tuple[list[_Item], PollFailure | None]:
        """Every item in the window, page by page; a failed page ends the read (the rest comes next poll).
        A refused signature raises: no page can be read with these credentials or this clock."""
        items: list[_Item] = []
        page_size = self.settings.page_size
        received = 0
        for page_no in range(1, MAX_PAGES + 1):
            try:
                document = self.list_page(page_no, window)
            except AuthenticationRejected:
                raise
            except ProviderError as error:
                return items, PollFailure(type(error)(self.provider, f"page {page_no}: {error.message}"))
            stats["list_pages"] += 1
            content = document.get("content") or []
            for raw in content:
                item = _listed_item(raw)
                if item is None:
                    stats["unreadable_items"] += 1
                    logger.warning("vod_station listing item names no job", extra={"page": page_no})
                    continue
                items.append(item)
            received += len(content)
            total = values.integer(document.get("total"))
            # Stop on what the answer says, not on page arithmetic: a gateway may serve fewer than asked.
            if not content or (total is None and len(content) < page_size):
                break
            if total is not None and received >= total:
                break
        else:  # the guard ended the read: not a complete one, so no job counts as missing
            return items, PollFailure(ProviderError(self.provider, f"the listing goes on past {MAX_PAGES} pages"))
        return items, None

    def _listed_snapshot(
        self, job_id: str, items: Sequence[_Item], stored: StoredJob | None, found_after: str | None = None
    ) -> Snapshot:
        # A file encoded again lists its outputs again: the latest item of each output is the current one.
        latest: dict[str, _Item] = {}
        for item in items:
            held = latest.get(item.output.id)
            if held is None or _later(item, held):
                latest[item.output.id] = item
        current = list(latest.values())
        listed = [item.output for item in current]
        work_times = [item.last_work for item in items if item.last_work is not None]
        last_work = max(work_times) if work_times else None

        stored_status = _stored_status(stored)
        requeued = bool(
            stored_status
            and is_terminal(stored_status)
            and last_work is not None
            and (finished := to_datetime((stored or {}).get("finished_at"))) is not None
            and last_work > finished
        )
        outputs = listed if requeued else _merge(_stored_outputs(stored), listed, forward_only=False)
        status = derive_status(outputs)
        oldest = [to_datetime((stored or {}).get("created_at")), min(work_times) if work_times else None]
        created = min((moment for moment in oldest if moment is not None), default=None)
        newest = current[-1]
        details = {
            **dict((stored or {}).get("details") or {}),
            "category_id": newest.category_id,
            "not_listed_since": None,  # listed again
        }
        if found_after and not details.get("work_started_after"):
            details["work_started_after"] = found_after
        details = {
            **drop_none(details),
            "output_types": sorted({output.id for output in outputs}),
        }
        if newest.category_name is not None:
            details["category_name"] = newest.category_name
        return Snapshot(
            provider=self.provider,
            job_id=job_id,
            status=status,
            provider_status=summarize_words(outputs),
            progress=mean_progress(outputs),
            source_url=redact_url(newest.file_path),
            created_at=iso_z(created) if created else None,
            finished_at=iso_z(last_work) if last_work and is_terminal(status) else None,
            outputs=tuple(outputs),
            error=_job_error(outputs) if status is Status.ERROR else None,
            details=details,
            requeued=requeued,
        )

    # --- webhooks -------------------------------------------------------------------------------------
    def webhook_job_ids(self, body: WebhookBody) -> list[str]:
        """The job the callback names; [] for a WAITING callback, which carries no file path yet."""
        item = _callback_item(body)
        return [item.job_id] if item else []

    def read_jobs(self, job_ids: Sequence[str]) -> Iterator[Snapshot | PollFailure]:
        """VOD Station's API lists a window of work and cannot read one job: its callbacks are applied
        from their own payload (webhook_snapshots), and polls catch up through the listing."""
        yield PollFailure(
            ProviderError(self.provider, "the API cannot read one job; callbacks are applied from their payload"),
            tuple(job_ids),
        )

    def webhook_snapshots(
        self, body: WebhookBody, lookup: Callable[[Sequence[str]], dict[str, StoredJob]]
    ) -> list[Snapshot]:
        item = _callback_item(body)
        if item is None:
            return []
        if item.output.status is Status.UNKNOWN:
            logger.warning(
                "vod_station callback with an unknown status word",
                extra={"job_id": item.job_id, "output": item.output.id, "provider_status": item.output.provider_status},
            )
        stored = lookup([item.job_id]).get(item.job_id)
        previous = {output.id: output for output in _stored_outputs(stored)}
        output = _callback_output(item.output, previous.get(item.output.id))
        outputs = _merge(list(previous.values()), [output], forward_only=True)
        status = derive_status(outputs)
        known_types = set(((stored or {}).get("details") or {}).get("output_types") or ())
        if status is Status.COMPLETE and not (known_types and known_types <= {o.id for o in outputs}):
            status = Status.PROCESSING  # other outputs may not have sent a word yet (WAITING has no file path)
        details = {**dict((stored or {}).get("details") or {}), "category_id": item.category_id}
        if item.category_name is not None:
            details["category_name"] = item.category_name
        return [
            Snapshot(
                provider=self.provider,
                job_id=item.job_id,
                status=status,
                provider_status=summarize_words(outputs),
                progress=mean_progress(outputs),
                source_url=redact_url(item.file_path),
                outputs=tuple(outputs),
                error=_job_error(outputs) if status is Status.ERROR else None,
                details=details,
            )
        ]


SPEC = ProviderSpec(
    id=PROVIDER,
    default_api_url=DEFAULT_API_URL,
    secret_keys=("access_key", "secret_key"),
    adapter=VodStationAdapter,
    status_words=WORDS,
    is_job_id=is_job_id,
    webhook_path="/webhooks/vod-station",
)


# --- normalizing ---------------------------------------------------------------------------------------


def _listed_item(raw: object) -> _Item | None:
    """A listing item as an output of its job; None when it names no job."""
    if not isinstance(raw, dict):
        return None
    category_id, file_path = _category_id(raw.get("categoryId")), raw.get("filePath")
    output_type = values.text(raw.get("outputType"))
    if category_id is None or not isinstance(file_path, str) or not file_path or output_type is None:
        return None
    job_id = job_id_of(category_id, file_path)
    if not is_job_id(job_id):
        return None
    word = values.text(raw.get("status")) or ""
    return _Item(
        job_id=job_id,
        category_id=category_id,
        category_name=values.text(raw.get("categoryName")),
        file_path=file_path,
        output=Output(
            id=output_type,
            status=map_status(word, WORDS),
            provider_status=word or None,
            progress=_percent(raw.get("percent")),
            size_bytes=values.integer(raw.get("outputTotalSize")),
            destinations=_destinations(raw.get("link")),
        ),
        last_work=to_datetime(raw.get("lastWorkTime")),
    )


def _callback_item(body: WebhookBody) -> _Item | None:
    """The callback as one output of its job; None for the documented WAITING callback without a file
    path (acknowledged, nothing to apply); BadRequest when it cannot be read."""
    payload = body.json_object()
    category_id = _category_id(payload.get("categoryId"))
    word = payload.get("status")
    if category_id is None:
        raise BadRequest("callback has no usable categoryId")
    if not isinstance(word, str) or not word.strip():
        raise BadRequest("callback has no status")
    word = word.strip()
    file_path = payload.get("filePath")
    if file_path is not None and not isinstance(file_path, str):
        raise BadRequest("callback filePath is not a string")
    output_type = values.text(payload.get("outputType")) or values.text(payload.get("encodingOptionId"))
    if not file_path:
        if map_status(word, WORDS) is Status.QUEUED:
            logger.info(
                "vod_station WAITING callback names no file yet; acknowledged, the poll will see the job",
                extra={
                    "category_id": category_id,
                    "file_id": values.text(payload.get("fileId")),
                    "output": output_type,
                },
            )
            return None
        raise BadRequest("callback has no filePath, so it names no job")
    if output_type is None:
        raise BadRequest("callback names no output (outputType or encodingOptionId)")
    job_id = job_id_of(category_id, file_path)
    if not is_job_id(job_id):
        raise BadRequest("callback filePath cannot be a job id: too long, or it holds a control character")
    details = {
        key: value
        for key, value in (
            ("encoding_option_id", values.text(payload.get("encodingOptionId"))),
            ("file_id", values.text(payload.get("fileId"))),
        )
        if value is not None
    }
    return _Item(
        job_id=job_id,
        category_id=category_id,
        category_name=values.text(payload.get("categoryName")),
        file_path=file_path,
        output=Output(
            id=output_type,
            status=map_status(word, WORDS),
            provider_status=word,
            destinations=_destinations(payload.get("link")),
            details=details,
        ),
        last_work=None,
    )


def _callback_output(output: Output, previous: Output | None) -> Output:
    """A callback carries no percent: a finished output is at 100, a waiting one at 0, a running one keeps
    what the store knew of it."""
    if output.status is Status.COMPLETE:
        progress: float | None = 100
    elif output.status is Status.QUEUED:
        progress = 0
    elif previous is not None:
        progress = previous.progress
    else:
        progress = 0 if output.status is Status.PROCESSING else None
    return replace(
        output,
        progress=progress,
        size_bytes=previous.size_bytes if previous else None,
        destinations=output.destinations or (previous.destinations if previous else ()),
    )


def _merge(stored: Sequence[Output], seen: Sequence[Output], *, forward_only: bool) -> list[Output]:
    """The stored outputs updated by the ones just seen (by id, in first-seen order). With forward_only
    (callbacks, which carry no time) an output never moves back in the lifecycle or leaves a final state."""
    merged = {output.id: output for output in stored}
    for output in seen:
        held = merged.get(output.id)
        if held is not None and forward_only and _output_rank(held) > _output_rank(output):
            continue
        if held is not None and forward_only and held.status and is_terminal(held.status):
            continue
        merged[output.id] = replace(output, details={**(held.details if held else {}), **output.details})
    return list(merged.values())


def _stored_outputs(stored: StoredJob | None) -> list[Output]:
    """The stored item's outputs (CONTRACT maps) as Outputs again; extras go back into details."""
    outputs = []
    for raw in (stored or {}).get("outputs") or ():
        if not isinstance(raw, Mapping) or values.text(raw.get("id")) is None:
            continue
        status = raw.get("status")
        extras = {
            key: value
            for key, value in raw.items()
            if key not in ("id", "status", "provider_status", "progress", "size_bytes", "destinations")
        }
        outputs.append(
            Output(
                id=str(raw["id"]),
                status=Status(status) if status in Status.__members__ else None,
                provider_status=raw.get("provider_status"),
                progress=clamp_progress(raw.get("progress")),
                size_bytes=values.integer(raw.get("size_bytes")),
                destinations=tuple(
                    Destination(url=d["url"], status=d.get("status"), error=d.get("error"))
                    for d in raw.get("destinations") or ()
                    if isinstance(d, Mapping) and d.get("url")
                ),
                details=extras,
            )
        )
    return outputs


def _job_error(outputs: Sequence[Output]) -> JobError:
    failed = [output.id for output in outputs if output.status is Status.ERROR]
    return JobError(message=f"encoding failed for output {', '.join(failed)}", code="FAILURE")


def _destinations(link: object) -> tuple[Destination, ...]:
    # The documents call `link` a Boolean and show a URL: only a URL is kept, without credentials.
    if isinstance(link, str) and link.strip():
        url = redact_url(link.strip())
        return (Destination(url=url),) if url else ()
    return ()


def _output_rank(output: Output) -> int:
    return rank(output.status or Status.UNKNOWN)


def _stored_status(stored: StoredJob | None) -> Status | None:
    status = (stored or {}).get("status")
    return Status(status) if status in Status.__members__ else None


def _settled(stored: StoredJob, snapshot: Snapshot) -> bool:
    """A stored, finished job that the listing shows finished the same way, with its finish time known."""
    return (
        not snapshot.requeued
        and _stored_status(stored) is snapshot.status
        and is_terminal(snapshot.status)
        and bool(stored.get("finished_at"))
    )


def _error_text(status_code: int, error: object) -> str:
    if not isinstance(error, dict):
        return f"HTTP {status_code}"
    code = values.text(error.get("errorCode")) or values.text(error.get("code")) or "?"
    text = f"HTTP {status_code} error {code}: {values.text(error.get('message')) or 'no message'}"
    details = values.text(error.get("details"))
    return f"{text} ({details[:200]})" if details else text


def _later(item: _Item, held: _Item) -> bool:
    if item.last_work is None:
        return held.last_work is None
    return held.last_work is None or item.last_work >= held.last_work


def _work_start_bound(job: StoredJob) -> datetime | None:
    """The earliest work start a stored job can have: the `from` of the window it was first found in; None
    for a job never listed (registered through the jobs API, or stored before the bound was kept)."""
    return to_datetime((job.get("details") or {}).get("work_started_after"))


def _category_id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    return text if text and ":" not in text and len(text) <= 64 else None


def _percent(value: object) -> float | None:
    return clamp_progress(value.strip().rstrip("%") if isinstance(value, str) else value)
