"""DELETE /jobs/{provider}/{job_id} (CONTRACT): 204, 404 unknown; the job leaves the poll list at once, keeps
its item and history, and neither a webhook nor a listing tracks it again until a PUT does."""

from __future__ import annotations

import pytest

from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.xvid import XvidSimulator

XVID_CREDENTIALS = {"client_id": "cid", "client_secret": "csecret"}


@pytest.fixture
def encoding(stack):
    with EncodingComSimulator(user_id="u", user_key="k") as simulator:
        stack.configure("encoding_com", simulator.url, {"user_id": "u", "user_key": "k"})
        yield stack, simulator


@pytest.fixture
def xvid(stack):
    with XvidSimulator(**XVID_CREDENTIALS) as simulator:
        stack.configure("xvid", simulator.url, XVID_CREDENTIALS)
        yield stack, simulator


def test_delete_unknown_job_is_404_and_writes_nothing(stack):
    assert stack.jobs_api("DELETE", "encoding_com", "404404") == (404, {"error": "job not tracked"})
    assert stack.jobs() == []


def test_delete_stops_polling_at_once_and_keeps_item_and_history(encoding):
    stack, simulator = encoding
    media_id = simulator.add_job()
    stack.track("encoding_com", media_id)
    stack.poll("encoding_com")
    before = stack.job("encoding_com", media_id)

    assert stack.jobs_api("DELETE", "encoding_com", media_id) == (204, None)

    simulator.reset_log()
    simulator.advance(media_id, 20)
    stack.poll("encoding_com")
    assert simulator.count() == 0  # not asked about any more
    job = stack.job("encoding_com", media_id)
    assert job["status"] == before["status"] and job["untracked_at"].endswith("Z")
    assert [entry["source"] for entry in stack.history("encoding_com", media_id)][-1] == "api"
    assert stack.jobs_api("GET", "encoding_com", media_id)[0] == 200  # still readable
    assert stack.jobs_api("DELETE", "encoding_com", media_id)[0] == 204  # idempotent
    assert stack.events() == []


def test_a_webhook_does_not_track_an_untracked_job_until_a_put_does(encoding):
    stack, simulator = encoding
    media_id = simulator.add_job()
    stack.track("encoding_com", media_id)
    stack.jobs_api("DELETE", "encoding_com", media_id)
    version = stack.job("encoding_com", media_id)["version"]
    simulator.advance(media_id, 20)
    body, content_type = simulator.notification(media_id)

    status, answer = stack.webhook("encoding_com", body, content_type=content_type, base64=True)
    assert (status, answer) == (200, {"accepted": 0})  # no job touched
    assert stack.job("encoding_com", media_id)["version"] == version and stack.events() == []
    simulator.reset_log()
    stack.poll("encoding_com")
    assert simulator.count() == 0

    assert stack.track("encoding_com", media_id) == 200  # tracked again
    assert "untracked_at" not in stack.job("encoding_com", media_id)
    stack.poll("encoding_com")
    assert stack.job("encoding_com", media_id)["status"] == "COMPLETE"
    assert stack.event_ids() == [f"encoding_com#{media_id}#1#COMPLETE"]


def test_a_listing_does_not_rediscover_an_untracked_job(xvid):
    stack, simulator = xvid
    job_id = simulator.add_job()
    stack.poll("xvid")
    assert stack.job("xvid", job_id)["status"] != "COMPLETE"
    assert stack.jobs_api("DELETE", "xvid", job_id)[0] == 204
    version = stack.job("xvid", job_id)["version"]
    simulator.finish(job_id)
    stack.poll("xvid")  # the in-progress listing still shows it
    assert stack.job("xvid", job_id)["version"] == version and stack.events() == []


def test_an_unpublished_event_is_still_sent_after_delete(encoding, monkeypatch):
    stack, simulator = encoding
    media_id = simulator.add_job()
    stack.track("encoding_com", media_id)
    simulator.advance(media_id, 20)
    # The topic is down during the poll that sees the job finish: its event waits in the outbox.
    from transcode_core import notify

    def down(self, events):  # what Notifier.publish answers when the topic cannot be reached
        return [], [event["event_id"] for event in events]

    monkeypatch.setattr(notify.Notifier, "publish", down)
    stack.poll("encoding_com")
    monkeypatch.undo()
    assert stack.jobs_api("DELETE", "encoding_com", media_id)[0] == 204
    stack.configure("encoding_com", simulator.url, {"user_id": "u", "user_key": "k"})
    simulator.reset_log()
    stack.poll("encoding_com")
    assert stack.event_ids() == [f"encoding_com#{media_id}#1#COMPLETE"]
    assert simulator.count() == 0  # sent, not polled
