"""`transcode-status events ...`: tail the topic, replay a job's last event, send a test event."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import click

from transcode_core.model import STALLED_EVENT, Status, is_terminal
from transcode_core.notify import build_event, sns_message
from transcode_core.providers import PROVIDER_IDS
from transcode_core.store import JobStore, public_item
from transcode_core.times import iso_z, utc_now
from transcode_status_cli import render
from transcode_status_cli.errors import NOT_FOUND, CliError
from transcode_status_cli.options import PROVIDER, examples, target_options
from transcode_status_cli.target import Target

EVENT_NAMES = ("job.completed", "job.failed", "job.canceled", "job.stalled", "job.test")
TEST_EVENT = "job.test"
TERMINAL_CHOICE = click.Choice([Status.COMPLETE.value, Status.ERROR.value, Status.CANCELED.value])


@click.group()
def events() -> None:
    """The job-events topic: tail, replay, test."""


# --- tail ------------------------------------------------------------------------------------------------
@events.command(
    "tail",
    epilog=examples("events tail --stack transcode-status", "events tail --event job.failed --max-messages 1"),
)
@target_options
@click.option("--provider", "providers", multiple=True, type=PROVIDER, help="Only this provider (repeatable).")
@click.option("--event", "names", multiple=True, type=click.Choice(EVENT_NAMES), help="Only this event (repeatable).")
@click.option("--max-messages", default=0, type=click.IntRange(0), help="Stop after this many events (0: no limit).")
@click.option("--timeout", default=0.0, type=click.FloatRange(0), help="Stop after this many seconds (0: no limit).")
def tail_events(
    target: Target,
    as_json: bool,
    providers: tuple[str, ...],
    names: tuple[str, ...],
    max_messages: int,
    timeout: float,
) -> None:
    """Follow the topic through a temporary SQS queue; the queue and its subscription are removed on exit,
    Ctrl-C included. Filters become the subscription's filter policy."""
    sns, sqs = target.client("sns"), target.client("sqs")
    topic = target.topic
    sns.get_topic_attributes(TopicArn=topic)  # a missing topic fails here, before anything is created
    filter_policy = {
        **({"provider": list(providers)} if providers else {}),
        **({"event": list(names)} if names else {}),
    }
    received = 0
    deadline = time.monotonic() + timeout if timeout else None
    with _temporary_subscription(sns, sqs, topic, filter_policy) as queue_url:
        click.echo(f"listening to {topic.rsplit(':', 1)[-1]} (Ctrl-C to stop)", err=True)
        try:
            while deadline is None or time.monotonic() < deadline:
                wait = 20 if deadline is None else max(0, min(20, int(deadline - time.monotonic())))
                answer = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, MessageAttributeNames=["All"]
                )
                for message in answer.get("Messages", []):
                    envelope = json.loads(message["Body"])
                    event = json.loads(envelope["Message"])
                    attributes = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
                    if as_json:
                        render.print_json(event)
                    else:
                        click.echo(render.event_line(event, attributes))
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    received += 1
                    if max_messages and received >= max_messages:
                        return
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a tail ends; the subscription is removed below


@contextlib.contextmanager
def _temporary_subscription(sns: Any, sqs: Any, topic: str, filter_policy: Mapping[str, Any]) -> Iterator[str]:
    """A queue of our own subscribed to the topic; both are removed on the way out, whatever ends the tail
    (SIGTERM is treated as Ctrl-C, and a second Ctrl-C does not interrupt the clean-up)."""
    queue_url = subscription = None
    main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        queue_url = sqs.create_queue(
            QueueName=f"transcode-status-tail-{uuid.uuid4().hex[:12]}", Attributes={"MessageRetentionPeriod": "3600"}
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        subscription = sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        yield queue_url
    finally:
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            if subscription:
                with contextlib.suppress(Exception):
                    sns.unsubscribe(SubscriptionArn=subscription)
            if queue_url:
                with contextlib.suppress(Exception):
                    sqs.delete_queue(QueueUrl=queue_url)
            click.echo("temporary queue and subscription removed", err=True)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous_int)
                signal.signal(signal.SIGTERM, previous_term)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# --- replay ----------------------------------------------------------------------------------------------
def last_event(store: JobStore, provider: str, job_id: str) -> dict[str, Any]:
    """The job's last event, as it was built: from the outbox when it is still pending, otherwise rebuilt
    from the item and its history (same event_id, occurred_at and previous_status; `job` as it is now).
    Covers the current attempt's terminal or stalled event."""
    item = store.get(provider, job_id)
    if item is None:
        raise CliError(f"{provider} job {job_id} is not tracked", NOT_FOUND)
    pending = [json.loads(message) for message in (item.get("outbox") or {}).values()]
    if pending:
        return max(pending, key=lambda event: (event["attempt"], event["occurred_at"]))
    attempt, status = item.get("attempt", 1), item.get("status", "")
    history = [
        entry
        for entry in sorted(store.history(provider, job_id), key=lambda entry: entry.get("version", 0))
        if entry.get("attempt", 1) == attempt
    ]
    moment = previous = None
    stalled = False
    if is_terminal(status):
        for before, entry in zip([None, *history], history, strict=False):
            if entry.get("status") == status:
                moment, previous = entry["sk"].split("#")[1], (before or {}).get("status")
                break
    elif item.get("stalled_attempt") == attempt:
        # The stall's write repeats the state it found: the last poll entry identical to the one before it.
        for before, entry in zip(history, history[1:], strict=False):
            same = all(entry.get(key) == before.get(key) for key in ("status", "provider_status", "progress"))
            if same and entry.get("source") == "poll":
                moment, previous, stalled = entry["sk"].split("#")[1], status, True
    if moment is None:
        raise CliError(
            f"{provider} job {job_id} has published no event in its current attempt ({attempt}, {status})", NOT_FOUND
        )
    return build_event(public_item(item), previous, moment, stalled=stalled)


@events.command("replay", epilog=examples("events replay encoding_com 31000001"))
@target_options
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@click.argument("job_id")
def replay_event(target: Target, as_json: bool, provider: str, job_id: str) -> None:
    """Publish the job's last event again: same event_id, with `replay: true` (and attribute replay=true)."""
    event = {**last_event(target.store, provider, job_id), "replay": True, "replayed_at": iso_z(utc_now())}
    message_id = _publish(target, event, {"replay": "true"})
    if as_json:
        render.print_json({"message_id": message_id, "event": event})
        return
    click.echo(f"replayed {event['event']} {event['event_id']} (message {message_id})")


# --- test ------------------------------------------------------------------------------------------------
@events.command("test", epilog=examples("events test --provider xvid --status ERROR"))
@target_options
@click.option("--provider", default=PROVIDER_IDS[0], show_default=True, type=PROVIDER, help="The event's provider.")
@click.option("--status", default="COMPLETE", show_default=True, type=TERMINAL_CHOICE, help="The event's status.")
def test_event(target: Target, as_json: bool, provider: str, status: str) -> None:
    """Publish a test event (event job.test, `test: true`, attribute test=true) that names no real job:
    status filters let it through, a filter on `event` tells it apart."""
    now = utc_now()
    job = {
        "provider": provider,
        "job_id": f"test-{now:%Y%m%dT%H%M%S}Z",
        "status": status,
        "provider_status": "test",
        "attempt": 1,
        "version": 1,
        "created_at": iso_z(now),
        "finished_at": iso_z(now),
        "updated_at": iso_z(now),
    }
    event = {**build_event(job, Status.PROCESSING.value, iso_z(now)), "event": TEST_EVENT, "test": True}
    message_id = _publish(target, event, {"test": "true"})
    if as_json:
        render.print_json({"message_id": message_id, "event": event})
        return
    click.echo(f"published test event {event['event_id']} (event={TEST_EVENT}, message {message_id})")


def _publish(target: Target, event: Mapping[str, Any], extra_attributes: Mapping[str, str]) -> str:
    request = {"TopicArn": target.topic, **sns_message(event)}
    for name, value in extra_attributes.items():
        request["MessageAttributes"][name] = {"DataType": "String", "StringValue": value}
    return target.client("sns").publish(**request)["MessageId"]


__all__ = ["events", "last_event", "STALLED_EVENT"]
