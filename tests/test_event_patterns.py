"""Rules as documentation: each filter policy docs/operations.md shows for the topic, and the event pattern it
shows beside it for the bus, select exactly the events they say, and the same ones. Every kind of event
(each state change and stall of three providers, a test event, a replay) goes through both in moto: the topic
to a queue subscribed with the policy, the bus to a queue a rule with the pattern targets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import boto3
import pytest

from transcode_core.notify import build_event, sns_message

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "transcode-status"
# What each documented row says it selects, as the reader understands it.
WANTED: dict[str, Callable[[dict], bool]] = {
    "failures only": lambda event: event["status"] == "ERROR",
    "stalls only": lambda event: event["event"] == "job.stalled",
    "one provider": lambda event: event["provider"] == "xvid",
    "finished jobs of two providers": lambda event: (
        event["provider"] in ("xvid", "vod_station") and event["status"] == "COMPLETE"
    ),
    "everything but test events": lambda event: event["event"] != "job.test",
    "no replays": lambda event: not event.get("replay"),
}


def documented_rows() -> list[tuple[str, dict, dict]]:
    """(wanted, filter policy, event pattern) of each row of the table in docs/operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text[text.index("| wanted | `FilterPolicy`") :].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        wanted, policy, pattern = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((wanted, json.loads(policy.strip("`")), json.loads(pattern.strip("`"))))
    return rows


def every_kind_of_event() -> list[tuple[dict, dict[str, str]]]:
    """(event, extra message attributes) of each kind the topic and the bus carry."""
    corpus = []
    for provider, job_id in (
        ("xvid", "559cbbec14ea67a7cad60001"),
        ("vod_station", "10019:in/a.mp4"),
        ("encoding_com", "31000001"),
    ):
        for status, stalled in (("COMPLETE", False), ("ERROR", False), ("CANCELED", False), ("PROCESSING", True)):
            job = {"provider": provider, "job_id": job_id, "status": status, "attempt": 1, "version": 3}
            job["updated_at"] = "2026-11-25T12:00:00Z"
            corpus.append((build_event(job, "QUEUED", "2026-11-25T12:00:00.250000Z", stalled=stalled), {}))
    completed = corpus[0][0]
    # as `transcode-status events replay` and `events test` send them
    corpus.append(({**completed, "replay": True, "replayed_at": "2026-11-25T13:00:00Z"}, {"replay": "true"}))
    test = {
        **build_event({**completed["job"], "job_id": "test-20261125T120000Z"}, "PROCESSING", "2026-11-25T12:00:00Z")
    }
    corpus.append(({**test, "event": "job.test", "test": True}, {"test": "true"}))
    return corpus  # fmt: skip


def key(event: dict) -> tuple[str, str, bool]:
    return event["event_id"], event["event"], bool(event.get("replay"))


def drained(sqs, queue: str) -> list[dict]:
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(message["Body"]) for message in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def queue_with_arn(sqs, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_the_table_shows_a_pattern_for_every_filter_policy():
    rows = documented_rows()
    assert [wanted for wanted, _, _ in rows] == list(WANTED)
    for _, _, pattern in rows:
        assert pattern["source"] == [SOURCE]  # on a shared bus, another application's events must not match


@pytest.mark.parametrize(("wanted", "policy", "pattern"), documented_rows(), ids=lambda value: str(value)[:30])
def test_the_filter_policy_and_the_event_pattern_select_exactly_the_events_they_say(aws, wanted, policy, pattern):
    sns, sqs, events = boto3.client("sns"), boto3.client("sqs"), boto3.client("events")
    # Given the topic with a subscription filtered by the policy
    topic = sns.create_topic(Name="job-events")["TopicArn"]
    topic_queue, topic_queue_arn = queue_with_arn(sqs, "by-policy")
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=topic_queue_arn, Attributes={"FilterPolicy": json.dumps(policy)}
    )
    # and the bus with a rule of the pattern
    events.create_event_bus(Name="job-events")
    bus_queue, bus_queue_arn = queue_with_arn(sqs, "by-pattern")
    events.put_rule(Name="documented", EventBusName="job-events", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="documented", EventBusName="job-events", Targets=[{"Id": "q", "Arn": bus_queue_arn}])
    # When every kind of event goes to both, as the functions and the CLI send them
    corpus = every_kind_of_event()
    for event, extra in corpus:
        message = sns_message(event)
        for name, value in extra.items():
            message["MessageAttributes"][name] = {"DataType": "String", "StringValue": value}
        sns.publish(TopicArn=topic, **message)
    entries = [
        {
            "EventBusName": "job-events",
            "Source": SOURCE,
            "DetailType": "Transcode Job Stalled" if event["event"] == "job.stalled" else "Transcode Job State Change",
            "Detail": json.dumps(event),
            "Resources": [],
            "Time": datetime.fromisoformat(event["occurred_at"]),
        }
        for event, _ in corpus
    ]
    # ... and another application's event on the same bus, which no documented pattern may select
    entries.append({**entries[0], "Source": "another-application"})
    for start in range(0, len(entries), 10):
        assert events.put_events(Entries=entries[start : start + 10])["FailedEntryCount"] == 0
    # Then each queue holds exactly the events the row says, the same ones
    expected = sorted(key(event) for event, _ in corpus if WANTED[wanted](event))
    assert 0 < len(expected) < len(corpus)  # the row selects something, and not everything
    by_policy = sorted(key(json.loads(body["Message"])) for body in drained(sqs, topic_queue))
    by_pattern = sorted(key(body["detail"]) for body in drained(sqs, bus_queue))
    assert by_policy == expected, f"the filter policy of '{wanted}'"
    assert by_pattern == expected, f"the event pattern of '{wanted}'"
