"""encoding.com through its Lambda handler: scheduled polls and notifications against the simulator, with the
table, topic and secret in moto."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from local.simulators.encoding_com import EncodingComSimulator
from tests.integration.simulators import simulator_fixtures

PROVIDER = "encoding_com"
CREDENTIALS = {"user_id": "u", "user_key": "k"}
FORM = "application/x-www-form-urlencoded"


running_sim, sim = simulator_fixtures(EncodingComSimulator, **CREDENTIALS)


@pytest.fixture
def stack(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def notify(stack, sim, media_id, kind="xml", **kwargs):
    body, content_type = sim.notification(media_id, kind=kind)
    return stack.webhook(PROVIDER, body, content_type=content_type, **kwargs)


def test_tracked_media_are_polled_to_finished_and_error_with_one_event_each(stack, sim):
    done = sim.add_job(source="ftp://ingest:s3cret@ftp.example.com/in/a.mov", formats=2)
    failed = sim.add_job(fail=True)
    assert [stack.track(PROVIDER, media_id) for media_id in (done, failed)] == [201, 201]

    stack.poll(PROVIDER)
    assert {job["job_id"]: job["status"] for job in stack.jobs(PROVIDER)} == {done: "SUBMITTED", failed: "SUBMITTED"}
    for _ in range(10):  # past the end of both lifecycles (9 and 8 steps), and a poll more
        sim.tick()
        report = stack.poll(PROVIDER)

    assert report["provider_failures"] == []
    assert sorted(stack.event_ids()) == sorted([f"{PROVIDER}#{done}#1#COMPLETE", f"{PROVIDER}#{failed}#1#ERROR"])
    finished = stack.job(PROVIDER, done)
    assert (finished["provider_status"], finished["progress"]) == ("Finished", 100)
    assert finished["source_url"] == "ftp://ftp.example.com/in/a.mov"
    assert [output["status"] for output in finished["outputs"]] == ["COMPLETE", "COMPLETE"]
    assert finished["outputs"][0]["destinations"][0]["status"] == "Saved"
    assert finished["finished_at"].endswith("Z")
    errored = stack.job(PROVIDER, failed)
    assert errored["error"] == {"message": "Access denied"}
    assert errored["outputs"][0]["destinations"][0] == {
        "url": errored["outputs"][0]["destinations"][0]["url"],
        "status": "Error",
        "error": "Access denied",
    }
    assert "s3cret" not in json.dumps(stack.jobs(PROVIDER), default=str)
    statuses = [item["status"] for item in stack.history(PROVIDER, done)]
    assert statuses[0] == "SUBMITTED" and statuses[-1] == "COMPLETE"


def test_jobs_are_read_in_batches_of_the_configured_size(stack, sim):
    media_ids = [sim.add_job() for _ in range(30)]
    for media_id in media_ids:
        stack.track(PROVIDER, media_id)
    sim.reset_log()

    stack.poll(PROVIDER)
    calls_by_default = sim.count("POST", "/")
    stack.configure(PROVIDER, sim.url, CREDENTIALS, env={"BATCH_SIZE": "10"})
    sim.reset_log()
    stack.poll(PROVIDER)

    assert (calls_by_default, sim.count("POST", "/")) == (2, 3)
    assert len(stack.jobs(PROVIDER)) == 30


def test_the_json_api_can_be_chosen(stack, sim):
    media_id = sim.add_job()
    sim.advance(media_id, steps=20)
    stack.configure(PROVIDER, sim.url, CREDENTIALS, env={"ENCODING_COM_FORMAT": "json"})
    stack.track(PROVIDER, media_id)

    stack.poll(PROVIDER)

    assert stack.job(PROVIDER, media_id)["status"] == "COMPLETE"
    assert all("json" in request.form() for request in sim.requests)


@pytest.mark.parametrize("kind", ["xml", "json", "raw-xml", "raw-json"])
def test_a_notification_is_a_hint_the_state_comes_from_the_api(stack, sim, kind):
    media_id = sim.add_job()
    sim.advance(media_id, steps=5)
    body, content_type = sim.notification(media_id, kind=kind)  # sent while Processing
    sim.advance(media_id, steps=20)  # Finished by now

    status, answer = stack.webhook(PROVIDER, body, content_type=content_type)

    assert (status, answer) == (200, {"accepted": 1})
    job = stack.job(PROVIDER, media_id)  # an authenticated notification tracks the media it names
    assert (job["status"], job["provider_status"]) == ("COMPLETE", "Finished")
    assert stack.event_ids() == [f"{PROVIDER}#{media_id}#1#COMPLETE"]
    assert [item["source"] for item in stack.history(PROVIDER, media_id)] == ["webhook"]
    assert notify(stack, sim, media_id, kind=kind)[0] == 200  # encoding.com sends it again: no second event
    assert stack.event_ids() == [f"{PROVIDER}#{media_id}#1#COMPLETE"]


def test_a_notification_then_polls_publish_once(stack, sim):
    media_id = sim.add_job(fail=True)
    sim.advance(media_id, steps=20)

    assert notify(stack, sim, media_id)[0] == 200
    for _ in range(3):
        stack.poll(PROVIDER)

    assert stack.event_ids() == [f"{PROVIDER}#{media_id}#1#ERROR"]


BAD_BODIES = {
    "billion-laughs": (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<result><mediaid>&b;</mediaid></result>",
        "application/xml",
    ),
    "external-entity-in-form": (
        urlencode(
            {
                "xml": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                "<result><mediaid>&x;</mediaid></result>"
            }
        ),
        FORM,
    ),
    "no-media-id": ("<result><status>Finished</status></result>", "application/xml"),
    "not-a-media-id": ('{"result": {"mediaid": "../../etc"}}', "application/json"),
    "form-without-query": (urlencode({"mediaid": "1"}), FORM),
    "not-xml-or-json": ("hello", "text/plain"),
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_bad_notifications_are_400_and_nothing_is_read_or_written(stack, sim, name):
    sim.add_job()
    body, content_type = BAD_BODIES[name]

    status, answer = stack.webhook(PROVIDER, body, content_type=content_type)

    assert status == 400 and answer["error"]
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_a_notification_with_a_wrong_token_reads_and_writes_nothing(stack, sim):
    media_id = sim.add_job()

    status, _ = notify(stack, sim, media_id, token="nope")

    assert status == 401
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_a_notification_with_the_provider_down_is_503_and_nothing_is_written(stack, sim):
    media_id = sim.add_job()
    sim.fail_next = [503] * 10

    status, answer = notify(stack, sim, media_id)

    assert status == 503 and "retry" in answer["error"]
    assert stack.jobs(PROVIDER) == []


def test_a_poll_during_an_outage_reports_it_and_writes_nothing(stack, sim):
    media_id = sim.add_job()
    stack.track(PROVIDER, media_id)
    stack.poll(PROVIDER)
    sim.advance(media_id, steps=20)
    before = stack.job(PROVIDER, media_id)
    sim.fail_next = [500] * 10

    report = stack.poll(PROVIDER)

    assert report["provider_failures"]
    assert stack.job(PROVIDER, media_id) == before
    assert stack.events() == []
    sim.fail_next = []  # back again: the next poll catches up
    stack.poll(PROVIDER)
    assert stack.event_ids() == [f"{PROVIDER}#{media_id}#1#COMPLETE"]


def test_refused_credentials_are_reported_with_the_providers_text_and_nothing_is_written(stack, sim):
    media_id = sim.add_job()
    stack.track(PROVIDER, media_id)
    before = stack.job(PROVIDER, media_id)
    stack.configure(PROVIDER, sim.url, {**CREDENTIALS, "user_key": "wrong"})

    report = stack.poll(PROVIDER)

    assert any("Wrong user id or key!" in failure for failure in report["provider_failures"])
    assert stack.job(PROVIDER, media_id) == before


def test_a_media_the_provider_does_not_know_fails_alone(stack, sim):
    known = sim.add_job()
    sim.advance(known)
    for media_id in (known, "999"):
        stack.track(PROVIDER, media_id)
    unknown_before = stack.job(PROVIDER, "999")

    report = stack.poll(PROVIDER)

    assert stack.job(PROVIDER, known)["status"] == "DOWNLOADING"
    assert stack.job(PROVIDER, "999") == unknown_before
    assert any("999" in failure for failure in report["provider_failures"])


def test_an_unknown_word_is_kept_but_moves_nothing(stack, sim):
    media_id = sim.add_job()
    stack.track(PROVIDER, media_id)
    sim.advance(media_id, steps=4)
    stack.poll(PROVIDER)
    sim.set_status(media_id, "Stopped")

    report = stack.poll(PROVIDER)

    job = stack.job(PROVIDER, media_id)
    assert (job["status"], job["provider_status"]) == ("PROCESSING", "Stopped")
    assert report["unknown_words"] == 1 and stack.events() == []


def test_a_restarted_media_is_a_new_attempt_with_its_own_event(stack, sim):
    media_id = sim.add_job(fail=True)
    stack.track(PROVIDER, media_id)
    sim.advance(media_id, steps=20)
    stack.poll(PROVIDER)

    sim.restart(media_id)
    stack.track(PROVIDER, media_id)  # the operator puts the job back on the poll list
    sim.advance(media_id)
    stack.poll(PROVIDER)
    again = stack.job(PROVIDER, media_id)
    sim.advance(media_id, steps=20)
    stack.poll(PROVIDER)

    assert (again["status"], again["attempt"]) == ("DOWNLOADING", 2)
    assert "error" not in again
    assert stack.event_ids() == [f"{PROVIDER}#{media_id}#1#ERROR", f"{PROVIDER}#{media_id}#2#COMPLETE"]


# --- what the documents say, not what the simulator used to add ------------------------------------------


@pytest.mark.parametrize("kind", ["xml", "json", "raw-xml"])
def test_the_notify_description_is_the_error_text_of_the_error_the_api_confirms(stack, sim, kind):
    # Given a media that fails on download: GetStatus (as documented) has no description, the notify has one
    media_id = sim.add_job(fail="download")
    sim.advance(media_id, steps=2)

    # When encoding.com notifies the Error
    status, body = notify(stack, sim, media_id, kind=kind)

    # Then the job is ERROR with the notify's description, and its one event says why
    assert (status, body) == (200, {"accepted": 1})
    job = stack.job(PROVIDER, media_id)
    assert job["status"] == "ERROR"
    assert "403 Forbidden" in job["error"]["message"]
    (event,) = stack.events()
    assert "403 Forbidden" in event["job"]["error"]["message"]


def test_a_later_poll_keeps_the_notify_description(stack, sim):
    media_id = sim.add_job(fail="download")
    stack.track(PROVIDER, media_id)
    sim.advance(media_id, steps=2)
    assert notify(stack, sim, media_id)[0] == 200
    stack.jobs_api("PUT", PROVIDER, media_id)  # watched again: the next poll reads it

    stack.poll(PROVIDER)

    assert "403 Forbidden" in stack.job(PROVIDER, media_id)["error"]["message"]


def test_a_form_encoded_notify_sent_without_a_form_content_type_is_read(stack, sim):
    media_id = sim.add_job()
    sim.advance(media_id, steps=9)
    body, _ = sim.notification(media_id, kind="xml")

    status, answer = stack.webhook(PROVIDER, body, content_type="text/plain")

    assert (status, answer) == (200, {"accepted": 1})
    assert stack.job(PROVIDER, media_id)["status"] == "COMPLETE"


def test_a_batch_the_api_refuses_whole_is_split_so_one_bad_id_fails_alone(stack, sim):
    # Given 25 tracked media of which one is unknown to encoding.com, which refuses the whole call for it
    sim.unknown_in_batch = "refuse"
    good = [sim.add_job() for _ in range(24)]
    for media_id in good:
        sim.advance(media_id, steps=9)
    bad = "99999999"
    for media_id in [*good[:12], bad, *good[12:]]:
        stack.track(PROVIDER, media_id)

    # When a poll reads them
    report = stack.poll(PROVIDER)

    # Then the 24 others complete, and only the bad id is reported as failed
    assert sorted(job["job_id"] for job in stack.jobs(PROVIDER) if job["status"] == "COMPLETE") == sorted(good)
    assert len(report["provider_failures"]) == 1 and bad in report["provider_failures"][0]
    assert stack.job(PROVIDER, bad)["status"] == "SUBMITTED"
