"""A burst of 1,000 webhooks for 100 jobs, in random order and with duplicates, through the handler: every
job ends at its latest state and publishes exactly its one event. VOD Station's callbacks are applied from
their own payload (no API read), so the order they arrive in is what the rules of change must absorb."""

from __future__ import annotations

import random

import pytest

from local.simulators.vod_station import VodStationSimulator

PROVIDER = "vod_station"
CREDENTIALS = {"access_key": "vod-access", "secret_key": "vod-secret"}
JOBS = 100
WEBHOOKS = 1000


@pytest.fixture
def sim():
    with VodStationSimulator(**CREDENTIALS) as simulator:
        yield simulator


@pytest.mark.slow
def test_a_shuffled_burst_with_duplicates_ends_each_job_at_its_latest_state_with_one_event(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    jobs = [sim.add_job(10019, f"clip-{number:03}.mp4", ["sd"], fail=number % 10 == 0) for number in range(JOBS)]
    stack.poll(PROVIDER)  # discovered: the listing tells which outputs each job has
    sim.take_callbacks()  # WAITING callbacks name no file
    for _ in range(6):  # past the end of every lifecycle; each status passed through sends its callback
        sim.tick()
    distinct = sim.take_callbacks()
    assert len(distinct) >= 2 * JOBS
    shuffle = random.Random(20261128)
    burst = distinct + [shuffle.choice(distinct) for _ in range(WEBHOOKS - len(distinct))]
    shuffle.shuffle(burst)

    answers = [stack.webhook(PROVIDER, payload, warm=True)[0] for payload in burst]  # one warm function

    assert answers == [200] * WEBHOOKS
    final = {job["job_id"]: job for job in stack.jobs(PROVIDER)}
    expected = {job_id: "ERROR" if sim.status_of(job_id)["sd"] == "FAILURE" else "COMPLETE" for job_id in jobs}
    assert {job_id: final[job_id]["status"] for job_id in jobs} == expected
    assert all(final[job_id]["provider_status"] == sim.status_of(job_id)["sd"] for job_id in jobs)
    assert sorted(stack.event_ids()) == sorted(f"{PROVIDER}#{job_id}#1#{status}" for job_id, status in expected.items())
