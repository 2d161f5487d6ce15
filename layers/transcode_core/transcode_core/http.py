"""The one HTTP session factory: retries with backoff on 429/5xx and connection errors, timeouts."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from transcode_core import PROJECT, __version__
from transcode_core.errors import ProviderError, ProviderUnavailable

USER_AGENT = f"{PROJECT}/{__version__} (+https://github.com/transcode-status)"
RETRY_STATUSES = (429, 500, 502, 503, 504)


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
) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # provider status calls are reads, even the ones sent as POST (encoding.com)
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back and the caller turns it into a ProviderError
    )
    session = TimeoutSession((connect_timeout, read_timeout))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=pool_size)  # >= concurrent reads, or urllib3 drops
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def send(provider: str, session: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
    """One provider call: connection failures and 5xx/429 after retries become ProviderUnavailable."""
    try:
        response = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise ProviderUnavailable(provider, f"{method} {_path(url)} failed: {type(exc).__name__}") from exc
    if response.status_code in RETRY_STATUSES:
        raise ProviderUnavailable(provider, f"{method} {_path(url)} answered HTTP {response.status_code}")
    return response


def json_body(provider: str, response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(provider, f"HTTP {response.status_code}: the body is not JSON") from exc


def _path(url: str) -> str:
    # Never log the query: some providers put credentials in it.
    return url.split("?", 1)[0]
