"""Fan-out: a poll of more active jobs than one invocation applies in its time hands its changes to the
provider's SQS queue, in messages of FANOUT_BATCH_SIZE jobs, and the same function applies them (SQS event
source, partial batch responses; a message that keeps failing goes to the dead-letter queue).

The poll still makes the provider requests (their count does not grow with invocations): what is fanned
out is the work that grows with changed jobs, i.e. the writes, publishes and clears. The exception is a
provider read one request a job (TransparentEdge's order details): its poll sends the jobs to read instead
(`read` messages, each job id with its listing entry) and the consumer reads and applies them, each read
failing alone; a message with a failed read comes back. A message carries each
job's snapshot with the version (and `updated_at`) the poll decided against; the consumer applies it only
while the job's state is still the one decided against, so a late or repeated message never moves a job
backwards (the next poll reads it again instead). The outbox's bookkeeping (a run claiming, giving back or
clearing an event, as the poll itself does with the events it sweeps) raises the version but leaves the
state and its `updated_at` as they were: a change is still applied in the same period after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from transcode_core.chunks import SizeLimitedChunks
from transcode_core.errors import DependencyUnavailable
from transcode_core.model import Destination, JobError, Output, Snapshot
from transcode_core.status import Status

# An SQS message holds 256 KiB; a batch is cut earlier when its snapshots are large.
MESSAGE_BYTES = 240 * 1024
SCHEMA = "transcode-status.fanout/1"


def snapshot_to_dict(snapshot: Snapshot) -> dict[str, Any]:
    return asdict(snapshot)


def snapshot_from_dict(data: Mapping[str, Any]) -> Snapshot:
    outputs = tuple(
        Output(
            **{
                **output,
                "status": Status(output["status"]) if output.get("status") else None,
                "destinations": tuple(Destination(**destination) for destination in output.get("destinations", ())),
            }
        )
        for output in data.get("outputs", ())
    )
    error = JobError(**data["error"]) if data.get("error") else None
    return Snapshot(**{**data, "status": Status(data["status"]), "outputs": outputs, "error": error})


def messages(provider: str, entries: Sequence[tuple[Snapshot, Mapping[str, Any] | None]], batch_size: int) -> list[str]:
    """Message bodies for (snapshot, stored job it was decided against) pairs: at most `batch_size` jobs and
    MESSAGE_BYTES a message."""
    bodies: list[str] = []
    batch = FanOutBatch(provider, batch_size, bodies.append)
    for snapshot, stored in entries:
        batch.add(snapshot, stored)
    batch.flush()
    return bodies


class FanOutBatch:
    """Changed jobs made into messages as they are decided: a message goes to `enqueue` once it is full, so a
    poll holds at most one message's jobs however many change. Once a message cannot be queued
    (DependencyUnavailable) nothing more is sent: the jobs of that message and every later one are `unsent`,
    left for the next poll (the provider still shows them), and `error` says why."""

    def __init__(self, provider: str, batch_size: int, enqueue: Callable[[str], None]) -> None:
        self.provider = provider
        self.batch_size = batch_size
        self.enqueue = enqueue
        self.sent = 0
        self.unsent = 0
        self.error: DependencyUnavailable | None = None
        self._jobs: list[str] = []
        self._chunks = SizeLimitedChunks(batch_size, MESSAGE_BYTES)

    def add(self, snapshot: Snapshot, stored: Mapping[str, Any] | None) -> None:
        decided_against = {"version": stored.get("version"), "updated_at": stored.get("updated_at")} if stored else {}
        job = json.dumps({"snapshot": snapshot_to_dict(snapshot), **decided_against}, separators=(",", ":"))
        if self._chunks.cut_before(len(job) + 1):  # and its comma in the message's list
            self._send_waiting()
        if self.error:
            self.unsent += 1
            return
        self._jobs.append(job)

    def add_reads(self, jobs: Mapping[str, Mapping[str, Any]]) -> None:
        """Sends the jobs to read (id -> listing entry), at most `batch_size` and MESSAGE_BYTES a message."""
        chunk: dict[str, Any] = {}
        chunks = SizeLimitedChunks(self.batch_size, MESSAGE_BYTES)
        for job_id, entry in jobs.items():
            if chunks.cut_before(len(json.dumps({job_id: entry}, separators=(",", ":"), default=str))):
                self._send({"read": chunk}, len(chunk))
                chunk = {}
            chunk[job_id] = entry
        if chunk:
            self._send({"read": chunk}, len(chunk))

    def flush(self) -> None:
        """Sends the jobs waiting: a poll's last message."""
        self._send_waiting()
        self._chunks = SizeLimitedChunks(self.batch_size, MESSAGE_BYTES)

    def _send_waiting(self) -> None:
        jobs, self._jobs = self._jobs, []
        if jobs:
            self._send(f"[{','.join(jobs)}]", len(jobs))

    def _send(self, content: str | dict[str, Any], count: int) -> None:
        """Sends one message: `content` is the JSON text of its jobs, or its fields. Once one failed, none is."""
        if self.error:
            self.unsent += count
            return
        if isinstance(content, str):
            body = f'{{"schema":"{SCHEMA}","provider":{json.dumps(self.provider)},"jobs":{content}}}'
        else:
            body = json.dumps({"schema": SCHEMA, "provider": self.provider, **content}, separators=(",", ":"))
        try:
            self.enqueue(body)
        except DependencyUnavailable as exc:
            self.error = exc
            self.unsent += count
            return
        self.sent += count


@dataclass(frozen=True)
class FanOutMessage:
    # (snapshot, {version, updated_at} decided against) pairs
    jobs: list[tuple[Snapshot, dict[str, Any]]] = field(default_factory=list)
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)  # jobs to read: id -> listing entry


def read_message(body: str, provider: str) -> FanOutMessage:
    """A message's jobs: snapshots to apply, or jobs to read; ValueError when it is not one for this provider."""
    document = json.loads(body)
    if not isinstance(document, dict) or document.get("schema") != SCHEMA or document.get("provider") != provider:
        raise ValueError(f"not a {provider} fan-out message")
    reads = document.get("read", {})
    if not isinstance(reads, dict) or not all(isinstance(entry, dict) for entry in reads.values()):
        raise ValueError(f"a {provider} fan-out message whose jobs to read are not an object of objects")
    jobs = [
        (snapshot_from_dict(job["snapshot"]), {"version": job.get("version"), "updated_at": job.get("updated_at")})
        for job in document.get("jobs", [])
    ]
    return FanOutMessage(jobs, reads)


def still_current(item: Mapping[str, Any] | None, decided_against: Mapping[str, Any]) -> bool:
    """Whether a fanned-out change may be applied to the job as it now is: it is still at the version the poll
    decided against, or it moved on only through outbox bookkeeping (claims, releases and clears raise the
    version; every change of the job's state, and only those, also sets `updated_at`). The change is then
    decided again against the item as it now is and written on its version, so it never carries an event back
    that a clear removed."""
    version = decided_against.get("version")
    if item is None or version is None:
        return item is None and version is None
    if item.get("version") == version:
        return True
    updated_at = decided_against.get("updated_at")
    return updated_at is not None and item.get("updated_at") == updated_at and item["version"] > version


class FanOutQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs")

    def enqueue(self, body: str) -> None:
        """Sends one message, one call (each is up to 240 KiB, as much as one call takes)."""
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            raise DependencyUnavailable(f"fan-out queue send failed: {code}") from None
