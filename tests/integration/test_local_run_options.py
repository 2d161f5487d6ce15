"""The local run's options: a wrong provider name is an error, `--aws` says in one line what it lacks, and
`--keep-running` leaves a stack that the CLI (as a process, with the exports the run prints) works against."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here starts a Python process

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return {**env, **extra}


def local_run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local.run", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_wrong_provider_name_is_an_error_not_a_green_run_of_nothing():
    result = local_run("--providers", "encoding_com,xvdi", env=clean_env())
    assert result.returncode == 2 and "unknown xvdi" in result.stderr and "moto" not in result.stdout


def test_aws_without_region_or_credentials_says_so_in_one_line():
    result = local_run("--aws", "--providers", "encoding_com", env=clean_env())
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "needs an AWS region" in result.stderr
    result = local_run("--aws", "--providers", "encoding_com", env=clean_env(AWS_REGION="eu-west-1"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "needs AWS credentials" in result.stderr


def ctrl_c_reaches_it() -> None:
    """In the child before it starts: SIGINT as at a terminal. A process started from one that ignores SIGINT (a
    background job, some CI runners, a pytest-xdist worker) inherits the ignoring, and Ctrl-C would not reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_cli_works_against_the_stack_the_local_run_keeps_running():
    demo = subprocess.Popen(
        [sys.executable, "-m", "local.run", "--rounds", "12", "--providers", "encoding_com,xvid", "--keep-running"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    try:
        exports: dict[str, str] = {}
        for line in demo.stdout:
            if line.strip().startswith("export "):
                exports.update(dict(re.findall(r"(\w+)=(\S+)", line)))
            if line.startswith("Serving until Ctrl-C"):
                break
        assert {"AWS_ENDPOINT_URL", "TRANSCODE_STATUS_TABLE", "TRANSCODE_STATUS_API_URL"} <= set(exports)
        env = clean_env(**exports, PYTHONPATH=os.pathsep.join([str(ROOT / "cli"), str(ROOT / "layers/transcode_core")]))

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "transcode_status_cli", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        listed = json.loads(cli("jobs", "list", "--json").stdout)["jobs"]
        assert {job["provider"] for job in listed} == {"encoding_com", "xvid"}
        failed = next(job for job in listed if job["status"] == "ERROR")
        shown = cli("jobs", "show", failed["provider"], failed["job_id"])
        assert shown.returncode == 0 and "history" in shown.stdout
        assert cli("jobs", "untrack", failed["provider"], failed["job_id"]).returncode == 0
        assert cli("jobs", "track", failed["provider"], failed["job_id"]).returncode == 0
        assert cli("events", "replay", failed["provider"], failed["job_id"]).returncode == 0
        assert cli("events", "test").returncode == 0
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
