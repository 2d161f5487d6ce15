"""The rules of change (CONTRACT), as pure functions: what a user sees in the table and on the topic."""

import pytest

from transcode_core.model import Destination, JobError, Kind, Output, Snapshot, clamp_progress, decide
from transcode_core.status import Status, map_status, status_words


def snap(status: Status, word: str | None = None, **fields) -> Snapshot:
    return Snapshot(provider="p", job_id="1", status=status, provider_status=word or status.value.title(), **fields)


def stored(status: Status, word: str | None = None, **fields) -> dict:
    return {
        "provider": "p",
        "job_id": "1",
        "status": status.value,
        "provider_status": word or status.value.title(),
        "version": 3,
        "attempt": 1,
        **fields,
    }


def test_first_sight_is_new_and_publishes_only_when_terminal():
    assert decide(None, snap(Status.PROCESSING)).kind is Kind.NEW
    assert decide(None, snap(Status.PROCESSING)).publishes is False
    assert decide(None, snap(Status.COMPLETE)).publishes is True


def test_forward_move_publishes_on_terminal_only():
    change = decide(stored(Status.QUEUED), snap(Status.PROCESSING, progress=10))
    assert (change.kind, change.publishes, change.fields["status"]) == (Kind.ADVANCE, False, "PROCESSING")
    done = decide(stored(Status.UPLOADING), snap(Status.COMPLETE))
    assert (done.kind, done.publishes, done.previous_status) == (Kind.ADVANCE, True, Status.UPLOADING)


def test_rule1_earlier_status_is_stale():
    assert decide(stored(Status.PROCESSING), snap(Status.QUEUED)) is None
    assert decide(stored(Status.UPLOADING), snap(Status.DOWNLOADING)) is None


def test_rule2_terminal_stays_without_new_attempt():
    finished = stored(Status.COMPLETE, started_at="2026-11-25T10:00:00Z")
    assert decide(finished, snap(Status.PROCESSING, started_at="2026-11-25T10:00:00Z")) is None
    assert decide(finished, snap(Status.ERROR, started_at="2026-11-25T10:00:00Z")) is None
    assert decide(finished, snap(Status.PROCESSING)) is None  # no start time: no proof of a new run


def test_rule2_later_start_or_requeue_is_a_new_attempt():
    finished = stored(
        Status.ERROR, started_at="2026-11-25T10:00:00Z", error={"message": "boom"}, finished_at="2026-11-25T10:05:00Z"
    )
    change = decide(finished, snap(Status.PROCESSING, started_at="2026-11-25T11:00:00Z"))
    assert change.kind is Kind.NEW_ATTEMPT and not change.publishes
    assert "error" not in change.fields and "finished_at" not in change.fields
    requeued = decide(finished, snap(Status.COMPLETE, requeued=True))
    assert requeued.kind is Kind.NEW_ATTEMPT and requeued.publishes


def test_rule3_same_status_higher_progress_updates_without_event():
    change = decide(stored(Status.PROCESSING, progress=10), snap(Status.PROCESSING, progress=40))
    assert (change.kind, change.fields["progress"], change.publishes) == (Kind.PROGRESS, 40, False)


def test_rule3_lower_progress_within_a_status_is_ignored():
    assert decide(stored(Status.PROCESSING, progress=40), snap(Status.PROCESSING, progress=30)) is None


def test_rule4_identical_update_writes_nothing():
    item = stored(Status.PROCESSING, progress=40, source_url="https://example.com/a.mp4")
    assert decide(item, snap(Status.PROCESSING, progress=40, source_url="https://example.com/a.mp4")) is None


def test_rule5_unknown_word_keeps_status_records_word_never_publishes():
    change = decide(stored(Status.PROCESSING), snap(Status.UNKNOWN, "Paused"))
    assert change.kind is Kind.UNKNOWN_WORD
    assert (change.fields["status"], change.fields["provider_status"], change.publishes) == (
        "PROCESSING",
        "Paused",
        False,
    )
    assert decide(stored(Status.PROCESSING, "Paused"), snap(Status.UNKNOWN, "Paused")) is None
    assert decide(stored(Status.COMPLETE), snap(Status.UNKNOWN, "Archived")).publishes is False


def test_same_terminal_status_with_more_detail_refreshes_silently():
    change = decide(
        stored(Status.COMPLETE),
        snap(Status.COMPLETE, outputs=(Output(id="o1", destinations=(Destination("s3://b/k", "Saved"),)),)),
    )
    assert change.kind is Kind.REFRESH and not change.publishes
    assert change.fields["outputs"] == [{"id": "o1", "destinations": [{"url": "s3://b/k", "status": "Saved"}]}]


def test_error_details_are_stored():
    change = decide(stored(Status.PROCESSING), snap(Status.ERROR, error=JobError("disk full", "E42")))
    assert change.fields["error"] == {"message": "disk full", "code": "E42"}


def test_map_status_is_case_and_space_insensitive():
    words = status_words({Status.QUEUED: ("Ready to process",), Status.COMPLETE: ("Finished",)})
    assert map_status("ready  TO process", words) is Status.QUEUED
    assert map_status("FINISHED", words) is Status.COMPLETE
    assert map_status("Paused", words) is Status.UNKNOWN
    assert map_status(None, words) is Status.UNKNOWN


@pytest.mark.parametrize(
    ("raw", "expected"), [("50.0", 50), ("12.345", 12.35), (150, 100), (-3, 0), ("n/a", None), (None, None)]
)
def test_progress_is_a_number_in_0_to_100(raw, expected):
    assert clamp_progress(raw) == expected
