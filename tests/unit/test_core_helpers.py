"""The core's shared helpers, each the one way the project does its thing: URLs, times, XML, webhook
checks, settings, the event message."""

from __future__ import annotations

import threading
import time

import pytest

from transcode_core.config import Settings
from transcode_core.errors import BadRequest, ConfigurationError, PayloadTooLarge, Unauthorized
from transcode_core.notify import email_text, publish_batches, sns_message, subject
from transcode_core.providers.base import read_concurrently
from transcode_core.times import from_epoch_ms, is_later, parse_time, zone
from transcode_core.urls import join_url, redact_url
from transcode_core.webhook import WebhookBody, authenticate, check_size
from transcode_core.xmlsafe import XmlRejected, as_list, parse_xml, to_plain


@pytest.mark.parametrize("base", ["https://api.example.com/v1", "https://api.example.com/v1/"])
@pytest.mark.parametrize("path", ["jobs/1", "/jobs/1"])
def test_join_url_never_doubles_or_drops_a_slash(base, path):
    assert join_url(base, path) == "https://api.example.com/v1/jobs/1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://user:pa%40ss@ftp.example.com/in/a.mov", "ftp://ftp.example.com/in/a.mov"),
        (
            "https://b.s3.amazonaws.com/a.mp4?X-Amz-Signature=abc&X-Amz-Credential=k&versionId=3",
            "https://b.s3.amazonaws.com/a.mp4?versionId=3",
        ),
        ("https://cdn.example.com/a.mp4?token=t&Signature=s&Key-Pair-Id=k&Policy=p", "https://cdn.example.com/a.mp4"),
        ("s3://bucket/key.mp4", "s3://bucket/key.mp4"),
        ("https://example.com/a.mp4?apikey=1&lang=en", "https://example.com/a.mp4?lang=en"),
        ("", ""),
        (None, None),
    ],
)
def test_redact_url_removes_credentials_and_keeps_the_rest(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-09-14T15:49:12+0900", "2021-09-14T06:49:12Z"),
        ("2021-09-08 09:15:55.875827+00:00", "2021-09-08T09:15:55.875827Z"),
        ("2026-11-25 12:00:00", "2026-11-25T12:00:00Z"),
        ("0000-00-00 00:00:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time_gives_iso_utc_with_z(value, expected):
    assert parse_time(value) == expected


def test_dates_without_offset_are_read_in_the_given_zone():
    assert parse_time("2026-11-25 21:00:00", assume=zone("Asia/Seoul")) == "2026-11-25T12:00:00Z"


def test_epoch_milliseconds_and_garbage():
    assert from_epoch_ms(1436335151874) == "2015-07-08T05:59:11.874000Z"
    assert from_epoch_ms("1e400") is None and from_epoch_ms(-5) is None and from_epoch_ms("x") is None


def test_is_later_compares_times_not_text():
    # As text "…:05Z" sorts after "…:05.500000Z"; as times it is earlier.
    assert is_later("2026-11-25T10:00:05.500000Z", "2026-11-25T10:00:05Z")
    assert not is_later("2026-11-25T10:00:05Z", "2026-11-25T10:00:05.500000Z")
    assert not is_later(None, "2026-11-25T10:00:05Z")


def test_xml_entry_point_refuses_dtds_entities_and_external_references():
    laughs = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>'
    external = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    for document in (laughs, external, "<r><unclosed></r>"):
        with pytest.raises(XmlRejected):
            parse_xml(document)


def test_xml_becomes_json_api_shaped_data():
    plain = to_plain(parse_xml("<response><job><id>1</id></job><job><id>2</id></job><x/></response>"))
    assert plain == {"job": [{"id": "1"}, {"id": "2"}], "x": ""}
    assert as_list({"id": "1"}) == [{"id": "1"}] and as_list(None) == [] and as_list([1]) == [1]


def test_webhook_token_check():
    authenticate("s3cret-token", "s3cret-token")
    for given in (None, "", "s3cret", "s3cret-token-x"):
        with pytest.raises(Unauthorized):
            authenticate(given, "s3cret-token")


def test_webhook_token_rotation_accepts_the_current_and_the_previous_token_only():
    accepted = ("new-token", "old-token")
    authenticate("new-token", accepted)
    authenticate("old-token", accepted)
    authenticate("new-token", ("new-token", None))  # no rotation under way
    for given in (None, "", "n", "other", "new-token old-token"):
        with pytest.raises(Unauthorized):
            authenticate(given, accepted)


def test_webhook_size_limit_is_256_kib():
    check_size("x" * 256 * 1024)
    with pytest.raises(PayloadTooLarge):
        check_size("x" * (256 * 1024 + 1))


def test_webhook_body_decoding_errors_are_bad_requests():
    assert WebhookBody("a=1&b=2").form() == {"a": "1", "b": "2"}
    with pytest.raises(BadRequest):
        WebhookBody("{not json").json()
    with pytest.raises(BadRequest):
        WebhookBody("[1, 2]").json_object()
    with pytest.raises(BadRequest):
        WebhookBody('<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>').xml()


def test_settings_are_validated_once():
    env = {"TABLE_NAME": "t", "TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}
    assert Settings.from_env(env).batch_size == 25
    assert Settings.from_env({**env, "BATCH_SIZE": "10", "PROVIDER_API_URL": ""}).provider_api_url is None
    for bad in ({"BATCH_SIZE": "ten"}, {"BATCH_SIZE": "0"}, {"STALL_MINUTES": "-1"}, {"PROVIDER_TIMEZONE": "Nowhere"}):
        with pytest.raises(ConfigurationError):
            Settings.from_env({**env, **bad})
    with pytest.raises(ConfigurationError, match="TOPIC_ARN"):
        Settings.from_env({"TABLE_NAME": "t"})


def _event(**overrides):
    job = {
        "provider": "vod_station",
        "job_id": "10019:" + "ü" * 150,
        "status": "ERROR",
        "attempt": 1,
        "error": {"message": "codec not supported", "code": "E1"},
        "outputs": [{"id": "sd", "destinations": [{"url": "https://cdn/x.mp4", "status": "Error", "error": "denied"}]}],
    }
    event = {
        "event_id": f"vod_station#{job['job_id']}#1#ERROR",
        "event": "job.failed",
        "provider": "vod_station",
        "job_id": job["job_id"],
        "status": "ERROR",
        "provider_status": "FAILURE",
        "attempt": 1,
        "occurred_at": "2026-11-25T12:00:00Z",
        "job": job,
    }
    return {**event, **overrides}


def test_subject_is_printable_ascii_of_at_most_100_characters():
    text = subject(_event())
    assert text.startswith("[ERROR] vod_station job 10019:") and len(text) == 100 and text.isascii()


def test_email_text_says_what_which_job_and_why():
    text = email_text(_event())
    assert "failed" in text and "codec not supported (code E1)" in text and "denied" in text


def test_sns_message_carries_json_for_machines_and_text_for_email():
    request = sns_message(_event())
    assert request["MessageStructure"] == "json"
    assert set(request["MessageAttributes"]) == {"provider", "status", "event"}
    assert all(value["DataType"] == "String" for value in request["MessageAttributes"].values())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCY@mybucket/out/a.mp4", "s3://mybucket/out/a.mp4"),
        ("ftp://user:p?ss@host/x", "ftp://host/x"),
        ("ftp://user:pa@ss@host/x", "ftp://host/x"),
        ("https://cdn.example.com/a.mp4#access_token=abc", "https://cdn.example.com/a.mp4"),
        ("https://host:8080/path@x/y", "https://host:8080/path@x/y"),  # a port, not a password
        ("https://host/people/user@example.com/a.mp4", "https://host/people/user@example.com/a.mp4"),
    ],
)
def test_redact_url_survives_passwords_that_look_like_url_syntax(url, expected):
    assert redact_url(url) == expected


def test_an_event_too_large_for_sns_is_published_without_its_outputs():
    from transcode_core.notify import build_event

    outputs = [{"id": f"o{n}", "destinations": [{"url": "https://cdn.example.com/" + "x" * 500}]} for n in range(400)]
    job = {"provider": "xvid", "job_id": "a1", "status": "COMPLETE", "attempt": 1, "outputs": outputs}
    event = build_event(job, "PROCESSING", "2026-11-25T12:00:00Z")
    request = sns_message(event)
    assert event["outputs_omitted"] == 400 and "outputs" not in event["job"]
    assert len(request["Message"].encode()) < 256 * 1024
    small = build_event({**job, "outputs": outputs[:2]}, "PROCESSING", "2026-11-25T12:00:00Z")
    assert "outputs_omitted" not in small and len(small["job"]["outputs"]) == 2


def test_outbox_age_is_the_oldest_unpublished_events_wait():
    import json
    from datetime import UTC, datetime

    from transcode_core.pipeline import pending_event_age

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    outbox = {
        "a": {"message": json.dumps({"occurred_at": "2026-01-01T11:50:00Z"}), "lease": 0},
        "b": {"message": json.dumps({"occurred_at": "2026-01-01T11:30:00Z"})},
    }
    assert pending_event_age({"outbox": outbox}, now) == 1800
    assert pending_event_age({"status": "COMPLETE"}, now) == 0


def test_events_are_published_ten_a_call_and_never_more_than_256_kib_a_call():
    from transcode_core.notify import build_event

    small = [{**_event(), "event_id": f"e{n}"} for n in range(23)]
    assert [len(batch) for batch in publish_batches(small)] == [10, 10, 3]
    # Events near the largest size one message may have: fewer of them fit in one call
    outputs = [{"id": f"o{n}", "label": "x" * 900} for n in range(100)]
    job = {"provider": "xvid", "job_id": "a1", "status": "COMPLETE", "attempt": 1, "outputs": outputs}
    large = [build_event({**job, "job_id": f"a{n}"}, "PROCESSING", "2026-11-25T12:00:00Z") for n in range(5)]
    batches = publish_batches(large)
    assert sum(len(batch) for batch in batches) == 5 and len(batches) > 1
    for batch in batches:
        assert sum(len(message["Message"].encode()) for _, message in batch) <= 256 * 1024


def test_concurrent_reads_keep_the_items_order_and_stop_starting_reads_when_the_consumer_stops():
    # Given 100 items read 4 at a time, each read taking a moment
    started, lock = [], threading.Lock()

    def read(item):
        with lock:
            started.append(item)
        time.sleep(0.01)
        return item * 10

    # When the consumer takes 5 results and stops (a poll out of time)
    results = read_concurrently(read, list(range(100)), 4, "test")
    taken = [next(results) for _ in range(5)]
    results.close()

    # Then it got them in order, and only the reads already started ran: at most twice the concurrency ahead
    assert taken == [0, 10, 20, 30, 40]
    assert len(started) <= 5 + 2 * 4
    assert sorted(started) == list(range(len(started)))


def test_concurrent_reads_with_a_concurrency_of_one_run_in_the_callers_thread():
    threads = list(read_concurrently(lambda _: threading.current_thread(), [1, 2, 3], 1, "test"))
    assert threads == [threading.main_thread()] * 3


def test_email_text_and_subject_keep_each_value_on_its_line():
    # A job id (or a provider's word or message) with line breaks must not forge lines of the e-mail.
    job_id = "1:x\nStatus: COMPLETE\r\nWhen: never\u2028\u202e\x00"
    event = _event(job_id=job_id, provider_status="FAIL\nURE")
    event["job"] = {**event["job"], "job_id": job_id, "error": {"message": "bad\nStatus: COMPLETE", "code": "E\r1"}}
    text = email_text(event)
    lines = text.split("\n")
    assert [line.split(":")[0] for line in lines[:3]] == ["vod_station job 1", "Status", "When"]
    assert sum(line.startswith("Status:") for line in lines) == 1 and not any(c in text for c in "\r\x00\u2028\u202e")
    assert "1:x\\nStatus: COMPLETE\\r\\nWhen: never\\u2028\\u202e\\x00" in text
    title = subject(event)
    assert title.isascii() and title.isprintable() and "\n" not in title


def test_every_providers_job_id_check_is_the_one_its_adapter_uses():
    # The jobs API checks ids with job_ids alone; a provider missing there, or an adapter checking its
    # provider's ids with another function, would accept what the other refuses.
    from transcode_core.providers import PROVIDER_IDS, get_spec
    from transcode_core.providers.job_ids import IS_JOB_ID, check_job_id

    assert set(IS_JOB_ID) == set(PROVIDER_IDS)
    for provider in PROVIDER_IDS:
        assert get_spec(provider).is_job_id is IS_JOB_ID[provider]
        with pytest.raises(BadRequest, match="control character"):
            check_job_id(provider, "1\n2")
