"""Scale: per-job work on a bounded pool with exact counts, calls per job, the time budget, and the
fan-out queue drained the way Lambda's SQS event source drains it."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import boto3
import pytest

from local.lambda_events import sqs_event
from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.transparent_edge import TransparentEdgeSimulator
from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import DependencyUnavailable
from transcode_core.fanout import FanOutQueue
from transcode_core.model import Snapshot
from transcode_core.notify import Notifier
from transcode_core.pipeline import Pipeline
from transcode_core.providers.base import Adapter
from transcode_core.status import Status
from transcode_core.store import JobStore

PROVIDER = "encoding_com"


class ScriptedAdapter(Adapter):
    provider = PROVIDER

    def __init__(self, results, after_each=None):
        self.results = list(results)
        self.after_each = after_each or (lambda index: None)

    def poll(self, context):
        for index, result in enumerate(self.results):
            yield result
            self.after_each(index)

    def webhook_job_ids(self, body):
        return []

    def read_jobs(self, job_ids):
        return iter(())


def snap(job_id, status, word, **fields):
    return Snapshot(provider=PROVIDER, job_id=str(job_id), status=status, provider_status=word, **fields)


class CallCounter:
    """AWS calls by service and operation, counted where botocore sends them."""

    def __init__(self, *clients):
        self.calls: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model, **_kwargs):
        self.calls[model.name] += 1


@pytest.fixture
def build(stack):
    def make(concurrency=8, **settings):
        config = Settings(
            table_name=stack.table_name,
            topic_arn=stack.topic_arn,
            provider_api_url=None,
            provider_secret_id=None,
            concurrency=concurrency,
            **settings,
        )
        store = JobStore(stack.table_name, client=boto3.client("dynamodb"))
        notifier = Notifier(stack.topic_arn, client=boto3.client("sns"))
        counter = CallCounter(store.client, notifier.client)
        return Pipeline(PROVIDER, store, notifier, config), counter

    return make


def processing(count):
    return [snap(n, Status.PROCESSING, "Processing", progress=10) for n in range(1, count + 1)]


def finished(count):
    return [snap(n, Status.COMPLETE, "Finished", progress=100) for n in range(1, count + 1)]


@pytest.mark.slow
def test_a_poll_where_every_job_finishes_makes_one_write_and_one_clear_per_job(stack, build):
    pipeline, counter = build(concurrency=8)
    pipeline.poll(ScriptedAdapter(processing(250)))
    counter.calls.clear()
    # When every one of 250 tracked jobs finishes in one poll, on 8 workers
    report = pipeline.poll(ScriptedAdapter(finished(250)))
    # Then each job is decided against its item as the index gave it (no read of its own), written once, its
    # event published once, 10 a call, and cleared by a write of its own
    assert report.changes == {"advance": 250} and report.events_published == 250 and report.job_failures == []
    assert counter.calls == {"Query": 1, "TransactWriteItems": 250, "UpdateItem": 250, "PublishBatch": 25}
    assert sorted(stack.event_ids()) == sorted(f"{PROVIDER}#{n}#1#COMPLETE" for n in range(1, 251))
    jobs = stack.jobs(PROVIDER)
    assert len(jobs) == 250 and {job["status"] for job in jobs} == {"COMPLETE"}
    assert pipeline.store.active_jobs(PROVIDER) == []
    # And an unchanged poll afterwards writes nothing (the finished jobs left the index with their clear)
    counter.calls.clear()
    assert pipeline.poll(ScriptedAdapter([])).changes == {}
    assert counter.calls == {"Query": 1}


def test_an_unchanged_poll_writes_nothing(stack, build):
    pipeline, counter = build()
    pipeline.poll(ScriptedAdapter(processing(50)))
    counter.calls.clear()
    report = pipeline.poll(ScriptedAdapter(processing(50)))
    assert report.changes == {"unchanged": 50}
    assert counter.calls == {"Query": 1}  # the index's items, held for the decisions: none read twice


def test_a_jobs_own_snapshots_are_applied_in_order_on_the_pool(stack, build):
    pipeline, _ = build(concurrency=4)
    steps = []
    for n in range(1, 21):
        steps += [snap(n, Status.QUEUED, "Ready to process"), snap(n, Status.PROCESSING, "Processing")]
    steps += finished(20)
    report = pipeline.poll(ScriptedAdapter(steps))
    assert report.changes == {"new": 20, "advance": 40} and report.race_retries == 0
    assert [h["status"] for h in stack.history(PROVIDER, "7")] == ["QUEUED", "PROCESSING", "COMPLETE"]
    assert len(stack.event_ids()) == 20


@pytest.mark.slow  # 50 jobs polled twice against the clock (seconds of CPU)
def test_the_time_budget_stops_new_work_and_the_next_run_finishes_it(stack, build):
    pipeline, _ = build(concurrency=4)
    pipeline.poll(ScriptedAdapter(processing(50)))
    now = [0.0]
    deadline = Deadline(10, clock=lambda: now[0])

    def run_out_after_twenty(index):
        if index == 19:
            now[0] = 11.0

    # Given a poll whose time runs out after the provider showed 20 of 50 finished jobs
    report = pipeline.poll(ScriptedAdapter(finished(50), after_each=run_out_after_twenty), deadline)
    # Then those 20 are written and published, the other 30 are left as they were, and the report says so
    assert report.changes == {"advance": 20} and report.events_published == 20 and report.jobs_deferred == 30
    statuses = Counter(job["status"] for job in stack.jobs(PROVIDER))
    assert statuses == {"COMPLETE": 20, "PROCESSING": 30}
    assert all("outbox" not in item for item in pipeline.store.active_jobs(PROVIDER))
    # And the next run finishes the rest: every job published exactly once
    report = pipeline.poll(ScriptedAdapter(finished(50)))
    assert report.changes == {"advance": 30, "unchanged": 20} and report.jobs_deferred == 0
    assert Counter(stack.event_ids()) == Counter(f"{PROVIDER}#{n}#1#COMPLETE" for n in range(1, 51))


def test_a_poll_out_of_time_before_it_starts_defers_every_job(stack, build):
    pipeline, counter = build()
    pipeline.poll(ScriptedAdapter(processing(5)))
    counter.calls.clear()
    report = pipeline.poll(ScriptedAdapter(finished(5)), Deadline(0))
    assert report.jobs_deferred == 5 and report.changes == {}
    assert counter.calls == {"Query": 1}


# --- fan-out -----------------------------------------------------------------------------------------
def drain(stack, provider, queue_url, batch_size=2):
    """Receives like the event source, invokes the function, deletes what it did not report as failed.
    Returns the responses and the ids of messages reported as failed."""
    sqs = boto3.client("sqs")
    failed: list[str] = []
    while True:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=batch_size, VisibilityTimeout=0)
        messages = [m for m in received.get("Messages", []) if m["MessageId"] not in failed]
        if not messages:
            return failed
        answer = stack.invoke(provider, sqs_event(messages))
        refused = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        failed.extend(refused)
        for message in messages:
            if message["MessageId"] not in refused:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def queue(stack):
    return boto3.client("sqs").create_queue(QueueName=f"fanout-{uuid.uuid4().hex[:8]}")["QueueUrl"]


@pytest.mark.slow  # 60 jobs polled twice, then fanned out and applied (seconds of CPU)
def test_a_poll_past_the_threshold_fans_its_changes_out_and_the_function_applies_them(stack, build, queue):
    pipeline, counter = build(fanout_threshold=10, fanout_batch_size=25)
    pipeline.fanout = FanOutQueue(queue, boto3.client("sqs"))
    pipeline.poll(ScriptedAdapter(processing(60)))  # 60 > 10 active jobs next time
    # Given 60 active jobs of which 55 finished and 5 did not change
    counter.calls.clear()
    report = pipeline.poll(ScriptedAdapter(finished(55) + processing(60)[55:]))
    # Then the poll wrote nothing itself and queued the 55 changes in 3 messages
    assert report.jobs_fanned_out == 55 and report.changes == {"unchanged": 5}
    assert counter.calls == {"Query": 1}
    assert stack.event_ids() == []
    # When the function drains the queue (SQS events, partial batch responses)
    assert drain(stack, PROVIDER, queue) == []
    # Then every finished job was written and published exactly once
    statuses = Counter(job["status"] for job in stack.jobs(PROVIDER))
    assert statuses == {"COMPLETE": 55, "PROCESSING": 5}
    assert Counter(stack.event_ids()) == Counter(f"{PROVIDER}#{n}#1#COMPLETE" for n in range(1, 56))


class CountingQueue(FanOutQueue):
    """The fan-out queue, counting the messages sent; `refuse_after` sends, it refuses the rest."""

    def __init__(self, queue_url, refuse_after=None):
        super().__init__(queue_url, boto3.client("sqs"))
        self.sent = 0
        self.refuse_after = refuse_after

    def enqueue(self, body):
        if self.refuse_after is not None and self.sent >= self.refuse_after:
            raise DependencyUnavailable("fan-out queue send failed: ServiceUnavailable")
        super().enqueue(body)
        self.sent += 1


def test_a_fanned_out_poll_sends_each_message_as_soon_as_it_is_full(stack, build, queue):
    # Given 60 active jobs, a fan-out past 10 jobs in messages of 10, and an adapter that notes how many
    # messages were sent by the time it hands over its last snapshot
    pipeline, _ = build(fanout_threshold=10, fanout_batch_size=10)
    pipeline.fanout = CountingQueue(queue)
    pipeline.poll(ScriptedAdapter(processing(60)))
    sent_before_last = []
    adapter = ScriptedAdapter(
        finished(60), after_each=lambda index: sent_before_last.append(pipeline.fanout.sent) if index == 58 else None
    )

    report = pipeline.poll(adapter)

    # Then five full messages were already out (the poll holds at most one message's jobs), the sixth after
    assert sent_before_last == [5]
    assert report.jobs_fanned_out == 60 and pipeline.fanout.sent == 6


def test_a_fan_out_queue_that_fails_midway_leaves_the_rest_for_the_next_poll(stack, build, queue):
    # Given 60 active jobs that all finish, and a queue that takes two messages of 10 and then fails
    pipeline, _ = build(fanout_threshold=10, fanout_batch_size=10)
    pipeline.fanout = CountingQueue(queue, refuse_after=2)
    pipeline.poll(ScriptedAdapter(processing(60)))

    report = pipeline.poll(ScriptedAdapter(finished(60)))

    # Then the 20 sent are counted fanned out, the other 40 deferred, and nothing else was written
    assert (report.jobs_fanned_out, report.jobs_deferred) == (20, 40)
    assert drain(stack, PROVIDER, queue) == []
    assert Counter(job["status"] for job in stack.jobs(PROVIDER)) == {"COMPLETE": 20, "PROCESSING": 40}
    # When the queue is back, the next poll (the provider still shows the finishes) fans out the rest
    pipeline.fanout.refuse_after = None
    report = pipeline.poll(ScriptedAdapter(finished(60)))
    assert report.jobs_fanned_out == 40 and drain(stack, PROVIDER, queue) == []
    assert Counter(stack.event_ids()) == Counter(f"{PROVIDER}#{n}#1#COMPLETE" for n in range(1, 61))


def test_a_repeated_or_late_fan_out_message_changes_nothing_and_a_bad_one_fails_alone(stack, build, queue):
    pipeline, _ = build(fanout_threshold=1, fanout_batch_size=10)
    pipeline.fanout = FanOutQueue(queue, boto3.client("sqs"))
    pipeline.poll(ScriptedAdapter(processing(5)))
    pipeline.poll(ScriptedAdapter(finished(5)))
    sqs = boto3.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    # The same message twice (SQS delivers at least once), and one that is not a fan-out message
    sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"hello": "world"}))
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    failed = drain(stack, PROVIDER, queue, batch_size=10)
    assert len(failed) == 1
    # A batch of only that message is answered the same way (listed as failed, nothing raised)
    (bad,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    answer = stack.invoke(PROVIDER, sqs_event([bad]))
    assert answer == {"batchItemFailures": [{"itemIdentifier": bad["MessageId"]}]}
    assert Counter(stack.event_ids()) == Counter(f"{PROVIDER}#{n}#1#COMPLETE" for n in range(1, 6))
    assert {job["status"] for job in stack.jobs(PROVIDER)} == {"COMPLETE"}


@pytest.mark.slow  # 30 jobs through 12 polls and 30 fan-out batches, each a cold invocation (seconds of CPU)
def test_the_scheduled_function_fans_out_and_its_sqs_trigger_applies(stack, queue):
    # encoding.com end to end: the handler polls the simulator, fans out, and applies its own messages
    with EncodingComSimulator(user_id="u", user_key="k") as sim:
        stack.configure(
            PROVIDER,
            sim.url,
            {"user_id": "u", "user_key": "k"},
            env={"FANOUT_QUEUE_URL": queue, "FANOUT_THRESHOLD": "10", "FANOUT_BATCH_SIZE": "8"},
        )
        media = [sim.add_job() for _ in range(30)]
        for media_id in media:
            stack.track(PROVIDER, media_id)
        for _ in range(12):  # past the end of the lifecycle
            sim.tick()
            report = stack.poll(PROVIDER)
            assert report["provider_failures"] == [] and report["changes"].get("advance", 0) == 0
            assert drain(stack, PROVIDER, queue) == []
    assert report["jobs_tracked"] == 0 or report["jobs_fanned_out"] == 0
    assert Counter(stack.event_ids()) == Counter(f"{PROVIDER}#{media_id}#1#COMPLETE" for media_id in media)
    assert {job["status"] for job in stack.jobs(PROVIDER)} == {"COMPLETE"}


TE = "transparent_edge"
TE_CREDENTIALS = {"company_id": "4711", "client_id": "te-client", "client_secret": "te-secret"}


@pytest.fixture
def te_sim(stack, queue):
    """TransparentEdge through its handler, fanning out past 2 active orders in messages of 2."""
    with TransparentEdgeSimulator(**TE_CREDENTIALS) as sim:
        stack.configure(
            TE,
            sim.url,
            TE_CREDENTIALS,
            env={"FANOUT_QUEUE_URL": queue, "FANOUT_THRESHOLD": "2", "FANOUT_BATCH_SIZE": "2"},
        )
        yield sim


def queued_reads(queue_url):
    """The order ids the queue's messages name to read (the messages stay queued)."""
    sqs, named = boto3.client("sqs"), []
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    for message in received.get("Messages", []):
        named.append(sorted(json.loads(message["Body"])["read"]))
    return sorted(named)


def test_a_fanned_out_transparent_edge_poll_hands_the_detail_reads_to_the_consumers(stack, queue, te_sim):
    # Given 5 tracked orders (the first poll, of no active order, reads their details itself)
    orders = [te_sim.add_order() for _ in range(5)]
    assert stack.poll(TE)["jobs_fanned_out"] == 0 and te_sim.detail_calls() == 5
    for order in orders:
        te_sim.finish(order)
    te_sim.reset_log()

    # When a poll past the threshold sees all five moved in the list
    report = stack.poll(TE)

    # Then it read no detail: its messages name the orders to read, two a message, and nothing was written
    assert te_sim.detail_calls() == 0 and te_sim.list_calls() == 1
    assert report["jobs_fanned_out"] == 5 and report["provider_failures"] == []
    named = queued_reads(queue)
    assert sorted(map(len, named)) == [1, 2, 2] and sorted(sum(named, [])) == sorted(orders)
    assert {job["status"] for job in stack.jobs(TE)} == {"QUEUED"} and stack.events() == []
    # When the function drains the queue, its consumers read each order once and apply it as a poll would
    assert drain(stack, TE, queue) == []
    assert te_sim.detail_calls() == 5 and all(te_sim.detail_calls(order) == 1 for order in orders)
    assert Counter(stack.event_ids()) == Counter(f"{TE}#{order}#1#COMPLETE" for order in orders)
    finished = stack.job(TE, orders[0])
    assert (finished["status"], finished["provider_status"], finished["progress"]) == ("COMPLETE", "FINISHED", 100)
    assert finished["created_at"] and finished["outputs"][0]["destinations"]  # the list's created_on, the detail
    # And the next poll finds nothing left to read
    te_sim.reset_log()
    stack.poll(TE)
    assert te_sim.detail_calls() == 0 and len(stack.events()) == 5


def test_a_fan_out_consumer_whose_reads_fail_reports_its_message_and_loses_nothing(stack, queue, te_sim):
    # Given 4 tracked orders that all finish, and a poll that hands their reads over in two messages
    orders = [te_sim.add_order() for _ in range(4)]
    stack.poll(TE)
    for order in orders:
        te_sim.finish(order)
    assert stack.poll(TE)["jobs_fanned_out"] == 4

    # When the provider is down while the consumer reads
    te_sim.fail_next = [503] * 50
    failed = drain(stack, TE, queue, batch_size=10)

    # Then both messages are reported failed (they come back) and every order stays as stored
    assert len(failed) == 2
    assert {job["status"] for job in stack.jobs(TE)} == {"QUEUED"} and stack.events() == []
    # When one order alone cannot be read, the other of its message is applied, and the message comes back
    te_sim.fail_next = []
    te_sim.answer_next("detail", {"detail": "Not found."}, 404)
    failed = drain(stack, TE, queue, batch_size=10)
    assert len(failed) == 1
    assert Counter(job["status"] for job in stack.jobs(TE)) == {"COMPLETE": 3, "QUEUED": 1}
    # And when it comes back, it is applied: one event an order, none twice
    assert drain(stack, TE, queue, batch_size=10) == []
    assert Counter(stack.event_ids()) == Counter(f"{TE}#{order}#1#COMPLETE" for order in orders)
    assert {job["status"] for job in stack.jobs(TE)} == {"COMPLETE"}


@pytest.mark.slow  # 60 jobs, two runs at once (seconds of CPU)
def test_two_runs_racing_over_the_same_jobs_end_exact(stack, build):
    import threading

    # Given 60 processing jobs, and a poll and a webhook batch that both see all of them finish, at once
    first, _ = build(concurrency=4)
    second, _ = build(concurrency=4)
    first.poll(ScriptedAdapter(processing(60)))
    reports = {}
    runs = [
        threading.Thread(target=lambda: reports.update(poll=first.poll(ScriptedAdapter(finished(60))))),
        threading.Thread(target=lambda: reports.update(webhook=second.ingest(finished(60)))),
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    # Then every job finished once: one write and one event each, whichever run won it
    poll, webhook = reports["poll"], reports["webhook"]
    assert poll.changes["advance"] + webhook.changes["advance"] == 60
    assert poll.events_published + webhook.events_published == 60
    assert Counter(stack.event_ids()) == Counter(f"{PROVIDER}#{n}#1#COMPLETE" for n in range(1, 61))
    assert {job["status"] for job in stack.jobs(PROVIDER)} == {"COMPLETE"}
    assert first.store.active_jobs(PROVIDER) == []


def test_the_handlers_metrics_equal_its_report(stack, capsys):
    with EncodingComSimulator(user_id="u", user_key="k") as sim:
        stack.configure(PROVIDER, sim.url, {"user_id": "u", "user_key": "k"}, env={"CONCURRENCY": "8"})
        media = [sim.add_job() for _ in range(40)]
        for media_id in media:
            stack.track(PROVIDER, media_id)
        for media_id in media:
            sim.advance(media_id, 100)
        capsys.readouterr()
        report = stack.poll(PROVIDER)
    emitted = Counter()
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[metric["Name"]]
                emitted[metric["Name"]] += sum(value) if isinstance(value, list) else value
    assert report["events_published"] == 40
    assert emitted["EventsPublished"] == 40 and emitted["JobsChanged"] == 40 and emitted["SnapshotsRead"] == 40
