"""The sample events in events/ match the routes template.yaml deploys and the shapes Lambda delivers."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from local.template import load_template
from transcode_core.webhook import WebhookBody

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
HTTP_EVENT_FILES = sorted(EVENTS.glob("webhook-*.json")) + sorted(EVENTS.glob("jobs-*.json"))


def load(name: str | Path):
    return json.loads((EVENTS / name).read_text())


def template_routes() -> dict[str, str]:
    """routeKey -> the function's logical id, for every HttpApi event in the template."""
    routes = {}
    for logical_id, resource in load_template(ROOT / "template.yaml")["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes[f"{event['Properties']['Method']} {event['Properties']['Path']}"] = logical_id
    return routes


def decoded_body(event) -> str:
    body = event.get("body") or ""
    return base64.b64decode(body).decode() if event["isBase64Encoded"] else body


def test_every_event_file_is_json():
    files = sorted(EVENTS.glob("*.json"))
    assert len(files) >= 9
    for path in files:
        json.loads(path.read_text())


def test_every_template_route_has_a_sample_event():
    sampled = {load(path)["routeKey"] for path in HTTP_EVENT_FILES}
    assert sampled == set(template_routes())


@pytest.mark.parametrize("path", HTTP_EVENT_FILES, ids=lambda path: path.name)
def test_http_events_are_payload_2_0_for_a_deployed_route(path):
    event = load(path)
    assert event["version"] == "2.0"
    assert event["routeKey"] in template_routes()
    method, route_path = event["routeKey"].split(" ", 1)
    context = event["requestContext"]
    assert context["routeKey"] == event["routeKey"]
    assert context["http"]["method"] == method
    assert context["http"]["path"] == event["rawPath"]
    # The raw path fills the route's {parameters}, which arrive as pathParameters.
    # A greedy {name+} takes the rest of the path, slashes included.
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(route_path))
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    match = re.fullmatch(pattern, event["rawPath"])
    assert match, f"{event['rawPath']} does not match {route_path}"
    assert event.get("pathParameters", {}) == match.groupdict()
    assert all(name == name.lower() for name in event["headers"]), "HTTP API delivers lower-case header names"


@pytest.mark.parametrize("path", sorted(EVENTS.glob("webhook-*.json")), ids=lambda path: path.name)
def test_webhook_events_carry_the_token_and_a_body(path):
    event = load(path)
    assert event["queryStringParameters"]["token"]
    assert "token=" in event["rawQueryString"]
    assert "authorizer" not in event["requestContext"]
    body = WebhookBody(decoded_body(event), event["headers"]["content-type"])
    assert body.is_form or body.json_object()


def test_encoding_com_notify_is_a_base64_form_with_a_result_document():
    event = load("webhook-encoding-com.json")
    assert event["isBase64Encoded"] is True
    body = WebhookBody(decoded_body(event), event["headers"]["content-type"])
    assert body.is_form
    result = body.xml(body.form()["xml"])
    assert result.tag == "result"
    assert result.findtext("mediaid") and result.findtext("status") == "Finished"


def test_vod_station_callback_has_the_documented_fields():
    callback = json.loads(decoded_body(load("webhook-vod-station.json")))
    assert set(callback) == {
        "categoryId",
        "categoryName",
        "fileId",
        "filePath",
        "encodingOptionId",
        "outputType",
        "link",
        "status",
    }


@pytest.mark.parametrize("name", ["jobs-put.json", "jobs-get.json"])
def test_jobs_events_come_from_an_iam_caller(name):
    iam = load(name)["requestContext"]["authorizer"]["iam"]
    assert iam["accountId"] and iam["userArn"].startswith("arn:aws:iam::")


def test_scheduled_events():
    rule_event = load("schedule.json")
    assert rule_event["source"] == "aws.events"
    assert rule_event["detail-type"] == "Scheduled Event"
    assert "requestContext" not in rule_event
    assert load("scheduler.json") == {}


def test_env_file_configures_every_function_by_logical_id():
    env = load("env.json")
    functions = set(template_routes().values())
    assert set(env) == functions
    for logical_id, variables in env.items():
        assert {"TABLE_NAME", "TOPIC_ARN"} <= set(variables)
        if logical_id != "JobsApiFunction":
            assert {"PROVIDER_SECRET_ID", "PROVIDER_API_URL"} <= set(variables)


def test_the_event_schema_refuses_what_subscribers_could_not_parse():
    """schemas/job-event.json (every event the suite receives is checked against it in LocalStack)."""
    from local.event_schema import check_event

    good = {
        "schema": "transcode-status.job-event/1",
        "event_id": "xvid#abc#1#COMPLETE",
        "event": "job.completed",
        "provider": "xvid",
        "job_id": "abc",
        "status": "COMPLETE",
        "previous_status": "PROCESSING",
        "provider_status": "SUCCESS",
        "attempt": 1,
        "occurred_at": "2026-11-25T12:00:00Z",
        "job": {
            "provider": "xvid",
            "job_id": "abc",
            "status": "COMPLETE",
            "attempt": 1,
            "version": 3,
            "updated_at": "2026-11-25T12:00:00.123456Z",
        },
    }
    check_event(good)
    for broken in (
        {**good, "occurred_at": "2026-11-25 12:00:00"},  # not the documented time format
        {**good, "event": "job.failed"},  # event and status disagree
        {**good, "job": {**good["job"], "outbox": {}}},  # bookkeeping leaked
        {key: value for key, value in good.items() if key != "event_id"},
    ):
        with pytest.raises(ValueError, match="does not match"):
            check_event(broken)


def test_an_event_without_its_outputs_matches_the_schema():
    from local.event_schema import check_event
    from transcode_core.notify import build_event

    outputs = [
        {"id": f"o{n}", "status": "COMPLETE", "destinations": [{"url": "s3://b/" + "x" * 200}]} for n in range(600)
    ]
    job = {
        "provider": "xvid",
        "job_id": "abc",
        "status": "COMPLETE",
        "attempt": 1,
        "version": 2,
        "updated_at": "2026-11-25T12:00:00Z",
        "outputs": outputs,
    }
    event = build_event(job, "PROCESSING", "2026-11-25T12:00:00Z")
    assert event["outputs_omitted"] == 600
    check_event(event)
