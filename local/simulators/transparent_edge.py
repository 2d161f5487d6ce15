"""A TransparentEdge transcoding API on 127.0.0.1: OAuth2 client credentials, order list, order detail (the
seed's shape), requeue. Orders advance through their lifecycle on command (`advance`, `tick`).

The document's list is ambiguous: its prose names "order_id", "status" and "timestamp" (when the order was
processed, which a requeue moves), its example shows "id", "created_on" and "status". `list_timestamp`
(default False, the example) adds the prose's `timestamp` to each list entry; both ways are tested.

What the document states two ways or leaves open is a setting (defaults: the document's examples), and
`VARIANTS` names the combinations the tests run every flow against (`TransparentEdgeSimulator(variant=...)`):
- `list_id_key`: "id" (the example) or "order_id" (the prose); `list_created_on`: whether entries carry
  `created_on` (the example does, the prose does not name it);
- `progress_as`: "number" (the example's 0.0), "text" ("42.0") or "percent_text" ("42%");
- `status_case`: "upper" (the document's FINISHED, ERROR), "lower" or "title";
- `time_format`: "seed" (`2021-09-08 09:15:55.875827+00:00`) or "seconds" (the same without fractions);
- `sparse_detail`: the detail without the fields a minimal order need not have (`comment`, `duration`,
  `size`, `filename`, `label`, `transcodingdownload`, `transcodingnotification_set`)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from local.simulators.base import Lifecycle, SimRequest, SimResponse, Simulator, TokenIssuer, json_response

# Only FINISHED and ERROR are documented; QUEUED and PROCESSING are the assumed words in between.
LIFECYCLE = ["QUEUED", "PROCESSING", "PROCESSING", "FINISHED"]
ERROR_LIFECYCLE = ["QUEUED", "PROCESSING", "ERROR"]
SIM_CLIENT_SECRET = "sim-secret"
DEFAULT_PROFILES = (("Prueba escalado", "prioridad alta"), ("Test HLS", "prioridad media"))

VARIANTS: dict[str, dict[str, Any]] = {
    "example": {},
    "prose": {"list_id_key": "order_id", "list_timestamp": True, "list_created_on": False},
    "text-progress": {"progress_as": "text", "progress_scale": 100.0},
    "percent-text-progress": {"progress_as": "percent_text", "progress_scale": 100.0},
    "lower-case-words": {"status_case": "lower", "time_format": "seconds"},
    "title-case-sparse": {"status_case": "title", "sparse_detail": True, "list_id_key": "order_id"},
}
SPARSE_FIELDS = (
    "comment",
    "duration",
    "size",
    "filename",
    "label",
    "transcodingdownload",
    "transcodingnotification_set",
)

_TOKEN = re.compile(r"^/v1/oauth2/access_token/?$")
_LIST = re.compile(r"^/v1/media/(?P<company>[^/]+)/transcode/?$")
_DETAIL = re.compile(r"^/v1/media/(?P<company>[^/]+)/transcode/(?P<order>[^/]+)/?$")
_REQUEUE = re.compile(r"^/v1/media/(?P<company>[^/]+)/transcode_requeue/(?P<order>[^/]+)/?$")


@dataclass
class SimOrder:
    order_id: str
    created_on: datetime
    timestamp: datetime  # "when the work request was processed": a requeue moves it later
    lifecycle: Lifecycle
    jobs: list[dict[str, Any]]
    source_url: str
    upload_url: str
    error_comment: str
    progress_scale: float  # 1.0: the sub-jobs report fractions; 100.0: percentages
    progress: list[float] | None = None  # set_progress() values, until the next advance

    @property
    def status(self) -> str:
        return self.lifecycle.status

    def sub_job_progress(self) -> list[float]:
        if self.progress is not None:
            return list(self.progress)
        if self.status == "FINISHED":
            return [0.0 for _ in self.jobs]  # the documented FINISHED example shows 0.0
        if self.status == "QUEUED":
            return [0.0 for _ in self.jobs]
        steps = max(len(self.lifecycle.steps) - 1, 1)
        done_steps = self.lifecycle.index - (1 if self.status == "ERROR" else 0)  # failed during the last step
        return [round(done_steps / steps * self.progress_scale, 4) for _ in self.jobs]

    def comment(self) -> str:
        if self.status == "ERROR":
            return self.error_comment
        if self.status == "FINISHED":
            return f"Order {self.order_id} finished"
        return ""


class TransparentEdgeSimulator(Simulator):
    """`answer_next(kind, ...)` keys: "token" (before the credentials are checked), "list", "detail" and
    "requeue" (after the Bearer token and the company are)."""

    def __init__(
        self,
        *,
        company_id: str = "1234",
        client_id: str = "sim-client",
        client_secret: str = SIM_CLIENT_SECRET,
        token_ttl: int = 36000,
        variant: str = "example",
    ) -> None:
        super().__init__()
        self.company_id = company_id
        self.oauth = TokenIssuer(client_id, client_secret, token_ttl, extras={"scope": "read write"})
        self.orders: dict[str, SimOrder] = {}
        self.list_timestamp = False  # list entries carry the processing `timestamp` (the prose) or not (the example)
        self.list_id_key = "id"
        self.list_created_on = True
        self.progress_as = "number"
        self.progress_scale = 1.0  # of new orders (add_order's default)
        self.status_case = "upper"
        self.time_format = "seed"
        self.sparse_detail = False
        self._serial = itertools.count(1237)
        for name, value in VARIANTS[variant].items():
            setattr(self, name, value)

    # --- test and local-run controls ----------------------------------------------------------------
    def add_order(
        self,
        *,
        fail: bool = False,
        comment: str = "Error downloading the source file",
        steps: list[str] | None = None,
        created_on: datetime | None = None,
        profiles: tuple[tuple[str, str], ...] = DEFAULT_PROFILES,
        progress_scale: float | None = None,
        source_url: str = "ftp://usuario:clave@ftp.tuservidor.com/otro.mp4",
        upload_url: str = "ftp://usuario:clave@ftp.tuservidor.com/salida/",
    ) -> str:
        """A new order (QUEUED); ids look like the real ones ("1631092552-1237")."""
        created = created_on or datetime.now(UTC)
        with self.lock:
            order_id = f"{int(created.timestamp())}-{next(self._serial)}"
            lifecycle = Lifecycle(steps or (ERROR_LIFECYCLE if fail else LIFECYCLE))
            jobs = [
                {
                    "profile": {"id": 80 + position, "name": name},
                    "filename": f"{order_id}-{position}.mp4",
                    "label": label,
                }
                for position, (name, label) in enumerate(profiles, start=1)
            ]
            self.orders[order_id] = SimOrder(
                order_id=order_id,
                created_on=created,
                timestamp=created,
                lifecycle=lifecycle,
                jobs=jobs,
                source_url=source_url,
                upload_url=upload_url,
                error_comment=comment,
                progress_scale=self.progress_scale if progress_scale is None else progress_scale,
            )
            return order_id

    def advance(self, order_id: str, steps: int = 1) -> str:
        with self.lock:
            order = self.orders[order_id]
            order.progress = None
            return order.lifecycle.advance(steps)

    def tick(self) -> None:
        """Every order one step further."""
        with self.lock:
            for order_id in self.orders:
                self.advance(order_id)

    def finish(self, order_id: str) -> str:
        """To the end of the order's lifecycle (FINISHED, or ERROR for a failing order)."""
        return self.advance(order_id, len(self.orders[order_id].lifecycle.steps))

    def set_status(self, order_id: str, word: str) -> None:
        """The order shows this word from now on (any word, also ones the adapter does not know)."""
        with self.lock:
            self.orders[order_id].lifecycle.restart([word])

    def set_progress(self, order_id: str, values: list[float]) -> None:
        """The sub-jobs' `progress` values as sent, until the next advance."""
        with self.lock:
            self.orders[order_id].progress = list(values)

    def requeue(self, order_id: str, *, fail: bool = False) -> None:
        """The order runs again from QUEUED, with a later processing `timestamp`."""
        with self.lock:
            order = self.orders[order_id]
            order.lifecycle.restart(ERROR_LIFECYCLE if fail else LIFECYCLE)
            order.progress = None
            # Later as the times are written: a run started in the same second reads the same in seconds.
            step = timedelta(seconds=1) if self.time_format == "seconds" else timedelta(milliseconds=1)
            order.timestamp = max(datetime.now(UTC), order.timestamp + step)

    @property
    def token_ttl(self) -> int:
        return self.oauth.ttl

    def expire_tokens(self) -> None:
        with self.lock:
            self.oauth.expire()

    def token_calls(self) -> int:
        return self.count("POST", "/v1/oauth2/access_token")

    def list_calls(self) -> int:
        with self.lock:
            return sum(1 for request in self.requests if _LIST.match(request.path))

    def detail_calls(self, order_id: str | None = None) -> int:
        with self.lock:
            matches = (_DETAIL.match(request.path) for request in self.requests)
            return sum(1 for match in matches if match and order_id in (None, unquote(match["order"])))

    # --- the API ------------------------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:
        if _TOKEN.match(request.path):
            return self.canned_answer("token") or self._token(request)
        for kind, pattern in (("list", _LIST), ("detail", _DETAIL), ("requeue", _REQUEUE)):
            match = pattern.match(request.path)
            if match:
                refusal = self._refusal(request, match["company"])
                if refusal:
                    return refusal
                canned = self.canned_answer(kind)
                if canned:
                    return canned
                order_id = unquote(match["order"]) if "order" in pattern.groupindex else None
                return getattr(self, f"_{kind}")(request, order_id)
        return json_response({"detail": "Not found."}, 404)

    def _token(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            return json_response({"detail": f'Method "{request.method}" not allowed.'}, 405)
        return self.oauth.grant(request)

    def _refusal(self, request: SimRequest, company_id: str) -> SimResponse | None:
        if not self.oauth.accepts(request):
            return json_response({"detail": "Authentication credentials were not provided."}, 401)
        if unquote(company_id) != self.company_id:
            return json_response({"detail": "You do not have permission to perform this action."}, 403)
        return None

    def _list(self, request: SimRequest, _: None) -> SimResponse:
        if request.method != "GET":
            return json_response({"detail": f'Method "{request.method}" not allowed.'}, 405)
        newest_first = sorted(self.orders.values(), key=lambda order: order.created_on, reverse=True)
        entries = []
        for order in newest_first:
            entry = {self.list_id_key: order.order_id, "status": self._word(order.status)}
            if self.list_created_on:
                entry["created_on"] = self._time(order.created_on)
            if self.list_timestamp:
                entry["timestamp"] = self._time(order.timestamp)
            entries.append(entry)
        return json_response(entries)

    def _detail(self, request: SimRequest, order_id: str) -> SimResponse:
        order = self.orders.get(order_id)
        if order is None:
            return json_response({"detail": "Not found."}, 404)
        if request.method != "GET":
            return json_response({"detail": f'Method "{request.method}" not allowed.'}, 405)
        upload_protocol = order.upload_url.split(":", 1)[0].upper()
        detail = {
            "order_id": order.order_id,
            "transcodingupload_set": [
                {
                    "upload_url": order.upload_url,
                    "upload_protocol": upload_protocol,
                    "upload_user": "usuario",
                    "upload_password": "clave",
                }
            ],
            "transcodingdownload": {
                "download_url": order.source_url,
                "download_protocol": order.source_url.split(":", 1)[0].upper(),
                "download_user": "usuario",
            },
            "transcodingnotification_set": [{"callback_url": None, "email": "correo@tuservidor.com"}],
            "transcodingjob_set": [
                {**job, "progress": self._progress(progress)}
                for job, progress in zip(order.jobs, order.sub_job_progress(), strict=False)
            ],
            "duration": 95.143,
            "size": 12118497,
            "filename": order.jobs[0]["filename"] if order.jobs else None,
            "label": order.jobs[0]["label"] if order.jobs else None,
            "status": self._word(order.status),
            "timestamp": self._time(order.timestamp),
            "comment": order.comment(),
        }
        if self.sparse_detail:
            detail = {key: value for key, value in detail.items() if key not in SPARSE_FIELDS}
            detail["transcodingjob_set"] = [
                {key: value for key, value in job.items() if key not in ("filename", "label")}
                for job in detail["transcodingjob_set"]
            ]
        return json_response(detail)

    def _word(self, word: str) -> str:
        return {"upper": word, "lower": word.lower(), "title": word.title()}[self.status_case]

    def _time(self, moment: datetime) -> str:
        if self.time_format == "seconds":
            moment = moment.replace(microsecond=0)
        return str(moment)

    def _progress(self, value: float) -> float | str:
        if self.progress_as == "text":
            return f"{value:.1f}"
        if self.progress_as == "percent_text":
            return f"{value:g}%"
        return value

    def _requeue(self, request: SimRequest, order_id: str) -> SimResponse:
        if order_id not in self.orders:
            return json_response({"detail": "Not found."}, 404)
        self.requeue(order_id)
        return json_response({"order_id": order_id, "status": self.orders[order_id].status})
