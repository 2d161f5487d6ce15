"""OAuth 2.0 client credentials: the one Bearer-token client (TransparentEdge, Xvid).

- A token is cached module-level per (token URL, client id), so a warm Lambda reuses it across invocations,
  and renewed shortly before its `expires_in` runs out.
- A GET the API answers 401 (token revoked or expired early) asks for a new token once and is sent once more.
- `get_json` is the one checked read: errors name what was read, never the URL (its path may hold an account id).
- One token request at a time, however many threads read in parallel: threads refused with the same token
  share the one new token the first of them fetched.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from transcode_core import http
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderError, ProviderUnavailable
from transcode_core.observability import logger, mask_values

RENEW_MARGIN_SECONDS = 60.0  # renew this long before expiry, so a token does not die in the middle of a poll
RENEW_MARGIN_SHARE = 0.1  # ... but never more than this share of a short-lived token's life
DEFAULT_LIFETIME_SECONDS = 3600.0  # when the token answer gives no usable expires_in (a 401 renews it anyway)
# A 401 that a fresh token did not cure: the client lacks access to what it read, the token is not to blame.
_REFUSED_AGAIN = (
    "a fresh access token was refused (HTTP 401): the API refused the token it was sent, then refused a fresh "
    "access token"
)
_OAUTH_ERROR_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # e.g. invalid_client; anything else is not repeated

_clock = time.monotonic  # token expiry clock (tests move it)


@dataclass(frozen=True)
class _CachedToken:
    value: str
    renew_at: float  # _clock() value from which a new token is requested


_tokens: dict[tuple[str, str], _CachedToken] = {}  # (token URL, client id) -> token
_tokens_lock = threading.Lock()


def clear_token_cache() -> None:
    with _tokens_lock:
        _tokens.clear()


class ClientCredentialsToken:
    """The access token of one client at one token endpoint, and GET requests that carry it."""

    def __init__(
        self,
        provider: str,
        session: requests.Session,
        token_url: str,
        client_id: str,
        client_secret: str,
        deadline: Deadline | None = None,
    ) -> None:
        self.provider = provider
        self.session = session
        self.deadline = deadline  # every call, the token request too, stays within it
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._key = (token_url, client_id)

    def value(self, stale: str | None = None) -> str:
        """The cached token, or a new one when it is about to expire or is `stale` (refused with a 401).
        Raises ProviderError when the endpoint refuses the credentials, ProviderUnavailable when it is down."""
        with _tokens_lock:
            cached = _tokens.get(self._key)
            if cached and cached.value != stale and _clock() < cached.renew_at:
                return cached.value
            fresh = self._request()
            _tokens[self._key] = fresh
            return fresh.value

    def bearer_get(self, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """A GET (through `http.send`) with the token; on a 401, once more with a new token. The caller checks
        the answer: a 401 now means a fresh token was refused too."""
        token = self.value()
        response = self._get(url, token, headers, kwargs)
        if response.status_code == 401:
            response = self._get(url, self.value(stale=token), headers, kwargs)
        return response

    def get_json(
        self,
        url: str,
        what: str,
        *,
        job_ids: tuple[str, ...] = (),
        reasons: Mapping[int, str] | None = None,
        **kwargs: Any,
    ) -> object:
        """The JSON body of a `bearer_get` answered 200. Every error names `what` (e.g. "order 7"), never the
        URL, whose path may hold an account id; `reasons` words other statuses (e.g. {404: "not found"})."""
        try:
            response = self.bearer_get(url, **kwargs)
        except ProviderUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, http.RetryWaitTooLong):
                reason = f"deferred, {cause}"
            elif cause is None and "deferred" in exc.message:  # the Deadline refused to start the call
                reason = "deferred, the invocation's time is used up"
            else:
                reason = f"unreachable ({type(cause).__name__})" if cause else "HTTP 429/5xx after retries"
            raise ProviderUnavailable(self.provider, f"{what}: {reason}", job_ids=job_ids) from exc
        status = response.status_code
        if status == 401:
            raise ProviderError(self.provider, f"{what}: {_REFUSED_AGAIN}", job_ids=job_ids)
        if status != 200:
            reason = (reasons or {}).get(status)
            message = f"{reason} (HTTP {status})" if reason else f"HTTP {status}"
            raise ProviderError(self.provider, f"{what}: {message}", job_ids=job_ids)
        try:
            return http.json_body(self.provider, response)
        except ProviderError as exc:
            raise ProviderError(self.provider, f"{what}: {exc.message}", job_ids=job_ids) from None

    def _get(self, url: str, token: str, headers: dict[str, str] | None, kwargs: dict[str, Any]) -> requests.Response:
        headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        return http.send(self.provider, self.session, "GET", url, headers=headers, deadline=self.deadline, **kwargs)

    def _request(self) -> _CachedToken:
        form = {"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._client_secret}
        response = http.send(
            self.provider,
            self.session,
            "POST",
            self.token_url,
            data=form,
            headers={"Accept": "application/json"},
            deadline=self.deadline,
        )
        if not response.ok:
            raise ProviderError(
                self.provider,
                f"token request refused (HTTP {response.status_code}{_error_code(response)}): the token endpoint "
                "refused the client credentials, check client_id and client_secret in the secret",
            )
        document = http.json_body(self.provider, response)
        value = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(value, str) or not value:
            raise ProviderError(self.provider, "the token endpoint answered without an access_token")
        mask_values([value])  # a bearer token is a credential: never in a log line, whatever logs it
        lifetime = _lifetime(document.get("expires_in"))
        logger.info("access token obtained", extra={"provider": self.provider, "expires_in": lifetime})
        return _CachedToken(value, _clock() + lifetime - min(RENEW_MARGIN_SECONDS, lifetime * RENEW_MARGIN_SHARE))


def _lifetime(expires_in: Any) -> float:
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME_SECONDS
    return seconds if seconds > 0 and math.isfinite(seconds) else DEFAULT_LIFETIME_SECONDS


def _error_code(response: requests.Response) -> str:
    """The OAuth `error` code of a refused token request (e.g. invalid_client), never the whole body."""
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f", {code}" if isinstance(code, str) and _OAUTH_ERROR_CODE.fullmatch(code) else ""
