"""The EventBridge target (EVENT_BUS_NAME) through the provider functions: every event on the topic and on the
bus exactly once each, the bus entry's shape, a failure on one target never re-sends to the other, and with
no bus named nothing changes (no client, no call, the same table writes)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import boto3
import botocore.handlers
import pytest

from local.simulators.encoding_com import EncodingComSimulator
from tests.integration.test_faults import emitted_metrics

PROVIDER = "encoding_com"
CREDENTIALS = {"user_id": "u1", "user_key": "k1"}
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connections are refused at once


class Calls:
    """The functions' AWS calls (every client created after the fixture started), and a way to make the bus
    refuse chosen events the way EventBridge does (its answer names the entry with an ErrorCode)."""

    def __init__(self) -> None:
        self.made: Counter = Counter()
        self.refuse_on_bus: set[str] = set()  # event ids
        self.put_events_entries: list[int] = []  # entries per PutEvents call

    def handlers(self) -> list[tuple]:
        return [("provide-client-params", self._params), ("before-call", self._count)]

    def _count(self, model, **_kwargs) -> None:
        self.made[f"{model.service_model.service_name}.{model.name}"] += 1

    def _params(self, params, model, **_kwargs) -> None:
        if model.name != "PutEvents":
            return
        self.put_events_entries.append(len(params["Entries"]))
        for entry in params["Entries"]:
            if json.loads(entry["Detail"])["event_id"] in self.refuse_on_bus:
                entry["Detail"] = "not json"  # EventBridge refuses this entry alone (MalformedDetail)


@pytest.fixture
def calls(monkeypatch):
    recorder = Calls()
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS])
    botocore.handlers.BUILTIN_HANDLERS.extend(recorder.handlers())
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # the functions' clients are made with the hooks
    return recorder


@pytest.fixture
def sim():
    with EncodingComSimulator(**CREDENTIALS) as simulator:
        yield simulator


@pytest.fixture
def bus_stack(aws, sim):
    from aws_lambda_powertools.utilities import parameters

    from local.stack import LocalStack

    parameters.clear_caches()
    stack = LocalStack("bus-test").create(bus=True)
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def finished_jobs(stack, sim, count: int) -> list[str]:
    media = [sim.add_job() for _ in range(count)]
    for media_id in media:
        stack.track(PROVIDER, media_id)
        sim.advance(media_id, 100)
    return media


def outbox(stack, media_id: str) -> dict:
    from transcode_core.store import JobStore

    return JobStore(stack.table_name, client=stack.dynamodb).get(PROVIDER, media_id).get("outbox") or {}


def test_every_event_reaches_the_topic_and_the_bus_once_each_with_the_same_json(bus_stack, sim, calls):
    media = finished_jobs(bus_stack, sim, 12)

    report = bus_stack.poll(PROVIDER)
    bus_stack.poll(PROVIDER)  # nothing left to send

    expected = Counter(f"{PROVIDER}#{media_id}#1#COMPLETE" for media_id in media)
    assert Counter(bus_stack.event_ids()) == expected
    delivered = bus_stack.bus_messages()
    assert Counter(message["detail"]["event_id"] for message in delivered) == expected
    on_topic = {event["event_id"]: event for event in bus_stack.events()}
    for message in delivered:
        assert message["detail"] == on_topic[message["detail"]["event_id"]]  # exactly the topic's JSON
        assert message["source"] == "transcode-status"
        assert message["detail-type"] == "Transcode Job State Change"
        assert message["resources"] == []
        occurred = datetime.fromisoformat(message["detail"]["occurred_at"].replace("Z", "+00:00"))
        assert message["time"] == occurred.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert calls.put_events_entries == [10, 2]  # batches of 10
    assert (report["events_published"], report["bus_events_published"], report["publish_failures"]) == (24, 12, 0)
    assert all(outbox(bus_stack, media_id) == {} for media_id in media)


def test_a_stall_goes_to_the_bus_as_its_own_detail_type(bus_stack, sim):
    bus_stack.configure(PROVIDER, sim.url, CREDENTIALS, env={"STALL_MINUTES": "0.0001"})
    media_id = sim.add_job()
    bus_stack.track(PROVIDER, media_id)
    bus_stack.poll(PROVIDER)
    bus_stack.poll(PROVIDER)

    stalled = [message for message in bus_stack.bus_messages() if message["detail"]["event"] == "job.stalled"]
    assert [message["detail-type"] for message in stalled] == ["Transcode Job Stalled"]
    assert [message["detail"]["event_id"] for message in stalled] == [f"{PROVIDER}#{media_id}#1#STALLED"]


def test_an_entry_the_bus_refuses_goes_to_the_bus_again_and_never_to_the_topic(bus_stack, sim, calls):
    refused, accepted = finished_jobs(bus_stack, sim, 2)
    refused_id = f"{PROVIDER}#{refused}#1#COMPLETE"
    calls.refuse_on_bus.add(refused_id)

    first = bus_stack.poll(PROVIDER)

    assert first["bus_publish_failures"] == 1 and first["publish_failures"] == 1
    assert sorted(bus_stack.event_ids()) == sorted([refused_id, f"{PROVIDER}#{accepted}#1#COMPLETE"])
    assert [event["event_id"] for event in bus_stack.bus_events()] == [f"{PROVIDER}#{accepted}#1#COMPLETE"]
    # The entry notes the target that has it, and waits (lease given back) for the bus alone.
    entry = outbox(bus_stack, refused)[refused_id]
    assert entry["delivered"] == ["topic"] and "lease" not in entry

    calls.refuse_on_bus.clear()
    calls.made.clear()
    second = bus_stack.poll(PROVIDER)

    assert "sns.PublishBatch" not in calls.made  # the topic has it: not sent there again
    assert (second["events_published"], second["bus_events_published"]) == (1, 1)
    assert Counter(bus_stack.event_ids())[refused_id] == 1
    assert [event["event_id"] for event in bus_stack.bus_events()].count(refused_id) == 1
    assert outbox(bus_stack, refused) == {}


def test_a_topic_that_cannot_be_reached_does_not_hold_the_bus_back_nor_resend_to_it(bus_stack, sim, calls):
    (media_id,) = finished_jobs(bus_stack, sim, 1)
    event_id = f"{PROVIDER}#{media_id}#1#COMPLETE"
    bus_stack.function_env[PROVIDER].update({"AWS_ENDPOINT_URL_SNS": UNREACHABLE, "AWS_MAX_ATTEMPTS": "1"})

    bus_stack.poll(PROVIDER)

    assert bus_stack.event_ids() == [] and [event["event_id"] for event in bus_stack.bus_events()] == [event_id]
    assert outbox(bus_stack, media_id)[event_id]["delivered"] == ["bus"]

    del bus_stack.function_env[PROVIDER]["AWS_ENDPOINT_URL_SNS"]
    calls.made.clear()
    bus_stack.poll(PROVIDER)

    assert "events.PutEvents" not in calls.made
    assert bus_stack.event_ids() == [event_id]
    assert [event["event_id"] for event in bus_stack.bus_events()] == [event_id]
    assert outbox(bus_stack, media_id) == {}


def test_a_bus_that_cannot_be_reached_answers_a_webhook_503_and_the_event_follows_once(bus_stack, sim):
    media_id = sim.add_job()
    sim.advance(media_id, 100)
    body, content_type = sim.notification(media_id)
    bus_stack.function_env[PROVIDER].update({"AWS_ENDPOINT_URL_EVENTBRIDGE": UNREACHABLE, "AWS_MAX_ATTEMPTS": "1"})

    status, _ = bus_stack.webhook(PROVIDER, body, content_type=content_type)

    assert status == 503  # the provider sends it again; the topic already has the event
    event_id = f"{PROVIDER}#{media_id}#1#COMPLETE"
    assert bus_stack.event_ids() == [event_id] and bus_stack.bus_events() == []
    del bus_stack.function_env[PROVIDER]["AWS_ENDPOINT_URL_EVENTBRIDGE"]
    assert bus_stack.webhook(PROVIDER, body, content_type=content_type)[0] == 200
    bus_stack.poll(PROVIDER)
    assert bus_stack.event_ids() == [event_id]
    assert [event["event_id"] for event in bus_stack.bus_events()] == [event_id]


def test_the_bus_metrics_are_emitted_beside_the_totals_the_alarm_counts(bus_stack, sim, calls, capsys):
    refused, _ = finished_jobs(bus_stack, sim, 2)
    calls.refuse_on_bus.add(f"{PROVIDER}#{refused}#1#COMPLETE")
    capsys.readouterr()
    bus_stack.poll(PROVIDER)
    emitted = emitted_metrics(capsys.readouterr().out)
    # PublishFailures (what PublishFailuresAlarm sums) counts the bus's refusal; the Bus* metrics its share.
    assert emitted["PublishFailures"] == 1 and emitted["BusPublishFailures"] == 1
    assert emitted["EventsPublished"] == 3 and emitted["BusEventsPublished"] == 1


def test_without_a_bus_nothing_changes_no_client_no_call_the_same_table_writes(aws, sim, calls, capsys):
    from local.stack import LocalStack
    from transcode_core.lambda_entry import services

    writes = {}
    for bus in (False, True):
        stack = LocalStack(f"writes-{bus}").create(bus=bus)
        stack.configure(PROVIDER, sim.url, CREDENTIALS)
        finished_jobs(stack, sim, 3)
        calls.made.clear()
        capsys.readouterr()
        report = stack.poll(PROVIDER)
        emitted = emitted_metrics(capsys.readouterr().out)
        writes[bus] = {name: count for name, count in calls.made.items() if name.startswith("dynamodb.")}
        if not bus:
            assert services().bus is None
            assert not [name for name in calls.made if name.startswith("events.")]
            assert "bus_events_published" not in report and "BusEventsPublished" not in emitted
            assert report["events_published"] == 3
    assert writes[False] == writes[True]  # the bus costs no table write without faults


@pytest.mark.parametrize(
    ("environment", "message"),
    [({"EVENT_SOURCE": "aws.transcode"}, "EVENT_SOURCE"), ({"EVENT_SOURCE": "x" * 257}, "EVENT_SOURCE")],
)
def test_a_source_eventbridge_would_refuse_is_a_configuration_error(environment, message):
    from transcode_core.config import Settings
    from transcode_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"TABLE_NAME": "t", "TOPIC_ARN": "arn", **environment})


def test_an_empty_bus_name_is_no_bus_and_the_source_has_its_default():
    from transcode_core.config import Settings

    settings = Settings.from_env({"TABLE_NAME": "t", "TOPIC_ARN": "arn", "EVENT_BUS_NAME": " "})
    assert settings.event_bus_name is None and settings.event_source == "transcode-status"


def test_put_events_batches_hold_ten_entries_and_256_kb_at_most():
    from transcode_core.notify import PUT_EVENTS_BYTES, put_events_batches

    def event(number: int, size: int) -> dict:
        return {
            "event_id": f"{PROVIDER}#{number}#1#COMPLETE",
            "event": "job.completed",
            "occurred_at": "2026-11-25T12:00:00Z",
            "job": {"notes": "x" * size},
        }

    small = put_events_batches([event(n, 10) for n in range(25)], "bus", "transcode-status")
    assert [len(batch) for batch in small] == [10, 10, 5]
    large = put_events_batches([event(n, 90_000) for n in range(7)], "bus", "transcode-status")
    assert [len(batch) for batch in large] == [2, 2, 2, 1]
    for batch in large:
        assert sum(
            len(entry["Detail"]) + len(entry["Source"]) + len(entry["DetailType"]) + 14 for _, entry in batch
        ) <= (PUT_EVENTS_BYTES)


def test_the_bus_client_tries_only_within_the_invocation_s_time(bus_stack, sim):
    from transcode_core import aws
    from transcode_core.deadline import Deadline
    from transcode_core.lambda_entry import INVOCATION_BUDGET, services

    bus_stack.poll(PROVIDER)  # the function's clients, as its invocations build them
    bus = services().bus
    config = bus.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT, aws.READ_TIMEOUT)
    event = {"event_id": f"{PROVIDER}#late#1#COMPLETE", "event": "job.completed", "occurred_at": "2026-11-25T12:00:00Z"}
    INVOCATION_BUDGET.begin(Deadline(aws.TRY_SECONDS / 2))  # less time left than one try may take
    try:
        assert bus.publish([event]) == ([], [event["event_id"]])  # not tried: the event waits for the next run
    finally:
        INVOCATION_BUDGET.begin(Deadline.none())
    assert bus_stack.bus_events() == []
