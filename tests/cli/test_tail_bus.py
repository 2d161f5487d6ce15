"""`transcode-status events tail --bus`: the bus followed through a temporary rule and queue (moto), printed as
the topic's events are, and nothing left behind however the tail ends."""

from __future__ import annotations

import inspect
import json
import threading

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from click.testing import CliRunner

from transcode_core.notify import build_event
from transcode_status_cli.main import cli
from transcode_status_cli.target import Target

BUS = "job-events"


@pytest.fixture
def bus(aws):
    boto3.client("events").create_event_bus(Name=BUS)
    return BUS


@pytest.fixture
def run(aws):
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    runner = CliRunner(**separate)

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(cli, list(args), env={"COLUMNS": None}, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def event(job_id: str = "abc", status: str = "COMPLETE", *, stalled: bool = False) -> dict:
    job = {"provider": "xvid", "job_id": job_id, "status": status, "attempt": 1, "version": 2}
    return build_event(
        {**job, "updated_at": "2026-11-25T12:00:00Z"}, "PROCESSING", "2026-11-25T12:00:00Z", stalled=stalled
    )


class Putter:
    """Puts the events on the bus over and over until stopped (the tail creates its rule at a moment the test
    cannot see, so whatever it is shown must keep coming)."""

    def __init__(self, *events: dict, source: str = "transcode-status") -> None:
        self.entries = [
            {
                "EventBusName": BUS,
                "Source": source,
                "DetailType": "Transcode Job Stalled" if e["event"] == "job.stalled" else "Transcode Job State Change",
                "Detail": json.dumps(e),
                "Resources": [],
            }
            for e in events
        ]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        client = boto3.client("events")
        while not self.stop.wait(0.2):
            assert client.put_events(Entries=self.entries)["FailedEntryCount"] == 0

    def __enter__(self) -> Putter:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def left_behind() -> tuple[list, list]:
    """The bus's rules and the account's queues."""
    rules = boto3.client("events").list_rules(EventBusName=BUS)["Rules"]
    return rules, boto3.client("sqs").list_queues().get("QueueUrls", [])


def test_tail_of_the_bus_prints_the_events_as_the_topic_s_and_removes_its_rule_and_queue(bus, run):
    # Given events on the bus, and a user's own rule that the tail must leave alone
    events = boto3.client("events")
    events.put_rule(Name="users-own", EventBusName=bus, EventPattern=json.dumps({"source": ["transcode-status"]}))
    # When the bus is tailed
    with Putter(event()):
        code, out, err = run("events", "tail", "--bus", bus, "--max-messages", "1", "--timeout", "20", "--json")
    # Then it prints the event (the topic's JSON), and removes what it created, and only that
    assert code == 0, err
    assert json.loads(out) == event()
    assert "temporary queue and rule removed" in err
    rules, queues = left_behind()
    assert [rule["Name"] for rule in rules] == ["users-own"] and queues == []

    with Putter(event()):
        code, out, _ = run("events", "tail", "--bus", bus, "--max-messages", "1", "--timeout", "20")
    assert code == 0 and "job.completed" in out and "xvid abc  attempt 1" in out  # the topic's line format


def test_tail_of_the_bus_filters_with_an_event_pattern_on_the_source_and_the_detail(bus, run):
    with Putter(event("ok"), event("bad", "ERROR"), event("late", "PROCESSING", stalled=True)):
        code, out, _ = run(
            "events", "tail", "--bus", bus, "--event", "job.failed", "--max-messages", "3", "--timeout", "20"
        )
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and all("job.failed" in line and "xvid bad" in line for line in lines)

    # another application's events on the same bus never show; --source names the stack's source
    with Putter(event("theirs"), source="other-app"), Putter(event("ours"), source="media.transcode"):
        code, out, _ = run(
            "events", "tail", "--bus", bus, "--source", "media.transcode", "--max-messages", "3", "--timeout", "20"
        )
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and all("xvid ours" in line for line in lines)
    assert left_behind() == ([], [])


def test_an_error_while_tailing_still_removes_the_rule_and_queue(bus, run, monkeypatch):
    original = BaseClient._make_api_call

    def receive_refused(client, operation_name, params):
        if operation_name == "ReceiveMessage":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, operation_name)
        return original(client, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", receive_refused)
    code, _, err = run("events", "tail", "--bus", bus, "--timeout", "5")
    assert code == 4 and "AWS refused ReceiveMessage" in err
    assert "temporary queue and rule removed" in err
    assert left_behind() == ([], [])


def test_a_removal_that_fails_is_named_so_nothing_is_left_behind_unnoticed(bus, run, monkeypatch):
    original = BaseClient._make_api_call

    def delete_rule_refused(client, operation_name, params):
        if operation_name == "DeleteRule":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, operation_name)
        return original(client, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", delete_rule_refused)
    code, _, err = run("events", "tail", "--bus", bus, "--timeout", "1")
    assert code == 0
    assert "could not remove the temporary rule transcode-status-tail-" in err and "remove it by hand" in err
    rules, queues = left_behind()
    assert len(rules) == 1 and queues == []  # the queue went all the same


def test_a_missing_bus_is_not_found_and_nothing_is_created(aws, run):
    code, _, err = run("events", "tail", "--bus", "no-such-bus", "--timeout", "1")
    assert code == 3 and err.startswith("transcode-status: event bus not found")
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []


def test_bus_alone_takes_the_stack_s_bus_and_source_from_its_outputs():
    target = Target(stack="prod")
    target.__dict__["outputs"] = {"EventBusName": "prod-job-events", "EventSource": "media.transcode"}
    assert (target.bus(""), target.event_source(None)) == ("prod-job-events", "media.transcode")
    assert (target.bus("other"), target.event_source("x")) == ("other", "x")
    target.__dict__["outputs"] = {}  # deployed with EventBus=none
    with pytest.raises(Exception, match="sends no events to a bus"):
        target.bus("")
    assert Target(stack=None).event_source(None) == "transcode-status"


def test_source_without_bus_is_a_usage_error(aws, run):
    code, _, err = run("events", "tail", "--topic", "arn:aws:sns:us-east-1:123456789012:t", "--source", "x")
    assert code == 2 and "--source applies to --bus only" in err
