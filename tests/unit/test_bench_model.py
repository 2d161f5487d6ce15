"""The bench's Lambda model (bench/model.py), its CPU attribution by phase (bench/cpu.py) and the 50,000-job
check that `python -m bench --check` enforces at the deployed MemorySize."""

from __future__ import annotations

import threading
import time

import pytest

from bench import __main__ as bench_main
from bench import model
from bench.cpu import CpuPhases


def burn(seconds: float) -> None:
    """Spends about `seconds` of this thread's CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_a_function_at_256_mb_gets_a_seventh_of_a_vcpu_and_nothing_past_1769_mb():
    assert model.duration(1.0, 2.0, 256) == pytest.approx(1769 / 256 + 2.0)
    assert model.duration(1.0, 2.0, 1769) == pytest.approx(3.0)
    assert model.duration(1.0, 2.0, 3538) == pytest.approx(3.0)  # one interpreter lock: a second vCPU buys nothing


def test_waits_side_by_side_count_once_and_one_after_another_add_up():
    waits = bench_main.InjectedWaits()
    waits.intervals = [(0.0, 0.05), (0.01, 0.06), (0.03, 0.05), (0.1, 0.15)]
    assert waits.union_s() == pytest.approx(0.06 + 0.05)
    threads = [threading.Thread(target=waits.sleep, args=(0.05,)) for _ in range(8)]
    waits.reset()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.05 <= waits.union_s() < 0.05 * 4


def test_dynamodb_waits_count_once_a_call_of_the_invocations_thread_and_once_per_concurrency_of_its_workers():
    waits = bench_main.InjectedWaits()
    waits.dynamodb(0.0)
    workers = [threading.Thread(target=waits.dynamodb, args=(0.0,)) for _ in range(2 * bench_main.CONCURRENCY)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert waits.total_s() == pytest.approx(3 * bench_main.DYNAMODB_LATENCY)


def test_the_model_reads_memory_timeout_and_architecture_from_the_template():
    deployed = model.deployed(bench_main.ROOT / "template.yaml")
    assert deployed["architecture"] == "arm64"
    assert set(deployed["functions"]) == {"encoding_com", "transparent_edge", "xvid", "vod_station", "jobs_api"}
    assert all(f["memory_mb"] >= 128 and f["timeout_s"] >= 3 for f in deployed["functions"].values())


def test_cpu_is_counted_in_the_innermost_phase_and_waits_count_nowhere():
    phases = CpuPhases()
    phases.reset()
    phases.enter("provider")
    burn(0.05)
    time.sleep(0.1)  # a wait: no CPU
    phases.run("dynamodb", burn, 0.03)
    phases.leave("provider")
    worker = threading.Thread(target=phases.run, args=("simulator", burn, 0.04))
    worker.start()
    worker.join()
    burn(0.02)  # outside every phase: deciding
    measured = phases.snapshot()
    assert measured["provider"] == pytest.approx(0.05, abs=0.015)
    assert measured["dynamodb"] == pytest.approx(0.03, abs=0.015)
    assert measured["simulator"] == pytest.approx(0.04, abs=0.015)
    assert measured["deciding"] == pytest.approx(0.02, abs=0.03)
    assert measured["function"] == pytest.approx(measured["process"] - measured["simulator"])


def test_an_iterator_counts_its_own_steps_only():
    phases = CpuPhases()
    phases.reset()

    def reads():
        for _ in range(3):
            burn(0.01)
            yield "snapshot"

    for _ in phases.iterate("provider", reads()):
        burn(0.01)  # the consumer deciding each snapshot
    measured = phases.snapshot()
    assert measured["provider"] == pytest.approx(0.03, abs=0.012)
    assert measured["deciding"] == pytest.approx(0.03, abs=0.02)


def cycle(cpu_s: float, waits_s: float) -> dict:
    return {"cpu_phases_s": {"function": cpu_s}, "waits_s": waits_s}


def measured_result(provider: str, *, per_job_cpu_s: float, jobs: int = 200) -> dict:
    """A bench result whose cycles took `per_job_cpu_s` of function CPU per job beyond a poll of no job."""
    empty = cycle(0.2, 0.1)
    busy = cycle(0.2 + per_job_cpu_s * jobs, 0.1 + 0.0001 * jobs)
    consumer_cpu = per_job_cpu_s * bench_main.FANOUT_BATCH
    return {
        "provider": provider,
        "jobs": jobs,
        "cycles": {"empty": empty, "unchanged": busy},
        "fanout": {
            "scheduled": busy,
            "consumer": {"cpu_s": [consumer_cpu], "waits_s": [0.2]},
        },
    }


def test_the_50000_job_check_fails_when_the_projection_at_the_deployed_memory_is_over():
    memory = bench_main.provider_memory("xvid")
    share = model.cpu_share(memory)
    # 50,000 unchanged jobs in 60 s leave 60 / 50,000 s a job at this share; six times that is over both targets
    over = measured_result("xvid", per_job_cpu_s=6 * share * 60 / 50_000)
    misses = bench_main.projection_misses(over)
    assert any("quiet poll" in line for line in misses)
    assert any("> 300 s" in line for line in misses)


def test_the_50000_job_check_passes_when_the_projection_fits():
    memory = bench_main.provider_memory("xvid")
    share = model.cpu_share(memory)
    fits = measured_result("xvid", per_job_cpu_s=0.2 * share * 60 / 50_000)
    assert bench_main.projection_misses(fits) == []


def test_a_known_miss_is_reported_apart_and_a_met_one_is_named_for_removal(monkeypatch):
    monkeypatch.setattr(bench_main, "KNOWN_MISSES", {("encoding_com", "quiet"): "what would meet it"})
    memory = bench_main.provider_memory("encoding_com")
    share = model.cpu_share(memory)
    over = measured_result("encoding_com", per_job_cpu_s=6 * share * 60 / 50_000)
    # Its scheduled invocation is no known miss, so --check fails on it; the quiet poll's miss is reported apart
    assert [line for line in bench_main.projection_misses(over) if "scheduled invocation" in line]
    assert not [line for line in bench_main.projection_misses(over) if "quiet poll" in line]
    known = bench_main.known_misses([over])
    assert any(line.startswith("KNOWN MISS: ") and "quiet poll" in line for line in known)
    fits = measured_result("encoding_com", per_job_cpu_s=0.2 * share * 60 / 50_000)
    assert bench_main.projection_misses(fits) == []
    assert "KNOWN MISS MET: encoding_com quiet: remove it from KNOWN_MISSES" in bench_main.known_misses([fits])


def test_the_projection_scales_only_what_a_poll_takes_beyond_a_poll_of_no_job():
    result = measured_result("xvid", per_job_cpu_s=0.001)
    at_full_cpu = bench_main.quiet_projection(result, model.FULL_CPU_MB)
    # 0.2 s + 0.1 s a poll, then 1 ms of CPU and 0.1 ms of waits a job, for 50,000 jobs
    assert at_full_cpu == pytest.approx(0.3 + 50_000 * 0.0011, abs=0.1)


def test_an_aws_call_that_fails_closes_its_phase():
    from types import SimpleNamespace

    from botocore.hooks import HierarchicalEmitter

    phases, events = CpuPhases(), HierarchicalEmitter()
    phases.hook_botocore(events)
    phases.reset()
    query = SimpleNamespace(service_model=SimpleNamespace(service_name="dynamodb"))
    events.emit("before-parameter-build.dynamodb.Query", model=query, params={})
    burn(0.03)
    events.emit("after-call-error.dynamodb.Query", exception=TimeoutError(), context={})  # no model given
    burn(0.03)  # after the call: not the client's
    assert phases.snapshot()["dynamodb"] == pytest.approx(0.03, abs=0.015)
