"""encoding.com normalizer, request building and notification parsing, on the documented shapes (no network)."""

from __future__ import annotations

import json
from datetime import UTC
from urllib.parse import urlencode

import pytest
import requests

from transcode_core.config import Settings
from transcode_core.errors import BadRequest, ConfigurationError
from transcode_core.model import snapshot_fields
from transcode_core.providers import get_spec
from transcode_core.providers.encoding_com import (
    SPEC,
    EncodingComAdapter,
    jobs_by_media_id,
    normalize_job,
    parse_destination_status,
    provider_errors,
    query_form,
)
from transcode_core.status import Status
from transcode_core.times import zone
from transcode_core.webhook import WebhookBody
from transcode_core.xmlsafe import parse_xml, to_plain

# GetStatus extended, two media: one Finished with two formats (the second has two destinations, one of which
# failed), one in Error while its format is still New with an Open destination (seen in real answers).
EXTENDED_XML = """<?xml version="1.0"?>
<response>
  <job>
    <id>1001</id>
    <userid>42</userid>
    <sourcefile>ftp://ingest:s3cret@ftp.example.com/in/movie.mov</sourcefile>
    <status>Finished</status>
    <notifyurl>https://hooks.example.com/webhooks/encoding-com?token=abc</notifyurl>
    <created>2015-12-31 20:45:30</created>
    <started>2015-12-31 20:45:34</started>
    <finished>2015-12-31 21:00:03</finished>
    <prevstatus>Saving</prevstatus>
    <downloaded>2015-12-31 20:45:32</downloaded>
    <filesize>73400320</filesize>
    <processor>AMAZON</processor>
    <progress>100</progress>
    <time_left>0</time_left>
    <format>
      <id>164478401</id>
      <status>Finished</status>
      <created>2015-12-31 20:45:30</created>
      <started>2015-12-31 20:45:34</started>
      <finished>2015-12-31 21:00:03</finished>
      <s3_destination>https://bucket.s3.amazonaws.com/a.mp4?AWSAccessKeyId=AKIAX&amp;Expires=1&amp;Signature=zz</s3_destination>
      <convertedsize>10485760</convertedsize>
      <time_left>0</time_left>
      <progress>100.0</progress>
      <time_left_current>0</time_left_current>
      <progress_current>100.0</progress_current>
      <file_size>10485760</file_size>
      <destination>s3://out-bucket/a.mp4</destination>
      <destination_status>Saved</destination_status>
    </format>
    <format>
      <id>164478402</id>
      <status>Finished</status>
      <created>2015-12-31 20:45:30</created>
      <started>2015-12-31 20:45:34</started>
      <finished>2015-12-31 21:00:03</finished>
      <convertedsize>0</convertedsize>
      <progress>100</progress>
      <file_size>2097152</file_size>
      <destination>ftp://user:pw@ftp.example.com/out/b.mp4</destination>
      <destination_status>Saved</destination_status>
      <destination>https://cdn.example.com/out/b.mp4?token=t0k&amp;v=2</destination>
      <destination_status>Error (Access denied (403))</destination_status>
    </format>
  </job>
  <job>
    <id>1002</id>
    <sourcefile>http://some.file/wait-wat</sourcefile>
    <status>Error</status>
    <created>2016-01-29 19:32:32</created>
    <started>2016-01-29 19:32:32</started>
    <finished>0000-00-00 00:00:00</finished>
    <downloaded>0000-00-00 00:00:00</downloaded>
    <description>Download error:  The requested URL returned error: 403 Forbidden</description>
    <progress>50.0</progress>
    <format>
      <id>164478403</id>
      <status>New</status>
      <created>2016-01-29 19:32:32</created>
      <started>0000-00-00 00:00:00</started>
      <finished>0000-00-00 00:00:00</finished>
      <destination>http://s4.amazonaws.com/future</destination>
      <destination_status>Open</destination_status>
      <convertedsize>0</convertedsize>
      <progress>0.0</progress>
    </format>
  </job>
</response>"""

# The second media above as the JSON API sends it alone: `job`, `format` and `destination` are single objects.
SINGLE_JSON = {
    "response": {
        "job": {
            "id": "1002",
            "sourcefile": "http://some.file/wait-wat",
            "status": "Error",
            "created": "2016-01-29 19:32:32",
            "started": "2016-01-29 19:32:32",
            "finished": "0000-00-00 00:00:00",
            "downloaded": "0000-00-00 00:00:00",
            "description": "Download error:  The requested URL returned error: 403 Forbidden",
            "progress": "50.0",
            "format": {
                "id": "164478403",
                "status": "New",
                "created": "2016-01-29 19:32:32",
                "started": "0000-00-00 00:00:00",
                "finished": "0000-00-00 00:00:00",
                "destination": "http://s4.amazonaws.com/future",
                "destination_status": "Open",
                "convertedsize": "0",
                "progress": "0.0",
            },
        }
    }
}

DOCUMENTED_WORDS = {
    "New": Status.SUBMITTED,
    "Downloading": Status.DOWNLOADING,
    "Ready to process": Status.QUEUED,
    "Waiting for encoder": Status.QUEUED,
    "Processing": Status.PROCESSING,
    "Saving": Status.UPLOADING,
    "Finished": Status.COMPLETE,
    "Error": Status.ERROR,
}
CREDENTIALS = {"user_id": "42", "user_key": "k3y"}


def settings(**changes) -> Settings:
    return Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None, **changes)


def adapter(**kwargs) -> EncodingComAdapter:
    options = {"credentials": CREDENTIALS, "settings": settings(), **kwargs}
    return EncodingComAdapter(api_url="http://127.0.0.1:9/", session=requests.Session(), **options)


def xml_jobs(text: str) -> dict:
    return jobs_by_media_id(to_plain(parse_xml(text)))


def snapshot_of(job: dict, media_id: str, assume=UTC):
    return normalize_job(job, media_id=media_id, assume=assume)


# --- status words ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("word,expected", DOCUMENTED_WORDS.items())
@pytest.mark.parametrize("spelling", [str, str.lower, str.upper, lambda w: f"  {w.replace(' ', '  ')} "])
def test_every_documented_word_maps_whatever_its_case(word, expected, spelling):
    job = {"id": "1", "status": spelling(word)}

    snapshot = snapshot_of(job, "1")

    assert snapshot.status is expected
    assert snapshot.provider_status == spelling(word).strip()  # the word as sent


@pytest.mark.parametrize("word", ["Closed", "Stopped", "Deleted", "Cancelled", "Finished!", "Open", ""])
def test_words_outside_the_contract_are_unknown(word):
    assert snapshot_of({"id": "1", "status": word}, "1").status is Status.UNKNOWN


def test_spec_registers_the_contract_row_and_nothing_else():
    assert get_spec("encoding_com") is SPEC
    assert SPEC.default_api_url == "https://manage.encoding.com/"
    assert SPEC.secret_keys == ("user_id", "user_key")
    assert SPEC.status_words == {word.lower(): status for word, status in DOCUMENTED_WORDS.items()}


# --- normalizer -----------------------------------------------------------------------------------------
def test_finished_media_becomes_a_complete_snapshot_with_outputs_and_destinations():
    job = xml_jobs(EXTENDED_XML)["1001"]

    snapshot = snapshot_of(job, "1001")

    assert (snapshot.job_id, snapshot.status, snapshot.provider_status) == ("1001", Status.COMPLETE, "Finished")
    assert snapshot.progress == 100
    assert (snapshot.created_at, snapshot.started_at, snapshot.finished_at) == (
        "2015-12-31T20:45:30Z",
        "2015-12-31T20:45:34Z",
        "2015-12-31T21:00:03Z",
    )
    assert snapshot.error is None
    first, second = snapshot.outputs
    assert (first.id, first.status, first.provider_status, first.progress, first.size_bytes) == (
        "164478401",
        Status.COMPLETE,
        "Finished",
        100,
        10485760,
    )
    assert [(d.url, d.status, d.error) for d in first.destinations] == [("s3://out-bucket/a.mp4", "Saved", None)]
    assert first.details["s3_destination"] == "https://bucket.s3.amazonaws.com/a.mp4?Expires=1"
    assert second.size_bytes == 2097152  # convertedsize "0" says nothing; file_size does
    assert [(d.url, d.status, d.error) for d in second.destinations] == [
        ("ftp://ftp.example.com/out/b.mp4", "Saved", None),
        ("https://cdn.example.com/out/b.mp4?v=2", "Error", "Access denied (403)"),
    ]


def test_media_in_error_while_its_format_is_still_new_keeps_the_description():
    snapshot = snapshot_of(xml_jobs(EXTENDED_XML)["1002"], "1002")

    assert snapshot.status is Status.ERROR
    assert snapshot.error.message == "Download error:  The requested URL returned error: 403 Forbidden"
    assert snapshot.progress == 50
    assert snapshot.started_at == "2016-01-29T19:32:32Z"
    assert snapshot.finished_at is None  # 0000-00-00 00:00:00
    (output,) = snapshot.outputs
    assert (output.status, output.provider_status, output.progress, output.size_bytes) == (
        Status.SUBMITTED,
        "New",
        0,
        None,
    )
    assert [(d.status, d.error) for d in output.destinations] == [("Open", None)]


def test_json_single_object_quirk_normalizes_like_the_xml_answer():
    from_json = snapshot_of(jobs_by_media_id(SINGLE_JSON["response"])["1002"], "1002")
    from_xml = snapshot_of(xml_jobs(EXTENDED_XML)["1002"], "1002")

    assert from_json == from_xml
    assert len(from_json.outputs) == 1 and len(from_json.outputs[0].destinations) == 1


def test_json_lists_with_null_destinations_and_no_statuses():
    job = {
        "id": "7",
        "status": "Processing",
        "format": [
            {
                "id": "1",
                "status": "Processing",
                "destination": [None, "s3://b/1.mp4"],
                "destination_status": [None, "Saved"],
            },
            {
                "id": "2",
                "status": "Processing",
                "destination": ["s3://b/2.mp4", "s3://b/3.mp4"],
                "destination_status": None,
            },
        ],
    }

    first, second = snapshot_of(job, "7").outputs

    assert [(d.url, d.status) for d in first.destinations] == [("s3://b/1.mp4", "Saved")]
    assert [(d.url, d.status) for d in second.destinations] == [("s3://b/2.mp4", None), ("s3://b/3.mp4", None)]


def test_error_message_falls_back_to_the_first_destination_error():
    job = {
        "id": "8",
        "status": "Error",
        "format": [
            {"id": "1", "status": "Finished", "destination": "s3://b/1.mp4", "destination_status": "Saved"},
            {
                "id": "2",
                "status": "Error",
                "destination": "s3://b/2.mp4",
                "destination_status": "Error (Access denied)",
            },
        ],
    }

    assert snapshot_of(job, "8").error.message == "Access denied"


def test_error_without_any_text_still_says_what_happened():
    snapshot = snapshot_of({"id": "9", "status": "Error"}, "9")

    assert snapshot.error is not None and "Error" in snapshot.error.message


def test_only_failed_media_carry_an_error():
    job = {
        "id": "3",
        "status": "Finished",
        "format": {
            "id": "1",
            "status": "Error",
            "destination": "s3://b/x",
            "destination_status": "Error (Bucket missing)",
        },
    }

    snapshot = snapshot_of(job, "3")

    assert snapshot.error is None
    assert snapshot.outputs[0].destinations[0].error == "Bucket missing"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Saved", ("Saved", None)),
        ("Open", ("Open", None)),
        ("Error (Access denied)", ("Error", "Access denied")),
        ("error(Timeout)", ("Error", "Timeout")),
        ("Error: No such bucket", ("Error", "No such bucket")),
        ("Error", ("Error", None)),
        ("Errors pending", ("Errors pending", None)),
        (None, (None, None)),
    ],
)
def test_destination_status_splits_error_descriptions(text, expected):
    assert parse_destination_status(text) == expected


def test_dates_without_offset_are_read_in_the_provider_timezone():
    job = {"id": "1", "status": "New", "created": "2026-01-01 09:00:00", "started": "0000-00-00 00:00:00"}

    snapshot = snapshot_of(job, "1", assume=zone("Asia/Seoul"))

    assert snapshot.created_at == "2026-01-01T00:00:00Z"
    assert snapshot.started_at is None


@pytest.mark.parametrize(
    "progress,expected", [("50.0", 50), ("12.5", 12.5), ("100", 100), ("", None), ("n/a", None), ("150", 100)]
)
def test_progress_strings(progress, expected):
    assert snapshot_of({"id": "1", "status": "Processing", "progress": progress}, "1").progress == expected


@pytest.mark.parametrize(
    "source,stored",
    [
        ("ftp://ingest:s3cret@ftp.example.com/in/a.mov", "ftp://ftp.example.com/in/a.mov"),
        (
            "https://b.s3.amazonaws.com/a.mov?AWSAccessKeyId=AKIA1&Expires=9&Signature=abc",
            "https://b.s3.amazonaws.com/a.mov?Expires=9",
        ),
        ("s3://AKIA1:secret@bucket/in/a.mov", "s3://bucket/in/a.mov"),
    ],
)
def test_source_url_is_stored_without_credentials(source, stored):
    snapshot = snapshot_of({"id": "1", "status": "New", "sourcefile": source}, "1")

    assert snapshot.source_url == stored
    assert "secret" not in json.dumps(snapshot_fields(snapshot)) and "s3cret" not in json.dumps(
        snapshot_fields(snapshot)
    )


def test_basic_getstatus_answer_is_read_as_one_job():
    basic = to_plain(parse_xml("<response><id>55</id><status>Saving</status><progress>90</progress></response>"))

    assert snapshot_of(jobs_by_media_id(basic)["55"], "55").status is Status.UPLOADING


# --- errors documents -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "document",
    [
        to_plain(
            parse_xml('<?xml version="1.0"?><response><errors><error>Wrong user id or key!</error></errors></response>')
        ),
        {"errors": {"error": "Wrong user id or key!"}},
        {"errors": {"error": ["Wrong user id or key!", "Second problem"]}},
    ],
)
def test_errors_documents_yield_the_providers_text(document):
    assert provider_errors(document)[0] == "Wrong user id or key!"


def test_a_normal_answer_has_no_errors():
    assert provider_errors(to_plain(parse_xml(EXTENDED_XML))) == []


# --- requests -------------------------------------------------------------------------------------------
def test_xml_query_escapes_values():
    query = {"userid": "42", "userkey": "a<b>&\"c'</userkey><action>DeleteMedia", "action": "GetStatus"}

    form = query_form(query, "xml")

    root = parse_xml(form["xml"])
    assert root.tag == "query"
    assert to_plain(root) == query


def test_json_query_round_trips():
    query = {"userid": "42", "userkey": 'k"ey', "action": "GetStatus", "extended": "yes", "mediaid": "1,2"}

    assert json.loads(query_form(query, "json")["json"]) == {"query": query}


# --- configuration --------------------------------------------------------------------------------------
def test_format_comes_from_the_environment_unless_given():
    env = {"TABLE_NAME": "t", "TOPIC_ARN": "arn"}
    assert adapter(settings=Settings.from_env({**env, "ENCODING_COM_FORMAT": "JSON"})).api_format == "json"
    assert adapter(settings=settings(encoding_com_format="xml")).api_format == "xml"
    assert adapter(settings=Settings.from_env(env)).api_format == "xml"


@pytest.mark.parametrize(
    "build",
    [
        lambda: adapter(settings=settings(encoding_com_format="yaml")),
        lambda: adapter(credentials={"user_id": "42"}),
    ],
)
def test_bad_configuration_is_refused(build):
    with pytest.raises(ConfigurationError):
        build()


def test_unknown_provider_timezone_is_refused_with_the_settings():
    with pytest.raises(ConfigurationError, match="PROVIDER_TIMEZONE"):
        settings(provider_timezone="Mars/Olympus_Mons")


# --- notifications --------------------------------------------------------------------------------------
NOTIFY_XML = (
    '<?xml version="1.0"?><result><mediaid>31000007</mediaid><source>ftp://u:p@ftp.example.com/a.mov</source>'
    "<status>Finished</status><format><output>mp4</output><destination>s3://b/a.mp4</destination>"
    "<destination_status>Saved</destination_status><status>Finished</status></format></result>"
)
NOTIFY_JSON = json.dumps({"result": {"mediaid": "31000007", "status": "Finished", "format": {"output": "mp4"}}})
FORM = "application/x-www-form-urlencoded"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><result><mediaid>&c;</mediaid></result>'
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><result><mediaid>&x;</mediaid></result>'
)


@pytest.mark.parametrize(
    "text,content_type",
    [
        (urlencode({"xml": NOTIFY_XML}), FORM),
        (urlencode({"json": NOTIFY_JSON}), FORM),
        (urlencode({"json": NOTIFY_JSON}), f"{FORM}; charset=UTF-8"),
        (NOTIFY_XML, "application/xml"),
        (NOTIFY_XML, "text/plain"),
        (NOTIFY_JSON, "application/json"),
    ],
    ids=["form-xml", "form-json", "form-json-charset", "raw-xml", "raw-xml-text-plain", "raw-json"],
)
def test_notification_names_its_media(text, content_type):
    assert adapter().webhook_job_ids(WebhookBody(text, content_type)) == ["31000007"]


@pytest.mark.parametrize(
    "text,content_type,message",
    [
        (BILLION_LAUGHS, "application/xml", "XML refused"),
        (EXTERNAL_ENTITY, "application/xml", "XML refused"),
        (urlencode({"xml": BILLION_LAUGHS}), FORM, "XML refused"),
        (urlencode({"xml": EXTERNAL_ENTITY}), FORM, "XML refused"),
        ("<result><status>Finished</status></result>", "application/xml", "names no media id"),
        ('{"result": {"status": "Finished"}}', "application/json", "names no media id"),
        ('{"result": {"mediaid": "12; DROP"}}', "application/json", "not a positive integer"),
        ("<result><mediaid>0</mediaid></result>", "application/xml", "not a positive integer"),
        ("<result><mediaid>-5</mediaid></result>", "application/xml", "not a positive integer"),
        (urlencode({"other": "1"}), FORM, "neither an xml nor a json field"),
        (urlencode({"json": "{not json"}), FORM, "not valid JSON"),
        ("<result><mediaid>1</mediaid>", "application/xml", "not well-formed"),
        ("mediaid=1", "text/plain", "neither XML nor JSON"),
        ("", "application/json", "neither XML nor JSON"),
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "form-billion-laughs",
        "form-external-entity",
        "xml-without-id",
        "json-without-id",
        "json-bad-id",
        "zero-id",
        "negative-id",
        "form-without-query",
        "form-bad-json",
        "broken-xml",
        "plain-text",
        "empty",
    ],
)
def test_unreadable_or_hostile_notifications_are_refused(text, content_type, message):
    with pytest.raises(BadRequest, match=message):
        adapter().webhook_job_ids(WebhookBody(text, content_type))
