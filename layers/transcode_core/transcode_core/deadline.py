"""How long the current invocation may still work: one object handed from the Lambda edge to the pipeline,
the adapters and the HTTP calls, so that a poll or a webhook stops in time and leaves the rest to the next
run instead of being cut off half-way by Lambda's (or the HTTP API's) timeout."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from transcode_core.errors import ProviderUnavailable

# An HTTP API integration is cut off at 30 s whatever the function's own timeout is.
HTTP_API_SECONDS = 29.0
# Kept back from the end of the invocation to write, publish and answer after the last provider call.
DEFAULT_MARGIN_SECONDS = 5.0


class Deadline:
    """A point in (monotonic) time after which no new work starts. `Deadline.none()` never expires."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ends_at = math.inf if seconds is None else clock() + max(0.0, seconds)

    @classmethod
    def none(cls) -> Deadline:
        return cls(None)

    @classmethod
    def from_context(
        cls, context: Any, *, margin: float = DEFAULT_MARGIN_SECONDS, cap: float | None = None
    ) -> Deadline:
        """The invocation's remaining time (Lambda context) less `margin`, at most `cap` seconds."""
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining_ms() / 1000.0 - margin if callable(remaining_ms) else None
        if cap is not None:
            seconds = cap - margin if seconds is None else min(seconds, cap - margin)
        return cls(seconds)

    def remaining(self) -> float:
        """Seconds left (math.inf without a limit, never negative)."""
        return max(0.0, self._ends_at - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def allows(self, seconds: float) -> bool:
        """Whether `seconds` of work still fit."""
        return self.remaining() >= seconds

    def check(self, provider: str, what: str) -> None:
        """Raises ProviderUnavailable (a deferral: the job stays as it was) when no time is left for `what`."""
        if self.expired():
            raise ProviderUnavailable(provider, f"{what}: deferred, the invocation's time is used up")
