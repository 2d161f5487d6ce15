"""TransparentEdge (transparentcdn) transcoding: OAuth2 client, order listing/detail reads, normalizer.

The API (PROVIDERS.md, seed "Get job information"):
- `POST v1/oauth2/access_token/` (client credentials) gives a Bearer token with `expires_in` seconds.
- `GET v1/media/{company_id}/transcode` lists every order of the company. Its prose names the fields
  `order_id`, `status`, `timestamp`; its example shows `id`, `created_on`, `status`: both are read.
- `GET v1/media/{company_id}/transcode/{order_id}` gives one order with its sub-jobs, upload destinations,
  `timestamp` (when the order was processed), `duration`, `size` and `comment`.

A poll costs one list call plus one detail call per order the list shows moved: new, a different status word
than stored, a later processing `timestamp` than the stored start (the document's prose lists it; a requeue
moves it), or not listed at all while active. An active order that shows no move is read again only when it
was last read DETAIL_REFRESH_MINUTES ago (for its progress): the store keeps when a read changed nothing
(`read_at`), since `updated_at` moves only on a change. Details are read CONCURRENCY at a time, or more
(`detail_concurrency`) when that many would not fit the invocation's time: the API has no batch read. A poll
that fans out reads none: it hands the orders to read to the fan-out consumers (`ReadLater`).
The scale of `progress` (fractions or percentages) is decided once per order and kept in its details;
`progress` may come as a number or as text ("42", "42%").
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from transcode_core.deadline import Deadline
from transcode_core.errors import BadRequest, ConfigurationError, ProviderError, ProviderUnavailable
from transcode_core.model import Destination, JobError, Output, Snapshot, clamp_progress, mean_progress
from transcode_core.oauth import ClientCredentialsToken
from transcode_core.observability import logger
from transcode_core.providers import values
from transcode_core.providers.base import (
    READ_SCALE_UP,
    Adapter,
    PollContext,
    PollFailure,
    ProviderSpec,
    ReadLater,
    StoredJob,
    read_concurrently,
)
from transcode_core.providers.job_ids import is_order_id
from transcode_core.status import TERMINAL, Status, map_status, normalize_word, status_words
from transcode_core.times import is_later, parse_time, to_datetime
from transcode_core.urls import join_url, redact_url
from transcode_core.webhook import WebhookBody

PROVIDER = "transparent_edge"
DEFAULT_API_URL = "https://api.transparentcdn.com/"
SECRET_KEYS = ("company_id", "client_id", "client_secret")
OAUTH_PATH = "v1/oauth2/access_token/"

# Only FINISHED and ERROR are documented; the other words are the usual spellings, assumed (README).
STATUS_WORDS = status_words(
    {
        Status.QUEUED: ("QUEUED", "PENDING", "WAITING", "ENQUEUED"),
        Status.PROCESSING: ("PROCESSING", "RUNNING", "TRANSCODING", "IN_PROGRESS", "IN PROGRESS", "STARTED"),
        Status.UPLOADING: ("UPLOADING",),
        Status.COMPLETE: ("FINISHED",),
        Status.ERROR: ("ERROR",),
        Status.CANCELED: ("CANCELED", "CANCELLED", "ABORTED"),
    }
)

# Detail reads are planned at this round trip each (a request across the Internet; the simulator's bench
# latency is 50 ms) and may use half the time left, the rest being the writes, publishes and stall checks.
PLANNED_DETAIL_SECONDS = 0.1
DETAIL_SHARE_OF_TIME = 0.5
FRACTIONS, PERCENTAGES = "fraction", "percent"  # details.progress_scale: how the order's sub-jobs report progress


class TransparentEdgeClient:
    """The API calls, with the client-credentials Bearer token of `transcode_core.oauth`."""

    def __init__(
        self,
        *,
        api_url: str,
        credentials: Mapping[str, str],
        session: requests.Session,
        deadline: Deadline | None = None,
    ) -> None:
        missing = [key for key in SECRET_KEYS if not credentials.get(key)]
        if missing:
            raise ConfigurationError(f"{PROVIDER} credentials lack: {', '.join(missing)}")
        self.api_url = api_url
        self.session = session
        self.company_id = str(credentials["company_id"])
        self.access_token = ClientCredentialsToken(
            PROVIDER,
            session,
            join_url(api_url, OAUTH_PATH),
            str(credentials["client_id"]),
            str(credentials["client_secret"]),
            deadline,
        )

    def list_orders(self) -> list[dict[str, Any]]:
        document = self._get_json(f"v1/media/{quote(self.company_id, safe='')}/transcode", "the order list")
        if not isinstance(document, list):
            raise ProviderError(PROVIDER, f"the order list is a JSON {type(document).__name__}, not a list")
        return document

    def order(self, order_id: str) -> dict[str, Any]:
        path = f"v1/media/{quote(self.company_id, safe='')}/transcode/{quote(order_id, safe='')}"
        document = self._get_json(path, f"order {order_id}", job_ids=(order_id,))
        if not isinstance(document, dict):
            raise ProviderError(
                PROVIDER,
                f"order {order_id}: the detail is a JSON {type(document).__name__}, not an object",
                job_ids=(order_id,),
            )
        return document

    def token(self) -> str:
        return self.access_token.value()

    def _get_json(self, path: str, what: str, *, job_ids: tuple[str, ...] = ()) -> object:
        # Errors name `what` (the order), never the path: it holds the company id.
        return self.access_token.get_json(join_url(self.api_url, path), what, job_ids=job_ids)


class TransparentEdgeAdapter(Adapter):
    provider = PROVIDER

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = TransparentEdgeClient(
            api_url=self.api_url, credentials=self.credentials, session=self.session, deadline=self.deadline
        )

    def poll(self, context: PollContext) -> Iterator[Snapshot | PollFailure | ReadLater]:
        stats = context.stats
        active = context.active_by_id
        self.client.token()  # without a token nothing can be done: raise before anything else
        stats["list_calls"] += 1
        try:
            listing = self.client.list_orders()
        except ProviderUnavailable:
            raise  # the provider is down: every other call would fail too
        except ProviderError as exc:
            # Nothing can be discovered, but the tracked orders can still be read one by one.
            yield PollFailure(exc)
            yield from self._read_or_hand_over(list(active), {}, context)
            return

        listed, malformed = _index_listing(listing)
        if malformed:
            yield PollFailure(ProviderError(PROVIDER, f"{malformed} listed order(s) without an id or not an object"))
        to_read = self._orders_to_read(listed, context)
        missing = [job_id for job_id in active if job_id not in listed]  # never miss a finish
        yield from self._read_or_hand_over(to_read + missing, listed, context)

    def _read_or_hand_over(
        self, order_ids: Sequence[str], listed: Mapping[str, Mapping[str, Any]], context: PollContext
    ) -> Iterator[Snapshot | PollFailure | ReadLater]:
        """The orders' details, or, when the poll fans out, the orders handed to the fan-out consumers to read:
        with no batch read, 50,000 moved orders are 50,000 requests, more than one invocation's time."""
        if context.defer_reads:
            if order_ids:
                yield ReadLater({order_id: listed.get(order_id, {}) for order_id in order_ids})
            return

        def stored(order_id: str) -> StoredJob | None:
            return context.stored_jobs([order_id]).get(order_id)

        yield from self._read(order_ids, listed, context.stats, stored)

    def _orders_to_read(self, listed: dict[str, dict[str, Any]], context: PollContext) -> list[str]:
        """The listed orders that need a detail call (new, or moved in the list, or due for a progress read),
        decided a page of stored items at a time."""
        stats, active = context.stats, context.active_by_id
        window_start = context.now - timedelta(days=context.settings.discovery_days)
        refresh_before = context.now - timedelta(minutes=self.settings.detail_refresh_minutes)
        recent: set[str] = set()
        candidates: list[str] = []  # the listed orders whose stored item tells whether to read them
        for order_id, entry in listed.items():
            if order_id in active:
                candidates.append(order_id)
            elif _listed_since(entry, window_start):
                recent.add(order_id)
                candidates.append(order_id)
            elif not _is_terminal_word(entry.get("status")):
                candidates.append(order_id)  # an old order running again: requeued, if we track it
            else:
                stats["unchanged"] += 1  # old, terminal in the list, not active: nothing to learn
                stats["skipped_old"] += 1
        to_read = []
        for chunk, stored in context.in_chunks(candidates):
            for order_id in chunk:
                item = stored.get(order_id)
                if item is None:
                    if order_id in recent:
                        stats["discovered"] += 1
                        to_read.append(order_id)
                    elif order_id not in active:
                        stats["skipped_old"] += 1
                elif _moved(listed[order_id], item):
                    to_read.append(order_id)
                elif order_id in active and _last_read_before(item, refresh_before):
                    stats["progress_reads"] += 1  # unmoved, but its progress has not been read for a while
                    to_read.append(order_id)
                else:
                    stats["unchanged"] += 1
        return to_read

    def _read(
        self,
        order_ids: Sequence[str],
        listed: Mapping[str, Mapping[str, Any]],
        stats: Counter[str],
        stored: Callable[[str], StoredJob | None],
    ) -> Iterator[Snapshot | PollFailure]:
        """The orders' details, CONCURRENCY at a time, in order. Once the provider is unreachable, the reads
        not yet started fail at once instead of each waiting through its retries."""
        if not order_ids:
            return
        stats["detail_calls"] += len(order_ids)
        outage: list[ProviderUnavailable] = []
        lock = threading.Lock()

        def read(order_id: str) -> Snapshot | PollFailure:
            with lock:
                if outage:
                    return PollFailure(outage[0], (order_id,))
            try:
                detail = self.client.order(order_id)
                return normalize_order(order_id, detail, listed.get(order_id), stored(order_id))
            except ProviderUnavailable as exc:
                with lock:
                    outage.append(exc)
                return PollFailure(exc, (order_id,))
            except ProviderError as exc:
                return PollFailure(exc, (order_id,))

        concurrency = detail_concurrency(len(order_ids), self.deadline.remaining(), self.settings.concurrency)
        if concurrency > self.settings.concurrency:
            logger.info(
                "detail reads sized to the time left", extra={"reads": len(order_ids), "side_by_side": concurrency}
            )
        yield from read_concurrently(read, order_ids, concurrency, "te-detail")

    def webhook_job_ids(self, body: WebhookBody) -> list[str]:
        document = body.json_object()
        order_id = document.get("order_id", document.get("id"))
        if isinstance(order_id, bool) or not isinstance(order_id, (str, int)):
            raise BadRequest("the body names no order (order_id or id)")
        order_id = str(order_id).strip()
        if not is_order_id(order_id):
            raise BadRequest("the body names no readable order id")
        return [order_id]

    def read_jobs(self, job_ids: Sequence[str]) -> Iterator[Snapshot | PollFailure]:
        return self._read(list(job_ids), {}, Counter(), {})

    def read_deferred(
        self, jobs: Mapping[str, Mapping[str, Any]], stored: Mapping[str, StoredJob]
    ) -> Iterator[Snapshot | PollFailure]:
        """As the poll would have read them: with their list entries (`created_on`) and stored progress scale."""
        return self._read(list(jobs), jobs, Counter(), stored.get)

    def webhook_snapshots(
        self, body: WebhookBody, lookup: Callable[[Sequence[str]], dict[str, StoredJob]]
    ) -> list[Snapshot]:
        """The named order read from the API, with the progress scale already decided for it."""
        order_ids = self.webhook_job_ids(body)
        snapshots = []
        for result in self._read(order_ids, {}, Counter(), lookup(order_ids).get):
            if isinstance(result, PollFailure):
                raise result.error
            snapshots.append(result)
        return snapshots


def detail_concurrency(reads: int, seconds_left: float, configured: int) -> int:
    """How many detail reads run side by side: CONCURRENCY, or as many as `reads` need to fit their share of
    the time left, at most READ_SCALE_UP x CONCURRENCY (the provider documents no rate limit; a 429 is retried
    after its Retry-After like any call)."""
    if math.isinf(seconds_left) or reads <= configured:
        return configured
    needed = math.ceil(reads * PLANNED_DETAIL_SECONDS / max(seconds_left * DETAIL_SHARE_OF_TIME, 1.0))
    return max(configured, min(needed, configured * READ_SCALE_UP))


# --- normalizer ----------------------------------------------------------------------------------------


def normalize_order(
    order_id: str,
    detail: Mapping[str, Any],
    listed: Mapping[str, Any] | None = None,
    stored: StoredJob | None = None,
) -> Snapshot:
    """One order's detail (and its list entry, which alone carries `created_on`) as a Snapshot.

    The requested id is the job id: the documented detail example carries an `order_id` that differs from
    the id it was read with, so the body's id is not trusted."""
    listed = listed or {}
    word = detail.get("status", listed.get("status"))
    if not isinstance(word, str) or not word.strip():
        raise ProviderError(PROVIDER, f"order {order_id}: the detail has no readable status", job_ids=(order_id,))
    status = map_status(word, STATUS_WORDS)
    sub_jobs = detail.get("transcodingjob_set") or []
    uploads = detail.get("transcodingupload_set") or []
    if not isinstance(sub_jobs, list) or not isinstance(uploads, list):
        raise ProviderError(
            PROVIDER, f"order {order_id}: transcodingjob_set/transcodingupload_set is not a list", job_ids=(order_id,)
        )
    sub_jobs = [dict(job) for job in sub_jobs if isinstance(job, dict)]
    known_scale = ((stored or {}).get("details") or {}).get("progress_scale")
    for job in sub_jobs:  # numbers sent as text ("42", "42%") read like numbers
        job["progress"] = _progress_number(job.get("progress"))
    scale_word = _progress_scale(sub_jobs, status, known_scale)
    scale = 100.0 if scale_word == FRACTIONS else 1.0
    destinations = tuple(
        Destination(url=url)
        for url in (redact_url(values.text(upload.get("upload_url"))) for upload in uploads if isinstance(upload, dict))
        if url
    )
    outputs = _outputs(sub_jobs, status, scale, destinations)
    download = detail.get("transcodingdownload")
    source_url = redact_url(values.text(download.get("download_url"))) if isinstance(download, dict) else None
    comment = values.text(detail.get("comment"))
    return Snapshot(
        provider=PROVIDER,
        job_id=order_id,
        status=status,
        provider_status=word,
        progress=100.0 if status is Status.COMPLETE else mean_progress(outputs),
        source_url=source_url or None,
        created_at=parse_time(detail.get("created_on") or listed.get("created_on")),
        started_at=parse_time(detail.get("timestamp")),
        outputs=outputs,
        error=JobError(comment or "the order failed") if status is Status.ERROR else None,
        details={
            **{key: detail[key] for key in ("duration", "size") if _is_number(detail.get(key))},
            **({"progress_scale": scale_word} if scale_word else {}),
        },
        progress_rescaled=known_scale == FRACTIONS and scale_word == PERCENTAGES,
        note_read=True,  # the progress cadence is timed from the last read
    )


def _outputs(
    sub_jobs: list[dict[str, Any]], status: Status, scale: float, destinations: tuple[Destination, ...]
) -> tuple[Output, ...]:
    outputs: list[Output] = []
    seen: set[str] = set()
    for position, job in enumerate(sub_jobs, start=1):
        profile = job.get("profile") if isinstance(job.get("profile"), dict) else {}
        output_id = values.text(profile.get("name")) or values.text(profile.get("id")) or f"job-{position}"
        if output_id in seen:  # two sub-jobs of one profile: keep both
            output_id = f"{output_id} #{position}"
        seen.add(output_id)
        word = values.text(job.get("status"))
        raw_progress = job.get("progress")
        progress = clamp_progress(raw_progress.value * scale) if raw_progress else None
        if status is Status.COMPLETE:
            progress = 100.0
        outputs.append(
            Output(
                id=output_id,
                status=map_status(word, STATUS_WORDS) if word else (status if status in TERMINAL else None),
                provider_status=word,
                progress=progress,
                destinations=destinations,
                details={"filename": values.text(job.get("filename")), "label": values.text(job.get("label"))},
            )
        )
    return tuple(outputs)


def _progress_scale(sub_jobs: list[dict[str, Any]], status: Status, known: str | None) -> str | None:
    """The documents do not say whether `progress` is 0-1 or 0-100. It is decided once per order: a value over
    1.0 proves percentages (and corrects an earlier guess); otherwise the order keeps what was decided; an
    undecided order's first non-zero values, all at most 1.0, are taken for fractions. None: still undecided
    (no value, or only zeros, where the scale does not matter)."""
    progress = [job["progress"] for job in sub_jobs if job.get("progress")]
    if any(value.value > 1.0 or value.percent_sign for value in progress):
        return PERCENTAGES
    if known in (FRACTIONS, PERCENTAGES):
        return known
    if status is not Status.COMPLETE and any(value.value > 0 for value in progress):
        return FRACTIONS
    return None


def _index_listing(listing: list[Any]) -> tuple[dict[str, dict[str, Any]], int]:
    """The listed orders by id, and how many entries could not be read."""
    listed: dict[str, dict[str, Any]] = {}
    malformed = 0
    for entry in listing:
        order_id = _listed_id(entry) if isinstance(entry, dict) else None
        if isinstance(order_id, bool) or not isinstance(order_id, (str, int)) or not str(order_id).strip():
            malformed += 1
            continue
        listed[str(order_id).strip()] = entry
    return listed, malformed


def _listed_id(entry: Mapping[str, Any]) -> Any:
    """The entry's order id: `order_id` (the document's prose) or `id` (its example), whichever is set."""
    order_id = entry.get("order_id")
    return entry.get("id") if order_id is None or order_id == "" else order_id


def _listed_since(entry: Mapping[str, Any], window_start: datetime) -> bool:
    """Whether the order was created (or, where the list shows it, processed) since `window_start`."""
    created = to_datetime(entry.get("created_on"))
    processed = to_datetime(entry.get("timestamp"))
    if processed is not None and processed >= window_start:
        return True
    return created is None or created >= window_start  # unknown age: discover it rather than miss it


def _last_read_before(stored: StoredJob, moment: datetime) -> bool:
    """Whether the order was last read at `moment` or earlier (or when is unknown): the later of its last
    change (`updated_at`) and its last read that changed nothing (`read_at`)."""
    reads = [read for read in map(to_datetime, (stored.get("updated_at"), stored.get("read_at"))) if read]
    return not reads or max(reads) <= moment


def _moved(entry: Mapping[str, Any], stored: StoredJob) -> bool:
    """Whether the list shows the order moved since it was stored: never read, another status word, or a later
    processing `timestamp` than the stored start (a requeue, even one that already finished)."""
    if not stored.get("status") or normalize_word(entry.get("status")) != normalize_word(stored.get("provider_status")):
        return True
    processed = parse_time(entry.get("timestamp")) if isinstance(entry.get("timestamp"), str) else None
    return is_later(processed, stored.get("started_at"))


def _is_terminal_word(word: Any) -> bool:
    return map_status(word if isinstance(word, str) else None, STATUS_WORDS) in TERMINAL


@dataclass(frozen=True)
class _Progress:
    value: float
    percent_sign: bool  # sent as text ending in "%": a percentage whatever its size


def _progress_number(value: Any) -> _Progress | None:
    """A sub-job's `progress` as sent: a number, or numeric text with or without a "%" ("42", "0.5", "42%")."""
    if isinstance(value, bool):
        return None
    text = values.text(value) or ""
    percent_sign = isinstance(value, str) and text.endswith("%")
    try:
        number = float(text.removesuffix("%").strip())
    except ValueError:
        return None
    return _Progress(number, percent_sign) if math.isfinite(number) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


SPEC = ProviderSpec(
    id=PROVIDER,
    default_api_url=DEFAULT_API_URL,
    secret_keys=SECRET_KEYS,
    adapter=TransparentEdgeAdapter,
    status_words=STATUS_WORDS,
    is_job_id=is_order_id,
    webhook_path="/webhooks/transparent-edge",
)
