"""The encoding.com adapter against the simulator on 127.0.0.1: lifecycles, batches, errors, notifications."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from local.simulators.base import SimResponse
from local.simulators.encoding_com import EncodingComSimulator
from tests.integration.simulators import simulator_fixtures
from tests.poll_contexts import poll_context
from transcode_core.config import Settings
from transcode_core.errors import ProviderError, ProviderUnavailable
from transcode_core.http import build_session
from transcode_core.model import Snapshot
from transcode_core.providers.base import PollFailure
from transcode_core.providers.encoding_com import EncodingComAdapter
from transcode_core.status import Status
from transcode_core.webhook import WebhookBody
from transcode_core.xmlsafe import parse_xml, to_plain

FORMATS = ["xml", "json"]


running_sim, sim = simulator_fixtures(EncodingComSimulator, user_id="u", user_key="k")


def make_adapter(sim, *, api_format="xml", user_key="k", **setting_changes) -> EncodingComAdapter:
    settings = Settings(
        table_name="t",
        topic_arn="arn",
        provider_api_url=sim.url,
        provider_secret_id=None,
        encoding_com_format=api_format,
        **setting_changes,
    )
    return EncodingComAdapter(
        api_url=sim.url,
        credentials={"user_id": "u", "user_key": user_key},
        session=build_session(retries=1, backoff=0),
        settings=settings,
    )


def poll(adapter, media_ids) -> tuple[dict[str, Snapshot], list[PollFailure], dict[str, int]]:
    context = poll_context(
        [{"job_id": media_id, "status": "SUBMITTED"} for media_id in media_ids],
        now=datetime.now(UTC),
        settings=adapter.settings,
    )
    snapshots, failures = {}, []
    for result in adapter.poll(context):
        if isinstance(result, PollFailure):
            failures.append(result)
        else:
            snapshots[result.job_id] = result
    return snapshots, failures, context.stats


def sent_query(request) -> dict:
    """The query a request carried, whichever API it used."""
    form = request.form()
    if "json" in form:
        return json.loads(form["json"])["query"]
    return to_plain(parse_xml(form["xml"]))


# --- lifecycles -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("api_format", FORMATS)
def test_a_media_is_followed_from_new_to_finished(sim, api_format):
    adapter = make_adapter(sim, api_format=api_format)
    media_id = sim.add_job(source="ftp://ingest:s3cret@ftp.example.com/in/a.mov", formats=2)

    seen = []
    for _ in range(10):
        snapshots, failures, _ = poll(adapter, [media_id])
        assert not failures
        snapshot = snapshots[media_id]
        seen.append((snapshot.status, snapshot.provider_status, snapshot.progress))
        sim.advance(media_id)

    assert [(status, word) for status, word, _ in seen] == [
        (Status.SUBMITTED, "New"),
        (Status.DOWNLOADING, "Downloading"),
        (Status.QUEUED, "Ready to process"),
        (Status.QUEUED, "Waiting for encoder"),
        (Status.PROCESSING, "Processing"),
        (Status.PROCESSING, "Processing"),
        (Status.PROCESSING, "Processing"),
        (Status.UPLOADING, "Saving"),
        (Status.COMPLETE, "Finished"),
        (Status.COMPLETE, "Finished"),
    ]
    progress = [value for _, _, value in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert snapshot.source_url == "ftp://ftp.example.com/in/a.mov"
    assert snapshot.started_at and snapshot.finished_at and snapshot.error is None
    assert [output.status for output in snapshot.outputs] == [Status.COMPLETE, Status.COMPLETE]
    assert all(d.status == "Saved" for output in snapshot.outputs for d in output.destinations)
    assert all(output.size_bytes for output in snapshot.outputs)


@pytest.mark.parametrize("api_format", FORMATS)
def test_a_media_failing_on_upload_ends_in_error_with_the_destination_error(sim, api_format):
    media_id = sim.add_job(fail=True)
    sim.advance(media_id, steps=20)

    snapshots, failures, _ = poll(make_adapter(sim, api_format=api_format), [media_id])

    snapshot = snapshots[media_id]
    assert not failures
    assert (snapshot.status, snapshot.provider_status) == (Status.ERROR, "Error")
    assert snapshot.error.message == "Access denied"
    (destination,) = snapshot.outputs[0].destinations
    assert (destination.status, destination.error) == ("Error", "Access denied")


@pytest.mark.parametrize("api_format", FORMATS)
@pytest.mark.parametrize("status_description", [False, True])
def test_a_media_failing_on_download_is_in_error_while_its_format_is_new(sim, api_format, status_description):
    # GetStatus as documented has no <description> (the notify has one); if the API sent one, it is the error.
    sim.status_description = status_description
    media_id = sim.add_job(fail="download")
    sim.advance(media_id, steps=2)

    snapshot = poll(make_adapter(sim, api_format=api_format), [media_id])[0][media_id]

    assert snapshot.status is Status.ERROR
    if status_description:
        assert "403 Forbidden" in snapshot.error.message
    else:
        assert snapshot.error.message == "encoding.com reported Error without a description"
    assert snapshot.finished_at is not None
    (output,) = snapshot.outputs
    assert (output.status, output.provider_status, output.destinations[0].status) == (Status.SUBMITTED, "New", "Open")


def test_a_word_nobody_documented_is_unknown_but_kept(sim):
    media_id = sim.add_job()
    sim.set_status(media_id, "Stopped")

    snapshot = poll(make_adapter(sim), [media_id])[0][media_id]

    assert (snapshot.status, snapshot.provider_status) == (Status.UNKNOWN, "Stopped")


def test_a_restarted_media_shows_a_later_start(sim):
    media_id = sim.add_job()
    sim.advance(media_id, steps=20)
    first = poll(make_adapter(sim), [media_id])[0][media_id]

    sim.restart(media_id)
    sim.advance(media_id)
    second = poll(make_adapter(sim), [media_id])[0][media_id]

    assert second.status is Status.DOWNLOADING
    assert second.started_at > first.started_at


def test_dates_are_read_in_the_configured_provider_timezone():
    with EncodingComSimulator(provider_timezone=ZoneInfo("America/New_York")) as sim:
        media_id = sim.add_job()
        adapter = make_adapter(sim, provider_timezone="America/New_York")

        snapshot = poll(adapter, [media_id])[0][media_id]

        created = sim.media[media_id].created
        assert snapshot.created_at == created.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- requests and batches -------------------------------------------------------------------------------
@pytest.mark.parametrize("api_format", FORMATS)
def test_sixty_media_are_read_in_three_getstatus_extended_calls(sim, api_format):
    media_ids = [sim.add_job() for _ in range(60)]

    snapshots, failures, stats = poll(make_adapter(sim, api_format=api_format), media_ids)

    assert sorted(snapshots) == sorted(media_ids) and not failures
    assert sim.count("POST", "/") == 3
    assert stats["status_calls"] == 3
    queries = [sent_query(request) for request in sim.requests]
    assert all(q["action"] == "GetStatus" and q["extended"] == "yes" for q in queries)
    assert all((q["userid"], q["userkey"]) == ("u", "k") for q in queries)
    # the batches are read concurrently: they arrive in any order, each id in exactly one
    assert sorted(len(q["mediaid"].split(",")) for q in queries) == [10, 25, 25]
    assert sorted(i for q in queries for i in q["mediaid"].split(",")) == sorted(media_ids)
    assert {next(iter(request.form())) for request in sim.requests} == {api_format}


def test_the_batch_size_setting_is_honoured(sim):
    media_ids = [sim.add_job() for _ in range(60)]

    snapshots, _, _ = poll(make_adapter(sim, batch_size=10), media_ids)

    assert len(snapshots) == 60
    assert sim.count("POST", "/") == 6


def slowed(sim, monkeypatch, seconds, fail_when=lambda media_ids: False):
    """The simulator answers each request after `seconds`, a 500 when `fail_when(its media ids)`; returns the
    most requests it ever had in flight at once (a one-item list, filled as the poll runs)."""
    dispatch, lock, in_flight, most = sim.dispatch, threading.Lock(), [0], [0]

    def slow(request):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(seconds)
            if fail_when(sent_query(request)["mediaid"].split(",")):
                return SimResponse(500, {"error": "injected fault"})
            return dispatch(request)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(sim, "dispatch", slow)
    return most


def test_batches_are_read_concurrently_up_to_the_concurrency_setting_and_yielded_in_order(sim, monkeypatch):
    # Given 40 media in 8 batches of 5, and a provider that takes a while to answer
    media_ids = [sim.add_job() for _ in range(40)]
    most = slowed(sim, monkeypatch, 0.15)
    adapter = make_adapter(sim, batch_size=5, concurrency=3)
    context = poll_context(
        [{"job_id": media_id} for media_id in media_ids], now=datetime.now(UTC), settings=adapter.settings
    )

    # When a poll reads them
    results = list(adapter.poll(context))

    # Then three requests are in flight at a time, each batch is read once, and the results come in order
    assert most[0] == 3
    assert sim.count() == 8 and context.stats["status_calls"] == 8
    assert [result.job_id for result in results] == media_ids
    assert all(isinstance(result, Snapshot) for result in results)


def test_a_failing_batch_among_concurrent_ones_fails_alone_and_the_counts_stay_exact(sim, monkeypatch):
    # Given 12 batches read 4 at a time; the batch holding one media id answers 500, and another batch holds an
    # id the API does not know and refuses the whole batch for (it is split until that id fails alone)
    sim.unknown_in_batch = "refuse"
    media_ids = [sim.add_job() for _ in range(60)]
    broken, unknown = media_ids[17], "999999"
    listed = [*media_ids[:40], unknown, *media_ids[40:]]
    slowed(sim, monkeypatch, 0.02, fail_when=lambda ids: broken in ids)

    snapshots, failures, stats = poll(make_adapter(sim, batch_size=5, concurrency=4), listed)

    outage = tuple(media_ids[15:20])
    assert sorted(snapshots) == sorted(set(media_ids) - set(outage))
    assert sorted(f.job_ids for f in failures) == sorted([outage, (unknown,)])
    assert isinstance(next(f for f in failures if f.job_ids == outage).error, ProviderUnavailable)
    # 13 batches; the outage's 2 tries (HTTP_RETRIES 1) are one call; the refused batch [999999, m40..m43] names
    # 999999, which fails alone, and [m40..m43] is read again: 1 more call
    assert stats["status_calls"] == 13 + 1
    assert sim.count() == stats["status_calls"] - 1  # the injected 500s never reach the simulator's log


def test_no_active_jobs_no_calls(sim):
    assert poll(make_adapter(sim), []) == ({}, [], {})
    assert sim.count() == 0


def test_an_id_that_is_not_a_media_id_fails_alone_without_a_call(sim):
    media_id = sim.add_job()

    snapshots, failures, _ = poll(make_adapter(sim), ["not-a-number", media_id])

    assert list(snapshots) == [media_id]
    assert [f.job_ids for f in failures] == [("not-a-number",)]
    assert "positive integer" in failures[0].error.message
    assert sent_query(sim.requests[0])["mediaid"] == media_id


# --- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api_format", FORMATS)
def test_wrong_credentials_fail_each_batch_with_the_providers_text(sim, api_format):
    media_ids = [sim.add_job() for _ in range(30)]

    snapshots, failures, _ = poll(make_adapter(sim, api_format=api_format, user_key="wrong"), media_ids)

    assert snapshots == {}
    assert [f.job_ids for f in failures] == [tuple(media_ids[:25]), tuple(media_ids[25:])]
    assert all("Wrong user id or key!" in str(f.error) for f in failures)
    assert not any(isinstance(f.error, ProviderUnavailable) for f in failures)


@pytest.mark.parametrize("unknown_in_batch", ["job_error", "omit"])
@pytest.mark.parametrize("api_format", FORMATS)
def test_an_unknown_media_fails_alone_and_the_rest_of_its_batch_is_read(sim, api_format, unknown_in_batch):
    sim.unknown_in_batch = unknown_in_batch
    known = [sim.add_job() for _ in range(3)]

    snapshots, failures, _ = poll(make_adapter(sim, api_format=api_format), [known[0], "999", *known[1:]])

    assert sorted(snapshots) == sorted(known)
    assert [f.job_ids for f in failures] == [("999",)]
    assert "999" in str(failures[0].error)
    assert sim.count() == 1


def test_a_provider_outage_fails_its_batch_and_the_next_batch_is_still_read(sim):
    media_ids = [sim.add_job() for _ in range(30)]
    sim.fail_next = [500, 500]  # the first call and its one retry

    snapshots, failures, _ = poll(make_adapter(sim, concurrency=1), media_ids)

    assert sorted(snapshots) == sorted(media_ids[25:])
    (failure,) = failures
    assert isinstance(failure.error, ProviderUnavailable)
    assert failure.job_ids == tuple(media_ids[:25]) == failure.error.job_ids
    assert sim.count() == 3


def test_an_unreachable_provider_is_unavailable():
    with EncodingComSimulator() as sim:
        media_id = sim.add_job()
        adapter = make_adapter(sim)
    # the simulator has stopped: nothing listens on its port any more

    _, failures, _ = poll(adapter, [media_id])

    assert len(failures) == 1 and isinstance(failures[0].error, ProviderUnavailable)


class GarbageSimulator(EncodingComSimulator):
    """Answers every call with a body that is neither XML nor JSON (a proxy's error page, say)."""

    def handle(self, request):
        return SimResponse(200, "<html><body>Bad gateway", {"Content-Type": "text/html"})


@pytest.mark.parametrize("api_format,message", [("xml", "not readable XML"), ("json", "not JSON")])
def test_an_unreadable_answer_fails_the_batch_clearly(api_format, message):
    with GarbageSimulator() as sim:
        snapshots, failures, _ = poll(make_adapter(sim, api_format=api_format), ["1", "2"])

    assert snapshots == {}
    (failure,) = failures
    assert failure.job_ids == ("1", "2")
    assert message in failure.error.message and not isinstance(failure.error, ProviderUnavailable)


# --- notifications --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["xml", "json", "raw-xml", "raw-json"])
def test_a_notification_is_a_hint_the_state_is_read_from_the_api(sim, kind):
    media_id = sim.add_job(source="ftp://ingest:s3cret@ftp.example.com/in/a.mov")
    sim.advance(media_id, steps=5)
    body, content_type = sim.notification(media_id, kind=kind)  # sent while Processing
    sim.advance(media_id, steps=20)  # finished by the time it arrives
    adapter = make_adapter(sim)

    assert adapter.webhook_job_ids(WebhookBody(body, content_type)) == [media_id]
    (snapshot,) = adapter.webhook_snapshots(WebhookBody(body, content_type), lambda ids: {})
    assert (snapshot.job_id, snapshot.status) == (media_id, Status.COMPLETE)
    assert sim.count() == 1


def test_a_notification_while_the_provider_is_down_raises_unavailable(sim):
    media_id = sim.add_job()
    body, content_type = sim.notification(media_id)
    sim.fail_next = [503, 503]

    with pytest.raises(ProviderUnavailable):
        make_adapter(sim).webhook_snapshots(WebhookBody(body, content_type), lambda ids: {})


def test_a_notification_for_a_media_the_api_does_not_know_is_a_provider_error(sim):
    body = "<result><mediaid>999</mediaid><status>Finished</status></result>"

    with pytest.raises(ProviderError, match="Media ID is not found") as caught:
        make_adapter(sim).webhook_snapshots(WebhookBody(body, "application/xml"), lambda ids: {})
    assert not isinstance(caught.value, ProviderUnavailable)


# --- the simulator speaks the documented API ------------------------------------------------------------
def test_simulator_basic_getstatus_answers_one_media_at_the_top_level(sim):
    media_id = sim.add_job(formats=1)
    xml = (
        f"<query><userid>u</userid><userkey>k</userkey><action>GetStatus</action><mediaid>{media_id}</mediaid></query>"
    )

    answer = to_plain(parse_xml(requests.post(sim.url, data={"xml": xml}, timeout=5).content))
    missing = to_plain(parse_xml(requests.post(sim.url, data={"xml": xml.replace(media_id, "999")}, timeout=5).content))

    assert (answer["id"], answer["status"], answer["finished"]) == (media_id, "New", "0000-00-00 00:00:00")
    assert answer["format"]["output"] == "mp4"
    assert missing == {"errors": {"error": "Media ID is not found"}}


def test_simulator_media_list_uses_the_json_quirk_for_one_media(sim):
    media_id = sim.add_job()
    query = '{"query": {"userid": "u", "userkey": "k", "action": "GetMediaList"}}'

    one = requests.post(sim.url, data={"json": query}, timeout=5).json()
    sim.add_job()
    two = requests.post(sim.url, data={"json": query}, timeout=5).json()

    assert one["response"]["media"]["mediaid"] == media_id
    assert one["response"]["media"]["mediastatus"] == "New"
    assert [media["mediaid"] for media in two["response"]["media"]][0] == media_id


def test_simulator_refuses_wrong_credentials_with_http_200(sim):
    xml = "<query><userid>u</userid><userkey>nope</userkey><action>GetMediaList</action></query>"

    response = requests.post(sim.url, data={"xml": xml}, timeout=5)

    assert response.status_code == 200
    assert to_plain(parse_xml(response.content)) == {"errors": {"error": "Wrong user id or key!"}}
