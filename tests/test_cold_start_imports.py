"""What a function's cold start imports, in a fresh process with the function's path and tracing on as
deployed: the jobs API loads none of the provider functions' machinery (the adapters, requests, the pipeline,
the secrets' reader, the publishers), which `make bench-imports` holds to 1.5x `import boto3`; a provider function
still traces its provider calls and has its secrets' reader and publishers loaded before its first poll."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each test starts a Python process that imports boto3 and Powertools
# Loaded at the jobs API's cold start only if something drags the provider functions' machinery in.
PROVIDER_ONLY = (
    "aws_lambda_powertools.utilities.parameters",
    "requests",
    "transcode_core.fanout",
    "transcode_core.model",  # snapshots and the rules of change: the jobs API only reads and writes statuses
    "transcode_core.notify",
    "transcode_core.pipeline",
    "transcode_core.providers.base",
    "transcode_core.providers.encoding_com",
    "transcode_core.providers.transparent_edge",
    "transcode_core.providers.vod_station",
    "transcode_core.providers.xvid",
    "transcode_core.webhook",
)
PROBE = """
import json, sys
sys.path[:0] = [{function!r}, {layer!r}]
import app
from aws_xray_sdk.core import patcher
print(json.dumps({{"modules": sorted(sys.modules), "traced": sorted(patcher._PATCHED_MODULES)}}))
"""


def cold_start(function: str) -> dict[str, list[str]]:
    env = {
        **os.environ,
        # Tracing on, as deployed (Powertools turns the Tracer off outside Lambda and when told to).
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    code = PROBE.format(function=str(ROOT / "functions" / function), layer=str(ROOT / "layers" / "transcode_core"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_jobs_api_cold_start_loads_no_provider_machinery():
    loaded = cold_start("jobs_api")
    assert [name for name in PROVIDER_ONLY if name in loaded["modules"]] == []
    assert "botocore" in loaded["traced"]  # its DynamoDB calls are still traced


def test_a_provider_function_traces_its_provider_calls_from_its_cold_start():
    loaded = cold_start("xvid")
    assert {"botocore", "requests"} <= set(loaded["traced"])
    assert {"requests", "transcode_core.pipeline", "transcode_core.providers.xvid"} <= set(loaded["modules"])
    # Loaded at the cold start (Lambda's init), not during the first poll.
    assert {"aws_lambda_powertools.utilities.parameters", "transcode_core.notify"} <= set(loaded["modules"])
