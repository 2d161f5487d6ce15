"""Webhook bodies that are valid JSON (or valid Lambda event text) but hold text that is not Unicode: a
lone surrogate (`"\\ud800"`). Every provider answers 400 with a JSON body, logs and counts it, writes nothing."""

from __future__ import annotations

import json

import pytest

from local.lambda_events import http_event
from transcode_core.providers import PROVIDER_IDS, get_spec

# A body naming a job in each provider's shape, with a lone surrogate where the job id is read.
BODIES = {
    "encoding_com": '{"result": {"mediaid": "1\\ud800", "status": "Finished"}}',
    "transparent_edge": '{"order_id": "7\\ud800"}',
    "xvid": '{"job_id": "abc\\ud800"}',
    "vod_station": ('{"categoryId": 10019, "filePath": "/movie\\ud800.mp4", "status": "COMPLETE", "outputType": "sd"}'),
}


def _rejections(out: str) -> int:
    emitted = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(metric.get("RequestsRejected", [])) for metric in emitted)


@pytest.mark.parametrize("provider", sorted(PROVIDER_IDS))
def test_a_lone_surrogate_escaped_in_json_is_a_400(provider, stack, capfd, caplog):
    stack.configure(provider, "http://127.0.0.1:9", {key: "x" for key in get_spec(provider).secret_keys})
    capfd.readouterr()
    status, answer = stack.webhook(provider, BODIES[provider])
    assert status == 400 and "not valid Unicode" in answer["error"], answer
    assert "request refused: bad body" in caplog.text and _rejections(capfd.readouterr().out) == 1
    assert stack.jobs() == [] and stack.events() == []


@pytest.mark.parametrize("provider", sorted(PROVIDER_IDS))
def test_a_lone_surrogate_in_the_event_body_itself_is_a_400(provider, stack):
    stack.configure(provider, "http://127.0.0.1:9", {key: "x" for key in get_spec(provider).secret_keys})
    spec = get_spec(provider)
    event = http_event(
        "POST", spec.webhook_path, f"POST {spec.webhook_path}", body="placeholder", query={"token": "test-token"}
    )
    event["body"] = BODIES[provider].replace("\\ud800", "\ud800")  # the lone surrogate itself, not its escape
    response = stack.invoke(provider, event)
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]
    assert stack.jobs() == []
