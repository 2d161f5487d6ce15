"""Xvid MediaHub API v1 (PROVIDERS.md "Xvid"): OAuth client-credentials client, the `inprogress` job listing
(discovery) plus single-job reads for tracked jobs that left it, and the normalizer.

- Assumed, not confirmed by Xvid's documents (the README lists them): the list envelope `{"jobs": [...]}` (a
  bare list is accepted too) and every status word but SUCCESS.
- Xvid documents no start time, so `started_at` stays unset. A job stored as ended that Xvid shows with a
  higher `version` than the stored run's (`details.provider_version`), running without a `finished_at` (or
  with an `updated_at` after the recorded finish: `updated_at` need not move), or ended again with a later
  `finished_at`, is a new attempt (`requeued`).
- A job that finished in the last 15 minutes is listed on every poll: once the table holds it as ended, with
  the same word and finish time, it is skipped (`settled_skipped`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

from transcode_core import times, urls
from transcode_core.errors import BadRequest, ProviderError, ProviderUnavailable
from transcode_core.model import JobError, Output, Snapshot, clamp_progress, drop_none
from transcode_core.oauth import ClientCredentialsToken
from transcode_core.providers import values
from transcode_core.providers.base import (
    Adapter,
    PollContext,
    PollFailure,
    ProviderSpec,
    StoredJob,
    read_concurrently,
)
from transcode_core.providers.job_ids import is_xvid_job_id as is_job_id
from transcode_core.status import TERMINAL, Status, map_status, status_words
from transcode_core.webhook import WebhookBody

PROVIDER = "xvid"
DEFAULT_API_URL = "https://api.xvid.com/v1/"
MAX_PAGE_SIZE = 5000  # the largest `limit` GET jobs takes
MAX_ERROR_CHARS = 1000  # an error_msg is stored and mailed: keep a runaway one from bloating the item

STATUS_WORDS = status_words(
    {
        # Only SUCCESS is documented; the rest are the usual spellings (README: "assumed").
        Status.SUBMITTED: ("CREATED", "NEW", "SUBMITTED"),
        Status.DOWNLOADING: ("DOWNLOADING",),
        Status.QUEUED: ("QUEUED", "PENDING", "WAITING"),
        Status.PROCESSING: ("PROCESSING", "RUNNING", "ENCODING", "IN_PROGRESS", "STARTED"),
        Status.UPLOADING: ("UPLOADING",),
        Status.COMPLETE: ("SUCCESS",),
        Status.ERROR: ("FAILED", "FAILURE", "ERROR"),
        Status.CANCELED: ("CANCELED", "CANCELLED", "ABORTED"),
    }
)
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL)


class XvidAdapter(Adapter):
    provider = PROVIDER

    @cached_property
    def access_token(self) -> ClientCredentialsToken:
        return ClientCredentialsToken(
            PROVIDER,
            self.session,
            urls.join_url(self.api_url, "oauth2/token"),
            self.credentials["client_id"],
            self.credentials["client_secret"],
            self.deadline,
        )

    # --- the pipeline's calls -----------------------------------------------------------------------
    def poll(self, context: PollContext) -> Iterator[Snapshot | PollFailure]:
        """Jobs running now or finished in the last 15 minutes (the listing, which also discovers new jobs),
        then the active jobs the listing does not show, one by one: a finish between two polls is never missed."""
        stats = context.stats
        # Reported on every poll, zeros included.
        stats.update(dict.fromkeys(("list_calls", "detail_calls", "discovered", "settled_skipped"), 0))
        self.access_token.value()  # without a token nothing can be done: raise
        # Not terminal, or terminal and put back on the poll list (jobs API PUT) to see a restart.
        active = context.active_by_id
        listed: set[str] = set()
        outage = yield from self._list_in_progress(context, listed)
        unlisted = [job_id for job_id in active if job_id not in listed]
        if outage:
            # The API is unreachable: single reads would only fail one by one after their retries.
            if unlisted:
                yield PollFailure(outage, tuple(unlisted))
            return
        for result in self._read_concurrently(unlisted, stats):
            yield result if isinstance(result, PollFailure) else mark_new_run(result, active.get(result.job_id))

    def read_jobs(self, job_ids: Sequence[str]) -> Iterator[Snapshot | PollFailure]:
        if job_ids:
            self.access_token.value()
        yield from self._read_concurrently(list(job_ids), Counter())

    def webhook_snapshots(
        self, body: WebhookBody, lookup: Callable[[Sequence[str]], dict[str, StoredJob]]
    ) -> list[Snapshot]:
        snapshots = super().webhook_snapshots(body, lookup)
        stored = lookup([snapshot.job_id for snapshot in snapshots]) if snapshots else {}
        return [mark_new_run(snapshot, stored.get(snapshot.job_id)) for snapshot in snapshots]

    def webhook_job_ids(self, body: WebhookBody) -> list[str]:
        """The job a JSON body names: `job_id`, `job.id` or `id` (most specific first). What Xvid posts, if
        anything, is undocumented; the webhook is only a hint to read that job from the API."""
        document = body.json_object()
        nested = document.get("job")
        candidates = (
            document.get("job_id"),
            nested.get("id") if isinstance(nested, dict) else None,
            document.get("id"),
        )
        job_id = next((value for value in candidates if value not in (None, "")), None)
        if job_id is None:
            raise BadRequest("the body names no job: expected job_id, job.id or id")
        if not is_job_id(job_id):
            raise BadRequest("the job id is not a valid Xvid job id (letters, digits, _ and -, at most 64)")
        return [job_id]

    # --- listing and single reads -------------------------------------------------------------------
    def _list_in_progress(
        self, context: PollContext, listed: set[str]
    ) -> Generator[Snapshot | PollFailure, None, ProviderUnavailable | None]:
        """Pages of `GET jobs?inprogress=true`; adds every listed job id to `listed`. Returns the
        ProviderUnavailable that stopped it, if the API could not be reached."""
        stats = context.stats
        # Xvid's answer has no count: asking for one job more than a page tells whether another page exists,
        # so a job count that is a multiple of the page size costs no empty last page.
        page_size = min(self.settings.page_size, MAX_PAGE_SIZE - 1)
        start = 0
        while True:
            stats["list_calls"] += 1
            what = f"job list at start={start}"
            try:
                document = self._get_json("jobs", what, inprogress="true", start=start, limit=page_size + 1)
                received = page_jobs(document, what)
            except ProviderUnavailable as outage:
                yield PollFailure(outage)
                return outage
            except ProviderError as error:
                # Where the listing ends cannot be known now: the single reads cover the tracked jobs.
                yield PollFailure(error)
                return None
            more = len(received) > page_size
            jobs = received[:page_size]  # the look-ahead job is read again as the next page's first
            new_ids = {job["id"] for job in jobs if isinstance(job, dict) and is_job_id(job.get("id"))} - listed
            page: list[Snapshot] = []
            for job in jobs:
                try:
                    page.append(to_snapshot(job))
                except ProviderError as error:
                    yield PollFailure(error, error.job_ids)
            listed.update(snapshot.job_id for snapshot in page)
            yield from self._unsettled(page, context)
            if not more:
                return None
            if not new_ids:
                # A full page of nothing new: the API ignores `start` (or sends junk); stop rather than loop.
                yield PollFailure(ProviderError(PROVIDER, f"job list at start={start} brings no new job; stopped"))
                return None
            start += len(jobs)

    def _unsettled(self, page: list[Snapshot], context: PollContext) -> Iterator[Snapshot]:
        """The listed jobs worth applying: active ones, new ones, and stored ones the listing shows changed.
        A job that finished in the last 15 minutes is listed on every poll; once stored, it is skipped."""
        stored = context.stored_jobs(snapshot.job_id for snapshot in page)
        for snapshot in page:
            item = stored.get(snapshot.job_id)
            if item is None:
                context.stats["discovered"] += 1
                yield mark_new_run(snapshot, None)
            elif snapshot.job_id not in context.active_by_id and _settled(item, snapshot):
                context.stats["settled_skipped"] += 1
            else:
                yield mark_new_run(snapshot, item)

    def _read_concurrently(self, job_ids: list[str], stats: Counter[str]) -> Iterator[Snapshot | PollFailure]:
        if not job_ids:
            return
        stats["detail_calls"] += len(job_ids)
        yield from read_concurrently(self._read_job, job_ids, self.settings.concurrency, "xvid-read")

    def _read_job(self, job_id: str) -> Snapshot | PollFailure:
        """`GET jobs/{id}`; never raises, so one bad job cannot stop the others."""
        if not is_job_id(job_id):
            error = ProviderError(PROVIDER, f"job id {job_id!r:.80} is not a valid Xvid job id", job_ids=(job_id,))
            return PollFailure(error, (job_id,))
        try:
            document = self._get_json(f"jobs/{job_id}", f"job {job_id}", job_ids=(job_id,))
        except ProviderError as error:  # named already; ProviderUnavailable stays one, for the webhook's 503
            return PollFailure(error, (job_id,))
        try:
            snapshot = to_snapshot(single_job(document))
        except ProviderError as error:
            return PollFailure(ProviderError(PROVIDER, f"job {job_id}: {error.message}", job_ids=(job_id,)), (job_id,))
        if snapshot.job_id != job_id:
            error = ProviderError(
                PROVIDER, f"job {job_id}: the answer is about job {snapshot.job_id}", job_ids=(job_id,)
            )
            return PollFailure(error, (job_id,))
        return snapshot

    # --- HTTP ---------------------------------------------------------------------------------------
    def _get_json(self, path: str, what: str, *, job_ids: tuple[str, ...] = (), **params: Any) -> Any:
        return self.access_token.get_json(
            urls.join_url(self.api_url, path),
            what,
            job_ids=job_ids,
            reasons={404: "not found"},
            params={"format": "json", **params},
            headers={"Accept": "application/json"},
        )


# --- documents -> snapshots (pure) -----------------------------------------------------------------------
def page_jobs(document: Any, what: str = "job list") -> list[Any]:
    """The jobs of a `GET jobs` answer: `{"jobs": [...]}` (assumed envelope) or a bare list. `{}` and
    `{"jobs": null}` are an empty page (show_null=false leaves unset keys out)."""
    if isinstance(document, dict):
        if document and "jobs" not in document:
            raise ProviderError(PROVIDER, f'{what}: expected {{"jobs": [...]}}, got keys {sorted(document)[:5]}')
        document = document.get("jobs") or []
    if not isinstance(document, list):
        raise ProviderError(PROVIDER, f"{what}: expected a list of jobs, got {type(document).__name__}")
    return document


def single_job(document: Any) -> Any:
    """The job of a `GET jobs/{id}` answer, `{"job": {...}}`."""
    if not isinstance(document, dict) or not isinstance(document.get("job"), dict):
        raise ProviderError(PROVIDER, 'expected {"job": {...}}')
    return document["job"]


def to_snapshot(job: Any) -> Snapshot:
    """One job document (the seed's shape) as a Snapshot; ProviderError when it lacks what a job must have."""
    if not isinstance(job, dict):
        raise ProviderError(PROVIDER, f"a job is a {type(job).__name__}, not an object")
    job_id = job.get("id")
    if not is_job_id(job_id):
        raise ProviderError(PROVIDER, f"a job has no valid id ({job_id!r:.80})")
    word = job.get("status")
    if not isinstance(word, str) or not word.strip():
        raise ProviderError(PROVIDER, f"job {job_id} has no status", job_ids=(job_id,))
    status = map_status(word, STATUS_WORDS)
    source = _field(job.get("input"), "input_name")
    return Snapshot(
        provider=PROVIDER,
        job_id=job_id,
        status=status,
        provider_status=word,
        progress=clamp_progress(job.get("percentage_completed")),
        source_url=urls.redact_url(source) if isinstance(source, str) else None,
        created_at=times.from_epoch_ms(job.get("created_at")),
        started_at=None,  # Xvid documents no start time
        finished_at=times.from_epoch_ms(job.get("finished_at")),
        outputs=_outputs(job_id, job.get("outputs")),
        error=_error(job, word) if status is Status.ERROR else None,
        details=drop_none(
            {
                "provider_updated_at": times.from_epoch_ms(job.get("updated_at")),
                "provider_version": _version(job.get("version")),
                "output_prefix": values.text(job.get("output_prefix")),
                "input_file_id": _ref_id(_field(job.get("input"), "file")),
            }
        ),
    )


def mark_new_run(snapshot: Snapshot, stored: StoredJob | None) -> Snapshot:
    """Xvid shows no start time, so a restart is told by the job's `version` and its times: a job stored as
    ended that Xvid shows at a higher `version` than the stored run's, or running with an update after its
    recorded finish, or ended again later, is a new attempt (`requeued`). The version tells a re-run also
    when the failed run showed no `finished_at` (the document does not say it always does): the seed's
    finished job is at version 1, so the version does not move with each status change.
    The provider's update time serves only this: it is not stored, since it moves without the job changing
    (storing it would write every poll and hide a stalled job)."""
    updated_at = snapshot.details.get("provider_updated_at")
    snapshot = replace(snapshot, details={k: v for k, v in snapshot.details.items() if k != "provider_updated_at"})
    if not stored or stored.get("status") not in _TERMINAL_VALUES:
        return snapshot
    if snapshot.status is not Status.UNKNOWN and _is_later_version(snapshot, stored):
        return replace(snapshot, requeued=True)
    ended = times.to_datetime(stored.get("finished_at"))
    if ended is None:
        return snapshot
    if snapshot.status not in TERMINAL and snapshot.status is not Status.UNKNOWN and not snapshot.finished_at:
        # Running again, its finish time gone: a new run, whether or not updated_at moved (it need not).
        return replace(snapshot, requeued=True)
    seen = times.to_datetime(snapshot.finished_at if snapshot.status in TERMINAL else updated_at)
    return replace(snapshot, requeued=True) if seen is not None and seen > ended else snapshot


def _settled(stored: StoredJob, snapshot: Snapshot) -> bool:
    """Stored as ended, as the listing shows it: nothing to learn from it."""
    return (
        snapshot.status in TERMINAL
        and stored.get("status") == snapshot.status.value
        and stored.get("provider_status") == snapshot.provider_status
        and stored.get("finished_at") == snapshot.finished_at
        and not _is_later_version(snapshot, stored)
    )


def _is_later_version(snapshot: Snapshot, stored: StoredJob) -> bool:
    """Whether Xvid shows the job at a higher `version` than the stored run's (both known)."""
    shown = snapshot.details.get("provider_version")
    known = _version((stored.get("details") or {}).get("provider_version"))
    return shown is not None and known is not None and shown > known


def _version(value: Any) -> int | None:
    """The job's `version`: a whole number, sent as a number or as text."""
    return values.integer(value)


def _outputs(job_id: str, outputs: Any) -> tuple[Output, ...]:
    if outputs is None:
        return ()
    if not isinstance(outputs, list):
        raise ProviderError(PROVIDER, f"job {job_id}: outputs is not a list", job_ids=(job_id,))
    result = []
    for index, output in enumerate(outputs):
        if not isinstance(output, dict):
            raise ProviderError(PROVIDER, f"job {job_id}: output {index} is not an object", job_ids=(job_id,))
        file_id = _ref_id(output.get("file"))
        thumbnails = output.get("thumbnails") or []
        if not isinstance(thumbnails, list):
            raise ProviderError(PROVIDER, f"job {job_id}: output {index} thumbnails is not a list", job_ids=(job_id,))
        thumbnail_ids = [_ref_id(thumb.get("file")) for thumb in thumbnails if isinstance(thumb, dict)]
        result.append(
            Output(
                id=values.text(output.get("output_name")) or file_id or str(index),
                progress=clamp_progress(output.get("percentage_completed")),
                details={
                    "file_id": file_id,
                    "preset_id": _ref_id(output.get("preset")),
                    "thumbnail_zip_file_id": _ref_id(_field(output.get("thumbnail_zip"), "file")),
                    "thumbnail_file_ids": [tid for tid in thumbnail_ids if tid] or None,
                },
            )
        )
    return tuple(result)


def _error(job: Mapping[str, Any], word: str) -> JobError:
    message = values.text(job.get("error_msg")) or f"Xvid reported {word}"
    return JobError(message=message[:MAX_ERROR_CHARS], code=values.text(job.get("error_code")))


def _field(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _ref_id(reference: Any) -> str | None:
    """The id of a `{id, href}` reference (or of an embedded object, with expand)."""
    return values.text(_field(reference, "id"))


SPEC = ProviderSpec(
    id=PROVIDER,
    default_api_url=DEFAULT_API_URL,
    secret_keys=("client_id", "client_secret"),
    adapter=XvidAdapter,
    status_words=STATUS_WORDS,
    is_job_id=is_job_id,
    webhook_path="/webhooks/xvid",
)
