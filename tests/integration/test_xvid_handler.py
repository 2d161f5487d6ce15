"""Xvid through its Lambda handler: scheduled polls and webhooks against the simulator, with the table, topic
and secret in moto."""

from __future__ import annotations

import json

import pytest

from local.simulators.xvid import XvidSimulator
from tests.integration.simulators import simulator_fixtures

PROVIDER = "xvid"
CREDENTIALS = {"client_id": "cid", "client_secret": "csecret"}


running_sim, sim = simulator_fixtures(XvidSimulator, **CREDENTIALS)


@pytest.fixture
def stack(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def poll_rounds(stack, sim, rounds, minutes=6):
    """A poll every `minutes`, each after one lifecycle step of every job; returns the last report."""
    report = None
    for _ in range(rounds):
        report = stack.poll(PROVIDER)
        sim.tick()
        sim.advance_clock(minutes=minutes)
    return report


def test_discovered_jobs_are_polled_to_complete_and_error_with_one_event_each(stack, sim):
    done = sim.add_job(
        input_name="https://ingest:s3cret@media.example.com/in/movie.mp4?token=abc", outputs=("hd", "sd")
    )
    failed = sim.add_job(fail=True, error_msg="Unsupported codec", error_code="E_CODEC")

    report = poll_rounds(stack, sim, 8)  # past the end of both lifecycles, and a few polls more

    assert report["provider_failures"] == []
    assert sorted(stack.event_ids()) == sorted([f"{PROVIDER}#{done}#1#COMPLETE", f"{PROVIDER}#{failed}#1#ERROR"])
    finished = stack.job(PROVIDER, done)
    assert (finished["status"], finished["provider_status"], finished["progress"]) == ("COMPLETE", "SUCCESS", 100)
    assert finished["source_url"] == "https://media.example.com/in/movie.mp4"
    assert [(output["id"], output["progress"]) for output in finished["outputs"]] == [("hd", 100), ("sd", 100)]
    assert finished["outputs"][0]["file_id"] == sim.jobs[done].outputs[0]["file_id"]
    assert finished["created_at"] == "2026-01-01T00:00:00Z" and finished["finished_at"].endswith("Z")
    assert "s3cret" not in json.dumps(stack.jobs(PROVIDER), default=str)
    errored = stack.job(PROVIDER, failed)
    assert (errored["status"], errored["provider_status"]) == ("ERROR", "FAILED")
    assert errored["error"] == {"message": "Unsupported codec", "code": "E_CODEC"}
    statuses = [item["status"] for item in stack.history(PROVIDER, done)]
    assert statuses[0] == "SUBMITTED" and statuses[-1] == "COMPLETE"
    event = next(event for event in stack.events() if event["job_id"] == failed)
    assert (event["event"], event["provider_status"]) == ("job.failed", "FAILED")


def test_a_job_that_finished_between_polls_is_caught_by_a_single_read(stack, sim):
    # Given a job seen running, that finished 20 minutes before the next poll (out of the inprogress listing)
    job_id = sim.add_job()
    sim.advance(job_id, 2)
    stack.poll(PROVIDER)
    assert stack.job(PROVIDER, job_id)["status"] == "PROCESSING"
    sim.finish(job_id)
    sim.advance_clock(minutes=20)
    sim.reset_log()

    # When the next poll runs
    report = stack.poll(PROVIDER)

    # Then the single read finds the finish
    assert report["provider_failures"] == []
    assert sim.count("GET", f"/jobs/{job_id}") == 1
    assert stack.job(PROVIDER, job_id)["status"] == "COMPLETE"
    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#COMPLETE"]


def test_a_job_registered_through_the_jobs_api_is_read_although_it_is_not_listed(stack, sim):
    job_id = sim.add_job(fail=True)
    sim.finish(job_id)
    sim.advance_clock(minutes=60)

    assert stack.track(PROVIDER, job_id) == 201
    stack.poll(PROVIDER)

    assert stack.job(PROVIDER, job_id)["status"] == "ERROR"
    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#ERROR"]


def test_finished_jobs_still_listed_are_not_written_again(stack, sim):
    job_id = sim.add_job()
    sim.finish(job_id)
    stack.poll(PROVIDER)
    version = stack.job(PROVIDER, job_id)["version"]

    for _ in range(3):  # within its 15 minutes in the inprogress listing
        sim.advance_clock(minutes=4)
        stack.poll(PROVIDER)

    assert stack.job(PROVIDER, job_id)["version"] == version
    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#COMPLETE"]


@pytest.mark.parametrize(
    "body",
    ['{"job": {"id": "%s", "status": "PROCESSING"}}', '{"job_id": "%s"}', '{"id": "%s", "status": "PROCESSING"}'],
)
def test_a_webhook_is_a_hint_the_state_comes_from_the_api(stack, sim, body):
    job_id = sim.add_job()
    sim.finish(job_id)  # the body says PROCESSING; the API says SUCCESS

    status, answer = stack.webhook(PROVIDER, body % job_id)

    assert (status, answer) == (200, {"accepted": 1})
    job = stack.job(PROVIDER, job_id)  # an authenticated webhook tracks the job it names
    assert (job["status"], job["provider_status"]) == ("COMPLETE", "SUCCESS")
    assert [item["source"] for item in stack.history(PROVIDER, job_id)] == ["webhook"]
    assert stack.webhook(PROVIDER, body % job_id)[0] == 200  # sent again: no second event
    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#COMPLETE"]


def test_a_webhook_then_polls_publish_once(stack, sim):
    job_id = sim.add_job(fail=True)
    sim.finish(job_id)

    assert stack.webhook(PROVIDER, {"job_id": job_id})[0] == 200
    for _ in range(3):
        stack.poll(PROVIDER)

    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#ERROR"]


BAD_BODIES = {
    "not-json": ("{job: 1", "application/json"),
    "json-array": ('["559cbbec14ea67a7cad60001"]', "application/json"),
    "names-no-job": ('{"status": "SUCCESS"}', "application/json"),
    "path-in-id": ('{"job_id": "../oauth2/token"}', "application/json"),
    "query-in-id": ('{"job": {"id": "559cbbec14ea67a7cad60001?expand_all=true"}}', "application/json"),
    "number-id": ('{"id": 559}', "application/json"),
    "xml": ("<job><id>559cbbec14ea67a7cad60001</id></job>", "application/xml"),
    "empty": ("", "application/json"),
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_bad_webhook_bodies_are_400_and_nothing_is_read_or_written(stack, sim, name):
    sim.add_job()
    body, content_type = BAD_BODIES[name]

    status, answer = stack.webhook(PROVIDER, body, content_type=content_type)

    assert status == 400 and answer["error"]
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_a_webhook_with_a_wrong_token_reads_and_writes_nothing(stack, sim):
    job_id = sim.add_job()

    status, _ = stack.webhook(PROVIDER, {"job_id": job_id}, token="nope")

    assert status == 401
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_a_webhook_with_the_provider_down_is_503_and_nothing_is_written(stack, sim):
    job_id = sim.add_job()
    sim.fail_next = [503] * 10

    status, answer = stack.webhook(PROVIDER, {"job_id": job_id})

    assert status == 503 and "retry" in answer["error"]
    assert stack.jobs(PROVIDER) == []


def test_a_webhook_for_a_job_xvid_does_not_know_writes_nothing(stack, sim):
    status, answer = stack.webhook(PROVIDER, '{"job_id": "559cbbec14ea67a7cad6ffff"}')

    assert status == 502 and "not found (HTTP 404)" in answer["error"]
    assert stack.jobs(PROVIDER) == []


def test_a_poll_during_an_outage_reports_it_and_writes_nothing(stack, sim):
    job_id = sim.add_job()
    stack.poll(PROVIDER)
    sim.finish(job_id)
    sim.advance_clock(minutes=20)
    before = stack.job(PROVIDER, job_id)
    sim.fail_next = [503] * 10

    report = stack.poll(PROVIDER)

    assert report["provider_failures"]
    assert stack.job(PROVIDER, job_id) == before
    assert stack.events() == []
    sim.fail_next = []  # back again: the next poll catches up
    stack.poll(PROVIDER)
    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#COMPLETE"]


def test_refused_credentials_are_reported_and_nothing_is_written(stack, sim):
    job_id = sim.add_job()
    stack.track(PROVIDER, job_id)
    before = stack.job(PROVIDER, job_id)
    stack.configure(PROVIDER, sim.url, {**CREDENTIALS, "client_secret": "wrong"})

    report = stack.poll(PROVIDER)

    assert any("token request refused (HTTP 401, invalid_client)" in failure for failure in report["provider_failures"])
    assert stack.job(PROVIDER, job_id) == before
    assert sim.count("GET") == 0


def test_an_expired_token_is_renewed_once_within_a_poll(stack, sim):
    job_id = sim.add_job()
    stack.poll(PROVIDER)
    sim.expire_tokens()  # a warm Lambda still holds the old token

    report = stack.poll(PROVIDER)

    assert report["provider_failures"] == []
    assert sim.count("POST", "/oauth2/token") == 2
    assert stack.job(PROVIDER, job_id)["status"] == "SUBMITTED"


def test_an_unknown_word_is_kept_but_moves_nothing(stack, sim):
    job_id = sim.add_job()
    sim.advance(job_id, 2)
    stack.poll(PROVIDER)
    sim.set_status(job_id, "TRANSCODING_PASS_2")

    report = stack.poll(PROVIDER)

    job = stack.job(PROVIDER, job_id)
    assert (job["status"], job["provider_status"]) == ("PROCESSING", "TRANSCODING_PASS_2")
    assert report["unknown_words"] == 1 and stack.events() == []


def test_a_restarted_job_is_a_new_attempt_with_its_own_event(stack, sim):
    # Given a job that failed, was stored with its event, and that Xvid runs again later
    job_id = sim.add_job(fail=True)
    sim.finish(job_id)
    stack.poll(PROVIDER)
    sim.advance_clock(minutes=30)
    sim.restart(job_id)

    # When the operator puts it back on the poll list, and polls follow it to the end
    assert stack.track(PROVIDER, job_id) == 200
    stack.poll(PROVIDER)
    again = stack.job(PROVIDER, job_id)
    sim.set_status(job_id, "SUCCESS")
    stack.poll(PROVIDER)

    # Then the new run is attempt 2, with its own event
    assert (again["status"], again["attempt"]) == ("SUBMITTED", 2)
    assert "error" not in again
    assert stack.event_ids() == [f"{PROVIDER}#{job_id}#1#ERROR", f"{PROVIDER}#{job_id}#2#COMPLETE"]


def test_a_job_xvid_touches_without_changing_is_not_rewritten(stack, sim):
    job_id = sim.add_job()
    sim.advance(job_id, 2)
    stack.poll(PROVIDER)
    before = stack.job(PROVIDER, job_id)
    # Xvid stamps a new updated_at, but the job shows the same status and percentage
    sim.advance_clock(minutes=1)
    sim.set_status(job_id, before["provider_status"])
    stack.poll(PROVIDER)
    assert stack.job(PROVIDER, job_id) == before
    assert "provider_updated_at" not in before.get("details", {})
