"""The events' schema registered with EventBridge (template.yaml, JobEventSchema): JSON Schema Draft 4 (what the
registry takes beside OpenApi3), generated from schemas/job-event.json, and true to every event users get:
the documented examples, and events the core builds as EventBridge (moto) delivers them to a rule's target."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import boto3
import pytest
from jsonschema import Draft4Validator

from local.event_schema import (
    STALLED_DETAIL_TYPE,
    STATE_CHANGE_DETAIL_TYPE,
    check_bus_event,
    eventbridge_schema,
    template_content,
    with_template_content,
)
from local.template import load_template, resource

ROOT = Path(__file__).resolve().parent.parent
# Every keyword JSON Schema Draft 4 defines (validation and metadata): anything else is ignored by a Draft 4
# validator, so a later draft's keyword left in the registered schema would silently check nothing.
DRAFT4_KEYWORDS = {
    "$schema", "id", "$ref", "title", "description", "default", "type", "enum", "allOf", "anyOf", "oneOf", "not",
    "definitions", "properties", "patternProperties", "additionalProperties", "required", "dependencies",
    "minProperties", "maxProperties", "items", "additionalItems", "minItems", "maxItems", "uniqueItems",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
    "pattern", "format",
}  # fmt: skip


def registered() -> dict:
    return json.loads(resource(load_template(ROOT / "template.yaml"), "JobEventSchema")["Properties"]["Content"])


def keywords(node, found: set[str]) -> set[str]:
    if isinstance(node, list):
        for item in node:
            keywords(item, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key in ("properties", "definitions", "patternProperties"):
                for item in value.values():
                    keywords(item, found)
            elif key not in ("enum", "default", "required"):
                keywords(value, found)
    return found


def on_the_bus(detail: dict, **envelope) -> dict:
    """The event as EventBridge hands it to a target."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": STALLED_DETAIL_TYPE if detail["event"] == "job.stalled" else STATE_CHANGE_DETAIL_TYPE,
        "source": "transcode-status",
        "account": "123456789012",
        "time": detail["occurred_at"][:19] + "Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
        **envelope,
    }


def documented_events() -> list[dict]:
    """Every whole job event shown in the docs (README and docs/)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```json\n(.*?)```", page.read_text(), re.S):
            try:
                value = json.loads(block)
            except ValueError:
                continue
            if isinstance(value, dict) and "detail" in value:
                value = value["detail"]
            whole = isinstance(value, dict) and "..." not in value.get("job", {})  # not an outline of the fields
            if whole and value.get("schema") == "transcode-status.job-event/1":
                found.append(value)
    return found


# --- what is registered ------------------------------------------------------------------------------------
def test_the_registered_schema_is_the_one_generated_from_the_schema_file():
    text = (ROOT / "template.yaml").read_text()
    assert json.loads(template_content(text)) == eventbridge_schema(), "run: .venv/bin/python -m local.event_schema"
    assert with_template_content(text) == text  # writing it again changes nothing
    assert registered() == eventbridge_schema()


def test_the_registered_schema_is_valid_draft_4_and_says_only_what_draft_4_reads():
    schema = registered()
    Draft4Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert keywords(schema, set()) - DRAFT4_KEYWORDS == set()
    # every reference resolves within the document
    for ref in re.findall(r'"\$ref": "#/definitions/(\w+)"', json.dumps(schema)):
        assert ref in schema["definitions"], ref
    assert len(json.dumps(schema)) <= 100_000  # CreateSchema's Content limit


def test_the_registered_schema_keeps_the_rules_of_the_schema_file():
    """The conversion keeps what the 2020-12 file refuses (const, if/then): not only the field list."""
    event = on_the_bus(documented_events()[0])
    check_bus_event(event)
    detail = event["detail"]
    for broken in (
        on_the_bus({**detail, "status": "ERROR"}),  # job.completed with status ERROR (if/then)
        on_the_bus({**detail, "schema": "transcode-status.job-event/2"}),  # const
        on_the_bus({**detail, "job": {**detail["job"], "outbox": {}}}),  # bookkeeping leaked
        on_the_bus({**detail, "job": {**detail["job"], "estimate_basis": "guess"}}),
        {**event, "detail-type": STALLED_DETAIL_TYPE},  # the stall's detail-type on a completion
        {key: value for key, value in event.items() if key != "detail"},
    ):
        with pytest.raises(ValueError, match="does not match the registered schema"):
            check_bus_event(broken)


# --- the events users get ----------------------------------------------------------------------------------
def test_every_documented_event_matches_the_registered_schema():
    events = documented_events()
    assert {event["event"] for event in events} >= {"job.completed", "job.failed", "job.canceled", "job.stalled"}
    for detail in events:
        check_bus_event(on_the_bus(detail))


def test_every_example_file_of_a_job_event_matches_the_registered_schema():
    """schemas/*.example.json (a bus event as a rule's target receives it) and any events/ file holding a
    job event."""
    files = [*sorted((ROOT / "schemas").glob("*.example.json")), *sorted((ROOT / "events").glob("*.json"))]
    examples = [path for path in files if "transcode-status.job-event" in path.read_text()]
    assert examples, "no example file of an event on the bus"
    for path in examples:
        check_bus_event(json.loads(path.read_text()))


def job(status: str, **fields) -> dict:
    return {
        "provider": "encoding_com",
        "job_id": "31000001",
        "status": status,
        "provider_status": "Processing",
        "attempt": 1,
        "version": 4,
        "created_at": "2026-11-25T11:00:00Z",
        "updated_at": "2026-11-25T12:00:00.123456Z",
        **fields,
    }


MANY_OUTPUTS = [{"id": f"o{n}", "destinations": [{"url": "s3://b/" + "x" * 200}]} for n in range(600)]
BUILT = {
    "completed": (job("COMPLETE", finished_at="2026-11-25T12:00:00Z", progress=100), "UPLOADING", False),
    "failed": (job("ERROR", error={"message": "codec", "code": 4}), "PROCESSING", False),
    "canceled": (job("CANCELED"), "QUEUED", False),
    "stalled with an estimate": (
        job("PROCESSING", progress=40, estimated_finish_at="2026-11-25T12:30:00Z", estimate_basis="provider"),
        "PROCESSING",
        True,
    ),
    "outputs omitted": (job("COMPLETE", outputs=MANY_OUTPUTS), "UPLOADING", False),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BUILT))
def test_events_the_core_builds_match_the_registered_schema_as_eventbridge_delivers_them(aws, name):
    from transcode_core.notify import build_event

    # Given a bus with a rule that sends the source's events to a queue
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name="job-events")
    queue = sqs.create_queue(QueueName="target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName="job-events", EventPattern=json.dumps({"source": ["transcode-status"]}))
    events.put_targets(Rule="all", EventBusName="job-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    # When the core's event is put on it as the contract says (detail = the topic's JSON)
    item, previous, stalled = BUILT[name]
    detail = build_event(item, previous, "2026-11-25T12:00:00.123456Z", stalled=stalled)
    answer = events.put_events(
        Entries=[
            {
                "EventBusName": "job-events",
                "Source": "transcode-status",
                "DetailType": STALLED_DETAIL_TYPE if stalled else STATE_CHANGE_DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "Resources": [],
                "Time": datetime.fromisoformat(detail["occurred_at"]),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0
    # Then what the target receives matches the registered schema
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    delivered = json.loads(message["Body"])
    assert delivered["detail"] == detail
    delivered.setdefault("account", "123456789012")  # moto leaves out the account EventBridge always sends
    check_bus_event(delivered)
