"""A fresh process that turns one set of logging switches on (before the first import of boto3 and the core,
or after the handlers are loaded), runs a poll and webhooks for every provider, and writes everything to its
stdout and stderr; test_no_secrets_in_logs.py looks for the secrets in them.

    python -m tests.integration.leak_probe SWITCHES before|after

Only the standard library is imported before the switches, so "before" is a cold start with them on."""

from __future__ import annotations

import json
import logging
import os
import sys

SECRETS_FILE_ENV = "LEAK_PROBE_SECRETS"  # where the probe writes the secrets it used (OAuth tokens included)
WEBHOOK_TOKEN = "leak-webhook-token-0006"
PREVIOUS_TOKEN = "leak-previous-token-0007"
AWS_KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIALEAKCHECK0000001",
    "AWS_SECRET_ACCESS_KEY": "leak-aws-secret-access-key-0008",
    "AWS_SESSION_TOKEN": "leak-aws-session-token-0009",
}
CREDENTIALS = {
    "encoding_com": {"user_id": "leak-user-id", "user_key": "leak-user-key-0001"},
    "transparent_edge": {"company_id": "4711", "client_id": "leak-te-client", "client_secret": "leak-te-secret-0002"},
    "xvid": {"client_id": "leak-xvid-client", "client_secret": "leak-xvid-secret-0003"},
    "vod_station": {"access_key": "leak-vod-access-0004", "secret_key": "leak-vod-secret-0005"},
}
NOT_SECRET = ("company_id", "user_id", "client_id")
# Environment switches: every one the README and Powertools document that could make more be logged.
POWERTOOLS_ENV = {
    "POWERTOOLS_LOGGER_LOG_EVENT": "true",
    "POWERTOOLS_DEV": "true",
    "POWERTOOLS_DEBUG": "true",
    "POWERTOOLS_LOG_LEVEL": "DEBUG",
    "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
    "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
}
# Tracing on as in Lambda (no daemon listens: the segments go nowhere, but the SDK logs them at DEBUG).
TRACING_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "0",
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
}


def _botocore_stream() -> None:
    import boto3

    boto3.set_stream_logger("botocore", logging.DEBUG)
    boto3.set_stream_logger("boto3", logging.DEBUG)


def _basic_config() -> None:
    logging.basicConfig(level=logging.DEBUG, force=True)
    for name in ("botocore", "urllib3", "aws_lambda_powertools", "aws_xray_sdk"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def _http_client_debug() -> None:
    import http.client

    http.client.HTTPConnection.debuglevel = 1


def _xray_debug() -> None:
    from aws_xray_sdk.core import xray_recorder

    xray_recorder.streaming_threshold = 1  # each subsegment is sent (and logged) when it ends
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    xray = logging.getLogger("aws_xray_sdk")
    xray.addHandler(handler)
    xray.setLevel(logging.DEBUG)


def _powertools_env() -> None:
    os.environ.update(POWERTOOLS_ENV)
    logging.getLogger("aws_lambda_powertools").setLevel(logging.DEBUG)


SWITCHES = {
    "botocore-stream": _botocore_stream,
    "basic-config": _basic_config,
    "http-client-debuglevel": _http_client_debug,
    "xray-debug": _xray_debug,
    "powertools-env": _powertools_env,
}


def switch_on(names: list[str]) -> None:
    for name in names:
        SWITCHES[name]()


def main(names: list[str], when: str) -> None:
    os.environ.update({**AWS_KEYS, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"})
    os.environ.update({"POWERTOOLS_SERVICE_NAME": "transcode-status", "POWERTOOLS_METRICS_NAMESPACE": "Probe"})
    if "xray-debug" in names:
        os.environ.update(TRACING_ENV)
    if when == "before":
        switch_on(names)

    from moto import mock_aws

    from local.simulators.encoding_com import EncodingComSimulator
    from local.simulators.transparent_edge import TransparentEdgeSimulator
    from local.simulators.vod_station import VodStationSimulator
    from local.simulators.xvid import XvidSimulator
    from local.stack import FUNCTION_ENV, LocalStack, layer_on_path, load_function

    simulators = {
        "encoding_com": EncodingComSimulator,
        "transparent_edge": TransparentEdgeSimulator,
        "xvid": XvidSimulator,
        "vod_station": VodStationSimulator,
    }
    FUNCTION_ENV["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    if "xray-debug" in names:
        FUNCTION_ENV["POWERTOOLS_TRACE_DISABLED"] = "0"
    layer_on_path()
    secrets = {WEBHOOK_TOKEN, PREVIOUS_TOKEN, *AWS_KEYS.values()}
    serialize_moto()
    with mock_aws():
        # The functions first, as Lambda's init imports them before any AWS call of theirs.
        functions = {name: load_function(name) for name in (*CREDENTIALS, "jobs_api")}
        stack = LocalStack()
        stack._modules.update(functions)
        stack.create()
        if when == "after":
            switch_on(names)
        for provider, credentials in CREDENTIALS.items():
            secrets.update(value for key, value in credentials.items() if key not in NOT_SECRET)
            with simulators[provider](**credentials) as sim:
                rotating = {**credentials, "previous_webhook_token": PREVIOUS_TOKEN}
                stack.configure(provider, sim.url, rotating, webhook_token=WEBHOOK_TOKEN)
                codes = exercise(provider, stack, sim)
                secrets.update(getattr(getattr(sim, "oauth", None), "tokens", ()))
            assert codes == [200, 200, 401, 400], (provider, codes)
    with open(os.environ[SECRETS_FILE_ENV], "w") as file:
        json.dump(sorted(secrets), file)


def serialize_moto() -> None:
    """moto in-process takes one request at a time (as tests/conftest.py's fixture does; that module is not
    imported here: it sets the environment of its own)."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    call = BotocoreStubber.__call__

    def one_at_a_time(self, event_name, request, **kwargs):
        if event_name.endswith(".sqs.ReceiveMessage"):
            return call(self, event_name, request, **kwargs)
        with lock:
            return call(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = one_at_a_time


def exercise(provider, stack, sim) -> list[int]:
    """A poll, webhooks with the current and the previous token, a refused one and a bad body; their codes."""
    if provider == "encoding_com":
        job = sim.add_job()
        assert stack.track(provider, job) == 201
        bodies = [sim.notification(job, kind="xml")]
    elif provider == "transparent_edge":
        job = sim.add_order()
        bodies = [(json.dumps({"order_id": job}), "application/json")]
    elif provider == "xvid":
        job = sim.add_job()
        bodies = [(json.dumps({"job_id": job}), "application/json")]
    else:
        job = sim.add_job(10019, "movie.mp4", ["sd"])
        sim.advance(job, 2)
        bodies = [("", "application/json")]
    report = stack.poll(provider)
    assert report["provider_failures"] == [], report
    if provider == "vod_station":
        sim.advance(job, 1)
        bodies = [(json.dumps(payload), "application/json") for payload in sim.take_callbacks()] or bodies
    codes = []
    for token in (WEBHOOK_TOKEN, PREVIOUS_TOKEN, "wrong-token"):
        body, content_type = bodies[0]
        codes.append(stack.webhook(provider, body, content_type=content_type, token=token)[0])
    codes.append(stack.webhook(provider, "{not json", token=WEBHOOK_TOKEN)[0])
    return codes


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2])
