"""Shared fixtures: AWS is moto (`mock_aws`), providers are the project's simulators on 127.0.0.1."""

from __future__ import annotations

import os

import pytest

# Before anything imports boto3 or Powertools: no real credentials, no real endpoints, no tracing.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "transcode-status",
        "POWERTOOLS_METRICS_NAMESPACE": "TranscodeStatus",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
)
for _variable in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_variable, None)


def share_botocore_loader() -> None:
    """Every new boto3 Session (mock_aws makes a default one per test, each function's cold start makes its
    own) would read botocore's JSON models and endpoint rules from disk again, most of a test's time. One
    loader per data path serves them all: it caches what it read, and the models are only read."""
    import functools

    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.session.create_loader)


share_botocore_loader()


@pytest.fixture(autouse=True)
def cold_token_cache():
    """Every test starts as a cold Lambda: no OAuth token cached from an earlier test."""
    from transcode_core import oauth

    oauth.clear_token_cache()
    yield
    oauth.clear_token_cache()


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    serialize_moto(monkeypatch)
    with mock_aws():
        yield


def serialize_moto(monkeypatch) -> None:
    """moto in-process is not thread-safe (a transaction deep-copies the table while another thread writes):
    requests from a poll's worker pool reach it one at a time, as a server would take them (all but SQS
    receives, which may wait for a message that another thread is about to send)."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    call = BotocoreStubber.__call__

    def one_at_a_time(self, event_name, request, **kwargs):
        if event_name.endswith(".sqs.ReceiveMessage"):  # a long poll would hold every other thread up
            return call(self, event_name, request, **kwargs)
        with lock:
            return call(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", one_at_a_time)


@pytest.fixture
def stack(aws):
    """The table, topic and subscriber queue created from template.yaml, with handlers to invoke."""
    from aws_lambda_powertools.utilities import parameters

    from local.stack import LocalStack

    parameters.clear_caches()
    yield LocalStack().create()
    parameters.clear_caches()
