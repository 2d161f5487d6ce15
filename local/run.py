"""The local run: every provider function against moto (server mode) and the provider simulators.

    make demo                      # or: .venv/bin/python -m local.run [--rounds 12] [--providers a,b]
    .venv/bin/python -m local.run --keep-running   # then use .venv/bin/transcode-status against it
    .venv/bin/python -m local.run --aws --providers encoding_com --rounds 1   # real AWS, real provider

Locally nothing leaves 127.0.0.1: moto stands in for DynamoDB, SNS, EventBridge, SQS and Secrets Manager,
the simulators for the providers. The table, topic and secrets are created from template.yaml's definitions,
and an event bus with a rule that sends every job event to a queue (`--no-bus`: the topic only); moto fires
no schedules, so this runner is the schedule: each round it lets the simulated jobs move on, sends the
webhooks the providers would send, invokes each provider function with a scheduled event, and prints what
changed in the table and what was published on the topic and the bus.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.simulators.base import Simulator
from local.stack import FUNCTION_ENV, layer_on_path

DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    **FUNCTION_ENV,  # the functions log at DEBUG: every log call runs, as in the tests
}


@dataclass
class Scenario:
    """One provider's part of the demo: its simulator, the jobs it starts with, what happens between polls."""

    provider: str
    simulator: Callable[..., Simulator]  # called with the credentials
    credentials: dict[str, str]
    seed: Callable[[Any, Any], None]
    between_polls: Callable[[Any, Any, int], None]
    sim: Any = None
    notes: list[str] = field(default_factory=list)


# --- encoding.com: jobs registered through the jobs API, a notify webhook, one failure ---------------------
def _encoding_seed(stack: Any, sim: Any) -> None:
    media = [
        sim.add_job(source="https://media.example.com/in/keynote.mov", formats=2),
        sim.add_job(source="ftp://editor:s3cret@ftp.example.com/in/trailer.mov"),
        sim.add_job(source="https://media.example.com/in/corrupt.mov", fail=True),
    ]
    for media_id in media:
        stack.track("encoding_com", media_id)
    sim.demo_media = media


def _encoding_between(stack: Any, sim: Any, round_no: int) -> None:
    sim.tick()
    if round_no == 3:  # encoding.com calls the notify URL; the function reads the media's status from the API
        media_id = sim.demo_media[0]
        sim.advance(media_id, 2)
        body, content_type = sim.notification(media_id)
        status, answer = stack.webhook("encoding_com", body, content_type=content_type, base64=True)
        print(f"  webhook  encoding_com notify for media {media_id}: HTTP {status} {answer}")


# --- TransparentEdge: orders discovered from the listing, a failure, a requeue ------------------------------
def _transparent_seed(stack: Any, sim: Any) -> None:
    sim.demo_orders = [sim.add_order(), sim.add_order(fail=True), sim.add_order()]


def _transparent_between(stack: Any, sim: Any, round_no: int) -> None:
    sim.tick()
    if round_no == 7:  # the operator requeues a finished order: a new attempt, with its own event
        order_id = sim.demo_orders[0]
        sim.requeue(order_id)
        print(f"  requeue  transparent_edge order {order_id} runs again")
    if round_no == 5:
        order_id = sim.demo_orders[2]
        status, answer = stack.webhook("transparent_edge", {"order_id": order_id})
        print(f"  webhook  transparent_edge callback for order {order_id}: HTTP {status} {answer}")


# --- Xvid: jobs discovered in the in-progress listing; a finish between polls is still caught ------------
def _xvid_seed(stack: Any, sim: Any) -> None:
    sim.demo_jobs = [sim.add_job(), sim.add_job(fail=True), sim.add_job(outputs=("hd", "sd"))]


def _xvid_between(stack: Any, sim: Any, round_no: int) -> None:
    sim.tick()
    sim.advance_clock(minutes=6)  # a poll every 5-6 minutes: finished jobs drop out of `inprogress`
    if round_no == 4:
        job_id = sim.demo_jobs[2]
        status, answer = stack.webhook("xvid", {"job": {"id": job_id}})
        print(f"  webhook  xvid notification for job {job_id}: HTTP {status} {answer}")


# --- VOD Station: jobs discovered in the status list, callbacks applied as they come ----------------------
def _vod_seed(stack: Any, sim: Any) -> None:
    sim.add_job(10019, "keynote.mp4", ("AVC_SD_1Pass_30fps", "AVC_HD_1Pass_30fps"))
    sim.add_job(10019, "broken.mp4", ("AVC_SD_1Pass_30fps",), fail=True)
    sim.add_job(10020, "promo.mp4", ("auto_90fps_abr",))


def _vod_between(stack: Any, sim: Any, round_no: int) -> None:
    sim.tick()
    callbacks = sim.take_callbacks()
    if round_no % 3 == 0:  # callbacks reach us now and then; the poll covers the rest
        accepted = 0
        for payload in callbacks:
            status, answer = stack.webhook("vod_station", payload)
            accepted += answer.get("accepted", 0) if status == 200 else 0
        print(f"  webhook  vod_station {len(callbacks)} callbacks posted, {accepted} applied")


def scenarios() -> list[Scenario]:
    from local.simulators.encoding_com import EncodingComSimulator
    from local.simulators.transparent_edge import TransparentEdgeSimulator
    from local.simulators.vod_station import VodStationSimulator
    from local.simulators.xvid import XvidSimulator

    # Each simulator takes the provider's secret keys as its constructor's keywords.
    return [
        Scenario(
            "encoding_com",
            EncodingComSimulator,
            {"user_id": "demo-user", "user_key": "demo-key"},
            _encoding_seed,
            _encoding_between,
        ),
        Scenario(
            "transparent_edge",
            TransparentEdgeSimulator,
            {"company_id": "1234", "client_id": "demo-client", "client_secret": "demo-secret"},
            _transparent_seed,
            _transparent_between,
        ),
        Scenario(
            "xvid",
            XvidSimulator,
            {"client_id": "demo-client", "client_secret": "demo-secret"},
            _xvid_seed,
            _xvid_between,
        ),
        Scenario(
            "vod_station",
            VodStationSimulator,
            {"access_key": "DEMOACCESSKEY", "secret_key": "demo-secret-key"},
            _vod_seed,
            _vod_between,
        ),
    ]


# --- printing --------------------------------------------------------------------------------------------
def describe(job: dict[str, Any]) -> str:
    progress = f" {job['progress']}%" if job.get("progress") is not None else ""
    attempt = f" attempt {job['attempt']}" if job.get("attempt", 1) > 1 else ""
    return f"{job['status']} ({job.get('provider_status', '-')}{progress}){attempt}"


def print_changes(before: dict[tuple, dict], after: dict[tuple, dict]) -> None:
    for key, job in sorted(after.items()):
        old = before.get(key)
        if old is None:
            print(f"  new      {key[0]:<16} {key[1]:<34} {describe(job)}")
        elif old.get("version") != job.get("version"):
            print(f"  change   {key[0]:<16} {key[1]:<34} {describe(old)} -> {describe(job)}")


def print_events(events: list[dict[str, Any]], bus_events: list[dict[str, Any]] | None = None) -> None:
    on_bus = Counter(event["event_id"] for event in bus_events or [])
    for event in events:
        detail = ""
        if event["status"] == "ERROR" and event["job"].get("error"):
            detail = f"  error: {event['job']['error'].get('message')}"
        elif event["job"].get("outputs"):
            detail = f"  outputs: {len(event['job']['outputs'])}"
        where = "" if bus_events is None else (" [topic+bus]" if on_bus[event["event_id"]] else " [topic]")
        print(f"  EVENT    {event['event']:<14} {event['event_id']}{where}{detail}")


def check(
    jobs: list[dict[str, Any]], events: list[dict[str, Any]], bus_events: list[dict[str, Any]] | None = None
) -> list[str]:
    """What the CONTRACT promises: one event per job and terminal attempt, none twice, none missing; with a
    bus, the same on the bus: every event on the topic and on the bus, exactly once each."""
    layer_on_path()
    from transcode_core.notify import event_id
    from transcode_core.status import is_terminal

    targets = {"topic": events} if bus_events is None else {"topic": events, "bus": bus_events}
    problems = []
    for target, received in targets.items():
        published = Counter(event["event_id"] for event in received)
        problems += [
            f"event {name} published {count} times on the {target}"
            for name, count in sorted(published.items())
            if count > 1
        ]
        for job in jobs:
            if is_terminal(job["status"]):
                expected = event_id(job["provider"], job["job_id"], job["attempt"], job["status"])
                if expected not in published:
                    problems.append(f"no event {expected} on the {target}")
    if bus_events is not None:
        on_topic, on_bus = {event["event_id"] for event in events}, {event["event_id"] for event in bus_events}
        problems += [f"event {name} on the topic only" for name in sorted(on_topic - on_bus)]
        problems += [f"event {name} on the bus only" for name in sorted(on_bus - on_topic)]
    return problems


# --- the runs --------------------------------------------------------------------------------------------
def run_local(
    rounds: int, interval: float, providers: list[str] | None, keep_running: bool = False, *, bus: bool = True
) -> int:
    from local.moto_server import MotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's access log
    os.environ.update(DEMO_ENV)
    _print_only_errors()
    moto = MotoServer().start()
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    print(f"moto server (DynamoDB, SNS, EventBridge, SQS, Secrets Manager) on {moto.url}")
    from local.stack import LocalStack

    stack = LocalStack("transcode-status-demo").create(bus=bus)
    print(f"table {stack.table_name} and topic {stack.topic_arn.rsplit(':', 1)[-1]} created from template.yaml")
    if bus:
        print(f"event bus {stack.bus_name}: a rule sends every job event to a queue the demo reads")
    chosen = [scenario for scenario in scenarios() if not providers or scenario.provider in providers]
    try:
        for scenario in chosen:
            scenario.sim = scenario.simulator(**scenario.credentials).start()
            stack.configure(scenario.provider, scenario.sim.url, scenario.credentials, webhook_token="demo-token")
            scenario.seed(_DemoStack(stack), scenario.sim)
            print(f"{scenario.provider:<16} simulator on {scenario.sim.url}")
        outcome = _rounds(stack, chosen, rounds, interval)
        if keep_running:
            _serve_for_the_cli(stack, moto.url)
        else:
            print("\n(the stack ends with the run: `make demo ARGS=--keep-running` keeps it up for the CLI)")
        return outcome
    finally:
        for scenario in chosen:
            if scenario.sim:
                scenario.sim.stop()
        moto.stop()


def _print_only_errors() -> None:
    """The demo prints what changed; the functions' own log lines would drown it. Their records are still
    built at DEBUG (a bad log call fails here as it would deployed); the handler prints only errors."""
    layer_on_path()
    from transcode_core.observability import logger

    for handler in logging.getLogger(logger.service).handlers:
        handler.setLevel(logging.ERROR)


class _DemoStack:
    """The stack as the demo's providers see it: webhooks carry the demo's token, and the functions'
    metric lines (CloudWatch EMF on stdout) are kept out of the demo's view."""

    def __init__(self, stack: Any) -> None:
        self._stack = stack

    def webhook(self, provider: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        with contextlib.redirect_stdout(io.StringIO()):
            return self._stack.webhook(provider, body, token="demo-token", **kwargs)

    def track(self, provider: str, job_id: str) -> int:
        with contextlib.redirect_stdout(io.StringIO()):
            return self._stack.track(provider, job_id)

    def poll(self, provider: str) -> dict[str, Any]:
        with contextlib.redirect_stdout(io.StringIO()):
            return self._stack.poll(provider)


def _rounds(stack: Any, chosen: list[Scenario], rounds: int, interval: float) -> int:
    demo_stack = _DemoStack(stack)
    state = {(job["provider"], job["job_id"]): job for job in stack.jobs()}
    all_events: list[dict[str, Any]] = []
    all_bus_events: list[dict[str, Any]] | None = [] if stack.bus_name else None
    for round_no in range(1, rounds + 1):
        print(f"\n--- poll round {round_no} ---")
        for scenario in chosen:
            scenario.between_polls(demo_stack, scenario.sim, round_no)
            report = demo_stack.poll(scenario.provider)
            for failure in report.get("provider_failures", []):
                print(f"  failure  {scenario.provider}: {failure}")
        now = {(job["provider"], job["job_id"]): job for job in stack.jobs()}
        print_changes(state, now)
        state = now
        events = stack.events()[len(all_events) :]
        bus_events = None if all_bus_events is None else stack.bus_events()[len(all_bus_events) :]
        print_events(events, bus_events)
        all_events.extend(events)
        if all_bus_events is not None and bus_events is not None:
            all_bus_events.extend(bus_events)
        if interval:
            time.sleep(interval)
    return _summary(list(state.values()), all_events, all_bus_events)


def _summary(
    jobs: list[dict[str, Any]], events: list[dict[str, Any]], bus_events: list[dict[str, Any]] | None = None
) -> int:
    print("\n=== summary ===")
    print(f"{'provider':<16} {'job':<34} {'status':<10} {'provider says':<22} attempt version")
    for job in sorted(jobs, key=lambda job: (job["provider"], job["job_id"])):
        print(
            f"{job['provider']:<16} {job['job_id']:<34} {job['status']:<10} "
            f"{str(job.get('provider_status', '-')):<22} {job['attempt']:>7} {job['version']:>7}"
        )
    by_kind: dict[str, int] = {}
    for event in events:
        by_kind[event["event"]] = by_kind.get(event["event"], 0) + 1
    print(
        f"\n{len(events)} events published: " + ", ".join(f"{count} {kind}" for kind, count in sorted(by_kind.items()))
    )
    if bus_events is not None:
        print(f"{len(bus_events)} events delivered by the bus")
    problems = check(jobs, events, bus_events)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("OK: every finished or failed job published exactly one event per attempt" if not problems else "FAILED")
    if bus_events is not None and not problems:
        print("OK: every event arrived on the topic and on the bus, exactly once each")
    return 1 if problems else 0


def _serve_for_the_cli(stack: Any, endpoint: str) -> None:
    """Serves the jobs API (SigV4 checked, as the deployed IAM authorizer does), prints how to point the CLI
    at this stack and keeps everything up until Ctrl-C."""
    from local.api_gateway import LocalJobsApi

    api = LocalJobsApi(stack).start()
    try:
        print("\nPoint the CLI at this stack (in another terminal):")
        print(
            f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={DEMO_ENV['AWS_ACCESS_KEY_ID']} "
            f"AWS_SECRET_ACCESS_KEY={DEMO_ENV['AWS_SECRET_ACCESS_KEY']} AWS_REGION={DEMO_ENV['AWS_REGION']}"
        )
        print(
            f"  export TRANSCODE_STATUS_TABLE={stack.table_name} TRANSCODE_STATUS_TOPIC={stack.topic_arn}"
            f" TRANSCODE_STATUS_API_URL={api.url}"
        )
        print("  .venv/bin/transcode-status jobs list")
        print("Serving until Ctrl-C.")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        api.stop()


def run_aws(rounds: int, interval: float, providers: list[str]) -> int:
    """Invokes the provider functions' code here against real AWS and the real providers. The environment
    holds what the deployed functions hold: TABLE_NAME, TOPIC_ARN, and per provider PROVIDER_SECRET_ID
    (and optionally PROVIDER_API_URL), e.g. from the stack's Outputs."""
    if len(providers) != 1:
        print("--aws runs one provider at a time (its PROVIDER_SECRET_ID): --providers <id>", file=sys.stderr)
        return 2
    from local.lambda_events import LambdaContext, scheduled_event
    from local.stack import load_function

    layer_on_path()
    import boto3

    session = boto3.Session(region_name=os.environ.get("AWS_REGION"))  # read as Lambda and the AWS CLI read it
    if not session.region_name:
        print("--aws needs an AWS region: set AWS_REGION (or a profile's region)", file=sys.stderr)
        return 2
    if session.get_credentials() is None:
        print(
            "--aws needs AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", file=sys.stderr
        )
        return 2
    os.environ.setdefault("AWS_DEFAULT_REGION", session.region_name)  # the functions' boto3 clients read this one
    for name in ("TABLE_NAME", "TOPIC_ARN", "PROVIDER_SECRET_ID"):
        if not os.environ.get(name):
            print(f"--aws needs {name} in the environment (see README: 'Against real AWS')", file=sys.stderr)
            return 2
    for name, value in FUNCTION_ENV.items():
        if name != "POWERTOOLS_LOG_LEVEL":  # left to Powertools' default (INFO), as deployed
            os.environ.setdefault(name, value)
    functions = {provider: load_function(provider) for provider in providers}  # one warm Lambda each
    for round_no in range(1, rounds + 1):
        for provider, module in functions.items():
            report = module.lambda_handler(scheduled_event(), LambdaContext(function_name=provider))
            print(f"round {round_no} {provider}: {report}")
        if interval and round_no < rounds:
            time.sleep(interval)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12, help="poll rounds (default 12)")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between rounds (default 0)")
    parser.add_argument("--providers", default="", help="comma-separated provider ids (default: all)")
    parser.add_argument("--aws", action="store_true", help="real AWS and real providers (see README)")
    parser.add_argument("--no-bus", action="store_true", help="no EventBridge bus: events go to the topic only")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the rounds, keep moto and the jobs API up for the CLI until Ctrl-C",
    )
    args = parser.parse_args(argv)
    providers = [name.strip() for name in args.providers.split(",") if name.strip()]
    layer_on_path()
    from transcode_core.providers import PROVIDER_IDS as known  # no Powertools import before DEMO_ENV is set

    unknown = [name for name in providers if name not in known]
    if unknown:
        parser.error(f"--providers: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    if args.aws:
        return run_aws(args.rounds, args.interval, providers or ["encoding_com"])
    return run_local(args.rounds, args.interval, providers, args.keep_running, bus=not args.no_bus)


if __name__ == "__main__":
    sys.exit(main())
