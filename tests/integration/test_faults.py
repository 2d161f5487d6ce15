"""Promises under faults, through the provider function's handler: every try of every call (provider and AWS)
fits the invocation's time; a throttled clear or lease release neither fails a run nor repeats its published
events; a poll whose every job write fails fails; a fanned-out change is applied in the period it was read.

AWS faults are botocore event hooks on boto3's default session: the function builds its clients from it at
its (cold) invocation, so the hooks reach exactly the calls its code makes. Providers are the Xvid simulator,
or a socket that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError

from local.lambda_events import LambdaContext, sqs_event
from local.simulators.xvid import XvidSimulator
from local.template import load_template
from tests.integration.simulators import simulator_fixtures
from tests.integration.test_provider_time_budget import timed
from transcode_core import store as store_module
from transcode_core import stored_items
from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import PollFailed, ProviderUnavailable
from transcode_core.http import build_session, send
from transcode_core.store import LEASE_SECONDS

PROVIDER = "xvid"
CREDENTIALS = {"client_id": "cid", "client_secret": "csecret"}


running_sim, sim = simulator_fixtures(XvidSimulator, **CREDENTIALS)


@pytest.fixture
def hanging_url():
    """A server that accepts every connection and never answers a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()
    for connection in held:
        connection.close()


class Faults:
    """botocore hooks on boto3's default session, which every client the function builds at its next (cold)
    invocation copies."""

    def __init__(self) -> None:
        self.registered: list[tuple[str, object]] = []

    def add(self, event: str, handler) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register(event, handler)
        self.registered.append((event, handler))

    def clear(self) -> None:
        while self.registered:
            boto3.DEFAULT_SESSION.events.unregister(*self.registered.pop())


@pytest.fixture
def faults():
    injected = Faults()
    yield injected
    injected.clear()


def throttle(operation: str, when=lambda params: True, times: int | None = None, code: str = "ThrottlingException"):
    """A before-parameter-build hook: the calls `when` picks raise `code` (the first `times` of them, or all)."""
    raised = []

    def hook(params, **_kwargs):
        if when(params) and (times is None or len(raised) < times):
            raised.append(True)
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    hook.raised = raised
    return hook


def one_by_one_clear(params) -> bool:
    return "REMOVE outbox" in params["UpdateExpression"] and ".lease" not in params["UpdateExpression"]


def releases(params) -> bool:
    return params["UpdateExpression"].startswith("REMOVE outbox.#e.lease")


def after_the_lease(monkeypatch) -> None:
    """Moves the leases' clock past every lease taken so far (the outbox's only use of wall time)."""
    real_time = time.time
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: real_time() + LEASE_SECONDS + 1))


def emitted_metrics(output: str) -> Counter:
    """The metrics the functions printed (CloudWatch EMF lines), added up by name."""
    emitted: Counter = Counter()
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[metric["Name"]]
                emitted[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return emitted


@pytest.fixture
def stack(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def finished_jobs(stack, sim, count: int) -> list[str]:
    """`count` Xvid jobs, discovered by a poll, then finished at the provider."""
    job_ids = [sim.add_job() for _ in range(count)]
    stack.poll(PROVIDER)
    for job_id in job_ids:
        sim.finish(job_id)
    return job_ids


def completed(job_ids) -> Counter:
    return Counter(f"{PROVIDER}#{job_id}#1#COMPLETE" for job_id in job_ids)


# --- every try fits the time left --------------------------------------------------------------------------
@pytest.mark.slow  # waits out real timeouts (seconds of wall time)
def test_a_provider_that_never_answers_gets_a_503_well_within_the_http_api_s_30_s(stack, hanging_url):
    # Given the template's default timeouts and retries, and a provider that accepts and never answers
    defaults = load_template()["Parameters"]
    stack.configure(
        PROVIDER,
        hanging_url,
        CREDENTIALS,
        env={
            "HTTP_CONNECT_TIMEOUT": str(defaults["HttpConnectTimeout"]["Default"]),
            "HTTP_READ_TIMEOUT": str(defaults["HttpReadTimeout"]["Default"]),
            "HTTP_RETRIES": str(Settings.http_retries),
        },
    )
    # When it sends a webhook
    (status, body), took = timed(lambda: stack.webhook(PROVIDER, {"job_id": "559cbbec14ea67a7cad60001"}), limit=40)
    # Then the retry after the first read timeout gets only the time left: 503 well before the 30 s cut-off
    assert status == 503 and "retry later" in body["error"]
    assert took < 27


@pytest.mark.slow  # waits out real timeouts (seconds of wall time)
def test_each_retry_of_a_read_that_timed_out_gets_only_the_time_left(hanging_url):
    # Given 3 s left, a 2 s read timeout and three retries, against a provider that never answers
    session = build_session(retries=3, backoff=0, connect_timeout=1, read_timeout=2)
    # When a call is made
    result, took = timed(lambda: send(PROVIDER, session, "GET", hanging_url, deadline=Deadline(3.0)), limit=15)
    # Then its tries end with the deadline (not 4 x 2 s), as a deferral
    assert isinstance(result, ProviderUnavailable) and "no time left" in result.message
    assert took < 3.5


@pytest.mark.slow  # waits out real timeouts (seconds of wall time)
def test_a_table_that_never_answers_ends_the_webhook_inside_its_budget(stack, sim, hanging_url, monkeypatch):
    # Given an invocation with 10 s left, and DynamoDB (only it) accepting connections and never answering
    job_id = sim.add_job()
    stack.configure(PROVIDER, sim.url, CREDENTIALS, env={"AWS_ENDPOINT_URL_DYNAMODB": hanging_url})

    class TenSecondsLeft(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    monkeypatch.setattr("local.stack.LambdaContext", TenSecondsLeft)
    # When the provider sends a webhook
    (status, body), took = timed(lambda: stack.webhook(PROVIDER, {"job_id": job_id}), limit=30)
    # Then the table's tries stop when no other fits the time left (not botocore's 60 s, tried 10 times)
    assert status == 503 and "retry later" in body["error"]
    assert took < 10


# --- a throttled clear or release ----------------------------------------------------------------------------
def test_a_throttled_clear_neither_fails_the_poll_nor_repeats_its_events(stack, sim, faults, monkeypatch):
    job_ids = finished_jobs(stack, sim, 3)
    # Given DynamoDB throttling the write that clears one of the poll's published events
    hook = throttle("UpdateItem", one_by_one_clear, times=1)
    faults.add("before-parameter-build.dynamodb.UpdateItem", hook)
    # When the poll publishes its three events
    report = stack.poll(PROVIDER)
    # Then it ends normally, that event cleared by the run's last try
    assert hook.raised and report["events_published"] == 3 and report["events_uncleared"] == 0
    assert stack.jobs(PROVIDER) and all(job["status"] == "COMPLETE" for job in stack.jobs(PROVIDER))
    # And none of them is published again once the run's leases end
    faults.clear()
    after_the_lease(monkeypatch)
    stack.poll(PROVIDER)
    assert Counter(stack.event_ids()) == completed(job_ids)


def test_a_clear_that_fails_every_try_is_counted_and_its_events_come_again_after_the_lease(
    stack, sim, faults, monkeypatch, capsys
):
    # The documented duplicate: the table refuses every clear of the run (each job's, then the last try)
    job_ids = finished_jobs(stack, sim, 2)
    faults.add("before-parameter-build.dynamodb.UpdateItem", throttle("UpdateItem", one_by_one_clear))
    capsys.readouterr()
    report = stack.poll(PROVIDER)
    assert report["events_published"] == 2 and report["events_uncleared"] == 2
    assert emitted_metrics(capsys.readouterr().out)["EventsUncleared"] == 2
    # Once the leases end, the next run publishes them again (same event ids), then clears them
    faults.clear()
    after_the_lease(monkeypatch)
    stack.poll(PROVIDER)
    assert Counter(stack.event_ids()) == completed(job_ids) + completed(job_ids)
    stack.poll(PROVIDER)
    assert Counter(stack.event_ids()) == completed(job_ids) + completed(job_ids)


def test_a_throttled_release_after_a_partly_failed_publish_keeps_what_was_published(stack, sim, faults, monkeypatch):
    published_job, refused_job = finished_jobs(stack, sim, 2)
    # Given SNS refusing one entry of the PublishBatch, and DynamoDB throttling the lease's release
    refused_ids = []

    def refuse_one(params, **_kwargs):
        entries = params["PublishBatchRequestEntries"]
        for entry in entries:
            if refused_job in entry["Subject"]:
                refused_ids.append(entry["Id"])
        params["PublishBatchRequestEntries"] = [entry for entry in entries if entry["Id"] not in refused_ids]

    def report_refused(parsed, **_kwargs):
        parsed.setdefault("Failed", []).extend(
            {"Id": entry_id, "Code": "InternalError", "SenderFault": False, "Message": "injected"}
            for entry_id in refused_ids
        )
        refused_ids.clear()

    faults.add("before-parameter-build.sns.PublishBatch", refuse_one)
    faults.add("after-call.sns.PublishBatch", report_refused)
    release = throttle("UpdateItem", releases)
    faults.add("before-parameter-build.dynamodb.UpdateItem", release)
    # When the poll publishes both events
    report = stack.poll(PROVIDER)
    # Then the run ends normally, and the published event is recorded and cleared
    assert release.raised and report["events_published"] == 1 and report["publish_failures"] == 1
    assert stack.event_ids() == [f"{PROVIDER}#{published_job}#1#COMPLETE"]
    # And after the lease (which could not be given back) only the refused event is sent
    faults.clear()
    after_the_lease(monkeypatch)
    stack.poll(PROVIDER)
    assert Counter(stack.event_ids()) == completed([published_job, refused_job])


# --- a poll whose every write fails ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "ConditionalCheckFailed"},
            "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
        },
    ],
    ids=["access-denied", "conflict"],
)
def test_a_poll_whose_every_job_write_fails_fails_and_counts_them(stack, sim, faults, capsys, error):
    job_ids = [sim.add_job() for _ in range(3)]

    def refuse(**_kwargs):
        raise ClientError(error, "TransactWriteItems")

    faults.add("before-parameter-build.dynamodb.TransactWriteItems", refuse)
    capsys.readouterr()
    # When a poll discovers three jobs and cannot write any of them
    with pytest.raises(PollFailed):
        stack.poll(PROVIDER)
    # Then the invocation failed (Errors alarm, failed-poll queue), and JobFailures says how many
    assert emitted_metrics(capsys.readouterr().out)["JobFailures"] == 3
    assert stack.jobs(PROVIDER) == []
    # And once the writes go through again, the next poll is a success that writes them
    faults.clear()
    assert stack.poll(PROVIDER)["changes"] == {"new": 3}
    assert sorted(job["job_id"] for job in stack.jobs(PROVIDER)) == sorted(job_ids)


def test_a_poll_with_some_failed_writes_still_succeeds(stack, sim, faults):
    sim.add_job()
    sim.add_job()
    faults.add("before-parameter-build.dynamodb.TransactWriteItems", throttle("TransactWriteItems", times=1))
    report = stack.poll(PROVIDER)
    assert len(report["job_failures"]) == 1 and report["changes"] == {"new": 1}


@pytest.mark.slow  # 400 jobs discovered, then finished
def test_a_poll_of_more_jobs_than_it_holds_reads_only_the_jobs_past_them_again_each_once(
    stack, sim, faults, monkeypatch
):
    monkeypatch.setattr(stored_items, "ITEMS_HELD", 300)
    job_ids = finished_jobs(stack, sim, 400)
    read_again = []
    faults.add(
        "before-parameter-build.dynamodb.BatchGetItem",
        lambda params, **_: read_again.extend(
            key["pk"]["S"] for ask in params["RequestItems"].values() for key in ask["Keys"]
        ),
    )
    # When a poll finds its 400 active jobs finished, holding 300 items at most
    report = stack.poll(PROVIDER)
    # Then every job is applied and published once, and of their items only the 100 the index's pages did not
    # leave held were read again, each once
    assert report["changes"] == {"advance": 400} and report["events_published"] == 400
    assert len(read_again) == 100 and len(set(read_again)) == 100
    assert Counter(stack.event_ids()) == completed(job_ids)


def test_a_stored_jobs_read_that_fails_mid_poll_keeps_what_was_applied_and_leaves_the_rest_for_the_next(
    stack, sim, faults, monkeypatch
):
    monkeypatch.setattr(stored_items, "ITEMS_HELD", 50)  # the other 100 jobs' items are read again
    job_ids = finished_jobs(stack, sim, 150)
    reads = []
    faults.add(
        "before-parameter-build.dynamodb.BatchGetItem",
        throttle("BatchGetItem", when=lambda params: reads.append(params) or len(reads) == 2),
    )
    # When the table refuses the second read of the stored jobs the poll does not hold
    report = stack.poll(PROVIDER)
    # Then the jobs it held are written and published, the failure is counted, and the invocation succeeds
    applied = report["changes"].get("advance", 0)
    assert 0 < applied < 150 and report["events_published"] == applied
    assert len(report["job_failures"]) == 1 and "jobs table unreachable" in report["job_failures"][0]
    # And the next poll finishes the others: every job's event published exactly once
    faults.clear()
    assert stack.poll(PROVIDER)["changes"] == {"advance": 150 - applied}
    assert Counter(stack.event_ids()) == completed(job_ids)


# --- fan-out -----------------------------------------------------------------------------------------------
def drain(stack, queue_url) -> None:
    """Receives like the SQS event source and invokes the function until the queue is empty."""
    sqs = boto3.client("sqs")
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        answer = stack.invoke(PROVIDER, sqs_event(messages))
        assert answer["batchItemFailures"] == []
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_a_fanned_out_change_of_a_job_whose_pending_event_the_poll_swept_is_applied_in_the_same_period(
    stack, sim, faults
):
    queue = boto3.client("sqs").create_queue(QueueName=f"fanout-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    stack.configure(
        PROVIDER,
        sim.url,
        CREDENTIALS,
        env={"FANOUT_QUEUE_URL": queue, "FANOUT_THRESHOLD": "1", "STALL_MINUTES": "0.001"},
    )
    job_ids = [sim.add_job() for _ in range(2)]
    stack.poll(PROVIDER)
    drain(stack, queue)
    # Given two running jobs whose stall events wait in the outbox (the topic was down when they stalled)
    topic_down = throttle("PublishBatch", code="InternalError")
    faults.add("before-parameter-build.sns.PublishBatch", topic_down)
    time.sleep(0.1)
    assert stack.poll(PROVIDER)["publish_failures"] == 2
    faults.clear()
    # When they finish, and the next poll sweeps (claims, publishes, clears) the stall events and fans the
    # finishes out
    for job_id in job_ids:
        sim.finish(job_id)
    report = stack.poll(PROVIDER)
    assert report["jobs_fanned_out"] == 2 and report["events_published"] == 2
    drain(stack, queue)
    # Then the fan-out consumer applies the finishes in the same period
    assert {job["status"] for job in stack.jobs(PROVIDER)} == {"COMPLETE"}
    stalls = Counter(f"{PROVIDER}#{job_id}#1#STALLED" for job_id in job_ids)
    assert Counter(stack.event_ids()) == stalls + completed(job_ids)
