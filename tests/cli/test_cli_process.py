"""The CLI as a process: Ctrl-C ends `events tail` and still removes its queue and subscription (or rule); missing
credentials and an unreachable endpoint are one line with their exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.slow  # every test here starts a Python process

ROOT = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "cli"), str(ROOT / "layers" / "transcode_core")])
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transcode_status_cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def ctrl_c_reaches_it() -> None:
    """In the child before it starts: SIGINT as at a terminal. A process started from one that ignores SIGINT (a
    background job, some CI runners, a pytest-xdist worker) inherits the ignoring, and Ctrl-C would not reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_ends_tail_and_removes_its_queue_and_subscription(moto_server):
    env = cli_env(
        AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_REGION="us-east-1"
    )
    sns = boto3.client("sns", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    topic = sns.create_topic(Name="job-events")["TopicArn"]
    tail = subprocess.Popen(
        [sys.executable, "-m", "transcode_status_cli", "events", "tail", "--topic", topic],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    try:
        assert "listening to job-events" in tail.stderr.readline()
        assert len(sqs.list_queues().get("QueueUrls", [])) == 1
        assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1
        time.sleep(0.5)  # inside the receive loop
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=30) == 0
    finally:
        tail.kill()
    assert "temporary queue and subscription removed" in tail.stderr.read()
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_ctrl_c_ends_a_tail_of_the_bus_and_removes_its_rule_and_queue(moto_server):
    env = cli_env(
        AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_REGION="us-east-1"
    )
    events = boto3.client("events", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    events.create_event_bus(Name="job-events")
    tail = subprocess.Popen(
        [sys.executable, "-m", "transcode_status_cli", "events", "tail", "--bus", "job-events"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    try:
        assert "listening to bus job-events" in tail.stderr.readline()
        assert len(sqs.list_queues().get("QueueUrls", [])) == 1
        assert len(events.list_rules(EventBusName="job-events")["Rules"]) == 1
        time.sleep(0.5)  # inside the receive loop
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=30) == 0
    finally:
        tail.kill()
    assert "temporary queue and rule removed" in tail.stderr.read()
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert events.list_rules(EventBusName="job-events")["Rules"] == []


def test_no_credentials_is_one_line_and_exit_4():
    result = cli("jobs", "list", "--table", "jobs", "--region", "us-east-1", env=cli_env())
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("transcode-status: no AWS credentials") and result.stderr.count("\n") == 1


def test_no_region_is_one_line_and_exit_4():
    result = cli("jobs", "list", "--table", "jobs", env=cli_env(AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b"))
    assert (
        result.returncode == 4 and result.stderr == "transcode-status: no AWS region: give --region or set AWS_REGION\n"
    )


def test_unreachable_endpoint_is_one_line_and_exit_5():
    env = cli_env(AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b", AWS_REGION="us-east-1", AWS_MAX_ATTEMPTS="1")
    result = cli("jobs", "show", "xvid", "abc", "--table", "jobs", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert result.returncode == 5 and result.stderr.count("\n") == 1 and "cannot reach AWS" in result.stderr
