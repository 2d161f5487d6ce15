"""What a new user deploys with, checked offline: the template's parameters (the order `sam deploy --guided`
asks them, the bounds CloudFormation and the services accept, EnabledProviders), samconfig.toml, and the
README's deploy quick start (deploy, secrets, subscribe, first alert) as far as it runs without AWS."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

from local.artifact import resolve
from local.template import load_template, resource
from transcode_core.config import Settings
from transcode_core.errors import ConfigurationError
from transcode_core.providers import PROVIDER_IDS
from transcode_core.status import EVENT_NAMES, STALLED_EVENT
from transcode_status_cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = {
    "encoding_com": "EncodingCom",
    "transparent_edge": "TransparentEdge",
    "xvid": "Xvid",
    "vod_station": "VodStation",
}
# CloudWatch Logs' PutRetentionPolicy accepts exactly these.
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922]
LOG_RETENTION_DAYS += [3288, 3653]
METRICS_INSIGHTS_ALARM_RANGE_S = 3 * 3600  # an alarm on a Metrics Insights query evaluates at most 3 hours
METRIC_ALARM_RANGE_S = 24 * 3600  # any other alarm: Period x EvaluationPeriods at most one day


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


def accepts(parameter: dict, value: str) -> bool:
    """Whether CloudFormation accepts `value` for the parameter (its type, bounds, values, pattern)."""
    members = [member.strip() for member in value.split(",")] if parameter["Type"] == "CommaDelimitedList" else [value]
    for member in members:
        if parameter["Type"] == "Number":
            try:
                number = float(member)
            except ValueError:
                return False
            if not parameter.get("MinValue", number) <= number <= parameter.get("MaxValue", number):
                return False
        if "AllowedValues" in parameter and member not in [str(allowed) for allowed in parameter["AllowedValues"]]:
            return False
        if "AllowedPattern" in parameter and not re.fullmatch(parameter["AllowedPattern"], member):
            return False
    return True


# --- the parameters ----------------------------------------------------------------------------------------
def test_guided_deploy_asks_what_to_decide_first_in_the_groups_the_console_shows(template):
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    groups = interface["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    # sam deploy --guided asks in the Parameters' order; the console shows the groups: both the same order
    assert grouped == list(template["Parameters"])
    assert groups[0]["Parameters"] == ["Stage", "EnabledProviders", "AlertEmail", "AlertEmailEvents", "OpsAlertEmail"]
    assert set(interface["ParameterLabels"]) <= set(template["Parameters"])


@pytest.mark.parametrize(
    "enabled",
    ["encoding_com,transparent_edge,xvid,vod_station", "xvid", "vod_station, encoding_com", "transparent_edge"],
)
def test_enabled_providers_deploys_exactly_the_providers_it_lists(template, enabled):
    listed = {member.strip() for member in enabled.split(",")}
    refs = {"EnabledProviders": enabled}
    assert accepts(template["Parameters"]["EnabledProviders"], enabled)
    for provider, prefix in PREFIXES.items():
        deployed = resolve({"Condition": f"{prefix}Enabled"}, template, refs)
        assert deployed == (provider in listed), (enabled, provider)
        assert resolve({"Condition": f"{prefix}SecretCreated"}, template, refs) == (provider in listed)
    # and the jobs API is told which, so it refuses the others' jobs
    variables = resource(template, "JobsApiFunction")["Properties"]["Environment"]["Variables"]
    settings = Settings.from_env(
        {
            "TABLE_NAME": "t",
            "TOPIC_ARN": "a",
            "ENABLED_PROVIDERS": resolve(variables["ENABLED_PROVIDERS"], template, refs),
        }
    )
    assert set(settings.enabled_providers) == listed


def test_enabled_providers_names_every_provider_and_nothing_else(template):
    parameter = template["Parameters"]["EnabledProviders"]
    assert parameter["Type"] == "CommaDelimitedList"
    assert parameter["AllowedValues"] == list(PROVIDER_IDS)
    assert parameter["Default"].split(",") == list(PROVIDER_IDS)
    assert not accepts(parameter, "xvid,bitmovin")
    assert set(PREFIXES) == set(PROVIDER_IDS)
    with pytest.raises(ConfigurationError):
        Settings.from_env({"TABLE_NAME": "t", "TOPIC_ARN": "a", "ENABLED_PROVIDERS": "xvid,bitmovin"})


def test_alert_email_events_are_the_published_events(template):
    parameter = template["Parameters"]["AlertEmailEvents"]
    assert set(parameter["AllowedValues"]) == {*EVENT_NAMES.values(), STALLED_EVENT}
    assert accepts(parameter, "job.failed, job.stalled") and not accepts(parameter, "job.test")


def test_every_parameter_is_bounded_and_its_default_is_accepted(template):
    for name, parameter in template["Parameters"].items():
        if parameter["Type"] == "Number":
            assert "AllowedValues" in parameter or {"MinValue", "MaxValue"} <= set(parameter), name
        else:
            assert "AllowedValues" in parameter or "AllowedPattern" in parameter, name
        assert accepts(parameter, str(parameter["Default"])), name


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("PollRate", "rate(1 minute)", True),
        ("PollRate", "rate(10 minutes)", True),
        ("PollRate", "cron(0/5 * * * ? *)", True),
        ("PollRate", "rate(1 minutes)", False),  # EventBridge refuses the plural for 1, the singular for more
        ("PollRate", "rate(5 minute)", False),
        ("PollRate", "rate(0 minutes)", False),
        ("AlertEmail", "", True),
        ("AlertEmail", "ops@example.com", True),
        ("AlertEmail", "ops@example", False),
        ("OpsAlertEmail", "two@example.com,three@example.com", False),
        ("XvidApiUrl", "api.xvid.com/v1/", False),
        ("ProviderFailurePeriods", "37", False),
        ("EventBus", "none", True),
        ("EventBus", "my-bus", False),  # none, default or create
        ("EventSource", "com.example.transcode", True),
        ("EventSource", "aws.transcode", False),  # PutEvents refuses a custom source starting with aws.
        ("EventSource", "transcode status", False),
    ],
)
def test_values_the_service_would_refuse_are_refused_at_deploy(template, name, value, accepted):
    assert accepts(template["Parameters"][name], value) == accepted


def test_every_setting_parameter_spans_exactly_what_the_functions_accept(template):
    """A value the deploy accepts never fails every invocation at start-up (Settings' own bounds)."""
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in functions:
        variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
    checked = 0
    for variable, value in variables.items():
        parameter = template["Parameters"].get(value.get("Ref")) if isinstance(value, dict) else None
        if not parameter or parameter["Type"] != "Number" or "MinValue" not in parameter:
            continue
        for bound in (parameter["MinValue"], parameter["MaxValue"]):
            Settings.from_env({"TABLE_NAME": "t", "TOPIC_ARN": "a", variable: str(bound)})
        checked += 1
    assert checked >= 9


def test_log_retention_takes_the_values_cloudwatch_logs_accepts(template):
    assert template["Parameters"]["LogRetentionDays"]["AllowedValues"] == LOG_RETENTION_DAYS


def test_no_alarm_can_be_given_more_periods_than_cloudwatch_evaluates(template):
    checked = []
    for logical_id, alarm in template["Resources"].items():
        if alarm["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = alarm["Properties"]
        periods = properties["EvaluationPeriods"]
        if isinstance(periods, dict):
            periods = template["Parameters"][periods["Ref"]]["MaxValue"]
            checked.append(logical_id)
        if "Metrics" in properties:
            queries = [metric for metric in properties["Metrics"] if "Expression" in metric]
            period = max(metric.get("Period", 300) for metric in properties["Metrics"])
            limit = METRICS_INSIGHTS_ALARM_RANGE_S if queries else METRIC_ALARM_RANGE_S
        else:
            period, limit = properties["Period"], METRIC_ALARM_RANGE_S
        assert periods * period <= limit, logical_id
        datapoints = properties.get("DatapointsToAlarm", periods)
        assert datapoints == properties["EvaluationPeriods"] or datapoints <= periods, logical_id
    assert "ProviderFailuresAlarm" in checked


def test_reserved_concurrency_below_the_fanout_concurrency_is_refused_at_deploy(template):
    maximum = set()
    for prefix in PREFIXES.values():
        events = resource(template, f"{prefix}Function")["Properties"]["Events"]
        maximum |= {
            e["Properties"]["ScalingConfig"]["MaximumConcurrency"] for e in events.values() if e["Type"] == "SQS"
        }
    (fanout,) = maximum
    (assertion,) = template["Rules"]["ReservedConcurrencyFitsTheFanout"]["Assertions"]
    (contains,) = assertion["Assert"]["Fn::Not"]
    refused, ref = contains["Fn::Contains"]
    assert ref == {"Ref": "ProviderReservedConcurrency"}
    # 0 reserves none; 1..MaximumConcurrency would throttle fan-out batches into the dead-letter queue
    assert refused == [str(n) for n in range(1, fanout + 1)]
    assert template["Parameters"]["ProviderReservedConcurrency"]["MinValue"] == 0


# --- samconfig.toml ----------------------------------------------------------------------------------------
def samconfig_overrides(environment: str) -> dict[str, str]:
    config = SamConfig(str(ROOT), "samconfig.toml").get_all(["deploy"], "parameters", env=environment)
    return CfnParameterOverridesType().convert((config["parameter_overrides"],), None, None)


def samconfig_stack(environment: str) -> str:
    return SamConfig(str(ROOT), "samconfig.toml").get_all(["deploy"], "parameters", env=environment)["stack_name"]


@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_each_samconfig_environment_sets_its_stage_with_values_the_template_accepts(template, environment):
    overrides = samconfig_overrides(environment)
    assert overrides["Stage"] == ("prod" if environment == "prod" else "dev")
    for name, value in overrides.items():
        assert accepts(template["Parameters"][name], value), (environment, name)


def test_samconfig_says_where_sam_deploy_takes_the_region_from():
    text = (ROOT / "samconfig.toml").read_text()
    assert "AWS_DEFAULT_REGION" in text and "does not read AWS_REGION" in text


# --- the README's deploy commands --------------------------------------------------------------------------
def deploying_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Deploying")
    return readme[start : readme.index("\n## ", start + 1)]


def quick_start() -> list[str]:
    section = deploying_section()
    block = re.search(r"### Quick start.*?```bash\n(.*?)```", section, re.S)
    assert block, "README's Deploying has no quick start block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def documented_sam_deploys() -> list[str]:
    """Every `sam deploy` command in the README and docs/, in code blocks or inline."""
    commands = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for block in re.findall(r"```(?:bash|console)?\n(.*?)```", text, re.S):
            commands += [line for line in block.splitlines() if "sam deploy" in line]
        commands += [span for span in re.findall(r"`([^`\n]+)`", text) if "sam deploy" in span]
    return commands


def parse_transcode_status(args: list[str]) -> click.Command:
    """The command the arguments name, parsed as click would (unknown options or commands raise)."""
    context = cli.make_context("transcode-status", list(args))
    command: click.Command = cli
    while isinstance(command, click.Group):
        # Click 8.2 deprecates `protected_args` (kept as `_protected_args`); 8.1 has only the public name.
        protected = getattr(context, "_protected_args", None)
        protected = context.protected_args if protected is None else protected
        name, command, rest = command.resolve_command(context, [*protected, *context.args])
        context = command.make_context(name, rest, parent=context)
    return command


def test_no_documented_sam_deploy_loses_its_environment_s_settings(template):
    commands = documented_sam_deploys()
    assert any("--parameter-overrides" in command for command in commands)
    for command in commands:
        words = shlex.split(command.split(" #")[0])
        environment = words[words.index("--config-env") + 1] if "--config-env" in words else "default"
        samconfig_stack(environment)  # the environment exists
        if "--parameter-overrides" not in words:
            continue
        start = words.index("--parameter-overrides") + 1
        end = next((i for i in range(start, len(words)) if words[i].startswith("--")), len(words))
        given = CfnParameterOverridesType().convert((" ".join(words[start:end]),), None, None)
        # --parameter-overrides replaces samconfig's line: a command that leaves out Stage=prod drops deletion
        # protection
        assert samconfig_overrides(environment).items() <= given.items(), command
        for name, value in given.items():
            assert accepts(template["Parameters"][name], value), (command, name)


def test_the_quick_start_is_deploy_secrets_then_first_alert_and_every_command_parses():
    lines = quick_start()
    steps = []
    for line in lines:
        words = shlex.split(line)
        if words[0] == "export":
            assignments = dict(word.split("=", 1) for word in words[1:])
            assert "AWS_DEFAULT_REGION" in assignments or "AWS_PROFILE" in assignments  # what sam deploy reads
            steps.append("region")
        elif words[0] == "make":
            makefile = (ROOT / "Makefile").read_text()
            assert all(re.search(rf"^{target}:", makefile, re.M) for target in words[1:]), line
            steps.append("build")
        elif words[:3] == [".venv/bin/sam", "deploy", "--config-env"]:
            stack = samconfig_stack(words[3])
            steps.append("deploy")
        elif words[0] == ".venv/bin/transcode-status":
            command = parse_transcode_status(words[1:])
            assert words[words.index("--stack") + 1] == stack  # the stack just deployed
            steps.append(command.name)
        else:
            pytest.fail(f"the quick start runs something this test does not know: {line}")
    assert steps == ["region", "build", "deploy", "setup", "test"]


def test_the_quick_start_parameters_are_the_ones_to_decide_first(template):
    (deploy,) = [line for line in quick_start() if " deploy " in line]
    words = shlex.split(deploy)
    given = CfnParameterOverridesType().convert(
        (" ".join(words[words.index("--parameter-overrides") + 1 :]),), None, None
    )
    decide_first = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"][0]["Parameters"]
    assert set(given) <= set(decide_first)


def test_every_stack_output_the_docs_query_exists(template):
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for output in re.findall(r"OutputKey=='(\w+)'", page.read_text()):
            assert output in template["Outputs"], (page.name, output)


# --- make build's python3.13 -------------------------------------------------------------------------------
def make_build_line(tmp_path: Path, pyenv_versions: list[str]) -> subprocess.CompletedProcess:
    """`make -n build` on a machine whose only python3.13 are pyenv versions named `pyenv_versions`."""
    from local.artifact import ArtifactError, find_python

    try:
        real = find_python()
    except ArtifactError:
        pytest.skip("no python3.13 here")
    if shutil.which("python3.13", path="/usr/bin:/bin"):
        pytest.skip("a system python3.13 would be found first")
    root = tmp_path / "pyenv"
    for version in pyenv_versions:
        (root / "versions" / version / "bin").mkdir(parents=True)
        (root / "versions" / version / "bin" / "python3.13").symlink_to(real)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(root)}
    make = shutil.which("make") or "make"
    return subprocess.run([make, "-n", "build"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_make_build_finds_whatever_python3_13_pyenv_holds(tmp_path):
    done = make_build_line(tmp_path, ["3.12.1", "3.13.2", "3.13.11"])
    assert done.returncode == 0, done.stderr
    assert f'PATH="{tmp_path}/pyenv/versions/3.13.11/bin/:$PATH"' in done.stdout  # the newest 3.13.x


def test_make_build_without_a_python3_13_says_what_to_install(tmp_path):
    done = make_build_line(tmp_path, [])
    assert done.returncode != 0 and "sam build needs a python3.13" in done.stderr


# --- subscribe and first alert -----------------------------------------------------------------------------
def published_job_event(status: str, *, stalled: bool = False) -> dict:
    from transcode_core.notify import build_event

    job = {"provider": "xvid", "job_id": f"job-{status}-{stalled}", "status": status, "attempt": 1, "version": 2}
    return build_event(
        {**job, "updated_at": "2026-11-25T12:00:00Z"}, "PROCESSING", "2026-11-25T12:00:00Z", stalled=stalled
    )


@pytest.mark.parametrize(
    ("chosen", "delivered"),
    [
        ({}, {"job.completed", "job.failed", "job.test"}),
        ({"AlertEmailEvents": "job.stalled, job.canceled"}, {"job.stalled", "job.canceled", "job.test"}),
    ],
)
def test_alert_email_receives_the_chosen_events_and_the_first_alert(template, aws, chosen, delivered):
    import json

    import boto3
    from click.testing import CliRunner

    from transcode_core.notify import Notifier

    # Given the topic with AlertEmail's subscription as the template makes it (an SQS queue stands in for
    # the e-mail address: SNS applies the same filter policy)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="job-events")["TopicArn"]
    queue = sqs.create_queue(QueueName="alert-email")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    properties = resource(template, "AlertEmailSubscription")["Properties"]
    policy = {key: resolve(value, template, chosen) for key, value in properties["FilterPolicy"].items()}
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps(policy), "FilterPolicyScope": properties["FilterPolicyScope"]},
    )
    # When every kind of job event is published, and the quick start's `events test` runs
    events = [published_job_event(s) for s in ("COMPLETE", "ERROR", "CANCELED")]
    events.append(published_job_event("PROCESSING", stalled=True))
    Notifier(topic, client=sns).publish(events)
    result = CliRunner().invoke(cli, ["events", "test", "--topic", topic])
    assert result.exit_code == 0, result.output
    # Then the address receives exactly the chosen events and the test event
    received = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(message["Body"])["MessageAttributes"]["event"]["Value"] for message in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(received) == sorted(delivered)
