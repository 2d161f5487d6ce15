"""template.yaml holds the CONTRACT's deployed names and settings: function ids, routes, table, env, logs."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from local.template import load_template, resource, table_definition
from transcode_core.config import Settings

ROOT = Path(__file__).resolve().parent.parent

# CONTRACT "Providers": logical id -> (function folder, webhook route path)
PROVIDER_FUNCTIONS = {
    "EncodingComFunction": ("encoding_com", "/webhooks/encoding-com"),
    "TransparentEdgeFunction": ("transparent_edge", "/webhooks/transparent-edge"),
    "XvidFunction": ("xvid", "/webhooks/xvid"),
    "VodStationFunction": ("vod_station", "/webhooks/vod-station"),
}
FUNCTIONS = {**{fid: folder for fid, (folder, _) in PROVIDER_FUNCTIONS.items()}, "JobsApiFunction": "jobs_api"}
CONTRACT_ENV = ("TABLE_NAME", "TOPIC_ARN", "PROVIDER_API_URL", "PROVIDER_SECRET_ID")
JOBS_ROUTE = "/jobs/{provider}/{job_id+}"


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


def function_env(template, logical_id):
    """The variables a function gets: Globals merged with its own, as SAM merges them."""
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    own = resource(template, logical_id)["Properties"].get("Environment", {}).get("Variables", {})
    return {**shared, **own}


def http_events(template, logical_id):
    events = resource(template, logical_id)["Properties"].get("Events", {})
    return [event["Properties"] for event in events.values() if event["Type"] == "HttpApi"]


def test_every_contract_function_is_deployed_from_its_handler_file(template):
    handler = template["Globals"]["Function"]["Handler"]
    assert handler == "app.lambda_handler"
    for logical_id, folder in FUNCTIONS.items():
        function = resource(template, logical_id)
        assert function["Type"] == "AWS::Serverless::Function"
        assert function["Properties"]["CodeUri"].rstrip("/") == f"functions/{folder}"
        assert function["Properties"].get("Handler", handler) == "app.lambda_handler"
        app = ROOT / "functions" / folder / "app.py"
        assert app.is_file(), f"{logical_id}: {app} is missing"
        assert "lambda_handler" in app.read_text(), f"{app} defines no lambda_handler"


def test_webhook_routes_are_post_on_the_shared_api_without_authorizer(template):
    for logical_id, (_, path) in PROVIDER_FUNCTIONS.items():
        routes = http_events(template, logical_id)
        assert [(route["Method"], route["Path"]) for route in routes] == [("POST", path)]
        route = routes[0]
        assert route["ApiId"] == {"Ref": "JobsHttpApi"}
        assert route.get("PayloadFormatVersion", "2.0") == "2.0"
        # The token query parameter is checked in code; an authorizer would reject provider callbacks.
        assert "Auth" not in route


def test_jobs_api_routes_require_iam(template):
    routes = http_events(template, "JobsApiFunction")
    assert sorted((route["Method"], route["Path"]) for route in routes) == [
        ("DELETE", JOBS_ROUTE),
        ("GET", JOBS_ROUTE),
        ("PUT", JOBS_ROUTE),
    ]
    for route in routes:
        assert route["ApiId"] == {"Ref": "JobsHttpApi"}
        assert route["Auth"] == {"Authorizer": "AWS_IAM"}
    api = resource(template, "JobsHttpApi")
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert api["Properties"]["Auth"]["EnableIamAuthorizer"] is True
    assert "DefaultAuthorizer" not in api["Properties"]["Auth"]


def test_jobs_table_keys_billing_and_protection(template):
    table = resource(template, "JobsTable")
    properties = table["Properties"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    types = {item["AttributeName"]: item["AttributeType"] for item in properties["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "active_provider": "S", "listed_provider": "S", "updated_at": "S"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    index = properties["GlobalSecondaryIndexes"][0]
    assert index == {
        "IndexName": "ActiveJobs",
        "KeySchema": [
            {"AttributeName": "active_provider", "KeyType": "HASH"},
            {"AttributeName": "pk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def test_table_definition_creates_a_table_whose_active_index_is_sparse(template, aws):
    # Given the table created from the template, as tests and the local run create it
    client = boto3.client("dynamodb")
    client.create_table(TableName="jobs", **table_definition(template))
    client.put_item(
        TableName="jobs",
        Item={"pk": {"S": "xvid#1"}, "sk": {"S": "JOB"}, "active_provider": {"S": "xvid"}},
    )
    client.put_item(TableName="jobs", Item={"pk": {"S": "xvid#2"}, "sk": {"S": "JOB"}})
    # When the poller queries ActiveJobs for its provider
    found = client.query(
        TableName="jobs",
        IndexName="ActiveJobs",
        KeyConditionExpression="active_provider = :p",
        ExpressionAttributeValues={":p": {"S": "xvid"}},
    )["Items"]
    # Then only the job that carries active_provider is listed
    assert [item["pk"]["S"] for item in found] == ["xvid#1"]


def test_table_definition_refuses_intrinsics_in_keys(template):
    changed = {"Resources": {"JobsTable": {"Properties": {"KeySchema": [{"AttributeName": {"Ref": "Key"}}]}}}}
    with pytest.raises(ValueError, match="must be literal"):
        table_definition(changed)


def test_provider_functions_get_the_contract_configuration(template):
    for logical_id in PROVIDER_FUNCTIONS:
        env = function_env(template, logical_id)
        assert set(CONTRACT_ENV) <= set(env), f"{logical_id} lacks {set(CONTRACT_ENV) - set(env)}"
        assert env["TABLE_NAME"] == {"Ref": "JobsTable"}
        assert env["TOPIC_ARN"] == {"Ref": "JobEventsTopic"}
        # The function may read exactly the secret it is configured with, and no other.
        # (Every other permission: tests/test_permissions.py.)
        role = resource(template, logical_id)["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = resource(template, role)["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        secret_reads = [st["Resource"] for st in statements if "secretsmanager:GetSecretValue" in st["Action"]]
        assert secret_reads == [env["PROVIDER_SECRET_ID"]]
    assert "BATCH_SIZE" in function_env(template, "EncodingComFunction")


def test_optional_settings_use_names_the_core_reads(template):
    from transcode_core import observability

    # Settings, and what observability reads beside Powertools' own (the metrics' stack dimension)
    read_by_core = inspect.getsource(Settings.from_env) + inspect.getsource(observability)
    for logical_id in FUNCTIONS:
        for name in function_env(template, logical_id):
            if not name.startswith("POWERTOOLS_"):
                assert f'"{name}"' in read_by_core, f"{logical_id}: {name} is not read by the core"


def test_created_secrets_exist_only_when_no_arn_is_given(template):
    for prefix in ("EncodingCom", "TransparentEdge", "Xvid", "VodStation"):
        secret = resource(template, f"{prefix}Secret")
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        assert template["Conditions"][secret["Condition"]] == {
            "Fn::And": [{"Condition": f"{prefix}Enabled"}, {"Condition": f"Create{prefix}Secret"}]
        }
        assert template["Conditions"][f"Create{prefix}Secret"] == {"Fn::Equals": [{"Ref": f"{prefix}SecretArn"}, ""]}
        assert "webhook_token" in secret["Properties"]["Description"]
        assert secret["Properties"]["GenerateSecretString"]["GenerateStringKey"] == "webhook_token"


def test_runtime_and_core_layer(template):
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Layers"] == [{"Ref": "CoreLayer"}]
    for logical_id in FUNCTIONS:
        assert resource(template, logical_id)["Properties"].get("Runtime", "python3.13") == "python3.13"
    layer = resource(template, "CoreLayer")
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"  # layers/transcode_core/Makefile (tests/test_layer.py)
    assert "python3.13" in layer["Properties"]["CompatibleRuntimes"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.lock").is_file()
    assert (content / "transcode_core" / "__init__.py").is_file()


def test_every_function_logs_to_its_own_group_with_retention(template):
    groups = set()
    for logical_id in FUNCTIONS:
        group_ref = resource(template, logical_id)["Properties"]["LoggingConfig"]["LogGroup"]
        group = resource(template, group_ref["Ref"])
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        groups.add(group_ref["Ref"])
    assert len(groups) == len(FUNCTIONS)


def test_provider_functions_poll_on_the_schedule_with_failures_kept(template):
    for logical_id in PROVIDER_FUNCTIONS:
        properties = resource(template, logical_id)["Properties"]
        schedules = [event["Properties"] for event in properties["Events"].values() if event["Type"] == "Schedule"]
        assert len(schedules) == 1
        assert schedules[0]["Schedule"] == {"Ref": "PollRate"}
        assert "Arn" in schedules[0]["DeadLetterConfig"]
        assert properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_alert_email_receives_the_chosen_events_completions_and_failures_by_default(template):
    from local.artifact import resolve

    subscription = resource(template, "AlertEmailSubscription")
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["FilterPolicyScope"] == "MessageAttributes"
    policy = subscription["Properties"]["FilterPolicy"]
    assert resolve(policy["event"], template, {}) == ["job.completed", "job.failed", "job.test"]
    chosen = {"AlertEmailEvents": "job.stalled, job.canceled"}
    assert resolve(policy["event"], template, chosen) == ["job.stalled", "job.canceled", "job.test"]


def test_outputs_name_what_users_need(template):
    expected = {"ApiUrl", "JobsTableName", "JobEventsTopicArn"}
    for prefix in ("EncodingCom", "TransparentEdge", "Xvid", "VodStation"):
        expected |= {f"{prefix}WebhookUrl", f"{prefix}SecretArn", f"{prefix}FunctionName"}
    expected.add("JobsApiFunctionName")
    assert expected <= set(template["Outputs"])
    for logical_id, (_, path) in PROVIDER_FUNCTIONS.items():
        url = template["Outputs"][logical_id.replace("Function", "WebhookUrl")]["Value"]["Fn::Sub"]
        assert url.endswith(path) and "token" not in url


def test_a_disabled_provider_deploys_no_function_log_group_secret_or_output(template):
    for logical_id in PROVIDER_FUNCTIONS:
        prefix = logical_id.removesuffix("Function")
        enabled = f"{prefix}Enabled"
        assert resource(template, logical_id)["Condition"] == enabled
        assert resource(template, f"{prefix}LogGroup")["Condition"] == enabled
        for output in ("WebhookUrl", "SecretArn", "FunctionName"):
            assert template["Outputs"][f"{prefix}{output}"]["Condition"] == enabled


def test_the_settings_the_readme_recommends_changing_are_parameters(template):
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    for variable, parameter in {
        "DISCOVERY_DAYS": "DiscoveryDays",
        "PAGE_SIZE": "PageSize",
        "CONCURRENCY": "Concurrency",
        "REWATCH_MINUTES": "RewatchMinutes",
        "HTTP_CONNECT_TIMEOUT": "HttpConnectTimeout",
        "HTTP_READ_TIMEOUT": "HttpReadTimeout",
    }.items():
        assert shared[variable] == {"Ref": parameter}
        default = template["Parameters"][parameter]["Default"]
        assert Settings.from_env({"TABLE_NAME": "t", "TOPIC_ARN": "a", variable: str(default)})  # a valid value


def test_the_dashboard_draws_metrics_the_functions_emit(template):
    import re

    body = resource(template, "OperationsDashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
    drawn = set(re.findall(r'MetricName=\\"(\w+)\\"', body))
    emitted = set(re.findall(r'"(\w+)"', (ROOT / "layers/transcode_core/transcode_core/pipeline.py").read_text()))
    assert drawn == {
        "JobsChanged",
        "JobsCompleted",
        "JobsFailed",
        "JobsStalled",
        "ProviderFailures",
        "UnknownStatusWords",
        "PollDuration",
        "PublishFailures",
    }
    assert drawn <= emitted


def test_the_access_log_names_who_signed_each_request_and_never_the_query(template):
    import json

    settings = resource(template, "JobsHttpApi")["Properties"]["AccessLogSettings"]
    fields = json.loads(settings["Format"])  # one JSON object per request
    assert {key: fields[key] for key in ("userArn", "caller", "accountId")} == {
        "userArn": "$context.identity.userArn",
        "caller": "$context.identity.caller",
        "accountId": "$context.identity.accountId",
    }
    assert not any("querystring" in value.lower() or "rawQuery" in value for value in fields.values())


def test_jobs_are_listed_from_an_index_that_holds_no_history(template):
    indexes = {index["IndexName"]: index for index in table_definition(template)["GlobalSecondaryIndexes"]}
    keys = [key["AttributeName"] for key in indexes["JobsByProvider"]["KeySchema"]]
    assert keys == ["listed_provider", "updated_at"]


@pytest.mark.slow
def test_cfn_lint_passes():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    command = str(cfn_lint) if cfn_lint.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed (make install)"
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [command, "template.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"cfn-lint exit {result.returncode}:\n{result.stdout}{result.stderr}"


def test_each_provider_function_consumes_its_own_fanout_queue_with_partial_batch_responses(template):
    dead_letters = resource(template, "FanoutDeadLetterQueue")
    assert dead_letters["Type"] == "AWS::SQS::Queue"
    alarm = resource(template, "FanoutDeadLetterAlarm")["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["FanoutDeadLetterQueue", "QueueName"]}
    queues = set()
    for logical_id in PROVIDER_FUNCTIONS:
        events = resource(template, logical_id)["Properties"]["Events"]
        (fanout,) = [event["Properties"] for event in events.values() if event["Type"] == "SQS"]
        queue_id = fanout["Queue"]["Fn::GetAtt"][0]
        assert fanout["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert function_env(template, logical_id)["FANOUT_QUEUE_URL"] == {"Ref": queue_id}
        queue = resource(template, queue_id)["Properties"]
        assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["FanoutDeadLetterQueue", "Arn"]}
        # Lambda asks for a visibility timeout of at least 6 x the function's timeout
        assert queue["VisibilityTimeout"] >= 6 * template["Globals"]["Function"]["Timeout"]
        queues.add(queue_id)
    assert len(queues) == len(PROVIDER_FUNCTIONS)  # one queue each: a function never gets another's batches


# --- the bus (EventBus: none, default, create) -------------------------------------------------------------
@pytest.mark.parametrize(("bus", "bus_name"), [("none", ""), ("default", "default"), ("create", "stack-job-events")])
def test_provider_functions_are_told_the_bus_and_source_the_deployment_chose(template, bus, bus_name):
    from local.artifact import resolve

    refs = {"EventBus": bus, "EventSource": "media.transcode", "JobEventBus": "stack-job-events"}
    for logical_id in PROVIDER_FUNCTIONS:
        env = function_env(template, logical_id)
        assert resolve(env["EVENT_BUS_NAME"], template, refs) == bus_name  # empty: the topic only, as before
        assert resolve(env["EVENT_SOURCE"], template, refs) == "media.transcode"
    assert "EVENT_BUS_NAME" not in function_env(template, "JobsApiFunction")  # it publishes nothing
    assert template["Parameters"]["EventBus"]["Default"] == "none"
    assert template["Parameters"]["EventSource"]["Default"] == "transcode-status"


@pytest.mark.parametrize("bus", ["none", "default", "create"])
def test_a_bus_a_registry_and_their_outputs_exist_only_when_the_deployment_asks(template, bus):
    from local.artifact import resolve

    refs = {"EventBus": bus}

    def deployed(definition):
        return "Condition" not in definition or resolve({"Condition": definition["Condition"]}, template, refs)

    kinds = {
        definition["Type"]
        for definition in template["Resources"].values()
        if definition["Type"].startswith(("AWS::Events::", "AWS::EventSchemas::")) and deployed(definition)
    }
    outputs = {name for name, output in template["Outputs"].items() if name.startswith("Event") and deployed(output)}
    registry = {"AWS::EventSchemas::Registry", "AWS::EventSchemas::Schema"}
    expected = {"none": set(), "default": registry, "create": {"AWS::Events::EventBus", *registry}}[bus]
    assert kinds == expected
    every_output = {"EventBusName", "EventBusArn", "EventSource", "EventSchemaRegistryName", "EventSchemaName"}
    assert outputs == (set() if bus == "none" else every_output)
    if bus != "none":
        assert resolve(template["Outputs"]["EventBusName"]["Value"], template, {**refs, "JobEventBus": "b"}) == (
            "b" if bus == "create" else "default"
        )


def test_the_registered_schema_is_json_schema_draft_4_in_the_stack_s_registry(template):
    schema = resource(template, "JobEventSchema")["Properties"]
    assert schema["Type"] == "JSONSchemaDraft4"  # the registry takes OpenApi3 or JSONSchemaDraft4, not 2020-12
    assert schema["RegistryName"] == {"Fn::GetAtt": ["JobEventSchemaRegistry", "RegistryName"]}
    # a schema name EventBridge accepts, derived from the source like AWS's own (aws.mediaconvert@...)
    assert schema["SchemaName"] == {"Fn::Sub": "${EventSource}@TranscodeJobEvent"}
