"""The one AWS client factory (DynamoDB, SNS, EventBridge, SQS, Secrets Manager): short per-try timeouts, the
SDK's standard retries, and a gate that starts a try only while it fits the invocation's time, so that a
hanging or throttled endpoint ends the call inside the budget (a webhook still answers within the HTTP API's
30 s) instead of botocore's default 60 s connect and read timeouts, tried again and again."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from transcode_core.deadline import DEFAULT_MARGIN_SECONDS, Deadline

# AWS answers these calls in milliseconds; the longest ones (a 100-item transaction, a 256 KiB publish) well
# under a second. One try (connect, then read) must fit into the time a run keeps back after its provider calls
# (DEFAULT_MARGIN_SECONDS less END_MARGIN_SECONDS), so that the writes of what it read always get one.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
# Tries per call (the first included), with the SDK's standard mode: throttling and transient errors are tried
# again after a jittered exponential backoff, while the gate lets them.
MAX_ATTEMPTS = 4
MAX_BACKOFF_SECONDS = 20.0  # botocore's standard mode: a random share of 2^(attempt-1) s, at most 20 s
# Kept back from the end of the invocation to report and answer after the last AWS call.
END_MARGIN_SECONDS = 1.0
TRY_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT
assert TRY_SECONDS < DEFAULT_MARGIN_SECONDS - END_MARGIN_SECONDS


class OutOfTime(BotoCoreError):
    """No try of this AWS call fits the invocation's remaining time: the call ends as if AWS were unreachable."""

    fmt = "{operation}: not tried, {left:.1f} s left and a try may take {needed:.1f} s"


class CallBudget:
    """The time the current invocation's AWS calls may use. The Lambda edge starts it at every invocation; every
    client built with it (and every worker thread using them) shares it."""

    def __init__(self) -> None:
        self.deadline = Deadline.none()

    def begin(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def gate(self, event_name: str = "", **_kwargs: Any) -> None:
        """botocore `before-send` (once per try, retries included): refuses a try that might not end in time."""
        left = self.deadline.remaining()
        if left < TRY_SECONDS:
            operation = event_name.split(".", 1)[-1] or "AWS call"
            raise OutOfTime(operation=operation, left=left, needed=TRY_SECONDS)

    def before_backoff(
        self, attempts: int = 1, response: Any = None, caught_exception: Any = None, event_name: str = "", **_: Any
    ) -> None:
        """botocore `needs-retry` (after each try, before the SDK's retry handler sleeps): a failed try is not
        retried when the backoff before the next one (at most 2^(attempt-1) s in standard mode) and that try
        might not both end in time; the gate alone would refuse the try only after the sleep."""
        failed = caught_exception is not None or (response is not None and response[0].status_code >= 400)
        if not failed or attempts >= MAX_ATTEMPTS:
            return
        left, needed = self.deadline.remaining(), TRY_SECONDS + min(2.0 ** (attempts - 1), MAX_BACKOFF_SECONDS)
        if left < needed:
            operation = event_name.split(".", 1)[-1] or "AWS call"
            raise OutOfTime(operation=operation, left=left, needed=needed)


def client(service: str, budget: CallBudget | None = None, *, pool_size: int = 10) -> Any:
    """A boto3 client whose every try fits `budget` (if given). AWS_ENDPOINT_URL(_<SERVICE>) still applies."""
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        max_pool_connections=pool_size,
    )
    made = boto3.client(service, config=config)
    if budget is not None:
        # First, so that no other handler (a stub, a test's hook) serves a try the gate refuses.
        service_id = made.meta.service_model.service_id.hyphenize()
        made.meta.events.register_first(f"before-send.{service_id}", budget.gate)
        made.meta.events.register_first(f"needs-retry.{service_id}", budget.before_backoff)
    return made
