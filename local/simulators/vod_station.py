"""A NAVER Cloud VOD Station status API on 127.0.0.1: the API gateway's signature v2 check (keys, signature
over the received method + path + raw query, a 5-minute timestamp tolerance), the paged status listing
filtered by work start, and the callbacks the service would send (`take_callbacks`). Each job is one input
file in one category with one output per encoding option; outputs advance on command (`advance`, `tick`).

Written from NAVER's document alone (its own signature check, never the adapter's). `lastWorkTime` is the
last work, not the work start the listing filters on. Where the document is silent, both ways can be set:
`max_page_size` (a gateway that serves fewer items than `pageSizeNo` asks), `list_earlier_runs` (whether a
file encoded again still lists its earlier run's items). What the document states two ways or leaves open in
its fields is a `Variant` (`VARIANTS`, chosen with `variant=`): the adapter must read every one of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from local.simulators.base import Lifecycle, SimRequest, SimResponse, Simulator, json_response

LIFECYCLE = ["WAITING", "RUNNING", "RUNNING", "COMPLETE"]
FAILING_LIFECYCLE = ["WAITING", "RUNNING", "FAILURE"]
RUNNING_PERCENT = (0, 40, 80)  # by lifecycle step: the percent grows while RUNNING
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000  # the gateway refuses timestamps further off than this
KST = timezone(timedelta(hours=9))  # the service writes lastWorkTime in Korean time, with its offset
STATUS_SUFFIX = "/api/v2/status"  # any prefix before it is accepted (and is part of what is signed)
DEFAULT_PAGE_SIZE = 10


@dataclass(frozen=True)
class Variant:
    """One reading of what the document states two ways or leaves open."""

    name: str
    output_type: str = "text"  # "text" as the example shows; "number" as the table types it (the option's id)
    work_time: str = "text"  # lastWorkTime: "text" ("+0900", the example); "epoch_ms" or "object" (typed Object)
    optional_fields: bool = True  # False: categoryName, link, outputTotalSize, percent and total left out
    numbers_as_text: bool = False  # outputTotalSize, percent and total as text (the table types them String)
    window_order: str = "table"  # "table": workStartTimeFrom is the start; "example": workStartTimeTo is
    error_shape: str = "providers"  # {errorCode, message, details} (PROVIDERS.md); "seed": {code: Integer, message}
    word_case: str = "upper"  # status words in the listing and callbacks: "upper", "lower" or "title"


VARIANTS = (
    Variant("documented"),
    Variant("table-types", output_type="number", numbers_as_text=True, error_shape="seed"),
    Variant("epoch-times", work_time="epoch_ms", word_case="lower"),
    Variant("object-times", work_time="object", word_case="title", optional_fields=False),
    Variant("example-window", window_order="example", error_shape="seed", numbers_as_text=True),
)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SimOutput:
    output_type: str
    encoding_option_id: int
    lifecycle: Lifecycle
    work_start_ms: int
    last_work_ms: int
    forced: str | None = None  # a status set by hand (set_status), e.g. CANCELED
    percent: int | None = None  # a percent set by hand, until the next step

    @property
    def status(self) -> str:
        return self.forced or self.lifecycle.status

    def current_percent(self) -> int:
        if self.percent is not None:
            return self.percent
        if self.status == "COMPLETE":
            return 100
        return RUNNING_PERCENT[min(self.lifecycle.index, len(RUNNING_PERCENT) - 1)]


@dataclass
class SimJob:
    job_id: str
    category_id: int
    category_name: str
    file_path: str
    file_id: int
    outputs: dict[str, SimOutput]
    earlier: list[SimOutput] = field(default_factory=list)  # outputs of earlier runs, still listed


class VodStationSimulator(Simulator):
    def __init__(
        self, *, access_key: str = "sim-access-key", secret_key: str = "sim-secret-key", variant: Variant = VARIANTS[0]
    ) -> None:
        super().__init__()
        self.variant = variant
        self.access_key = access_key
        self.secret_key = secret_key
        self.clock_skew_ms = 0  # how far the gateway's clock runs ahead of ours (tests of the 5-minute rule)
        self.job_clock: Callable[[], int] = _now_ms  # epoch ms stamped on work; tests may fix it
        self.total_as_string = True  # the documents type `total` as a String and show a number
        self.jobs: dict[str, SimJob] = {}
        self.windows: list[tuple[int | None, int | None]] = []  # (workStartTimeFrom, To) of each listing call
        self.callbacks: list[dict[str, Any]] = []  # what the service would have posted, oldest first
        self.raw_items: list[tuple[int, dict[str, Any]]] = []  # (work start ms, item) listed verbatim
        self.max_page_size: int | None = None  # the most items a page holds, whatever pageSizeNo asks (silent)
        self.list_earlier_runs = True  # a file encoded again still lists its earlier run (silent)
        self._ids = itertools.count(1)

    # --- jobs ---------------------------------------------------------------------------------------
    def add_job(
        self,
        category_id: int,
        file_path: str,
        output_types: Iterable[str] = ("AVC_SD_1Pass_30fps",),
        *,
        fail: bool = False,
        category_name: str | None = None,
        work_start_ms: int | None = None,
    ) -> str:
        """A new encoding of `file_path` in the category, one output per type, all WAITING. With `fail`,
        the first output ends in FAILURE and the others COMPLETE. Returns the job id
        "<categoryId>:<filePath>"."""
        with self.lock:
            job_id = f"{category_id}:{file_path}"
            start = self.job_clock() if work_start_ms is None else work_start_ms
            outputs = {}
            for index, output_type in enumerate(output_types):
                steps = FAILING_LIFECYCLE if fail and index == 0 else LIFECYCLE
                outputs[output_type] = SimOutput(output_type, next(self._ids), Lifecycle(steps), start, start)
            if not outputs:
                raise ValueError("a job needs at least one output type")
            self.jobs[job_id] = SimJob(
                job_id, category_id, category_name or f"category-{category_id}", file_path, next(self._ids), outputs
            )
            for output in outputs.values():
                self._changed(self.jobs[job_id], output)
            return job_id

    def advance(self, job_id: str, steps: int = 1) -> dict[str, str]:
        """Moves every unfinished output of the job `steps` steps; returns each output's status word."""
        with self.lock:
            job = self.jobs[job_id]
            for output in job.outputs.values():
                for _ in range(steps):  # step by step: every status passed through sends its callback
                    if output.forced or output.lifecycle.done:
                        break
                    before = output.status
                    output.lifecycle.advance()
                    output.percent = None
                    output.last_work_ms = self.job_clock()
                    if output.status != before:
                        self._changed(job, output)
            return self.status_of(job_id)

    def tick(self) -> None:
        """Every job one step further."""
        with self.lock:
            for job_id in list(self.jobs):
                self.advance(job_id)

    def set_status(self, job_id: str, status: str, output_type: str | None = None, percent: int | None = None) -> None:
        """Forces one output's (or every output's) status word, e.g. CANCELED or an undocumented word."""
        with self.lock:
            job = self.jobs[job_id]
            for output in job.outputs.values():
                if output_type is not None and output.output_type != output_type:
                    continue
                changed = output.status != status
                output.forced, output.percent = status, percent
                output.last_work_ms = self.job_clock()
                if changed:
                    self._changed(job, output)

    def reencode(self, job_id: str) -> None:
        """The same file encoded again: new WAITING outputs; the earlier run's items stay in the listing."""
        with self.lock:
            job = self.jobs[job_id]
            start = self.job_clock()
            job.earlier.extend(job.outputs.values())
            job.outputs = {  # the same encoding options (a category setting) run again
                name: SimOutput(name, output.encoding_option_id, Lifecycle(LIFECYCLE), start, start)
                for name, output in job.outputs.items()
            }
            for output in job.outputs.values():
                self._changed(job, output)

    def status_of(self, job_id: str) -> dict[str, str]:
        with self.lock:
            return {name: output.status for name, output in self.jobs[job_id].outputs.items()}

    # --- callbacks ----------------------------------------------------------------------------------
    def callback_payload(self, job_id: str, output_type: str) -> dict[str, Any]:
        """The documented callback body for one output as it is now."""
        with self.lock:
            job = self.jobs[job_id]
            return self._payload(job, job.outputs[output_type])

    def take_callbacks(self) -> list[dict[str, Any]]:
        """The callbacks sent since the last call (one per output per status change; none for CANCELED)."""
        with self.lock:
            taken, self.callbacks = self.callbacks, []
            return taken

    def _changed(self, job: SimJob, output: SimOutput) -> None:
        if output.status != "CANCELED":
            self.callbacks.append(self._payload(job, output))

    def _payload(self, job: SimJob, output: SimOutput) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "categoryId": job.category_id,
            "categoryName": job.category_name,
            "fileId": job.file_id,
            "filePath": "" if output.status == "WAITING" else job.file_path,
            "encodingOptionId": output.encoding_option_id,
            "outputType": self._output_type(output),
            "status": self._word(output.status),
        }
        if output.status == "COMPLETE":
            payload["link"] = _link(job, output)
        return payload

    # --- the API ------------------------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:
        if not request.path.endswith(STATUS_SUFFIX):
            return self._error(404, "300", "Not Found Exception", f"no API at {request.path}")
        refused = self._authenticate(request)
        if refused:
            return refused
        if request.method != "GET":
            return self._error(405, "400", "Method Not Allowed", request.method)
        try:
            page_no = int(request.query.get("pageNo") or 1)
            page_size = int(request.query.get("pageSizeNo") or DEFAULT_PAGE_SIZE)
            window = (
                _optional_int(request.query.get("workStartTimeFrom")),
                _optional_int(request.query.get("workStartTimeTo")),
            )
        except ValueError:
            return self._error(400, "100", "Bad Request Exception", "pageNo, pageSizeNo and work times are integers")
        if page_no < 1 or page_size < 1:
            return self._error(400, "100", "Bad Request Exception", "pageNo and pageSizeNo start at 1")
        self.windows.append(window)
        if self.variant.window_order == "example":  # the example sends the later time as workStartTimeFrom
            window = window[::-1]
        listed = [item for item in self._items() if _within(item[0], window)]
        listed.sort(key=lambda entry: -entry[0])  # newest work first
        if self.max_page_size is not None:
            page_size = min(page_size, self.max_page_size)
        page = [item for _, item in listed[(page_no - 1) * page_size : page_no * page_size]]
        total = str(len(listed)) if self.total_as_string or self.variant.numbers_as_text else len(listed)
        if not self.variant.optional_fields:
            return json_response({"content": page})
        return json_response({"content": page, "total": total})

    def _authenticate(self, request: SimRequest) -> SimResponse | None:
        """The gateway's check: the access key, the timestamp within 5 minutes, and the signature
        recomputed over exactly the method, path and raw query it received."""
        timestamp = request.headers.get("x-ncp-apigw-timestamp", "")
        access_key = request.headers.get("x-ncp-iam-access-key", "")
        signature = request.headers.get("x-ncp-apigw-signature-v2", "")
        if not (timestamp and access_key and signature):
            return self._error(401, "200", "Authentication Failed", "missing authentication headers")
        if access_key != self.access_key:
            return self._error(401, "200", "Authentication Failed", "Invalid access key")
        try:
            offset = abs(int(timestamp) - (_now_ms() + self.clock_skew_ms))
        except ValueError:
            return self._error(401, "200", "Authentication Failed", "Invalid timestamp")
        if offset > MAX_CLOCK_SKEW_MS:
            return self._error(401, "200", "Authentication Failed", "Timestamp is more than 5 minutes off")
        path = f"{request.path}?{request.raw_query}" if request.raw_query else request.path
        if signature != _signature_v2(request.method, path, timestamp, self.access_key, self.secret_key):
            return self._error(401, "200", "Authentication Failed", "Signature mismatch")
        return None

    def _items(self) -> list[tuple[int, dict[str, Any]]]:
        """(work start, listing item) of every output of every run."""
        items = []
        for job in self.jobs.values():
            runs = [*job.earlier, *job.outputs.values()] if self.list_earlier_runs else list(job.outputs.values())
            for output in runs:
                items.append((output.work_start_ms, self._item(job, output)))
        return items + list(self.raw_items)

    def _item(self, job: SimJob, output: SimOutput) -> dict[str, Any]:
        """One output as a listing item, written the variant's way."""
        variant = self.variant
        number: Callable[[int], int | str] = str if variant.numbers_as_text else int
        item: dict[str, Any] = {
            "categoryId": job.category_id,
            "categoryName": job.category_name,
            "filePath": job.file_path,
            "outputType": self._output_type(output),
            "lastWorkTime": _work_time(output.last_work_ms, variant.work_time),
            "status": self._word(output.status),
            "percent": str(output.current_percent()),
        }
        if output.status == "COMPLETE":
            item["link"] = _link(job, output)
            item["outputTotalSize"] = number(1_000_000 + output.encoding_option_id * 1_000)
            item["percent"] = number(100)
        if not variant.optional_fields:
            for key in ("categoryName", "link", "outputTotalSize", "percent"):
                item.pop(key, None)
        return item

    def _output_type(self, output: SimOutput) -> str | int:
        return output.encoding_option_id if self.variant.output_type == "number" else output.output_type

    def _word(self, word: str) -> str:
        return {"lower": word.lower(), "title": word.title()}.get(self.variant.word_case, word)

    def _error(self, status: int, code: str, message: str, details: str) -> SimResponse:
        if self.variant.error_shape == "seed":  # the seed's table: error.code (Integer) and error.message
            return json_response({"error": {"code": int(code), "message": message}}, status)
        return _error(status, code, message, details)


def _signature_v2(method: str, path_with_query: str, timestamp: str, access_key: str, secret_key: str) -> str:
    """NAVER API Gateway signature v2, as its document builds it: the method, a space, the URL path with its
    query, a newline, the timestamp, a newline, the access key; HMAC-SHA256 with the secret key; base64."""
    message = method + " " + path_with_query + "\n" + timestamp + "\n" + access_key
    mac = hmac.new(bytes(secret_key, "utf-8"), bytes(message, "utf-8"), digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("utf-8")


def _link(job: SimJob, output: SimOutput) -> str:
    stem = job.file_path.rsplit(".", 1)[0]
    return (
        f"https://kr.object.ncloudstorage.com/vod-out/{job.category_id}/{stem}_{output.output_type}.mp4"
        f"?X-Amz-Signature=sim-signature&X-Amz-Credential=sim-credential&part=1"
    )


def _kst(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=KST).strftime("%Y-%m-%dT%H:%M:%S%z")


def _work_time(epoch_ms: int, form: str) -> str | int | dict[str, Any]:
    """lastWorkTime as text with an offset, as epoch milliseconds, or as a Java LocalDateTime in Korean time
    written as an object (what a JSON mapper without a date module makes of it)."""
    if form == "epoch_ms":
        return epoch_ms
    if form == "object":
        moment = datetime.fromtimestamp(epoch_ms / 1000, tz=KST)
        return {
            "year": moment.year,
            "monthValue": moment.month,
            "month": moment.strftime("%B").upper(),
            "dayOfMonth": moment.day,
            "dayOfWeek": moment.strftime("%A").upper(),
            "hour": moment.hour,
            "minute": moment.minute,
            "second": moment.second,
            "nano": moment.microsecond * 1000,
        }
    return _kst(epoch_ms)


def _optional_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _within(work_start_ms: int, window: tuple[int | None, int | None]) -> bool:
    start, end = window
    return (start is None or work_start_ms >= start) and (end is None or work_start_ms <= end)


def _error(status: int, code: str, message: str, details: str) -> SimResponse:
    return json_response({"error": {"errorCode": code, "message": message, "details": details}}, status)
