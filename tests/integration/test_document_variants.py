"""Each provider's whole flow (poll, webhook, re-run, failure) through its Lambda handler, against every variant
of what its documents state two ways or leave open (the simulators' VARIANTS), and the defects those variants
showed, each through the handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local.simulators import encoding_com, transparent_edge, xvid
from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.transparent_edge import TransparentEdgeSimulator
from local.simulators.xvid import XvidSimulator

pytestmark = (
    pytest.mark.slow
)  # every provider's whole flow in every variant: `make test` runs them, `make check-fast` does not

TE, ECOM, XVID = "transparent_edge", "encoding_com", "xvid"
TE_CREDENTIALS = {"company_id": "4711", "client_id": "te-client", "client_secret": "te-secret"}
ECOM_CREDENTIALS = {"user_id": "u", "user_key": "k"}
XVID_CREDENTIALS = {"client_id": "cid", "client_secret": "csecret"}


def set_item_attribute(stack, provider: str, job_id: str, name: str, value: str) -> None:
    stack.dynamodb.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": f"{provider}#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": {"S": value}},
    )


def minutes_ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


# --- TransparentEdge -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(transparent_edge.VARIANTS))
def test_transparent_edge_flow_in_every_variant(stack, variant):
    with TransparentEdgeSimulator(**TE_CREDENTIALS, variant=variant) as sim:
        stack.configure(TE, sim.url, TE_CREDENTIALS, env={"DETAIL_REFRESH_MINUTES": "0"})
        done = sim.add_order()
        failed = sim.add_order(fail=True, comment="Source file not found")

        # Poll: both discovered from the list, then read while they run
        assert stack.poll(TE)["provider_failures"] == []
        sim.tick()
        assert stack.poll(TE)["provider_failures"] == []
        running = {job["job_id"]: job for job in stack.jobs(TE)}
        assert {job_id: job["status"] for job_id, job in running.items()} == {done: "PROCESSING", failed: "PROCESSING"}
        assert running[done]["progress"] == pytest.approx(33.33, abs=0.1)  # 1 of 3 steps, whatever the scale
        assert running[failed]["progress"] == pytest.approx(50, abs=0.1)

        # Webhook: a hint, the state read from the API
        sim.finish(done)
        assert stack.webhook(TE, {"order_id": done}) == (200, {"accepted": 1})
        assert stack.job(TE, done)["status"] == "COMPLETE"

        # Failure
        sim.finish(failed)
        stack.poll(TE)
        error = stack.job(TE, failed)["error"]["message"]
        assert error == ("the order failed" if sim.sparse_detail else "Source file not found")

        # Re-run: a requeued order is a new attempt with its own event
        sim.requeue(failed)
        stack.poll(TE)
        assert (stack.job(TE, failed)["status"], stack.job(TE, failed)["attempt"]) == ("QUEUED", 2)
        sim.finish(failed)
        report = stack.poll(TE)
        stack.poll(TE)

        assert report["provider_failures"] == []
        assert sorted(stack.event_ids()) == sorted(
            [f"{TE}#{done}#1#COMPLETE", f"{TE}#{failed}#1#ERROR", f"{TE}#{failed}#2#COMPLETE"]
        )
        assert stack.job(TE, done)["progress"] == 100


def test_transparent_edge_list_keyed_order_id_is_read(stack):
    # Given a list keyed `order_id`, as the document's prose says
    with TransparentEdgeSimulator(**TE_CREDENTIALS, variant="prose") as sim:
        stack.configure(TE, sim.url, TE_CREDENTIALS)
        order = sim.add_order()
        sim.finish(order)

        # When polled, the order is discovered and nothing is reported malformed
        report = stack.poll(TE)

    assert report["provider_failures"] == []
    assert stack.event_ids() == [f"{TE}#{order}#1#COMPLETE"]


@pytest.mark.parametrize("variant", ["text-progress", "percent-text-progress"])
def test_transparent_edge_progress_sent_as_text_is_read(stack, variant):
    with TransparentEdgeSimulator(**TE_CREDENTIALS, variant=variant) as sim:
        stack.configure(TE, sim.url, TE_CREDENTIALS)
        order = sim.add_order()
        sim.advance(order)
        sim.set_progress(order, [40.0, 60.0])  # "40.0"/"60.0", or "40%"/"60%"

        stack.poll(TE)

    job = stack.job(TE, order)
    assert job["progress"] == 50
    assert [output["progress"] for output in job["outputs"]] == [40, 60]


def test_transparent_edge_detail_refresh_is_timed_from_the_last_read(stack):
    # Given an active order whose progress does not move, read once, its state written 11 minutes ago
    with TransparentEdgeSimulator(**TE_CREDENTIALS) as sim:
        stack.configure(TE, sim.url, TE_CREDENTIALS, env={"DETAIL_REFRESH_MINUTES": "10"})
        order = sim.add_order()
        sim.advance(order)
        stack.poll(TE)
        set_item_attribute(stack, TE, order, "updated_at", minutes_ago(11))
        before = stack.job(TE, order)
        sim.reset_log()

        # When polled twice in a row
        stack.poll(TE)
        stack.poll(TE)
        reads = sim.detail_calls(order)

    # Then the first poll reads its progress (due), the second does not (read just now), and the read
    # changed nothing a user sees: no version, no history item, no bookkeeping in the job
    assert reads == 1
    after = stack.job(TE, order)
    assert after == before
    assert "read_at" not in after
    assert "read_at" not in stack.jobs_api("GET", TE, order)[1]
    assert len(stack.history(TE, order)) == 1


def test_transparent_edge_read_time_not_recorded_costs_nothing_but_an_early_read(stack, monkeypatch):
    from transcode_core.errors import DependencyUnavailable
    from transcode_core.store import JobStore

    def table_down(self, item, read_at):
        raise DependencyUnavailable("jobs table update_item failed: ProvisionedThroughputExceededException")

    monkeypatch.setattr(JobStore, "note_read", table_down)
    with TransparentEdgeSimulator(**TE_CREDENTIALS) as sim:
        stack.configure(TE, sim.url, TE_CREDENTIALS, env={"DETAIL_REFRESH_MINUTES": "0"})
        order = sim.add_order()
        stack.poll(TE)

        report = stack.poll(TE)  # read again, unchanged: the read time cannot be written
        sim.finish(order)
        stack.poll(TE)

    assert report["job_failures"] == [] and report["provider_failures"] == []
    assert stack.event_ids() == [f"{TE}#{order}#1#COMPLETE"]


# --- encoding.com ----------------------------------------------------------------------------------------

ECOM_CASES = [
    (variant, "json" if settings.get("errors_as_list") or position % 2 else "xml")
    for position, (variant, settings) in enumerate(encoding_com.VARIANTS.items())
]


@pytest.mark.parametrize(("variant", "api_format"), ECOM_CASES)
def test_encoding_com_flow_in_every_variant(stack, variant, api_format):
    with EncodingComSimulator(**ECOM_CREDENTIALS, variant=variant) as sim:
        stack.configure(ECOM, sim.url, ECOM_CREDENTIALS, env={"ENCODING_COM_FORMAT": api_format})
        done = sim.add_job(formats=2)
        failed = sim.add_job(fail=True)
        unknown = "99999999"
        for media_id in (done, unknown, failed):
            stack.track(ECOM, media_id)

        # Poll: the known media advance; an id encoding.com does not know fails alone, however it says so
        for _ in range(5):
            sim.tick()
            report = stack.poll(ECOM)
        assert stack.job(ECOM, done)["status"] == "PROCESSING"
        assert stack.job(ECOM, done)["progress"] == pytest.approx(62.5, abs=0.6)  # 5 of 8 steps
        assert len(report["provider_failures"]) == 1 and unknown in report["provider_failures"][0]
        assert stack.job(ECOM, unknown)["status"] == "SUBMITTED"

        # Webhook (the notify), a hint read from the API; failure
        sim.advance(done, steps=20)
        body, content_type = sim.notification(done, kind=api_format)
        assert stack.webhook(ECOM, body, content_type=content_type) == (200, {"accepted": 1})
        sim.advance(failed, steps=20)
        stack.poll(ECOM)
        assert stack.job(ECOM, failed)["error"] == {"message": "Access denied"}

        # Re-run: RestartMedia, the job PUT again
        sim.restart(failed)
        stack.track(ECOM, failed)
        sim.advance(failed)
        stack.poll(ECOM)
        assert (stack.job(ECOM, failed)["status"], stack.job(ECOM, failed)["attempt"]) == ("DOWNLOADING", 2)
        sim.advance(failed, steps=20)
        stack.poll(ECOM)

    finished = stack.job(ECOM, done)
    assert (finished["status"], finished["progress"]) == ("COMPLETE", 100)
    assert finished["finished_at"].endswith("Z") and finished["created_at"].endswith("Z")
    assert [output["status"] for output in finished["outputs"]] == ["COMPLETE", "COMPLETE"]
    assert sorted(stack.event_ids()) == sorted(
        [f"{ECOM}#{done}#1#COMPLETE", f"{ECOM}#{failed}#1#ERROR", f"{ECOM}#{failed}#2#COMPLETE"]
    )


@pytest.mark.parametrize("api_format", ["xml", "json"])
def test_encoding_com_batch_refused_for_every_id_costs_one_request(stack, api_format):
    # Given 25 tracked media (one batch) and credentials encoding.com refuses
    with EncodingComSimulator(**ECOM_CREDENTIALS) as sim:
        media_ids = [sim.add_job() for _ in range(25)]
        stack.configure(
            ECOM, sim.url, {**ECOM_CREDENTIALS, "user_key": "wrong"}, env={"ENCODING_COM_FORMAT": api_format}
        )
        for media_id in media_ids:
            stack.track(ECOM, media_id)
        sim.reset_log()

        # When polled
        report = stack.poll(ECOM)
        requests = sim.count("POST", "/")

    # Then the batch fails with one request, reported once with the provider's text
    assert requests == 1
    assert len(report["provider_failures"]) == 1 and "Wrong user id or key!" in report["provider_failures"][0]


def test_encoding_com_batch_answered_with_an_http_error_costs_one_request(stack):
    with EncodingComSimulator(**ECOM_CREDENTIALS) as sim:
        media_ids = [sim.add_job() for _ in range(25)]
        stack.configure(ECOM, sim.url, ECOM_CREDENTIALS)
        for media_id in media_ids:
            stack.track(ECOM, media_id)
        sim.reset_log()
        sim.fail_next = [403] * 100

        report = stack.poll(ECOM)
        requests = sim.count("POST", "/")

    assert requests == 1
    assert len(report["provider_failures"]) == 1 and "HTTP 403" in report["provider_failures"][0]
    assert {job["status"] for job in stack.jobs(ECOM)} == {"SUBMITTED"}


# --- Xvid ------------------------------------------------------------------------------------------------


def xvid_rounds(stack, sim, rounds: int, minutes: float = 6) -> dict:
    report: dict = {}
    for _ in range(rounds):
        report = stack.poll(XVID)
        sim.tick()
        sim.advance_clock(minutes=minutes)
    return report


@pytest.mark.parametrize("variant", list(xvid.VARIANTS))
def test_xvid_flow_in_every_variant(stack, variant):
    with XvidSimulator(**XVID_CREDENTIALS, variant=variant) as sim:
        stack.configure(XVID, sim.url, XVID_CREDENTIALS)
        done = sim.add_job(outputs=("hd", "sd"))
        failed = sim.add_job(fail=True, error_msg="Unsupported codec", error_code="E_CODEC")

        # Poll: discovered from the listing, read while running
        stack.poll(XVID)
        sim.tick()
        sim.tick()
        assert stack.poll(XVID)["provider_failures"] == []
        assert stack.job(XVID, done)["status"] == "PROCESSING"
        assert stack.job(XVID, done)["progress"] == 40

        # Webhook: a hint, the state read from the API
        sim.finish(done)
        assert stack.webhook(XVID, {"job_id": done}) == (200, {"accepted": 1})
        assert stack.job(XVID, done)["status"] == "COMPLETE"

        # Failure, then polls long past the listing's 15 minutes
        report = xvid_rounds(stack, sim, 6)
        assert report["provider_failures"] == []
        assert stack.job(XVID, failed)["error"] == {"message": "Unsupported codec", "code": "E_CODEC"}

        # Re-run that succeeds: a new attempt with its own event, seen from the listing
        sim.restart(failed, fail=False)
        report = xvid_rounds(stack, sim, 8)

    assert report["provider_failures"] == []
    rerun = stack.job(XVID, failed)
    assert (rerun["status"], rerun["attempt"], rerun["progress"]) == ("COMPLETE", 2, 100)
    assert "error" not in rerun
    assert stack.job(XVID, done)["created_at"] == "2026-01-01T00:00:00Z"
    assert sorted(stack.event_ids()) == sorted(
        [f"{XVID}#{done}#1#COMPLETE", f"{XVID}#{failed}#1#ERROR", f"{XVID}#{failed}#2#COMPLETE"]
    )


def test_xvid_failed_job_without_finished_at_rerun_successfully_is_a_new_attempt(stack):
    # Given a job that failed and showed no finished_at
    with XvidSimulator(**XVID_CREDENTIALS, variant="failed-without-finished-at") as sim:
        stack.configure(XVID, sim.url, XVID_CREDENTIALS)
        job = sim.add_job(fail=True)
        sim.finish(job)
        stack.poll(XVID)
        assert stack.job(XVID, job)["status"] == "ERROR"

        # When it is re-run and succeeds before the next poll
        sim.restart(job, fail=False)
        sim.finish(job)
        stack.poll(XVID)

    # Then the new run is seen: COMPLETE as attempt 2, with its own event
    assert (stack.job(XVID, job)["status"], stack.job(XVID, job)["attempt"]) == ("COMPLETE", 2)
    assert stack.event_ids() == [f"{XVID}#{job}#1#ERROR", f"{XVID}#{job}#2#COMPLETE"]
