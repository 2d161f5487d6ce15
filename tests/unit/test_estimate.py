"""The estimate rule (docs/events.md "When a job will end") on its own: which readings start the line, which
end it, and when there is no estimate at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from transcode_core.estimate import estimate_fields
from transcode_core.providers.values import seconds

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def job(progress=None, status="PROCESSING", attempt=1, **extra):
    item = {"status": status, "attempt": attempt, **extra}
    if progress is not None:
        item["progress"] = progress
    return item


def read(stored, item, minutes, **kwargs):
    """The fields a write `minutes` after T0 gives `item`, as it replaces `stored`."""
    return estimate_fields(stored, item, T0 + timedelta(minutes=minutes), **kwargs)


def after(stored, item, minutes, **kwargs):
    """The item as that write leaves it."""
    return {**item, **read(stored, item, minutes, **kwargs)}


def test_two_readings_draw_the_line_to_100_percent():
    first = after(None, job(20), 0)
    assert "estimated_finish_at" not in first  # one reading: no line
    second = read(first, job(40), 10)  # 20% in 10 minutes: 60% left takes 30 more
    assert second["estimated_finish_at"] == "2026-12-01T12:40:00Z" and second["estimate_basis"] == "progress"
    third = read({**first, **second, "progress": 40}, job(50), 20)  # from the first reading: 30% in 20 minutes
    assert third["estimated_finish_at"] == "2026-12-01T12:53:20Z"


def test_progress_that_goes_back_starts_the_line_again():
    first = after(None, job(20), 0)
    second = after(first, job(60), 10)
    restarted = read(second, job(10, status="UPLOADING"), 20)  # a new stage counting from 0
    assert "estimated_finish_at" not in restarted
    assert restarted["estimate_from"] == {"at": "2026-12-01T12:20:00Z", "progress": 10}


def test_a_new_attempt_does_not_inherit_the_old_line():
    first = after(None, job(20), 0)
    rerun = read(first, job(50, attempt=2), 10)
    assert "estimated_finish_at" not in rerun and rerun["estimate_from"]["progress"] == 50


def test_no_progress_means_no_estimate_and_no_reading():
    first = after(None, job(20), 0)
    assert read(first, job(None, status="UPLOADING"), 10) == {}


def test_a_terminal_job_has_no_estimate_even_with_a_provider_estimate():
    first = after(None, job(20), 0)
    second = after(first, job(60), 10)
    assert read(second, job(100, status="COMPLETE"), 20, time_left_seconds=30) == {}


def test_the_provider_estimate_wins_and_a_zero_or_absent_one_does_not():
    first = after(None, job(20), 0)
    provider = read(first, job(40), 10, time_left_seconds=90)
    assert provider["estimated_finish_at"] == "2026-12-01T12:11:30Z" and provider["estimate_basis"] == "provider"
    assert read(first, job(40), 10, time_left_seconds=0)["estimate_basis"] == "progress"
    assert read(None, job(None), 0, time_left_seconds=90)["estimate_basis"] == "provider"


def test_a_stall_keeps_what_the_last_reading_said():
    second = after(after(None, job(20), 0), job(40), 10)
    stored = {**second, "progress": 40}
    assert read(stored, job(40), 90, reading=False) == {
        key: second[key] for key in ("estimated_finish_at", "estimate_basis", "estimate_from")
    }


def test_a_line_too_flat_to_say_anything_gives_no_estimate():
    first = after(None, job(20), 0)
    assert "estimated_finish_at" not in read(first, job(20.01), 60)  # 0.01% an hour: 9 years to go


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90", 90.0), ("90.5", 90.5), ("1:30", 90.0), ("0:01:30", 90.0), ("", None), ("-5", None), ("soon", None)],
)
def test_a_time_left_is_read_as_seconds(text, expected):
    assert seconds(text) == expected


def test_a_fanned_out_snapshot_keeps_the_provider_estimate():
    from transcode_core.fanout import messages, read_message
    from transcode_core.model import Snapshot
    from transcode_core.status import Status

    snapshot = Snapshot("encoding_com", "31000001", Status.PROCESSING, "Processing", 50, time_left_seconds=240.0)
    ((read, _),) = read_message(messages("encoding_com", [(snapshot, None)], 10)[0], "encoding_com").jobs
    assert read.time_left_seconds == 240.0
