"""`python -m bench.estimate_error`: how far the estimated finish (docs/events.md "When a job will end") is from
the real one, on the simulators' jobs.

Each provider's simulator runs ESTIMATE_JOBS jobs (default 40) through its lifecycle, every step taking a random
time (uniform between half and one and a half of STEP_MINUTES, default 4; seeded, so a run repeats). A poll runs
every POLL_MINUTES (default 1) through the provider's handler against moto in-process, on a simulated clock (the
core's `utc_now`). encoding.com's simulator is told the mean step time, so its `time_left` is what a provider
that knows its average would say; its `sparse` variant, which sends no `time_left`, shows the progress line on
the same jobs. At 25, 50 and 75% of each job's real duration the estimate its item then held is compared with
the time the job really ended (its last step): the error relative to the time that was still left (|estimate -
end| / (end - then)), and how many jobs had an estimate at all. The simulators' progress grows in equal steps,
so what this measures is the rule under uneven step times, not a real provider's progress curve.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

JOBS = int(os.environ.get("ESTIMATE_JOBS", "40"))
STEP_MINUTES = float(os.environ.get("STEP_MINUTES", "4"))
POLL_MINUTES = float(os.environ.get("POLL_MINUTES", "1"))
SEED = int(os.environ.get("ESTIMATE_SEED", "19"))
POINTS = (0.25, 0.5, 0.75)
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Case:
    """One provider (or one of its variants) as the measurement drives it."""

    name: str
    provider: str
    credentials: dict[str, str]
    simulator: Callable[[], Any]
    add: Callable[[Any, int], str]  # (simulator, n) -> job id
    advance: Callable[[Any, str], None]  # one lifecycle step of one job
    steps: int  # steps from the first status to the end
    registers: bool = False  # jobs are tracked through the jobs API (no listing to discover them)
    follow_clock: Callable[[Any, datetime], None] = lambda sim, now: None  # simulators with a clock of their own


def cases() -> list[Case]:
    from local.simulators import encoding_com, transparent_edge, vod_station, xvid

    encoding = {"user_id": "u", "user_key": "k"}
    oauth = {"client_id": "cid", "client_secret": "csecret"}
    edge = {"company_id": "1237", **oauth}
    vod = {"access_key": "sim-access-key", "secret_key": "sim-secret-key"}

    def encoding_sim(variant: str) -> Callable[[], Any]:
        def make() -> Any:
            sim = encoding_com.EncodingComSimulator(**encoding, variant=variant)
            sim.step_seconds = STEP_MINUTES * 60
            return sim

        return make

    def vod_sim() -> Any:
        sim = vod_station.VodStationSimulator(**vod)
        sim.job_clock = lambda: int(_clock.now().timestamp() * 1000)
        return sim

    def xvid_clock(sim: Any, now: datetime) -> None:
        sim.clock_ms = int(now.timestamp() * 1000)

    encoding_steps = len(encoding_com.LIFECYCLE) - 1
    return [
        *(
            Case(
                f"encoding_com ({basis})",
                "encoding_com",
                encoding,
                encoding_sim(variant),
                lambda sim, n: sim.add_job(),
                lambda sim, job_id: sim.advance(job_id),
                encoding_steps,
                registers=True,
            )
            # The documented example answers with time_left; this sparse variant leaves it out: progress only.
            for basis, variant in (("time_left", "example"), ("progress", "lower-case-absent-dates"))
        ),
        Case(
            "transparent_edge",
            "transparent_edge",
            edge,
            lambda: transparent_edge.TransparentEdgeSimulator(**edge),
            lambda sim, n: sim.add_order(),
            lambda sim, job_id: sim.advance(job_id),
            len(transparent_edge.LIFECYCLE) - 1,
        ),
        Case(
            "xvid",
            "xvid",
            oauth,
            lambda: xvid.XvidSimulator(**oauth),
            lambda sim, n: sim.add_job(),
            lambda sim, job_id: sim.advance(job_id),
            len(xvid.SUCCESS_STEPS) - 1,
            follow_clock=xvid_clock,
        ),
        Case(
            "vod_station",
            "vod_station",
            vod,
            vod_sim,
            lambda sim, n: sim.add_job(10019, f"/media/clip-{n}.mp4"),
            lambda sim, job_id: sim.advance(job_id),
            len(vod_station.LIFECYCLE) - 1,
        ),
    ]


class _Clock:
    """The simulated time the core reads through transcode_core.times (as the fault simulation's clock)."""

    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        return self.moment

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from transcode_core import times

        clock = self

        class SimulatedDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return clock.moment if tz is not None else clock.moment.replace(tzinfo=None)

        with mock.patch.object(times, "datetime", SimulatedDatetime):
            yield


_clock = _Clock()


@dataclass
class Job:
    began: datetime  # when the provider started it (it shows up then, at its first status)
    step_times: list[datetime]  # when each later step happens
    estimates: list[tuple[datetime, datetime | None, str | None]] = field(default_factory=list)  # (then, est, basis)

    @property
    def ended(self) -> datetime:
        return self.step_times[-1]


def run_case(case: Case, jobs: int, rng: random.Random) -> dict[str, Any]:
    """Runs one case's jobs to their end; the estimate error at each point of POINTS."""
    from local.stack import LocalStack
    from transcode_core.store import JobStore

    stack = LocalStack(f"estimate-{case.provider.replace('_', '-')}-{rng.randrange(10**6)}").create()
    store = JobStore(stack.table_name)
    # Jobs start over the first few polls; each step lasts half to one and a half of the mean.
    waiting: list[Job] = []
    for _ in range(jobs):
        began = START + timedelta(minutes=rng.uniform(0, 3 * POLL_MINUTES))
        times, moment = [], began
        for _ in range(case.steps):
            moment += timedelta(minutes=STEP_MINUTES * rng.uniform(0.5, 1.5))
            times.append(moment)
        waiting.append(Job(began, times))
    last = max(job.ended for job in waiting)
    sim = case.simulator()
    with sim:
        # One worker: moto in-process is not thread-safe (tests serialize it; this runs outside pytest).
        stack.configure(case.provider, sim.url, case.credentials, env={"STALL_MINUTES": "0", "CONCURRENCY": "1"})
        tracked: dict[str, Job] = {}
        pending: dict[str, list[datetime]] = {}
        while _clock.moment <= last + timedelta(minutes=2 * POLL_MINUTES):
            case.follow_clock(sim, _clock.moment)
            for job in [job for job in waiting if job.began <= _clock.moment]:
                waiting.remove(job)
                job_id = case.add(sim, len(tracked))
                if case.registers:
                    stack.track(case.provider, job_id)
                tracked[job_id], pending[job_id] = job, list(job.step_times)
            for job_id, times in pending.items():
                while times and times[0] <= _clock.moment:
                    times.pop(0)
                    case.advance(sim, job_id)
            stack.poll(case.provider)
            for job_id, item in store.get_many(case.provider, list(tracked)).items():
                estimate = item.get("estimated_finish_at")
                moment = datetime.fromisoformat(estimate.replace("Z", "+00:00")) if estimate else None
                tracked[job_id].estimates.append((_clock.moment, moment, item.get("estimate_basis")))
            _clock.moment += timedelta(minutes=POLL_MINUTES)
    return {"case": case.name, "jobs": jobs, "points": [_point(tracked, share) for share in POINTS]}


def _point(tracked: dict[str, Job], share: float) -> dict[str, Any]:
    """The estimates held when `share` of each job's real duration had passed, against its real end."""
    relative, minutes, bases = [], [], set()
    for job in tracked.values():
        then = job.began + (job.ended - job.began) * share
        held = [entry for entry in job.estimates if entry[0] <= then]
        if not held or held[-1][1] is None:
            continue
        _, estimate, basis = held[-1]
        left = (job.ended - then).total_seconds()
        relative.append(abs((estimate - job.ended).total_seconds()) / left)
        minutes.append(abs((estimate - job.ended).total_seconds()) / 60)
        bases.add(basis)
    return {
        "share": share,
        "with_estimate": len(relative),
        "median_relative_error": round(statistics.median(relative), 3) if relative else None,
        "p90_relative_error": round(_quantile(relative, 0.9), 3) if relative else None,
        "median_error_minutes": round(statistics.median(minutes), 1) if minutes else None,
        "basis": sorted(b for b in bases if b),
    }


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(jobs: int = JOBS, seed: int = SEED, names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every case (or those named), in moto in-process on the simulated clock."""
    from moto import mock_aws

    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    rng = random.Random(seed)
    results = []
    for case in cases():
        if names and case.name not in names:
            continue
        _clock.moment = START
        with mock_aws(), _clock.installed():
            results.append(run_case(case, jobs, rng))
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| provider | at | jobs with an estimate | median error / time left | p90 | median error (min) | basis |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for point in result["points"]:
            lines.append(
                f"| {result['case']} | {point['share']:.0%} | {point['with_estimate']}/{result['jobs']} "
                f"| {_percent(point['median_relative_error'])} | {_percent(point['p90_relative_error'])} "
                f"| {point['median_error_minutes'] if point['median_error_minutes'] is not None else '-'} "
                f"| {', '.join(point['basis']) or '-'} |"
            )
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS, help="jobs per provider")
    parser.add_argument("--json", action="store_true", help="the results as JSON")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)  # the handlers log every change: only the table matters here
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' metrics (EMF) go to stdout
        results = measure(args.jobs)
    print(json.dumps(results, indent=2) if args.json else markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
