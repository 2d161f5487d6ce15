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


@pytest.fixture(autouse=True)
def cold_token_cache():
    """Every test starts as a cold Lambda: no OAuth token cached from an earlier test."""
    from transcode_core import oauth

    oauth.clear_token_cache()
    yield
    oauth.clear_token_cache()


@pytest.fixture
def aws():
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def stack(aws):
    """The table, topic and subscriber queue created from template.yaml, with handlers to invoke."""
    from aws_lambda_powertools.utilities import parameters

    from local.stack import LocalStack

    parameters.clear_caches()
    yield LocalStack().create()
    parameters.clear_caches()
