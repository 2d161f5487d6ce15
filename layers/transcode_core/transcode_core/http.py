"""The one HTTP session factory: retries with backoff on 429/5xx and connection errors, timeouts; and `send`,
the one provider call, which keeps every try (the first and each retry), every backoff and Retry-After within
the invocation's Deadline."""

from __future__ import annotations

import math
from contextvars import ContextVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from transcode_core import PROJECT, __version__
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderError, ProviderUnavailable
from transcode_core.observability import tracer

tracer.patch(("requests",))  # every provider call an X-Ray subsegment (when tracing is on)

USER_AGENT = f"{PROJECT}/{__version__} (+https://github.com/transcode-status)"
RETRY_STATUSES = (429, 500, 502, 503, 504)
DEFAULT_MAX_RETRY_WAIT = 10.0

# The Deadline of the call `send` is making in this thread: the session (and its Retry) is shared by every
# invocation of a warm Lambda, the budget is not.
_call_deadline: ContextVar[Deadline | None] = ContextVar("call_deadline", default=None)


class RetryWaitTooLong(Exception):
    """A retry would wait (Retry-After or backoff) past the time left or the longest wait allowed, or no time
    is left for another try."""


class DeadlineTimeout(Timeout):
    """(connect, read) timeouts that urllib3 recomputes for each try: a try gets at most the time its Deadline
    has left when it starts, so a read-timeout retry never runs with the whole read timeout again."""

    def __init__(self, connect: float | None, read: float | None, deadline: Deadline) -> None:
        super().__init__(connect=connect, read=read)
        self.deadline = deadline

    def clone(self) -> Timeout:
        # urllib3 clones the timeout at the start of every try (retries included): the try's total is the time
        # left then. Never 0, which urllib3 refuses: a try with no time left fails at once and is not retried.
        left = max(self.deadline.remaining(), 0.001)
        return Timeout(connect=self._connect, read=self._read, total=left)


class BudgetRetry(Retry):
    """urllib3's Retry, whose waits never outlast the call's Deadline nor `max_wait` seconds: a longer
    Retry-After (or backoff) ends the call at once instead of sleeping through the invocation."""

    def __init__(self, *args, max_wait: float = DEFAULT_MAX_RETRY_WAIT, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait

    def new(self, **kw):  # type: ignore[no-untyped-def]
        retry = super().new(**kw)
        retry.max_wait = self.max_wait
        return retry

    def sleep_for_retry(self, response) -> bool:  # type: ignore[no-untyped-def]
        retry_after = self.get_retry_after(response)
        if retry_after:
            self._check_wait(retry_after, "Retry-After")
        return super().sleep_for_retry(response)

    def _sleep_backoff(self) -> None:
        self._check_wait(self.get_backoff_time(), "backoff")
        super()._sleep_backoff()

    def increment(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        retry = super().increment(*args, **kwargs)  # raises when the retries are used up
        deadline = _call_deadline.get()
        if deadline is not None and deadline.expired():
            raise RetryWaitTooLong("no time left for another try")
        return retry

    def _check_wait(self, seconds: float, what: str) -> None:
        deadline = _call_deadline.get()
        remaining = deadline.remaining() if deadline else math.inf
        if seconds > self.max_wait or seconds >= remaining:
            left = "no limit" if math.isinf(remaining) else f"{remaining:.1f} s left"
            raise RetryWaitTooLong(f"{what} of {seconds:g} s is longer than allowed ({self.max_wait:g} s max, {left})")


class TimeoutSession(requests.Session):
    """A session whose requests always carry (connect, read) timeouts unless the call gives its own."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def build_session(
    *,
    retries: int = 3,
    backoff: float = 0.5,
    connect_timeout: float = 3.05,
    read_timeout: float = 20.0,
    pool_size: int = 16,
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
) -> requests.Session:
    retry = BudgetRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # provider status calls are reads, even the ones sent as POST (encoding.com)
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back and the caller turns it into a ProviderError
        max_wait=max_retry_wait,
    )
    session = TimeoutSession((connect_timeout, read_timeout))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=pool_size)  # >= concurrent reads, or urllib3 drops
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def send(
    provider: str,
    session: requests.Session,
    method: str,
    url: str,
    *,
    deadline: Deadline | None = None,
    **kwargs,
) -> requests.Response:
    """One provider call: connection failures and 5xx/429 after retries become ProviderUnavailable. With a
    `deadline`, the call does not start when no time is left, each try's timeouts are at most the time left
    when it starts, and a retry that would wait past it (a long Retry-After) or find no time left ends it: all
    are deferrals (ProviderUnavailable)."""
    deadline = deadline or Deadline.none()
    what = f"{method} {_path(url)}"
    deadline.check(provider, what)
    if not math.isinf(deadline.remaining()):
        configured = kwargs.get("timeout") or getattr(session, "timeout", None)
        kwargs["timeout"] = _within(configured, deadline)
    token = _call_deadline.set(deadline)
    try:
        response = session.request(method, url, **kwargs)
    except RetryWaitTooLong as exc:
        raise ProviderUnavailable(provider, f"{what} deferred: {exc}") from exc
    except requests.RequestException as exc:
        raise ProviderUnavailable(provider, f"{what} failed: {type(exc).__name__}") from exc
    finally:
        _call_deadline.reset(token)
    if response.status_code in RETRY_STATUSES:
        raise ProviderUnavailable(provider, f"{what} answered HTTP {response.status_code}")
    return response


def _within(timeout: float | tuple[float, float] | None, deadline: Deadline) -> Timeout:
    """The configured (connect, read) timeouts (None: none), each try of which also ends by the deadline."""
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return DeadlineTimeout(connect, read, deadline)


def json_body(provider: str, response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(provider, f"HTTP {response.status_code}: the body is not JSON") from exc


def _path(url: str) -> str:
    # Never log the query: some providers put credentials in it.
    return url.split("?", 1)[0]
