"""TransparentEdge normalizer and webhook parsing, on the documented shapes (no network)."""

from __future__ import annotations

import copy

import pytest
import requests

from transcode_core.config import Settings
from transcode_core.errors import BadRequest, ConfigurationError, ProviderError
from transcode_core.model import snapshot_fields
from transcode_core.providers import get_spec
from transcode_core.providers.transparent_edge import SPEC, STATUS_WORDS, TransparentEdgeAdapter, normalize_order
from transcode_core.status import Status
from transcode_core.webhook import WebhookBody

# The seed's detail example, with credentials added to the URLs the way real configurations carry them.
SEED_DETAIL = {
    "order_id": "163104952-137",
    "transcodingupload_set": [
        {
            "upload_url": "ftp://usuario:clave@ftp.tuservidor.com/salida/?password=clave",
            "upload_protocol": "FTP",
            "upload_user": "usuario",
            "upload_password": "clave",
        }
    ],
    "transcodingdownload": {
        "download_url": "ftp://usuario:clave@ftp.tuservidor.com/otro.mp4",
        "download_protocol": "FTP",
        "download_user": "usuario",
    },
    "transcodingnotification_set": [{"callback_url": None, "email": "correo@tuservidor.com"}],
    "transcodingjob_set": [
        {
            "profile": {"id": 92, "name": "Prueba escalado"},
            "filename": "nombre.mp4",
            "label": "prioridad alta",
            "progress": 0.0,
        },
        {
            "profile": {"id": 86, "name": "Test HLS"},
            "filename": "nombre2.mp4",
            "label": "prioridad media",
            "progress": 0.0,
        },
    ],
    "duration": 95.143,
    "size": 12118497,
    "filename": "nombre.mp4",
    "label": "prioridad alta",
    "status": "FINISHED",
    "timestamp": "2021-09-08 09:15:55.875827+00:00",
    "comment": "Order 163104952-11567 finished",
}
LISTED = {"id": "1631092552-1237", "created_on": "2021-09-08 11:15:55.875827+02:00", "status": "FINISHED"}
CREDENTIALS = {"company_id": "1234", "client_id": "cid", "client_secret": "csecret"}


def detail(**changes):
    document = copy.deepcopy(SEED_DETAIL)
    document.update(changes)
    return document


def with_progress(*values, status="PROCESSING"):
    document = detail(status=status)
    for job, value in zip(document["transcodingjob_set"], values, strict=True):
        job["progress"] = value
    return document


@pytest.fixture
def adapter():
    settings = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)
    return TransparentEdgeAdapter(
        api_url="https://api.example.invalid/", credentials=CREDENTIALS, session=requests.Session(), settings=settings
    )


def test_spec_is_registered_with_the_contract_defaults():
    assert get_spec("transparent_edge") is SPEC
    assert SPEC.default_api_url == "https://api.transparentcdn.com/"
    assert SPEC.secret_keys == ("company_id", "client_id", "client_secret")


def test_seed_detail_becomes_a_complete_snapshot():
    snapshot = normalize_order("1631092552-1237", SEED_DETAIL, LISTED)

    # The requested id is the job id (the seed's body id differs from it).
    assert snapshot.job_id == "1631092552-1237"
    assert (snapshot.status, snapshot.provider_status) == (Status.COMPLETE, "FINISHED")
    assert snapshot.progress == 100  # FINISHED is 100 although the sub-jobs say 0.0
    assert snapshot.created_at == "2021-09-08T09:15:55.875827Z"  # +02:00 converted to UTC
    assert snapshot.started_at == "2021-09-08T09:15:55.875827Z"
    assert snapshot.error is None
    assert snapshot.details == {"duration": 95.143, "size": 12118497}
    assert [output.id for output in snapshot.outputs] == ["Prueba escalado", "Test HLS"]
    first = snapshot.outputs[0]
    assert (first.status, first.progress) == (Status.COMPLETE, 100)
    assert first.details == {"filename": "nombre.mp4", "label": "prioridad alta"}


def test_urls_are_stored_without_credentials():
    fields = snapshot_fields(normalize_order("1-1", SEED_DETAIL))

    assert fields["source_url"] == "ftp://ftp.tuservidor.com/otro.mp4"
    assert fields["outputs"][0]["destinations"] == [{"url": "ftp://ftp.tuservidor.com/salida/"}]
    assert "clave" not in repr(fields)
    assert "usuario" not in repr(fields)


def test_error_order_keeps_the_comment_as_error_message():
    snapshot = normalize_order("1-1", detail(status="ERROR", comment="Source file not found"))

    assert snapshot.status is Status.ERROR
    assert snapshot.error.message == "Source file not found"
    assert all(output.status is Status.ERROR for output in snapshot.outputs)


def test_error_order_without_comment_still_has_an_error():
    assert normalize_order("1-1", detail(status="ERROR", comment="")).error.message == "the order failed"


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("FINISHED", Status.COMPLETE),
        ("finished", Status.COMPLETE),
        ("ERROR", Status.ERROR),
        ("QUEUED", Status.QUEUED),
        ("PENDING", Status.QUEUED),
        ("Waiting", Status.QUEUED),
        ("ENQUEUED", Status.QUEUED),
        ("PROCESSING", Status.PROCESSING),
        ("running", Status.PROCESSING),
        ("TRANSCODING", Status.PROCESSING),
        ("IN_PROGRESS", Status.PROCESSING),
        ("STARTED", Status.PROCESSING),
        ("UPLOADING", Status.UPLOADING),
        ("CANCELED", Status.CANCELED),
        ("Cancelled", Status.CANCELED),
        ("ABORTED", Status.CANCELED),
        ("REPLICATING", Status.UNKNOWN),
    ],
)
def test_status_words(word, status):
    snapshot = normalize_order("1-1", detail(status=word))

    assert snapshot.status is status
    assert snapshot.provider_status == word  # the provider's word as sent


def test_every_status_word_in_the_table_is_tested():
    tested = {"finished", "error", "queued", "pending", "waiting", "enqueued", "processing", "running"}
    tested |= {"transcoding", "in_progress", "started", "uploading", "canceled", "cancelled", "aborted"}
    assert set(STATUS_WORDS) - {"in progress"} == tested


@pytest.mark.parametrize(
    ("values", "status", "job_progress", "output_progress"),
    [
        ((0.25, 0.75), "PROCESSING", 50, [25, 75]),  # all <= 1.0: fractions
        ((1.0, 0.5), "PROCESSING", 75, [100, 50]),
        ((25.0, 75.0), "PROCESSING", 50, [25, 75]),  # any value > 1: percentages
        ((0.5, 40.0), "PROCESSING", 20.25, [0.5, 40]),
        ((150.0, 50.0), "PROCESSING", 75, [100, 50]),  # never over 100
        ((0.0, 0.0), "FINISHED", 100, [100, 100]),  # FINISHED is 100 whatever the values
        ((0.4, 0.6), "ERROR", 50, [40, 60]),
    ],
)
def test_progress_scale_rule(values, status, job_progress, output_progress):
    snapshot = normalize_order("1-1", with_progress(*values, status=status))

    assert snapshot.progress == job_progress
    assert [output.progress for output in snapshot.outputs] == output_progress


def test_progress_is_unknown_when_no_sub_job_reports_one():
    document = detail(status="PROCESSING")
    for job in document["transcodingjob_set"]:
        del job["progress"]

    assert normalize_order("1-1", document).progress is None


def test_created_on_comes_from_the_listing_when_the_detail_lacks_it():
    assert normalize_order("1-1", SEED_DETAIL).created_at is None
    assert normalize_order("1-1", SEED_DETAIL, LISTED).created_at == "2021-09-08T09:15:55.875827Z"


def test_sub_jobs_of_one_profile_stay_apart():
    document = detail()
    document["transcodingjob_set"][1]["profile"] = {"id": 92, "name": "Prueba escalado"}

    ids = [output.id for output in normalize_order("1-1", document).outputs]
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    "document",
    [
        {k: v for k, v in SEED_DETAIL.items() if k != "status"},
        detail(status=None),
        detail(transcodingjob_set={"profile": "not a list"}),
        detail(transcodingupload_set="ftp://x"),
    ],
)
def test_unexpected_detail_shapes_are_a_clear_provider_error(document):
    with pytest.raises(ProviderError) as raised:
        normalize_order("1-1", document)
    assert raised.value.job_ids == ("1-1",)
    assert "order 1-1" in raised.value.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"order_id": "1631092552-1237", "status": "FINISHED"}', ["1631092552-1237"]),
        ('{"id": "1631092552-1237"}', ["1631092552-1237"]),
        ('{"order_id": 42}', ["42"]),
    ],
)
def test_webhook_names_the_order(adapter, body, expected):
    assert adapter.webhook_job_ids(WebhookBody(body, "application/json")) == expected


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '["1-1"]',
        "{}",
        '{"id": ".."}',
        '{"order_id": ""}',
        '{"order_id": true}',
        '{"id": {"x": 1}}',
        '{"id": null}',
    ],
)
def test_webhook_without_an_order_is_a_bad_request(adapter, body):
    with pytest.raises(BadRequest):
        adapter.webhook_job_ids(WebhookBody(body, "application/json"))


def test_missing_credentials_are_a_configuration_error():
    settings = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)
    with pytest.raises(ConfigurationError, match="company_id"):
        TransparentEdgeAdapter(
            api_url="https://api.example.invalid/",
            credentials={"client_id": "c", "client_secret": "s"},
            session=requests.Session(),
            settings=settings,
        )
