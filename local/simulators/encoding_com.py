"""encoding.com simulator: `POST /` with form field `xml` or `json`, as manage.encoding.com answers it.

Actions: GetStatus (basic for one media, extended for a comma list) and GetMediaList. Answers come in the
request's format; errors come with HTTP 200 as `<response><errors><error>..</error></errors></response>`. The
JSON answers have the real API's quirk: one `job`, `format` or `destination` is an object, not a list.

    sim = EncodingComSimulator(user_id="u", user_key="k").start()
    media_id = sim.add_job(source="ftp://user:pass@ftp.example.com/in.mov", formats=2)
    sim.advance(media_id, steps=3)          # New -> Downloading -> Ready to process -> Waiting for encoder
    sim.add_job(fail=True)                  # ends in Error, destination "Error (Access denied)"
    sim.tick()                              # every unfinished media one step
    sim.step_seconds = 300                  # time_left: 300 s for each step still to take
    body, content_type = sim.notification(media_id, kind="xml")   # what encoding.com POSTs to notify URLs

What the documents leave open is a setting (defaults: the seed's example and PROVIDERS.md), and `VARIANTS`
names the combinations the tests run every flow against (`EncodingComSimulator(variant=...)`):
- `unknown_in_batch` (below) and `refusal_names_id`: whether a batch refused for an unknown id names it;
- `errors_as_list`: the JSON API's `errors.error` as a list even for one error (PROVIDERS.md's
  `{"errors": {"error": [...]}}`) instead of one string (the quirk of one element);
- `unset_dates`: "zero" (`0000-00-00 00:00:00`, PROVIDERS.md), "empty" or "absent";
- `progress_format`: "decimal" ("50.0") or "integer" ("50"), both percentages sent as text;
- `status_case`: "title" (the document's words), "lower" or "upper";
- `sparse`: the answer without the fields the document marks optional or that a basic answer lacks
  (`prevstatus`, `time_left*`, `progress_current`, `filesize`, `processor`, `convertedsize`, `file_size`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import count
from typing import Any
from urllib.parse import urlencode
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeElementTree

from local.simulators.base import Lifecycle, SimRequest, SimResponse, Simulator, json_response

WRONG_CREDENTIALS = "Wrong user id or key!"
MEDIA_NOT_FOUND = "Media ID is not found"
ZERO_DATE = "0000-00-00 00:00:00"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

PROCESSING_STEPS = 3  # Processing repeats so that progress can grow between polls
LIFECYCLE = [
    "New",
    "Downloading",
    "Ready to process",
    "Waiting for encoder",
    *["Processing"] * PROCESSING_STEPS,
    "Saving",
    "Finished",
]
FAILS_ON_UPLOAD = [*LIFECYCLE[:-1], "Error"]  # the destination refuses the file
FAILS_ON_DOWNLOAD = ["New", "Downloading", "Error"]  # the source cannot be read; formats stay New
UPLOAD_ERROR = "Error (Access denied)"
UPLOAD_DESCRIPTION = "Upload error: Access denied"
DOWNLOAD_ERROR = "Download error:  The requested URL returned error: 403 Forbidden"

VARIANTS: dict[str, dict[str, Any]] = {
    "example": {},
    "refuse-naming-the-id": {"unknown_in_batch": "refuse", "refusal_names_id": True},
    "refuse-naming-no-id": {"unknown_in_batch": "refuse", "refusal_names_id": False, "errors_as_list": True},
    "omit-unknown-empty-dates": {"unknown_in_batch": "omit", "unset_dates": "empty", "progress_format": "integer"},
    "lower-case-absent-dates": {"status_case": "lower", "unset_dates": "absent", "sparse": True},
    "upper-case-words": {"status_case": "upper", "errors_as_list": True},
}
SPARSE_FIELDS = frozenset(
    {"prevstatus", "time_left", "time_left_current", "progress_current", "filesize", "processor"}
    | {"convertedsize", "file_size"}
)

Pairs = list[tuple[str, Any]]  # an ordered multi-map (like XML children); values are str or nested Pairs


@dataclass
class SimFormat:
    format_id: str
    destinations: list[str]
    output: str = "mp4"


@dataclass
class SimMedia:
    media_id: str
    source: str
    notify_url: str
    formats: list[SimFormat]
    lifecycle: Lifecycle
    failure: str | None  # None, "upload" or "download"
    created: datetime
    started: datetime | None = None
    downloaded: datetime | None = None
    processing_started: datetime | None = None
    finished: datetime | None = None
    prev_status: str = ""
    override: str | None = None  # a word set by set_status(), shown until the next advance
    progress_override: str | None = None
    earliest_start: datetime | None = None  # after a restart, the next start is later than the last one

    @property
    def status(self) -> str:
        return self.override or self.lifecycle.status


class EncodingComSimulator(Simulator):
    def __init__(
        self, user_id: str = "u", user_key: str = "k", *, provider_timezone: tzinfo = UTC, variant: str = "example"
    ) -> None:
        super().__init__()
        self.user_id = user_id
        self.user_key = user_key
        self.timezone = provider_timezone  # the zone its dates are written in (they carry no offset)
        # What the media's `time_left` counts per step still to take (seconds; the unit is unconfirmed): the
        # simulator has no clock of its own, so a test that times its steps sets this to match.
        self.step_seconds = 60.0
        self.media: dict[str, SimMedia] = {}
        self.variant = variant
        self._apply_variant()
        self._ids = count(31_000_001)
        self._format_ids = count(164_000_001)
        self._last_stamp = datetime(2000, 1, 1, tzinfo=UTC)

    def _apply_variant(self) -> None:
        # How extended GetStatus answers a media id it does not know: "job_error" (a <job> holding <errors>),
        # "omit" (no <job> for it) or "refuse" (the whole call answers <errors>). Unconfirmed: all three are tested.
        self.unknown_in_batch = "job_error"
        self.refusal_names_id = True
        # GetStatus's documented answer has no <description>; the notify carries it. True adds one (not documented).
        self.status_description = False
        self.errors_as_list = False
        self.unset_dates = "zero"
        self.progress_format = "decimal"
        self.status_case = "title"
        self.sparse = False
        for name, value in VARIANTS[self.variant].items():
            setattr(self, name, value)

    # --- test controls ------------------------------------------------------------------------------
    def add_job(
        self,
        media_id: str | int | None = None,
        *,
        source: str = "https://media.example.com/in/source.mov",
        formats: int = 1,
        fail: bool | str = False,
        destinations: list[str] | None = None,
        notify_url: str = "https://hooks.example.com/webhooks/encoding-com?token=test-token",
    ) -> str:
        """A new media in status New; `fail=True` (or "upload") ends in Error when saving, "download" when
        downloading. `destinations` are given to every format (default: one S3 URL per format)."""
        failure = _failure_mode(fail)
        with self.lock:
            key = str(media_id if media_id is not None else next(self._ids))
            sim_formats = []
            for _ in range(formats):
                format_id = str(next(self._format_ids))
                urls = destinations or [f"s3://transcode-out/{key}/{format_id}.mp4"]
                sim_formats.append(SimFormat(format_id, list(urls)))
            self.media[key] = SimMedia(
                media_id=key,
                source=source,
                notify_url=notify_url,
                formats=sim_formats,
                lifecycle=Lifecycle(_steps(failure)),
                failure=failure,
                created=self._stamp(),
            )
            return key

    def reset(self) -> None:
        """Forgets every media, request and injected fault (one running simulator can serve many tests)."""
        with self.lock:
            self.media.clear()
            self.requests.clear()
            self.fail_next.clear()
            self.step_seconds = 60.0
            self._apply_variant()

    def advance(self, media_id: str | int, steps: int = 1) -> str:
        """Moves the media `steps` along its lifecycle; returns its status word."""
        with self.lock:
            media = self.media[str(media_id)]
            for _ in range(steps):
                self._step(media, self._stamp())
            return media.status

    def tick(self) -> None:
        """Every media that has not ended moves one step."""
        with self.lock:
            now = self._stamp()
            for media in self.media.values():
                if not media.lifecycle.done:
                    self._step(media, now)

    def set_status(self, media_id: str | int, word: str | None, *, progress: str | None = None) -> None:
        """Shows any status word (e.g. one the adapter does not know) until the next advance; None clears it."""
        with self.lock:
            media = self.media[str(media_id)]
            media.override = word
            media.progress_override = progress

    def restart(self, media_id: str | int, *, fail: bool | str = False) -> None:
        """RestartMedia: the media runs again from New; its next start time is later than the last one."""
        with self.lock:
            media = self.media[str(media_id)]
            media.failure = _failure_mode(fail)
            media.lifecycle.restart(_steps(media.failure))
            media.earliest_start = media.started
            media.started = media.downloaded = media.processing_started = media.finished = None
            media.override = media.progress_override = None

    def status_of(self, media_id: str | int) -> str:
        with self.lock:
            return self.media[str(media_id)].status

    def notification(self, media_id: str | int, *, kind: str = "xml") -> tuple[str, str]:
        """The body encoding.com POSTs to the media's notify URL and its content type. `kind`: "xml" (form field
        xml, the default), "json" (form field json), "raw-xml" or "raw-json" (notify_body_format=raw)."""
        with self.lock:
            pairs = self._shaped(self._notification_pairs(self.media[str(media_id)]))
        if kind in ("xml", "raw-xml"):
            document = _xml_document("result", pairs)
            if kind == "raw-xml":
                return document, "application/xml"
            return urlencode({"xml": document}), "application/x-www-form-urlencoded"
        document = json.dumps({"result": _json_object(pairs)})
        if kind == "raw-json":
            return document, "application/json"
        if kind == "json":
            return urlencode({"json": document}), "application/x-www-form-urlencoded"
        raise ValueError(f"unknown notification kind {kind!r}")

    # --- the API ------------------------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:
        if request.method != "POST" or request.path != "/":
            return SimResponse(404, "Not Found", {"Content-Type": "text/html"})
        form = request.form()
        api_format = "json" if "json" in form else "xml"
        query = _read_query(form)
        if query is None:
            return self._answer(api_format, [("errors", [("error", "Wrong query format")])])
        if str(query.get("userid", "")) != self.user_id or str(query.get("userkey", "")) != self.user_key:
            return self._answer(api_format, [("errors", [("error", WRONG_CREDENTIALS)])])
        action = str(query.get("action") or "")
        if action == "GetStatus":
            return self._answer(api_format, self._get_status(query))
        if action == "GetMediaList":
            return self._answer(api_format, self._media_list())
        return self._answer(api_format, [("errors", [("error", f"Unknown action: {action[:40]}")])])

    def _answer(self, api_format: str, pairs: Pairs) -> SimResponse:
        if api_format == "json":
            document = _json_object(pairs)
            errors = document.get("errors")
            if self.errors_as_list and isinstance(errors, dict) and not isinstance(errors.get("error"), list):
                errors["error"] = [errors["error"]]
            return json_response({"response": document})
        return SimResponse(200, _xml_document("response", pairs), {"Content-Type": "application/xml"})

    def _get_status(self, query: dict[str, Any]) -> Pairs:
        media_ids = [part.strip() for part in str(query.get("mediaid") or "").split(",") if part.strip()]
        if not media_ids:
            return [("errors", [("error", "Media ID is required")])]
        if str(query.get("extended", "")).lower() != "yes":
            media = self.media.get(media_ids[0])
            if media is None:
                return [("errors", [("error", MEDIA_NOT_FOUND)])]
            return self._media_pairs(media, extended=False)
        jobs: Pairs = []
        unknown = [media_id for media_id in media_ids if media_id not in self.media]
        if unknown and self.unknown_in_batch == "refuse":
            named = f"{MEDIA_NOT_FOUND}: {unknown[0]}" if self.refusal_names_id else MEDIA_NOT_FOUND
            return [("errors", [("error", named)])]
        for media_id in media_ids:
            media = self.media.get(media_id)
            if media is not None:
                jobs.append(("job", self._media_pairs(media, extended=True)))
            elif self.unknown_in_batch == "job_error":
                jobs.append(("job", [("id", media_id), ("errors", [("error", MEDIA_NOT_FOUND)])]))
        return jobs

    def _media_list(self) -> Pairs:
        return [
            (
                "media",
                [
                    ("mediafile", media.source),
                    ("mediaid", media.media_id),
                    ("mediastatus", media.status),
                    ("createdate", self._date(media.created)),
                    ("startdate", self._date(media.started)),
                    ("finishdate", self._date(media.finished)),
                ],
            )
            for media in self.media.values()
        ]

    # --- documents ----------------------------------------------------------------------------------
    def _media_pairs(self, media: SimMedia, *, extended: bool) -> Pairs:
        status = media.status
        pairs: Pairs = [
            ("id", media.media_id),
            ("userid", self.user_id),
            ("sourcefile", media.source),
            ("status", status),
            ("notifyurl", media.notify_url),
            ("created", self._date(media.created)),
            ("started", self._date(media.started)),
            ("finished", self._date(media.finished)),
            ("prevstatus", media.prev_status),
            ("downloaded", self._date(media.downloaded)),
        ]
        if extended:
            pairs += [("filesize", "73400320" if media.downloaded else "0"), ("processor", "AMAZON")]
        else:
            pairs += [("version", "1.0"), ("uploaded", self._date(media.finished if status == "Finished" else None))]
        if status == "Error" and self.status_description:
            pairs.append(("description", _description(media)))
        pairs += [("time_left", self._time_left(media)), ("progress", self._progress(media))]
        if not extended:
            pairs += [("time_left_current", "0"), ("progress_current", self._format_progress(media))]
        for fmt in media.formats:
            pairs.append(("format", self._format_pairs(media, fmt, extended=extended)))
        return self._shaped(pairs)

    def _shaped(self, pairs: Pairs) -> Pairs:
        """The pairs as the variant writes them: word case, unset dates, progress, optional fields."""
        shaped: Pairs = []
        for name, value in pairs:
            if isinstance(value, list):
                shaped.append((name, self._shaped(value)))
                continue
            if self.sparse and name in SPARSE_FIELDS:
                continue
            if name in ("status", "prevstatus") and value:
                value = {"title": value, "lower": value.lower(), "upper": value.upper()}[self.status_case]
            if value == ZERO_DATE and self.unset_dates != "zero":
                if self.unset_dates == "absent":
                    continue
                value = ""
            if name in ("progress", "progress_current") and self.progress_format == "integer":
                value = str(round(float(value)))
            shaped.append((name, value))
        return shaped

    def _format_pairs(self, media: SimMedia, fmt: SimFormat, *, extended: bool) -> Pairs:
        status = _format_status(media)
        produced = status in ("Saving", "Finished") or (status == "Error" and media.failure == "upload")
        pairs: Pairs = [
            ("id", fmt.format_id),
            ("status", status),
            ("created", self._date(media.created)),
            ("started", self._date(media.processing_started)),
            ("finished", self._date(media.finished if status in ("Finished", "Error") else None)),
        ]
        size = "10485760" if produced else "0"
        if extended:
            pairs += [("convertedsize", size), ("time_left", "0" if produced else "40")]
            pairs += [("progress", self._format_progress(media)), ("time_left_current", "0")]
            pairs += [("progress_current", self._format_progress(media)), ("file_size", size)]
        else:
            pairs += [("output", fmt.output)]
        for url in fmt.destinations:
            pairs += [("destination", url), ("destination_status", _destination_status(media))]
        return pairs

    def _notification_pairs(self, media: SimMedia) -> Pairs:
        pairs: Pairs = [("mediaid", media.media_id), ("source", media.source), ("status", media.status)]
        if media.status == "Error":
            pairs.append(("description", _description(media)))
        for fmt in media.formats:
            format_pairs: Pairs = [("output", fmt.output)]
            for url in fmt.destinations:
                format_pairs += [("destination", url), ("destination_status", _destination_status(media))]
            format_pairs.append(("status", _format_status(media)))
            pairs.append(("format", format_pairs))
        return pairs

    # --- lifecycle ----------------------------------------------------------------------------------
    def _step(self, media: SimMedia, now: datetime) -> None:
        previous = media.status
        media.override = media.progress_override = None
        if media.lifecycle.done:
            return
        current = media.lifecycle.advance()
        if media.started is None:
            earliest = media.earliest_start + timedelta(seconds=1) if media.earliest_start else now
            media.started = max(now, earliest)
        if previous == "Downloading" and current != "Error":
            media.downloaded = now
        if current == "Processing" and media.processing_started is None:
            media.processing_started = now
        if media.lifecycle.done:
            media.finished = now
        if current != previous:
            media.prev_status = previous

    def _progress(self, media: SimMedia) -> str:
        if media.progress_override is not None:
            return media.progress_override
        if media.status == "Finished":
            return "100"
        steps, index = media.lifecycle.steps, media.lifecycle.index
        if media.status == "Error":  # progress stops where the media failed
            index -= 1
        return f"{index / (len(steps) - 1) * 100:.1f}"

    def _time_left(self, media: SimMedia) -> str:
        """TotalTimeLeft in whole seconds: `step_seconds` for each step the media has yet to take."""
        steps_left = len(media.lifecycle.steps) - 1 - media.lifecycle.index
        return str(round(steps_left * self.step_seconds))

    def _format_progress(self, media: SimMedia) -> str:
        status = _format_status(media)
        if status in ("Saving", "Finished") or (status == "Error" and media.failure == "upload"):
            return "100"
        if status == "Processing":  # 25, 50, 75 over the Processing steps
            done = media.lifecycle.index - LIFECYCLE.index("Processing") + 1
            return f"{done / (PROCESSING_STEPS + 1) * 100:.1f}"
        return "0.0"

    def _stamp(self) -> datetime:
        self._last_stamp = max(datetime.now(UTC).replace(microsecond=0), self._last_stamp)
        return self._last_stamp

    def _date(self, moment: datetime | None) -> str:
        return moment.astimezone(self.timezone).strftime(DATE_FORMAT) if moment else ZERO_DATE


def _failure_mode(fail: bool | str) -> str | None:
    return {False: None, True: "upload", "upload": "upload", "download": "download"}[fail]


def _steps(failure: str | None) -> list[str]:
    return {None: LIFECYCLE, "upload": FAILS_ON_UPLOAD, "download": FAILS_ON_DOWNLOAD}[failure]


def _description(media: SimMedia) -> str:
    return DOWNLOAD_ERROR if media.failure == "download" else UPLOAD_DESCRIPTION


def _format_status(media: SimMedia) -> str:
    status = media.status
    if status in ("New", "Downloading", "Ready to process"):
        return "New"
    if status == "Error":
        return "New" if media.failure == "download" else "Error"
    if status in ("Waiting for encoder", "Processing", "Saving", "Finished"):
        return status
    return "New"  # a word set by set_status() says nothing about the formats


def _destination_status(media: SimMedia) -> str:
    if media.status == "Finished":
        return "Saved"
    if media.status == "Error" and media.failure == "upload":
        return UPLOAD_ERROR
    return "Open"


# --- wire formats ---------------------------------------------------------------------------------------
def _read_query(form: dict[str, str]) -> dict[str, Any] | None:
    """The request's <query> (or {"query": ...}) as plain data; None when it cannot be read."""
    if "json" in form:
        try:
            document = json.loads(form["json"])
        except ValueError:
            return None
        query = document.get("query") if isinstance(document, dict) else None
        return query if isinstance(query, dict) else None
    if "xml" in form:
        try:
            root = SafeElementTree.fromstring(form["xml"].strip())
        except (SafeElementTree.ParseError, ValueError):  # defusedxml's refusals are ValueErrors
            return None
        if root.tag != "query":
            return None
        return {child.tag: (child.text or "").strip() for child in root}
    return None


def _xml_document(tag: str, pairs: Pairs) -> str:
    return '<?xml version="1.0"?>\n' + tostring(_xml_element(tag, pairs), encoding="unicode")


def _xml_element(tag: str, pairs: Pairs) -> Element:
    element = Element(tag)
    for name, value in pairs:
        if isinstance(value, list):
            element.append(_xml_element(name, value))
        else:
            SubElement(element, name).text = value
    return element


def _json_object(pairs: Pairs) -> dict[str, Any]:
    """The JSON API's shape: repeated names become lists, a single one stays an object or string (the quirk)."""
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(_json_object(value) if isinstance(value, list) else value)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}
