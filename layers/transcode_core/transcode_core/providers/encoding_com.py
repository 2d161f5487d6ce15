"""encoding.com: GetStatus extended for batches of media ids (XML API by default, JSON API on request).

encoding.com has no listing to discover jobs from here: jobs are registered through the jobs API or named by
a webhook, so a poll reads only the active jobs. Every call is a form POST to the API URL itself with one field,
`xml` (`<query>...</query>`) or `json` (`{"query": {...}}`); errors come back with HTTP 200 as
`<response><errors><error>...</error></errors></response>`. XML answers go through `xmlsafe.to_plain`, which gives
them the JSON API's shape, so one normalizer reads both. Batches are read CONCURRENCY at a time.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import tzinfo
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from transcode_core.errors import BadRequest, ConfigurationError, ProviderError, ProviderUnavailable
from transcode_core.http import json_body, send
from transcode_core.model import Destination, JobError, Output, Snapshot, clamp_progress
from transcode_core.providers import values
from transcode_core.providers.base import (
    Adapter,
    PollContext,
    PollFailure,
    ProviderSpec,
    StoredJob,
    iter_chunks,
    read_concurrently,
)
from transcode_core.providers.job_ids import is_media_id
from transcode_core.status import Status, map_status, status_words
from transcode_core.times import is_later, parse_time, zone
from transcode_core.urls import redact_url
from transcode_core.webhook import WebhookBody
from transcode_core.xmlsafe import XmlRejected, as_list, parse_xml, to_plain

PROVIDER = "encoding_com"

# CONTRACT's row, and nothing else: `Closed` (GetMediaList) and whatever StopMedia/CancelMedia leave are
# unconfirmed, so they stay UNKNOWN rather than guessed.
STATUS_WORDS = status_words(
    {
        Status.SUBMITTED: ("New",),
        Status.DOWNLOADING: ("Downloading",),
        Status.QUEUED: ("Ready to process", "Waiting for encoder"),
        Status.PROCESSING: ("Processing",),
        Status.UPLOADING: ("Saving",),
        Status.COMPLETE: ("Finished",),
        Status.ERROR: ("Error",),
    }
)

_DESTINATION_ERROR = re.compile(r"error\b\s*[:\-]?\s*(.*)", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]{1,20}(?![0-9A-Za-z])")
_ABOUT_A_MEDIA = re.compile(r"\bmedia\b", re.IGNORECASE)  # "Media ID is not found"; not "Wrong user id or key!"
_FORM_BODY = re.compile(r"\s*(xml|json)=")  # a form body sent without its content type
NO_DESCRIPTION = "encoding.com reported Error without a description"


class EncodingComAdapter(Adapter):
    provider = PROVIDER

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_format = self.settings.encoding_com_format  # "xml" or "json", checked by Settings
        self.timezone = zone(self.settings.provider_timezone)  # Settings has checked the name
        missing = [key for key in ("user_id", "user_key") if not self.credentials.get(key)]
        if missing:
            raise ConfigurationError(f"encoding.com credentials lack: {', '.join(missing)}")

    # --- Adapter ------------------------------------------------------------------------------------
    def poll(self, context: PollContext) -> Iterator[Snapshot | PollFailure]:
        yield from self._read(list(context.active_by_id), context.stats, context.active_by_id)

    def read_jobs(self, job_ids: Sequence[str]) -> Iterator[Snapshot | PollFailure]:
        yield from self._read(list(dict.fromkeys(job_ids)), Counter())

    def webhook_snapshots(
        self, body: WebhookBody, lookup: Callable[[Sequence[str]], dict[str, StoredJob]]
    ) -> list[Snapshot]:
        """The API's state of the named media; an Error it confirms takes the notify's `<description>` as its
        error text: the documents put the reason there, and GetStatus has no description."""
        result = notify_result(body)
        described = values.text(result.get("description"))
        notified_error = map_status(values.text(result.get("status")), STATUS_WORDS) is Status.ERROR
        snapshots = super().webhook_snapshots(body, lookup)
        stored = lookup([snapshot.job_id for snapshot in snapshots]) if snapshots else {}
        kept = []
        for snapshot in snapshots:
            if snapshot.status is Status.ERROR and notified_error and described:
                snapshot = replace(snapshot, error=JobError(described))
            kept.append(_keep_known_error(snapshot, stored.get(snapshot.job_id)))
        return kept

    def webhook_job_ids(self, body: WebhookBody) -> list[str]:
        result = notify_result(body)
        media_ids = [values.text(value) for value in as_list(result.get("mediaid"))]
        media_ids = [media_id for media_id in media_ids if media_id]
        if not media_ids:
            raise BadRequest("encoding.com notification names no media id")
        for media_id in media_ids:
            if not is_media_id(media_id):
                raise BadRequest(f"encoding.com notification names media id {media_id[:40]!r}, not a positive integer")
        return list(dict.fromkeys(media_ids))

    # --- calls --------------------------------------------------------------------------------------
    def _read(
        self, media_ids: list[str], stats: Counter[str], stored: Mapping[str, StoredJob] | None = None
    ) -> Iterator[Snapshot | PollFailure]:
        readable = []
        for media_id in media_ids:
            if is_media_id(media_id):
                readable.append(media_id)
            else:  # never sent: a malformed id could spoil the answer for its whole batch
                yield _failure(f"media id {media_id[:40]!r} is not a positive integer", (media_id,))
        batches = [tuple(chunk) for chunk in iter_chunks(readable, self.settings.batch_size)]
        for results, calls in read_concurrently(self._read_batch, batches, self.settings.concurrency, "ecom-status"):
            stats["status_calls"] += calls
            for result in results:
                if isinstance(result, Snapshot):
                    result = _keep_known_error(result, (stored or {}).get(result.job_id))
                yield result

    def _read_batch(self, batch: tuple[str, ...]) -> tuple[list[Snapshot | PollFailure], int]:
        """One GetStatus extended call: its results and the number of calls made. A batch the API refuses
        whole because of one id (an unknown id can do that) is not lost: ids the refusal names fail alone and
        the others are read again in one call; a refusal about a media that names none is split in halves
        until the refused id fails alone (halves refused with the very same error are not split further).
        A refusal that blames no id (wrong credentials, an HTTP error status, an unreadable answer) fails the
        batch with this one call. Never raises: batches are read concurrently, and one must not stop the
        others."""
        try:
            document = self._call({"action": "GetStatus", "extended": "yes", "mediaid": ",".join(batch)})
            jobs = jobs_by_media_id(document)
        except ProviderUnavailable as exc:  # this batch stays as it was; the other batches are still read
            exc.job_ids = batch
            return [PollFailure(exc, batch)], 1
        except ProviderError as exc:
            blamed = _blamed_ids(exc, batch)
            if blamed and len(batch) > 1:
                failed: list[Snapshot | PollFailure] = [_failure(exc.message, (media_id,)) for media_id in blamed]
                rest = tuple(media_id for media_id in batch if media_id not in blamed)
                if not rest:
                    return failed, 1
                results, calls = self._read_batch(rest)
                return failed + results, 1 + calls
            if len(batch) == 1 and not _blamed_ids(exc, batch):
                return [_failure(f"media {batch[0]}: {exc.message}", batch)], 1  # name the media it is about
            if len(batch) == 1 or not _blames_a_media(exc):
                exc.job_ids = batch
                return [PollFailure(exc, batch)], 1
            middle = len(batch) // 2
            (first, first_calls), (second, second_calls) = (
                self._read_batch(half) for half in (batch[:middle], batch[middle:])
            )
            calls = 1 + first_calls + second_calls
            if _refused_whole(first, exc) and _refused_whole(second, exc):
                exc.job_ids = batch
                return [PollFailure(exc, batch)], calls  # both halves refused alike: not about one id
            return first + second, calls
        return [self._batch_result(jobs, media_id) for media_id in batch], 1

    def _batch_result(self, jobs: Mapping[str, dict[str, Any]], media_id: str) -> Snapshot | PollFailure:
        job = jobs.get(_media_key(media_id))
        if job is None:
            return _failure(f"GetStatus did not return media {media_id}", (media_id,))
        if errors := provider_errors(job):
            return _failure(f"GetStatus for media {media_id}: {'; '.join(errors)}", (media_id,))
        return normalize_job(job, media_id=media_id, assume=self.timezone)

    def _call(self, fields: Mapping[str, str]) -> dict[str, Any]:
        """One API call; the `response` document as plain data. ProviderError when it reports errors."""
        query = {"userid": self.credentials["user_id"], "userkey": self.credentials["user_key"], **fields}
        response = send(
            PROVIDER,
            self.session,
            "POST",
            self.api_url,
            data=query_form(query, self.api_format),
            deadline=self.deadline,
        )
        if response.status_code != 200:
            raise ProviderError(PROVIDER, f"{fields.get('action')} answered HTTP {response.status_code}")
        if self.api_format == "json":
            document = json_body(PROVIDER, response)
            inner = document.get("response") if isinstance(document, dict) else None
            if not isinstance(inner, dict):
                raise ProviderError(PROVIDER, "the JSON answer holds no response object")
        else:
            try:
                root = parse_xml(response.content.strip())
                plain = to_plain(root)
            except XmlRejected as exc:
                raise ProviderError(PROVIDER, f"the answer is not readable XML ({exc})") from None
            if root.tag != "response":
                raise ProviderError(PROVIDER, f"the XML answer is a <{root.tag[:40]}>, not a <response>")
            inner = plain if isinstance(plain, dict) else {}
        errors = provider_errors(inner)
        if errors:
            raise Refused(f"{fields.get('action')} refused: {'; '.join(errors)}", errors)
        return inner


class Refused(ProviderError):
    """The API answered with `<errors>`: their texts are kept to tell whether they blame a media id."""

    def __init__(self, message: str, errors: Sequence[str]) -> None:
        super().__init__(PROVIDER, message)
        self.errors = tuple(errors)


# --- requests ---------------------------------------------------------------------------------------
def query_form(query: Mapping[str, str], api_format: str) -> dict[str, str]:
    """The form body of a call: `xml` or `json` holding the query. ElementTree escapes the values."""
    if api_format == "json":
        return {"json": json.dumps({"query": dict(query)})}
    root = Element("query")
    for name, value in query.items():
        SubElement(root, name).text = str(value)
    return {"xml": '<?xml version="1.0"?>\n' + tostring(root, encoding="unicode")}


# --- answers ----------------------------------------------------------------------------------------
def provider_errors(document: Mapping[str, Any]) -> list[str]:
    """The texts of `errors/error` (one error comes as a string, several as a list)."""
    errors = document.get("errors")
    if isinstance(errors, dict):
        texts = [values.text(error) for error in as_list(errors.get("error"))]
        return [text for text in texts if text] or ["(an error without text)"]
    text = values.text(errors)
    return [text] if text else []


def jobs_by_media_id(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The `job` entries of a GetStatus extended answer by media id (a basic answer is one job itself)."""
    entries = as_list(document.get("job")) if "job" in document else [document]
    jobs: dict[str, dict[str, Any]] = {}
    for entry in entries:
        media_id = values.text(entry.get("id")) if isinstance(entry, dict) else None
        if media_id and is_media_id(media_id):
            jobs[_media_key(media_id)] = entry
    return jobs


def normalize_job(job: Mapping[str, Any], *, media_id: str, assume: tzinfo) -> Snapshot:
    """One media of GetStatus (extended or basic; XML via to_plain, or JSON) as a Snapshot."""
    word = values.text(job.get("status")) or ""
    status = map_status(word, STATUS_WORDS)
    outputs = tuple(
        _normalize_format(fmt, index, assume)
        for index, fmt in enumerate(as_list(job.get("format")))
        if isinstance(fmt, dict)
    )
    error = None
    if status is Status.ERROR:
        error = JobError(_error_message(job, outputs) or NO_DESCRIPTION)
    return Snapshot(
        provider=PROVIDER,
        job_id=media_id,
        status=status,
        provider_status=word,
        progress=clamp_progress(values.text(job.get("progress"))),
        source_url=redact_url(values.text(job.get("sourcefile"))),
        created_at=parse_time(values.text(job.get("created")), assume=assume),
        started_at=parse_time(values.text(job.get("started")), assume=assume),
        finished_at=parse_time(values.text(job.get("finished")), assume=assume),
        outputs=outputs,
        error=error,
        # The media's "estimated time left" (TotalTimeLeft); its unit is unconfirmed, read as seconds.
        time_left_seconds=values.seconds(job.get("time_left")),
    )


def _normalize_format(fmt: Mapping[str, Any], index: int, assume: tzinfo) -> Output:
    word = values.text(fmt.get("status"))
    urls = as_list(fmt.get("destination"))
    states = as_list(fmt.get("destination_status"))
    destinations = []
    for position, url in enumerate(urls):
        url_text = values.text(url)
        if not url_text:  # the JSON API sends null for a destination it has no URL for
            continue
        state, error = parse_destination_status(values.text(states[position]) if position < len(states) else None)
        destinations.append(Destination(url=redact_url(url_text) or "", status=state, error=error))
    details = {
        key: value
        for key, value in (
            ("output", values.text(fmt.get("output"))),
            ("s3_destination", redact_url(values.text(fmt.get("s3_destination")))),
            ("cf_destination", redact_url(values.text(fmt.get("cf_destination")))),
            ("description", values.text(fmt.get("description"))),
        )
        if value
    }
    return Output(
        id=values.text(fmt.get("id")) or str(index + 1),
        status=map_status(word, STATUS_WORDS) if word else None,
        provider_status=word,
        progress=clamp_progress(values.text(fmt.get("progress"))),
        size_bytes=_size(fmt.get("convertedsize")) or _size(fmt.get("file_size")),
        destinations=tuple(destinations),
        details=details,
    )


def parse_destination_status(text: str | None) -> tuple[str | None, str | None]:
    """`Saved` -> ("Saved", None); `Error (Access denied)` -> ("Error", "Access denied"); others as sent."""
    if not text:
        return None, None
    failed = _DESTINATION_ERROR.fullmatch(text.strip())
    if not failed:
        return text, None
    detail = failed.group(1).strip()
    if detail.startswith("(") and detail.endswith(")"):
        detail = detail[1:-1].strip()
    return "Error", detail or None


def _error_message(job: Mapping[str, Any], outputs: Sequence[Output]) -> str | None:
    """The media's description; else the first format description or destination error."""
    description = values.text(job.get("description"))
    if description:
        return description
    for output in outputs:
        if output.status is Status.ERROR and output.details.get("description"):
            return str(output.details["description"])
        for destination in output.destinations:
            if destination.error:
                return destination.error
    return None


# --- notifications ----------------------------------------------------------------------------------
def notify_result(body: WebhookBody) -> dict[str, Any]:
    """The `result` of a notification: form field `xml` or `json`, or a raw XML or JSON body."""
    if body.is_form or _FORM_BODY.match(body.text):  # the documented form field, whatever the content type says
        fields = body.form()
        if fields.get("xml", "").strip():
            return _result_of(body.plain_xml(fields["xml"].strip()))
        if fields.get("json", "").strip():
            return _result_of(WebhookBody(fields["json"]).json_object())
        raise BadRequest("encoding.com notification form holds neither an xml nor a json field")
    text = body.text.strip()
    if text.startswith("<"):
        return _result_of(body.plain_xml(text))
    if text.startswith("{"):
        return _result_of(body.json_object())
    raise BadRequest("encoding.com notification is neither XML nor JSON")


def _result_of(document: Any) -> dict[str, Any]:
    # XML: the root <result> is the document itself; JSON: {"result": {...}}.
    if isinstance(document, dict) and isinstance(document.get("result"), dict):
        return document["result"]
    return document if isinstance(document, dict) else {}


# --- small readers ----------------------------------------------------------------------------------
def _media_key(media_id: str) -> str:
    return str(int(media_id))


def _size(value: Any) -> int | None:
    """A byte count; None when absent, not a number, or 0 (what encoding.com sends before the file exists)."""
    size = values.integer(value)
    return size if size and size > 0 else None


def _blamed_ids(error: ProviderError, batch: Sequence[str]) -> list[str]:
    """The batch's media ids that a refusal's texts name (as numbers of their own)."""
    if not isinstance(error, Refused):
        return []
    named = {_media_key(number) for number in _NUMBER.findall(" ".join(error.errors))}
    return [media_id for media_id in batch if _media_key(media_id) in named]


def _blames_a_media(error: ProviderError) -> bool:
    """Whether a refusal is about some media without naming which ("Media ID is not found")."""
    return isinstance(error, Refused) and any(_ABOUT_A_MEDIA.search(text) for text in error.errors)


def _refused_whole(results: list[Snapshot | PollFailure], refusal: ProviderError) -> bool:
    """Whether a half's results are one failure for all of it, with the message its parent was refused with."""
    return (
        len(results) == 1
        and isinstance(results[0], PollFailure)
        and type(results[0].error) is type(refusal)
        and results[0].error.message == refusal.message
    )


def _keep_known_error(snapshot: Snapshot, stored: StoredJob | None) -> Snapshot:
    """GetStatus has no media description: an Error it shows again keeps the error text already stored (the
    notify's description) unless it is a new attempt or the answer names a reason of its own."""
    known = (stored or {}).get("error")
    if (
        snapshot.status is not Status.ERROR
        or (stored or {}).get("status") != Status.ERROR.value
        or not isinstance(known, Mapping)
        or not known.get("message")
        or is_later(snapshot.started_at, (stored or {}).get("started_at"))
        or (snapshot.error and snapshot.error.message != NO_DESCRIPTION)
    ):
        return snapshot
    return replace(snapshot, error=JobError(str(known["message"]), values.text(known.get("code"))))


def _failure(message: str, media_ids: tuple[str, ...]) -> PollFailure:
    return PollFailure(ProviderError(PROVIDER, message, job_ids=media_ids), media_ids)


SPEC = ProviderSpec(
    id=PROVIDER,
    default_api_url="https://manage.encoding.com/",
    secret_keys=("user_id", "user_key"),
    adapter=EncodingComAdapter,
    status_words=STATUS_WORDS,
    is_job_id=is_media_id,
    webhook_path="/webhooks/encoding-com",
)
