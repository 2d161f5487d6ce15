"""Xvid MediaHub API v1 simulator: OAuth client-credentials tokens (`POST /oauth2/token`), `GET /jobs` with
start/limit/inprogress/status and `GET /jobs/{id}` in the seed's shape (`{"job": {...}}`), Bearer checks.

Time is the simulator's own clock (`clock_ms`, moved by `advance_clock`): it stamps created/updated/finished
times, expires tokens and decides which finished jobs `inprogress=true` still lists (the last 15 minutes).
Status words other than SUCCESS are the project's assumptions (README), as are the error bodies' shapes.
`updated_at` does not always move: the seed's example shows it before `created_at`. `updated_at_moves`
(default True) stamps it on every change; False leaves it where the job was created, as the example shows.

What the documents leave open is a setting (defaults: the seed's example), and `VARIANTS` names the
combinations the tests run every flow against (`XvidSimulator(variant=...)`):
- `finished_at_shown`: "always" (the example's SUCCESS shows it), "success" (a failed or canceled job shows
  none) or "never" (no terminal job shows one); the `inprogress` window still uses the job's real end;
- `numbers_as_text`: `percentage_completed`, `version` and the epoch-millisecond times sent as text;
- `show_null`: True (the example, asked with show_null=true) or False (keys without a value left out, what
  an answer without show_null gives);
- `status_case`: "upper" (SUCCESS), "lower" or "title";
- `bare_list`: `GET /jobs` answers a bare list instead of `{"jobs": [...]}` (the envelope is unconfirmed);
- `updated_at_moves` (above).
A re-run (`restart`) raises the job's `version`, as a new revision of the job would.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.simulators.base import Lifecycle, SimRequest, SimResponse, Simulator, TokenIssuer, json_response

PUBLIC_BASE = "https://api.xvid.com/v1/"
INPROGRESS_WINDOW_MS = 15 * 60 * 1000
MAX_LIMIT = 5000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SUCCESS_STEPS = ("CREATED", "QUEUED", "PROCESSING", "PROCESSING", "UPLOADING", "SUCCESS")
FAILURE_STEPS = ("CREATED", "QUEUED", "PROCESSING", "FAILED")
VARIANTS: dict[str, dict[str, Any]] = {
    "example": {},
    "failed-without-finished-at": {"finished_at_shown": "success", "show_null": False},
    "no-finished-at": {"finished_at_shown": "never", "updated_at_moves": False},
    "numbers-as-text": {"numbers_as_text": True, "bare_list": True},
    "lower-case-words": {"status_case": "lower", "show_null": False},
    "title-case-words": {"status_case": "title", "finished_at_shown": "success", "numbers_as_text": True},
}
TERMINAL_WORDS = frozenset({"SUCCESS", "FAILED", "FAILURE", "ERROR", "CANCELED", "CANCELLED", "ABORTED"})


@dataclass
class SimJob:
    id: str
    lifecycle: Lifecycle
    status: str
    input_name: str
    outputs: list[dict[str, str]]  # {output_name, file_id, preset_id}
    created_at: int
    updated_at: int
    input_file_id: str
    percentage: int = 0
    finished_at: int | None = None
    error_msg: str | None = None
    error_code: str | None = None
    failure: tuple[str, str] = ("Encoding failed: unsupported codec", "E_CODEC")  # (error_msg, error_code)
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)  # raw fields merged into the document (tests)


class XvidSimulator(Simulator):
    def __init__(
        self,
        client_id: str = "sim-client",
        client_secret: str = "sim-secret",  # noqa: S107 - the simulator's own credentials
        token_ttl: int = 3600,
        variant: str = "example",
    ) -> None:
        super().__init__()
        self.clock_ms = START_MS
        self.oauth = TokenIssuer(client_id, client_secret, token_ttl, now_ms=lambda: self.clock_ms, token_type="bearer")
        self.jobs: dict[str, SimJob] = {}  # in creation order: the listing's order
        self.variant = variant  # the settings below, from VARIANTS (reset() restores them)
        self.read_delay = 0.0  # seconds each GET /jobs/{id} takes (to observe concurrency)
        self.token_delay = 0.0  # seconds each token request takes (to observe racing token requests)
        self.in_flight = 0
        self.max_in_flight = 0  # most requests served at once
        self._flight_lock = threading.Lock()
        self._next_id = 0x559CBBEC14EA67A7CAD60000
        self._apply_variant()

    def _apply_variant(self) -> None:
        self.updated_at_moves = True  # whether a change stamps updated_at (the documents do not say)
        self.finished_at_shown = "always"
        self.numbers_as_text = False
        self.show_null = True
        self.status_case = "upper"
        self.bare_list = False
        for name, value in VARIANTS[self.variant].items():
            setattr(self, name, value)

    # --- test controls ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forgets every job, token, request and injected fault, and resets the clock (one running simulator
        can serve many tests)."""
        with self.lock:
            self.jobs.clear()
            self.oauth.expire()
            self.requests.clear()
            self.fail_next.clear()
            self.canned.clear()
            self.clock_ms = START_MS
            self.read_delay = self.token_delay = 0.0
            self.max_in_flight = 0
            self._apply_variant()

    def add_job(
        self,
        *,
        fail: bool = False,
        steps: tuple[str, ...] | list[str] | None = None,
        outputs: tuple[str, ...] = ("MyTest",),
        input_name: str = "uploads/vnaqaHDKsCfX6X1UNN1iU97aSpkspyPP/movie.mp4",
        error_msg: str = "Encoding failed: unsupported codec",
        error_code: str = "E_CODEC",
        job_id: str | None = None,
    ) -> str:
        """A new job (24-hex id, or `job_id`) at the first step of its lifecycle; `fail` ends it in FAILED."""
        with self.lock:
            lifecycle = Lifecycle(list(steps or (FAILURE_STEPS if fail else SUCCESS_STEPS)))
            job = SimJob(
                id=job_id or self._new_id(),
                lifecycle=lifecycle,
                status=lifecycle.status,
                input_name=input_name,
                outputs=[
                    {"output_name": name, "file_id": self._new_id(), "preset_id": self._new_id()} for name in outputs
                ],
                created_at=self.clock_ms,
                updated_at=self.clock_ms,
                input_file_id=self._new_id(),
                failure=(error_msg, error_code),
            )
            self.jobs[job.id] = job
            self._settle(job)
            return job.id

    def advance(self, job_id: str, steps: int = 1) -> str:
        """Moves the job `steps` along its lifecycle; returns its status word."""
        with self.lock:
            job = self.jobs[job_id]
            if job.status not in TERMINAL_WORDS:
                job.status = job.lifecycle.advance(steps)
                self._settle(job)
            return job.status

    def finish(self, job_id: str) -> str:
        """Runs the job to the end of its lifecycle."""
        return self.advance(job_id, len(self.jobs[job_id].lifecycle.steps))

    def restart(self, job_id: str, *, fail: bool | None = None) -> str:
        """Runs the job again from the start of its lifecycle (a new attempt); `fail` False makes the new run
        succeed, True fail (None: the lifecycle it had)."""
        with self.lock:
            job = self.jobs[job_id]
            job.lifecycle.restart(None if fail is None else list(FAILURE_STEPS if fail else SUCCESS_STEPS))
            job.status = job.lifecycle.status
            job.version += 1
            self._settle(job)
            return job.status

    def tick(self) -> None:
        """One step for every job that has not ended."""
        with self.lock:
            for job_id in list(self.jobs):
                self.advance(job_id)

    def set_status(
        self,
        job_id: str,
        status: str,
        *,
        percentage: int | None = None,
        error_msg: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Any word, documented or not (tests of unknown words); the lifecycle follows if it holds the word."""
        with self.lock:
            job = self.jobs[job_id]
            if status in job.lifecycle.steps:
                job.lifecycle.index = job.lifecycle.steps.index(status)
            job.status = status
            if error_msg is not None or error_code is not None:
                job.failure = (error_msg or "", error_code or "")
            self._settle(job)
            if percentage is not None:
                job.percentage = percentage

    def advance_clock(self, minutes: float = 0.0, seconds: float = 0.0) -> None:
        with self.lock:
            self.clock_ms += int((minutes * 60 + seconds) * 1000)

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (401)."""
        with self.lock:
            self.oauth.expire()

    def document(self, job_id: str) -> dict[str, Any]:
        """The job as `GET /jobs/{id}` shows it inside `{"job": ...}` (the seed's shape)."""
        with self.lock:
            job = self.jobs[job_id]
            outputs = [
                {
                    "preset": _ref("presets", output["preset_id"]),
                    "file": _ref("files", output["file_id"]),
                    "output_name": output["output_name"],
                    "percentage_completed": job.percentage,
                    "thumbnail_zip": None,
                    "thumbnails": [],
                    "logos": [],
                    "settings": None,
                }
                for output in job.outputs
            ]
            document = {
                "pipeline": _ref("pipelines", "552b87a814eab3a29d1b3d90"),
                "application": _ref("applications", "552cae3514ea10cb4d3ac69e"),
                "user_data": None,
                "input": {
                    "input_name": job.input_name,
                    "force_container": None,
                    "force_aspect_ratio": None,
                    "force_framerate": None,
                    "force_interlaced": None,
                    "file": _ref("files", job.input_file_id),
                },
                "autograph": None,
                "output_prefix": f"{job.id}/",
                "outputs": outputs,
                "status": self._word(job.status),
                "percentage_completed": self._number(job.percentage),
                "error_msg": job.error_msg,
                "error_code": job.error_code,
                "finished_at": self._number(self._shown_finish(job)),
                "version": self._number(job.version),
                "user": _ref("users", "552b874d14eab3a29d1b3d8d"),
                "created_at": self._number(job.created_at),
                "updated_at": self._number(job.updated_at),
                "id": job.id,
                "href": f"{PUBLIC_BASE}jobs/{job.id}",
            }
            if self.numbers_as_text:
                for output in outputs:
                    output["percentage_completed"] = self._number(output["percentage_completed"])
            if not self.show_null:
                document = _without_nulls(document)
            document.update(job.extra)
            return document

    def _shown_finish(self, job: SimJob) -> int | None:
        if self.finished_at_shown == "never":
            return None
        if self.finished_at_shown == "success" and job.status.upper() != "SUCCESS":
            return None
        return job.finished_at

    def _number(self, value: int | None) -> int | str | None:
        return str(value) if self.numbers_as_text and value is not None else value

    def _word(self, word: str) -> str:
        return {"upper": word, "lower": word.lower(), "title": word.title()}[self.status_case]

    # --- HTTP ---------------------------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        with self._flight_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Outside the lock, so that parallel requests really overlap.
            if self.read_delay and _route(request.path).startswith("/jobs/"):
                time.sleep(self.read_delay)
            if self.token_delay and _route(request.path) == "/oauth2/token":
                time.sleep(self.token_delay)
            return super().dispatch(request)
        finally:
            with self._flight_lock:
                self.in_flight -= 1

    def handle(self, request: SimRequest) -> SimResponse:
        path = _route(request.path)
        if path == "/oauth2/token":
            if request.method != "POST":
                return json_response({"error": "invalid_request", "error_description": "use POST"}, 405)
            return self.oauth.grant(request)
        if not self.oauth.accepts(request):
            return json_response({"error": "invalid_token", "error_description": "missing or expired token"}, 401)
        canned = self.canned_answer(path)  # the key is the path, e.g. "/jobs" or "/jobs/<id>", once authorized
        if canned:
            return canned
        if request.query.get("format", "json") != "json":
            return json_response({"error": "bad_request", "message": "the simulator speaks json only"}, 400)
        if request.method != "GET":
            return json_response({"error": "method_not_allowed"}, 405)
        if path == "/jobs":
            return self._list(request)
        if path.startswith("/jobs/"):
            job_id = path.removeprefix("/jobs/")
            if job_id not in self.jobs:
                return json_response({"error": "not_found", "message": f"job {job_id} not found"}, 404)
            return json_response({"job": self.document(job_id)})
        return json_response({"error": "not_found"}, 404)

    def _list(self, request: SimRequest) -> SimResponse:
        try:
            start = int(request.query.get("start", 0))
            limit = int(request.query.get("limit", 1000))
        except ValueError:
            return json_response({"error": "bad_request", "message": "start and limit are integers"}, 400)
        if start < 0 or not 1 <= limit <= MAX_LIMIT:
            return json_response({"error": "bad_request", "message": f"limit is 1..{MAX_LIMIT}, start >= 0"}, 400)
        jobs = list(self.jobs.values())
        if request.query.get("inprogress") == "true":
            recent = self.clock_ms - INPROGRESS_WINDOW_MS
            jobs = [job for job in jobs if job.finished_at is None or job.finished_at >= recent]
        if request.query.get("status"):
            jobs = [job for job in jobs if job.status.lower() == request.query["status"].lower()]
        page = [self.document(job.id) for job in jobs[start : start + limit]]
        return json_response(page if self.bare_list else {"jobs": page})

    # --- internals ----------------------------------------------------------------------------------
    def _settle(self, job: SimJob) -> None:
        """Stamps a status change: times, percentage, and error fields for a failure word."""
        if self.updated_at_moves:
            job.updated_at = self.clock_ms
        ended = job.status.upper() in TERMINAL_WORDS
        job.finished_at = self.clock_ms if ended else None
        if job.status.upper() == "SUCCESS":
            job.percentage = 100
        elif not ended:
            job.percentage = round(job.lifecycle.fraction * 100)
        failed = ended and job.status.upper() not in ("SUCCESS", "CANCELED", "CANCELLED", "ABORTED")
        job.error_msg, job.error_code = job.failure if failed else (None, None)

    def _new_id(self) -> str:
        self._next_id += 1
        return f"{self._next_id:024x}"


def _route(path: str) -> str:
    # The public base URL carries /v1/; the simulator answers with or without it.
    return path.removeprefix("/v1") or "/"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _ref(kind: str, object_id: str) -> dict[str, str]:
    return {"id": object_id, "href": f"{PUBLIC_BASE}{kind}/{object_id}"}
