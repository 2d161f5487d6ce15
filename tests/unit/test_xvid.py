"""Xvid normalizer and webhook parsing: pure, no network."""

from __future__ import annotations

import copy
import json

import pytest
import requests

from transcode_core.config import Settings
from transcode_core.errors import BadRequest, ProviderError
from transcode_core.model import JobError
from transcode_core.providers import get_spec
from transcode_core.providers.xvid import XvidAdapter, mark_new_run, page_jobs, single_job, to_snapshot
from transcode_core.status import Status
from transcode_core.webhook import WebhookBody

# The job of the seed document (shared/seeds/xvid-get-job.txt), as JSON.
SEED_JOB = {
    "pipeline": {
        "id": "552b87a814eab3a29d1b3d90",
        "href": "https://api.xvid.com/v1/pipelines/552b87a814eab3a29d1b3d90",
    },
    "application": {
        "id": "552cae3514ea10cb4d3ac69e",
        "href": "https://api.xvid.com/v1/applications/552cae3514ea10cb4d3ac69e",
    },
    "user_data": None,
    "input": {
        "input_name": "uploads/vnaqaHDKsCfX6X1UNN1iU97aSpkspyPP/movie.mp4",
        "force_container": None,
        "force_aspect_ratio": None,
        "force_framerate": None,
        "force_interlaced": None,
        "file": {"id": "559cbbe7a636e56d8ae111f0", "href": "https://api.xvid.com/v1/files/559cbbe7a636e56d8ae111f0"},
    },
    "autograph": None,
    "output_prefix": "559cbbec14ea67a7cad6c7d8/",
    "outputs": [
        {
            "preset": {
                "id": "5260e39d84aea12008b69bc1",
                "href": "https://api.xvid.com/v1/presets/5260e39d84aea12008b69bc1",
            },
            "file": {
                "id": "559cbbeca636e56d8ae111f4",
                "href": "https://api.xvid.com/v1/files/559cbbeca636e56d8ae111f4",
            },
            "output_name": "MyTest",
            "percentage_completed": 100,
            "thumbnail_zip": {
                "file": {
                    "id": "559cbbeca636e56d8ae111f2",
                    "href": "https://api.xvid.com/v1/files/559cbbeca636e56d8ae111f2",
                }
            },
            "thumbnails": [
                {
                    "thumbnail_names": "MyTest_{resolution}",
                    "thumbnail_preset": "thumbnails_small",
                    "file": {
                        "id": "559cbbeca636e56d8ae111f3",
                        "href": "https://api.xvid.com/v1/files/559cbbeca636e56d8ae111f3",
                    },
                }
            ],
            "logos": [
                {
                    "logo_image": "https://s3-us-east-1.amazonaws.com/my_logo_pngs/logo30.png",
                    "logo_preset": "logo_30_bottom_right",
                }
            ],
            "settings": None,
        }
    ],
    "status": "SUCCESS",
    "percentage_completed": 100,
    "error_msg": None,
    "error_code": None,
    "finished_at": 1436335151874,
    "version": 1,
    "user": {"id": "552b874d14eab3a29d1b3d8d", "href": "https://api.xvid.com/v1/users/552b874d14eab3a29d1b3d8d"},
    "created_at": 1436335084087,
    "updated_at": 1436335083585,
    "id": "559cbbec14ea67a7cad6c7d8",
    "href": "https://api.xvid.com/v1/jobs/559cbbec14ea67a7cad6c7d8",
}


def job(**changes):
    document = copy.deepcopy(SEED_JOB)
    document.update(changes)
    return document


@pytest.fixture
def adapter():
    settings = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)
    # The session is never used by these tests: webhook parsing makes no call.
    return XvidAdapter(
        api_url="https://api.xvid.com/v1/",
        credentials={"client_id": "id", "client_secret": "secret"},
        session=requests.Session(),
        settings=settings,
    )


def test_seed_job_normalizes_to_a_complete_snapshot():
    snapshot = to_snapshot(SEED_JOB)

    assert snapshot.provider == "xvid"
    assert snapshot.job_id == "559cbbec14ea67a7cad6c7d8"
    assert (snapshot.status, snapshot.provider_status, snapshot.progress) == (Status.COMPLETE, "SUCCESS", 100)
    assert snapshot.created_at == "2015-07-08T05:58:04.087000Z"
    assert snapshot.finished_at == "2015-07-08T05:59:11.874000Z"
    assert snapshot.started_at is None  # Xvid documents no start time
    assert snapshot.source_url == "uploads/vnaqaHDKsCfX6X1UNN1iU97aSpkspyPP/movie.mp4"
    assert snapshot.error is None
    assert snapshot.details == {
        "provider_updated_at": "2015-07-08T05:58:03.585000Z",
        "provider_version": 1,
        "output_prefix": "559cbbec14ea67a7cad6c7d8/",
        "input_file_id": "559cbbe7a636e56d8ae111f0",
    }
    (output,) = snapshot.outputs
    assert (output.id, output.progress) == ("MyTest", 100)
    assert output.details == {
        "file_id": "559cbbeca636e56d8ae111f4",
        "preset_id": "5260e39d84aea12008b69bc1",
        "thumbnail_zip_file_id": "559cbbeca636e56d8ae111f2",
        "thumbnail_file_ids": ["559cbbeca636e56d8ae111f3"],
    }


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("SUCCESS", Status.COMPLETE),
        ("CREATED", Status.SUBMITTED),
        ("NEW", Status.SUBMITTED),
        ("SUBMITTED", Status.SUBMITTED),
        ("DOWNLOADING", Status.DOWNLOADING),
        ("QUEUED", Status.QUEUED),
        ("PENDING", Status.QUEUED),
        ("WAITING", Status.QUEUED),
        ("PROCESSING", Status.PROCESSING),
        ("RUNNING", Status.PROCESSING),
        ("ENCODING", Status.PROCESSING),
        ("IN_PROGRESS", Status.PROCESSING),
        ("STARTED", Status.PROCESSING),
        ("UPLOADING", Status.UPLOADING),
        ("FAILED", Status.ERROR),
        ("FAILURE", Status.ERROR),
        ("ERROR", Status.ERROR),
        ("CANCELED", Status.CANCELED),
        ("CANCELLED", Status.CANCELED),
        ("ABORTED", Status.CANCELED),
        ("success", Status.COMPLETE),  # case-insensitive
        (" Processing ", Status.PROCESSING),
        ("TELEPORTING", Status.UNKNOWN),  # a word nobody knows: kept raw, never moves the job
    ],
)
def test_status_words_map_to_canonical_statuses(word, expected):
    snapshot = to_snapshot(job(status=word))

    assert snapshot.status is expected
    assert snapshot.provider_status == word


def test_failed_job_carries_its_error():
    snapshot = to_snapshot(job(status="FAILED", error_msg="Input file is corrupt", error_code=4012, finished_at=None))

    assert snapshot.status is Status.ERROR
    assert snapshot.error == JobError(message="Input file is corrupt", code="4012")
    assert snapshot.finished_at is None


def test_failed_job_without_message_still_says_what_happened():
    assert to_snapshot(job(status="ERROR")).error == JobError(message="Xvid reported ERROR", code=None)


def test_runaway_error_message_is_cut():
    snapshot = to_snapshot(job(status="FAILED", error_msg="x" * 50_000))

    assert len(snapshot.error.message) == 1000


@pytest.mark.parametrize("word", ["SUCCESS", "CANCELED", "PROCESSING"])
def test_error_fields_count_only_when_the_job_failed(word):
    assert to_snapshot(job(status=word, error_msg="stale message", error_code="E1")).error is None


def test_source_url_loses_its_credentials():
    source = "https://user:pass@media.example.com/in/movie.mp4?X-Amz-Signature=abc&v=2"
    snapshot = to_snapshot(job(input={"input_name": source}))

    assert snapshot.source_url == "https://media.example.com/in/movie.mp4?v=2"


def test_unreadable_numbers_and_times_become_unknown_not_errors():
    snapshot = to_snapshot(
        job(
            status="PROCESSING", percentage_completed="lots", created_at="yesterday", finished_at=1e400, updated_at=None
        )
    )

    assert (snapshot.progress, snapshot.created_at, snapshot.finished_at) == (None, None, None)
    assert "provider_updated_at" not in snapshot.details


def test_progress_is_clamped_to_percent():
    assert to_snapshot(job(status="PROCESSING", percentage_completed=250)).progress == 100


def test_outputs_without_name_fall_back_to_file_id_then_position():
    outputs = [{"file": {"id": "f1"}, "percentage_completed": 40}, {"percentage_completed": 10}]
    snapshot = to_snapshot(job(outputs=outputs))

    assert [(output.id, output.progress) for output in snapshot.outputs] == [("f1", 40), ("1", 10)]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (["not", "a", "job"], "a job is a list, not an object"),
        (job(id=None), "a job has no valid id"),
        (job(id="../../oauth2/token"), "a job has no valid id"),
        (job(id="a" * 65), "a job has no valid id"),
        (job(id="abc\n"), "a job has no valid id"),
        (job(status=None), "job 559cbbec14ea67a7cad6c7d8 has no status"),
        (job(status=7), "job 559cbbec14ea67a7cad6c7d8 has no status"),
        (job(outputs={"output_name": "x"}), "job 559cbbec14ea67a7cad6c7d8: outputs is not a list"),
        (job(outputs=["x"]), "job 559cbbec14ea67a7cad6c7d8: output 0 is not an object"),
    ],
)
def test_malformed_jobs_give_clear_provider_errors(document, message):
    with pytest.raises(ProviderError, match="^xvid: ") as raised:
        to_snapshot(document)

    assert raised.value.message.startswith(message)


def test_list_envelope_and_bare_list_are_both_read():
    assert page_jobs({"jobs": [SEED_JOB]}) == [SEED_JOB]
    assert page_jobs([SEED_JOB]) == [SEED_JOB]


@pytest.mark.parametrize("document", [{}, {"jobs": None}, {"jobs": []}, []])
def test_empty_list_answers_are_empty_pages(document):
    assert page_jobs(document) == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"error": "rate limited"}, "job list: expected {\"jobs\": [...]}, got keys ['error']"),
        ({"jobs": {"id": "x"}}, "job list: expected a list of jobs, got dict"),
        ("<html>", "job list: expected a list of jobs, got str"),
        (None, "job list: expected a list of jobs, got NoneType"),
    ],
)
def test_unexpected_list_shapes_are_provider_errors(document, message):
    with pytest.raises(ProviderError) as raised:
        page_jobs(document)

    assert raised.value.message == message


def test_single_job_envelope():
    assert single_job({"job": SEED_JOB}) is SEED_JOB
    for document in (SEED_JOB, {"job": None}, [], "x"):
        with pytest.raises(ProviderError, match=r'expected \{"job": \{\.\.\.\}\}'):
            single_job(document)


@pytest.mark.parametrize(
    "body",
    [
        {"job_id": "559cbbec14ea67a7cad6c7d8"},
        {"job": {"id": "559cbbec14ea67a7cad6c7d8", "status": "SUCCESS"}},
        {"id": "559cbbec14ea67a7cad6c7d8"},
        {"id": "notification-1", "job_id": "559cbbec14ea67a7cad6c7d8"},  # the most specific field wins
    ],
)
def test_webhook_names_one_job(adapter, body):
    assert adapter.webhook_job_ids(WebhookBody(json.dumps(body), "application/json")) == ["559cbbec14ea67a7cad6c7d8"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "body is not valid JSON"),
        ('["559cbbec14ea67a7cad6c7d8"]', "body is not a JSON object"),
        ('{"status": "SUCCESS"}', "the body names no job"),
        ('{"job": "559cbbec14ea67a7cad6c7d8"}', "the body names no job"),
        ('{"job_id": "../../oauth2/token?x=1"}', "the job id is not a valid Xvid job id"),
        ('{"id": "559cbbec14ea67a7cad6c7d8/../../users"}', "the job id is not a valid Xvid job id"),
        ('{"job_id": 12345}', "the job id is not a valid Xvid job id"),
        ('{"job_id": ["a", "b"]}', "the job id is not a valid Xvid job id"),
    ],
)
def test_hostile_or_malformed_webhook_bodies_are_bad_requests(adapter, text, message):
    with pytest.raises(BadRequest, match="^" + message.replace("?", r"\?")):
        adapter.webhook_job_ids(WebhookBody(text, "application/json"))


ENDED = {"job_id": "559cbbec14ea67a7cad6c7d8", "status": "ERROR", "finished_at": "2015-07-08T05:59:11.874000Z"}
LATER_MS, EARLIER_MS = 1436335152000, 1436335151000  # 05:59:12Z, 05:59:11Z


@pytest.mark.parametrize(
    ("stored", "changes", "requeued"),
    [
        (ENDED, {"status": "PROCESSING", "updated_at": LATER_MS, "finished_at": None}, True),  # runs again
        (ENDED, {"status": "SUCCESS", "finished_at": LATER_MS}, True),  # ran again and ended between polls
        # updated_at need not move (the seed shows it before created_at): running with no finish is a new run
        (ENDED, {"status": "PROCESSING", "updated_at": EARLIER_MS, "finished_at": None}, True),
        (ENDED, {"status": "FAILED", "finished_at": 1436335151874}, False),  # the same run
        (ENDED, {"status": "PROCESSING", "updated_at": None, "finished_at": None}, True),
        ({**ENDED, "status": "PROCESSING"}, {"status": "SUCCESS", "finished_at": LATER_MS}, False),  # not ended
        ({**ENDED, "finished_at": None}, {"status": "PROCESSING", "updated_at": LATER_MS}, False),
        (None, {"status": "PROCESSING", "updated_at": LATER_MS}, False),
    ],
)
def test_an_ended_job_running_after_its_finish_is_a_new_run(stored, changes, requeued):
    assert mark_new_run(to_snapshot(job(**changes)), stored).requeued is requeued


def test_spec_is_registered():
    spec = get_spec("xvid")

    assert spec.default_api_url == "https://api.xvid.com/v1/"
    assert spec.secret_keys == ("client_id", "client_secret")
    assert spec.adapter is XvidAdapter
    assert spec.status_words["success"] is Status.COMPLETE
