"""The HTTP plumbing every provider simulator shares: a threaded server on 127.0.0.1, a request log,
and JSON/text answers. Subclasses implement `handle()` with the provider's API."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class SimRequest:
    method: str
    path: str  # without the query
    query: dict[str, str]  # last value of each parameter
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class SimResponse:
    status: int = 200
    body: Any = b""  # bytes, str, or anything JSON-serializable
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body).encode(), "application/json"


def json_response(body: Any, status: int = 200) -> SimResponse:
    return SimResponse(status, body)


class Simulator:
    """Start with `start()` (or as a context manager); `url` is the base URL to configure the client with."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[SimRequest] = []
        self.fail_next: list[int] = []  # HTTP statuses to answer the next requests with (fault injection)
        self.canned: dict[str, list[SimResponse]] = {}  # answers to give verbatim, in order, per key
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- to implement -------------------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Simulator:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = SimRequest(
                    method=self.command,
                    path=parts.path,
                    query={key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()},
                    raw_query=parts.query,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = simulator.dispatch(request)
                payload, content_type = response.encoded()
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    if name.lower() != "content-type":
                        self.send_header(name, value)
                self.end_headers()
                # The client may have given up waiting (a test of its timeouts): nobody is left to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "simulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    # --- requests -----------------------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        with self.lock:
            self.requests.append(request)
            if self.fail_next:
                return SimResponse(self.fail_next.pop(0), {"error": "injected fault"})
            try:
                return self.handle(request)
            except Exception as exc:  # a simulator bug must show up as a 500, not a hung client
                return SimResponse(500, {"error": f"simulator: {type(exc).__name__}: {exc}"})

    def answer_next(self, key: str, body: Any, status: int = 200) -> None:
        """The next request the simulator files under `key` gets this answer (what a key names, a kind of call
        or a path, and when in the request's checks it applies, is each simulator's to say)."""
        with self.lock:
            self.canned.setdefault(key, []).append(SimResponse(status, body))

    def canned_answer(self, key: str) -> SimResponse | None:
        """The oldest answer left for `key` (and forgets it), if any."""
        with self.lock:
            queue = self.canned.get(key)
            return queue.pop(0) if queue else None

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        with self.lock:
            return sum(
                1
                for request in self.requests
                if (method is None or request.method == method) and request.path.startswith(path_prefix)
            )

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()


class TokenIssuer:
    """OAuth2 client credentials, as the token-based providers grant them: `grant()` answers a token request,
    `accepts()` checks a request's Bearer token, `expire()` revokes every token issued so far. Expiry is on
    `now_ms` (milliseconds), so that a simulator with its own clock can pass it in."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        ttl: int,
        *,
        now_ms: Callable[[], float] = lambda: time.monotonic() * 1000,
        token_type: str = "Bearer",
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl  # seconds, sent as expires_in
        self.now_ms = now_ms
        self.token_type = token_type
        self.extras = dict(extras or {})  # more fields of the token answer (e.g. scope)
        self.tokens: dict[str, float] = {}  # access token -> expiry on now_ms

    def grant(self, request: SimRequest) -> SimResponse:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client"}, 401)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = self.now_ms() + self.ttl * 1000
        return json_response(
            {"access_token": token, "token_type": self.token_type, "expires_in": self.ttl, **self.extras}
        )

    def accepts(self, request: SimRequest) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and self.now_ms() < expiry

    def expire(self) -> None:
        self.tokens.clear()


class Lifecycle:
    """A job's scripted path through the provider's status words; `advance()` moves one step."""

    def __init__(self, steps: list[str]) -> None:
        if not steps:
            raise ValueError("a lifecycle needs at least one status")
        self.steps = list(steps)
        self.index = 0

    @property
    def status(self) -> str:
        return self.steps[self.index]

    @property
    def done(self) -> bool:
        return self.index == len(self.steps) - 1

    @property
    def fraction(self) -> float:
        return self.index / max(len(self.steps) - 1, 1)

    def advance(self, steps: int = 1) -> str:
        self.index = min(self.index + steps, len(self.steps) - 1)
        return self.status

    def restart(self, steps: list[str] | None = None) -> None:
        if steps:
            self.steps = list(steps)
        self.index = 0
