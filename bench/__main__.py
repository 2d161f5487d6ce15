"""`make bench`: the poll path of all four providers at scale, each count beside its lower bound.

Every provider function is invoked through its handler (as Lambda would, with a scheduled event) against
its simulator, which answers each request after an injected latency (BENCH_PROVIDER_MS, default 50 ms),
and a moto server in its own process (bench/moto_server.py), with an injected DynamoDB latency on each call
(BENCH_DYNAMODB_MS, default 10 ms). BENCH_JOBS active jobs per provider (default 2,000), CONCURRENCY
(BENCH_CONCURRENCY, default 8). Cycles per provider:
  first     every job seen for the first time (discovered, or registered and read)
  changed   BENCH_CHANGED of the jobs (default 25%) moved one step since the last poll
  unchanged nothing moved: nothing may be written
  finish    every job finished: one write each, one event each
  fanout    as many new jobs, all finishing in a poll past FANOUT_THRESHOLD: the scheduled invocation queues
            them, then the queue is drained one message an invocation (the event source's BatchSize 1),
            and 50,000 active jobs are projected from the measured rates
Printed per cycle: provider requests (token requests apart), DynamoDB calls by operation, SNS publishes
(messages and PublishBatch calls), wall time, and beside each its lower bound and the ratio; peak Python
memory of a changed cycle. `moto s` is moto's own time (every call's round trip less the injected latency),
which `wall less moto` sets apart. Results go to bench/results/ as JSON and Markdown.

`python -m bench --check` (what CI runs with BENCH_JOBS=200) exits 1 when a count exceeds its bound:
table writes, publishes, every provider's requests, and the fan-out cycle's counts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
JOBS = int(os.environ.get("BENCH_JOBS", "2000"))
CHANGED_SHARE = float(os.environ.get("BENCH_CHANGED", "0.25"))
PROVIDER_LATENCY = float(os.environ.get("BENCH_PROVIDER_MS", "50")) / 1000
DYNAMODB_LATENCY = float(os.environ.get("BENCH_DYNAMODB_MS", "10")) / 1000
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
PAGE_SIZE = 100
BATCH_SIZE = 25
FANOUT_BATCH = 200  # FANOUT_BATCH_SIZE's default
MEMORY_TARGET_MIB = 200  # 10,000 active jobs
FANOUT_CONSUMERS = 10  # the queues' event sources' MaximumConcurrency in template.yaml
# On-demand prices (us-east-1, USD): DynamoDB per million write / read request units, SNS per million
# published messages, Lambda arm64 per GB-second.
PRICE_WRU, PRICE_RRU, PRICE_SNS, PRICE_GB_S = 0.625, 0.125, 0.50, 0.0000133334
POLLS_PER_HOUR = 12  # PollRate rate(5 minutes)
BUDGET_MS = 3_600_000


def _environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "transcode-status",
            "POWERTOOLS_METRICS_NAMESPACE": "TranscodeStatus",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sys.path[:0] = [str(ROOT / "layers" / "transcode_core"), str(ROOT)]


def bench_import() -> float:
    """Seconds to import a provider function in a fresh interpreter (our part of a cold start)."""
    code = (
        "import sys, time; sys.path[:0] = ['layers/transcode_core', 'functions/encoding_com']; "
        "t = time.perf_counter(); import app; print(time.perf_counter() - t)"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def moto_server_process():
    """moto in its own process, so that time and memory measured here are the project's, not moto's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.moto_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.1)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        yield
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.kill()  # moto's dev server ignores SIGTERM while it holds keep-alive connections
        server.wait(timeout=10)


class AwsCalls:
    """Every AWS call the process makes, by operation, with DynamoDB's latency injected before each send
    and its request units estimated (on-demand: 1 WRU per KB written, 2 in a transaction; 1 RRU per 4 KB
    read consistently, 0.5 from the index). Hooked on boto3's default session, so every client has it."""

    def __init__(self) -> None:
        import boto3

        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.latency = 0.0
        self.moto_s = Counter()  # seconds moto itself took (round trip less the injected latency)
        self._sent = threading.local()
        self._lock = threading.Lock()
        self._job_item_kb = 1
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build", self._before_call)
        events.register("after-call.dynamodb", self._after_call)
        # moto's own time is measured on every call it serves (DynamoDB, SNS with its SQS subscriber, SQS);
        # the injected latency is DynamoDB's only.
        events.register("before-send", self._delay)
        events.register("after-call", self._round_trip)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.units.clear()
            self.moto_s.clear()

    def _delay(self, event_name: str, **_kwargs: Any) -> None:
        if self.latency and event_name.startswith("before-send.dynamodb"):
            time.sleep(self.latency)
        self._sent.at = time.perf_counter()

    def _round_trip(self, **_kwargs: Any) -> None:
        took = time.perf_counter() - getattr(self._sent, "at", time.perf_counter())
        thread = "main" if threading.current_thread() is threading.main_thread() else "workers"
        with self._lock:
            self.moto_s[thread] += took

    def moto_share(self) -> float:
        """moto's own time on the poll's critical path, estimated: the run's own thread waits for all of
        its calls, the workers' calls overlap CONCURRENCY at a time."""
        return self.moto_s["main"] + self.moto_s["workers"] / CONCURRENCY

    def _before_call(self, model: Any, params: dict[str, Any], **_kwargs: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        written = 0.0
        if model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                if "Put" in entry:
                    written += 2 * self._kb(entry["Put"]["Item"])
                else:
                    written += 2 * self._job_item_kb
        elif model.name == "UpdateItem":
            written = self._job_item_kb
        with self._lock:
            self.calls[name] += 1
            if model.name == "PublishBatch":
                self.calls["sns.messages"] += len(params["PublishBatchRequestEntries"])
            self.units["WRU"] += written

    def _kb(self, item: dict[str, Any]) -> int:
        kb = max(1, math.ceil(len(json.dumps(item)) / 1024))
        if item.get("sk", {}).get("S") == "JOB":
            self._job_item_kb = kb
        return kb

    def _after_call(self, model: Any, parsed: dict[str, Any], **_kwargs: Any) -> None:
        if model.name == "Query":
            read = 0.5 * math.ceil(len(json.dumps(parsed.get("Items", []))) / 4096) if parsed.get("Items") else 0.5
        elif model.name == "BatchGetItem":
            items = [item for found in parsed.get("Responses", {}).values() for item in found]
            read = sum(math.ceil(len(json.dumps(item)) / 4096) for item in items) or 1
        elif model.name == "GetItem":
            read = 1
        else:
            return
        with self._lock:
            self.units["RRU"] += read


@dataclass
class Provider:
    """How the bench drives one provider's simulator, and the fewest requests its API allows."""

    id: str
    add: Callable[[Any, int], str]
    registers: bool  # jobs must be registered (no listing discovers them)
    requests_bound: Callable[[int, int], int]  # (active jobs, jobs new or moved) -> requests
    # (active jobs, jobs new or moved) -> the fewest request rounds those requests take at CONCURRENCY, where
    # a request that needs an earlier one's answer (the next page, a detail after the list) is a new round
    rounds: Callable[[int, int], int]
    bound_note: str
    env: dict[str, str] = field(default_factory=dict)
    # Steps every job is moved before the `first` cycle. TransparentEdge's list shows the status word only, so
    # its jobs start at QUEUED and a `changed` job moves to PROCESSING, a move the list shows (a progress-only
    # move is read on DETAIL_REFRESH_MINUTES, not by the next poll).
    first_steps: int = 1


PROVIDERS = [
    Provider(
        "encoding_com",
        lambda sim, n: sim.add_job(),
        True,
        lambda active, moved: math.ceil(active / BATCH_SIZE),
        lambda active, moved: math.ceil(math.ceil(active / BATCH_SIZE) / CONCURRENCY),
        f"GetStatus extended, {BATCH_SIZE} ids a request",
        {"BATCH_SIZE": str(BATCH_SIZE)},
    ),
    Provider(
        "transparent_edge",
        lambda sim, n: sim.add_order(),
        False,
        lambda active, moved: 1 + moved,
        lambda active, moved: 1 + math.ceil(moved / CONCURRENCY),
        "1 listing (unpaged) + a detail for each new or moved order",
        first_steps=0,
    ),
    Provider(
        "xvid",
        lambda sim, n: sim.add_job(),
        False,
        lambda active, moved: max(1, math.ceil(active / PAGE_SIZE)),
        lambda active, moved: max(1, math.ceil(active / PAGE_SIZE)),  # no count: a page tells if another follows
        f"inprogress pages of {PAGE_SIZE}, no empty last page",
        {"PAGE_SIZE": str(PAGE_SIZE)},
    ),
    Provider(
        "vod_station",
        lambda sim, n: sim.add_job(10019, f"bench/{n:06d}.mp4"),
        False,
        lambda active, moved: max(1, math.ceil(active / PAGE_SIZE)),
        # the first page's `total` would let the other pages be read side by side
        lambda active, moved: 1 + math.ceil((max(1, math.ceil(active / PAGE_SIZE)) - 1) / CONCURRENCY),
        f"status pages of {PAGE_SIZE}, no empty last page",
        {"PAGE_SIZE": str(PAGE_SIZE)},
    ),
]


def provider_requests(sim: Any) -> tuple[int, int]:
    """(API requests, token requests) the simulator served since its log was reset."""
    with sim.lock:
        paths = [request.path for request in sim.requests]
    tokens = sum(1 for path in paths if "oauth2" in path or "token" in path)
    return len(paths) - tokens, tokens


def with_latency(sim: Any, seconds: float) -> None:
    """Every request the simulator serves waits `seconds` first (its server answers requests in threads)."""
    dispatch = sim.dispatch

    def slow(request):
        time.sleep(seconds)
        return dispatch(request)

    sim.dispatch = slow


@dataclass
class MeasuredPoll:
    report: dict[str, Any]
    wall_s: float
    cpu_s: float  # this process's CPU time in the poll: the function, its clients, the in-process simulator
    moto_s: float  # moto's own share of the wall time (AwsCalls.moto_share)
    provider_requests: int
    token_requests: int
    calls: dict[str, int]  # AWS calls by "service.Operation" (and "sns.messages")

    @property
    def wall_without_moto_s(self) -> float:
        return max(0.0, self.wall_s - self.moto_s)


def measured_poll(stack: Any, aws: AwsCalls, sim: Any, provider: Provider) -> MeasuredPoll:
    """One scheduled invocation of the provider's function, timed, with the calls it made."""
    aws.reset()
    sim.reset_log()
    started, cpu_started = time.perf_counter(), time.process_time()
    report = stack.poll(provider.id)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    requests, tokens = provider_requests(sim)
    return MeasuredPoll(report, wall, cpu, aws.moto_share(), requests, tokens, dict(aws.calls))


def table_writes(calls: dict[str, int]) -> int:
    return sum(count for name, count in calls.items() if name.split(".")[-1] in WRITE_OPERATIONS)


def run_cycle(stack: Any, aws: AwsCalls, sim: Any, provider: Provider, *, active: int, moved: int, announce: int):
    """One scheduled poll, measured, each count beside its bound."""
    poll = measured_poll(stack, aws, sim, provider)
    report, wall, requests, calls = poll.report, poll.wall_s, poll.provider_requests, poll.calls
    writes = table_writes(calls)
    clears = math.ceil(announce / 100)
    ddb_calls = sum(count for name, count in calls.items() if name.startswith("dynamodb."))
    request_bound = provider.requests_bound(active, moved)
    # Latency bound: the fewest request rounds at this concurrency, for the provider and for DynamoDB.
    ddb_bound = 1 + moved + clears
    provider_rounds = provider.rounds(active, moved)
    latency_bound = provider_rounds * PROVIDER_LATENCY + math.ceil(ddb_bound / CONCURRENCY) * DYNAMODB_LATENCY
    changed = sum(count for kind, count in report["changes"].items() if kind != "unchanged")
    return {
        "report_changes": report["changes"],
        "jobs_changed": changed,
        "provider_requests": requests,
        "provider_requests_bound": request_bound,
        "token_requests": poll.token_requests,
        "dynamodb_calls": {
            name.split(".", 1)[1]: count for name, count in calls.items() if name.startswith("dynamodb.")
        },
        "table_writes": writes,
        "table_writes_bound": moved,
        "table_writes_design_bound": moved + clears,
        "write_units": round(aws.units["WRU"], 1),
        "read_units": round(aws.units["RRU"], 1),
        "sns_messages": calls.get("sns.messages", 0),
        "sns_messages_bound": announce,
        "sns_calls": calls.get("sns.PublishBatch", 0) + calls.get("sns.Publish", 0),
        "sns_calls_bound": math.ceil(announce / 10),
        "other_calls": {name: count for name, count in calls.items() if name.split(".")[0] not in ("dynamodb", "sns")},
        "wall_s": round(wall, 3),
        "cpu_s": round(poll.cpu_s, 3),
        "moto_s": round(poll.moto_s, 3),
        "wall_without_moto_s": round(poll.wall_without_moto_s, 3),
        "latency_bound_s": round(latency_bound, 3),
        "dynamodb_calls_total": ddb_calls,
        "provider_failures": report["provider_failures"],
        "job_failures": len(report["job_failures"]),
        "events_published": report["events_published"],
    }


def run_fanout_cycle(
    stack: Any, aws: AwsCalls, sim: Any, provider: Provider, *, active: int, listed: int
) -> dict[str, Any]:
    """A `finish` cycle past FANOUT_THRESHOLD: the scheduled invocation reads the provider and queues the
    changes; the queue is then drained as the event source does (`BatchSize` 1: one message an invocation),
    each invocation timed. Each part's counts beside their bounds."""
    import boto3

    from local.lambda_events import sqs_event

    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"bench-fanout-{provider.id.replace('_', '-')}")["QueueUrl"]
    fanout_env = {"FANOUT_QUEUE_URL": queue_url, "FANOUT_THRESHOLD": "1", "FANOUT_BATCH_SIZE": str(FANOUT_BATCH)}
    stack.function_env[provider.id].update(fanout_env)
    try:
        poll = measured_poll(stack, aws, sim, provider)
        aws.reset()
        consumer_walls, consumer_own, refused = [], [], 0  # wall time, and wall time less moto's share
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", []):
            started, moto_before = time.perf_counter(), aws.moto_share()
            answer = stack.invoke(provider.id, sqs_event(messages), warm=True)
            consumer_walls.append(time.perf_counter() - started)
            consumer_own.append(max(0.0, consumer_walls[-1] - (aws.moto_share() - moto_before)))
            refused += len(answer["batchItemFailures"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        consumed = dict(aws.calls)
    finally:
        for name in fanout_env:
            stack.function_env[provider.id].pop(name, None)
    request_bound = provider.requests_bound(listed, active)
    message_bound = math.ceil(active / FANOUT_BATCH)
    return {
        "jobs_fanned_out": poll.report["jobs_fanned_out"],
        "scheduled": {
            "wall_s": round(poll.wall_s, 3),
            "wall_without_moto_s": round(poll.wall_without_moto_s, 3),
            "provider_requests": poll.provider_requests,
            "provider_requests_bound": request_bound,
            "table_writes": table_writes(poll.calls),
            "queue_messages": poll.calls.get("sqs.SendMessage", 0),
            "queue_messages_bound": message_bound,
            "latency_bound_s": round(provider.rounds(listed, active) * PROVIDER_LATENCY, 3),
        },
        "consumer": {
            "invocations": len(consumer_walls),
            "refused": refused,
            "table_writes": table_writes(consumed),
            "table_writes_bound": active,
            "table_writes_design_bound": active + len(consumer_walls) * math.ceil(FANOUT_BATCH / 100),
            "sns_messages": consumed.get("sns.messages", 0),
            "sns_messages_bound": active,
            "wall_mean_s": round(sum(consumer_walls) / max(len(consumer_walls), 1), 3),
            "wall_max_s": round(max(consumer_walls, default=0.0), 3),
            "wall_without_moto_mean_s": round(sum(consumer_own) / max(len(consumer_own), 1), 3),
            "wall_without_moto_max_s": round(max(consumer_own, default=0.0), 3),
        },
        "projected_50000": projection(provider, poll.wall_without_moto_s, consumer_own, active),
    }


def projection(provider: Provider, scheduled_s: float, consumer_s: list[float], active: int) -> dict[str, float]:
    """50,000 active jobs, every one changed, from this cycle's measured times (moto's own set apart): the
    scheduled invocation's time grows with the jobs it reads, and the consumers (at most FANOUT_CONSUMERS at
    once, the event source's `MaximumConcurrency`) each take one message of FANOUT_BATCH jobs. Beside it, the
    scheduled invocation's latency bound: the rounds of provider requests 50,000 jobs need."""
    messages = math.ceil(50_000 / FANOUT_BATCH)
    return {
        "scheduled_s": round(scheduled_s * 50_000 / active, 1),
        "scheduled_latency_bound_s": round(provider.rounds(50_000, 50_000) * PROVIDER_LATENCY, 1),
        "messages": messages,
        "consumers_s": round(math.ceil(messages / FANOUT_CONSUMERS) * max(consumer_s, default=0.0), 1),
    }


WRITE_OPERATIONS = {"TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem"}


@contextlib.contextmanager
def provider_stack(provider: Provider, aws: AwsCalls):
    """The provider's function configured against its simulator (with the injected latencies) and a fresh
    stack on the moto server; yields (stack, simulator, add_jobs), add_jobs(first, count) adding (and, for
    encoding.com, registering) `count` jobs."""
    from local import lambda_events
    from local.run import scenarios
    from local.stack import LocalStack
    from transcode_core.store import JobStore

    # Each cycle runs to its end whatever moto's speed (a Lambda's budget would defer the rest: see README).
    lambda_events.LambdaContext.get_remaining_time_in_millis = lambda self: BUDGET_MS
    scenario = next(s for s in scenarios() if s.provider == provider.id)
    stack = LocalStack(f"bench-{provider.id.replace('_', '-')}-{os.getpid()}-{time.monotonic_ns()}").create()
    with scenario.simulator(**scenario.credentials) as sim:
        stack.configure(
            provider.id,
            sim.url,
            scenario.credentials,
            env={"CONCURRENCY": str(CONCURRENCY), "HTTP_RETRIES": "1", "STALL_MINUTES": "0", **provider.env},
        )

        def add_jobs(first: int, count: int) -> list[str]:
            added = [provider.add(sim, n) for n in range(first, first + count)]
            if provider.registers:
                store = JobStore(stack.table_name)
                for job_id in added:
                    store.register(provider.id, job_id, rewatch_minutes=60)
            return added

        with_latency(sim, PROVIDER_LATENCY)
        try:
            yield stack, sim, add_jobs
        finally:
            aws.latency = 0.0


def traced_poll(stack: Any, provider: Provider) -> float:
    """MiB of Python heap a poll takes at its peak (tracing slows it down, so it is not timed)."""
    tracemalloc.start()
    try:
        stack.poll(provider.id)
        return round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    finally:
        tracemalloc.stop()


def bench_provider(provider: Provider, aws: AwsCalls) -> dict[str, Any]:
    results: dict[str, Any] = {"provider": provider.id, "jobs": JOBS, "bound_note": provider.bound_note}
    with provider_stack(provider, aws) as (stack, sim, add_jobs):
        jobs = add_jobs(0, JOBS)
        aws.latency = DYNAMODB_LATENCY
        moved_count = int(JOBS * CHANGED_SHARE)
        for job_id in jobs:
            sim.advance(job_id, provider.first_steps)
        cycles = {"first": run_cycle(stack, aws, sim, provider, active=JOBS, moved=JOBS, announce=0)}
        for job_id in jobs[:moved_count]:
            sim.advance(job_id, 1)
        cycles["changed"] = run_cycle(stack, aws, sim, provider, active=JOBS, moved=moved_count, announce=0)
        cycles["unchanged"] = run_cycle(stack, aws, sim, provider, active=JOBS, moved=0, announce=0)
        for job_id in jobs[moved_count : 2 * moved_count]:  # memory: one more changed cycle, traced
            sim.advance(job_id, 1)
        results["peak_mib"] = traced_poll(stack, provider)
        for job_id in jobs:
            sim.advance(job_id, 100)
        cycles["finish"] = run_cycle(stack, aws, sim, provider, active=JOBS, moved=JOBS, announce=JOBS)
        # Fan-out: as many new jobs, seen once, then all finishing in a poll past FANOUT_THRESHOLD
        aws.latency = 0.0
        fresh = add_jobs(JOBS, JOBS)
        for job_id in fresh:
            sim.advance(job_id, provider.first_steps)
        stack.poll(provider.id)
        for job_id in fresh:
            sim.advance(job_id, 100)
        aws.latency = DYNAMODB_LATENCY
        # A listing still shows the first jobs, finished minutes ago: they are read, unchanged, again.
        listed = JOBS if provider.registers else 2 * JOBS
        results["fanout"] = run_fanout_cycle(stack, aws, sim, provider, active=JOBS, listed=listed)
    results["cycles"] = cycles
    return results


def bench_memory(provider: Provider, aws: AwsCalls, count: int) -> dict[str, Any]:
    """Peak Python heap of a changed poll of `count` active jobs (no injected DynamoDB latency: only memory
    is measured)."""
    with provider_stack(provider, aws) as (stack, sim, add_jobs):
        jobs = add_jobs(0, count)
        for job_id in jobs:
            sim.advance(job_id, provider.first_steps)
        stack.poll(provider.id)
        for job_id in jobs[: int(count * CHANGED_SHARE)]:
            sim.advance(job_id, 1)
        return {"provider": provider.id, "jobs": count, "peak_mib": traced_poll(stack, provider)}


def ratio(value: float, bound: float) -> str:
    if not bound:
        return "-" if not value else "inf"
    return f"{value / bound:.2f}"


def markdown(results: list[dict[str, Any]], import_s: float) -> str:
    lines = [
        f"# Benchmark: {JOBS} active jobs per provider",
        "",
        f"Provider latency {PROVIDER_LATENCY * 1000:.0f} ms a request, DynamoDB {DYNAMODB_LATENCY * 1000:.0f} ms "
        f"a call, CONCURRENCY {CONCURRENCY}, {CHANGED_SHARE:.0%} changed in the `changed` cycle. "
        "value / bound (ratio). `CPU s`: this process's CPU time in the poll (the function and its clients, and "
        "the simulator, which runs in the same process); moto's runs in its own.",
        "",
        "| provider | cycle | changed | provider requests | table writes | write units | read units | "
        "SNS messages | PublishBatch calls | wall s | moto s | wall less moto s | latency bound s | CPU s |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for result in results:
        for name, cycle in result["cycles"].items():
            lines.append(
                f"| {result['provider']} | {name} | {cycle['jobs_changed']} "
                f"| {cycle['provider_requests']} / {cycle['provider_requests_bound']} "
                f"({ratio(cycle['provider_requests'], cycle['provider_requests_bound'])}) "
                f"| {cycle['table_writes']} / {cycle['table_writes_bound']} "
                f"({ratio(cycle['table_writes'], cycle['table_writes_bound'])}) "
                f"| {cycle['write_units']} | {cycle['read_units']} "
                f"| {cycle['sns_messages']} / {cycle['sns_messages_bound']} "
                f"| {cycle['sns_calls']} / {cycle['sns_calls_bound']} "
                f"| {cycle['wall_s']} | {cycle['moto_s']} "
                f"| {cycle['wall_without_moto_s']} ({ratio(cycle['wall_without_moto_s'], cycle['latency_bound_s'])}x) "
                f"| {cycle['latency_bound_s']} | {cycle['cpu_s']} |"
            )
    lines += [
        "",
        "| provider | peak Python memory (changed cycle) | DynamoDB calls in `finish` |",
        "| --- | ---: | --- |",
    ]
    for result in results:
        finish = result["cycles"]["finish"]["dynamodb_calls"]
        lines.append(
            f"| {result['provider']} | {result['peak_mib']} MiB | "
            + ", ".join(f"{name} {count}" for name, count in sorted(finish.items()))
            + " |"
        )
    lines += [
        "",
        f"Fan-out (`finish` past FANOUT_THRESHOLD, {FANOUT_BATCH} jobs a message, one message an invocation): the "
        "scheduled invocation, then the consumer invocations; and 50,000 active jobs, all changed, projected from "
        f"the measured times less moto's ({FANOUT_CONSUMERS} consumers at once), beside the latency bound of the "
        "scheduled invocation's provider requests:",
        "",
        "| provider | scheduled wall s; less moto (latency bound) | provider requests | scheduled writes "
        "| queue messages | consumer invocations | consumer writes | SNS messages "
        "| consumer wall s mean / max; less moto | 50,000: scheduled s (latency bound) "
        "| 50,000: messages, consumers s |",
        "| --- | --- | --- | ---: | --- | ---: | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        fan = result.get("fanout")
        if not fan:
            continue
        scheduled, consumer, projected = fan["scheduled"], fan["consumer"], fan["projected_50000"]
        lines.append(
            f"| {result['provider']} | {scheduled['wall_s']}; {scheduled['wall_without_moto_s']} "
            f"({scheduled['latency_bound_s']}) "
            f"| {scheduled['provider_requests']} / {scheduled['provider_requests_bound']} "
            f"| {scheduled['table_writes']} "
            f"| {scheduled['queue_messages']} / {scheduled['queue_messages_bound']} "
            f"| {consumer['invocations']} "
            f"| {consumer['table_writes']} / {consumer['table_writes_bound']} "
            f"({ratio(consumer['table_writes'], consumer['table_writes_bound'])}) "
            f"| {consumer['sns_messages']} / {consumer['sns_messages_bound']} "
            f"| {consumer['wall_mean_s']} / {consumer['wall_max_s']}; "
            f"{consumer['wall_without_moto_mean_s']} / {consumer['wall_without_moto_max_s']} "
            f"| {projected['scheduled_s']} ({projected['scheduled_latency_bound_s']}) "
            f"| {projected['messages']}, {projected['consumers_s']} |"
        )
    lines += ["", f"Import of a provider function (fresh interpreter): {import_s:.2f} s", ""]
    lines += [
        "Cost per 1,000 active jobs an hour: 12 polls with the `changed` cycle's counts, and 1,000 jobs finishing "
        "(the `finish` cycle's counts), scaled; Lambda at 256 MB for the measured wall time (moto-inflated):",
        "",
        "| provider | provider requests | write units | read units | SNS messages | USD |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        cost = hourly_cost(result)
        lines.append(
            f"| {result['provider']} | {cost['requests']:.0f} | {cost['wru']:.0f} | {cost['rru']:.0f} "
            f"| {cost['sns']:.0f} | {cost['usd']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def hourly_cost(result: dict[str, Any]) -> dict[str, float]:
    per_job = 1000 / result["jobs"]
    polls = per_job * POLLS_PER_HOUR
    changed, finish = result["cycles"]["changed"], result["cycles"]["finish"]
    requests = changed["provider_requests"] * polls + finish["provider_requests"] * per_job
    wru = changed["write_units"] * polls + finish["write_units"] * per_job
    rru = changed["read_units"] * polls + finish["read_units"] * per_job
    sns = finish["sns_messages"] * per_job
    seconds = changed["wall_s"] * polls + finish["wall_s"] * per_job
    usd = wru * PRICE_WRU / 1e6 + rru * PRICE_RRU / 1e6 + sns * PRICE_SNS / 1e6 + seconds * 0.25 * PRICE_GB_S
    return {"requests": requests, "wru": wru, "rru": rru, "sns": sns, "usd": usd}


def checks(results: list[dict[str, Any]]) -> list[str]:
    """The bounds this code controls: writes (jobs changed + one clear per 100 events), nothing written
    when nothing changed, one message per event in ceil(events/10) calls, encoding.com's requests."""
    missed = []
    for result in results:
        for name, cycle in result["cycles"].items():
            where = f"{result['provider']} {name}"
            if cycle["job_failures"] or cycle["provider_failures"]:
                missed.append(f"{where}: failures {cycle['job_failures']} {cycle['provider_failures']}")
            if cycle["table_writes"] > cycle["table_writes_design_bound"]:
                missed.append(f"{where}: {cycle['table_writes']} writes > {cycle['table_writes_design_bound']}")
            if cycle["sns_messages"] != cycle["sns_messages_bound"]:
                missed.append(f"{where}: {cycle['sns_messages']} events published, {cycle['sns_messages_bound']} due")
            if cycle["sns_calls"] > cycle["sns_calls_bound"]:
                missed.append(f"{where}: {cycle['sns_calls']} publish calls > {cycle['sns_calls_bound']}")
            if cycle["provider_requests"] > cycle["provider_requests_bound"]:
                missed.append(f"{where}: {cycle['provider_requests']} requests > {cycle['provider_requests_bound']}")
        missed += fanout_checks(result)
    return missed


def fanout_checks(result: dict[str, Any]) -> list[str]:
    """The fan-out cycle: every job queued by a scheduled invocation that writes nothing, in the fewest
    messages; the consumers write each job once (plus their clears) and publish each event once."""
    fan = result.get("fanout")
    if not fan:
        return []
    where, scheduled, consumer = f"{result['provider']} fanout", fan["scheduled"], fan["consumer"]
    missed = []
    if fan["jobs_fanned_out"] != result["jobs"]:
        missed.append(f"{where}: {fan['jobs_fanned_out']} jobs fanned out of {result['jobs']}")
    if scheduled["table_writes"]:
        missed.append(f"{where}: the scheduled invocation wrote {scheduled['table_writes']} times")
    if scheduled["provider_requests"] > scheduled["provider_requests_bound"]:
        missed.append(f"{where}: {scheduled['provider_requests']} requests > {scheduled['provider_requests_bound']}")
    if scheduled["queue_messages"] > scheduled["queue_messages_bound"]:
        missed.append(f"{where}: {scheduled['queue_messages']} messages > {scheduled['queue_messages_bound']}")
    if consumer["refused"]:
        missed.append(f"{where}: {consumer['refused']} messages refused")
    if consumer["table_writes"] > consumer["table_writes_design_bound"]:
        missed.append(f"{where}: {consumer['table_writes']} writes > {consumer['table_writes_design_bound']}")
    if consumer["sns_messages"] != consumer["sns_messages_bound"]:
        missed.append(f"{where}: {consumer['sns_messages']} events published, {consumer['sns_messages_bound']} due")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a count this code controls exceeds its bound")
    parser.add_argument("--providers", default="", help="comma-separated provider ids (default: all four)")
    parser.add_argument(
        "--memory", type=int, metavar="N", help="only the peak heap of a changed poll of N active jobs (10000: target)"
    )
    args = parser.parse_args(argv)
    _environment()
    warnings.filterwarnings("ignore")
    chosen = [p for p in PROVIDERS if not args.providers or p.id in args.providers.split(",")]
    if args.memory:
        return memory_only(chosen, args.memory)
    import_s = bench_import()
    results = []
    with moto_server_process():
        aws = AwsCalls()
        for provider in chosen:
            print(f"{provider.id}: {JOBS} jobs ...", flush=True)
            with contextlib.redirect_stdout(io.StringIO()):
                results.append(bench_provider(provider, aws))
    text = markdown(results, import_s)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{JOBS}"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"import_s": import_s, "results": results}, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    print(f"written: bench/results/{stem}.json, bench/results/{stem}.md")
    missed = checks(results)
    for line in missed:
        print(f"BOUND EXCEEDED: {line}")
    if args.check:
        return 1 if missed else 0
    return 0


def memory_only(chosen: list[Provider], count: int) -> int:
    with moto_server_process():
        aws = AwsCalls()
        results = []
        for provider in chosen:
            print(f"{provider.id}: {count} jobs, memory ...", flush=True)
            with contextlib.redirect_stdout(io.StringIO()):
                results.append(bench_memory(provider, aws, count))
    lines = [
        f"# Peak Python heap of a changed poll ({CHANGED_SHARE:.0%} moved), {count} active jobs per provider",
        "",
        "| provider | peak MiB | target |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {r['provider']} | {r['peak_mib']} | {MEMORY_TARGET_MIB} |" for r in results]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"memory-{count}.md").write_text(text)
    (RESULTS / f"memory-{count}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: bench/results/memory-{count}.json, bench/results/memory-{count}.md")
    return 0 if all(r["peak_mib"] < MEMORY_TARGET_MIB for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
