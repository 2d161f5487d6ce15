"""job.stalled with a real provider: a job the provider keeps showing unchanged (or keeps failing to find)
for longer than STALL_MINUTES publishes one stall event per attempt; an outage is not a stall."""

from __future__ import annotations

import time

import pytest

from local.simulators.encoding_com import EncodingComSimulator

STALL_SECONDS = 0.3


@pytest.fixture
def encoding(stack):
    with EncodingComSimulator(user_id="u", user_key="k") as simulator:
        stack.configure(
            "encoding_com",
            simulator.url,
            {"user_id": "u", "user_key": "k"},
            env={"STALL_MINUTES": str(STALL_SECONDS / 60)},
        )
        yield stack, simulator


def polls_over_the_threshold(stack, rounds: int = 3) -> None:
    for _ in range(rounds):
        stack.poll("encoding_com")
        time.sleep(STALL_SECONDS * 1.2)


def test_a_job_stuck_in_processing_stalls_once(encoding):
    stack, simulator = encoding
    media_id = simulator.add_job()
    stack.track("encoding_com", media_id)
    simulator.advance(media_id, 5)  # Processing, and it stays there
    polls_over_the_threshold(stack)
    assert stack.event_ids() == [f"encoding_com#{media_id}#1#STALLED"]
    # It finishes after all: the completion is published as well
    simulator.advance(media_id, 20)
    stack.poll("encoding_com")
    assert stack.event_ids()[-1] == f"encoding_com#{media_id}#1#COMPLETE"


def test_a_job_the_provider_keeps_failing_to_find_stalls_once(encoding):
    stack, simulator = encoding
    assert stack.track("encoding_com", "424242") == 201  # a media id encoding.com does not know
    polls_over_the_threshold(stack)
    assert stack.event_ids() == ["encoding_com#424242#1#STALLED"]


def test_an_outage_is_not_a_stall(encoding):
    stack, simulator = encoding
    media_id = simulator.add_job()
    stack.track("encoding_com", media_id)
    stack.poll("encoding_com")
    simulator.fail_next = [503] * 100
    polls_over_the_threshold(stack)
    assert stack.event_ids() == []
