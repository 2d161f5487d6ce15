"""CONTRACT webhook rules that hold for every provider, shown on encoding.com: the token, the size limit,
and 503 (with nothing lost) when the table or the topic cannot be reached."""

from __future__ import annotations

import json

import pytest

from local.lambda_events import http_event
from local.simulators.encoding_com import EncodingComSimulator

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connections are refused at once


@pytest.fixture
def encoding(stack):
    with EncodingComSimulator(user_id="u1", user_key="k1") as simulator:
        stack.configure("encoding_com", simulator.url, {"user_id": "u1", "user_key": "k1"})
        yield stack, simulator


@pytest.mark.parametrize("token", [None, "", "wrong-token", "test-token-but-longer"])
def test_wrong_or_missing_token_is_401_and_nothing_is_read_or_written(encoding, token):
    stack, simulator = encoding
    media_id = simulator.add_job()
    body, content_type = simulator.notification(media_id)
    status, answer = stack.webhook("encoding_com", body, token=token, content_type=content_type)
    assert status == 401 and answer == {"error": "unauthorized"}
    assert stack.jobs() == [] and simulator.count() == 0 and stack.events() == []


def test_body_over_256_kib_is_413_and_nothing_is_written(encoding):
    stack, simulator = encoding
    media_id = simulator.add_job()
    body, content_type = simulator.notification(media_id)
    padded = body + "&padding=" + "x" * (256 * 1024)
    status, answer = stack.webhook("encoding_com", padded, content_type=content_type)
    assert status == 413 and "limit" in answer["error"]
    assert stack.jobs() == [] and simulator.count() == 0


def test_base64_encoded_form_body_is_accepted(encoding):
    stack, simulator = encoding
    media_id = simulator.add_job()
    simulator.advance(media_id, 3)
    body, content_type = simulator.notification(media_id)
    status, answer = stack.webhook("encoding_com", body, content_type=content_type, base64=True)
    assert (status, answer) == (200, {"accepted": 1})
    assert stack.job("encoding_com", media_id)["provider_status"] == simulator.status_of(media_id)


def test_table_unreachable_is_503_and_the_next_poll_catches_up(encoding, monkeypatch, no_aws_retry_waits):
    stack, simulator = encoding
    media_id = simulator.add_job()
    simulator.advance(media_id, 10)  # finished
    body, content_type = simulator.notification(media_id)
    stack.function_env["encoding_com"].update({"AWS_ENDPOINT_URL_DYNAMODB": UNREACHABLE, "AWS_MAX_ATTEMPTS": "1"})
    status, answer = stack.webhook("encoding_com", body, content_type=content_type)
    assert status == 503 and "retry" in answer["error"]
    # Nothing lost: once the table is back, the job (tracked through the jobs API) is caught by the poll
    del stack.function_env["encoding_com"]["AWS_ENDPOINT_URL_DYNAMODB"]
    assert stack.track("encoding_com", media_id) == 201
    stack.poll("encoding_com")
    assert stack.job("encoding_com", media_id)["status"] == "COMPLETE"
    assert stack.event_ids() == [f"encoding_com#{media_id}#1#COMPLETE"]


def test_topic_unreachable_is_503_then_the_event_is_published_once(encoding, no_aws_retry_waits):
    stack, simulator = encoding
    media_id = simulator.add_job()
    simulator.advance(media_id, 10)
    body, content_type = simulator.notification(media_id)
    stack.function_env["encoding_com"].update({"AWS_ENDPOINT_URL_SNS": UNREACHABLE, "AWS_MAX_ATTEMPTS": "1"})
    status, _ = stack.webhook("encoding_com", body, content_type=content_type)
    assert status == 503
    assert stack.job("encoding_com", media_id)["status"] == "COMPLETE" and stack.events() == []
    # The topic is back: the provider's retry of the webhook (or the next poll) sends the waiting event
    del stack.function_env["encoding_com"]["AWS_ENDPOINT_URL_SNS"]
    assert stack.webhook("encoding_com", body, content_type=content_type)[0] == 200
    stack.poll("encoding_com")
    assert stack.event_ids() == [f"encoding_com#{media_id}#1#COMPLETE"]


def test_missing_secret_is_a_clear_500(stack):
    stack.function_env["encoding_com"] = {
        "TABLE_NAME": stack.table_name,
        "TOPIC_ARN": stack.topic_arn,
        "PROVIDER_SECRET_ID": "no-such-secret",
    }
    status, answer = stack.webhook("encoding_com", "{}")
    assert (status, answer) == (500, {"error": "service misconfigured"})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"result": ' + "[" * 50_000 + "]" * 50_000 + "}", "application/json"),
        ("<result>" + "<a>" * 5_000 + "</a>" * 5_000 + "</result>", "application/xml"),
    ],
    ids=["deep-json", "deep-xml"],
)
def test_deeply_nested_bodies_are_400_not_a_crash(encoding, body, content_type):
    stack, simulator = encoding
    status, answer = stack.webhook("encoding_com", body, content_type=content_type)
    assert status == 400 and answer["error"]
    assert stack.jobs() == [] and simulator.count() == 0


@pytest.mark.parametrize("raw_body", ["%%% not base64 %%%", "//79/w=="], ids=["bad-base64", "not-utf8"])
def test_undecodable_base64_bodies_are_400_not_a_crash(encoding, raw_body):
    stack, simulator = encoding
    event = http_event(
        "POST",
        "/webhooks/encoding-com",
        "POST /webhooks/encoding-com",
        body="placeholder",
        query={"token": "test-token"},
        base64=True,
    )
    event["body"] = raw_body  # what API Gateway would pass on, had the sender lied about the encoding
    response = stack.invoke("encoding_com", event)
    assert response["statusCode"] == 400 and "base64" in json.loads(response["body"])["error"]
    assert stack.jobs() == [] and simulator.count() == 0
