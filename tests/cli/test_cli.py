"""The `transcode-status` command against a moto stack: every command runs for real (tables and topic in
moto, the jobs API behind the local SigV4-checking gateway, providers simulated)."""

from __future__ import annotations

import inspect
import json
import threading

import boto3
import pytest
import requests
from click.testing import CliRunner

from local.api_gateway import LocalJobsApi
from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.xvid import XvidSimulator
from transcode_core.notify import build_event, sns_message
from transcode_status_cli.main import cli

XVID = {"client_id": "cid", "client_secret": "csecret"}
ENCODING = {"user_id": "u", "user_key": "k"}


@pytest.fixture
def sims(stack):
    with XvidSimulator(**XVID) as xvid, EncodingComSimulator(**ENCODING) as encoding:
        stack.configure("xvid", xvid.url, XVID)
        stack.configure("encoding_com", encoding.url, ENCODING)
        yield xvid, encoding


@pytest.fixture
def api(stack):
    with LocalJobsApi(stack) as gateway:
        yield gateway


@pytest.fixture
def run(stack, api):
    """Runs the CLI pointed at the moto stack; returns (exit code, stdout, stderr)."""
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    runner = CliRunner(**separate)
    env = {
        "TRANSCODE_STATUS_TABLE": stack.table_name,
        "TRANSCODE_STATUS_TOPIC": stack.topic_arn,
        "TRANSCODE_STATUS_API_URL": api.url,
        "COLUMNS": None,  # output to a pipe, whatever width the runner's terminal (or pytest-xdist) sets
    }

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture
def operations(monkeypatch):
    """Every AWS operation called, by name."""
    from botocore.client import BaseClient

    called: list[str] = []
    original = BaseClient._make_api_call

    def record(self, operation_name, params):
        called.append(operation_name)
        return original(self, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return called


def seeded(stack, sims, run):
    """Two Xvid jobs discovered (one completes, one fails) and one encoding.com job tracked with the CLI."""
    xvid, encoding = sims
    done, failed = xvid.add_job(outputs=("hd", "sd")), xvid.add_job(fail=True)
    media_id = encoding.add_job()
    assert run("jobs", "track", "encoding_com", media_id)[0] == 0
    for _ in range(12):
        stack.poll("xvid")
        xvid.tick()
        xvid.advance_clock(minutes=6)
    stack.poll("encoding_com")
    return done, failed, media_id


def as_json(output: str):
    return json.loads(output)


# --- jobs ------------------------------------------------------------------------------------------------
def test_jobs_list_is_newest_first_filters_and_pages_without_a_scan(stack, sims, run, operations):
    done, failed, media_id = seeded(stack, sims, run)
    operations.clear()

    code, out, _ = run("jobs", "list", "--json")
    assert code == 0
    listed = as_json(out)["jobs"]
    assert {job["job_id"] for job in listed} == {done, failed, media_id}
    times = [job["updated_at"] for job in listed]
    assert times == sorted(times, reverse=True) and as_json(out)["next_token"] is None
    assert not {"pk", "sk", "listed_provider"} & set(listed[0])
    assert "Scan" not in operations and "Query" in operations

    assert [j["job_id"] for j in as_json(run("jobs", "list", "--provider", "encoding_com", "--json")[1])["jobs"]] == [
        media_id
    ]
    by_status = as_json(run("jobs", "list", "--status", "error", "--json")[1])["jobs"]
    assert [(job["job_id"], job["status"]) for job in by_status] == [(failed, "ERROR")]
    assert as_json(run("jobs", "list", "--since", "2099-01-01", "--json")[1])["jobs"] == []
    assert len(as_json(run("jobs", "list", "--since", "1h", "--json")[1])["jobs"]) == 3

    pages, token = [], None
    while True:
        args = ["jobs", "list", "--limit", "1", "--json"] + (["--next-token", token] if token else [])
        answer = as_json(run(*args)[1])
        pages.append([job["job_id"] for job in answer["jobs"]])
        token = answer["next_token"]
        if not token:
            break
    assert [page[0] for page in pages if page] == [job["job_id"] for job in listed]

    code, out, _ = run("jobs", "list")
    assert code == 0 and "provider says" in out and done in out and "ERROR" in out


def test_jobs_show_has_state_outputs_error_and_a_timeline(stack, sims, run):
    done, failed, _ = seeded(stack, sims, run)
    code, out, _ = run("jobs", "show", "xvid", done, "--json")
    shown = as_json(out)
    assert code == 0 and shown["job"]["status"] == "COMPLETE" and len(shown["job"]["outputs"]) == 2
    assert shown["tracking"] == "finished"
    assert [entry["status"] for entry in shown["history"]][-1] == "COMPLETE"
    assert all(entry["time"].endswith("Z") for entry in shown["history"])

    code, out, _ = run("jobs", "show", "xvid", failed)
    assert code == 0 and "Encoding failed: unsupported codec" in out and "history" in out and "poll" in out

    code, _, err = run("jobs", "show", "xvid", "0123456789abcdef01234567")
    assert code == 3 and err.strip() == "transcode-status: xvid job 0123456789abcdef01234567 is not tracked"


def test_track_and_untrack_go_through_the_signed_jobs_api(stack, sims, run, api):
    _, encoding = sims
    media_id = encoding.add_job()
    code, out, _ = run("jobs", "track", "encoding_com", media_id, "--json")
    assert code == 0 and as_json(out)["created"] is True and as_json(out)["job"]["status"] == "SUBMITTED"
    assert run("jobs", "track", "encoding_com", media_id)[1].startswith(f"encoding_com job {media_id} tracked")

    code, out, _ = run("jobs", "untrack", "encoding_com", media_id)
    assert code == 0 and "no longer tracked" in out
    encoding.reset_log()
    stack.poll("encoding_com")
    assert encoding.count() == 0
    assert as_json(run("jobs", "show", "encoding_com", media_id, "--json")[1])["tracking"].startswith("stopped at")

    assert run("jobs", "untrack", "encoding_com", "777")[0] == 3
    code, _, err = run("jobs", "track", "encoding_com", "not-a-number")
    assert code == 2 and "is not a valid encoding_com job id" in err
    # The gateway refuses what the IAM authorizer refuses: an unsigned request.
    assert requests.put(f"{api.url}/jobs/encoding_com/{media_id}", timeout=5).status_code == 403


def test_watch_refreshes_until_its_iterations_are_done(stack, sims, run):
    seeded(stack, sims, run)
    code, out, _ = run("jobs", "watch", "--max-iterations", "2", "--interval", "0.1", "--json")
    frames = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(frames) == 2 and len(frames[0]["jobs"]) == 3
    code, out, _ = run("jobs", "watch", "--max-iterations", "1", "--provider", "xvid")
    assert code == 0 and "provider says" in out


# --- events ----------------------------------------------------------------------------------------------
class _Publisher:
    """Publishes the events over and over until stopped (the tail subscribes at a moment the test cannot
    see, so whatever it is shown must keep coming)."""

    def __init__(self, stack, *events):
        self.request = [{"TopicArn": stack.topic_arn, **sns_message(event)} for event in events]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        # Built here, not in the thread: botocore reads the whole environment (its proxies) when it builds a
        # client, which fails while the CLI runner sets COLUMNS in the test's thread.
        self.sns = boto3.client("sns")

    def _run(self):
        while not self.stop.wait(0.2):
            for request in self.request:
                self.sns.publish(**request)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _event(provider="xvid", job_id="abc", status="COMPLETE"):
    job = {
        "provider": provider,
        "job_id": job_id,
        "status": status,
        "attempt": 1,
        "version": 2,
        "updated_at": "2026-11-25T12:00:00Z",
    }
    return build_event(job, "PROCESSING", "2026-11-25T12:00:00Z")


def test_tail_prints_events_and_removes_its_queue_and_subscription(stack, run):
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queues_before = sqs.list_queues().get("QueueUrls", [])
    with _Publisher(stack, _event()):
        code, out, err = run("events", "tail", "--max-messages", "1", "--timeout", "20", "--json")
    assert code == 0 and as_json(out)["event_id"] == "xvid#abc#1#COMPLETE"
    assert "temporary queue and subscription removed" in err
    assert sqs.list_queues().get("QueueUrls", []) == queues_before
    assert len(sns.list_subscriptions_by_topic(TopicArn=stack.topic_arn)["Subscriptions"]) == 1  # the stack's own

    # A filter becomes the subscription's filter policy: failures pass, completions do not.
    with _Publisher(stack, _event(job_id="ok"), _event(job_id="bad", status="ERROR")):
        code, out, _ = run("events", "tail", "--event", "job.failed", "--max-messages", "3", "--timeout", "20")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and all("job.failed" in line and "xvid bad" in line for line in lines)


def test_replay_sends_the_last_event_again_marked_as_a_replay(stack, sims, run):
    done, failed, _ = seeded(stack, sims, run)
    original = next(n for n in stack.messages() if n["message"]["job_id"] == failed)["message"]
    code, out, _ = run("events", "replay", "xvid", failed)
    assert code == 0 and f"replayed job.failed xvid#{failed}#1#ERROR" in out
    replayed = stack.messages()[-1]
    assert replayed["attributes"]["replay"] == "true" and replayed["message"]["replay"] is True
    for same in ("event_id", "event", "status", "previous_status", "occurred_at", "attempt"):
        assert replayed["message"][same] == original[same]

    _, encoding = sims
    media_id = encoding.add_job()
    run("jobs", "track", "encoding_com", media_id)
    code, _, err = run("events", "replay", "encoding_com", media_id)
    assert code == 3 and "has published no event" in err


def test_test_event_is_marked_so_filters_can_tell_it_apart(stack, run):
    code, out, _ = run("events", "test", "--provider", "vod_station", "--json")
    assert code == 0
    received = stack.messages()[-1]
    assert received["attributes"] == {
        "provider": "vod_station",
        "status": "COMPLETE",
        "event": "job.test",
        "test": "true",
    }
    assert received["message"]["test"] is True and received["message"]["event_id"] == as_json(out)["event"]["event_id"]


# --- errors and exit codes -------------------------------------------------------------------------------
def test_missing_table_topic_or_stack_are_one_line_errors(stack, run):
    code, _, err = run("jobs", "list", "--table", "no-such-table")
    assert code == 3 and err.count("\n") == 1 and "jobs table not found" in err
    code, _, err = run("events", "test", "--topic", "arn:aws:sns:us-east-1:123456789012:nope")
    assert code == 3 and err.count("\n") == 1
    code, _, err = run("jobs", "list", "--stack", "no-such-stack")
    assert code == 3 and "no-such-stack does not exist" in err and err.count("\n") == 1
    code, _, err = run("jobs", "list", "--provider", "bitmovin")
    assert code == 2 and err.count("\n") == 1 and "'bitmovin' is not one of" in err
    code, _, err = run("jobs", "show", "bitmovin", "1")
    assert code == 2 and err.count("\n") == 1


def test_stack_outputs_say_where_the_table_topic_and_api_are(stack, sims, run, api):
    boto3.client("cloudformation").create_stack(
        StackName="ts-prod",
        TemplateBody=json.dumps(
            {
                "Resources": {"Dummy": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {
                    "JobsTableName": {"Value": stack.table_name},
                    "JobEventsTopicArn": {"Value": stack.topic_arn},
                    "ApiUrl": {"Value": api.url},
                },
            }
        ),
    )
    _, encoding = sims
    media_id = encoding.add_job()
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    result = CliRunner(**separate).invoke(
        cli, ["jobs", "track", "encoding_com", media_id, "--stack", "ts-prod", "--region", "us-east-1", "--json"]
    )
    assert result.exit_code == 0, result.output
    result = CliRunner(**separate).invoke(cli, ["jobs", "list", "--stack", "ts-prod", "--json"])
    assert [job["job_id"] for job in json.loads(result.stdout)["jobs"]] == [media_id]
    result = CliRunner(**separate).invoke(cli, ["jobs", "list"])
    assert result.exit_code == 2 and "say which stack" in result.stderr


def test_replay_of_a_stall_keeps_its_event_id_and_time(stack, sims, run):
    import time

    _, encoding = sims
    stack.configure("encoding_com", encoding.url, ENCODING, env={"STALL_MINUTES": "0.001"})
    media_id = encoding.add_job()
    stack.track("encoding_com", media_id)
    encoding.advance(media_id, 2)
    stack.poll("encoding_com")
    time.sleep(0.2)
    stack.poll("encoding_com")  # nothing changed for longer than STALL_MINUTES
    (original,) = [n["message"] for n in stack.messages()]
    assert original["event"] == "job.stalled"

    assert run("events", "replay", "encoding_com", media_id)[0] == 0
    replayed = stack.messages()[-1]["message"]
    assert replayed["replay"] is True
    for same in ("event_id", "event", "status", "previous_status", "occurred_at"):
        assert replayed[same] == original[same]
