"""VOD Station through its Lambda handler: scheduled polls and callbacks against the simulator, with the
table, topic and secret in moto."""

from __future__ import annotations

import json
import time

import pytest

from local.simulators.base import SimRequest, SimResponse, json_response
from local.simulators.vod_station import VARIANTS, VodStationSimulator
from transcode_core.store import JOB_SK

PROVIDER = "vod_station"
CREDENTIALS = {"access_key": "vod-access", "secret_key": "vod-secret"}
MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
VARIANT_NAMES = {variant.name: variant for variant in VARIANTS}


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


def set_detail(stack, job_id: str, key: str, value: str) -> None:
    """Writes one field of the stored job's details, as time passing would have left it."""
    stack.dynamodb.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": f"{PROVIDER}#{job_id}"}, "sk": {"S": JOB_SK}},
        UpdateExpression="SET details.#key = :value",
        ExpressionAttributeNames={"#key": key},
        ExpressionAttributeValues={":value": {"S": value}},
    )


def poll_hours_apart(stack, job_ids, polls: int = 4) -> None:
    """Polls as if each came hours after the last: a job marked missing has been missing past the grace."""
    for _ in range(polls):
        stack.poll(PROVIDER)
        for job_id in job_ids:
            if "not_listed_since" in ((stack.job(PROVIDER, job_id) or {}).get("details") or {}):
                set_detail(stack, job_id, "not_listed_since", "2020-01-01T00:00:00Z")


def iso(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000))


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


# --- what the document states two ways or leaves open -------------------------------------------------


# The documented variant runs everywhere; the others (the same flow, the documents read another way) in
# `make test`, as tests/integration/test_document_variants.py does for the other providers.
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(variant, id=variant.name, marks=() if variant.name == "documented" else pytest.mark.slow)
        for variant in VARIANTS
    ],
)
def test_poll_callbacks_failure_and_rerun_against_every_variant(stack, variant):
    with VodStationSimulator(**CREDENTIALS, variant=variant) as sim:
        stack.configure(PROVIDER, sim.url, CREDENTIALS)
        clock = [(int(time.time()) - 3600) * 1000]  # whole seconds: some variants cannot write less
        sim.job_clock = lambda: clock[0]
        done = sim.add_job(10019, "movie.mp4", ["sd", "hd"], category_name="films")
        failed = sim.add_job(10019, "broken.mp4", ["sd", "hd"], fail=True)
        told = sim.add_job(10020, "told.mp4", ["sd"])

        def statuses() -> dict[str, str]:
            return {job["job_id"]: job["status"] for job in stack.jobs(PROVIDER)}

        # Polls discover the jobs, then see them run
        stack.poll(PROVIDER)
        assert statuses() == {done: "QUEUED", failed: "QUEUED", told: "QUEUED"}
        clock[0] += MINUTE_MS
        sim.tick()
        sim.take_callbacks()
        stack.poll(PROVIDER)
        assert set(statuses().values()) == {"PROCESSING"}

        # One output fails while the other still runs: no alert yet
        clock[0] += MINUTE_MS
        sim.advance(failed)
        sim.take_callbacks()
        stack.poll(PROVIDER)
        assert stack.job(PROVIDER, failed)["provider_status"].upper() == "FAILURE,RUNNING"
        assert statuses()[failed] == "PROCESSING" and stack.events() == []

        # Everything finishes: the failed job fails once, the other completes with its finish time
        clock[0] += MINUTE_MS
        sim.advance(done, 2)
        sim.advance(failed, 2)
        sim.take_callbacks()
        stack.poll(PROVIDER)
        stack.poll(PROVIDER)
        finished = stack.job(PROVIDER, done)
        assert finished["status"] == "COMPLETE" and finished["finished_at"] == iso(clock[0])
        assert stack.job(PROVIDER, failed)["error"]["code"] == "FAILURE"

        # Callbacks alone finish a listed job
        clock[0] += MINUTE_MS
        sim.advance(told, 2)
        assert {answer for answer, _ in post_callbacks(stack, sim)} == {200}
        assert statuses()[told] == "COMPLETE"

        # The failed file encoded again, and successfully: a new attempt with its own event
        clock[0] += MINUTE_MS
        sim.reencode(failed)
        clock[0] += MINUTE_MS
        sim.advance(failed, 3)
        stack.poll(PROVIDER)
        stack.poll(PROVIDER)
        assert (stack.job(PROVIDER, failed)["status"], stack.job(PROVIDER, failed)["attempt"]) == ("COMPLETE", 2)
        assert sorted(stack.event_ids()) == sorted(
            [
                f"{PROVIDER}#{done}#1#COMPLETE",
                f"{PROVIDER}#{failed}#1#ERROR",
                f"{PROVIDER}#{told}#1#COMPLETE",
                f"{PROVIDER}#{failed}#2#COMPLETE",
            ]
        )

        # A refusal is reported in either error shape, and writes nothing
        before = stack.jobs(PROVIDER)
        stack.configure(PROVIDER, sim.url, {**CREDENTIALS, "secret_key": "wrong"})
        report = stack.poll(PROVIDER)
        assert report["provider_failures"][0].startswith("HTTP 401 error 200: Authentication Failed")
        assert stack.jobs(PROVIDER) == before


def test_a_job_fails_once_when_its_other_outputs_finish_after_the_failure(stack, sim):
    # Given a job whose sd output failed while hd still runs
    clock = [int(time.time() * 1000) - 60 * MINUTE_MS]
    sim.job_clock = lambda: clock[0]
    job = sim.add_job(11, "half-broken.mp4", ["sd", "hd"], fail=True)
    sim.advance(job, 2)
    assert sim.status_of(job) == {"sd": "FAILURE", "hd": "RUNNING"}
    stack.poll(PROVIDER)
    assert (stack.job(PROVIDER, job)["status"], stack.events()) == ("PROCESSING", [])

    # When hd finishes later (its lastWorkTime after the failure), seen by polls and by its callback
    clock[0] += 10 * MINUTE_MS
    sim.advance(job)
    post_callbacks(stack, sim)
    stack.poll(PROVIDER)
    stack.poll(PROVIDER)

    # Then the job failed once, when it was over
    failed = stack.job(PROVIDER, job)
    assert (failed["status"], failed["attempt"], failed["finished_at"]) == ("ERROR", 1, iso(clock[0]))
    assert stack.event_ids() == [f"{PROVIDER}#{job}#1#ERROR"]


class FarReadsTimeOut(VodStationSimulator):
    """A gateway that can no longer answer reads reaching back more than three days (in the time a poll has)."""

    def handle(self, request: SimRequest) -> SimResponse:
        times = [int(request.query[key]) for key in ("workStartTimeFrom", "workStartTimeTo") if key in request.query]
        if times and min(times) < time.time() * 1000 - 3 * DAY_MS and self._authenticate(request) is None:
            return json_response({"error": {"errorCode": "504", "message": "Gateway Timeout"}}, 504)
        return super().handle(request)


def test_a_job_active_for_weeks_does_not_keep_new_jobs_from_being_found(stack):
    with FarReadsTimeOut(**CREDENTIALS) as sim:
        stack.configure(PROVIDER, sim.url, CREDENTIALS)
        # Given a job active for three weeks: its kept bound is three weeks back
        now_ms = int(time.time() * 1000)
        old = sim.add_job(12, "three-weeks.mp4")
        stack.poll(PROVIDER)  # found while it was recent; three weeks pass
        for output in sim.jobs[old].outputs.values():
            output.work_start_ms = now_ms - 21 * DAY_MS
        set_detail(stack, old, "work_started_after", iso(now_ms - 21 * DAY_MS - MINUTE_MS))

        # When a new job starts and the reach-back cannot be read
        new = sim.add_job(12, "new.mp4")
        report = stack.poll(PROVIDER)

        # Then the new job is found all the same, and the reach-back's failure is reported
        assert stack.job(PROVIDER, new)["status"] == "QUEUED"
        assert report["provider_failures"] == [f"page 1: GET {sim.url}api/v2/status answered HTTP 504"]
        sim.advance(new, 3)
        stack.poll(PROVIDER)
        assert stack.event_ids() == [f"{PROVIDER}#{new}#1#COMPLETE"]
        assert stack.job(PROVIDER, old)["status"] == "QUEUED"  # waits for a reach-back that can be read


def test_a_job_registered_after_the_look_back_is_found_and_completes(stack, sim):
    # Given an encode that started five days ago (DISCOVERY_DAYS is 2) and is complete, registered only now
    job = sim.add_job(13, "registered-late.mp4", ["sd"], work_start_ms=int(time.time() * 1000) - 5 * DAY_MS)
    sim.advance(job, 3)
    assert stack.track(PROVIDER, job) == 201

    # When polls go on for hours
    poll_hours_apart(stack, [job])

    # Then it is found further back and completes, and never ends NOT_LISTED
    assert stack.job(PROVIDER, job)["status"] == "COMPLETE"
    assert stack.event_ids() == [f"{PROVIDER}#{job}#1#COMPLETE"]


def test_a_gateway_that_reads_the_window_as_the_example_sends_it_is_read(stack):
    with VodStationSimulator(**CREDENTIALS, variant=VARIANT_NAMES["example-window"]) as sim:
        stack.configure(PROVIDER, sim.url, CREDENTIALS)
        job = sim.add_job(14, "example.mp4")
        tracked = sim.add_job(14, "tracked.mp4")
        assert stack.track(PROVIDER, tracked) == 201
        sim.advance(job, 3)
        sim.advance(tracked, 3)

        poll_hours_apart(stack, [job, tracked], polls=2)

        assert {item["job_id"]: item["status"] for item in stack.jobs(PROVIDER)} == {
            job: "COMPLETE",
            tracked: "COMPLETE",
        }


class GoesQuiet(VodStationSimulator):
    """A gateway whose reads come back empty once `quiet` is set, whatever was asked."""

    quiet = False

    def handle(self, request: SimRequest) -> SimResponse:
        if self.quiet:
            return self._authenticate(request) or json_response({"content": [], "total": "0"})
        return super().handle(request)


def test_an_empty_listing_never_ends_a_job(stack):
    with GoesQuiet(**CREDENTIALS) as sim:
        stack.configure(PROVIDER, sim.url, CREDENTIALS)
        # Given a job registered through the jobs API and one listed while reads still worked
        job = "15:running.mp4"
        assert stack.track(PROVIDER, job) == 201
        found = sim.add_job(15, "found.mp4")
        stack.poll(PROVIDER)
        assert stack.job(PROVIDER, found)["status"] == "QUEUED"

        # When every read comes back empty, for hours
        sim.quiet = True
        poll_hours_apart(stack, [job, found])

        # Then neither job is ended: an empty answer is no evidence
        assert {item["job_id"]: item["status"] for item in stack.jobs(PROVIDER)} == {job: "SUBMITTED", found: "QUEUED"}
        assert stack.events() == []


@pytest.mark.parametrize("variant", ["epoch-times", "object-times"])
def test_a_last_work_time_that_is_not_text_gives_the_finish_time(stack, variant):
    with VodStationSimulator(**CREDENTIALS, variant=VARIANT_NAMES[variant]) as sim:
        stack.configure(PROVIDER, sim.url, CREDENTIALS)
        finish_ms = (int(time.time()) - 600) * 1000
        sim.job_clock = lambda: finish_ms
        job = sim.add_job(16, "timed.mp4", ["sd"])
        sim.advance(job, 3)

        stack.poll(PROVIDER)

        finished = stack.job(PROVIDER, job)
        assert (finished["status"], finished["finished_at"], finished["created_at"]) == (
            "COMPLETE",
            iso(finish_ms),
            iso(finish_ms),
        )


@pytest.mark.parametrize("file_path", ["/x\nStatus: COMPLETE", "/movie\x00.mp4", "/movie\u2029.mp4"])
def test_a_callback_whose_file_path_holds_a_control_character_is_a_400(stack, file_path):
    payload = {"categoryId": 10019, "filePath": file_path, "status": "COMPLETE", "outputType": "sd"}
    status, answer = stack.webhook(PROVIDER, payload)
    assert status == 400 and "control character" in answer["error"], answer
    assert stack.jobs(PROVIDER) == [] and stack.events() == []
