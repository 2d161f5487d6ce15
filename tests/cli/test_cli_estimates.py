"""The estimated finish in `jobs list`, `jobs show` and `jobs watch`: shown for running jobs that have one,
never for finished ones, fitting an 80-column terminal; a list whose estimates cannot be read is still a
list."""

from __future__ import annotations

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.cli.test_cli import api, as_json, run, sims  # noqa: F401 - fixtures shared with the CLI's main tests
from tests.cli.test_cli_terminal import assert_fits, column_text, terminal  # noqa: F401 - the same


def running_and_finished(stack, sims, run):  # noqa: F811 - the fixture's name
    """An encoding.com media in Processing whose time_left says 20 minutes, and a finished Xvid job."""
    xvid, encoding = sims
    encoding.step_seconds = 300
    media_id = encoding.add_job()
    assert run("jobs", "track", "encoding_com", media_id)[0] == 0
    encoding.advance(media_id, 4)  # 4 steps of 300 s left
    stack.poll("encoding_com")
    done = xvid.add_job()
    xvid.finish(done)
    stack.poll("xvid")
    return media_id, done


def test_jobs_list_shows_when_running_jobs_end_and_json_carries_the_fields(stack, sims, run):  # noqa: F811
    media_id, done = running_and_finished(stack, sims, run)
    listed = {job["job_id"]: job for job in as_json(run("jobs", "list", "--json")[1])["jobs"]}
    assert listed[media_id]["estimate_basis"] == "provider" and listed[media_id]["estimated_finish_at"]
    assert "estimated_finish_at" not in listed[done] and "estimate_from" not in listed[media_id]

    code, out, _ = run("jobs", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if media_id in line)
    assert "ends" in out and ("in 20m" in row or "in 19m" in row), out
    finished_only = run("jobs", "list", "--provider", "xvid")[1]
    assert "ends" not in finished_only  # no job with an estimate: no column of dashes


def test_jobs_show_and_watch_say_when_the_job_ends_and_from_what(stack, sims, run):  # noqa: F811
    media_id, done = running_and_finished(stack, sims, run)
    out = run("jobs", "show", "encoding_com", media_id)[1]
    line = next(line for line in out.splitlines() if line.startswith("expected end"))
    assert "the provider's own estimate" in line and ("in 20m" in line or "in 19m" in line)
    finished = run("jobs", "show", "xvid", done)[1]
    assert next(line for line in finished.splitlines() if line.startswith("expected end")).split() == [
        "expected",
        "end",
        "-",
    ]
    watched = run("jobs", "watch", "--max-iterations", "1")[1]
    assert "ends" in watched and ("in 20m" in watched or "in 19m" in watched)


@pytest.mark.parametrize("columns", (80, 120))
def test_the_ends_column_fits_the_terminal_and_never_cuts_a_job_id(stack, sims, terminal, columns):  # noqa: F811
    media_id, done = running_and_finished(stack, sims, lambda *args: terminal(columns, *args))
    watch = ("jobs", "watch", "--max-iterations", "1")
    commands = (("jobs", "list"), watch, ("jobs", "show", "encoding_com", media_id))
    for args in commands:
        code, out, _ = terminal(columns, *args)
        assert code == 0
        assert_fits(out, columns)
    out = terminal(columns, "jobs", "list")[1]
    assert media_id in column_text(out, "job") and done in column_text(out, "job")


def test_a_list_whose_estimates_cannot_be_read_is_shown_without_them(stack, sims, run, monkeypatch):  # noqa: F811
    media_id, _ = running_and_finished(stack, sims, run)
    original = BaseClient._make_api_call

    def refuse_batch_reads(self, operation_name, params):
        if operation_name == "BatchGetItem":  # a policy that allows Query only
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation_name)
        return original(self, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse_batch_reads)
    code, out, err = run("jobs", "list")
    assert code == 0 and media_id in out and "ends" not in out
    assert "estimated finish times not shown" in err and "AccessDeniedException" in err


def test_events_tail_says_when_a_stalled_job_was_expected_to_finish():
    from transcode_core.notify import build_event
    from transcode_status_cli.render import event_line

    job = {
        "provider": "xvid",
        "job_id": "559cbbec14ea67a7cad60001",
        "status": "PROCESSING",
        "attempt": 1,
        "version": 3,
        "estimated_finish_at": "2026-12-01T12:40:00Z",
        "estimate_basis": "progress",
    }
    stalled = build_event(job, "PROCESSING", "2026-12-01T13:10:00Z", stalled=True)
    assert event_line(stalled, {}).endswith("attempt 1  expected to finish 2026-12-01T12:40:00Z")
    assert "expected" not in event_line(build_event({**job, "status": "COMPLETE"}, "PROCESSING", "t"), {})
