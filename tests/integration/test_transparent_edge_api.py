"""The TransparentEdge adapter against its simulator: OAuth token handling, discovery, the list/detail
economy, malformed answers, requeues. A small in-memory store applies snapshots with the core's rules."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from local.simulators.transparent_edge import TransparentEdgeSimulator
from tests.poll_contexts import poll_context
from transcode_core import oauth
from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderError, ProviderUnavailable
from transcode_core.http import build_session
from transcode_core.model import Kind, Snapshot, decide
from transcode_core.providers.base import PollContext, PollFailure
from transcode_core.providers.transparent_edge import TransparentEdgeAdapter, detail_concurrency
from transcode_core.status import TERMINAL, Status
from transcode_core.webhook import WebhookBody

COMPANY, CLIENT, SECRET = "4711", "te-client", "te-secret"
CREDENTIALS = {"company_id": COMPANY, "client_id": CLIENT, "client_secret": SECRET}
SETTINGS = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)


class MemoryStore:
    """What the pipeline does with a poll's results, in memory: decide(), keep the fields, count events."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}
        self.events: list[tuple[str, int, str]] = []  # (job_id, attempt, status)
        self.failures: list[PollFailure] = []
        self.lookups: list[list[str]] = []

    def register(self, job_id: str) -> None:
        self.items[job_id] = {"job_id": job_id}

    def context(self) -> PollContext:
        active = [item for item in self.items.values() if Status(item.get("status", "SUBMITTED")) not in TERMINAL]
        return poll_context(active, self.lookup, now=datetime.now(UTC), settings=SETTINGS)

    def lookup(self, job_ids):
        self.lookups.append(list(job_ids))
        return {job_id: self.items[job_id] for job_id in job_ids if job_id in self.items}

    def apply(self, results) -> list[Snapshot]:
        snapshots = []
        for result in results:
            if isinstance(result, PollFailure):
                self.failures.append(result)
                continue
            snapshots.append(result)
            stored = self.items.get(result.job_id)
            change = decide(stored, result)
            if change is None:
                continue
            attempt = (stored or {}).get("attempt", 1) + (change.kind is Kind.NEW_ATTEMPT)
            self.items[result.job_id] = {**change.fields, "job_id": result.job_id, "attempt": attempt}
            if change.publishes:
                self.events.append((result.job_id, attempt, change.fields["status"]))
        return snapshots

    def poll(self, adapter: TransparentEdgeAdapter) -> tuple[list[Snapshot], dict[str, int]]:
        context = self.context()
        return self.apply(adapter.poll(context)), context.stats

    def status(self, job_id: str) -> str | None:
        return self.items.get(job_id, {}).get("status")


@pytest.fixture
def sim():
    with TransparentEdgeSimulator(company_id=COMPANY, client_id=CLIENT, client_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
def store():
    return MemoryStore()


def make_adapter(sim, credentials=CREDENTIALS, api_url=None) -> TransparentEdgeAdapter:
    return TransparentEdgeAdapter(
        api_url=api_url or sim.url, credentials=credentials, session=build_session(retries=0), settings=SETTINGS
    )


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


# --- OAuth token ---------------------------------------------------------------------------------------


def test_one_token_serves_several_polls_and_adapters(sim, store):
    sim.add_order()
    for _ in range(3):  # a warm Lambda builds a new adapter per invocation
        store.poll(make_adapter(sim))

    assert sim.token_calls() == 1
    assert sim.list_calls() == 3


def test_a_token_the_api_rejects_is_renewed_exactly_once(sim, store):
    order = sim.add_order()
    adapter = make_adapter(sim)
    store.poll(adapter)
    sim.expire_tokens()
    sim.advance(order)

    snapshots, _ = store.poll(adapter)
    store.poll(adapter)

    assert sim.token_calls() == 2
    assert [s.provider_status for s in snapshots] == ["PROCESSING"]
    assert store.failures == []


def test_a_token_is_renewed_shortly_before_it_expires(sim, store, monkeypatch):
    sim.add_order()
    adapter = make_adapter(sim)
    now = [1000.0]
    monkeypatch.setattr(oauth, "_clock", lambda: now[0])
    store.poll(adapter)

    now[0] += sim.token_ttl - 120  # still well before expiry
    store.poll(adapter)
    assert sim.token_calls() == 1

    now[0] += 90  # within the last minute of the token's life
    store.poll(adapter)
    assert sim.token_calls() == 2
    assert sim.count("GET") == sim.list_calls() + sim.detail_calls()  # no request was refused and repeated


def test_wrong_client_secret_fails_the_poll_with_a_clear_error(sim, store):
    sim.add_order()
    adapter = make_adapter(sim, credentials={**CREDENTIALS, "client_secret": "wrong"})

    with pytest.raises(ProviderError, match="token endpoint refused the client credentials") as raised:
        store.poll(adapter)

    assert not isinstance(raised.value, ProviderUnavailable)
    assert "wrong" not in str(raised.value)
    assert sim.list_calls() == 0
    assert store.items == {}


def test_token_endpoint_down_is_provider_unavailable(sim, store):
    sim.fail_next = [503]
    with pytest.raises(ProviderUnavailable):
        store.poll(make_adapter(sim))


def test_token_answer_without_access_token_is_a_provider_error(sim, store):
    sim.answer_next("token", {"token_type": "Bearer"})
    with pytest.raises(ProviderError, match="without an access_token"):
        store.poll(make_adapter(sim))


def test_a_fresh_token_refused_too_is_reported_not_retried_forever(sim, store):
    order = sim.add_order()
    store.register(order)
    sim.answer_next("list", {"detail": "Invalid token."}, 401)
    sim.answer_next("list", {"detail": "Invalid token."}, 401)

    snapshots, _ = store.poll(make_adapter(sim))

    assert sim.token_calls() == 2
    assert "refused a fresh access token" in store.failures[0].error.message
    assert [s.job_id for s in snapshots] == [order]  # the tracked order is still read by its detail


# --- discovery and the list/detail economy -------------------------------------------------------------


def test_orders_are_discovered_from_the_list(sim, store):
    finished = sim.add_order()
    failed = sim.add_order(fail=True, comment="Source not found")
    sim.finish(finished)
    sim.finish(failed)

    _, stats = store.poll(make_adapter(sim))

    assert store.status(finished) == "COMPLETE"
    assert store.status(failed) == "ERROR"
    assert store.items[failed]["error"] == {"message": "Source not found"}
    assert stats["discovered"] == 2
    assert sorted(store.events) == sorted([(finished, 1, "COMPLETE"), (failed, 1, "ERROR")])


def test_old_orders_are_not_discovered(sim, store):
    old = sim.add_order(created_on=days_ago(SETTINGS.discovery_days + 1))
    tracked_old = sim.add_order(created_on=days_ago(30))
    store.register(tracked_old)
    recent = sim.add_order(created_on=days_ago(SETTINGS.discovery_days - 0.5))

    _, stats = store.poll(make_adapter(sim))

    assert old not in store.items
    assert sim.detail_calls(old) == 0
    assert store.status(recent) == "QUEUED"
    assert store.status(tracked_old) == "QUEUED"  # registered orders are read whatever their age
    assert stats["skipped_old"] == 1


def test_terminal_unchanged_orders_cost_no_detail_call(sim, store):
    done = [sim.add_order() for _ in range(3)]
    running = sim.add_order()
    for order in done:
        sim.finish(order)
    adapter = make_adapter(sim)
    store.poll(adapter)
    sim.reset_log()

    snapshots, stats = store.poll(adapter)

    assert sim.list_calls() == 1
    assert sim.detail_calls() == 1  # only the active order
    assert sim.detail_calls(running) == 1
    assert [s.job_id for s in snapshots] == [running]
    assert stats["detail_calls"] == 1
    assert stats["unchanged"] == 3


def test_an_active_order_is_read_until_it_finishes_then_no_more(sim, store):
    order = sim.add_order()
    adapter = make_adapter(sim)
    seen = []
    for _ in range(5):
        store.poll(adapter)
        seen.append((store.status(order), store.items[order].get("progress")))
        sim.advance(order)

    assert seen[:4] == [("QUEUED", 0), ("PROCESSING", 33.33), ("PROCESSING", 66.67), ("COMPLETE", 100)]
    assert sim.detail_calls(order) == 4  # the fifth poll found it terminal and unchanged
    assert store.events == [(order, 1, "COMPLETE")]


def test_a_changed_word_in_the_list_is_read_even_when_stored_terminal(sim, store):
    order = sim.add_order()
    sim.finish(order)
    adapter = make_adapter(sim)
    store.poll(adapter)
    sim.set_status(order, "UPLOADING")  # a finished order shows another word: read it
    sim.reset_log()

    store.poll(adapter)

    assert sim.detail_calls(order) == 1
    assert store.status(order) == "COMPLETE"  # rule 1: no going back without a new attempt


def test_an_active_order_missing_from_the_list_is_still_read(sim, store):
    listed = sim.add_order()
    hidden = sim.add_order()
    adapter = make_adapter(sim)
    store.poll(adapter)
    sim.finish(hidden)
    sim.answer_next("list", [{"id": listed, "created_on": "2021-09-08 09:15:55.875827+00:00", "status": "QUEUED"}])

    store.poll(adapter)

    assert store.status(hidden) == "COMPLETE"
    assert store.events == [(hidden, 1, "COMPLETE")]


def test_unknown_words_are_kept_raw(sim, store):
    order = sim.add_order()
    sim.set_status(order, "REPLICATING")

    store.poll(make_adapter(sim))

    assert store.items[order]["provider_status"] == "REPLICATING"
    assert store.events == []


def test_progress_reported_as_percentages(sim, store):
    order = sim.add_order(progress_scale=100.0)
    sim.advance(order, 2)

    snapshots, _ = store.poll(make_adapter(sim))

    assert snapshots[0].progress == 66.67


def test_api_url_without_trailing_slash(sim, store):
    order = sim.add_order()
    store.poll(make_adapter(sim, api_url=sim.url.rstrip("/")))
    assert store.status(order) == "QUEUED"


# --- requeue -------------------------------------------------------------------------------------------


def requeue_over_http(sim, order_id: str) -> None:
    token = requests.post(
        sim.url + "v1/oauth2/access_token/",
        data={"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials"},
        timeout=5,
    ).json()["access_token"]
    response = requests.post(
        f"{sim.url}v1/media/{COMPANY}/transcode_requeue/{order_id}/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200


def test_a_requeued_order_is_a_new_attempt_with_one_more_event(sim, store):
    order = sim.add_order(fail=True)
    sim.finish(order)
    adapter = make_adapter(sim)
    store.poll(adapter)
    first_start = store.items[order]["started_at"]

    requeue_over_http(sim, order)
    snapshots, _ = store.poll(adapter)

    assert snapshots[0].started_at > first_start
    assert (store.status(order), store.items[order]["attempt"]) == ("QUEUED", 2)
    assert "error" not in store.items[order]
    sim.finish(order)
    store.poll(adapter)
    store.poll(adapter)
    assert store.events == [(order, 1, "ERROR"), (order, 2, "COMPLETE")]


# --- failures ------------------------------------------------------------------------------------------


def test_wrong_company_is_reported_per_call(sim, store):
    order = sim.add_order()
    store.register(order)

    snapshots, _ = store.poll(make_adapter(sim, credentials={**CREDENTIALS, "company_id": "9999"}))

    assert snapshots == []
    assert [f.error.message for f in store.failures] == ["the order list: HTTP 403", f"order {order}: HTTP 403"]
    assert "9999" not in repr(store.failures)
    assert store.items == {order: {"job_id": order}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>Bad gateway</html>", "the order list: HTTP 200: the body is not JSON"),
        ({"results": []}, "the order list is a JSON dict, not a list"),
    ],
)
def test_malformed_list_is_a_poll_failure_and_tracked_orders_are_still_read(sim, store, body, message):
    order = sim.add_order()
    store.register(order)
    sim.answer_next("list", body)

    snapshots, _ = store.poll(make_adapter(sim))

    assert [f.error.message for f in store.failures] == [message]
    assert [s.job_id for s in snapshots] == [order]


def test_listed_entries_without_id_are_skipped_and_reported(sim, store):
    order = sim.add_order()
    sim.answer_next("list", [{"created_on": "2021-09-08 09:15:55+00:00", "status": "FINISHED"}, "junk", {"id": order}])

    store.poll(make_adapter(sim))

    assert "2 listed order(s) without an id" in store.failures[0].error.message
    assert list(store.items) == [order]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "HTTP 200: the body is not JSON"),
        (["a", "list"], "the detail is a JSON list, not an object"),
        ({"order_id": "x", "status": ["odd"]}, "the detail has no readable status"),
    ],
)
def test_malformed_detail_is_a_failure_of_that_order_only(sim, store, body, message):
    first, second = sim.add_order(), sim.add_order()
    sim.answer_next("detail", body)

    snapshots, _ = store.poll(make_adapter(sim))

    (failure,) = store.failures
    assert message in failure.error.message
    assert len(failure.job_ids) == 1
    assert failure.job_ids[0] not in store.items  # nothing written for it
    assert len(snapshots) == 1 and snapshots[0].job_id in (first, second)


def test_list_unreachable_raises_provider_unavailable(sim, store):
    sim.add_order()
    adapter = make_adapter(sim)
    adapter.client.token()
    sim.fail_next = [503]

    with pytest.raises(ProviderUnavailable):
        store.poll(adapter)
    assert store.items == {}


def test_provider_down_mid_poll_fails_the_remaining_orders_at_once(sim, store):
    orders = [sim.add_order() for _ in range(3)]
    adapter = adapter_with(sim, concurrency=1)  # one read at a time: the outage is met by the first
    adapter.client.token()
    sim.answer_next("detail", {"detail": "upstream"}, 502)  # the first detail call meets an outage

    store.poll(adapter)

    assert all(isinstance(failure.error, ProviderUnavailable) for failure in store.failures)
    assert sorted(job_id for failure in store.failures for job_id in failure.job_ids) == sorted(orders)
    assert sim.detail_calls() == 1
    assert store.items == {}


# --- webhook hints -------------------------------------------------------------------------------------


def test_webhook_hint_reads_the_order_from_the_api(sim):
    order = sim.add_order()
    sim.finish(order)
    body = WebhookBody(f'{{"order_id": "{order}", "status": "QUEUED"}}', "application/json")

    (snapshot,) = make_adapter(sim).webhook_snapshots(body, lambda ids: {})

    assert (snapshot.job_id, snapshot.status) == (order, Status.COMPLETE)  # the API's word, not the body's


def test_webhook_for_an_unknown_order_is_a_provider_error(sim):
    body = WebhookBody('{"order_id": "1-1"}', "application/json")
    with pytest.raises(ProviderError, match="order 1-1: HTTP 404"):
        make_adapter(sim).webhook_snapshots(body, lambda ids: {})


def test_webhook_with_provider_down_is_provider_unavailable(sim):
    order = sim.add_order()
    adapter = make_adapter(sim)
    adapter.client.token()
    sim.fail_next = [503]
    with pytest.raises(ProviderUnavailable):
        adapter.webhook_snapshots(WebhookBody(f'{{"id": "{order}"}}', "application/json"), lambda ids: {})


def test_order_ids_from_webhooks_stay_inside_the_order_path(sim):
    body = WebhookBody('{"order_id": "../../oauth2/access_token"}', "application/json")
    with pytest.raises(ProviderError, match="HTTP 404"):
        make_adapter(sim).webhook_snapshots(body, lambda ids: {})
    assert sim.token_calls() == 1


# --- details only when the list shows a move, re-runs, the progress scale -------------------------------


class TimedStore(MemoryStore):
    """A MemoryStore whose items carry `updated_at` (the time of their last change), as the table's do."""

    def apply(self, results) -> list[Snapshot]:
        before = {job_id: dict(item) for job_id, item in self.items.items()}
        snapshots = super().apply(results)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for job_id, item in self.items.items():
            if before.get(job_id) != item:
                item["updated_at"] = now
        return snapshots


def adapter_with(sim, **settings) -> TransparentEdgeAdapter:
    changed = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None, **settings)
    return TransparentEdgeAdapter(
        api_url=sim.url, credentials=CREDENTIALS, session=build_session(retries=0), settings=changed
    )


def test_an_active_order_the_list_shows_unmoved_costs_no_detail_call(sim):
    # Given three active orders, read once
    store = TimedStore()
    adapter = adapter_with(sim)
    orders = [sim.add_order() for _ in range(3)]
    store.poll(adapter)
    sim.reset_log()

    # When nothing moved, a poll is one list call; when one order moves, only its detail is read
    store.poll(adapter)
    assert (sim.list_calls(), sim.detail_calls()) == (1, 0)
    sim.advance(orders[0])
    store.poll(adapter)
    assert (sim.list_calls(), sim.detail_calls(), sim.detail_calls(orders[0])) == (2, 1, 1)
    assert store.status(orders[0]) == "PROCESSING"


def test_an_unmoved_active_order_is_read_again_on_the_progress_cadence(sim):
    store = TimedStore()
    order = sim.add_order()
    sim.advance(order)
    store.poll(adapter_with(sim))
    sim.set_progress(order, [0.5, 0.7])
    sim.reset_log()

    store.poll(adapter_with(sim, detail_refresh_minutes=10))
    assert sim.detail_calls() == 0
    store.items[order]["updated_at"] = (datetime.now(UTC) - timedelta(minutes=11)).isoformat()
    store.poll(adapter_with(sim, detail_refresh_minutes=10))
    assert sim.detail_calls() == 1 and store.items[order]["progress"] == 60
    store.poll(adapter_with(sim, detail_refresh_minutes=0))  # 0: every poll
    assert sim.detail_calls() == 2


def test_a_rerun_that_starts_and_ends_between_two_polls_is_seen_from_the_list_timestamp(sim):
    # Given a finished order, and a list that shows each order's processing `timestamp` (the document's prose)
    sim.list_timestamp = True
    store = TimedStore()
    adapter = adapter_with(sim)
    order = sim.add_order()
    sim.finish(order)
    store.poll(adapter)
    assert store.events == [(order, 1, "COMPLETE")]

    # When it is requeued and finishes before the next poll: the list word stays FINISHED
    sim.requeue(order)
    sim.finish(order)
    store.poll(adapter)

    # Then the new attempt is seen and announced
    assert store.events == [(order, 1, "COMPLETE"), (order, 2, "COMPLETE")]


def test_without_a_list_timestamp_a_rerun_between_two_polls_cannot_be_seen(sim):
    # The document's example list has no processing time: nothing in it moves (README, what it cannot show)
    store = TimedStore()
    adapter = adapter_with(sim)
    order = sim.add_order()
    sim.finish(order)
    store.poll(adapter)
    sim.requeue(order)
    sim.finish(order)
    sim.reset_log()

    store.poll(adapter)

    assert sim.detail_calls() == 0 and store.events == [(order, 1, "COMPLETE")]


def test_the_progress_scale_is_decided_once_per_order_and_a_wrong_guess_does_not_freeze_progress(sim):
    store = TimedStore()
    adapter = adapter_with(sim, detail_refresh_minutes=0)
    order = sim.add_order()
    sim.advance(order)
    for values, expected in (([1.0, 0.5], 75), ([20.0, 10.0], 15), ([40.0, 30.0], 35), ([0.5, 1.0], 35)):
        sim.set_progress(order, values)
        store.poll(adapter)
        assert store.items[order]["progress"] == expected, values


def slow_detail_reads(adapter, seconds: float) -> list[int]:
    """Makes each detail read take `seconds`; returns a list whose one element is the most read at once."""
    in_flight, most, lock = [0], [0], threading.Lock()
    read = adapter.client.order

    def slow_read(order_id):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(seconds)
        try:
            return read(order_id)
        finally:
            with lock:
                in_flight[0] -= 1

    adapter.client.order = slow_read
    return most


def test_details_are_read_concurrently_up_to_the_concurrency_setting(sim):
    # Given six new orders whose details each take a while to read
    orders = [sim.add_order() for _ in range(6)]
    adapter = adapter_with(sim, concurrency=3)
    most = slow_detail_reads(adapter, 0.2)

    # When a poll discovers them
    snapshots, _ = TimedStore().poll(adapter)

    # Then three are read at a time, and every order is read once
    assert most[0] == 3
    assert sorted(snapshot.job_id for snapshot in snapshots) == sorted(orders)


def test_more_details_than_concurrency_fits_the_time_left_are_read_more_at_a_time_up_to_the_cap(sim):
    # Given 40 new orders whose details each take 50 ms, CONCURRENCY 2 and a poll with 2.5 s left: planned at
    # 0.1 s each, two at a time they would take 2 s, more than the half of the time left that details may take
    orders = [sim.add_order() for _ in range(40)]
    adapter = adapter_with(sim, concurrency=2)
    adapter.deadline = Deadline(2.5)
    most = slow_detail_reads(adapter, 0.05)

    snapshots, _ = TimedStore().poll(adapter)

    # Then they are read four at a time (40 x 0.1 s planned / 1.25 s), each once
    assert most[0] == 4
    assert sorted(snapshot.job_id for snapshot in snapshots) == sorted(orders)


@pytest.mark.parametrize(
    ("reads", "seconds_left", "configured", "expected"),
    [
        (2_000, 115.0, 8, 8),  # a steady period: CONCURRENCY is enough
        (50_000, 115.0, 8, 32),  # 50,000 moved orders need 87 at 0.1 s: held to 4 x CONCURRENCY
        (50_000, 115.0, 2, 8),  # an operator who lowered CONCURRENCY for the provider's limits lowers the ceiling
        (50_000, 115.0, 48, 87),  # as many as needed below the ceiling
        (50_000, math.inf, 8, 8),  # no time limit (tests, the local runner): as configured
        (5, 0.5, 8, 8),  # no more reads than CONCURRENCY
    ],
)
def test_detail_reads_stay_within_four_times_concurrency_and_never_below_it(reads, seconds_left, configured, expected):
    assert detail_concurrency(reads, seconds_left, configured) == expected
