"""The built functions (`sam build` -> .aws-sam/build/) run the way Lambda's python3.13 runtime runs them.

    make invoke FUNCTION=EncodingComFunction EVENT=events/schedule.json      # local stack (moto + simulators)
    make invoke FUNCTION=JobsApiFunction EVENT=events/jobs-put.json ARGS=--aws   # the deployed stack

Each invocation is its own `python3.13 -I -S -B` process (isolated: no site-packages, no PYTHON* variables,
no bytecode written, as /opt is read-only) whose sys.path holds only what Lambda gives a function: its own
folder, the built layer's `python/` folder and the boto3/botocore the runtime ships (RUNTIME_SDK_PINS, installed
once into .aws-sam/runtime-python3.13/). Its environment is the one template.yaml gives that function
(Globals.Function.Environment and the function's own variables, log level included) plus what Lambda sets
(AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, ...), with every Ref resolved: locally against moto in server mode and
the provider simulators (local.stack builds the table, topic and secrets from template.yaml), or with
`--aws` against the deployed stack (CloudFormation DescribeStacks and ListStackResources).

Events are the files under events/. Their placeholder `REPLACE_WITH_WEBHOOK_TOKEN` is replaced by the
`webhook_token` of the secret the function is configured with (PROVIDER_SECRET_ID); events/env.json
overrides the template's literal settings per function (placeholders `REPLACE_WITH_...` and empty values are
skipped; what the template takes from the stack, table, topic, secret, comes from the stack).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.template import load_template

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
RUNTIME = "python3.13"
RUNTIME_DIR = ROOT / ".aws-sam" / f"runtime-{RUNTIME}"
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
ENV_OVERRIDES = ROOT / "events" / "env.json"
TOKEN_PLACEHOLDER = "REPLACE_WITH_WEBHOOK_TOKEN"
# The SDK the python3.13 runtime ships, pinned in one place for the layer's lock, this runner and
# bench/imports.py (see the comments in that file: AWS publishes no fixed version).
RUNTIME_SDK_PINS = ROOT / "layers" / "transcode_core" / "lambda-runtime.txt"
# Lambda's execution environment sets these; the runner does the same (values as the python3.13 runtime has).
LAMBDA_ENV = {
    "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUNTIME}",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # UDP, fire and forget: nothing needs to listen
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}


class ArtifactError(Exception):
    """The built artifact cannot be run (no build, no python3.13, unknown function): one line for the user."""


@dataclass(frozen=True)
class BuiltFunction:
    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory: int
    environment: dict[str, Any]  # as the template writes it, Refs unresolved
    layer_dirs: list[Path]
    triggers: list[str]  # what invokes it (its template Events): "Schedule", "SQS", "HttpApi <METHOD> <path>"


@dataclass
class Invocation:
    function: str
    response: Any = None
    error: dict[str, Any] | None = None
    logs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def json_logs(self) -> list[dict[str, Any]]:
        """The function's structured log lines (Powertools JSON); metric (EMF) lines included."""
        records = []
        for line in self.logs:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


# --- the build ---------------------------------------------------------------------------------------------
# A template event's Type as BuiltFunction.triggers names it (an EventBridge Scheduler target is a schedule).
TRIGGER_KINDS = {"ScheduleV2": "Schedule"}


def built_functions(build_dir: Path = BUILD_DIR) -> dict[str, BuiltFunction]:
    """Every AWS::Serverless::Function of the built template, with Globals applied as SAM applies them."""
    template_path = build_dir / "template.yaml"
    if not template_path.exists():
        raise ArtifactError(f"no build in {build_dir}: run `make build` (sam build) first")
    template = load_template(template_path)
    defaults = template.get("Globals", {}).get("Function", {})
    functions = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **resource.get("Properties", {})}
        environment = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
        }
        layers = []  # SAM appends a function's Layers to the Globals' ones
        for layer in [*defaults.get("Layers", []), *resource.get("Properties", {}).get("Layers", [])]:
            if not (isinstance(layer, dict) and "Ref" in layer):
                raise ArtifactError(f"{logical_id}: only this template's layers are in the build, not {layer}")
            layers.append(build_dir / template["Resources"][layer["Ref"]]["Properties"]["ContentUri"] / "python")
        triggers = []
        for trigger in resource.get("Properties", {}).get("Events", {}).values():
            kind = TRIGGER_KINDS.get(trigger["Type"], trigger["Type"])
            if kind == "HttpApi":
                route = trigger.get("Properties", {})
                kind = f"HttpApi {route.get('Method', '').upper()} {route.get('Path')}"
            triggers.append(kind)
        functions[logical_id] = BuiltFunction(
            logical_id=logical_id,
            code_dir=build_dir / properties["CodeUri"],
            handler=properties["Handler"],
            runtime=properties["Runtime"],
            timeout=int(properties.get("Timeout", 3)),
            memory=int(properties.get("MemorySize", 128)),
            environment=environment,
            layer_dirs=layers,
            triggers=triggers,
        )
    return functions


def find_function(functions: dict[str, BuiltFunction], logical_id: str) -> BuiltFunction:
    try:
        return functions[logical_id]
    except KeyError:
        known = ", ".join(sorted(functions))
        raise ArtifactError(f"no function {logical_id} in the build (known: {known})") from None


def event_trigger(event: Any) -> str | None:
    """What sends an event shaped like this one (as BuiltFunction.triggers names it), or None if unknown."""
    if not isinstance(event, dict):
        return None
    if "routeKey" in event:  # HTTP API payload 2.0
        return f"HttpApi {event['routeKey']}"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return "SQS" if records[0].get("eventSource") == "aws:sqs" else None
    if not event or event.get("source") == "aws.events":  # EventBridge Scheduler sends {}, a rule its event
        return "Schedule"
    return None


def check_trigger(function: BuiltFunction, event: Any, name: str) -> None:
    """Refuses an event that nothing in the template would send to this function (e.g. a schedule to the
    jobs API, which Lambda would fail with a KeyError deep in the router)."""
    trigger = event_trigger(event)
    if trigger is not None and trigger not in function.triggers:
        raise ArtifactError(
            f"{function.logical_id} is not invoked by {name} ({trigger}); "
            f"template.yaml invokes it by: {', '.join(function.triggers)}"
        )


def read_event(path: Path) -> str:
    """The event file's text, checked to be JSON (one line for the user otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)
    except OSError as exc:
        raise ArtifactError(f"cannot read the event file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ArtifactError(f"the event file {path} is not JSON: {exc}") from None
    return text


def resolve(value: Any, template: dict[str, Any], refs: dict[str, str]) -> Any:
    """A template value with Ref, Fn::If, Fn::Join/Split/Select and conditions resolved: `refs` holds resources'
    physical ids and parameter values; a parameter not in it takes its Default (a CommaDelimitedList: a list)."""
    if isinstance(value, dict) and len(value) == 1:
        (kind, argument), *_ = value.items()
        if kind == "Ref":
            parameter = template.get("Parameters", {}).get(argument)
            if argument in refs:
                value = refs[argument]
            elif parameter is not None and "Default" in parameter:
                value = str(parameter["Default"])
            else:
                raise ArtifactError(f"cannot resolve Ref {argument}: not a parameter with a default, not given")
            if parameter is not None and parameter.get("Type") == "CommaDelimitedList":
                return [member.strip() for member in value.split(",")]  # CloudFormation trims each member
            return value
        if kind == "Fn::Join":
            delimiter, members = argument
            members = resolve(members, template, refs)
            return delimiter.join(str(resolve(member, template, refs)) for member in members)
        if kind == "Fn::Split":
            delimiter, source = argument
            return str(resolve(source, template, refs)).split(delimiter)
        if kind == "Fn::Select":
            index, members = argument
            return resolve(members, template, refs)[int(index)]
        if kind == "Fn::And":
            return all(resolve(item, template, refs) for item in argument)
        if kind == "Fn::Or":
            return any(resolve(item, template, refs) for item in argument)
        if kind == "Fn::If":
            condition, if_true, if_false = argument
            chosen = if_true if _condition(template, condition, refs) else if_false
            return resolve(chosen, template, refs)
        if kind == "Fn::Equals":
            left, right = (resolve(item, template, refs) for item in argument)
            return str(left) == str(right)
        if kind == "Fn::Not":
            return not resolve(argument[0], template, refs)
        if kind == "Condition":
            return _condition(template, argument, refs)
        raise ArtifactError(f"cannot resolve {kind} here")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return value
    return value if isinstance(value, str) else str(value)


def _condition(template: dict[str, Any], name: str, refs: dict[str, str]) -> bool:
    return bool(resolve(template["Conditions"][name], template, refs))


def function_environment(
    function: BuiltFunction, template: dict[str, Any], refs: dict[str, str], overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """The template's variables for the function, resolved; `overrides` replace literal settings only."""
    environment = {name: resolve(value, template, refs) for name, value in function.environment.items()}
    for name, value in (overrides or {}).items():
        from_stack = isinstance(function.environment.get(name), dict)
        if value and not str(value).startswith("REPLACE_WITH") and not from_stack:
            environment[name] = str(value)
    return environment


def env_overrides(logical_id: str, path: Path = ENV_OVERRIDES) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8")).get(logical_id, {}) if path.exists() else {}


# --- the runtime -------------------------------------------------------------------------------------------
def find_python() -> str:
    """The python3.13 to run functions with: $LAMBDA_PYTHON, else python3.13 on PATH, else pyenv's."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(RUNTIME) or ""]
    candidates += sorted(str(path) for path in Path.home().glob(f".pyenv/versions/3.13*/bin/{RUNTIME}"))
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13), sys.executable)"],
            capture_output=True,
            text=True,
        )
        matches, _, executable = check.stdout.strip().partition(" ")
        if matches == "True":
            return executable  # the interpreter itself, not a pyenv shim that reads the caller's environment
    raise ArtifactError(
        f"{RUNTIME} not found: the built functions run in the runtime's Python "
        "(install it, or set LAMBDA_PYTHON=/path/to/python3.13)"
    )


def runtime_sdk(python: str, target: Path = RUNTIME_DIR) -> Path:
    """The runtime's SDK (RUNTIME_SDK_PINS) installed with python3.13's pip, again only when the pins change."""
    pins = RUNTIME_SDK_PINS.read_text(encoding="utf-8")
    stamp = target / ".pins"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == pins:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="runtime-", dir=target.parent))
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(staging)]
    result = subprocess.run([*command, "-r", str(RUNTIME_SDK_PINS)], capture_output=True, text=True)
    if result.returncode:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtifactError(f"installing the runtime's SDK ({RUNTIME_SDK_PINS.name}) failed: {result.stderr[-500:]}")
    (staging / ".pins").write_text(pins, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


class Runner:
    """Invokes built functions in python3.13 processes. `aws_env` holds the AWS side of the environment:
    region, credentials and, locally, AWS_ENDPOINT_URL (moto server)."""

    def __init__(self, aws_env: dict[str, str], build_dir: Path = BUILD_DIR) -> None:
        self.build_dir = build_dir
        self.functions = built_functions(build_dir)
        self.template = load_template(build_dir / "template.yaml")
        self.python = find_python()
        self.sdk_dir = runtime_sdk(self.python)
        self.aws_env = dict(aws_env)

    def function(self, logical_id: str) -> BuiltFunction:
        return find_function(self.functions, logical_id)

    def environment(self, logical_id: str, refs: dict[str, str], overrides: dict[str, str] | None = None) -> dict:
        function = self.function(logical_id)
        if function.runtime != RUNTIME:
            raise ArtifactError(f"{logical_id} runs {function.runtime}; this runner emulates {RUNTIME}")
        region = self.aws_env.get("AWS_REGION", "us-east-1")
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            **LAMBDA_ENV,
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]local"),
            "_HANDLER": function.handler,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            **self.aws_env,
            **function_environment(function, self.template, refs, overrides),
        }

    def invoke(self, logical_id: str, event: Any, environment: dict[str, str]) -> Invocation:
        function = self.function(logical_id)
        path = [str(function.code_dir), *(str(layer) for layer in function.layer_dirs), str(self.sdk_dir)]
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="invoke-") as scratch:
            event_file, result_file = Path(scratch, "event.json"), Path(scratch, "result.json")
            event_file.write_text(json.dumps(event), encoding="utf-8")
            command = [self.python, "-I", "-S", "-B", str(BOOTSTRAP), str(result_file), function.handler]
            command += [str(function.timeout), str(event_file), *path]
            invocation = Invocation(logical_id)
            try:
                process = subprocess.run(
                    command,
                    cwd=function.code_dir,
                    env={**environment, "_X_AMZN_TRACE_ID": _trace_id()},
                    capture_output=True,
                    text=True,
                    timeout=function.timeout + 5,
                )
            except subprocess.TimeoutExpired as exc:
                invocation.logs = _lines(exc.stdout) + _lines(exc.stderr)
                message = f"Task timed out after {function.timeout} seconds"
                invocation.error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
                return invocation
            invocation.logs = _lines(process.stdout) + _lines(process.stderr)
            invocation.seconds = time.monotonic() - started
            if not result_file.exists():
                invocation.error = {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"the process exited with status {process.returncode} and no result",
                }
                return invocation
            result = json.loads(result_file.read_text(encoding="utf-8"))
        invocation.response, invocation.error = result.get("response"), result.get("error")
        return invocation


def _lines(text: str | bytes | None) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return [line for line in (text or "").splitlines() if line.strip()]


def _trace_id() -> str:
    now = int(time.time())
    return f"Root=1-{now:08x}-{os.urandom(12).hex()};Parent={os.urandom(8).hex()};Sampled=1"


def fill_event(event_text: str, webhook_token: str | None) -> Any:
    """The event file's JSON with the placeholder token replaced by the function's own."""
    if webhook_token is not None:
        event_text = event_text.replace(TOKEN_PLACEHOLDER, webhook_token)
    return json.loads(event_text)


def webhook_token(secrets_client: Any, environment: dict[str, str]) -> str | None:
    """The webhook_token in the secret the function reads (PROVIDER_SECRET_ID); None for the jobs API."""
    secret_id = environment.get("PROVIDER_SECRET_ID")
    if not secret_id:
        return None
    return json.loads(secrets_client.get_secret_value(SecretId=secret_id)["SecretString"]).get("webhook_token")


# --- the local stack: moto server + simulators -------------------------------------------------------------
LOCAL_AWS_ENV = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}
LOCAL_TOKEN = "local-webhook-token"  # noqa: S105 - the local stack's own
# The job each provider's events/ files name (webhook-*.json; jobs-*.json name encoding.com's).
SAMPLE_JOBS = {
    "encoding_com": "123456789",
    "transparent_edge": "1631092552-1237",
    "xvid": "54761380e4b0fc918f8b8b13",
    "vod_station": "1234:/input/sample.mp4",
}


class LocalDeployment:
    """The stack as the built functions see it locally: moto in server mode (table, topic, secrets created
    from template.yaml by local.stack) and one simulator per provider (local.run's scenarios, with their
    credentials in each function's secret). Use as a context manager; `invoke_file()` runs a built function.
    `with_samples`: each provider's simulator holds the finished job that its events/ files name
    (SAMPLE_JOBS), and the table tracks it, so every events/ file answers as it would for a known job."""

    def __init__(
        self, build_dir: Path = BUILD_DIR, *, with_samples: bool = False, name: str = "transcode-status-artifact"
    ) -> None:
        self.build_dir = build_dir
        self.with_samples = with_samples
        self.name = name  # of the table, topic, secrets: moto's state is shared by the servers of one process
        self.stack: Any = None
        self.simulators: dict[str, Any] = {}  # provider id -> running simulator
        self.refs: dict[str, str] = {}
        self.runner: Runner | None = None
        self._moto: Any = None
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> LocalDeployment:
        from local.moto_server import MotoServer

        self._moto = MotoServer().start()
        aws_env = {**LOCAL_AWS_ENV, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self._moto.url}
        self._saved_env = {name: os.environ.get(name) for name in aws_env}
        os.environ.update(aws_env)  # this process's clients (the stack's) talk to moto too
        try:
            self.runner = Runner(aws_env, self.build_dir)
            self._create()
            if self.with_samples:
                self._seed_samples()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _create(self) -> None:
        from local.run import scenarios
        from local.stack import LocalStack

        self.stack = LocalStack(self.name).create()
        self.refs = {
            "AWS::StackName": self.stack.name,
            "JobsTable": self.stack.table_name,
            "JobEventsTopic": self.stack.topic_arn,
        }
        by_provider = {scenario.provider: scenario for scenario in scenarios()}
        for logical_id, resource in self.stack.template["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            provider = Path(resource["Properties"]["CodeUri"]).name
            scenario = by_provider.get(provider)
            if scenario is None:
                continue
            simulator = scenario.simulator(**scenario.credentials).start()
            self.simulators[provider] = simulator
            arn = self.stack.configure(provider, simulator.url, scenario.credentials, webhook_token=LOCAL_TOKEN)
            prefix = logical_id.removesuffix("Function")  # EncodingComFunction -> EncodingComSecret, ...ApiUrl
            self.refs[f"{prefix}Secret"] = arn
            self.refs[f"{prefix}ApiUrl"] = simulator.url
            # Ref of a queue is its URL: the function's fan-out queue, as the template gives it one.
            fanout = self.stack.sqs.create_queue(QueueName=f"{self.stack.name}-{provider}-fanout")
            self.refs[f"{prefix}FanoutQueue"] = fanout["QueueUrl"]

    def _seed_samples(self) -> None:
        from transcode_core.store import JobStore

        encoding_com = self.simulators["encoding_com"]
        encoding_com.advance(encoding_com.add_job(SAMPLE_JOBS["encoding_com"]), 20)
        transparent_edge = self.simulators["transparent_edge"]
        created = datetime.fromtimestamp(int(SAMPLE_JOBS["transparent_edge"].split("-")[0]), UTC)
        order = transparent_edge.add_order(created_on=created)  # a fresh simulator's first order: "<created>-1237"
        transparent_edge.finish(order)
        xvid = self.simulators["xvid"]
        xvid.finish(xvid.add_job(job_id=SAMPLE_JOBS["xvid"]))
        vod_station = self.simulators["vod_station"]
        category, file_path = SAMPLE_JOBS["vod_station"].split(":", 1)
        vod_station.advance(vod_station.add_job(int(category), file_path, ("HLS",)), 20)
        store = JobStore(self.stack.table_name, client=self.stack.dynamodb)
        for provider, job_id in SAMPLE_JOBS.items():
            store.register(provider, job_id, rewatch_minutes=0)

    def __exit__(self, *exc: Any) -> None:
        for simulator in self.simulators.values():
            simulator.stop()
        if self._moto:
            self._moto.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def environment(self, logical_id: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        assert self.runner, "use LocalDeployment as a context manager"
        return self.runner.environment(logical_id, self.refs, overrides)

    def invoke_file(self, logical_id: str, event_file: Path, overrides: dict[str, str] | None = None) -> Invocation:
        """An events/ file, its token placeholder filled from the function's secret."""
        environment = self.environment(logical_id, overrides)
        event = fill_event(event_file.read_text(encoding="utf-8"), webhook_token(self.stack.secrets, environment))
        assert self.runner
        return self.runner.invoke(logical_id, event, environment)


# --- the deployed stack ------------------------------------------------------------------------------------
def deployed_refs(stack_name: str, region: str | None) -> tuple[dict[str, str], dict[str, str], Any]:
    """(refs, aws_env, secrets client) of the deployed stack: its parameters as deployed and its resources'
    physical ids (what Ref gives), read with the caller's credentials."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise ArtifactError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or pass --region")
    credentials = session.get_credentials()
    if credentials is None:
        raise ArtifactError("no AWS credentials: configure them (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    cloudformation = session.client("cloudformation")
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        refs = {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])}
        refs["AWS::StackName"] = stack_name
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
            for summary in page["StackResourceSummaries"]:
                refs[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    except (BotoCoreError, ClientError) as exc:
        raise ArtifactError(f"reading stack {stack_name} in {session.region_name}: {exc}") from None
    frozen = credentials.get_frozen_credentials()
    aws_env = {"AWS_REGION": session.region_name, "AWS_ACCESS_KEY_ID": frozen.access_key}
    aws_env["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
    if frozen.token:
        aws_env["AWS_SESSION_TOKEN"] = frozen.token
    return refs, aws_env, session.client("secretsmanager")


def samconfig_stack_name(path: Path = ROOT / "samconfig.toml") -> str | None:
    import tomllib

    if not path.exists():
        return None
    default = tomllib.loads(path.read_text(encoding="utf-8")).get("default", {})
    for section in ("deploy", "global"):  # `sam deploy` reads [default.deploy] first, then [default.global]
        name = default.get(section, {}).get("parameters", {}).get("stack_name")
        if name:
            return name
    return None


# --- the command -------------------------------------------------------------------------------------------
def _print(invocation: Invocation) -> None:
    print(f"--- {invocation.function}: log lines ({len(invocation.logs)}) ---")
    for line in invocation.logs:
        print(line)
    print(f"--- {invocation.function}: {'error' if invocation.error else 'response'} ({invocation.seconds:.2f} s) ---")
    print(json.dumps(invocation.error or invocation.response, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", help="logical id in template.yaml, e.g. EncodingComFunction")
    parser.add_argument("event", type=Path, help="event file, e.g. events/schedule.json")
    parser.add_argument("--aws", action="store_true", help="against the deployed stack (your AWS credentials)")
    parser.add_argument("--stack-name", help="deployed stack (default: samconfig.toml's stack_name)")
    parser.add_argument("--region", help="AWS region of the deployed stack (default: your configuration)")
    parser.add_argument("--env-vars", type=Path, default=ENV_OVERRIDES, help="overrides (default events/env.json)")
    args = parser.parse_args(argv)
    try:
        # Everything the user can get wrong is checked before a stack starts or AWS is asked.
        event_text = read_event(args.event)
        check_trigger(find_function(built_functions(), args.function), json.loads(event_text), str(args.event))
        overrides = env_overrides(args.function, args.env_vars)
        if args.aws:
            stack_name = args.stack_name or samconfig_stack_name()
            if not stack_name:
                raise ArtifactError("no stack name: pass --stack-name (samconfig.toml has none)")
            refs, aws_env, secrets = deployed_refs(stack_name, args.region)
            runner = Runner(aws_env)
            environment = runner.environment(args.function, refs, overrides)
            event = fill_event(event_text, webhook_token(secrets, environment))
            invocation = runner.invoke(args.function, event, environment)
        else:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's access log
            with LocalDeployment(with_samples=True) as deployment:
                simulators = ", ".join(sorted(deployment.simulators))
                print(f"local stack: moto server {os.environ['AWS_ENDPOINT_URL']}, simulators for {simulators}")
                print(f"  with the sample jobs the events/ files name: {', '.join(SAMPLE_JOBS.values())}")
                invocation = deployment.invoke_file(args.function, args.event, overrides)
    except (ArtifactError, BotoCoreError, ClientError) as exc:
        print(f"invoke: {exc}", file=sys.stderr)
        return 2
    _print(invocation)
    if invocation.error:
        return 1
    status = invocation.response.get("statusCode") if isinstance(invocation.response, dict) else None
    if isinstance(status, int) and status >= 500:  # what API Gateway would pass on as a server error
        print(f"invoke: {args.function} answered HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
