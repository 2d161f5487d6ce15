"""VOD Station through its Lambda handler: scheduled polls and callbacks against the simulator, with the
table, topic and secret in moto."""

from __future__ import annotations

import json
import time

import pytest

from local.simulators.vod_station import VodStationSimulator

PROVIDER = "vod_station"
CREDENTIALS = {"access_key": "vod-access", "secret_key": "vod-secret"}


@pytest.fixture
def sim():
    with VodStationSimulator(**CREDENTIALS) as simulator:
        yield simulator


@pytest.fixture
def stack(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def post_callbacks(stack, sim) -> list[tuple[int, dict]]:
    return [stack.webhook(PROVIDER, payload) for payload in sim.take_callbacks()]


def test_polls_discover_jobs_and_publish_one_event_each(stack, sim):
    done = sim.add_job(10019, "movie.mp4", ["sd", "hd"], category_name="films")
    failed = sim.add_job(10019, "broken.mp4", ["sd", "hd"], fail=True)

    stack.poll(PROVIDER)  # discovered, QUEUED
    sim.tick()
    stack.poll(PROVIDER)
    assert {job["job_id"]: job["status"] for job in stack.jobs(PROVIDER)} == {done: "PROCESSING", failed: "PROCESSING"}
    sim.advance(done, 3)
    sim.advance(failed, 3)
    for _ in range(3):
        report = stack.poll(PROVIDER)

    assert report["provider_failures"] == []
    assert sorted(stack.event_ids()) == sorted([f"{PROVIDER}#{done}#1#COMPLETE", f"{PROVIDER}#{failed}#1#ERROR"])
    finished = stack.job(PROVIDER, done)
    assert (finished["provider_status"], finished["progress"], finished["source_url"]) == ("COMPLETE", 100, "movie.mp4")
    assert finished["details"]["category_name"] == "films"
    assert [output["destinations"] for output in finished["outputs"]] == [
        [{"url": "https://kr.object.ncloudstorage.com/vod-out/10019/movie_sd.mp4?part=1"}],
        [{"url": "https://kr.object.ncloudstorage.com/vod-out/10019/movie_hd.mp4?part=1"}],
    ]
    assert finished["finished_at"].endswith("Z")
    assert stack.job(PROVIDER, failed)["error"] == {"message": "encoding failed for output sd", "code": "FAILURE"}
    assert "X-Amz-Signature" not in json.dumps(stack.jobs(PROVIDER), default=str)


def test_callbacks_are_applied_and_a_late_running_changes_nothing(stack, sim):
    # Given a job the poll has listed
    job = sim.add_job(10019, "cb.mp4", ["sd", "hd"])
    stack.poll(PROVIDER)
    waiting = post_callbacks(stack, sim)
    assert waiting == [(200, {"accepted": 0}), (200, {"accepted": 0})]  # WAITING names no file yet

    # When its outputs run and complete, told by callbacks only
    sim.advance(job, 3)
    callbacks = sim.take_callbacks()
    answers = [stack.webhook(PROVIDER, payload) for payload in callbacks]

    # Then the job completes once, and a RUNNING callback sent again afterwards changes nothing
    assert answers == [(200, {"accepted": 1})] * 4
    assert stack.job(PROVIDER, job)["status"] == "COMPLETE"
    versions = len(stack.history(PROVIDER, job))
    late_running = next(payload for payload in callbacks if payload["status"] == "RUNNING")
    assert stack.webhook(PROVIDER, late_running) == (200, {"accepted": 1})
    assert stack.job(PROVIDER, job)["status"] == "COMPLETE"
    assert len(stack.history(PROVIDER, job)) == versions
    stack.poll(PROVIDER)
    assert stack.event_ids() == [f"{PROVIDER}#{job}#1#COMPLETE"]
    assert {item["source"] for item in stack.history(PROVIDER, job)} == {"poll", "webhook"}


def test_a_callback_for_an_unlisted_job_waits_for_the_poll_to_complete_it(stack, sim):
    job = sim.add_job(5, "first-seen-by-callback.mp4", ["sd", "hd"])
    sim.take_callbacks()
    sim.set_status(job, "COMPLETE", "sd")

    assert post_callbacks(stack, sim) == [(200, {"accepted": 1})]
    assert stack.job(PROVIDER, job)["status"] == "PROCESSING"  # hd has not said a word yet
    assert stack.events() == []

    sim.set_status(job, "COMPLETE", "hd")
    stack.poll(PROVIDER)
    assert stack.job(PROVIDER, job)["status"] == "COMPLETE"
    assert stack.event_ids() == [f"{PROVIDER}#{job}#1#COMPLETE"]


def test_callbacks_are_applied_while_the_api_is_down(stack, sim):
    # The callback carries the state itself: no API read, so an API outage does not matter
    job = sim.add_job(6, "offline.mp4", ["sd"])
    stack.poll(PROVIDER)
    sim.take_callbacks()
    sim.advance(job, 3)
    sim.fail_next = [503] * 10

    answers = post_callbacks(stack, sim)

    assert answers == [(200, {"accepted": 1}), (200, {"accepted": 1})]
    assert stack.job(PROVIDER, job)["status"] == "COMPLETE"
    assert sim.fail_next == [503] * 10  # nothing was asked of the API


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "{}",
        '{"categoryId": 1, "filePath": "a.mp4", "outputType": "sd"}',
        '{"status": "COMPLETE", "filePath": "a.mp4", "outputType": "sd"}',
        '{"categoryId": 1, "status": "COMPLETE", "filePath": "", "outputType": "sd"}',
        '{"categoryId": [1], "status": "COMPLETE", "filePath": "a.mp4", "outputType": "sd"}',
    ],
)
def test_unreadable_callbacks_are_400_and_nothing_is_written(stack, sim, body):
    status, answer = stack.webhook(PROVIDER, body)

    assert status == 400 and answer["error"]
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_callback_with_a_wrong_token_writes_nothing(stack, sim):
    job = sim.add_job(1, "a.mp4")
    sim.advance(job)
    status, _ = stack.webhook(PROVIDER, sim.callback_payload(job, "AVC_SD_1Pass_30fps"), token="nope")
    assert status == 401
    assert stack.jobs(PROVIDER) == []


def test_callback_with_the_table_down_is_503(stack, sim):
    job = sim.add_job(1, "a.mp4")
    sim.advance(job)
    stack.dynamodb.delete_table(TableName=stack.table_name)

    status, answer = stack.webhook(PROVIDER, sim.callback_payload(job, "AVC_SD_1Pass_30fps"))

    assert status == 503 and "retry" in answer["error"]


def test_poll_during_an_outage_reports_it_and_writes_nothing(stack, sim):
    job = sim.add_job(2, "outage.mp4")
    stack.poll(PROVIDER)
    sim.advance(job, 3)
    before = stack.job(PROVIDER, job)
    sim.fail_next = [503] * 10

    report = stack.poll(PROVIDER)

    assert report["provider_failures"]
    assert stack.job(PROVIDER, job) == before
    assert stack.events() == []
    sim.fail_next = []  # back again: the next poll catches up
    stack.poll(PROVIDER)
    assert stack.event_ids() == [f"{PROVIDER}#{job}#1#COMPLETE"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret_key": "wrong"}, "Signature mismatch"),
        ({"access_key": "someone-else"}, "Invalid access key"),
    ],
)
def test_refused_signatures_are_reported_and_nothing_is_written(stack, sim, change, reason):
    sim.add_job(3, "a.mp4")
    stack.configure(PROVIDER, sim.url, {**CREDENTIALS, **change})

    report = stack.poll(PROVIDER)

    assert report["provider_failures"] == [f"HTTP 401 error 200: Authentication Failed ({reason})"]
    assert stack.jobs(PROVIDER) == []


def test_a_clock_off_by_more_than_five_minutes_is_reported(stack, sim):
    sim.add_job(3, "a.mp4")
    sim.clock_skew_ms = 10 * 60 * 1000

    report = stack.poll(PROVIDER)

    assert "5 minutes" in report["provider_failures"][0]
    assert stack.jobs(PROVIDER) == []


def test_a_tracked_job_is_filled_in_by_the_poll(stack, sim):
    job = sim.add_job(10019, "tracked.mp4", ["sd"])
    assert stack.track(PROVIDER, job) == 201

    stack.poll(PROVIDER)

    tracked = stack.job(PROVIDER, job)
    assert (tracked["status"], tracked["provider_status"]) == ("QUEUED", "WAITING")
    assert tracked["created_at"].endswith("Z")


def test_a_file_encoded_again_is_a_new_attempt_with_its_own_event(stack, sim):
    clock = [int(time.time() * 1000) - 600_000]
    sim.job_clock = lambda: clock[0]
    job = sim.add_job(8, "again.mp4", ["sd"])
    sim.advance(job, 3)
    stack.poll(PROVIDER)
    stack.poll(PROVIDER)  # listed again, finished: nothing new

    clock[0] += 60_000
    sim.reencode(job)
    stack.poll(PROVIDER)
    again = stack.job(PROVIDER, job)
    sim.advance(job, 3)
    stack.poll(PROVIDER)
    stack.poll(PROVIDER)

    assert (again["status"], again["attempt"]) == ("QUEUED", 2)
    assert stack.event_ids() == [f"{PROVIDER}#{job}#1#COMPLETE", f"{PROVIDER}#{job}#2#COMPLETE"]


@pytest.mark.parametrize("file_path", ["/x\nStatus: COMPLETE", "/movie\x00.mp4", "/movie\u2029.mp4"])
def test_a_callback_whose_file_path_holds_a_control_character_is_a_400(stack, file_path):
    payload = {"categoryId": 10019, "filePath": file_path, "status": "COMPLETE", "outputType": "sd"}
    status, answer = stack.webhook(PROVIDER, payload)
    assert status == 400 and "control character" in answer["error"], answer
    assert stack.jobs(PROVIDER) == [] and stack.events() == []
