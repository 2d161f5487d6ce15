"""The Xvid adapter against the simulator: tokens, paging, the single reads that catch what the listing
dropped, bounded concurrency, and the failures a poll must survive."""

from __future__ import annotations

import dataclasses

import pytest

from local.simulators.xvid import XvidSimulator
from tests.integration.simulators import simulator_fixtures
from tests.poll_contexts import poll_context
from transcode_core import oauth
from transcode_core.config import Settings
from transcode_core.errors import ProviderError, ProviderUnavailable
from transcode_core.http import build_session
from transcode_core.model import JobError, Snapshot, snapshot_fields
from transcode_core.providers import xvid
from transcode_core.providers.base import PollFailure
from transcode_core.status import Status
from transcode_core.times import utc_now

SETTINGS = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)


running_sim, sim = simulator_fixtures(XvidSimulator, client_id="cid", client_secret="csecret")


def make_adapter(sim, *, api_url=None, client_secret=None, **settings):
    return xvid.XvidAdapter(
        api_url=api_url or sim.url,
        credentials={"client_id": "cid", "client_secret": client_secret or "csecret", "webhook_token": "w"},
        session=build_session(retries=0),
        settings=dataclasses.replace(SETTINGS, **settings),
    )


def poll(adapter, active_jobs=(), stored=None):
    """One poll; `stored` holds the table's items by job id (what `lookup` finds)."""
    table = stored or {}

    def lookup(job_ids):
        return {job_id: table[job_id] for job_id in job_ids if job_id in table}

    context = poll_context(active_jobs, lookup, now=utc_now(), settings=SETTINGS)
    results = list(adapter.poll(context))
    return results, context.stats


def tracked(*job_ids, status="PROCESSING"):
    return [{"job_id": job_id, "status": status, "provider_status": status} for job_id in job_ids]


def snapshots(results):
    return {result.job_id: result for result in results if isinstance(result, Snapshot)}


def failures(results):
    return [result for result in results if isinstance(result, PollFailure)]


def list_requests(sim):
    return [request for request in sim.requests if request.path == "/jobs"]


def token_calls(sim):
    return sim.count("POST", "/oauth2/token")


# --- discovery and paging --------------------------------------------------------------------------------
@pytest.mark.parametrize(("jobs", "page_size", "pages"), [(12, 5, 3), (10, 5, 2), (5, 5, 1), (3, 5, 1)])
def test_listing_pages_until_a_page_without_a_next_one(sim, jobs, page_size, pages):
    # Each request asks for one job more than a page: a count that is a multiple of the page size costs no
    # empty last page
    job_ids = [sim.add_job() for _ in range(jobs)]

    results, stats = poll(make_adapter(sim, page_size=page_size))

    assert list(snapshots(results)) == job_ids
    assert [(r.query["start"], r.query["limit"], r.query["inprogress"]) for r in list_requests(sim)] == [
        (str(start), str(page_size + 1), "true") for start in range(0, pages * page_size, page_size)
    ]
    assert all(request.query["format"] == "json" for request in list_requests(sim))
    assert stats == {"list_calls": pages, "detail_calls": 0, "discovered": jobs, "settled_skipped": 0}


def test_page_size_is_capped_at_the_api_limit(sim):
    sim.add_job()

    poll(make_adapter(sim, page_size=20_000))

    assert list_requests(sim)[0].query["limit"] == "5000"  # a page of 4999 and the look-ahead job


def test_listed_jobs_are_not_read_again_and_only_new_ones_count_as_discovered(sim):
    known, new = sim.add_job(), sim.add_job()

    results, stats = poll(make_adapter(sim), tracked(known))

    assert set(snapshots(results)) == {known, new}
    assert sim.count("GET", "/jobs/") == 0
    assert stats == {"list_calls": 1, "detail_calls": 0, "discovered": 1, "settled_skipped": 0}


def stored_item(snapshot):
    """The table's item for a snapshot, as the pipeline writes it for a new job."""
    return {"job_id": snapshot.job_id, **snapshot_fields(snapshot)}


def test_recently_finished_jobs_already_stored_are_skipped(sim):
    # Given three jobs that finished minutes ago: one stored as finished, one stored while running, one unknown
    settled, behind, unknown = sim.add_job(), sim.add_job(), sim.add_job()
    sim.advance(behind, 2)
    stored = {behind: stored_item(snapshots(poll(make_adapter(sim))[0])[behind])}
    for job_id in (settled, behind, unknown):
        sim.finish(job_id)
    sim.advance_clock(minutes=3)
    stored[settled] = stored_item(snapshots(poll(make_adapter(sim))[0])[settled])

    # When a poll lists them all (none is on the active list)
    results, stats = poll(make_adapter(sim), stored=stored)

    # Then only what the table does not know yet is applied
    assert list(snapshots(results)) == [behind, unknown]
    assert stats == {"list_calls": 1, "detail_calls": 0, "discovered": 1, "settled_skipped": 1}


def test_base_url_with_path_and_no_trailing_slash_is_joined(sim):
    job_id = sim.add_job()

    results, _ = poll(make_adapter(sim, api_url=sim.url + "v1"), tracked(job_id))

    assert job_id in snapshots(results)
    assert {request.path for request in sim.requests} == {"/v1/oauth2/token", "/v1/jobs"}


def test_simulated_lifecycles_end_complete_and_failed(sim):
    good, bad = sim.add_job(), sim.add_job(fail=True, error_msg="Unsupported codec", error_code="E_CODEC")
    adapter = make_adapter(sim)
    seen = {good: [], bad: []}

    for _ in range(6):
        for job_id, snapshot in snapshots(poll(adapter, tracked(good, bad))[0]).items():
            seen[job_id].append(snapshot.status)
        sim.tick()

    assert seen[good] == [Status.SUBMITTED, Status.QUEUED, Status.PROCESSING, Status.PROCESSING, Status.UPLOADING] + [
        Status.COMPLETE
    ]
    assert seen[bad] == [Status.SUBMITTED, Status.QUEUED, Status.PROCESSING] + [Status.ERROR] * 3
    final = snapshots(poll(adapter)[0])
    assert final[good].progress == 100 and final[good].error is None
    assert final[bad].error == JobError("Unsupported codec", "E_CODEC")
    assert final[bad].finished_at is not None


# --- the job that leaves the listing between two polls ---------------------------------------------------
def test_job_finished_long_ago_is_caught_by_a_single_read(sim):
    # Given a tracked job seen PROCESSING, that then finished 20 minutes before the next poll
    job_id = sim.add_job()
    sim.advance(job_id, 2)
    adapter = make_adapter(sim)
    assert snapshots(poll(adapter)[0])[job_id].status is Status.PROCESSING
    sim.finish(job_id)
    sim.advance_clock(minutes=20)
    sim.reset_log()

    # When the next poll runs
    results, stats = poll(adapter, tracked(job_id))

    # Then the listing no longer shows it, and the single read does
    assert sim.count("GET", "/jobs/") == 1
    snapshot = snapshots(results)[job_id]
    assert (snapshot.status, snapshot.provider_status, snapshot.progress) == (Status.COMPLETE, "SUCCESS", 100)
    assert stats == {"list_calls": 1, "detail_calls": 1, "discovered": 0, "settled_skipped": 0}


def test_job_finished_within_the_window_is_still_listed(sim):
    job_id = sim.add_job()
    sim.finish(job_id)
    sim.advance_clock(minutes=14)

    results, stats = poll(make_adapter(sim), tracked(job_id))

    assert snapshots(results)[job_id].status is Status.COMPLETE
    assert stats["detail_calls"] == 0


def test_single_reads_run_in_parallel_up_to_the_concurrency_setting(sim):
    job_ids = [sim.add_job() for _ in range(12)]
    for job_id in job_ids:
        sim.finish(job_id)
    sim.advance_clock(minutes=30)
    sim.read_delay = 0.05

    results, stats = poll(make_adapter(sim, concurrency=3), tracked(*job_ids))

    assert sim.max_in_flight == 3
    assert [result.job_id for result in results] == job_ids  # in the order asked
    assert {result.status for result in results} == {Status.COMPLETE}
    assert stats["detail_calls"] == 12


def test_parallel_reads_refused_together_ask_for_one_new_token(sim):
    # Given six parallel reads that all meet a revoked token
    job_ids = [sim.add_job() for _ in range(6)]
    adapter = make_adapter(sim, concurrency=6)
    list(adapter.read_jobs(job_ids[:1]))
    sim.expire_tokens()
    sim.token_delay = 0.1  # every reader is refused while the first new-token request is still out

    results = list(adapter.read_jobs(job_ids))

    # Then they share one new token
    assert [result.job_id for result in results] == job_ids
    assert token_calls(sim) == 2


# --- a restarted job --------------------------------------------------------------------------------------
@pytest.mark.parametrize("updated_at_moves", [True, False])
@pytest.mark.parametrize("rewatched", [True, False])
def test_a_restarted_job_is_a_new_run(sim, rewatched, updated_at_moves):
    # Given a job stored as failed, that Xvid runs again a minute later; its updated_at may not move (the
    # seed's example shows it before created_at)
    sim.updated_at_moves = updated_at_moves
    job_id = sim.add_job(fail=True)
    sim.finish(job_id)
    ended = stored_item(snapshots(poll(make_adapter(sim))[0])[job_id])
    sim.advance_clock(minutes=1)
    sim.restart(job_id)

    # When a poll sees it, on the active list again (jobs API PUT) or only in the listing
    active = [ended] if rewatched else []
    results, _ = poll(make_adapter(sim), active, stored={job_id: ended})

    # Then it is marked as a new attempt
    snapshot = snapshots(results)[job_id]
    assert (snapshot.status, snapshot.requeued) == (Status.SUBMITTED, True)


@pytest.mark.parametrize("updated_at_moves", [True, False])
def test_a_job_that_ran_again_and_failed_again_between_polls_is_a_new_run(sim, updated_at_moves):
    sim.updated_at_moves = updated_at_moves
    job_id = sim.add_job(fail=True)
    sim.finish(job_id)
    ended = stored_item(snapshots(poll(make_adapter(sim))[0])[job_id])
    sim.advance_clock(minutes=1)
    sim.restart(job_id)
    sim.advance_clock(minutes=1)
    sim.finish(job_id)  # the same word, FAILED, a minute later

    results, _ = poll(make_adapter(sim), stored={job_id: ended})

    snapshot = snapshots(results)[job_id]
    assert (snapshot.provider_status, snapshot.requeued) == ("FAILED", True)


def test_an_ended_job_that_still_shows_its_last_run_is_not_a_new_run(sim):
    job_id = sim.add_job()
    sim.finish(job_id)
    ended = stored_item(snapshots(poll(make_adapter(sim))[0])[job_id])
    sim.advance_clock(minutes=30)  # out of the listing: the single read sees it

    results, _ = poll(make_adapter(sim), [ended], stored={job_id: ended})

    assert snapshots(results)[job_id].requeued is False


# --- tokens --------------------------------------------------------------------------------------------
def test_token_is_sent_as_bearer_and_reused_by_a_warm_lambda(sim):
    sim.add_job()

    poll(make_adapter(sim))
    poll(make_adapter(sim))  # a new adapter in the same process: the module-level cache serves it

    assert token_calls(sim) == 1
    token_request = sim.requests[0]
    assert token_request.form() == {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "csecret"}
    assert all(r.headers["authorization"].startswith("Bearer ") for r in sim.requests if r.path != "/oauth2/token")


@pytest.mark.parametrize("revoke", ["expire_tokens", "clock"])
def test_refused_token_is_refreshed_exactly_once(sim, revoke):
    job_id = sim.add_job()
    adapter = make_adapter(sim)
    poll(adapter)
    if revoke == "expire_tokens":
        sim.expire_tokens()
    else:
        sim.advance_clock(minutes=61)  # past the server's expiry, while the client still trusts its token

    results, _ = poll(adapter, tracked(job_id))

    assert job_id in snapshots(results)
    assert failures(results) == []
    assert token_calls(sim) == 2


def test_token_is_renewed_before_it_expires(sim, monkeypatch):
    sim.add_job()
    adapter = make_adapter(sim)
    poll(adapter)
    later = oauth._clock() + 3600 - 30  # inside the renewal margin of the 3600 s token
    monkeypatch.setattr(oauth, "_clock", lambda: later)
    sim.reset_log()

    poll(adapter)

    assert [request.path for request in sim.requests] == ["/oauth2/token", "/jobs"]  # no 401 round trip


def test_a_fresh_token_that_is_refused_too_fails_that_job_without_looping(sim):
    job_id = sim.add_job()
    sim.finish(job_id)
    sim.advance_clock(minutes=30)
    sim.answer_next(f"/jobs/{job_id}", {"error": "invalid_token"}, 401)
    sim.answer_next(f"/jobs/{job_id}", {"error": "invalid_token"}, 401)

    results, _ = poll(make_adapter(sim), tracked(job_id))

    (failure,) = failures(results)
    assert failure.job_ids == (job_id,)
    assert "a fresh access token was refused (HTTP 401)" in failure.error.message
    assert token_calls(sim) == 2


def test_wrong_credentials_stop_the_poll_with_a_clear_error(sim):
    with pytest.raises(ProviderError) as raised:
        poll(make_adapter(sim, client_secret="wrong-secret"), tracked("559cbbec14ea67a7cad6c7d8"))

    assert "token request refused (HTTP 401, invalid_client)" in str(raised.value)
    assert "wrong-secret" not in str(raised.value)
    assert sim.count("GET") == 0


def test_token_endpoint_down_stops_the_poll_as_unavailable(sim):
    sim.fail_next = [503]

    with pytest.raises(ProviderUnavailable):
        poll(make_adapter(sim))


# --- failures a poll survives ---------------------------------------------------------------------------
def test_api_outage_fails_the_poll_once_without_single_reads(sim):
    job_id = sim.add_job()
    adapter = make_adapter(sim)
    poll(adapter)  # a warm token
    sim.fail_next = [503] * 20

    results, _ = poll(adapter, tracked(job_id, "559cbbec14ea67a7cad6c7d8"))

    assert snapshots(results) == {}
    listing, tracked_jobs = failures(results)
    assert isinstance(listing.error, ProviderUnavailable)
    assert tracked_jobs.job_ids == (job_id, "559cbbec14ea67a7cad6c7d8")
    assert sim.count("GET", "/jobs/") == 0


def test_malformed_list_page_is_a_failure_and_tracked_jobs_are_still_read(sim):
    job_id = sim.add_job()
    sim.answer_next("/jobs", "<html>maintenance</html>")

    results, stats = poll(make_adapter(sim), tracked(job_id))

    (failure,) = failures(results)
    assert failure.error.message == "job list at start=0: HTTP 200: the body is not JSON"
    assert snapshots(results)[job_id].status is Status.SUBMITTED
    assert stats["detail_calls"] == 1


def test_one_malformed_job_in_a_page_fails_alone(sim):
    good = sim.add_job()
    broken = sim.add_job()
    sim.jobs[broken].extra = {"outputs": "everything"}

    results, _ = poll(make_adapter(sim))

    assert list(snapshots(results)) == [good]
    (failure,) = failures(results)
    assert failure.job_ids == (broken,)
    assert failure.error.message == f"job {broken}: outputs is not a list"


def test_api_that_ignores_start_does_not_loop_forever(sim):
    for _ in range(4):
        sim.add_job()
    adapter = make_adapter(sim, page_size=2)
    first_page = {"jobs": [sim.document(job_id) for job_id in list(sim.jobs)[:3]]}  # a page and its look-ahead
    sim.answer_next("/jobs", first_page)
    sim.answer_next("/jobs", first_page)

    results, stats = poll(adapter)

    assert len(snapshots(results)) == 2
    (failure,) = failures(results)
    assert failure.error.message == "job list at start=2 brings no new job; stopped"
    assert stats["list_calls"] == 2


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        ({"error": "not_found"}, 404, "not found (HTTP 404)"),
        ("not json", 200, "HTTP 200: the body is not JSON"),
        ({"jobs": []}, 200, 'expected {"job": {...}}'),
        ({"job": {"id": "559cbbec14ea67a7cad6c7d8", "status": "SUCCESS"}}, 200, "the answer is about job"),
        ({"error": "forbidden"}, 403, "HTTP 403"),
    ],
)
def test_bad_single_read_fails_that_job_only(sim, answer, status, message):
    broken, fine = sim.add_job(), sim.add_job()
    for job_id in (broken, fine):
        sim.finish(job_id)
    sim.advance_clock(minutes=30)
    sim.answer_next(f"/jobs/{broken}", answer, status)

    results, _ = poll(make_adapter(sim), tracked(broken, fine))

    assert list(snapshots(results)) == [fine]
    (failure,) = failures(results)
    assert failure.job_ids == (broken,)
    assert failure.error.message.startswith(f"job {broken}: ")
    assert message in failure.error.message


def test_hostile_stored_job_id_is_never_sent(sim):
    hostile = "../oauth2/token?grant_type=x"

    results, _ = poll(make_adapter(sim), tracked(hostile))

    (failure,) = failures(results)
    assert failure.job_ids == (hostile,)
    assert "is not a valid Xvid job id" in failure.error.message
    assert sim.count("GET", "/jobs/") == 0 and sim.count("GET", "/oauth2") == 0


def test_webhook_read_of_an_unavailable_api_raises_unavailable(sim):
    job_id = sim.add_job()
    adapter = make_adapter(sim)
    list(adapter.read_jobs([job_id]))  # a warm token
    sim.fail_next = [502]

    (failure,) = list(adapter.read_jobs([job_id]))

    assert isinstance(failure.error, ProviderUnavailable)  # the webhook answers 503, and Xvid retries
