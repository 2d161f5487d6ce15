"""VOD Station adapter against the simulator on 127.0.0.1: signing, paging, the window, normalizing,
page failures, and callbacks applied through the rules of change."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from local.simulators.base import SimRequest, SimResponse
from local.simulators.vod_station import VodStationSimulator
from tests.poll_contexts import poll_context
from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderError, ProviderUnavailable
from transcode_core.http import build_session
from transcode_core.model import decide
from transcode_core.providers.base import PollFailure
from transcode_core.providers.vod_station import AuthenticationRejected, VodStationAdapter
from transcode_core.status import Status
from transcode_core.webhook import WebhookBody

ACCESS_KEY, SECRET_KEY = "AK-test", "SK-test"
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


class PagedFaults(VodStationSimulator):
    """The simulator with scripted answers for some pages (after the gateway's checks)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.page_answers: dict[str, SimResponse] = {}
        self.page_delay = 0.0  # seconds each request takes, outside the simulator's lock (to observe overlap)
        self.in_flight = self.max_in_flight = 0
        self._flight_lock = threading.Lock()

    def dispatch(self, request: SimRequest) -> SimResponse:
        with self._flight_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.page_delay)
            return super().dispatch(request)
        finally:
            with self._flight_lock:
                self.in_flight -= 1

    def handle(self, request: SimRequest) -> SimResponse:
        scripted = self.page_answers.get(request.query.get("pageNo", ""))
        if scripted and self._authenticate(request) is None:
            return scripted
        return super().handle(request)


@pytest.fixture
def sim():
    with PagedFaults(access_key=ACCESS_KEY, secret_key=SECRET_KEY) as simulator:
        yield simulator


def make_adapter(
    api_url: str, *, secret_key: str = SECRET_KEY, access_key: str = ACCESS_KEY, deadline=None, **settings
):
    return VodStationAdapter(
        api_url=api_url,
        credentials={"access_key": access_key, "secret_key": secret_key},
        session=build_session(retries=0, read_timeout=5),
        settings=Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None, **settings),
        deadline=deadline,
    )


class Store:
    """Jobs as the pipeline keeps them: each snapshot goes through the real rules of change."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}
        self.events: list[tuple[str, str]] = []  # (job_id, terminal status) each time one is published

    def apply(self, snapshot) -> str:
        change = decide(self.items.get(snapshot.job_id), snapshot)
        if change is None:
            return "unchanged"
        self.items[snapshot.job_id] = {
            "job_id": snapshot.job_id,
            **change.fields,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        if change.publishes:
            self.events.append((snapshot.job_id, change.fields["status"]))
        return change.kind.value

    def lookup(self, job_ids):
        return {job_id: self.items[job_id] for job_id in job_ids if job_id in self.items}

    def active(self):
        return [item for item in self.items.values() if item["status"] not in ("COMPLETE", "ERROR", "CANCELED")]


def poll(adapter, store: Store | None = None, active=None):
    """One poll: (snapshots, failures, stats); snapshots are applied to `store` when given."""
    store = store or Store()
    context = poll_context(
        store.active() if active is None else active, store.lookup, now=datetime.now(UTC), settings=adapter.settings
    )
    snapshots, failures = [], []
    for result in adapter.poll(context):
        if isinstance(result, PollFailure):
            failures.append(result)
        else:
            snapshots.append(result)
            store.apply(result)
    return snapshots, failures, context.stats


def post(adapter, store: Store, payload) -> list:
    body = WebhookBody(json.dumps(payload), "application/json")
    snapshots = adapter.webhook_snapshots(body, store.lookup)
    for snapshot in snapshots:
        store.apply(snapshot)
    return snapshots


# --- signing ------------------------------------------------------------------------------------------


def test_signed_requests_are_accepted_and_list_the_window(sim):
    sim.add_job(10019, "a.mp4", ["sd", "hd"], category_name="test2")

    snapshots, failures, _ = poll(make_adapter(sim.url))

    assert failures == []
    assert [s.job_id for s in snapshots] == ["10019:a.mp4"]
    [request] = sim.requests
    assert request.raw_query.startswith("pageNo=1&pageSizeNo=100&workStartTimeFrom=")
    assert request.headers["x-ncp-iam-access-key"] == ACCESS_KEY


@pytest.mark.parametrize("suffix", ["gateway/vod/", "gateway/vod"])
def test_a_path_prefix_in_the_api_url_is_sent_and_signed(sim, suffix):
    sim.add_job(7, "b.mp4")

    snapshots, failures, _ = poll(make_adapter(sim.url + suffix))

    assert failures == [] and len(snapshots) == 1
    assert sim.requests[0].path == "/gateway/vod/api/v2/status"


def test_wrong_secret_is_a_clear_error_that_ends_the_poll(sim):
    sim.add_job(7, "b.mp4")
    with pytest.raises(AuthenticationRejected) as refused:
        poll(make_adapter(sim.url, secret_key="wrong"))
    assert refused.value.message == "HTTP 401 error 200: Authentication Failed (Signature mismatch)"
    assert isinstance(refused.value, ProviderError)


def test_wrong_access_key_is_refused(sim):
    with pytest.raises(AuthenticationRejected, match="Invalid access key"):
        poll(make_adapter(sim.url, access_key="someone-else"))


def test_a_clock_more_than_five_minutes_off_is_refused(sim):
    sim.clock_skew_ms = 6 * 60 * 1000
    with pytest.raises(AuthenticationRejected, match="5 minutes"):
        poll(make_adapter(sim.url))
    sim.clock_skew_ms = -4 * 60 * 1000
    assert poll(make_adapter(sim.url))[1] == []


# --- paging -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("total_as_string", [True, False])
def test_paging_stops_at_total(sim, total_as_string):
    # Given 23 encodings and pages of 10
    sim.total_as_string = total_as_string
    for n in range(23):
        sim.add_job(1, f"file-{n:02}.mp4")

    snapshots, failures, stats = poll(make_adapter(sim.url, page_size=10))

    # Then three pages are read, and every file is discovered once
    assert sorted(r.query["pageNo"] for r in sim.requests) == ["1", "2", "3"]  # 2 and 3 side by side
    assert stats["list_pages"] == 3
    assert sorted(s.job_id for s in snapshots) == [f"1:file-{n:02}.mp4" for n in range(23)]
    assert failures == []


def test_a_job_whose_outputs_span_pages_is_judged_on_all_of_them(sim):
    # One job, three outputs, pages of one item: two complete, one still running
    job = sim.add_job(3, "c.mp4", ["sd", "hd", "fhd"])
    sim.advance(job, 3)
    sim.set_status(job, "RUNNING", "fhd", percent=50)

    [snapshot], failures, _ = poll(make_adapter(sim.url, page_size=1))

    assert failures == [] and len(sim.requests) == 3
    assert snapshot.status is Status.PROCESSING
    assert snapshot.provider_status == "COMPLETE,RUNNING"
    assert snapshot.progress == pytest.approx(83.33)


def test_a_failed_page_stops_paging_updates_known_jobs_and_defers_new_ones(sim):
    # Given a known job and a new one on page 1, and page 2 failing
    store = Store()
    known = sim.add_job(1, "known.mp4")
    poll(make_adapter(sim.url), store)
    sim.reset_log()
    sim.advance(known)
    new = sim.add_job(1, "new.mp4", work_start_ms=int(time.time() * 1000) - 60_000)
    for n in range(3):
        sim.add_job(1, f"later-{n}.mp4", work_start_ms=int(time.time() * 1000) - 3_600_000)
    sim.page_answers["2"] = SimResponse(400, {"error": {"errorCode": "100", "message": "Bad Request Exception"}})

    # (one page at a time, so that no later page is already on its way when page 2 fails)
    snapshots, failures, stats = poll(make_adapter(sim.url, page_size=2, concurrency=1), store)

    # Then the failure is reported, paging stopped, the known job moved on and the new one waits
    recent_start = sim.requests[0].query["workStartTimeFrom"]
    assert [r.query["pageNo"] for r in sim.requests if r.query["workStartTimeFrom"] == recent_start] == ["1", "2"]
    [failure] = failures
    assert failure.error.message == "page 2: HTTP 400 error 100: Bad Request Exception"
    assert [s.job_id for s in snapshots] == [known]
    assert store.items[known]["status"] == "PROCESSING"
    assert new not in store.items
    assert stats["discoveries_deferred"] == 1


def test_provider_down_is_a_poll_failure_not_a_crash(sim):
    sim.add_job(1, "a.mp4")
    sim.fail_next = [503]
    snapshots, [failure], _ = poll(make_adapter(sim.url))
    assert snapshots == []
    assert isinstance(failure.error, ProviderUnavailable)


def test_a_body_that_is_not_json_is_a_poll_failure(sim):
    sim.page_answers["1"] = SimResponse(200, "<html>maintenance</html>", {"Content-Type": "text/html"})
    snapshots, [failure], _ = poll(make_adapter(sim.url))
    assert snapshots == [] and "not JSON" in failure.error.message


def test_an_error_body_with_status_200_is_an_error(sim):
    sim.page_answers["1"] = SimResponse(200, {"error": {"errorCode": "500", "message": "Internal", "details": "x"}})
    _, [failure], _ = poll(make_adapter(sim.url))
    assert failure.error.message == "page 1: HTTP 200 error 500: Internal (x)"


# --- the window ---------------------------------------------------------------------------------------


def test_active_jobs_found_before_the_look_back_are_read_from_their_kept_bound(sim):
    # Given active jobs each found in an earlier window: their work started at or after that window's start
    now_ms = int(time.time() * 1000)
    oldest = sim.add_job(1, "oldest.mp4", work_start_ms=now_ms - 5 * DAY_MS)
    sim.add_job(1, "before-window.mp4", work_start_ms=now_ms - 7 * DAY_MS)
    other = sim.add_job(1, "other.mp4", work_start_ms=now_ms - HOUR_MS)
    active = [
        {"job_id": oldest, "status": "PROCESSING", "details": {"work_started_after": _iso(now_ms - 6 * DAY_MS)}},
        {"job_id": other, "status": "QUEUED", "details": {"work_started_after": _iso(now_ms - 2 * HOUR_MS)}},
    ]

    snapshots, _, _ = poll(make_adapter(sim.url), active=active)

    # Then the recent window (the discovery look-back) is read first, then the reach-back to the oldest bound
    [(recent_start, recent_end), (reach_start, reach_end)] = sim.windows
    assert abs(recent_start - (now_ms - 2 * DAY_MS)) < 5_000
    assert abs(recent_end - (now_ms + 5 * 60 * 1000)) < 5_000
    assert abs(reach_start - (now_ms - 6 * DAY_MS)) < 5_000 and reach_end == recent_start
    assert sorted(s.job_id for s in snapshots) == sorted([other, oldest])  # the job from before the window is not read


def test_discovery_looks_back_a_bounded_time(sim):
    now_ms = int(time.time() * 1000)
    sim.add_job(1, "yesterday.mp4", work_start_ms=now_ms - 24 * HOUR_MS)
    sim.add_job(1, "last-week.mp4", work_start_ms=now_ms - 7 * 24 * HOUR_MS)

    snapshots, _, _ = poll(make_adapter(sim.url))

    assert [s.job_id for s in snapshots] == ["1:yesterday.mp4"]
    assert abs(sim.windows[0][0] - (now_ms - 48 * HOUR_MS)) < 5_000


# --- normalizing --------------------------------------------------------------------------------------


def test_the_documented_item_is_normalized(sim):
    # The seed's response item, verbatim, plus a second output of the same file still running
    documented = {
        "categoryId": 10019,
        "categoryName": "test2",
        "filePath": "SampleVideo_1280x720_5mb_auto_90fps_abr.mp4",
        "outputType": "auto_90fps_abr",
        "link": "https://kr.object.ncloudstorage.com/b/SampleVideo_AVC_SD_1Pass_30fps.mp4?X-Amz-Signature=abc",
        "outputTotalSize": 81040256,
        "lastWorkTime": "2021-09-14T15:49:12+0900",
        "status": "COMPLETE",
        "percent": 100,
    }
    running = {**documented, "outputType": "hd", "status": "RUNNING", "percent": "40", "lastWorkTime": None}
    del running["link"], running["outputTotalSize"]
    now_ms = int(time.time() * 1000)
    sim.raw_items = [(now_ms, documented), (now_ms, running)]

    [snapshot], _, _ = poll(make_adapter(sim.url))

    assert snapshot.job_id == "10019:SampleVideo_1280x720_5mb_auto_90fps_abr.mp4"
    assert snapshot.status is Status.PROCESSING
    assert snapshot.progress == 70
    assert snapshot.source_url == "SampleVideo_1280x720_5mb_auto_90fps_abr.mp4"
    assert snapshot.created_at == "2021-09-14T06:49:12Z"
    assert snapshot.finished_at is None
    assert snapshot.details == {
        "category_id": "10019",
        "category_name": "test2",
        "output_types": ["auto_90fps_abr", "hd"],
        "work_started_after": snapshot.details["work_started_after"],  # the start of the window it was found in
    }
    complete = snapshot.outputs[0]
    assert (complete.id, complete.status, complete.provider_status) == ("auto_90fps_abr", Status.COMPLETE, "COMPLETE")
    assert complete.size_bytes == 81040256
    assert [d.url for d in complete.destinations] == [
        "https://kr.object.ncloudstorage.com/b/SampleVideo_AVC_SD_1Pass_30fps.mp4"
    ]
    assert snapshot.outputs[1].progress == 40


def test_listing_items_that_name_no_job_are_skipped_and_counted(sim):
    now_ms = int(time.time() * 1000)
    sim.raw_items = [
        (now_ms, {"categoryId": 1, "filePath": "", "outputType": "sd", "status": "WAITING"}),
        (now_ms, "not an object"),
        (now_ms, {"categoryId": None, "filePath": "x.mp4", "outputType": "sd", "status": "RUNNING"}),
    ]
    sim.add_job(1, "ok.mp4")

    snapshots, failures, stats = poll(make_adapter(sim.url))

    assert [s.job_id for s in snapshots] == ["1:ok.mp4"] and failures == []
    assert stats["unreadable_items"] == 3


def test_a_job_runs_to_completion_with_one_event(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    job = sim.add_job(10019, "movie.mp4", ["sd", "hd"], category_name="films")

    poll(adapter, store)
    assert store.items[job]["status"] == "QUEUED"
    assert store.items[job]["progress"] == 0
    sim.advance(job)
    poll(adapter, store)
    assert (store.items[job]["status"], store.items[job]["progress"]) == ("PROCESSING", 40)
    sim.advance(job, 2)
    poll(adapter, store)
    poll(adapter, store)

    item = store.items[job]
    assert item["status"] == "COMPLETE" and item["provider_status"] == "COMPLETE"
    assert item["finished_at"].endswith("Z") and item["created_at"] <= item["finished_at"]
    assert [o["destinations"][0]["url"] for o in item["outputs"]] == [
        "https://kr.object.ncloudstorage.com/vod-out/10019/movie_sd.mp4?part=1",
        "https://kr.object.ncloudstorage.com/vod-out/10019/movie_hd.mp4?part=1",
    ]
    assert all(o["size_bytes"] > 0 for o in item["outputs"])
    assert store.events == [(job, "COMPLETE")]


def test_a_failed_output_fails_the_job(sim):
    store = Store()
    job = sim.add_job(5, "broken.mp4", ["sd", "hd"], fail=True)
    sim.advance(job, 3)

    poll(make_adapter(sim.url), store)

    item = store.items[job]
    assert item["status"] == "ERROR"
    assert item["provider_status"] == "COMPLETE,FAILURE"
    assert item["error"] == {"message": "encoding failed for output sd", "code": "FAILURE"}
    assert store.events == [(job, "ERROR")]


def test_a_finished_job_listed_again_is_skipped_and_a_reencode_is_a_new_attempt(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    clock = [int(time.time() * 1000) - 600_000]
    sim.job_clock = lambda: clock[0]
    job = sim.add_job(2, "again.mp4")
    sim.advance(job, 3)
    poll(adapter, store)
    assert store.items[job]["status"] == "COMPLETE"

    # Listed again while finished: nothing to say
    snapshots, _, stats = poll(adapter, store)
    assert snapshots == [] and stats["settled_jobs_skipped"] == 1

    # Encoded again a minute later: the job is requeued, with the new run's outputs only
    clock[0] += 60_000
    sim.reencode(job)
    [snapshot], _, _ = poll(adapter, store)
    assert snapshot.requeued and snapshot.status is Status.QUEUED
    assert [o.provider_status for o in snapshot.outputs] == ["WAITING"]
    assert store.items[job]["status"] == "QUEUED"


# --- callbacks ----------------------------------------------------------------------------------------


def test_callbacks_in_order_complete_a_listed_job_once(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    job = sim.add_job(10019, "cb.mp4", ["sd", "hd"])
    poll(adapter, store)  # the listing tells which outputs the job has

    applied = []
    for _ in range(3):
        sim.tick()
        for payload in sim.take_callbacks():
            applied += post(adapter, store, payload)

    assert store.items[job]["status"] == "COMPLETE"
    assert store.events == [(job, "COMPLETE")]
    assert all(o["destinations"][0]["url"].endswith("?part=1") for o in store.items[job]["outputs"])
    assert {s.job_id for s in applied} == {job}


def test_callbacks_out_of_order_end_in_the_same_state(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    job = sim.add_job(10019, "late.mp4", ["sd", "hd"])
    poll(adapter, store)
    sim.take_callbacks()
    sim.advance(job, 3)

    callbacks = sim.take_callbacks()  # RUNNING sd, RUNNING hd, COMPLETE sd, COMPLETE hd
    for payload in reversed(callbacks):
        post(adapter, store, payload)

    assert store.items[job]["status"] == "COMPLETE"
    assert store.events == [(job, "COMPLETE")]
    assert {o["provider_status"] for o in store.items[job]["outputs"]} == {"COMPLETE"}


def test_waiting_callbacks_name_no_job_and_a_callback_alone_does_not_complete(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    job = sim.add_job(4, "unseen.mp4", ["sd", "hd"])
    assert [post(adapter, store, p) for p in sim.take_callbacks()] == [[], []]  # the two WAITING callbacks

    # The encoder works option by option: sd finishes while hd still waits (its callback named no file)
    sim.set_status(job, "RUNNING", "sd")
    sim.set_status(job, "COMPLETE", "sd")
    for payload in sim.take_callbacks():
        post(adapter, store, payload)
    assert store.items[job]["status"] == "PROCESSING"
    assert store.events == []

    # The next poll sees hd waiting; when hd completes, its callback completes the job
    poll(adapter, store)
    assert store.items[job]["status"] == "PROCESSING"
    sim.set_status(job, "COMPLETE", "hd")
    for payload in sim.take_callbacks():
        if payload["status"] == "COMPLETE":
            post(adapter, store, payload)
    assert store.items[job]["status"] == "COMPLETE"
    assert store.events == [(job, "COMPLETE")]


def test_canceled_outputs_send_no_callback(sim):
    job = sim.add_job(4, "stop.mp4", ["sd"])
    sim.take_callbacks()
    sim.set_status(job, "CANCELED")
    assert sim.take_callbacks() == []


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


# --- long jobs, fast re-runs, paging, refusals ---------------------------------------------------------------


def test_a_job_that_started_long_before_it_was_first_seen_is_followed_to_its_end(sim):
    # Given an encode requested three hours ago that is first seen now (lastWorkTime is now, not its start)
    store = Store()
    adapter = make_adapter(sim.url)
    now_ms = int(time.time() * 1000)
    job = sim.add_job(5, "long.mp4", work_start_ms=now_ms - 3 * HOUR_MS)
    sim.advance(job)
    poll(adapter, store)
    assert store.items[job]["status"] == "PROCESSING"

    # When it goes on and finishes, over later polls
    sim.advance(job)
    poll(adapter, store)
    sim.advance(job)
    poll(adapter, store)

    # Then those polls still see it: it completes with its one event
    assert store.items[job]["status"] == "COMPLETE"
    assert store.events == [(job, "COMPLETE")]


def test_a_job_registered_through_the_api_after_a_long_queue_is_found(sim):
    # Given a job PUT through the jobs API now, whose encode was requested three hours ago
    store = Store()
    now_ms = int(time.time() * 1000)
    job = sim.add_job(5, "queued.mp4", work_start_ms=now_ms - 3 * HOUR_MS)
    sim.advance(job, 3)
    store.items[job] = {"job_id": job, "status": "SUBMITTED", "updated_at": datetime.now(UTC).isoformat()}

    poll(make_adapter(sim.url), store)

    assert store.items[job]["status"] == "COMPLETE"


def test_a_job_no_window_shows_ends_as_an_error_that_says_so(sim):
    # Given an active job the provider does not list any more (e.g. deleted), in a complete read
    store = Store()
    adapter = make_adapter(sim.url)
    job = sim.add_job(5, "gone.mp4")
    sim.add_job(5, "still-there.mp4")  # the read lists something: it could have listed the missing job
    sim.advance(job)
    poll(adapter, store)
    del sim.jobs[job]

    # When a poll misses it, it is marked, not failed at once
    poll(adapter, store)
    assert store.items[job]["status"] == "PROCESSING"
    assert "not_listed_since" in store.items[job]["details"]

    # And once it has been missing longer than the grace period, it ends in ERROR with a clear code
    store.items[job]["details"]["not_listed_since"] = "2020-01-01T00:00:00Z"
    poll(adapter, store)
    item = store.items[job]
    assert item["status"] == "ERROR"
    assert item["error"]["code"] == "NOT_LISTED"
    assert store.events == [(job, "ERROR")]


@pytest.mark.parametrize("list_earlier_runs", [True, False])
def test_a_failed_job_reencoded_successfully_between_two_polls_completes_as_a_new_attempt(sim, list_earlier_runs):
    # Given a job stored as failed; the listing may or may not keep the failed run's items (undocumented)
    sim.list_earlier_runs = list_earlier_runs
    store = Store()
    adapter = make_adapter(sim.url)
    clock = [int(time.time() * 1000) - 600_000]
    sim.job_clock = lambda: clock[0]
    job = sim.add_job(2, "rerun.mp4", fail=True)
    sim.advance(job, 3)
    poll(adapter, store)
    assert store.items[job]["status"] == "ERROR"

    # When it is encoded again and finishes before the next poll
    clock[0] += 60_000
    sim.reencode(job)
    clock[0] += 60_000
    sim.advance(job, 3)
    [snapshot], _, _ = poll(adapter, store)

    # Then that poll sees a new attempt that completed
    assert snapshot.requeued and snapshot.status is Status.COMPLETE
    assert store.items[job]["status"] == "COMPLETE"
    assert store.events == [(job, "ERROR"), (job, "COMPLETE")]


def test_paging_goes_on_when_the_gateway_serves_fewer_items_than_asked(sim):
    # Given a gateway that serves at most 10 items a page (undocumented), and 23 encodings
    sim.max_page_size = 10
    for n in range(23):
        sim.add_job(1, f"file-{n:02}.mp4")

    snapshots, failures, _ = poll(make_adapter(sim.url, page_size=100))

    # Then every item is read, page by page, until `total` is reached
    assert failures == []
    assert len(snapshots) == 23 and len(sim.requests) == 3


def test_the_pages_after_the_first_are_read_side_by_side_at_most_concurrency_at_a_time(sim):
    # Given 45 encodings, pages of 5 (the first page's total implies 8 more) and a gateway that takes 50 ms a page
    for n in range(45):
        sim.add_job(1, f"file-{n:02}.mp4")
    sim.page_delay = 0.05

    started = time.monotonic()
    snapshots, failures, stats = poll(make_adapter(sim.url, page_size=5, concurrency=3))
    elapsed = time.monotonic() - started

    # Then the eight pages go three at a time (first page, then three rounds), each page once, every job once
    assert failures == []
    assert sim.max_in_flight == 3
    assert sorted(int(r.query["pageNo"]) for r in sim.requests) == list(range(1, 10))
    assert stats["list_pages"] == 9 and len({s.job_id for s in snapshots}) == 45 == len(snapshots)
    assert elapsed < 9 * 0.05  # one after another, the nine pages would take 0.45 s at least


def test_pages_read_side_by_side_end_at_a_failed_page_and_known_jobs_still_update(sim):
    # Given 20 encodings in pages of 5, and page 3 failing while pages 2 and 4 are read beside it
    for n in range(20):
        sim.add_job(1, f"file-{n:02}.mp4")
    sim.page_answers["3"] = SimResponse(400, {"error": {"errorCode": "100", "message": "Bad Request Exception"}})

    snapshots, failures, stats = poll(make_adapter(sim.url, page_size=5, concurrency=4))

    # Then the read fails at page 3 as it did page by page: the new jobs wait for a complete read
    [failure] = failures
    assert failure.error.message == "page 3: HTTP 400 error 100: Bad Request Exception"
    assert snapshots == [] and stats["list_pages"] == 2 and stats["discoveries_deferred"] == 10


def test_paging_without_a_total_stops_on_a_short_page(sim):
    for n in range(12):
        sim.add_job(1, f"file-{n:02}.mp4")
    original = sim.handle

    def without_total(request):
        response = original(request)
        response.body.pop("total", None)
        return response

    sim.handle = without_total
    snapshots, failures, _ = poll(make_adapter(sim.url, page_size=10))

    assert failures == [] and len(snapshots) == 12 and len(sim.requests) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_with_a_body_that_is_not_json_is_a_refused_signature(sim, status):
    sim.add_job(7, "b.mp4")
    sim.page_answers["1"] = SimResponse(status, "<html>Forbidden</html>", {"Content-Type": "text/html"})

    with pytest.raises(AuthenticationRejected, match=f"HTTP {status}"):
        poll(make_adapter(sim.url))


# --- jobs never listed, empty reads ---------------------------------------------------------------------


def test_a_job_registered_weeks_after_it_started_is_searched_for_further_back_each_poll(sim):
    # Given a job PUT through the jobs API that started 20 days ago (the look-back is 2 days)
    store = Store()
    now_ms = int(time.time() * 1000)
    job = sim.add_job(5, "weeks-old.mp4", work_start_ms=now_ms - 20 * DAY_MS)
    sim.advance(job, 3)
    store.items[job] = {"job_id": job, "status": "SUBMITTED", "updated_at": datetime.now(UTC).isoformat()}
    adapter = make_adapter(sim.url)

    # When polls go on, each searching one slice further back (to 4 days, 8, 16, then 32)
    for _ in range(3):
        poll(adapter, store)
        assert store.items[job]["status"] == "SUBMITTED"
    poll(adapter, store)

    # Then it is found and completes, with the bound of the slice it was found in
    slices = [(start, end) for start, end in sim.windows if start < end < now_ms - DAY_MS]  # not the retries reversed
    assert [round((now_ms - start) / DAY_MS) for start, _ in slices] == [4, 8, 16, 32]
    assert store.items[job]["status"] == "COMPLETE" and store.events == [(job, "COMPLETE")]
    assert "searched_back_to" not in store.items[job]["details"]


def test_a_registered_job_no_read_lists_ends_not_listed_once_searched_a_year_back(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    sim.add_job(5, "other.mp4")  # the reads list something: they could have listed the missing job
    job = "5:never-there.mp4"
    store.items[job] = {"job_id": job, "status": "SUBMITTED", "updated_at": datetime.now(UTC).isoformat()}

    polls = 0
    while "not_listed_since" not in store.items[job].get("details", {}):
        poll(adapter, store)
        polls += 1
        assert polls < 12
    searched_to = datetime.fromisoformat(store.items[job]["details"]["searched_back_to"])
    assert (datetime.now(UTC) - searched_to).days == 366

    store.items[job]["details"]["not_listed_since"] = "2020-01-01T00:00:00Z"
    poll(adapter, store)
    assert (store.items[job]["status"], store.items[job]["error"]["code"]) == ("ERROR", "NOT_LISTED")


def test_an_active_job_is_not_ended_by_reads_that_list_nothing(sim):
    store = Store()
    adapter = make_adapter(sim.url)
    job = sim.add_job(5, "vanishes.mp4")
    poll(adapter, store)
    del sim.jobs[job]  # every read now comes back empty, both ways round

    store.items[job]["details"]["not_listed_since"] = "2020-01-01T00:00:00Z"  # even if marked long ago
    for _ in range(3):
        poll(adapter, store)

    assert store.items[job]["status"] == "QUEUED" and store.events == []


class FarReadsSlow(PagedFaults):
    """A gateway that takes seconds over reads reaching back more than three days."""

    def handle(self, request: SimRequest) -> SimResponse:
        times = [int(request.query[key]) for key in ("workStartTimeFrom", "workStartTimeTo") if key in request.query]
        if times and min(times) < time.time() * 1000 - 3 * DAY_MS:
            time.sleep(3)
        return super().handle(request)


def test_a_reach_back_that_does_not_fit_the_time_left_still_lets_new_jobs_be_found():
    with FarReadsSlow(access_key=ACCESS_KEY, secret_key=SECRET_KEY) as sim:
        # Given a job active for three weeks, and a new one
        now_ms = int(time.time() * 1000)
        old = sim.add_job(1, "three-weeks.mp4", work_start_ms=now_ms - 21 * DAY_MS)
        new = sim.add_job(1, "new.mp4")
        store = Store()
        store.items[old] = {
            "job_id": old,
            "status": "PROCESSING",
            "details": {"work_started_after": _iso(now_ms - 22 * DAY_MS)},
            "updated_at": datetime.now(UTC).isoformat(),
        }

        # When a poll has one second left, less than the reach-back takes
        snapshots, [failure], _ = poll(make_adapter(sim.url, deadline=Deadline(1.0)), store)

        # Then the new job is found, and the reach-back is a deferral naming the old job only
        assert [s.job_id for s in snapshots] == [new]
        assert isinstance(failure.error, ProviderUnavailable) and failure.job_ids == (old,)
        assert store.items[old]["status"] == "PROCESSING"
