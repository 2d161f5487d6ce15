"""Every provider call stays within the invocation's time: timeouts are at most the time
left, a Retry-After longer than the time left (or than HTTP_MAX_RETRY_WAIT) ends the call as a deferral, and
a webhook answers 503 in time with the job left as it was."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from local.simulators.base import SimResponse
from local.simulators.xvid import XvidSimulator
from tests.integration.simulators import simulator_fixtures
from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderUnavailable
from transcode_core.http import build_session, send
from transcode_core.providers import xvid
from transcode_core.providers.base import PollFailure

PROVIDER = "xvid"
CREDENTIALS = {"client_id": "cid", "client_secret": "csecret"}
SETTINGS = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)


running_sim, sim = simulator_fixtures(XvidSimulator, **CREDENTIALS)


def rate_limited(sim, key: str, seconds: int, times: int = 4) -> None:
    """The next `times` requests filed under `key` answer 429 with Retry-After: `seconds`."""
    for _ in range(times):
        sim.canned.setdefault(key, []).append(SimResponse(429, {"error": "slow down"}, {"Retry-After": str(seconds)}))


def timed(call, limit: float = 10.0):
    """Runs `call` in a thread (so a test that would sleep for minutes fails instead of hanging); returns
    (its result or exception, seconds it took)."""
    outcome: list = []

    def run():
        started = time.monotonic()
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)
        outcome.append(time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"the call was still waiting after {limit} s"
    return outcome[0], outcome[1]


def adapter(sim, deadline=None, **settings):
    return xvid.XvidAdapter(
        api_url=sim.url,
        credentials=CREDENTIALS,
        session=build_session(retries=3, backoff=0),
        settings=dataclasses.replace(SETTINGS, **settings),
        deadline=deadline,
    )


def test_a_retry_after_longer_than_the_time_left_ends_the_call_at_once(sim):
    # Given a provider asking to wait 4 s, three retries allowed, and 3 s left
    job_id = sim.add_job()
    reader = adapter(sim, Deadline(3.0))
    reader.access_token.value()
    rate_limited(sim, f"/jobs/{job_id}", 4)

    # When the job is read
    (result,), took = timed(lambda: list(reader.read_jobs([job_id])))

    # Then the read is deferred at once (not 12 s of waiting), as a ProviderUnavailable naming the job
    assert isinstance(result, PollFailure) and isinstance(result.error, ProviderUnavailable)
    assert "Retry-After" in result.error.message and result.job_ids == (job_id,)
    assert took < 1.5


def test_a_retry_after_longer_than_the_longest_wait_defers_even_without_a_deadline(sim):
    session = build_session(retries=3, backoff=0, max_retry_wait=2)
    url = f"{sim.url}jobs"
    rate_limited(sim, "/jobs", 3600)
    sim.oauth.accepts = lambda request: True  # the limit is what is tested, not the token

    result, took = timed(lambda: send(PROVIDER, session, "GET", url, params={"format": "json"}))

    assert isinstance(result, ProviderUnavailable) and "3600" in result.message
    assert took < 1.5


def test_a_short_retry_after_within_the_time_left_is_honoured(sim):
    job_id = sim.add_job()
    reader = adapter(sim, Deadline(10.0))
    reader.access_token.value()
    rate_limited(sim, f"/jobs/{job_id}", 1, times=1)

    (result,), took = timed(lambda: list(reader.read_jobs([job_id])))

    assert result.job_id == job_id and 0.9 < took < 3


def test_a_request_never_waits_longer_than_the_time_left(sim):
    # Given a provider that takes 3 s to answer, a 20 s read timeout, and 1 s left
    job_id = sim.add_job()
    reader = adapter(sim, Deadline(1.0), http_retries=0)
    reader.access_token.value()
    sim.read_delay = 3.0

    (result,), took = timed(lambda: list(reader.read_jobs([job_id])))

    assert isinstance(result, PollFailure) and isinstance(result.error, ProviderUnavailable)
    assert took < 2


def test_no_call_starts_once_the_time_is_used_up(sim):
    job_id = sim.add_job()
    reader = adapter(sim, Deadline(0.0))
    sim.reset_log()

    with pytest.raises(ProviderUnavailable, match="deferred"):
        list(reader.read_jobs([job_id]))
    assert sim.requests == []


# --- through the handler -----------------------------------------------------------------------------------


@pytest.fixture
def stack(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def test_a_rate_limited_webhook_answers_503_in_time_and_leaves_the_job_as_it_was(stack, sim):
    # Given a tracked job, and Xvid asking to wait a minute (longer than HTTP_MAX_RETRY_WAIT, and than the
    # HTTP API's 30 s)
    job_id = sim.add_job()
    stack.poll(PROVIDER)
    before = stack.job(PROVIDER, job_id)
    sim.finish(job_id)
    rate_limited(sim, f"/jobs/{job_id}", 60)

    # When Xvid calls the webhook
    (status, body), took = timed(lambda: stack.webhook(PROVIDER, {"job_id": job_id}), limit=20)

    # Then it answers 503 at once (so Xvid sends it again), and nothing was written
    assert status == 503 and "retry later" in body["error"]
    assert took < 5
    assert stack.job(PROVIDER, job_id) == before
