"""When the fan-out consumer may apply a change the poll decided: the job's state must still be the one decided
against; outbox bookkeeping (which raises the version, never `updated_at`) does not hold it back."""

from __future__ import annotations

import pytest

from transcode_core.fanout import MESSAGE_BYTES, FanOutBatch, read_message, still_current

DECIDED = {"version": 4, "updated_at": "2026-12-03T10:00:00.000001Z"}


@pytest.mark.parametrize(
    ("item", "decided_against", "current"),
    [
        ({"version": 4, "updated_at": DECIDED["updated_at"]}, DECIDED, True),  # untouched since
        ({"version": 6, "updated_at": DECIDED["updated_at"]}, DECIDED, True),  # claimed and cleared since
        ({"version": 5, "updated_at": "2026-12-03T10:00:01Z"}, DECIDED, False),  # another run changed it
        ({"version": 6, "updated_at": DECIDED["updated_at"]}, {"version": 4}, False),  # a message without updated_at
        (None, {"version": None, "updated_at": None}, True),  # a new job, still new
        ({"version": 1, "updated_at": "2026-12-03T10:00:01Z"}, {}, False),  # a new job someone else wrote first
        (None, DECIDED, False),  # gone
    ],
)
def test_a_change_is_applied_only_to_the_state_it_was_decided_against(item, decided_against, current):
    assert still_current(item, decided_against) is current


def test_orders_to_read_are_sent_in_messages_sqs_takes():
    sent: list[str] = []
    batch = FanOutBatch("transparent_edge", 1000, sent.append)
    # 600 listing entries of about 1 KB each: over SQS's 256 KiB in one message of batch_size 1000
    batch.add_reads({f"order-{n}": {"status": "Processing", "note": "x" * 1000} for n in range(600)})
    assert len(sent) > 1 and all(len(body.encode()) <= MESSAGE_BYTES + 200 for body in sent)
    assert sum(len(read_message(body, "transparent_edge").reads) for body in sent) == 600 == batch.sent
