"""`transcode-status events ...`: tail the topic (or the bus), replay a job's last event, send a test event."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import click

from transcode_core.notify import build_event, sns_message
from transcode_core.providers import PROVIDER_IDS
from transcode_core.status import STALLED_EVENT, Status, is_terminal
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
    """The job-events topic (and bus): tail, replay, test."""


# --- tail ------------------------------------------------------------------------------------------------
@events.command(
    "tail",
    epilog=examples(
        "events tail --stack transcode-status",
        "events tail --event job.failed --max-messages 1",
        "events tail --stack transcode-status --bus",
        "events tail --bus my-bus --source transcode-status",
    ),
)
@target_options
@click.option("--provider", "providers", multiple=True, type=PROVIDER, help="Only this provider (repeatable).")
@click.option("--event", "names", multiple=True, type=click.Choice(EVENT_NAMES), help="Only this event (repeatable).")
@click.option("--max-messages", default=0, type=click.IntRange(0), help="Stop after this many events (0: no limit).")
@click.option("--timeout", default=0.0, type=click.FloatRange(0), help="Stop after this many seconds (0: no limit).")
@click.option(
    "--bus",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[NAME]",
    help="Tail the EventBridge bus instead of the topic: this bus (name or ARN), or alone the --stack's bus.",
)
@click.option("--source", help="With --bus: the events' source (default: the stack's EventSource, transcode-status).")
def tail_events(
    target: Target,
    as_json: bool,
    providers: tuple[str, ...],
    names: tuple[str, ...],
    max_messages: int,
    timeout: float,
    bus: str | None,
    source: str | None,
) -> None:
    """Follow the topic through a temporary SQS queue; the queue and its subscription are removed on exit,
    Ctrl-C included. Filters become the subscription's filter policy. With --bus, follow the bus instead
    through a temporary rule (the filters become its event pattern) and queue, removed alike."""
    sqs = target.client("sqs")
    # the same fields on both: message attributes on the topic, the detail's on the bus
    filters = {**({"provider": list(providers)} if providers else {}), **({"event": list(names)} if names else {})}
    if bus is None:
        if source:
            raise click.UsageError("--source applies to --bus only")
        sns, topic = target.client("sns"), target.topic
        sns.get_topic_attributes(TopicArn=topic)  # a missing topic fails here, before anything is created
        with _temporary_subscription(sns, sqs, topic, filters) as queue_url:
            click.echo(f"listening to {topic.rsplit(':', 1)[-1]} (Ctrl-C to stop)", err=True)
            _print_events(sqs, queue_url, _topic_event, as_json, max_messages, timeout)
        return
    eventbridge, bus = target.client("events"), target.bus(bus)
    eventbridge.describe_event_bus(Name=bus)  # a missing bus fails here, before anything is created
    pattern = {"source": [target.event_source(source)], **({"detail": filters} if filters else {})}
    with _temporary_rule(eventbridge, sqs, bus, pattern) as queue_url:
        click.echo(
            f"listening to bus {bus.rsplit('/', 1)[-1]}, source {pattern['source'][0]} (Ctrl-C to stop)", err=True
        )
        _print_events(sqs, queue_url, _bus_event, as_json, max_messages, timeout)


def _topic_event(body: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The event and its message attributes from an SNS notification."""
    envelope = json.loads(body)
    attributes = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
    return json.loads(envelope["Message"]), attributes


def _bus_event(body: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The event from an EventBridge event: its detail (the same JSON as the topic's message)."""
    return json.loads(body)["detail"], {}


def _print_events(
    sqs: Any,
    queue_url: str,
    unwrap: Callable[[str], tuple[dict[str, Any], dict[str, str]]],
    as_json: bool,
    max_messages: int,
    timeout: float,
) -> None:
    """Prints what reaches the queue until Ctrl-C, `max_messages` or `timeout`."""
    received = 0
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while deadline is None or time.monotonic() < deadline:
            wait = 20 if deadline is None else max(0, min(20, int(deadline - time.monotonic())))
            answer = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, MessageAttributeNames=["All"]
            )
            for message in answer.get("Messages", []):
                event, attributes = unwrap(message["Body"])
                if as_json:
                    render.print_json(event)
                else:
                    click.echo(render.event_line(event, attributes))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                received += 1
                if max_messages and received >= max_messages:
                    return
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a tail ends; what it created is removed by the caller's context


@contextlib.contextmanager
def _removed_on_exit(what: str) -> Iterator[list[tuple[str, Callable[[], Any]]]]:
    """Yields a list for (name, removal) steps; they run in reverse on the way out, whatever ends the tail
    (SIGTERM is treated as Ctrl-C, and a second Ctrl-C does not interrupt the clean-up). A step that fails
    is named, so nothing is left behind unnoticed."""
    steps: list[tuple[str, Callable[[], Any]]] = []
    main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        yield steps
    finally:
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            failed = []
            for name, remove in reversed(steps):
                try:
                    remove()
                except Exception as exc:  # the other steps still run
                    failed.append(f"{name} ({type(exc).__name__})")
            if failed:
                click.echo(f"could not remove the temporary {', '.join(failed)}: remove it by hand", err=True)
            else:
                click.echo(f"temporary {what} removed", err=True)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous_int)
                signal.signal(signal.SIGTERM, previous_term)


def _temporary_queue(sqs: Any, steps: list[tuple[str, Callable[[], Any]]]) -> tuple[str, str]:
    """A queue of the tail's own (URL, ARN), deleted on the way out."""
    name = f"transcode-status-tail-{uuid.uuid4().hex[:12]}"
    queue_url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "3600"})["QueueUrl"]
    steps.append((f"queue {name}", lambda: sqs.delete_queue(QueueUrl=queue_url)))
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue_url, queue_arn


def _allow_sender(sqs: Any, queue_url: str, queue_arn: str, service: str, source_arn: str) -> None:
    """The queue policy that lets exactly that topic or rule send to the queue."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


@contextlib.contextmanager
def _temporary_subscription(sns: Any, sqs: Any, topic: str, filter_policy: Mapping[str, Any]) -> Iterator[str]:
    """A queue of our own subscribed to the topic; both are removed on the way out."""
    with _removed_on_exit("queue and subscription") as steps:
        queue_url, queue_arn = _temporary_queue(sqs, steps)
        _allow_sender(sqs, queue_url, queue_arn, "sns.amazonaws.com", topic)
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        subscription = sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        steps.append(("subscription", lambda: sns.unsubscribe(SubscriptionArn=subscription)))
        yield queue_url


@contextlib.contextmanager
def _temporary_rule(eventbridge: Any, sqs: Any, bus: str, pattern: Mapping[str, Any]) -> Iterator[str]:
    """A queue of our own that a rule on the bus sends the pattern's events to; the rule (its target first)
    and the queue are removed on the way out."""
    with _removed_on_exit("queue and rule") as steps:
        queue_url, queue_arn = _temporary_queue(sqs, steps)
        rule = queue_url.rstrip("/").rsplit("/", 1)[-1]  # the queue's name
        rule_arn = eventbridge.put_rule(
            Name=rule,
            EventBusName=bus,
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description="transcode-status events tail (temporary: removed when the tail ends)",
        )["RuleArn"]
        steps.append((f"rule {rule}", lambda: eventbridge.delete_rule(Name=rule, EventBusName=bus)))
        _allow_sender(sqs, queue_url, queue_arn, "events.amazonaws.com", rule_arn)
        steps.append(
            (f"target of rule {rule}", lambda: eventbridge.remove_targets(Rule=rule, EventBusName=bus, Ids=["tail"]))
        )
        eventbridge.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "tail", "Arn": queue_arn}])
        yield queue_url


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
