"""VOD Station adapter, pure parts: the signature, the outputs-to-job rule, the poll window and callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.poll_contexts import poll_context
from transcode_core.config import Settings
from transcode_core.errors import BadRequest, ConfigurationError
from transcode_core.model import Output, decide, snapshot_fields
from transcode_core.observability import logger
from transcode_core.providers import get_spec
from transcode_core.providers.base import PollFailure
from transcode_core.providers.vod_station import (
    SPEC,
    VodStationAdapter,
    _listed_item,
    derive_status,
    sign,
    summarize_words,
)
from transcode_core.status import Status
from transcode_core.webhook import WebhookBody

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CATEGORY = 10019
FILE = "SampleVideo_1280x720_5mb.mp4"
JOB_ID = f"{CATEGORY}:{FILE}"


def settings(**overrides) -> Settings:
    return Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None, **overrides)


@pytest.fixture
def adapter() -> VodStationAdapter:
    return VodStationAdapter(
        api_url=SPEC.default_api_url,
        credentials={"access_key": "AK", "secret_key": "SK"},
        session=requests.Session(),  # never used: nothing here reaches the network
        settings=settings(),
    )


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def callback(status: str, output_type: str = "sd", file_path: str = FILE, **extra) -> WebhookBody:
    payload = {
        "categoryId": CATEGORY,
        "categoryName": "test2",
        "fileId": 77,
        "filePath": file_path,
        "encodingOptionId": {"sd": 1, "hd": 2}.get(output_type, 9),
        "outputType": output_type,
        "status": status,
        **extra,
    }
    return WebhookBody(json.dumps(payload), "application/json")


def lookup_of(*items):
    table = {item["job_id"]: item for item in items}
    return lambda job_ids: {job_id: table[job_id] for job_id in job_ids if job_id in table}


def stored_job(status: str, outputs: list[tuple[str, str, str]], listed: bool = True, **fields) -> dict:
    """A stored item as the pipeline would have written it: outputs are (id, canonical status, word)."""
    item = {
        "job_id": JOB_ID,
        "status": status,
        "provider_status": ",".join(sorted({word for _, _, word in outputs})),
        "outputs": [
            {
                "id": oid,
                "status": canonical,
                "provider_status": word,
                "progress": 100 if word == "COMPLETE" else 40,
                "destinations": [],
            }
            for oid, canonical, word in outputs
        ],
        "source_url": FILE,
        "progress": sum(100 if word == "COMPLETE" else 40 for _, _, word in outputs) / len(outputs),
        "details": {
            "category_id": str(CATEGORY),
            "category_name": "test2",
            **({"output_types": sorted(o[0] for o in outputs)} if listed else {}),
        },
        "created_at": "2026-03-01T10:00:00Z",
        "updated_at": "2026-03-01T11:00:00Z",
        **fields,
    }
    return item


# --- the signature ------------------------------------------------------------------------------------


def test_signature_matches_the_documented_message_format():
    # Given the message PROVIDERS.md shows, signed with a fixed secret
    message = "GET /api/v2/status?pageNo=1&pageSizeNo=20\n1755590820000\nACCESSKEY"
    expected = base64.b64encode(hmac.new(b"SECRETKEY", message.encode(), hashlib.sha256).digest()).decode()

    signature = sign("GET", "/api/v2/status?pageNo=1&pageSizeNo=20", "1755590820000", "ACCESSKEY", "SECRETKEY")

    assert signature == expected
    assert signature == "V7TfeI1kKBT4XGbtwTRj3RhiQ37+yzUUsqh5lcVyFVM="


def test_signature_depends_on_the_query_sent():
    base = sign("GET", "/api/v2/status?pageNo=1&pageSizeNo=20", "1", "AK", "SK")
    assert sign("GET", "/api/v2/status?pageSizeNo=20&pageNo=1", "1", "AK", "SK") != base
    assert sign("GET", "/api/v2/status?pageNo=2&pageSizeNo=20", "1", "AK", "SK") != base


def test_signed_headers_cover_the_path_prefix_and_query_of_the_url(adapter):
    # Given a configured URL with a path prefix (a proxy in front of the gateway)
    adapter.api_url = "https://proxy.example/vod"
    adapter.clock = lambda: 1755590820.0

    headers = adapter._signed_headers("GET", "https://proxy.example/vod/api/v2/status?pageNo=1&pageSizeNo=20")

    assert headers == {
        "x-ncp-apigw-timestamp": "1755590820000",
        "x-ncp-iam-access-key": "AK",
        "x-ncp-apigw-signature-v2": sign(
            "GET", "/vod/api/v2/status?pageNo=1&pageSizeNo=20", "1755590820000", "AK", "SK"
        ),
    }


def test_spec_is_registered_with_the_contract_values():
    spec = get_spec("vod_station")
    assert spec is SPEC
    assert spec.default_api_url == "https://vodstation.apigw.ntruss.com/"
    assert spec.secret_keys == ("access_key", "secret_key")
    assert {word: status.value for word, status in spec.status_words.items()} == {
        "waiting": "QUEUED",
        "running": "PROCESSING",
        "complete": "COMPLETE",
        "failure": "ERROR",
        "canceled": "CANCELED",
    }


def test_missing_credentials_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match="secret_key"):
        VodStationAdapter(
            api_url=SPEC.default_api_url,
            credentials={"access_key": "AK"},
            session=requests.Session(),
            settings=settings(),
        )


# --- the job's status from its outputs ----------------------------------------------------------------

W, R, C, F, X, U = (
    Status.QUEUED,
    Status.PROCESSING,
    Status.COMPLETE,
    Status.ERROR,
    Status.CANCELED,
    Status.UNKNOWN,
)


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ([W], Status.QUEUED),
        ([W, W], Status.QUEUED),
        ([R, W], Status.PROCESSING),
        ([C, W], Status.PROCESSING),  # some delivered, others waiting: work is under way
        ([C, R], Status.PROCESSING),
        ([C, C], Status.COMPLETE),
        ([F, C], Status.ERROR),
        ([F, R], Status.PROCESSING),  # failed once the others are done, so it fails once, with its final outputs
        ([F, W], Status.PROCESSING),
        ([F, X], Status.ERROR),
        ([U, F, R], Status.PROCESSING),
        ([X, X], Status.CANCELED),
        ([C, X], Status.COMPLETE),  # what was not canceled was delivered
        ([W, X], Status.QUEUED),
        ([R, X], Status.PROCESSING),
        ([U, F], Status.ERROR),  # known rules decide despite an unknown word
        ([U, R], Status.PROCESSING),
        ([U, C, W], Status.PROCESSING),
        ([U, C], Status.UNKNOWN),  # "all complete" cannot be known
        ([U, W], Status.UNKNOWN),
        ([U], Status.UNKNOWN),
        ([], Status.UNKNOWN),
    ],
)
def test_job_status_from_outputs(outputs, expected):
    assert derive_status([Output(id=str(n), status=s) for n, s in enumerate(outputs)]) is expected


def test_provider_status_is_the_outputs_words_deduplicated_and_sorted():
    outputs = [Output("a", provider_status="RUNNING"), Output("b", provider_status="COMPLETE")]
    assert summarize_words(outputs) == "COMPLETE,RUNNING"
    assert summarize_words([Output("a", provider_status="COMPLETE")] * 2) == "COMPLETE"


# --- the poll window ----------------------------------------------------------------------------------


def windows_read(adapter: VodStationAdapter, active_jobs: list[dict]) -> list[tuple[datetime, datetime]]:
    """The (start, end) of each window one poll reads, every read listing one other job."""
    sent: list[tuple[int, int]] = []
    other = {"categoryId": 9, "filePath": "other.mp4", "outputType": "sd", "status": "RUNNING"}

    def list_page(page_no: int, window: tuple[int, int]) -> dict:
        sent.append(window)
        return {"content": [other], "total": 1}

    adapter.list_page = list_page
    context = poll_context(active_jobs, now=NOW, settings=adapter.settings)
    list(adapter.poll(context))
    return [(datetime.fromtimestamp(a / 1000, UTC), datetime.fromtimestamp(b / 1000, UTC)) for a, b in sent]


def active(job_id: str, bound: datetime | None) -> dict:
    details = {"work_started_after": bound.isoformat()} if bound else {}
    return {"job_id": job_id, "status": "PROCESSING" if bound else "SUBMITTED", "details": details}


END = NOW + timedelta(minutes=5)


def test_without_active_jobs_one_window_reads_the_discovery_look_back(adapter):
    assert windows_read(adapter, []) == [(NOW - timedelta(days=2), END)]


def test_jobs_found_within_two_look_backs_widen_the_recent_window(adapter):
    # Found by earlier polls' windows, which started a little earlier: no second read for them
    jobs = [active("1:a", NOW - timedelta(days=2, minutes=5)), active("1:b", NOW - timedelta(days=3))]
    assert windows_read(adapter, jobs) == [(NOW - timedelta(days=3), END)]


def test_a_job_found_long_ago_is_read_in_a_reach_back_after_the_recent_window(adapter):
    jobs = [active("1:old", NOW - timedelta(days=20)), active("1:new", NOW - timedelta(days=2, minutes=5))]
    assert windows_read(adapter, jobs) == [
        (NOW - timedelta(days=2, minutes=5), END),
        (NOW - timedelta(days=20), NOW - timedelta(days=2, minutes=5)),
    ]


def test_a_job_never_listed_is_searched_for_in_an_older_slice(adapter):
    jobs = [active("1:registered", None)]
    assert windows_read(adapter, jobs) == [
        (NOW - timedelta(days=2), END),
        (NOW - timedelta(days=4), NOW - timedelta(days=2)),
    ]


def test_the_recent_window_follows_the_discovery_setting():
    narrow = VodStationAdapter(
        api_url=SPEC.default_api_url,
        credentials={"access_key": "AK", "secret_key": "SK"},
        session=requests.Session(),
        settings=settings(discovery_days=0.5),
    )
    assert windows_read(narrow, []) == [(NOW - timedelta(hours=12), END)]


# --- callbacks ----------------------------------------------------------------------------------------


def test_running_callback_for_a_new_job_makes_it_processing(adapter):
    [snapshot] = adapter.webhook_snapshots(callback("RUNNING"), lookup_of())
    assert snapshot.job_id == JOB_ID
    assert snapshot.status is Status.PROCESSING
    assert snapshot.provider_status == "RUNNING"
    assert snapshot.source_url == FILE
    assert snapshot.details["category_name"] == "test2"
    [output] = snapshot.outputs
    assert (output.id, output.status, output.details["encoding_option_id"]) == ("sd", Status.PROCESSING, "1")


def test_callback_is_merged_into_the_stored_outputs(adapter):
    # Given a listed job with two outputs running
    stored = stored_job("PROCESSING", [("sd", "PROCESSING", "RUNNING"), ("hd", "PROCESSING", "RUNNING")])

    # When the sd output completes, then hd
    [first] = adapter.webhook_snapshots(
        callback("COMPLETE", "sd", link="https://x.example/a.mp4?signature=s"), lookup_of(stored)
    )
    stored_after = {**stored, **snapshot_fields(first), "job_id": JOB_ID}
    [second] = adapter.webhook_snapshots(callback("COMPLETE", "hd"), lookup_of(stored_after))

    # Then the job waits for hd, and completes with both
    assert first.status is Status.PROCESSING
    assert first.provider_status == "COMPLETE,RUNNING"
    assert first.progress == 70  # mean of 100 and the stored 40
    assert [d.url for d in first.outputs[0].destinations] == ["https://x.example/a.mp4"]
    assert second.status is Status.COMPLETE
    assert second.provider_status == "COMPLETE"
    assert {o.id: o.status for o in second.outputs} == {"sd": Status.COMPLETE, "hd": Status.COMPLETE}
    assert [d.url for d in second.outputs[0].destinations] == ["https://x.example/a.mp4"]


def test_complete_callback_does_not_complete_a_job_never_listed(adapter):
    # Other outputs may be WAITING, and WAITING callbacks name no file: only a listing knows them all.
    stored = stored_job("PROCESSING", [("sd", "PROCESSING", "RUNNING")], listed=False)
    [snapshot] = adapter.webhook_snapshots(callback("COMPLETE", "sd"), lookup_of(stored))
    assert snapshot.status is Status.PROCESSING
    assert snapshot.outputs[0].status is Status.COMPLETE
    [fresh] = adapter.webhook_snapshots(callback("COMPLETE", "sd"), lookup_of())
    assert fresh.status is Status.PROCESSING


def test_failure_callback_fails_the_job_with_the_output_named_once_the_others_are_done(adapter):
    stored = stored_job("PROCESSING", [("sd", "PROCESSING", "RUNNING"), ("hd", "PROCESSING", "RUNNING")])
    [failed] = adapter.webhook_snapshots(callback("FAILURE", "hd"), lookup_of(stored))
    assert (failed.status, failed.provider_status, failed.error) == (Status.PROCESSING, "FAILURE,RUNNING", None)

    stored_after = {**stored, **snapshot_fields(failed), "job_id": JOB_ID}
    [snapshot] = adapter.webhook_snapshots(callback("COMPLETE", "sd"), lookup_of(stored_after))
    assert snapshot.status is Status.ERROR
    assert snapshot.error.code == "FAILURE"
    assert "hd" in snapshot.error.message


def test_late_running_callback_does_not_move_a_finished_output_back(adapter):
    # Given a job whose sd output completed (hd still running)
    stored = stored_job("PROCESSING", [("sd", "COMPLETE", "COMPLETE"), ("hd", "PROCESSING", "RUNNING")])

    # When sd's RUNNING callback arrives late
    [snapshot] = adapter.webhook_snapshots(callback("RUNNING", "sd"), lookup_of(stored))

    # Then sd stays complete and nothing a user sees changes
    assert {o.id: o.provider_status for o in snapshot.outputs} == {"sd": "COMPLETE", "hd": "RUNNING"}
    assert decide(stored, snapshot) is None


def test_late_running_callback_after_the_job_completed_changes_nothing(adapter):
    stored = stored_job(
        "COMPLETE",
        [("sd", "COMPLETE", "COMPLETE"), ("hd", "COMPLETE", "COMPLETE")],
        finished_at="2026-03-01T11:00:00Z",
    )
    [snapshot] = adapter.webhook_snapshots(callback("RUNNING", "hd"), lookup_of(stored))
    assert snapshot.status is Status.COMPLETE
    assert decide(stored, snapshot) is None


def test_waiting_callback_without_a_file_path_is_acknowledged_and_logged(adapter, caplog):
    body = callback("WAITING", file_path="")
    level = logger.log_level
    logger.setLevel("INFO")  # tests run at WARNING
    try:
        assert adapter.webhook_snapshots(body, lookup_of()) == []
        assert adapter.webhook_job_ids(body) == []
    finally:
        logger.setLevel(level)
    records = [record for record in caplog.records if "WAITING callback" in record.getMessage()]
    assert records
    assert all((record.category_id, record.file_id) == ("10019", "77") for record in records)


def test_webhook_job_ids_names_the_job(adapter):
    assert adapter.webhook_job_ids(callback("RUNNING")) == [JOB_ID]


def test_unknown_callback_word_on_a_new_job_is_unknown(adapter):
    [snapshot] = adapter.webhook_snapshots(callback("PAUSED"), lookup_of())
    assert snapshot.status is Status.UNKNOWN
    assert snapshot.provider_status == "PAUSED"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("null", "not a JSON object"),
        ('{"status": "RUNNING", "filePath": "a.mp4", "outputType": "sd"}', "categoryId"),
        ('{"categoryId": 1, "filePath": "a.mp4", "outputType": "sd"}', "status"),
        ('{"categoryId": 1, "status": "", "filePath": "a.mp4", "outputType": "sd"}', "status"),
        ('{"categoryId": {"$gt": 1}, "status": "RUNNING", "filePath": "a.mp4", "outputType": "sd"}', "categoryId"),
        ('{"categoryId": true, "status": "RUNNING", "filePath": "a.mp4", "outputType": "sd"}', "categoryId"),
        ('{"categoryId": "1:2", "status": "RUNNING", "filePath": "a.mp4", "outputType": "sd"}', "categoryId"),
        ('{"categoryId": 1, "status": ["RUNNING"], "filePath": "a.mp4", "outputType": "sd"}', "status"),
        ('{"categoryId": 1, "status": "RUNNING", "filePath": ["a.mp4"], "outputType": "sd"}', "filePath"),
        ('{"categoryId": 1, "status": "RUNNING", "filePath": "", "outputType": "sd"}', "names no job"),
        ('{"categoryId": 1, "status": "RUNNING", "filePath": "a.mp4"}', "names no output"),
        ('{"categoryId": 1, "status": "RUNNING", "filePath": "' + "x" * 5000 + '", "outputType": "sd"}', "too long"),
    ],
)
def test_malformed_and_hostile_callbacks_are_bad_requests(adapter, text, reason):
    looked_up = []
    with pytest.raises(BadRequest, match=reason):
        adapter.webhook_snapshots(WebhookBody(text, "application/json"), lambda ids: looked_up.append(ids) or {})
    assert looked_up == []  # refused before the store is read


def test_read_jobs_explains_that_one_job_cannot_be_read(adapter):
    [failure] = list(adapter.read_jobs([JOB_ID]))
    assert isinstance(failure, PollFailure)
    assert failure.job_ids == (JOB_ID,)
    assert "cannot read one job" in failure.error.message


# --- lastWorkTime, typed Object ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2021-09-14T15:49:12+0900",
        "2021-09-14T15:49:12",  # no offset: the service's Korean time
        1631602152000,
        "1631602152000",
        {"epochMilli": 1631602152000},
        {"time": 1631602152000},
        {"epochSecond": 1631602152, "nano": 0},
        {"year": 2021, "monthValue": 9, "month": "SEPTEMBER", "dayOfMonth": 14, "hour": 15, "minute": 49, "second": 12},
        [2021, 9, 14, 15, 49, 12],
    ],
)
def test_last_work_time_is_read_as_text_number_or_object(value):
    item = _listed_item({"categoryId": 1, "filePath": "a.mp4", "outputType": "sd", "lastWorkTime": value})
    assert item.last_work == datetime(2021, 9, 14, 6, 49, 12, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, True, "yesterday", {"year": 2021}, [2021, 13, 40], {}])
def test_an_unreadable_last_work_time_is_no_time(value):
    item = _listed_item({"categoryId": 1, "filePath": "a.mp4", "outputType": "sd", "lastWorkTime": value})
    assert item.last_work is None
