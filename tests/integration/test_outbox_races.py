"""No fault-free interleaving publishes an event_id twice.

moto does not serialize conditional writes, so each interleaving is driven step by step: a botocore hook
on the SNS client pauses the publishing run right after it published (before it clears the outbox), and
the other run does its reads or writes at that point."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from transcode_core.config import Settings
from transcode_core.errors import DependencyUnavailable
from transcode_core.model import Snapshot
from transcode_core.notify import Notifier
from transcode_core.pipeline import Pipeline, Report
from transcode_core.status import Status
from transcode_core.store import JobStore

PROVIDER = "encoding_com"
EVENT = "encoding_com#1#1#COMPLETE"


def snap(status: Status, word: str, **fields) -> Snapshot:
    return Snapshot(provider=PROVIDER, job_id="1", status=status, provider_status=word, **fields)


def topic_down(client) -> None:
    def hook(**_kwargs):
        raise EndpointConnectionError(endpoint_url="https://sns.example")

    client.meta.events.register("before-call.sns.*", hook)


def after_publish(client, action) -> None:
    """Runs `action` once, right after the client's next successful publish (before anything else)."""
    done = []

    def hook(**_kwargs):
        if not done:
            done.append(True)
            action()

    client.meta.events.register("after-call.sns.*", hook)


@pytest.fixture
def run(stack):
    """A factory of independent runs (own clients), as two Lambda invocations would be."""

    def make() -> tuple[Pipeline, JobStore, Notifier]:
        settings = Settings(
            table_name=stack.table_name, topic_arn=stack.topic_arn, provider_api_url=None, provider_secret_id=None
        )
        store = JobStore(stack.table_name, client=boto3.client("dynamodb"))
        notifier = Notifier(stack.topic_arn, client=boto3.client("sns"))
        return Pipeline(PROVIDER, store, notifier, settings), store, notifier

    return make


def test_a_stale_reader_cannot_put_a_published_event_back(stack, run):
    first, store, notifier = run()
    second, _, _ = run()
    first.ingest([snap(Status.PROCESSING, "Processing")])
    # Given a second run that reads the job after the first committed the finish, before it cleared
    stale = {}
    after_publish(notifier.client, lambda: stale.update(store.get(PROVIDER, "1")))
    first.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    assert EVENT in stale["outbox"]
    # When the second run writes a change of its own on top of that read (a refresh of the finished job)
    second.apply(
        snap(Status.COMPLETE, "Finished", progress=100, details={"duration": 12}),
        "poll",
        stale,
        Report(PROVIDER, "poll"),
    )
    # Then the event was published once, and no later run finds it pending
    second.ingest([snap(Status.COMPLETE, "Finished", progress=100, details={"duration": 12})])
    assert stack.event_ids() == [EVENT]
    item = store.get(PROVIDER, "1")
    assert not item.get("outbox") and item["details"] == {"duration": 12}


def test_a_jobs_api_rewatch_between_commit_and_clear_does_not_republish(stack, run):
    first, store, notifier = run()
    first.ingest([snap(Status.PROCESSING, "Processing")])
    # The jobs API's store: its second write (the rewatch) waits until the first run is done
    api_client = boto3.client("dynamodb")
    api_store = JobStore(stack.table_name, client=api_client)
    has_read, may_write = threading.Event(), threading.Event()
    writes = []

    def gate(**_kwargs):
        writes.append(True)
        if len(writes) == 2:  # the first write (create) lost and read the item; this one rewatches it
            has_read.set()
            may_write.wait(10)

    api_client.meta.events.register("before-call.dynamodb.TransactWriteItems", gate)
    rewatch = threading.Thread(target=lambda: api_store.register(PROVIDER, "1", rewatch_minutes=60))

    def start_rewatch():
        rewatch.start()
        assert has_read.wait(10)

    # Given a PUT /jobs that reads the finished job between the poll's commit and its clear
    after_publish(notifier.client, start_rewatch)
    first.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    # When the rewatch writes after the clear
    may_write.set()
    rewatch.join(10)
    # Then the next poll (which polls the rewatched job) publishes nothing again
    second, _, _ = run()
    second.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    assert stack.event_ids() == [EVENT]
    assert not store.get(PROVIDER, "1").get("outbox")


def test_a_stale_writer_cannot_undo_another_runs_claim(stack, run):
    first, store, notifier = run()
    sweeper_a, _, notifier_a = run()
    sweeper_b, _, _ = run()
    # Given a finished job whose event could not be published (it waits, unclaimed, in the outbox)
    first.ingest([snap(Status.PROCESSING, "Processing")])
    topic_down(notifier.client)
    with pytest.raises(DependencyUnavailable):
        first.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    pending = store.get(PROVIDER, "1")
    assert EVENT in pending["outbox"]

    # When run A sweeps it (claims and publishes) while a writer that read before the claim commits a
    # refresh, and run B sweeps after that write, before A clears
    def stale_write_then_sweep():
        writer, _, _ = run()
        writer.apply(
            snap(Status.COMPLETE, "Finished", progress=100, details={"size": 1}),
            "poll",
            pending,
            Report(PROVIDER, "poll"),
        )
        sweeper_b.ingest([snap(Status.COMPLETE, "Finished", progress=100, details={"size": 1})])

    after_publish(notifier_a.client, stale_write_then_sweep)
    sweeper_a.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    # Then the event went out once
    assert stack.event_ids() == [EVENT]
    assert not store.get(PROVIDER, "1").get("outbox")


def test_two_runs_sweeping_the_same_pending_event_publish_it_once(stack, run):
    first, store, notifier = run()
    first.ingest([snap(Status.PROCESSING, "Processing")])
    topic_down(notifier.client)
    with pytest.raises(DependencyUnavailable):
        first.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    run_a, _, notifier_a = run()
    run_b, _, _ = run()
    # Run B sweeps while run A is between its publish and its clear
    after_publish(notifier_a.client, lambda: run_b.ingest([snap(Status.COMPLETE, "Finished", progress=100)]))
    run_a.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    run_b.ingest([snap(Status.COMPLETE, "Finished", progress=100)])
    assert stack.event_ids() == [EVENT]
