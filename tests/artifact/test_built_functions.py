"""What is deployed is what is tested: every file under events/ invoked against the built functions
(.aws-sam/build/, from `sam build`), each in its own python3.13 process with only what Lambda gives it on
sys.path and the environment template.yaml gives it (log level INFO included), against moto in server mode
and the provider simulators (local.artifact). A missing dependency in the layer, a Python 3.13 difference, a
handler path typo or a log-level crash fails here. Needs `make build` (`make test` builds first)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from local import artifact
from local.artifact import ROOT, ArtifactError, Invocation, LocalDeployment, Runner

pytestmark = pytest.mark.artifact

EVENTS = ROOT / "events"
# Which events/ file each test invokes; a new file must be added to a test (test_every_event_file_is_invoked).
COVERED = {
    "schedule.json",
    "scheduler.json",
    "jobs-put.json",
    "jobs-get.json",
    "jobs-delete.json",
    "webhook-encoding-com.json",
    "webhook-transparent-edge.json",
    "webhook-xvid.json",
    "webhook-vod-station.json",
}
PROVIDER_FUNCTIONS = ["EncodingComFunction", "TransparentEdgeFunction", "XvidFunction", "VodStationFunction"]


@pytest.fixture(scope="module")
def deployment():
    with LocalDeployment() as running:
        yield running


def succeeded(invocation: Invocation) -> object:
    """The response of an invocation that raised nothing and logged no error (nor a traceback)."""
    assert invocation.error is None, f"{invocation.function} failed: {invocation.error}\n" + "\n".join(invocation.logs)
    errors = [record for record in invocation.json_logs() if record.get("level") in ("ERROR", "CRITICAL")]
    assert not errors, errors
    assert not any("Traceback" in line for line in invocation.logs), "\n".join(invocation.logs)
    return invocation.response


def http(invocation: Invocation) -> tuple[int, object]:
    response = succeeded(invocation)
    assert isinstance(response, dict)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def new_events(deployment: LocalDeployment, seen: list[str]) -> list[str]:
    ids = deployment.stack.event_ids()
    fresh = ids[len(seen) :]
    seen[:] = ids
    return fresh


def test_every_event_file_is_invoked():
    present = {path.name for path in EVENTS.glob("*.json")} - {"env.json"}
    assert present == COVERED, "an events/ file is not invoked by these tests (or one is gone)"


def test_the_functions_run_the_template_settings(deployment):
    environment = deployment.environment("EncodingComFunction")
    assert environment["POWERTOOLS_LOG_LEVEL"] == "INFO"  # what template.yaml deploys
    assert environment["TABLE_NAME"] == deployment.stack.table_name
    assert environment["PROVIDER_API_URL"] == deployment.simulators["encoding_com"].url
    assert environment["BATCH_SIZE"] == "25" and environment["STALL_MINUTES"] == "120"
    assert "POWERTOOLS_TRACE_DISABLED" not in environment and "HTTP_RETRIES" not in environment
    assert environment["STACK_NAME"] == deployment.stack.name  # the metrics' stack dimension


def test_jobs_api_and_encoding_com(deployment):
    seen = deployment.stack.event_ids()
    sim = deployment.simulators["encoding_com"]
    sim.add_job("123456789")  # the media id of the events/ files

    put = deployment.invoke_file("JobsApiFunction", EVENTS / "jobs-put.json")
    status, body = http(put)
    assert status == 201 and body["status"] == "SUBMITTED"
    tracked = [record for record in put.json_logs() if record.get("message") == "job tracked"]
    assert tracked and tracked[0]["new_job"] is True  # the INFO line that used to crash the call
    status, body = http(deployment.invoke_file("JobsApiFunction", EVENTS / "jobs-get.json"))
    assert status == 200 and body["job_id"] == "123456789"

    sim.advance("123456789", 20)
    report = succeeded(deployment.invoke_file("EncodingComFunction", EVENTS / "schedule.json"))
    assert report["snapshots"] == 1 and report["events_published"] == 1
    assert deployment.stack.job("encoding_com", "123456789")["status"] == "COMPLETE"
    assert new_events(deployment, seen) == ["encoding_com#123456789#1#COMPLETE"]

    status, body = http(deployment.invoke_file("EncodingComFunction", EVENTS / "webhook-encoding-com.json"))
    assert (status, body) == (200, {"accepted": 1})
    report = succeeded(deployment.invoke_file("EncodingComFunction", EVENTS / "scheduler.json"))
    assert report["provider"] == "encoding_com" and report["jobs_tracked"] == 0  # finished: no longer polled
    assert new_events(deployment, seen) == []

    status, _ = http(deployment.invoke_file("JobsApiFunction", EVENTS / "jobs-delete.json"))
    assert status == 204
    kept = deployment.stack.job("encoding_com", "123456789")
    assert kept["status"] == "COMPLETE" and kept.get("untracked_at")  # item kept, tracking stopped
    status, body = http(deployment.invoke_file("EncodingComFunction", EVENTS / "webhook-encoding-com.json"))
    assert status == 200 and body["accepted"] == 0  # a webhook does not track it again


def test_transparent_edge(deployment):
    seen = deployment.stack.event_ids()
    sim = deployment.simulators["transparent_edge"]
    hinted = sim.add_order(created_on=datetime.fromtimestamp(1631092552, UTC))
    assert hinted == "1631092552-1237"  # the order the webhook event names
    sim.finish(hinted)
    listed = sim.add_order()
    sim.finish(listed)

    report = succeeded(deployment.invoke_file("TransparentEdgeFunction", EVENTS / "schedule.json"))
    assert report["events_published"] == 1
    assert deployment.stack.job("transparent_edge", listed)["status"] == "COMPLETE"
    assert new_events(deployment, seen) == [f"transparent_edge#{listed}#1#COMPLETE"]

    status, body = http(deployment.invoke_file("TransparentEdgeFunction", EVENTS / "webhook-transparent-edge.json"))
    assert (status, body) == (200, {"accepted": 1})
    assert deployment.stack.job("transparent_edge", hinted)["status"] == "COMPLETE"
    assert new_events(deployment, seen) == [f"transparent_edge#{hinted}#1#COMPLETE"]

    queued = sim.add_order()
    succeeded(deployment.invoke_file("TransparentEdgeFunction", EVENTS / "scheduler.json"))
    assert deployment.stack.job("transparent_edge", queued)["status"] == "QUEUED"


def test_xvid(deployment):
    seen = deployment.stack.event_ids()
    sim = deployment.simulators["xvid"]
    listed = sim.add_job()
    sim.finish(listed)
    report = succeeded(deployment.invoke_file("XvidFunction", EVENTS / "schedule.json"))
    assert report["events_published"] == 1
    assert deployment.stack.job("xvid", listed)["status"] == "COMPLETE"
    assert new_events(deployment, seen) == [f"xvid#{listed}#1#COMPLETE"]

    hinted = sim.add_job(job_id="54761380e4b0fc918f8b8b13")  # the job the webhook event names
    sim.finish(hinted)
    status, body = http(deployment.invoke_file("XvidFunction", EVENTS / "webhook-xvid.json"))
    assert (status, body) == (200, {"accepted": 1})
    assert deployment.stack.job("xvid", hinted)["status"] == "COMPLETE"
    assert new_events(deployment, seen) == [f"xvid#{hinted}#1#COMPLETE"]

    running = sim.add_job()
    succeeded(deployment.invoke_file("XvidFunction", EVENTS / "scheduler.json"))
    assert deployment.stack.job("xvid", running) is not None


def test_vod_station(deployment):
    seen = deployment.stack.event_ids()
    sim = deployment.simulators["vod_station"]
    listed = sim.add_job(10019, "keynote.mp4")
    sim.advance(listed, 20)
    report = succeeded(deployment.invoke_file("VodStationFunction", EVENTS / "schedule.json"))
    assert report["events_published"] == 1
    assert deployment.stack.job("vod_station", listed)["status"] == "COMPLETE"
    assert new_events(deployment, seen) == [f"vod_station#{listed}#1#COMPLETE"]

    # VOD Station callbacks are applied from their payload (its API cannot read one job); a callback alone
    # never completes a job whose outputs no listing has shown yet: the next poll does.
    hinted = sim.add_job(1234, "/input/sample.mp4", ("HLS",))  # the job and output the webhook event names
    sim.advance(hinted, 20)
    status, body = http(deployment.invoke_file("VodStationFunction", EVENTS / "webhook-vod-station.json"))
    assert (status, body) == (200, {"accepted": 1})
    assert deployment.stack.job("vod_station", hinted)["status"] == "PROCESSING"

    waiting = sim.add_job(10020, "promo.mp4")
    succeeded(deployment.invoke_file("VodStationFunction", EVENTS / "scheduler.json"))
    assert deployment.stack.job("vod_station", hinted)["status"] == "COMPLETE"
    assert deployment.stack.job("vod_station", waiting)["status"] == "QUEUED"
    assert new_events(deployment, seen) == [f"vod_station#{hinted}#1#COMPLETE"]


def test_a_wrong_webhook_token_is_refused_by_the_built_function(deployment):
    event = json.loads((EVENTS / "webhook-xvid.json").read_text())  # placeholder left in: not the token
    environment = deployment.environment("XvidFunction")
    status, body = http(deployment.runner.invoke("XvidFunction", event, environment))
    assert (status, body) == (401, {"error": "unauthorized"})


# --- the runner catches what a deployment would hit -------------------------------------------------------
def modified_build(tmp_path: Path, *, handler: str | None = None, app_edit=None, drop_from_layer=()) -> Path:
    """A copy of .aws-sam/build with one change (the real build is untouched): the JobsApiFunction's Handler,
    its app.py edited, or packages left out of the layer. Unchanged folders are symlinked."""
    build = tmp_path / "build"
    build.mkdir()
    template = yaml.safe_load((artifact.BUILD_DIR / "template.yaml").read_text())
    if handler:
        template["Resources"]["JobsApiFunction"]["Properties"]["Handler"] = handler
    (build / "template.yaml").write_text(yaml.safe_dump(template))
    for entry in artifact.BUILD_DIR.iterdir():
        if entry.name == "template.yaml":
            continue
        if entry.name == "JobsApiFunction" and app_edit:
            shutil.copytree(entry, build / entry.name)
            app = build / entry.name / "app.py"
            app.write_text(app_edit(app.read_text()))
        elif entry.name == "CoreLayer" and drop_from_layer:
            (build / "CoreLayer" / "python").mkdir(parents=True)
            for package in (entry / "python").iterdir():
                if package.name not in drop_from_layer:
                    (build / "CoreLayer" / "python" / package.name).symlink_to(package)
        else:
            (build / entry.name).symlink_to(entry)
    return build


def invoke_modified(deployment: LocalDeployment, build: Path, function: str, event_file: str) -> Invocation:
    runner = Runner(deployment.runner.aws_env, build_dir=build)
    environment = runner.environment(function, deployment.refs)
    event = artifact.fill_event((EVENTS / event_file).read_text(), artifact.LOCAL_TOKEN)
    return runner.invoke(function, event, environment)


def test_a_handler_path_typo_fails(deployment, tmp_path):
    invocation = invoke_modified(
        deployment, modified_build(tmp_path, handler="app.lambda_handlr"), "JobsApiFunction", "jobs-get.json"
    )
    assert invocation.error["errorType"] == "Runtime.HandlerNotFound"


def test_a_crash_at_the_deployed_log_level_fails(deployment, tmp_path):
    """The defect this runner was built for: an extra key named like a LogRecord attribute, logged at INFO."""
    build = modified_build(tmp_path, app_edit=lambda source: source.replace('"new_job": created', '"created": created'))
    invocation = invoke_modified(deployment, build, "JobsApiFunction", "jobs-put.json")
    assert invocation.error and invocation.error["errorType"] == "KeyError"
    assert "Attempt to overwrite 'created' in LogRecord" in invocation.error["errorMessage"]


def test_a_dependency_missing_from_the_layer_fails(deployment, tmp_path):
    build = modified_build(tmp_path, drop_from_layer={"defusedxml"})
    invocation = invoke_modified(deployment, build, "EncodingComFunction", "webhook-encoding-com.json")
    assert invocation.error["errorType"] == "Runtime.ImportModuleError"
    assert "defusedxml" in invocation.error["errorMessage"]


def test_without_python313_the_runner_says_so_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA_PYTHON", sys.executable if sys.version_info[:2] != (3, 13) else "/nonexistent")
    monkeypatch.setattr(artifact.shutil, "which", lambda name: None)
    monkeypatch.setattr(artifact.Path, "home", lambda: tmp_path)
    with pytest.raises(ArtifactError, match="python3.13 not found") as raised:
        artifact.find_python()
    assert "\n" not in str(raised.value)


def test_make_invoke_runs_an_event_against_the_local_stack():
    """What `make invoke FUNCTION=JobsApiFunction EVENT=events/jobs-get.json` runs (its own moto and simulators,
    holding the job the events/ files name)."""
    result = subprocess.run(
        [sys.executable, "-m", "local.artifact", "JobsApiFunction", "events/jobs-get.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--- JobsApiFunction: response" in result.stdout
    assert '"statusCode": 200' in result.stdout and "123456789" in result.stdout


# --- make invoke: every events/ file answers on its local stack; mistakes are one line, before any stack ------
@pytest.fixture(scope="module")
def samples():
    """The local stack of `make invoke`: it holds the jobs the events/ files name."""
    with LocalDeployment(with_samples=True, name="transcode-status-samples") as running:
        yield running


# (function, file, HTTP status; None for a poll), in this order on one stack: what docs/development.md lists.
SAMPLE_ANSWERS = [
    ("JobsApiFunction", "jobs-get.json", 200),
    ("JobsApiFunction", "jobs-put.json", 200),  # already tracked: the local stack tracks the sample jobs
    ("EncodingComFunction", "schedule.json", None),
    ("EncodingComFunction", "webhook-encoding-com.json", 200),
    ("TransparentEdgeFunction", "webhook-transparent-edge.json", 200),
    ("XvidFunction", "webhook-xvid.json", 200),
    ("VodStationFunction", "webhook-vod-station.json", 200),
    ("VodStationFunction", "scheduler.json", None),
    ("JobsApiFunction", "jobs-delete.json", 204),
]


def test_every_event_file_answers_as_documented_on_the_local_stack(samples):
    assert {name for _, name, _ in SAMPLE_ANSWERS} == COVERED
    for function, name, status in SAMPLE_ANSWERS:
        event = json.loads((EVENTS / name).read_text())
        artifact.check_trigger(samples.runner.function(function), event, name)  # what `make invoke` checks first
        invocation = samples.invoke_file(function, EVENTS / name)
        if status is None:
            report = succeeded(invocation)
            assert report["provider"] and not report.get("provider_failures"), (name, report)
            continue
        answered, body = http(invocation)
        assert answered == status, (function, name, body)
        if name.startswith("webhook-"):
            assert body == {"accepted": 1}, (function, name, body)
    assert samples.stack.job("encoding_com", "123456789")["status"] == "COMPLETE"
    assert samples.stack.job("xvid", "54761380e4b0fc918f8b8b13")["status"] == "COMPLETE"
    assert samples.stack.job("transparent_edge", "1631092552-1237")["status"] == "COMPLETE"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["JobsApiFunction", "events/missing.json"], "cannot read the event file events/missing.json"),
        (["JobsApiFuncton", "events/jobs-get.json"], "no function JobsApiFuncton in the build (known: Encoding"),
        (["JobsApiFunction", "events/schedule.json"], "JobsApiFunction is not invoked by events/schedule.json"),
        (["XvidFunction", "events/webhook-encoding-com.json"], "(HttpApi POST /webhooks/encoding-com)"),
    ],
)
def test_make_invoke_reports_a_mistake_in_one_line_before_starting_a_stack(arguments, message, capsys):
    assert artifact.main(arguments) == 2
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1, err
    assert "local stack" not in out


def test_make_invoke_fails_when_the_function_answers_a_server_error(tmp_path):
    event = json.loads((EVENTS / "webhook-xvid.json").read_text())
    event["body"] = json.dumps({"job": {"id": "0123456789abcdef01234567"}})  # a job the provider does not know
    unknown = tmp_path / "webhook-unknown-job.json"
    unknown.write_text(json.dumps(event))
    result = subprocess.run(  # its own process: moto's state is per process, and the module's stacks hold theirs
        [sys.executable, "-m", "local.artifact", "XvidFunction", str(unknown)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"statusCode": 502' in result.stdout and "invoke: XvidFunction answered HTTP 502" in result.stderr
