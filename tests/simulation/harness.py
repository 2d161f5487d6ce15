"""A deterministic simulation of the whole pipeline with faults at every step, in the spirit of
FoundationDB's simulation and Jepsen's checkers (docs/development.md "The fault simulation").

A run is a list of steps, generated from a seed (`generate`) or written out: a provider job starts, moves,
ends or runs again; a webhook arrives (in order, late, twice); a poll runs; the fan-out consumer runs; the
clock passes; or a fault is armed for the next invocations: the function killed after an AWS call, a
DynamoDB call throttled or meeting a conflicting write, SNS or (with the bus on) EventBridge failing, refusing
an entry or timing out after accepting, another poll meanwhile, a run slower than its lease. The real
handlers run against moto (`mock_aws`) and the project's simulators; faults are botocore event hooks. A run
has the EventBridge bus on or off (`bus`): with it on, every promise holds for each target on its own. After
every step, and at rest (faults stopped, every job ended, polls run), the checker holds the pipeline to the
promises of docs/events.md; a violation names the invariant, the seed and the steps (`execute` replays them).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.handlers
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.simulation.drivers import DRIVERS, Driver

TERMINAL = ("COMPLETE", "ERROR", "CANCELED")
# CONTRACT's lifecycle order; the terminal statuses share the last rank. UNKNOWN is never stored as a status.
LIFECYCLE = ("SUBMITTED", "DOWNLOADING", "QUEUED", "PROCESSING", "UPLOADING", "COMPLETE")
# Steps after which the table or the topic may have changed: the checker runs after them.
INVOKING = frozenset({"create", "rerun", "webhook", "resend", "poll", "fanout"})
MAX_JOBS = 4  # few enough that a run's events fit one PublishBatch: which thread publishes stays fixed
LEASE_PASSED_SECONDS = 301  # store.LEASE_SECONDS and a second
REST_ROUNDS = 3  # polls at rest, each after the clock passed a lease (and, the second, the re-watch time)
# Identifiers in the providers' secrets that are not secret (logs may name them).
PUBLIC_CREDENTIALS = ("company_id", "user_id", "client_id")
WEBHOOK_TOKEN = "sim-webhook-token-7f3e"  # noqa: S105 - the simulation's own
FUNCTION_ENV = {
    "CONCURRENCY": "1",  # one worker: a fault named by its call's number hits the same call on every replay
    "FANOUT_THRESHOLD": "2",  # a poll of more than 2 active jobs fans its changes out
    "STALL_MINUTES": "15",
    "REWATCH_MINUTES": "10",  # a job PUT again after it ended is polled this long (less than the rest's polls)
}

# The fault kinds docs/events.md ("When an event can come twice") lists as the only ones after which an
# event may be published twice. The checker allows a repeat only after one of them, counted per kind, and
# only on the target the fault concerns.
DUPLICATING_FAULTS = {
    "crash-after-publish": "the function is killed after a target accepted an event and before it was cleared",
    "publish-answer-lost": "a PublishBatch or PutEvents the target carried out fails as the function sees it",
    "clear-failed": "every write that would record a delivered event failed in that run (the run logs them)",
    "lease-outlived": "a run holds events past their lease; another run takes and publishes them meanwhile",
}
TOPIC, BUS = "topic", "bus"
PUBLISHES = {"sns.PublishBatch": TOPIC, "events.PutEvents": BUS}
CLEAR_FAILED_LOG = "published events could not be cleared"

WRITES = ("dynamodb.TransactWriteItems", "dynamodb.UpdateItem")  # the conditional writes
# The calls a poll that changes a job makes: the active jobs' Query, the commit, the publish, the clear (and
# the read of its stored items, BatchGetItem, which the fault lists name beside these).
COMMON_CALLS = ("dynamodb.Query", "dynamodb.TransactWriteItems", "dynamodb.UpdateItem", "sns.PublishBatch")
SNS_FAULTS = ("sns_error", "sns_timeout", "sns_refuse")
BUS_FAULTS = ("bus_error", "bus_timeout", "bus_refuse")  # the same three on PutEvents (bus on only)


_WORLDS = itertools.count(1)


class Killed(BaseException):  # noqa: N818 - not an error the code may handle: the process is gone
    """The function's process dies: raised after an AWS call returned, and by every call after it."""


class Violation(AssertionError):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant


# --- the clock --------------------------------------------------------------------------------------


class Clock:
    """The time the core reads (transcode_core.times.utc_now, store's time.time for leases): the real time
    plus what the simulation lets pass. Monotonic time (budgets, clear-within) stays real."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def epoch_ms(self) -> int:
        return int(self.time() * 1000)

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        from transcode_core import store, times

        clock = self

        class SimDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                moment = clock.now()
                return moment if tz is not None else moment.replace(tzinfo=None)

        monkeypatch.setattr(times, "datetime", SimDatetime)
        monkeypatch.setattr(store, "time", SimpleNamespace(time=self.time))
        yield


# --- faults -----------------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str  # kill | throttle | conflict | sns_/bus_ error, timeout, refuse | concurrent | slow
    call: str  # "<service>.<Operation>"
    number: int  # the how-many-th call of that operation in the invocation
    fired: bool = False
    invocations: int = 3  # armed for the next three invocations, or until it fires


@dataclass
class Faults:
    """botocore event hooks on every client the functions create: they count each operation's calls in
    the current invocation and apply the faults armed for it. The simulation's own clients pass."""

    world: World
    armed: list[Fault] = field(default_factory=list)
    live: bool = False  # inside an invocation
    dead: bool = False  # the invocation was killed
    counts: Counter = field(default_factory=Counter)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (target, event id) taken in this invocation
    fired: Counter = field(default_factory=Counter)  # fault kinds that took effect, over the run
    fired_at: Counter = field(default_factory=Counter)  # "<kind> <service>.<Operation>" that took effect
    table_faults: int = 0  # DynamoDB faults that took effect in this invocation

    def handlers(self) -> list[tuple[str, Callable[..., Any]]]:
        return [
            ("before-parameter-build", self._count),
            ("before-call", self._before),
            ("after-call", self._after),
        ]

    def _fault(self, context: dict, kinds: tuple[str, ...]) -> Fault | None:
        call = context.get("sim_call")
        for fault in self.armed:
            if not fault.fired and fault.kind in kinds and call == (fault.call, fault.number):
                fault.fired = True
                self.fired[fault.kind] += 1
                self.fired_at[f"{fault.kind} {fault.call}"] += 1
                if fault.call.startswith("dynamodb."):
                    self.table_faults += 1
                return fault
        return None

    def _count(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        if name == "sns.PublishBatch":  # only the functions publish: each publish is recorded, faults or not
            entries = params.get("PublishBatchRequestEntries", [])
            context["sim_events"] = {entry["Id"]: _event_id(entry) for entry in entries}
        if name == "events.PutEvents":
            bus_entries = params.get("Entries", [])
            context["sim_bus_events"] = [json.loads(entry["Detail"])["event_id"] for entry in bus_entries]
        if not self.live:
            return
        self.counts[name] += 1
        context["sim_call"] = (name, self.counts[name])
        if name == "sns.PublishBatch" and self._fault(context, ("sns_refuse",)):
            # SNS refuses the first entry (it is not published) and accepts the others, if any.
            context["sim_refused"] = entries[0]["Id"]
            if len(entries) > 1:
                entries.pop(0)
            else:
                context["sim_refused_all"] = True
        if name == "events.PutEvents" and self._fault(context, ("bus_refuse",)):
            # EventBridge refuses the first entry (FailedEntryCount 1, its ErrorCode) and puts the others.
            bus_entries[0]["Detail"] = "not json"

    def _before(self, model: Any, params: dict, context: dict, **_: Any) -> tuple | None:
        if not self.live or "sim_call" not in context:
            return None
        if self.dead:
            raise Killed
        if context.get("sim_refused_all"):  # the batch held only the refused entry: nothing is published
            return SimpleNamespace(status_code=200, headers={}), {"Successful": [], "Failed": []}
        fault = self._fault(context, ("throttle", "conflict", "sns_error", "bus_error", "concurrent", "slow"))
        if fault is None:
            return None
        if fault.kind == "conflict":
            self.world.concurrent_write(params)
            return None
        if fault.kind in ("concurrent", "slow"):
            self.world.poll_meanwhile(lease_passes=fault.kind == "slow")
            return None
        code = "ThrottlingException" if fault.kind == "throttle" else "InternalError"
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, model.name)

    def _after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        events = context.get("sim_events")
        if events is not None and http_response.status_code < 300:
            refused = context.get("sim_refused")
            if refused is not None:
                parsed.setdefault("Failed", []).append(
                    {"Id": refused, "Code": "InternalFailure", "SenderFault": False, "Message": "injected"}
                )
            context["sim_accepted"] = (TOPIC, [events[entry["Id"]] for entry in parsed.get("Successful", [])])
        bus_events = context.get("sim_bus_events")
        if bus_events is not None and http_response.status_code < 300:
            answered = zip(bus_events, parsed.get("Entries", []), strict=False)
            context["sim_accepted"] = (BUS, [event_id for event_id, entry in answered if entry.get("EventId")])
        if "sim_accepted" in context:
            self._accepted(*context["sim_accepted"])
        if not self.live or "sim_call" not in context:
            return
        if "sim_accepted" in context:
            target, accepted = context["sim_accepted"]
            if self._fault(context, ("sns_timeout" if target == TOPIC else "bus_timeout",)):
                self.world.allow_duplicates("publish-answer-lost", accepted, target)
                raise ReadTimeoutError(endpoint_url=f"https://{target}.us-east-1.amazonaws.com/")
        if self._fault(context, ("kill",)):
            self.dead = True
            for target in (TOPIC, BUS):
                taken = [event_id for accepted_by, event_id in self.accepted if accepted_by == target]
                self.world.allow_duplicates("crash-after-publish", taken, target)
            raise Killed

    def _accepted(self, target: str, accepted: list[str]) -> None:
        """Records what a target took (the functions' publishes, inside an invocation or a nested poll)."""
        published = self.world.published[target]
        if self.world.lease_outlived:  # by this invocation or the one it nests in: see poll_meanwhile
            self.world.allow_duplicates(
                "lease-outlived", [event_id for event_id in accepted if event_id in published], target
            )
        published.extend(accepted)
        if self.live:
            self.accepted.extend((target, event_id) for event_id in accepted)

    @contextmanager
    def invocation(self) -> Iterator[None]:
        self.armed = [fault for fault in self.armed if not fault.fired and fault.invocations > 0]
        for fault in self.armed:
            fault.invocations -= 1
        self.live, self.dead = True, False
        self.table_faults = 0
        self.counts.clear()
        self.accepted = []
        try:
            yield
        finally:
            self.live = False
            self.world.lease_outlived = False
            self.world.warm = not self.dead  # a killed function's next invocation is a cold start


def _event_id(entry: dict) -> str:
    return json.loads(json.loads(entry["Message"])["default"])["event_id"]


# --- the world --------------------------------------------------------------------------------------


class _Recorder(logging.StreamHandler):
    """Writes the functions' log lines for the secret check, and notes the one a documented repeat needs:
    a run that could not clear published events names them (after a DynamoDB fault of that run)."""

    def __init__(self, world: World, stream: io.StringIO) -> None:
        super().__init__(stream)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        faults = self.world.faults
        if str(record.msg).startswith(CLEAR_FAILED_LOG) and faults.live and faults.table_faults:
            for target in self.world.targets:  # no record of any delivery: every target gets it again
                self.world.allow_duplicates("clear-failed", list(getattr(record, "event_ids", [])), target)


@dataclass
class Job:
    job_id: str
    tracked: bool
    attempts: int = 1  # runs the provider started
    endings: int = 0  # times the provider showed it ended
    shown: set[str] = field(default_factory=set)  # canonical ends the provider showed
    showing: str | None = None  # the end it shows now (None: running)
    stored: tuple | None = None  # (version, attempt, lifecycle rank, status) the table last held


class World:
    """One provider's function, its simulator, moto, the clock and the faults, for one run of steps."""

    def __init__(self, provider: str, monkeypatch: pytest.MonkeyPatch, capfd: Any, *, bus: bool = False) -> None:
        self.provider = provider
        self.bus = bus
        self.targets = (TOPIC, BUS) if bus else (TOPIC,)
        self.monkeypatch = monkeypatch
        self.capfd = capfd
        self.driver: Driver = DRIVERS[provider]()
        self.clock = Clock()
        self.faults = Faults(self)
        self.jobs: list[Job] = []
        self.delivered: list[tuple[str, tuple[str, str]]] = []  # webhooks sent, for sending again
        self.published: dict[str, list[str]] = {target: [] for target in (TOPIC, BUS)}  # event ids each took
        self.allowed: Counter = Counter()  # (target, event id) -> repeats a listed fault permits
        self.allowed_by_kind: Counter = Counter()
        self.log_lines = 0
        self.written = io.StringIO()
        self.lease_outlived = False  # an invocation has run past its leases (a `slow` fault) and goes on
        self.failed_invocations = 0  # invocations that raised (a poll that failed whole, a fan-out batch)
        self.warm = False  # the next invocation finds the function warm (clients, cached secret)
        self.stack: Any = None

    @contextmanager
    def running(self) -> Iterator[World]:
        from local.stack import LocalStack

        # Every session created from here on (the functions' clients included) carries the fault hooks.
        self.monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS])
        botocore.handlers.BUILTIN_HANDLERS.extend(self.faults.handlers())
        self.monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        sim = self.driver.start(self.clock)
        try:
            with self.clock.installed(self.monkeypatch), self._log_handlers():
                self.stack = LocalStack(name=f"sim-{self.provider}-{next(_WORLDS)}").create(bus=self.bus)
                self.fanout_url = self.stack.sqs.create_queue(QueueName=f"sim-{self.provider}-fanout")["QueueUrl"]
                self.stack.configure(
                    self.provider,
                    sim.url,
                    self.driver.credentials,
                    webhook_token=WEBHOOK_TOKEN,
                    env={**FUNCTION_ENV, "FANOUT_QUEUE_URL": self.fanout_url},
                )
                self.stack.function_env["jobs_api"] = {
                    "TABLE_NAME": self.stack.table_name,
                    "TOPIC_ARN": self.stack.topic_arn,
                    "REWATCH_MINUTES": FUNCTION_ENV["REWATCH_MINUTES"],
                }
                try:
                    yield self
                finally:
                    self._remove_resources()
        finally:
            sim.stop()

    def _remove_resources(self) -> None:
        """A soak creates many worlds in one moto: each leaves nothing behind (nor clients with its hooks)."""
        from transcode_core.lambda_entry import reset_services

        reset_services()
        self.stack.dynamodb.delete_table(TableName=self.stack.table_name)
        self.stack.sns.delete_topic(TopicArn=self.stack.topic_arn)
        self.stack.delete_bus()
        for url in (self.stack.queue_url, self.fanout_url):
            self.stack.sqs.delete_queue(QueueUrl=url)

    @contextmanager
    def _log_handlers(self) -> Iterator[None]:
        """Every record that reaches a handler: the functions' logger's (its own formatter) and the root
        logger's (any library that logs), besides what reaches stdout/stderr (capfd)."""
        from transcode_core.observability import logger

        own = _Recorder(self, self.written)
        own.setFormatter(logger.registered_formatter)
        root = logging.StreamHandler(self.written)
        root.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        logger.addHandler(own)
        logging.getLogger().addHandler(root)
        try:
            yield
        finally:
            logger.removeHandler(own)
            logging.getLogger().removeHandler(root)

    # --- steps ------------------------------------------------------------------------------------
    def step(self, step: tuple) -> None:
        getattr(self, f"do_{step[0]}")(*step[1:])

    def _job(self, index: int) -> Job | None:
        return self.jobs[index] if 0 <= index < len(self.jobs) else None

    def do_create(self, fail: bool, track: bool) -> None:
        if len(self.jobs) >= MAX_JOBS:
            return
        job = Job(self.driver.create(len(self.jobs), fail), tracked=track or not self.driver.discovers)
        self.jobs.append(job)
        if job.tracked:
            status, _ = self.stack.jobs_api("PUT", self.provider, job.job_id)
            assert status in (200, 201), f"jobs API PUT answered {status}"
        self._note_provider(job)

    def do_advance(self, index: int, steps: int) -> None:
        if job := self._job(index):
            self.driver.advance(job.job_id, steps)
            self._note_provider(job)

    def do_finish(self, index: int) -> None:
        if job := self._job(index):
            self.driver.finish(job.job_id)
            self._note_provider(job)

    def do_rerun(self, index: int, fail: bool, track: bool = False) -> None:
        """An operator runs an ended job again, and with `track` puts it back on the poll list (jobs API
        PUT, the documented way); else a webhook, or a listing where the provider has one, shows the run."""
        job = self._job(index)
        if job and self.driver.ended(job.job_id):
            self.driver.rerun(job.job_id, fail)
            job.attempts += 1
            self._note_provider(job)
            if track:
                status, _ = self.stack.jobs_api("PUT", self.provider, job.job_id)
                assert status in (200, 201), f"jobs API PUT answered {status}"

    def _note_provider(self, job: Job) -> None:
        ended = self.driver.ended(job.job_id)
        if ended and ended != job.showing:
            job.endings += 1
            job.shown.add(ended)
        job.showing = ended

    def do_webhook(self, position: int) -> None:
        """The provider sends its next pending webhook (position 0), or a later one first (late order)."""
        pending = self.driver.webhooks
        if not pending:
            return
        job_id, webhook = pending.pop(min(position, len(pending) - 1))
        self._send(job_id, webhook)

    def do_resend(self, index: int) -> None:
        """A webhook already delivered arrives again (providers retry, proxies repeat)."""
        if self.delivered:
            job_id, webhook = self.delivered[index % len(self.delivered)]
            self._send(job_id, webhook)

    def _send(self, job_id: str, webhook: tuple[str, str]) -> None:
        body, content_type = webhook
        with self.faults.invocation():
            try:
                status, _ = self.stack.webhook(
                    self.provider, body, content_type=content_type, token=WEBHOOK_TOKEN, warm=self.warm
                )
            except Killed:
                status = None
        self.delivered.append((job_id, webhook))
        if status is None or status >= 500:
            self.driver.webhooks.append((job_id, webhook))  # the provider retries a webhook that failed

    def do_poll(self) -> None:
        from local.lambda_events import scheduled_event

        with self.faults.invocation():
            try:
                self.stack.invoke(self.provider, scheduled_event(), warm=self.warm)
            except Killed:
                pass
            except Exception:  # noqa: BLE001 - a failed invocation; EventBridge runs the next on schedule
                self.failed_invocations += 1

    def do_fanout(self) -> bool:
        """Lambda's SQS event source: a batch of the fan-out queue to the function; what it reports failed
        (or all, if it died) stays in the queue."""
        from local.lambda_events import sqs_event

        answer = self.stack.sqs.receive_message(QueueUrl=self.fanout_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        batch = answer.get("Messages", [])
        if not batch:
            return False
        failed: set[str] | None = None
        with self.faults.invocation():
            try:
                response = self.stack.invoke(self.provider, sqs_event(batch), warm=self.warm)
                failed = {entry["itemIdentifier"] for entry in response.get("batchItemFailures", [])}
            except Killed:
                pass
            except Exception:  # noqa: BLE001 - a failed invocation: the whole batch comes back
                self.failed_invocations += 1
        for message in batch:
            if failed is not None and message["MessageId"] not in failed:
                self.stack.sqs.delete_message(QueueUrl=self.fanout_url, ReceiptHandle=message["ReceiptHandle"])
        return True

    def do_clock(self, seconds: float) -> None:
        self.clock.offset += seconds
        self.driver.clock_passed(seconds)

    def do_fault(self, kind: str, call: str, number: int) -> None:
        self.faults.armed.append(Fault(kind, call, number))

    # --- what faults need ---------------------------------------------------------------------------
    def concurrent_write(self, params: dict) -> None:
        """Another writer changes the item a conditional write is about to write (its version moves)."""
        request = json.loads(params["body"])
        if "TransactItems" in request:
            first = request["TransactItems"][0]
            target = first.get("Update") or first.get("Put") or first.get("ConditionCheck") or {}
            key = target.get("Key") or {name: target["Item"][name] for name in ("pk", "sk")}
        else:
            key = request["Key"]
        live, self.faults.live = self.faults.live, False
        try:
            self.stack.dynamodb.update_item(
                TableName=self.stack.table_name,
                Key=key,
                UpdateExpression="SET version = version + :one",
                ConditionExpression="attribute_exists(version)",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except ClientError:
            pass  # the job does not exist yet: nothing to race with
        finally:
            self.faults.live = live

    def poll_meanwhile(self, *, lease_passes: bool) -> None:
        """Another poll runs to its end between two calls of this invocation (it meets no fault); with
        `lease_passes` this invocation is slower than the lease: the clock passes it first."""
        from local.lambda_events import scheduled_event

        faults = self.faults
        saved = (faults.live, faults.dead, faults.counts.copy(), faults.accepted)
        faults.live = False
        if lease_passes:
            # From here to its end this invocation holds leases that have run out: what any run publishes
            # meanwhile (the poll below, a later concurrent one, this invocation itself) may come twice.
            self.do_clock(LEASE_PASSED_SECONDS)
            self.lease_outlived = True
        try:
            self.stack.invoke(self.provider, scheduled_event(), warm=True)
        except Exception:  # noqa: BLE001 - a failed poll; this invocation goes on
            self.failed_invocations += 1
        finally:
            faults.live, faults.dead, faults.counts, faults.accepted = saved

    def allow_duplicates(self, kind: str, event_ids: list[str], target: str) -> None:
        assert kind in DUPLICATING_FAULTS
        for event_id in event_ids:
            self.allowed[(target, event_id)] += 1
            self.allowed_by_kind[kind] += 1

    # --- at rest ------------------------------------------------------------------------------------
    def come_to_rest(self) -> None:
        """Faults stop; every job runs to its end; time passes every lease and polls run."""
        self.faults.armed = []
        for index in range(len(self.jobs)):
            self.do_finish(index)
        for _ in range(3 * len(self.driver.webhooks)):  # the providers deliver what they still hold
            self.do_webhook(0)
        for _ in range(REST_ROUNDS):
            self.do_clock(LEASE_PASSED_SECONDS)
            self.do_poll()
            for _ in range(10):
                if not self.do_fanout():
                    break
            self.check()

    # --- the checker --------------------------------------------------------------------------------
    def items(self) -> dict[str, dict[str, Any]]:
        """The job items of the provider's jobs (a job the provider does not have is caught by its event)."""
        from transcode_core.store import JobStore

        store = JobStore(self.stack.table_name, client=self.stack.dynamodb)
        return store.get_many(self.provider, [job.job_id for job in self.jobs])

    def deliveries(self, target: str = TOPIC) -> Counter:
        """Event id -> how many times the target (the topic, the bus) took it (what its subscribers receive)."""
        return Counter(self.published[target])

    def check(self) -> None:
        """The invariants that hold after every step."""
        self._check_logs()
        if not self.bus and self.published[BUS]:
            raise Violation("no bus when none is configured", f"{len(self.published[BUS])} events put on a bus")
        for target in self.targets:
            for event_id, count in self.deliveries(target).items():
                allowed = self.allowed[(target, event_id)]
                if count > 1 + allowed:
                    raise Violation(
                        "one event per attempt",
                        f"{event_id} published {count} times on the {target}; the listed faults allow {allowed}",
                    )
        jobs = {job.job_id: job for job in self.jobs}
        ended_events: Counter = Counter()
        for event_id in set(self.published[TOPIC]) | set(self.published[BUS]):
            provider_and_job, _, status = event_id.rsplit("#", 2)
            job_id = provider_and_job.split("#", 1)[1]
            if job_id not in jobs:
                raise Violation("no event for a job the provider never finished", f"{event_id}: unknown job")
            if status == "STALLED":
                continue
            if status not in jobs[job_id].shown:
                raise Violation("no event for a job the provider never finished", f"{event_id}: never {status}")
            ended_events[job_id] += 1
        for job_id, count in ended_events.items():
            if count > jobs[job_id].endings:
                raise Violation(
                    "no event for a job the provider never finished",
                    f"{job_id}: {count} distinct end events, the provider ended it {jobs[job_id].endings} times",
                )
        for job_id, item in self.items().items():
            if item.get("status") in TERMINAL and item["status"] not in jobs[job_id].shown:
                raise Violation("the table follows the provider", f"{job_id} is {item['status']}, never shown")
            self._check_forward(jobs[job_id], item)

    def _check_forward(self, job: Job, item: dict[str, Any]) -> None:
        """The rules of change: versions only go up; within an attempt the status only moves forward in the
        lifecycle (a terminal one stays); a new attempt only after the provider ran the job again."""
        status = item.get("status") or "SUBMITTED"
        if status not in LIFECYCLE and status not in TERMINAL:
            return  # a word the mapping does not know: not a place in the lifecycle
        now = (
            int(item["version"]),
            int(item.get("attempt", 1)),
            LIFECYCLE.index(status if status not in TERMINAL else "COMPLETE"),
            status,
        )
        before = job.stored
        job.stored = now
        if int(item.get("attempt", 1)) > job.attempts:
            raise Violation(
                "the job only moves forward", f"{job.job_id}: attempt {now[1]}, the provider ran {job.attempts}"
            )
        if before is None:
            return
        if now[0] < before[0]:
            raise Violation("the job only moves forward", f"{job.job_id}: version {before[0]} -> {now[0]}")
        same_attempt = now[1] == before[1]
        if now[1] < before[1] or (
            same_attempt and (now[2] < before[2] or (now[2] == before[2] and now[3] != before[3]))
        ):
            raise Violation(
                "the job only moves forward",
                f"{job.job_id}: attempt {before[1]} {before[3]} -> attempt {now[1]} {now[3]}",
            )

    def check_at_rest(self) -> None:
        self.check()
        items = self.items()
        for job in self.jobs:
            item = items.get(job.job_id)
            if item is None:
                if job.tracked:
                    raise Violation("the table follows the provider", f"{job.job_id}: tracked, not in the table")
                continue
            expected = self.driver.ended(job.job_id)
            if item.get("status") != expected:
                raise Violation(
                    "the table follows the provider", f"{job.job_id}: table {item.get('status')}, provider {expected}"
                )
            if item.get("active_provider") or item.get("outbox"):
                raise Violation(
                    "nothing stays active forever",
                    f"{job.job_id}: still on the active index, {item.get('status')} attempt {item.get('attempt')}"
                    f" v{item.get('version')}, pending {sorted(item.get('outbox') or {})}, watched again until"
                    f" {item.get('rewatch_until')} (now {self.clock.now().isoformat()})",
                )
            for entry in self.stack.history(self.provider, job.job_id):
                if entry.get("status") in TERMINAL:
                    event_id = f"{self.provider}#{job.job_id}#{entry.get('attempt', 1)}#{entry['status']}"
                    for target in self.targets:
                        if not self.deliveries(target)[event_id]:
                            raise Violation(
                                "no event lost", f"{event_id} recorded in the table, never published on the {target}"
                            )

    def _check_logs(self) -> None:
        captured = self.capfd.readouterr()
        text = captured.out + captured.err + self.written.getvalue()
        self.written.seek(0)
        self.written.truncate()
        self.log_lines += text.count("\n")
        oauth = getattr(self.driver.sim, "oauth", None)
        secrets = [
            *(value for key, value in self.driver.credentials.items() if key not in PUBLIC_CREDENTIALS),
            WEBHOOK_TOKEN,
            *(list(oauth.tokens) if oauth else []),  # the access tokens the provider issued
        ]
        for secret in secrets:
            if secret in text:
                line = next(line for line in text.splitlines() if secret in line)
                raise Violation("no secret in any log line", f"{secret!r} in: {line[:300]}")


# --- running steps ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    provider: str
    seed: int | None
    steps: list[tuple]
    violation: Violation | None
    failed_step: int | None  # index of the step after which it was found (len(steps): at rest)
    fired: Counter
    allowed_by_kind: Counter
    log_lines: int
    events: int = 0  # events received, repeats included
    shrunk: bool = False  # the steps are a shrunk part of the seed's
    generated_by: str = ""  # the generator's settings a replay needs besides the seed (SIM_STEPS, SIM_SKIP)
    bus: bool = False  # whether the run had the EventBridge bus on
    fired_at: Counter = field(default_factory=Counter)  # the faults that took effect, by kind and call

    def describe(self) -> str:
        if self.violation is None:
            return (
                f"{self.provider} seed {self.seed}{self._bus()}: {len(self.steps)} steps, {self.events} events, faults "
                f"{dict(self.fired)}, repeats allowed {dict(self.allowed_by_kind)}: no violation"
            )
        where = "at rest" if self.failed_step == len(self.steps) else f"after step {self.failed_step}"
        replay = (
            f"{self.generated_by}SIM_BUS={int(self.bus)} SIM_PROVIDER={self.provider} SIM_SEED={self.seed} make soak"
            if self.seed is not None
            else "-"
        )
        return (
            f"{self.provider} seed {self.seed}{self._bus()}: {self.violation} ({where})\n"
            f"  replay the run: {replay}\n"
            f"  {'shrunk ' if self.shrunk else ''}steps ({len(self.steps)}), for execute(): {self.steps!r}"
        )

    def _bus(self) -> str:
        return " (bus on)" if self.bus else ""


def execute(provider: str, steps: list[tuple], capfd: Any, seed: int | None = None, *, bus: bool = False) -> Outcome:
    """Runs the steps, checking after each and at rest, with the EventBridge bus on or off. `capfd`
    (pytest's) holds what the functions log."""
    capfd.readouterr()
    with pytest.MonkeyPatch.context() as monkeypatch:
        world = World(provider, monkeypatch, capfd, bus=bus)
        with world.running():
            failed_step: int | None = None
            violation: Violation | None = None
            try:
                for number, step in enumerate(steps):
                    failed_step = number
                    world.step(step)
                    if step[0] in INVOKING:
                        world.check()
                failed_step = len(steps)
                world.come_to_rest()
                world.check_at_rest()
                failed_step = None
            except Violation as found:
                violation = found
            events = len(world.published[TOPIC]) + len(world.published[BUS])
    return Outcome(
        provider,
        seed,
        steps,
        violation,
        failed_step,
        world.faults.fired,
        world.allowed_by_kind,
        world.log_lines,
        events,
        bus=bus,
        fired_at=world.faults.fired_at,
    )


def generate(seed: int, count: int, skip: tuple[str, ...] = (), *, bus: bool = False) -> list[tuple]:
    """`count` steps from the seed. Steps name jobs by the order they were created; a step that does not
    apply when it runs (no such job, nothing pending) does nothing, so any sub-list replays. `skip` leaves
    out faults by kind or kind:call (e.g. a known defect's, to look past it: "throttle:dynamodb.UpdateItem").
    With `bus`, faults also hit PutEvents (without it a seed makes the steps it always made)."""
    rng = random.Random(seed)
    steps: list[tuple] = [("create", rng.random() < 0.3, rng.random() < 0.5) for _ in range(rng.randint(1, 3))]
    while len(steps) < count:
        choice = rng.choices(
            ("create", "advance", "finish", "rerun", "webhook", "resend", "poll", "fanout", "clock", "fault"),
            weights=(6, 16, 8, 5, 10, 4, 16, 6, 7, 22),
        )[0]
        job = rng.randrange(sum(1 for step in steps if step[0] == "create"))
        if choice == "create":
            steps.append(("create", rng.random() < 0.3, rng.random() < 0.5))
        elif choice == "advance":
            steps.append(("advance", job, rng.choice((1, 2, 2, 3))))
        elif choice in ("finish",):
            steps.append(("finish", job))
        elif choice == "rerun":
            # Time passes before an operator runs a job again (a rerun in the instant the run ended is a
            # case of its own: tests/simulation/test_simulation.py keeps it).
            steps.append(("clock", 60))
            steps.append(("rerun", job, rng.random() < 0.3, rng.random() < 0.5))
        elif choice == "webhook":
            steps.append(("webhook", 0 if rng.random() < 0.7 else rng.randrange(1, 4)))
        elif choice == "resend":
            steps.append(("resend", rng.randrange(8)))
        elif choice == "clock":
            steps.append(("clock", rng.choice((60, LEASE_PASSED_SECONDS, 6 * 60))))
        elif choice in ("poll", "fanout"):
            steps.append((choice,))
        else:
            fault = _fault(rng, bus)
            if fault[1] in skip or f"{fault[1]}:{fault[2]}" in skip:
                continue
            steps.append(fault)
            if rng.random() < 0.7:  # mostly at once, so that the invocation it is armed for reaches it
                steps.append(rng.choice((("poll",), ("poll",), ("webhook", 0), ("fanout",))))
    return steps[:count]


def _fault(rng: random.Random, bus: bool = False) -> tuple:
    kind = rng.choice(
        ("kill", "kill", "throttle", "throttle", "conflict", *SNS_FAULTS, "concurrent", "slow")
        + (BUS_FAULTS if bus else ())
    )
    if kind.startswith("sns_"):
        call = "sns.PublishBatch"
    elif kind.startswith("bus_"):
        call = "events.PutEvents"
    elif kind == "conflict":
        call = rng.choice(WRITES)
    elif kind == "throttle":
        call = rng.choice((*COMMON_CALLS[:-1], "dynamodb.BatchGetItem", "dynamodb.GetItem"))
    else:  # kill, concurrent, slow: after or before any call, mostly those every busy invocation makes
        calls = (*COMMON_CALLS, *COMMON_CALLS, "dynamodb.BatchGetItem", "sqs.SendMessage")
        # With the bus: also after its PutEvents (a crash between the two targets' publishes included).
        call = rng.choice((*calls, "events.PutEvents", "events.PutEvents") if bus else calls)
    # Mostly the first such call: an invocation makes few of each.
    return ("fault", kind, call, rng.choice((1, 1, 1, 2, 2, 3)))


def _generable(steps: list[tuple]) -> bool:
    """Whether the generator could have made these steps (a rerun follows time passing), so that shrinking
    stays among the runs it explores."""
    return all(
        step[0] != "rerun" or (number > 0 and steps[number - 1][0] == "clock") for number, step in enumerate(steps)
    )


def shrink(outcome: Outcome, capfd: Any, budget_seconds: float) -> Outcome:
    """A shorter list of steps that still breaks the same invariant: chunks, then single steps, removed
    while the violation stays (greedy; within the time budget)."""
    assert outcome.violation is not None
    best = outcome
    deadline = time.monotonic() + budget_seconds
    size = max(1, len(best.steps) // 2)
    while size >= 1 and time.monotonic() < deadline:
        start = 0
        while start < len(best.steps) and time.monotonic() < deadline:
            candidate = best.steps[:start] + best.steps[start + size :]
            if not _generable(candidate):
                start += size
                continue
            tried = execute(best.provider, candidate, capfd, best.seed, bus=best.bus)
            if tried.violation is not None and tried.violation.invariant == best.violation.invariant:
                best = replace(tried, shrunk=True, generated_by=best.generated_by)
            else:
                start += size
        size //= 2
    return best
