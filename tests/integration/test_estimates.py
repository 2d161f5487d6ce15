"""When each job will end, through the handlers (polls and webhooks) against the simulators, with the clock
moved as time passing would: the provider's own estimate where it gives one (encoding.com's `time_left`),
else a line through the attempt's progress readings; never with fewer than two readings, never for a
terminal job; stall events carry it (docs/events.md "When a job will end")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.transparent_edge import TransparentEdgeSimulator
from local.simulators.vod_station import VARIANTS as VOD_VARIANTS
from local.simulators.vod_station import VodStationSimulator
from local.simulators.xvid import XvidSimulator
from tests.simulation.harness import Clock
from transcode_core.notify import email_text

ENCODING = {"user_id": "u", "user_key": "k"}
XVID = {"client_id": "cid", "client_secret": "csecret"}
EDGE = {"company_id": "1237", "client_id": "cid", "client_secret": "csecret"}
VOD = {"access_key": "sim-access-key", "secret_key": "sim-secret-key"}
ESTIMATE_KEYS = ("estimated_finish_at", "estimate_basis")


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    with clock.installed(monkeypatch):
        yield clock


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_near(estimate: str, expected: datetime, seconds: float = 5.0) -> None:
    assert abs((at(estimate) - expected).total_seconds()) <= seconds, (estimate, expected.isoformat())


def line_end(first: tuple[datetime, float], latest: tuple[datetime, float]) -> datetime:
    """Where the documented rule puts the end: the line through two readings, at 100%."""
    (began, start), (now, progress) = first, latest
    return now + (now - began) * ((100 - progress) / (progress - start))


def has_no_estimate(job) -> bool:
    return not set(ESTIMATE_KEYS) & set(job)


# --- encoding.com: the provider's own estimate -------------------------------------------------------------
def test_encoding_com_time_left_is_the_estimate_until_the_job_ends(stack, clock):
    with EncodingComSimulator(**ENCODING) as sim:
        stack.configure("encoding_com", sim.url, ENCODING)
        sim.step_seconds = 300  # time_left: five minutes for each step still to take
        media_id = sim.add_job()
        stack.track("encoding_com", media_id)
        sim.advance(media_id, 4)  # Processing: 4 of 8 steps left
        stack.poll("encoding_com")
        job = stack.job("encoding_com", media_id)
        assert job["estimate_basis"] == "provider"
        assert_near(job["estimated_finish_at"], clock.now() + timedelta(seconds=4 * 300))

        clock.offset += 300
        sim.advance(media_id, 1)
        stack.poll("encoding_com")
        assert_near(stack.job("encoding_com", media_id)["estimated_finish_at"], clock.now() + timedelta(seconds=900))

        sim.advance(media_id, 10)  # Finished
        stack.poll("encoding_com")
        finished = stack.job("encoding_com", media_id)
        assert finished["status"] == "COMPLETE" and has_no_estimate(finished)
        (event,) = stack.events()
        assert has_no_estimate(event["job"])


def test_encoding_com_notify_brings_the_provider_estimate_too(stack, clock):
    with EncodingComSimulator(**ENCODING) as sim:
        stack.configure("encoding_com", sim.url, ENCODING)
        media_id = sim.add_job()
        sim.advance(media_id, 2)  # Ready to process: 6 steps of 60 s left
        body, content_type = sim.notification(media_id)
        assert stack.webhook("encoding_com", body, content_type=content_type)[0] == 200
        job = stack.job("encoding_com", media_id)
        assert job["estimate_basis"] == "provider"
        assert_near(job["estimated_finish_at"], clock.now() + timedelta(seconds=360))


def test_without_time_left_encoding_com_jobs_are_estimated_from_their_progress(stack, clock):
    with EncodingComSimulator(**ENCODING, variant="lower-case-absent-dates") as sim:  # sparse: no time_left
        stack.configure("encoding_com", sim.url, ENCODING)
        media_id = sim.add_job()
        stack.track("encoding_com", media_id)
        sim.advance(media_id, 1)
        stack.poll("encoding_com")
        first = stack.job("encoding_com", media_id)
        assert first["progress"] > 0 and has_no_estimate(first)  # one reading: no line yet
        began = clock.now()

        clock.offset += 600
        sim.advance(media_id, 2)
        stack.poll("encoding_com")
        job = stack.job("encoding_com", media_id)
        assert job["estimate_basis"] == "progress"
        expected = line_end((began, first["progress"]), (clock.now(), job["progress"]))
        assert_near(job["estimated_finish_at"], expected)
        assert "estimate_from" not in job  # bookkeeping, never shown


# --- Xvid, TransparentEdge, VOD Station: progress over time ------------------------------------------------
def test_xvid_polls_and_webhooks_estimate_from_percentage_completed(stack, clock):
    with XvidSimulator(**XVID) as sim:
        stack.configure("xvid", sim.url, XVID)
        job_id = sim.add_job()
        sim.advance(job_id, 2)  # PROCESSING
        stack.poll("xvid")
        first = stack.job("xvid", job_id)
        assert has_no_estimate(first)
        began = clock.now()

        clock.offset += 420
        sim.advance(job_id, 1)
        assert stack.webhook("xvid", {"job_id": job_id})[0] == 200  # a hint: the API's answer is applied
        job = stack.job("xvid", job_id)
        assert job["estimate_basis"] == "progress"
        assert_near(job["estimated_finish_at"], line_end((began, first["progress"]), (clock.now(), job["progress"])))

        sim.finish(job_id)
        stack.poll("xvid")
        assert has_no_estimate(stack.job("xvid", job_id))


def test_transparent_edge_polls_estimate_from_the_sub_jobs_progress(stack, clock):
    with TransparentEdgeSimulator(**EDGE) as sim:
        stack.configure("transparent_edge", sim.url, EDGE)
        order = sim.add_order(steps=["QUEUED", "PROCESSING", "PROCESSING", "PROCESSING", "PROCESSING", "FINISHED"])
        sim.advance(order, 1)
        stack.poll("transparent_edge")
        first = stack.job("transparent_edge", order)
        assert first["progress"] > 0 and has_no_estimate(first)
        began = clock.now()

        clock.offset += 300
        sim.advance(order, 1)
        assert stack.webhook("transparent_edge", {"order_id": order})[0] == 200
        job = stack.job("transparent_edge", order)
        assert job["estimate_basis"] == "progress"
        assert_near(job["estimated_finish_at"], line_end((began, first["progress"]), (clock.now(), job["progress"])))


def test_vod_station_polls_estimate_from_percent_and_a_callback_keeps_it(stack, clock):
    with VodStationSimulator(**VOD) as sim:
        sim.job_clock = clock.epoch_ms
        stack.configure("vod_station", sim.url, VOD)
        job_id = sim.add_job(10019, "/media/keynote.mp4")
        sim.advance(job_id, 1)  # RUNNING 40%
        stack.poll("vod_station")
        began = clock.now()
        clock.offset += 240
        sim.advance(job_id, 1)  # RUNNING 80%
        stack.poll("vod_station")
        job = stack.job("vod_station", job_id)
        assert job["estimate_basis"] == "progress"
        assert_near(job["estimated_finish_at"], line_end((began, 40), (clock.now(), 80)))

        sim.take_callbacks()
        sim.advance(job_id, 1)  # COMPLETE, told by its callback
        for payload in sim.take_callbacks():
            assert stack.webhook("vod_station", payload)[0] == 200
        done = stack.job("vod_station", job_id)
        assert done["status"] == "COMPLETE" and has_no_estimate(done)


def test_a_job_whose_provider_sends_no_progress_never_has_an_estimate(stack, clock):
    silent = next(variant for variant in VOD_VARIANTS if not variant.optional_fields)  # no `percent`
    with VodStationSimulator(**VOD, variant=silent) as sim:
        sim.job_clock = clock.epoch_ms
        stack.configure("vod_station", sim.url, VOD)
        job_id = sim.add_job(10019, "/media/keynote.mp4")
        seen = []
        for _ in range(3):
            stack.poll("vod_station")
            job = stack.job("vod_station", job_id)
            seen.append(job["status"])
            assert "progress" not in job and has_no_estimate(job)
            sim.advance(job_id, 1)
            clock.offset += 300
        assert seen == ["QUEUED", "PROCESSING", "PROCESSING"]


# --- restarts and stalls ------------------------------------------------------------------------------------
def test_a_new_attempt_starts_its_own_line(stack, clock):
    with XvidSimulator(**XVID) as sim:
        stack.configure("xvid", sim.url, XVID)
        job_id = sim.add_job()
        for _ in range(6):  # to SUCCESS
            stack.poll("xvid")
            sim.tick()
            sim.advance_clock(minutes=5)
            clock.offset += 300
        assert stack.job("xvid", job_id)["status"] == "COMPLETE"

        sim.restart(job_id)
        sim.advance(job_id, 2)
        stack.poll("xvid")
        rerun = stack.job("xvid", job_id)
        assert rerun["attempt"] == 2 and rerun["progress"] > 0
        assert has_no_estimate(rerun)  # the first reading of attempt 2: the old attempt's readings do not count


def estimated_by_progress(stack, clock, sim) -> str:
    """An Xvid job polled at two progress readings 5 minutes apart: it has an estimate from its progress."""
    job_id = sim.add_job()
    sim.advance(job_id, 2)
    stack.poll("xvid")
    clock.offset += 300
    sim.advance(job_id, 1)
    stack.poll("xvid")
    return job_id


def test_a_stall_event_carries_the_estimate_and_its_email_says_when_the_job_was_due(stack, clock):
    with XvidSimulator(**XVID) as sim:
        stack.configure("xvid", sim.url, XVID, env={"STALL_MINUTES": "30"})
        job_id = estimated_by_progress(stack, clock, sim)
        estimate = stack.job("xvid", job_id)["estimated_finish_at"]

        clock.offset += 31 * 60  # nothing changes at the provider for longer than STALL_MINUTES
        stack.poll("xvid")
        (event,) = stack.events()
        assert event["event"] == "job.stalled"
        assert (event["job"]["estimated_finish_at"], event["job"]["estimate_basis"]) == (estimate, "progress")
        assert stack.job("xvid", job_id)["estimated_finish_at"] == estimate  # the stall write keeps it
        assert f"Expected to finish: {estimate} (from its progress)" in email_text(event)


def test_the_jobs_api_shows_the_estimate_and_hides_its_bookkeeping(stack, clock):
    with XvidSimulator(**XVID) as sim:
        stack.configure("xvid", sim.url, XVID)
        job_id = estimated_by_progress(stack, clock, sim)
        status, body = stack.jobs_api("GET", "xvid", job_id)
        assert status == 200 and body["estimate_basis"] == "progress" and "estimate_from" not in body
        assert at(body["estimated_finish_at"]) > datetime.now(UTC)
