"""The invocation's time budget that polls, webhooks and provider calls share."""

import math

import pytest

from transcode_core import aws
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_a_deadline_runs_down_with_the_clock_and_then_defers_work():
    clock = Clock()
    deadline = Deadline(10, clock=clock)
    assert deadline.remaining() == 10 and deadline.allows(10) and not deadline.expired()
    clock.now += 7
    assert deadline.remaining() == 3 and not deadline.allows(4)
    clock.now += 5
    assert deadline.remaining() == 0 and deadline.expired()
    with pytest.raises(ProviderUnavailable, match="deferred"):
        deadline.check("xvid", "GET jobs")


def test_no_deadline_never_expires():
    assert Deadline.none().remaining() == math.inf
    Deadline.none().check("xvid", "GET jobs")


def test_from_context_keeps_a_margin_and_honours_a_cap():
    assert 114 < Deadline.from_context(Context(120_000), margin=5).remaining() <= 115
    assert 23.9 < Deadline.from_context(Context(120_000), margin=5, cap=29).remaining() <= 24.0001
    assert 23.9 < Deadline.from_context(object(), margin=5, cap=29).remaining() <= 24.0001
    assert Deadline.from_context(object()).remaining() == math.inf
    assert Deadline.from_context(Context(1_000), margin=5).expired()


class Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.mark.parametrize(
    ("left", "attempts", "answer", "error", "refused"),
    [
        (3.9, 1, Answer(503), None, True),  # the next try (3 s) after up to 1 s of backoff might not end in time
        (4.1, 1, Answer(503), None, False),
        (6.9, 3, None, TimeoutError(), True),  # the third try's backoff is up to 4 s
        (1.0, 1, Answer(200), None, False),  # a success is never refused: nothing is retried
        (1.0, aws.MAX_ATTEMPTS, Answer(500), None, False),  # the SDK gives up on its own: its own error stands
    ],
)
def test_a_failed_aws_try_is_not_retried_when_its_backoff_and_next_try_might_not_end_in_time(
    left, attempts, answer, error, refused
):
    clock = Clock()
    budget = aws.CallBudget()
    budget.begin(Deadline(left, clock=clock))
    response = (answer, {}) if answer else None
    if refused:
        with pytest.raises(aws.OutOfTime):
            budget.before_backoff(attempts=attempts, response=response, caught_exception=error)
    else:
        budget.before_backoff(attempts=attempts, response=response, caught_exception=error)
