"""The jobs API logs at INFO, the level it is deployed with, without clashing with LogRecord's own fields."""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_jobs_api_logs_at_info(stack, method):
    from transcode_core.observability import logger

    previous = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        assert stack.track("xvid", "559cbbec14ea67a7cad6d7d8") == 201
        assert stack.jobs_api(method, "xvid", "559cbbec14ea67a7cad6d7d8")[0] in (200, 204)
    finally:
        logger.setLevel(previous)


ALICE = {
    "accessKey": "ASIAEXAMPLEEXAMPLE12",
    "accountId": "111122223333",
    "callerId": "AROAEXAMPLEID:alice",
    "userArn": "arn:aws:sts::111122223333:assumed-role/ops/alice",
    "userId": "AROAEXAMPLEID:alice",
}


def signed_by(identity: dict, method: str, provider: str, job_id: str) -> dict:
    """A jobs API request as API Gateway hands it over after verifying `identity`'s SigV4 signature."""
    from local.lambda_events import http_event

    event = http_event(
        method,
        f"/jobs/{provider}/{job_id}",
        f"{method} /jobs/{{provider}}/{{job_id+}}",
        path_parameters={"provider": provider, "job_id": job_id},
        iam_caller=True,
    )
    event["requestContext"]["authorizer"]["iam"] = dict(identity)
    return event


def test_who_tracked_and_untracked_a_job_is_in_the_log_and_the_job_s_history(stack):
    import io
    import json

    from transcode_core.observability import logger

    job_id = "559cbbec14ea67a7cad6d7d8"
    written = io.StringIO()
    handler = logging.StreamHandler(written)  # the function's log lines, as Lambda's log group gets them
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        # When alice tracks the job and then stops tracking it
        assert stack.invoke("jobs_api", signed_by(ALICE, "PUT", "xvid", job_id))["statusCode"] == 201
        assert stack.invoke("jobs_api", signed_by(ALICE, "DELETE", "xvid", job_id))["statusCode"] == 204
    finally:
        logger.removeHandler(handler)

    # Then each log line says who did it
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    caller = {"user_arn": ALICE["userArn"], "caller_id": ALICE["callerId"], "account_id": ALICE["accountId"]}
    logged = {line["message"]: line for line in lines if line.get("message") in ("job tracked", "job untracked")}
    assert logged["job tracked"]["caller"] == caller and logged["job tracked"]["job_id"] == job_id
    assert logged["job untracked"]["caller"] == caller
    # And so does each of the job's history items (source "api", actor the signer)
    history = stack.history("xvid", job_id)
    assert [(item["source"], item.get("actor")) for item in history] == [("api", ALICE["userArn"])] * 2
