"""`make bench`: the poll path's cost at scale, against moto (in-process) and the encoding.com simulator.

moto runs in its own process (server mode), so the time and memory measured are the function's own.
Targets (a run fails when one is missed):
- a poll of 500 active encoding.com jobs (BENCH_JOBS) that all changed: under 15 ms of the function's own
  CPU per job (wall time is printed too, but it is moto's), 20 GetStatus calls (batches of 25), peak Python
  memory under 64 MiB;
- the next poll, where nothing changed: no table writes, within 30 s;
- importing a provider function (the cold-start share that is ours): under 1.5 s.
Numbers are printed; moto is far slower than DynamoDB, so the times are upper bounds of the real ones.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = int(os.environ.get("BENCH_JOBS", "500"))


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
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
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


def bench_poll() -> dict[str, float]:
    from local.simulators.encoding_com import EncodingComSimulator
    from local.stack import LocalStack

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    results: dict[str, float] = {}
    with moto_server_process(), EncodingComSimulator(user_id="b", user_key="k") as simulator:
        stack = LocalStack("bench").create()
        stack.configure("encoding_com", simulator.url, {"user_id": "b", "user_key": "k"})
        with contextlib.redirect_stdout(io.StringIO()):
            for _ in range(JOBS):
                stack.track("encoding_com", simulator.add_job())
            simulator.tick()
            simulator.reset_log()
            started, cpu_started = time.perf_counter(), time.thread_time()
            report = stack.poll("encoding_com")
            results["changed_poll_s"] = time.perf_counter() - started
            # The function runs in this thread (the simulator in others): its CPU time is ours alone.
            results["cpu_ms_per_job"] = (time.thread_time() - cpu_started) * 1000 / JOBS
            results["provider_calls"] = simulator.count()
            results["changed_jobs"] = report["changes"].get("advance", 0)
            simulator.tick()  # once more, with memory traced (tracing slows it down, so it is not timed)
            tracemalloc.start()
            stack.poll("encoding_com")
            results["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            started = time.perf_counter()
            report = stack.poll("encoding_com")
            results["quiet_poll_s"] = time.perf_counter() - started
            results["quiet_writes"] = sum(count for kind, count in report["changes"].items() if kind != "unchanged")
    return results


def main() -> int:
    _environment()
    import_s = bench_import()
    poll = bench_poll()
    checks = [
        ("import of a provider function", f"{import_s:.2f} s", import_s < 1.5),
        (f"poll of {JOBS} changed jobs (wall, moto-bound)", f"{poll['changed_poll_s']:.1f} s", True),
        ("  function CPU per changed job", f"{poll['cpu_ms_per_job']:.1f} ms", poll["cpu_ms_per_job"] < 15),
        ("  jobs changed", f"{poll['changed_jobs']:.0f}", poll["changed_jobs"] == JOBS),
        ("  GetStatus requests (batches of 25)", f"{poll['provider_calls']:.0f}", poll["provider_calls"] == JOBS / 25),
        ("  peak Python memory", f"{poll['peak_mib']:.1f} MiB", poll["peak_mib"] < 64),
        (f"poll of {JOBS} unchanged jobs", f"{poll['quiet_poll_s']:.1f} s", poll["quiet_poll_s"] < 30),
        ("  table writes", f"{poll['quiet_writes']:.0f}", poll["quiet_writes"] == 0),
    ]
    width = max(len(name) for name, _, _ in checks)
    for name, value, ok in checks:
        print(f"{name:<{width}}  {value:>10}  {'ok' if ok else 'MISSED'}")
    missed = [name for name, _, ok in checks if not ok]
    print("all targets met" if not missed else f"missed: {', '.join(name.strip() for name in missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
