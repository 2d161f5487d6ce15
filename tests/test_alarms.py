"""The operations part of template.yaml: every alarm notifies the operations topic (which CloudWatch can
use), watches a metric the code or AWS emits, and has its README line; webhook routes are throttled and the
functions' reserved concurrency is a parameter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from local.template import load_template, resource

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "transcode_core" / "transcode_core"
FUNCTIONS = ("EncodingComFunction", "TransparentEdgeFunction", "XvidFunction", "VodStationFunction", "JobsApiFunction")


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


def alarms(template) -> dict[str, dict]:
    return {
        name: body["Properties"]
        for name, body in template["Resources"].items()
        if body["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_every_alarm_notifies_the_operations_topic_and_is_explained_in_the_readme(template):
    page = (ROOT / "docs" / "operations.md").read_text()
    operations = page[page.index("## Operations") :]
    for name, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}], name
        generic = re.sub(r"^(EncodingCom|TransparentEdge|Xvid|VodStation|JobsApi)Function", "<Function>", name)
        assert f"`{generic}`" in operations, f"docs/operations.md Operations lacks a line for {name}"


def test_the_issue_s_alarms_exist(template):
    names = set(alarms(template))
    for function in FUNCTIONS:
        assert {f"{function}ErrorsAlarm", f"{function}ThrottlesAlarm"} <= names
    assert {
        "PollFailureQueueAlarm",
        "ProviderFailuresAlarm",
        "PublishFailuresAlarm",
        "JobFailuresAlarm",
        "OutboxAgeAlarm",
        "UnknownStatusWordsAlarm",
        "ConfigurationErrorsAlarm",
    } <= names
    provider_failures = alarms(template)["ProviderFailuresAlarm"]
    assert provider_failures["EvaluationPeriods"] == provider_failures["DatapointsToAlarm"]
    assert provider_failures["EvaluationPeriods"] == {"Ref": "ProviderFailurePeriods"}


def test_alarmed_metrics_are_ones_the_code_emits(template):
    code = "\n".join(path.read_text() for path in LAYER.rglob("*.py"))
    for name, alarm in alarms(template).items():
        for query in alarm.get("Metrics", []):
            metric = re.search(r"SELECT \w+\((\w+)\) FROM", query["Expression"]["Fn::Sub"]).group(1)
            assert f'"{metric}"' in code, f"{name} watches {metric}, which no code emits"


def test_every_alarm_and_dashboard_widget_counts_this_stack_s_metrics_only(template):
    # The functions name their stack in every metric (the `stack` dimension, from STACK_NAME)...
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["STACK_NAME"] == {"Ref": "AWS::StackName"}
    # ...and each query of the project's namespace selects that stack's: another stack's never adds up.
    for name, alarm in alarms(template).items():
        if alarm.get("Namespace") == "TranscodeStatus":
            assert {"Name": "stack", "Value": {"Ref": "AWS::StackName"}} in alarm["Dimensions"], name
        for query in alarm.get("Metrics", []):
            expression = query["Expression"]["Fn::Sub"]
            assert "TranscodeStatus" in expression, name
            assert expression.endswith(" WHERE stack = '${AWS::StackName}'"), name
            if "SCHEMA(" in expression:
                assert re.search(r"SCHEMA\(TranscodeStatus(, \w+)*, stack\b", expression), name
    body = resource(template, "OperationsDashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    searches = re.findall(r"SEARCH\('([^']*)'", body)
    assert searches and all(
        search.startswith('{TranscodeStatus,provider,service,stack} stack=\\"${AWS::StackName}\\" ')
        for search in searches
    ), searches


def test_the_operations_topic_is_encrypted_with_a_key_cloudwatch_may_use(template):
    topic = resource(template, "OpsTopic")["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "OpsTopicKey"}
    key = resource(template, "OpsTopicKey")["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    cloudwatch = [st for st in statements if st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    subscription = resource(template, "OpsAlertEmailSubscription")
    assert subscription["Condition"] == "HasOpsAlertEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "OpsTopic"}


def test_webhook_routes_are_throttled_and_concurrency_is_a_parameter(template):
    for function in FUNCTIONS:
        properties = resource(template, function)["Properties"]
        parameter = "JobsApiReservedConcurrency" if function == "JobsApiFunction" else "ProviderReservedConcurrency"
        assert parameter in str(properties["ReservedConcurrentExecutions"])
        for event in properties["Events"].values():
            if event["Type"] == "HttpApi" and event["Properties"]["Path"].startswith("/webhooks/"):
                assert event["Properties"]["RouteSettings"] == {
                    "ThrottlingBurstLimit": {"Ref": "WebhookBurstLimit"},
                    "ThrottlingRateLimit": {"Ref": "WebhookRateLimit"},
                }
