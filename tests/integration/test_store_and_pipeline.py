"""The core against moto: conditional writes, races, history, the outbox, stalls, per-job isolation.

Providers are not involved here: a scripted adapter hands the pipeline the snapshots a provider would."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from transcode_core.config import Settings
from transcode_core.errors import DependencyUnavailable, ProviderError
from transcode_core.model import Snapshot
from transcode_core.notify import Notifier
from transcode_core.pipeline import Pipeline, Report
from transcode_core.providers.base import Adapter, PollFailure
from transcode_core.status import Status
from transcode_core.store import Conflict, JobStore
from transcode_core.times import iso_z, utc_now


class ScriptedAdapter(Adapter):
    """Yields what the test scripted for each poll; remembers what it was asked to poll."""

    provider = "encoding_com"

    def __init__(self, *results):
        self.results = list(results)
        self.polled: list[list[str]] = []

    def poll(self, context):
        self.polled.append(sorted(context.active_by_id))
        for result in self.results:
            if isinstance(result, Exception):
                raise result
            yield result

    def webhook_job_ids(self, body):
        return []

    def read_jobs(self, job_ids):
        return iter(())


class FlakyNotifier(Notifier):
    """A real SNS notifier whose topic can be made unreachable."""

    def __init__(self, topic_arn):
        super().__init__(topic_arn, boto3.client("sns"))
        self.down = False

    def publish(self, events):
        if self.down:
            return [], [event["event_id"] for event in events]
        return super().publish(events)


def snap(job_id: str, status: Status, word: str, **fields) -> Snapshot:
    return Snapshot(provider="encoding_com", job_id=job_id, status=status, provider_status=word, **fields)


@pytest.fixture
def parts(stack):
    settings = Settings(
        table_name=stack.table_name, topic_arn=stack.topic_arn, provider_api_url=None, provider_secret_id=None
    )
    store = JobStore(stack.table_name)
    notifier = FlakyNotifier(stack.topic_arn)
    return stack, store, notifier, Pipeline("encoding_com", store, notifier, settings)


def test_a_job_moves_forward_and_publishes_once_with_history(parts):
    stack, store, _, pipeline = parts
    # Given a job seen queued, then processing, then finished twice (two polls see the same finish)
    for status, word in [(Status.QUEUED, "Waiting for encoder"), (Status.PROCESSING, "Processing")]:
        pipeline.poll(ScriptedAdapter(snap("1", status, word)))
    pipeline.poll(ScriptedAdapter(snap("1", Status.COMPLETE, "Finished", progress=100)))
    pipeline.poll(ScriptedAdapter(snap("1", Status.COMPLETE, "Finished", progress=100)))
    # Then the item is COMPLETE at version 4 (three changes and the event's clear), history holds every
    # change, and exactly one event went out
    job = stack.job("encoding_com", "1")
    assert (job["status"], job["provider_status"], job["version"], job["attempt"]) == ("COMPLETE", "Finished", 4, 1)
    assert [h["status"] for h in stack.history("encoding_com", "1")] == ["QUEUED", "PROCESSING", "COMPLETE"]
    assert all(h["sk"].startswith("EVENT#") and h["source"] == "poll" for h in stack.history("encoding_com", "1"))
    events = stack.events()
    assert [e["event_id"] for e in events] == ["encoding_com#1#1#COMPLETE"]
    assert events[0]["previous_status"] == "PROCESSING" and events[0]["job"]["status"] == "COMPLETE"
    assert "pk" not in events[0]["job"] and "outbox" not in events[0]["job"]
    # And the finished job left the poll list
    assert store.active_jobs("encoding_com") == []


def test_stale_and_unknown_words_never_move_or_publish(parts):
    stack, _, _, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing")))
    pipeline.poll(ScriptedAdapter(snap("1", Status.QUEUED, "Waiting for encoder")))
    report = pipeline.poll(ScriptedAdapter(snap("1", Status.UNKNOWN, "Paused")))
    job = stack.job("encoding_com", "1")
    assert (job["status"], job["provider_status"]) == ("PROCESSING", "Paused")
    assert report.unknown_words == 1 and stack.events() == []


def test_stale_read_then_conditional_write_loses(parts):
    _, store, _, pipeline = parts
    # Given two writers that both read version 1 of the job
    pipeline.poll(ScriptedAdapter(snap("1", Status.QUEUED, "Waiting for encoder")))
    stale = store.get("encoding_com", "1")
    winner = {
        **stale,
        "status": "PROCESSING",
        "provider_status": "Processing",
        "version": 2,
        "updated_at": iso_z(utc_now()),
    }
    store.commit(winner, 1, "webhook")
    # When the second writes on top of what it read, it loses and learns the winner's state in the same call
    loser = {**stale, "status": "UPLOADING", "version": 2, "updated_at": iso_z(utc_now())}
    with pytest.raises(Conflict) as lost:
        store.commit(loser, 1, "poll")
    assert lost.value.current["status"] == "PROCESSING" and lost.value.current["version"] == 2


def test_interleaved_poll_and_webhook_publish_one_event(parts):
    stack, store, _, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing")))
    stale = store.get("encoding_com", "1")
    # A webhook applies the finish first ...
    pipeline.ingest([snap("1", Status.COMPLETE, "Finished")], source="webhook")
    # ... then a poll that read the job before applies the same finish from its stale read: its write
    # loses, it re-decides against the winner's state and finds nothing left to do
    outcome = pipeline.apply(snap("1", Status.COMPLETE, "Finished"), "poll", stale, Report("encoding_com", "poll"))
    assert outcome == "unchanged"
    assert stack.event_ids() == ["encoding_com#1#1#COMPLETE"]
    assert store.get("encoding_com", "1")["version"] == 3  # the finish, then its event's clear


def test_failed_publish_stays_in_outbox_and_next_run_sends_it(parts):
    stack, store, notifier, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing")))
    notifier.down = True
    report = pipeline.poll(ScriptedAdapter(snap("1", Status.ERROR, "Error")))
    assert report.publish_failures == 1 and stack.events() == []
    item = store.get("encoding_com", "1")
    assert item["status"] == "ERROR" and list(item["outbox"]) == ["encoding_com#1#1#ERROR"]
    assert [job["job_id"] for job in store.active_jobs("encoding_com")] == ["1"]  # still findable without a scan
    # When the topic is back, the next poll sweeps the outbox, without asking the provider about the job
    notifier.down = False
    adapter = ScriptedAdapter()
    pipeline.poll(adapter)
    assert adapter.polled == [[]]
    assert stack.event_ids() == ["encoding_com#1#1#ERROR"]
    assert "outbox" not in store.get("encoding_com", "1") and store.active_jobs("encoding_com") == []


def test_webhook_ingest_with_topic_down_raises_unavailable_but_keeps_the_change(parts):
    stack, store, notifier, pipeline = parts
    notifier.down = True
    with pytest.raises(DependencyUnavailable):
        pipeline.ingest([snap("7", Status.COMPLETE, "Finished")])
    assert store.get("encoding_com", "7")["status"] == "COMPLETE"
    # The provider retries the webhook: the change is not applied twice, the pending event goes out once
    notifier.down = False
    pipeline.ingest([snap("7", Status.COMPLETE, "Finished")])
    assert stack.event_ids() == ["encoding_com#7#1#COMPLETE"]


def test_new_attempt_after_finish_publishes_again(parts):
    stack, _, _, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("1", Status.COMPLETE, "Finished", started_at="2026-11-25T10:00:00Z")))
    pipeline.ingest([snap("1", Status.PROCESSING, "Processing", started_at="2026-11-25T11:00:00Z")])
    pipeline.poll(ScriptedAdapter(snap("1", Status.COMPLETE, "Finished", started_at="2026-11-25T11:00:00Z")))
    assert stack.event_ids() == ["encoding_com#1#1#COMPLETE", "encoding_com#1#2#COMPLETE"]
    assert stack.job("encoding_com", "1")["attempt"] == 2


def test_provider_failure_leaves_jobs_and_the_batch_goes_on(parts):
    stack, _, _, pipeline = parts
    failure = PollFailure(ProviderError("encoding_com", "Wrong user id or key!"), ("2",))
    report = pipeline.poll(ScriptedAdapter(failure, snap("1", Status.PROCESSING, "Processing")))
    assert report.provider_failures == ["Wrong user id or key!"]
    assert [job["job_id"] for job in stack.jobs("encoding_com")] == ["1"]


def test_a_broken_snapshot_fails_alone(parts):
    stack, _, _, pipeline = parts
    broken = Snapshot(provider="encoding_com", job_id="bad", status="not-a-status", provider_status="?")  # type: ignore[arg-type]
    report = pipeline.poll(ScriptedAdapter(broken, snap("1", Status.COMPLETE, "Finished")))
    assert report.job_failures and report.job_failures[0].startswith("bad:")
    assert stack.job("encoding_com", "1")["status"] == "COMPLETE"


def test_a_quiet_job_is_reported_stalled_once_per_attempt(parts):
    stack, store, _, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing")))
    later = utc_now() + timedelta(minutes=pipeline.settings.stall_minutes + 1)
    pipeline.clock = lambda: later
    pipeline.poll(ScriptedAdapter())  # the provider says nothing new about job 1
    pipeline.poll(ScriptedAdapter())
    events = stack.events()
    assert [(e["event"], e["event_id"]) for e in events] == [("job.stalled", "encoding_com#1#1#STALLED")]
    messages = stack.messages()
    assert messages[0]["subject"] == "[STALLED] encoding_com job 1"
    assert messages[0]["attributes"] == {"provider": "encoding_com", "status": "PROCESSING", "event": "job.stalled"}


def test_a_job_the_provider_shows_unchanged_writes_nothing_until_it_has_stalled(parts):
    stack, store, _, pipeline = parts
    seen = snap("1", Status.PROCESSING, "Processing", progress=40)
    pipeline.poll(ScriptedAdapter(seen))
    # Polls that see the very same state count it unchanged and write nothing
    report = pipeline.poll(ScriptedAdapter(seen))
    assert dict(report.changes) == {"unchanged": 1} and store.get("encoding_com", "1")["version"] == 1
    # Past STALL_MINUTES the same unchanged answer makes it stalled, once
    later = utc_now() + timedelta(minutes=pipeline.settings.stall_minutes + 1)
    pipeline.clock = lambda: later
    report = pipeline.poll(ScriptedAdapter(seen))
    pipeline.poll(ScriptedAdapter(seen))
    assert dict(report.changes) == {"unchanged": 1, "stalled": 1}
    assert stack.event_ids() == ["encoding_com#1#1#STALLED"]


def test_jobs_api_put_on_a_finished_job_watches_it_again(parts):
    stack, store, _, pipeline = parts
    assert stack.track("encoding_com", "5") == 201
    pipeline.poll(ScriptedAdapter(snap("5", Status.COMPLETE, "Finished")))
    assert store.active_jobs("encoding_com") == []
    assert stack.track("encoding_com", "5") == 200
    adapter = ScriptedAdapter()
    pipeline.poll(adapter)
    assert adapter.polled == [["5"]]


def test_event_message_shape(parts):
    stack, _, _, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("42", Status.COMPLETE, "Finished")))
    (message,) = stack.messages()
    assert message["subject"] == "[COMPLETE] encoding_com job 42"
    assert message["attributes"] == {"provider": "encoding_com", "status": "COMPLETE", "event": "job.completed"}
    event = message["message"]
    assert event["schema"] == "transcode-status.job-event/1"
    assert set(event) == {
        "schema",
        "event_id",
        "event",
        "provider",
        "job_id",
        "status",
        "previous_status",
        "provider_status",
        "attempt",
        "occurred_at",
        "job",
    }
    assert event["occurred_at"].endswith("Z") and json.dumps(event)


def test_a_swept_event_is_not_published_again_by_a_change_in_the_same_poll(parts):
    stack, store, notifier, pipeline = parts
    # Given an active job whose stall event could not be published
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing", progress=10)))
    later = utc_now() + timedelta(minutes=pipeline.settings.stall_minutes + 1)
    pipeline.clock = lambda: later
    notifier.down = True
    pipeline.poll(ScriptedAdapter())
    assert list(store.get("encoding_com", "1")["outbox"]) == ["encoding_com#1#1#STALLED"]
    # When the topic is back and the same poll also sees progress on the job
    notifier.down = False
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing", progress=60)))
    pipeline.poll(ScriptedAdapter(snap("1", Status.PROCESSING, "Processing", progress=70)))
    # Then the stall event went out exactly once and the job holds no pending event
    assert stack.event_ids() == ["encoding_com#1#1#STALLED"]
    assert "outbox" not in store.get("encoding_com", "1")


def test_only_one_run_publishes_a_pending_event(parts):
    stack, store, notifier, pipeline = parts
    notifier.down = True
    pipeline.poll(ScriptedAdapter(snap("1", Status.COMPLETE, "Finished")))
    pending = store.get("encoding_com", "1")
    event_id = "encoding_com#1#1#COMPLETE"
    # Two runs read the same pending event: the first takes the outbox, the second leaves it alone
    taken = store.claim_outbox(pending, [event_id])
    assert taken and taken["version"] == pending["version"] + 1
    assert store.claim_outbox(pending, [event_id]) is None
    # A failed publish gives it back at once; a cleared event cannot be taken any more
    store.release_outbox(taken, [event_id])
    again = store.claim_outbox(pending, [event_id])
    assert again
    store.clear_outbox([(again, [event_id])])
    assert store.claim_outbox(pending, [event_id]) is None
    assert "outbox" not in store.get("encoding_com", "1") and store.active_jobs("encoding_com") == []


def test_a_concurrent_sweep_does_not_publish_what_the_writer_is_publishing(parts):
    stack, store, notifier, pipeline = parts
    notifier.down = True
    with pytest.raises(DependencyUnavailable):  # the change is written, its event waits in the outbox
        pipeline.ingest([snap("7", Status.COMPLETE, "Finished")])
    stored = store.get("encoding_com", "7")
    notifier.down = False
    # The writer holds the outbox (it is about to publish) while a poll sweeps the same job
    assert store.claim_outbox(stored, ["encoding_com#7#1#COMPLETE"])
    pipeline.poll(ScriptedAdapter())
    assert stack.event_ids() == []


def test_a_jobs_api_rewatch_is_a_change_that_a_stale_writer_cannot_undo(parts):
    stack, store, _, pipeline = parts
    pipeline.poll(ScriptedAdapter(snap("5", Status.COMPLETE, "Finished")))
    stale = store.get("encoding_com", "5")
    assert stack.track("encoding_com", "5") == 200  # watch it again
    assert store.get("encoding_com", "5")["version"] == stale["version"] + 1
    refreshed = {**stale, "version": stale["version"] + 1, "details": {"note": "x"}, "updated_at": iso_z(utc_now())}
    with pytest.raises(Conflict):
        store.commit(refreshed, stale["version"], "poll")
    assert [job["job_id"] for job in store.active_jobs("encoding_com")] == ["5"]
