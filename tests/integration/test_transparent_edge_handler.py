"""TransparentEdge through its Lambda handler: scheduled polls and webhooks against the simulator, with the
table, topic and secret in moto."""

from __future__ import annotations

import json

import pytest
import requests

from local.simulators.transparent_edge import TransparentEdgeSimulator

PROVIDER = "transparent_edge"
CREDENTIALS = {"company_id": "4711", "client_id": "te-client", "client_secret": "te-secret"}


@pytest.fixture
def sim():
    with TransparentEdgeSimulator(**CREDENTIALS) as simulator:
        yield simulator


@pytest.fixture
def stack(stack, sim):
    stack.configure(PROVIDER, sim.url, CREDENTIALS)
    return stack


def test_polls_discover_orders_and_publish_one_event_each(stack, sim):
    done = sim.add_order()
    failed = sim.add_order(fail=True, comment="Source file not found")

    stack.poll(PROVIDER)  # discovered, QUEUED
    sim.tick()
    stack.poll(PROVIDER)
    assert {job["job_id"]: job["status"] for job in stack.jobs(PROVIDER)} == {done: "PROCESSING", failed: "PROCESSING"}
    sim.finish(done)
    sim.finish(failed)
    for _ in range(3):
        report = stack.poll(PROVIDER)

    assert report["provider_failures"] == []
    assert sorted(stack.event_ids()) == sorted([f"{PROVIDER}#{done}#1#COMPLETE", f"{PROVIDER}#{failed}#1#ERROR"])
    finished = stack.job(PROVIDER, done)
    assert (finished["provider_status"], finished["progress"]) == ("FINISHED", 100)
    assert finished["outputs"][0]["destinations"] == [{"url": "ftp://ftp.tuservidor.com/salida/"}]
    assert finished["source_url"] == "ftp://ftp.tuservidor.com/otro.mp4"
    assert stack.job(PROVIDER, failed)["error"] == {"message": "Source file not found"}
    assert "clave" not in json.dumps(stack.jobs(PROVIDER), default=str)  # upload/download passwords


def test_finished_orders_cost_no_detail_calls_and_one_token_serves_every_poll(stack, sim):
    orders = [sim.add_order() for _ in range(3)]
    for order in orders:
        sim.finish(order)
    stack.poll(PROVIDER)
    sim.reset_log()

    for _ in range(3):
        stack.poll(PROVIDER)

    assert (sim.list_calls(), sim.detail_calls(), sim.token_calls()) == (3, 0, 0)
    assert len(stack.events()) == 3


def test_requeued_order_is_a_new_attempt_with_one_more_event(stack, sim):
    order = sim.add_order(fail=True)
    sim.finish(order)
    stack.poll(PROVIDER)
    first = stack.job(PROVIDER, order)

    token = requests.post(
        sim.url + "v1/oauth2/access_token/",
        data={**CREDENTIALS, "grant_type": "client_credentials"},
        timeout=5,
    ).json()["access_token"]
    requeued = requests.get(
        f"{sim.url}v1/media/4711/transcode_requeue/{order}/", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert requeued.status_code == 200
    stack.poll(PROVIDER)
    again = stack.job(PROVIDER, order)
    sim.finish(order)
    stack.poll(PROVIDER)
    stack.poll(PROVIDER)

    assert (again["status"], again["attempt"]) == ("QUEUED", 2)
    assert again["started_at"] > first["started_at"]
    assert "error" not in again
    assert stack.event_ids() == [f"{PROVIDER}#{order}#1#ERROR", f"{PROVIDER}#{order}#2#COMPLETE"]


def test_webhook_is_a_hint_read_from_the_api(stack, sim):
    order = sim.add_order()
    sim.finish(order)

    status, answer = stack.webhook(PROVIDER, {"order_id": order, "status": "QUEUED"})

    assert (status, answer) == (200, {"accepted": 1})
    assert stack.job(PROVIDER, order)["status"] == "COMPLETE"  # what the API says, not the body
    assert sim.detail_calls(order) == 1
    assert stack.event_ids() == [f"{PROVIDER}#{order}#1#COMPLETE"]
    assert [item["source"] for item in stack.history(PROVIDER, order)] == ["webhook"]


@pytest.mark.parametrize("body", ["not json", "[]", "{}", '{"order_id": ""}', '{"status": "FINISHED"}'])
def test_webhook_without_an_order_is_400_and_nothing_is_written(stack, sim, body):
    sim.add_order()

    status, answer = stack.webhook(PROVIDER, body)

    assert status == 400 and answer["error"]
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_webhook_with_wrong_token_reads_and_writes_nothing(stack, sim):
    order = sim.add_order()
    status, _ = stack.webhook(PROVIDER, {"order_id": order}, token="nope")
    assert status == 401
    assert stack.jobs(PROVIDER) == [] and sim.count() == 0


def test_poll_during_an_outage_reports_it_and_writes_nothing(stack, sim):
    order = sim.add_order()
    stack.poll(PROVIDER)
    sim.finish(order)
    before = stack.job(PROVIDER, order)
    sim.fail_next = [503] * 10

    report = stack.poll(PROVIDER)

    assert report["provider_failures"]
    assert stack.job(PROVIDER, order) == before
    assert stack.events() == []
    sim.fail_next = []  # back again: the next poll catches up
    stack.poll(PROVIDER)
    assert stack.event_ids() == [f"{PROVIDER}#{order}#1#COMPLETE"]


def test_refused_client_credentials_are_reported_and_nothing_is_written(stack, sim):
    sim.add_order()
    stack.configure(PROVIDER, sim.url, {**CREDENTIALS, "client_secret": "wrong"})

    report = stack.poll(PROVIDER)

    assert any("refused the client credentials" in failure for failure in report["provider_failures"])
    assert sim.list_calls() == 0 and stack.jobs(PROVIDER) == []


def test_webhook_with_the_provider_down_is_503_and_nothing_is_written(stack, sim):
    order = sim.add_order()
    sim.fail_next = [503] * 10

    status, answer = stack.webhook(PROVIDER, {"order_id": order})

    assert status == 503 and "retry" in answer["error"]
    assert stack.jobs(PROVIDER) == []
