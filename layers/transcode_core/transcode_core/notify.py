"""The job event (CONTRACT "Events on the topic"): its JSON, its email text, its SNS attributes, and its two
targets: the topic (`Notifier`) and, where the deployment names one, an EventBridge bus (`EventBus`). Events
are built when the state change is written (they travel in the job item's outbox), so a retried publish
sends exactly the same message with the same event_id, to either target."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from transcode_core.chunks import SizeLimitedChunks
from transcode_core.estimate import BASIS_TEXT
from transcode_core.observability import logger
from transcode_core.status import EVENT_NAMES, STALLED, STALLED_EVENT, Status
from transcode_core.times import to_datetime

SCHEMA = "transcode-status.job-event/1"
SUBJECT_LIMIT = 100
# An SNS message holds 256 KiB (JSON and email text together), and the event also waits in the job's item
# (400 KB): a job with outputs beyond this is published without them, with `outputs_omitted` saying so.
MAX_JOB_JSON_BYTES = 100_000
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # Unicode categories e-mail text shows escaped
# SNS PublishBatch: at most 10 entries, and 256 KiB of messages together.
PUBLISH_BATCH_LIMIT = 10
PUBLISH_BATCH_BYTES = 256 * 1024 - 4096
# EventBridge PutEvents: at most 10 entries, and 256 KB of entries together (measured as AWS measures them).
PUT_EVENTS_LIMIT = 10
PUT_EVENTS_BYTES = 256 * 1024
PUT_EVENTS_TIME_BYTES = 14  # what an entry's Time counts towards the limit
# The bus entry's detail-type, in the manner of MediaConvert's "MediaConvert Job State Change".
DETAIL_TYPE_STATE_CHANGE = "Transcode Job State Change"
DETAIL_TYPE_STALLED = "Transcode Job Stalled"
# Which delivery an outbox entry records (and metrics count) per target.
TOPIC = "topic"
BUS = "bus"


def event_id(provider: str, job_id: str, attempt: int, status_or_stalled: str) -> str:
    return f"{provider}#{job_id}#{attempt}#{status_or_stalled}"


def build_event(
    job: Mapping[str, Any], previous_status: str | None, occurred_at: str, *, stalled: bool = False
) -> dict[str, Any]:
    """The CONTRACT event for a job (its public item, after the change) entering a terminal state, or
    having stalled."""
    status = Status(job["status"])
    job, omitted = _fitting(job)
    event = {
        "schema": SCHEMA,
        "event_id": event_id(job["provider"], job["job_id"], job["attempt"], STALLED if stalled else status.value),
        "event": STALLED_EVENT if stalled else EVENT_NAMES[status],
        "provider": job["provider"],
        "job_id": job["job_id"],
        "status": status.value,
        "previous_status": previous_status,
        "provider_status": job.get("provider_status"),
        "attempt": job["attempt"],
        "occurred_at": occurred_at,
        "job": job,
    }
    if omitted:
        event["outputs_omitted"] = omitted
    return event


def _fitting(job: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The job as it fits in a message: whole, or without its outputs (and how many were left out)."""
    whole = dict(job)
    if len(json.dumps(whole, default=str)) <= MAX_JOB_JSON_BYTES:
        return whole, 0
    outputs = whole.pop("outputs", None) or []
    return whole, len(outputs)


def subject(event: Mapping[str, Any]) -> str:
    label = STALLED if event["event"] == STALLED_EVENT else event["status"]
    text = f"[{label}] {event['provider']} job {event['job_id']}"
    # SNS subjects: printable ASCII, no line breaks, at most 100 characters.
    text = re.sub(r"[^\x20-\x7e]", "?", text)
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def email_text(event: Mapping[str, Any]) -> str:
    job = event["job"]
    what = {
        "job.completed": "finished",
        "job.failed": "failed",
        "job.canceled": "was canceled",
        "job.stalled": f"has shown no change for a while (still {_shown(event['status'])})",
        "job.test": f"is a test event ({_shown(event['status'])}); no real job",
    }[event["event"]]
    if event.get("replay"):
        what += " (sent again: a replay)"
    lines = [
        f"{_shown(event['provider'])} job {_shown(event['job_id'])} {what}.",
        f"Status: {_shown(event['status'])} (provider says: {_shown(event.get('provider_status') or 'n/a')}), "
        f"attempt {_shown(event['attempt'])}",
        f"When: {_shown(event['occurred_at'])}",
    ]
    if job.get("source_url"):
        lines.append(f"Source: {_shown(job['source_url'])}")
    if job.get("estimated_finish_at"):  # only an active job has one: a stall says when it was due
        basis = BASIS_TEXT.get(job.get("estimate_basis"), "estimated")
        lines.append(f"Expected to finish: {_shown(job['estimated_finish_at'])} ({basis})")
    error = job.get("error")
    if error and event["status"] == Status.ERROR.value:
        code = f" (code {_shown(error['code'])})" if error.get("code") else ""
        lines.append(f"Error: {_shown(error.get('message', 'unknown'))}{code}")
    for output in job.get("outputs") or []:
        status = output.get("provider_status") or output.get("status") or ""
        lines.append(f"Output {_shown(output.get('id'))}: {_shown(status)}")
        for destination in output.get("destinations") or []:
            failure = f" - {_shown(destination['error'])}" if destination.get("error") else ""
            where = f"{_shown(destination.get('url'))} {_shown(destination.get('status') or '')}"
            lines.append(f"  -> {where}{failure}".rstrip())
    lines.append(f"Event id: {_shown(event['event_id'])}")
    return "\n".join(lines)


def _shown(value: object) -> str:
    """`value` as e-mail text on one line: control, format (e.g. bidi override) and separator characters
    escaped, so a value a provider or a caller chose cannot forge lines (a "Status:" line) or hide text."""
    return "".join(
        character.encode("unicode_escape").decode("ascii") if unicodedata.category(character) in _HIDDEN else character
        for character in str(value)
    )


def event_json(event: Mapping[str, Any]) -> str:
    """The event as every machine reads it: the topic's `default` message and the bus entry's `detail`."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


def sns_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """One message's fields: JSON for every machine protocol, readable text for email."""
    body = event_json(event)
    return {
        "MessageStructure": "json",
        "Message": json.dumps({"default": body, "email": email_text(event)}),
        "Subject": subject(event),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": str(event[name])} for name in ("provider", "status", "event")
        },
    }


def _size(message: Mapping[str, Any]) -> int:
    attributes = sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"])
        for name, value in message["MessageAttributes"].items()
    )
    return len(message["Message"].encode()) + len(message["Subject"]) + attributes


Batches = list[list[tuple[Mapping[str, Any], dict[str, Any]]]]


def batched(
    events: Sequence[Mapping[str, Any]],
    build: Callable[[Mapping[str, Any]], dict[str, Any]],
    size_of: Callable[[dict[str, Any]], int],
    limit: int,
    max_bytes: int,
) -> Batches:
    """(event, what is sent for it) grouped for a call that takes at most `limit` entries of `max_bytes`."""
    batches: Batches = []
    chunks = SizeLimitedChunks(limit, max_bytes)
    for event in events:
        sent = build(event)
        if chunks.cut_before(size_of(sent)) or not batches:
            batches.append([])
        batches[-1].append((event, sent))
    return batches


def publish_batches(events: Sequence[Mapping[str, Any]]) -> Batches:
    """Events grouped for PublishBatch: at most 10 a call and 256 KiB of messages together."""
    return batched(events, sns_message, _size, PUBLISH_BATCH_LIMIT, PUBLISH_BATCH_BYTES)


class Notifier:
    """The topic target."""

    target = TOPIC

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self.client = client or boto3.client("sns")

    def publish(self, events: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
        """Publishes events, 10 a call (SNS PublishBatch). Returns (published, failed) event ids: a topic
        that cannot be reached fails the call's events, SNS may also refuse single entries."""
        published: list[str] = []
        failed: list[str] = []
        for batch in publish_batches(events):
            ids = [event["event_id"] for event, _ in batch]
            try:
                answer = self.client.publish_batch(
                    TopicArn=self.topic_arn,
                    PublishBatchRequestEntries=[
                        {"Id": str(index), **message} for index, (_, message) in enumerate(batch)
                    ],
                )
            except (ClientError, BotoCoreError) as exc:
                code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
                logger.error(
                    "publishing events failed; they stay in the outbox", extra={"error": code, "event_ids": ids}
                )
                failed.extend(ids)
                continue
            published.extend(ids[int(entry["Id"])] for entry in answer.get("Successful", []))
            for entry in answer.get("Failed", []):
                logger.error(
                    "an event was refused; it stays in the outbox",
                    extra={
                        "event_id": ids[int(entry["Id"])],
                        "error": entry.get("Code"),
                        "reason": entry.get("Message"),
                    },
                )
                failed.append(ids[int(entry["Id"])])
        return published, failed


def bus_entry(event: Mapping[str, Any], bus_name: str, source: str) -> dict[str, Any]:
    """One PutEvents entry: `detail` is exactly the topic's JSON (same event_id), `time` when it occurred.
    No resources: rules filter on the detail (`detail.provider`, `detail.status`, ...)."""
    entry: dict[str, Any] = {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": DETAIL_TYPE_STALLED if event["event"] == STALLED_EVENT else DETAIL_TYPE_STATE_CHANGE,
        "Detail": event_json(event),
        "Resources": [],
    }
    occurred = to_datetime(event.get("occurred_at"))
    if occurred is not None:
        entry["Time"] = occurred
    return entry


def _entry_size(entry: Mapping[str, Any]) -> int:
    size = PUT_EVENTS_TIME_BYTES if "Time" in entry else 0
    size += sum(len(entry[name].encode()) for name in ("Source", "DetailType", "Detail"))
    return size + sum(len(resource.encode()) for resource in entry["Resources"])


def put_events_batches(events: Sequence[Mapping[str, Any]], bus_name: str, source: str) -> Batches:
    """Events grouped for PutEvents: at most 10 a call and 256 KB of entries together."""
    return batched(
        events, lambda event: bus_entry(event, bus_name, source), _entry_size, PUT_EVENTS_LIMIT, PUT_EVENTS_BYTES
    )


class EventBus:
    """The EventBridge target (EVENT_BUS_NAME): the same events as the topic, 10 per PutEvents call."""

    target = BUS

    def __init__(self, bus_name: str, source: str, client: Any) -> None:
        self.bus_name = bus_name
        self.source = source
        self.client = client

    def publish(self, events: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
        """Puts events on the bus. Returns (published, failed) event ids: a bus that cannot be reached fails
        the call's events; EventBridge may also refuse single entries (`FailedEntryCount`, the entry's
        `ErrorCode`): those are not delivered, the others are."""
        published: list[str] = []
        failed: list[str] = []
        for batch in put_events_batches(events, self.bus_name, self.source):
            ids = [event["event_id"] for event, _ in batch]
            try:
                answer = self.client.put_events(Entries=[entry for _, entry in batch])
            except (ClientError, BotoCoreError) as exc:
                code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
                logger.error(
                    "putting events on the bus failed; they stay in the outbox",
                    extra={"error": code, "event_ids": ids},
                )
                failed.extend(ids)
                continue
            # Entries answer in the order of the request; one with an ErrorCode was not put on the bus.
            for event_id, entry in zip(ids, answer.get("Entries", []), strict=False):
                if entry.get("ErrorCode"):
                    logger.error(
                        "the bus refused an event; it stays in the outbox",
                        extra={"event_id": event_id, "error": entry["ErrorCode"], "reason": entry.get("ErrorMessage")},
                    )
                    failed.append(event_id)
                elif entry.get("EventId"):
                    published.append(event_id)
                else:
                    failed.append(event_id)
            answered = len(answer.get("Entries", []))
            if answered < len(ids):  # an answer without an entry for each event: those are not known to be put
                failed.extend(ids[answered:])
        return published, failed
