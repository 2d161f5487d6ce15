"""NAVER Cloud VOD Station: a signed, paged status listing and per-output callbacks.

The API names no job and cannot read one. A job here is one input file in one category (job_id
"<categoryId>:<filePath>"); the listing and the callbacks speak of its outputs, one per encoding option
(`outputType`), and the job's status is derived from them (`derive_status`).

Decisions (docs/providers.md, "NAVER Cloud VOD Station"):
- Every request is signed over exactly the path and query that are sent: the path of the configured URL
  joined with `api/v2/status` (a path prefix in PROVIDER_API_URL is sent and signed) and a query string
  built here, in a fixed order, and sent as it is.
- The listing filters on work *start*, which no item shows (`lastWorkTime` is the last work). A job found
  in a window [from, to] started at or after `from`: that bound is kept (`details.work_started_after`).
  A poll reads the recent window (the discovery look-back, widened to take in jobs found by the last
  polls) first and judges the jobs that started in it from it alone; then the reach-back to the earliest
  bound of older active jobs, which may fail without holding up discovery; then one older slice for jobs
  never listed (registered through the jobs API), doubling how far back they were searched
  (`details.searched_back_to`) up to MAX_SEARCH_BACK. Outputs of one job may be spread over pages, so a
  new job is judged only once every page was read; when a page fails, jobs already stored are still
  updated (their other outputs come from the store).
- The document's table and example pass workStartTimeFrom/To opposite ways: a read that lists nothing is
  sent again reversed, and the way that lists is kept.
- An active job that the reads do not list is marked (`details.not_listed_since`) only on evidence that
  they could have listed it: every read that covers it complete and listing something. Still missing after
  NOT_LISTED_GRACE (or STALL_MINUTES, if longer) it ends in ERROR, code NOT_LISTED, and its event says so.
- A failed output fails the job only once no output waits or runs (`derive_status`), so the others'
  later `lastWorkTime` is never taken for a new attempt and the job fails once, with its final outputs.
- `created_at` is the oldest `lastWorkTime` ever seen for the job (the API has no start time per item);
  `started_at` is left unset because no value would be stable; `finished_at` is the latest `lastWorkTime`
  once the job is terminal. A terminal job that the listing shows with work later than its `finished_at`
  (running again, or already finished again, even the other way) is a new attempt (`requeued`).
- A callback carries one output. It is merged into the stored job's outputs (an output never moves back)
  and the job's status is derived with the same rule, except that a callback alone never finishes a job
  whose full set of outputs has not been seen in a listing (`details.output_types`): until then it stays
  PROCESSING and the next poll finishes it. Nor does it finish a later attempt (a late callback of the earlier
  run reads the same); a job a callback ended, listed ended the other way, was encoded again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

from transcode_core.errors import BadRequest, ConfigurationError, ProviderError
from transcode_core.http import json_body, send
from transcode_core.model import Destination, JobError, Output, Snapshot, clamp_progress, drop_none, mean_progress
from transcode_core.observability import logger
from transcode_core.providers import values
from transcode_core.providers.base import (
    Adapter,
    PollContext,
    PollFailure,
    ProviderSpec,
    StoredJob,
    read_concurrently,
)
from transcode_core.providers.job_ids import is_vod_station_job_id as is_job_id
from transcode_core.status import Status, is_terminal, map_status, rank, status_words
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
MAX_SEARCH_BACK = timedelta(days=366)  # how far back a job registered but never listed is looked for
KST = timezone(timedelta(hours=9))  # the service's own time: lastWorkTime without an offset is read in it
FUTURE_MARGIN = timedelta(minutes=5)  # the gateway's clock may run ahead of ours
AUTH_REJECTED = (401, 403)  # wrong keys, signature or clock: no page can be read this run
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
    1. any output failed and none still waits or runs -> ERROR (the job is over and did not deliver
       everything it was asked for; while other outputs still work it is PROCESSING, so that it fails once,
       with its final outputs, and their later work is not taken for a new attempt);
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
    if Status.ERROR in present and not present & {Status.QUEUED, Status.PROCESSING}:
        return Status.ERROR
    if present == {Status.COMPLETE} or present == {Status.COMPLETE, Status.CANCELED}:
        return Status.COMPLETE
    if present == {Status.CANCELED}:
        return Status.CANCELED
    finished = present & {Status.COMPLETE, Status.ERROR, Status.CANCELED}
    if Status.PROCESSING in present or (finished - {Status.CANCELED} and Status.QUEUED in present):
        return Status.PROCESSING
    if present <= {Status.QUEUED, Status.CANCELED}:
        return Status.QUEUED
    return Status.UNKNOWN


def summarize_words(outputs: Sequence[Output]) -> str:
    """The outputs' words, deduplicated and sorted: "COMPLETE" when all agree, else e.g. "COMPLETE,RUNNING"."""
    return ",".join(sorted({output.provider_status or "" for output in outputs} - {""})) or "UNKNOWN"


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
    window_start: datetime | None = None  # the start of the window that listed it (None for callbacks)


@dataclass
class _Listing:
    """One read of a window: its items, whether it failed, and how many entries it listed (readable or not:
    the evidence that this read could list anything at all)."""

    items: list[_Item] = field(default_factory=list)
    failure: PollFailure | None = None
    entries: int = 0


class VodStationAdapter(Adapter):
    provider = PROVIDER

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        missing = [key for key in ("access_key", "secret_key") if not self.credentials.get(key)]
        if missing:
            raise ConfigurationError(f"vod_station credentials lack: {', '.join(missing)}")
        self.clock: Callable[[], float] = time.time  # the signature's timestamp; the gateway checks it
        self._window_reversed: bool | None = None  # how the gateway reads the window: None until a read lists

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
    def poll(self, context: PollContext) -> Iterator[Snapshot | PollFailure]:
        now, stats = context.now, context.stats
        # Of each job still running, the bound of its work start, and how far back a job never listed was
        # searched for: what the windows need, not the items (read again, a page at a time, where needed).
        bounds: dict[str, datetime | None] = {}
        searched_back: dict[str, datetime | None] = {}
        for job_id, job in context.active_by_id.items():
            if is_terminal(_stored_status(job) or Status.SUBMITTED):
                continue
            bounds[job_id] = _work_start_bound(job)
            if bounds[job_id] is None:
                searched_back[job_id] = _searched_back_to(job)
        # The recent window reaches back to the bounds of jobs found up to one look-back before it (most active
        # jobs were found by an earlier poll's window, which started a little earlier): one read, at most twice
        # as long as the look-back, instead of a second read each poll.
        look_back = timedelta(days=self.settings.discovery_days)
        recent_from = min(
            [now - look_back] + [bound for bound in bounds.values() if bound and bound >= now - 2 * look_back]
        )
        older = {job_id: bound for job_id, bound in bounds.items() if bound is not None and bound < recent_from}
        never_listed = [job_id for job_id, bound in bounds.items() if bound is None]

        # 1. The recent window, read first and judged on its own: what an older job costs never holds up discovery.
        recent = self._read_window(recent_from, now + FUTURE_MARGIN, stats)
        if recent.failure:
            yield recent.failure
        recent_items = _by_job(recent.items)
        yield from self._judge(
            {job_id: items for job_id, items in recent_items.items() if job_id not in older},
            context,
            complete=recent.failure is None,
        )
        seen = set(recent_items)

        # 2. The reach-back for active jobs that started before it, down to the earliest of their kept bounds. It
        # may fail or run out of time (a job active for weeks): those jobs wait, nothing else does.
        reach: _Listing | None = None
        if older:
            reach = self._read_window(min(older.values()), recent_from, stats)
            if reach.failure:
                yield replace(reach.failure, job_ids=tuple(older))
            reach_items = _by_job(reach.items)
            wanted = [job_id for job_id in older if job_id in recent_items or job_id in reach_items] + [
                job_id for job_id in never_listed if job_id in reach_items and job_id not in recent_items
            ]
            yield from self._judge(
                {job_id: recent_items.get(job_id, []) + reach_items.get(job_id, []) for job_id in wanted},
                context,
                complete=True,  # only stored jobs: what is not read of them comes from the store
            )
            seen.update(wanted)

        # 3. A job never listed (registered through the jobs API) may have started any time before: each poll
        # reads one older slice for it, each as long as all the time already searched, back to MAX_SEARCH_BACK.
        searched = {job_id: searched_back[job_id] or recent_from for job_id in never_listed}
        unfound = [job_id for job_id in never_listed if job_id not in seen]
        advanced: dict[str, datetime] = {}  # jobs whose search went further back this poll
        if unfound and (depth := max(searched[job_id] for job_id in unfound)) > now - MAX_SEARCH_BACK:
            start = max(depth - (now - depth), now - MAX_SEARCH_BACK)
            search = self._read_window(start, depth, stats)
            if search.failure:
                yield replace(search.failure, job_ids=tuple(unfound))
            search_items = _by_job(search.items)
            found = [job_id for job_id in unfound if job_id in search_items]
            yield from self._judge({job_id: search_items[job_id] for job_id in found}, context, complete=True)
            seen.update(found)
            if not search.failure:
                advanced = {job_id: start for job_id in unfound if searched[job_id] >= start}
                searched.update(advanced)

        # 4. An active job that no read listed ends only on positive evidence: every read that could hold it was
        # complete and listed something (an empty answer may be a gateway that cannot filter as we ask).
        recent_shows = recent.failure is None and recent.entries > 0
        for job_id, job in self._unseen(bounds, seen, context):
            bound = bounds[job_id]
            if bound is None:
                evident = recent_shows and searched[job_id] <= now - MAX_SEARCH_BACK
            elif bound >= recent_from:
                evident = recent_shows
            else:  # its window is the reach-back and the recent window together
                both = [recent, reach] if reach else []
                evident = all(read.failure is None for read in both) and sum(read.entries for read in both) > 0
            if evident:
                stats["not_listed"] += 1
            snapshot = self._not_listed(job_id, job, now, evident=evident, searched_back_to=advanced.get(job_id))
            if snapshot is not None:
                yield snapshot

    @staticmethod
    def _unseen(
        bounds: Mapping[str, datetime | None], seen: set[str], context: PollContext
    ) -> Iterator[tuple[str, StoredJob]]:
        """The running jobs no read listed, with their stored items (read a page at a time)."""
        for chunk, stored in context.in_chunks(job_id for job_id in bounds if job_id not in seen):
            for job_id in chunk:
                if job_id in stored:
                    yield job_id, stored[job_id]

    def _judge(
        self, items_by_job: Mapping[str, list[_Item]], context: PollContext, *, complete: bool
    ) -> Iterator[Snapshot]:
        """Snapshots of the listed jobs. After an incomplete read a job never stored waits (some of its outputs
        may be on the unread pages); a stored one is updated, its other outputs coming from the store."""
        for chunk, stored in context.in_chunks(items_by_job):
            for job_id in chunk:
                job = stored.get(job_id)
                if not complete and job is None:
                    context.stats["discoveries_deferred"] += 1
                    continue
                snapshot = self._listed_snapshot(job_id, items_by_job[job_id], job)
                if job_id not in context.active_by_id and job is not None and _settled(job, snapshot):
                    context.stats["settled_jobs_skipped"] += 1  # finished before, and the listing shows no more
                    continue
                yield snapshot

    def _not_listed(
        self, job_id: str, stored: StoredJob, now: datetime, *, evident: bool, searched_back_to: datetime | None
    ) -> Snapshot | None:
        """With evidence, a missing job is marked once and, missing past the grace period, ends in ERROR
        (NOT_LISTED). Without, it stays as it is (None), apart from how far back it was searched for."""
        details = dict(stored.get("details") or {})
        if searched_back_to is not None:
            details["searched_back_to"] = iso_z(searched_back_to)
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
        if evident and since is not None and now - since >= grace:
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
        if evident and since is None:
            details["not_listed_since"] = iso_z(now)
        if details == dict(stored.get("details") or {}):
            return None
        status = Status(stored.get("status") or Status.SUBMITTED)
        return Snapshot(
            status=status, provider_status=stored.get("provider_status") or NOT_LISTED, details=details, **common
        )

    def _read_window(self, start: datetime, end: datetime, stats: Counter[str]) -> _Listing:
        """Every item whose work started in [start, end]. The document's parameter table makes
        workStartTimeFrom the start, its example sends it as the end: a read that lists nothing is tried the
        other way round, and the way that lists something is kept for this poll's later reads."""
        window = (to_epoch_ms(start), to_epoch_ms(end))
        if self._window_reversed:
            return self._read_listing(window[::-1], start, stats)
        listing = self._read_listing(window, start, stats)
        if listing.entries:
            self._window_reversed = False
        if listing.failure or listing.entries or self._window_reversed is False:
            return listing
        reversed_listing = self._read_listing(window[::-1], start, stats)
        if not reversed_listing.entries:
            return listing  # nothing either way; a refusal of the reversed window is no news
        self._window_reversed = True
        logger.info("vod_station gateway reads workStartTimeFrom/To as the document's example sends them")
        return reversed_listing

    def _read_listing(self, sent: tuple[int, int], start: datetime, stats: Counter[str]) -> _Listing:
        """Every item of one window. The first page gives the total, so the pages it implies are read side by
        side (CONCURRENCY at a time, taken in order); without a total, or while the pages served hold fewer
        items than it (the listing grew meanwhile), page by page. A failed page ends the read (the rest comes
        next poll). A refused signature raises: no page can be read with these credentials or this clock."""
        listing = _Listing()
        first = self._fetch_page(1, sent)
        if self._take_page(1, first, start, stats, listing):
            return listing
        assert isinstance(first, dict)
        total = values.integer(first.get("total"))
        served = len(first.get("content") or [])  # a gateway may serve fewer than asked: count pages its way
        last = min(MAX_PAGES, -(-total // served)) if total is not None else 1
        planned = range(2, last + 1)
        pages = read_concurrently(
            lambda page_no: self._fetch_page(page_no, sent), planned, self.settings.concurrency, "vod-page"
        )
        try:
            for page_no, answer in zip(planned, pages, strict=True):
                if self._take_page(page_no, answer, start, stats, listing):
                    return listing
        finally:
            pages.close()  # a read that ended early drops the pages not yet started
        for page_no in range(last + 1, MAX_PAGES + 1):
            if self._take_page(page_no, self._fetch_page(page_no, sent), start, stats, listing):
                return listing
        # the guard ended the read: not a complete one, so no job counts as missing
        listing.failure = PollFailure(ProviderError(self.provider, f"the listing goes on past {MAX_PAGES} pages"))
        return listing

    def _fetch_page(self, page_no: int, sent: tuple[int, int]) -> dict[str, Any] | ProviderError:
        """One page, or the error that refused it (as a value, so that pages read side by side all finish)."""
        try:
            return self.list_page(page_no, sent)
        except ProviderError as error:
            return error

    def _take_page(
        self,
        page_no: int,
        answer: dict[str, Any] | ProviderError,
        start: datetime,
        stats: Counter[str],
        listing: _Listing,
    ) -> bool:
        """Adds one page's items to `listing`; returns whether the read ended there (complete or failed)."""
        if isinstance(answer, AuthenticationRejected):
            raise answer
        if isinstance(answer, ProviderError):
            listing.failure = PollFailure(type(answer)(self.provider, f"page {page_no}: {answer.message}"))
            return True
        stats["list_pages"] += 1
        content = answer.get("content") or []
        for raw in content:
            item = _listed_item(raw, start)
            if item is None:
                stats["unreadable_items"] += 1
                logger.warning("vod_station listing item names no job", extra={"page": page_no})
                continue
            listing.items.append(item)
        listing.entries += len(content)
        total = values.integer(answer.get("total"))
        # Stop on what the answer says, not on page arithmetic: a gateway may serve fewer than asked.
        if not content or (total is None and len(content) < self.settings.page_size):
            return True
        return total is not None and listing.entries >= total

    def _listed_snapshot(self, job_id: str, items: Sequence[_Item], stored: StoredJob | None) -> Snapshot:
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
        stored_outputs = _stored_outputs(stored)
        finished = to_datetime((stored or {}).get("finished_at"))
        requeued = bool(
            stored_status
            and is_terminal(stored_status)
            and (
                (
                    last_work is not None
                    and finished is not None
                    and last_work > finished
                    # A job failed while other outputs still ran (stored so by an earlier version): their later
                    # work finishes this attempt, it does not start another.
                    and (_all_finished(stored_outputs) or (stored or {}).get("provider_status") == NOT_LISTED)
                )
                # Ended by a callback, which carries no time: an output ends once a run, so every stored output
                # listed and ended another way can only be a later run's.
                or (finished is None and _ended_otherwise(stored_status, stored_outputs, listed))
            )
        )
        outputs = listed if requeued else _merge(stored_outputs, listed, forward_only=False)
        status = derive_status(outputs)
        oldest = [to_datetime((stored or {}).get("created_at")), min(work_times) if work_times else None]
        created = min((moment for moment in oldest if moment is not None), default=None)
        newest = current[-1]
        details = {
            **dict((stored or {}).get("details") or {}),
            "category_id": newest.category_id,
            "not_listed_since": None,  # listed again
        }
        window_starts = [item.window_start for item in items if item.window_start is not None]
        if window_starts and not details.get("work_started_after"):
            details["work_started_after"] = iso_z(min(window_starts))
        details.pop("searched_back_to", None)  # found: its bound says where to read from now on
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
        if is_terminal(status) and not (known_types and known_types <= {o.id for o in outputs}):
            status = Status.PROCESSING  # other outputs may not have sent a word yet (WAITING has no file path)
        if is_terminal(status) and int((stored or {}).get("attempt") or 1) > 1:
            # A re-encode: a late callback of the earlier run reads the same as this run's (callbacks carry no
            # time), so only the listing ends a later attempt.
            status = Status.PROCESSING
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


def _listed_item(raw: object, window_start: datetime | None = None) -> _Item | None:
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
        last_work=_work_time(raw.get("lastWorkTime")),
        window_start=window_start,
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


def _all_finished(outputs: Sequence[Output]) -> bool:
    return all(output.status is not None and is_terminal(output.status) for output in outputs)


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


def _ended_otherwise(stored_status: Status, stored_outputs: Sequence[Output], listed: Sequence[Output]) -> bool:
    """Every stored output is listed, all ended, and the job they make ended otherwise than stored."""
    if not stored_outputs or not {output.id for output in stored_outputs} <= {output.id for output in listed}:
        return False
    listed_status = derive_status(list(listed))
    return is_terminal(listed_status) and listed_status is not stored_status


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


def _by_job(items: Sequence[_Item]) -> dict[str, list[_Item]]:
    by_job: dict[str, list[_Item]] = {}
    for item in items:
        by_job.setdefault(item.job_id, []).append(item)
    return by_job


def _searched_back_to(job: StoredJob) -> datetime | None:
    """How far back a job never listed has been looked for (None: only the recent window so far)."""
    return to_datetime((job.get("details") or {}).get("searched_back_to"))


def _work_time(value: object) -> datetime | None:
    """`lastWorkTime`, which the document types Object and shows as text with an offset. Also read: epoch
    milliseconds (a number or digits, as the document's other times are), an object holding them (`epochMilli`,
    `time`, `timestamp`) or `epochSecond`, and date parts (a Java LocalDateTime written as an object or an
    array). A time without an offset is the service's own, Korean time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        return to_datetime(from_epoch_ms(value))
    if isinstance(value, str):
        return to_datetime(value, assume=KST)
    if isinstance(value, Mapping):
        for key in ("epochMilli", "time", "timestamp"):
            if values.integer(value.get(key)) is not None:
                return to_datetime(from_epoch_ms(values.integer(value.get(key))))
        if (seconds := values.integer(value.get("epochSecond"))) is not None:
            return to_datetime(from_epoch_ms(seconds * 1000))
        month = value.get("monthValue", value.get("month"))
        parts = (
            [value.get(key) for key in ("year",)]
            + [month]
            + [value.get(key) for key in ("dayOfMonth", "hour", "minute", "second")]
        )
    elif isinstance(value, list):
        parts = value[:6]
    else:
        return None
    numbers = [values.integer(part) for part in parts]
    if len(numbers) < 3 or None in numbers[:3]:
        return None
    try:
        return datetime(*(number or 0 for number in numbers), tzinfo=KST)  # type: ignore[misc]
    except (TypeError, ValueError, OverflowError):
        return None


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
