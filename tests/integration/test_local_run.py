"""The README's run command works: every provider's jobs reach COMPLETE and ERROR with one event each, and
the output is only the run's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def local_run(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m local.run` as `make demo` runs it (its own moto and simulators, no endpoint from the tests),
    finished successfully."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    run = subprocess.run(
        [sys.executable, "-m", "local.run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.mark.slow
def test_the_local_run_ends_with_every_job_finished_and_one_event_per_attempt():
    run = local_run("--rounds", "12")
    summary = run.stdout.split("=== summary ===", 1)[1]
    for provider in ("encoding_com", "transparent_edge", "xvid", "vod_station"):
        rows = [line.split() for line in summary.splitlines() if line.startswith(provider)]
        statuses = {row[2] for row in rows}
        assert statuses == {"COMPLETE", "ERROR"}, (provider, rows)
    assert "OK: every finished or failed job published exactly one event per attempt" in run.stdout
    # The demo enables the bus: every event on the topic and on the bus, exactly once each.
    assert "OK: every event arrived on the topic and on the bus, exactly once each" in run.stdout
    events = [line for line in run.stdout.splitlines() if line.strip().startswith("EVENT")]
    assert events and all("[topic+bus]" in line for line in events), events
    assert "job.failed" in run.stdout and "job.completed" in run.stdout
    # Nothing that reads as a crash (a traceback, a library's warning), and no exports for a stack that is gone.
    output = run.stdout + run.stderr
    assert "Traceback" not in output and "Warning" not in output, output[-3000:]
    assert not [line for line in run.stdout.splitlines() if line.strip().startswith("export ")]
    assert "make demo ARGS=--keep-running" in run.stdout


@pytest.mark.slow
def test_the_local_run_without_the_bus_is_the_topic_alone():
    run = local_run("--rounds", "8", "--providers", "xvid", "--no-bus")
    assert "OK: every finished or failed job published exactly one event per attempt" in run.stdout
    assert "event bus" not in run.stdout and "[topic" not in run.stdout and "on the bus" not in run.stdout


def test_the_demo_check_holds_each_target_to_once_each():
    from local.run import check

    jobs = [{"provider": "xvid", "job_id": "j1", "status": "COMPLETE", "attempt": 1}]
    event = {"event_id": "xvid#j1#1#COMPLETE"}
    assert check(jobs, [event], [event]) == []
    assert check(jobs, [event], None) == []  # no bus: the topic alone
    assert check(jobs, [event], []) == [
        "no event xvid#j1#1#COMPLETE on the bus",
        "event xvid#j1#1#COMPLETE on the topic only",
    ]
    assert check(jobs, [event], [event, event]) == ["event xvid#j1#1#COMPLETE published 2 times on the bus"]
