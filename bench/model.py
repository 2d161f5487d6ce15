"""The bench's model of a Lambda invocation at a `MemorySize`, and its prices.

Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB. The functions are Python,
whose threads share one interpreter lock, so more than one vCPU buys them next to nothing: the share is
taken as min(M, 1769) / 1769 of one vCPU, this machine's core standing for a vCPU. An invocation's duration
at M is then

    duration(M) = function CPU seconds / share(M) + waits

where the function CPU is what the bench's process spent in the invocation less the simulator's share
(moto runs in its own process), and `waits` what the invocation waited on the injected latencies: the time
in which a provider request was pending, and DynamoDB's latency for each call of the invocation's thread and
for each CONCURRENCY calls of its workers (bench/__main__.py InjectedWaits); neither this machine's load nor
moto's speed changes them. SNS and SQS calls get no injected latency, so their network time is not in it.
Adding the two overstates: CPU work in one thread overlaps waits in others, the more so at a smaller share.
`--cpu-share` checks the model on this machine (bench/__main__.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

FULL_CPU_MB = 1769
MEMORY_SIZES = (256, 512, 1024, 1769)
PERIOD_S = 300  # PollRate rate(5 minutes)
QUIET_TARGET_S = 60
TARGET_JOBS = 50_000
FANOUT_CONSUMERS = 10  # the queues' event sources' MaximumConcurrency in template.yaml
# us-east-1 on-demand prices, USD. Lambda by the template's architecture (x86_64: 0.0000166667 per GB-s).
PRICES = {
    "lambda_gb_s": {"arm64": 0.0000133334, "x86_64": 0.0000166667},
    "lambda_request": 0.20 / 1e6,
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "sns_publish": 0.50 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "eventbridge_put": 1.00 / 1e6,
}


def cpu_share(memory_mb: int) -> float:
    return min(memory_mb, FULL_CPU_MB) / FULL_CPU_MB


def duration(cpu_s: float, wait_s: float, memory_mb: int) -> float:
    return cpu_s / cpu_share(memory_mb) + wait_s


def invocation_cost(seconds: float, memory_mb: int, architecture: str) -> float:
    """One invocation's Lambda charge: its request and its GB-seconds (billed by the millisecond)."""
    gb_s = math.ceil(seconds * 1000) / 1000 * memory_mb / 1024
    return PRICES["lambda_request"] + gb_s * PRICES["lambda_gb_s"][architecture]


def requests_cost(wru: float, rru: float, sns: float, sqs: float = 0.0) -> float:
    return (
        wru * PRICES["dynamodb_wru"]
        + rru * PRICES["dynamodb_rru"]
        + sns * PRICES["sns_publish"]
        + sqs * PRICES["sqs_request"]
    )


def deployed(template_path: Path) -> dict[str, Any]:
    """What template.yaml deploys: each provider function's MemorySize and Timeout, the jobs API's, and the
    architecture."""
    from local.template import load_template

    template = load_template(template_path)
    globals_ = template.get("Globals", {}).get("Function", {})
    ids = {
        "EncodingComFunction": "encoding_com",
        "TransparentEdgeFunction": "transparent_edge",
        "XvidFunction": "xvid",
        "VodStationFunction": "vod_station",
        "JobsApiFunction": "jobs_api",
    }
    found: dict[str, Any] = {"architecture": (globals_.get("Architectures") or ["x86_64"])[0], "functions": {}}
    for logical_id, name in ids.items():
        properties = template["Resources"].get(logical_id, {}).get("Properties", {})
        found["functions"][name] = {
            "memory_mb": int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
            "timeout_s": int(properties.get("Timeout", globals_.get("Timeout", 3))),
        }
    return found
