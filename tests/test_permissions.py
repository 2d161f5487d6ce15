"""Least privilege, checked both ways: the AWS calls each function's code can make (read from the source
with `ast`) against the role template.yaml gives it. A call its role lacks fails, and so does a grant no code
makes. When code starts calling a new AWS operation, map it in OPERATIONS (and grant it in the role).
Action names only: the resources and conditions of the calls the code really makes are evaluated as IAM
would in tests/integration/test_permissions_as_iam_evaluates.py."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import botocore.session
import pytest
from botocore import xform_name
from botocore.hooks import HierarchicalEmitter

from local.template import load_template, resource

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "transcode_core" / "transcode_core"
FUNCTIONS = {
    "EncodingComFunction": "encoding_com",
    "TransparentEdgeFunction": "transparent_edge",
    "XvidFunction": "xvid",
    "VodStationFunction": "vod_station",
    "JobsApiFunction": "jobs_api",
}
PROVIDER_FUNCTIONS = {logical_id: folder for logical_id, folder in FUNCTIONS.items() if folder != "jobs_api"}

# boto3 client method (as the code calls it, `client.<op>(...)` or the store's `_call("<op>", ...)`) -> the
# IAM actions it needs. transact_write_items needs the actions of its items (TRANSACT_ITEMS).
OPERATIONS: dict[str, set[str]] = {
    "get_item": {"dynamodb:GetItem"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "query": {"dynamodb:Query"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "transact_write_items": set(),
    "publish": {"sns:Publish"},
    "publish_batch": {"sns:Publish"},  # PublishBatch is authorized as sns:Publish
    "send_message": {"sqs:SendMessage"},
    "send_message_batch": {"sqs:SendMessage"},  # authorized as sqs:SendMessage
    "get_secret_value": {"secretsmanager:GetSecretValue"},
    "put_events": {"events:PutEvents"},
}
TRANSACT_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# Library functions that call AWS on the code's behalf.
LIBRARY_CALLS: dict[str, set[str]] = {"get_secret": {"secretsmanager:GetSecretValue"}}


# --- what the code calls ----------------------------------------------------------------------------
class Definition:
    """One function or method: the AWS operations it calls itself and the names it calls."""

    def __init__(self, node: ast.AST) -> None:
        self.actions: set[str] = set()
        self.operations: set[str] = set()
        self.callees: set[str] = set()
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call):
                self._read_call(inner)

    def _read_call(self, call: ast.Call) -> None:
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name is None:
            return
        self.callees.add(name)
        # A method handed over to be called later (`workers.submit(job_id, self._apply_polled, ...)`) is reached.
        self.callees |= {
            arg.attr
            for arg in [*call.args, *(keyword.value for keyword in call.keywords)]
            if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "self"
        }
        self.actions |= LIBRARY_CALLS.get(name, set())
        operation = None
        if isinstance(func, ast.Attribute) and _is_client(func.value):
            operation = name
        elif name == "_call" and call.args and isinstance(call.args[0], ast.Constant):
            operation = call.args[0].value
        if operation is None:
            return
        self.operations.add(operation)
        self.actions |= OPERATIONS.get(operation, set())
        if operation == "transact_write_items":
            for inner in ast.walk(call):
                if isinstance(inner, ast.Dict):
                    keys = {key.value for key in inner.keys if isinstance(key, ast.Constant)}
                    self.actions |= {TRANSACT_ITEMS[key] for key in keys & TRANSACT_ITEMS.keys()}


def _is_client(node: ast.AST) -> bool:
    """`client`, `self.client`, `self._client`, `sns_client`: an object the code holds as a boto3 client."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name.lstrip("_").endswith("client")


def index_definitions(paths: Iterable[Path]) -> dict[str, list[Definition]]:
    """Every def by its name (methods too; a class name stands for its constructors); nested defs are part
    of the def that holds them. Calls are resolved by name: an over-approximation, never an omission."""
    by_name: dict[str, list[Definition]] = defaultdict(list)
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                by_name[node.name].append(Definition(node))
            elif isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        by_name[member.name].append(Definition(member))
                        if member.name in ("__init__", "__post_init__"):
                            by_name[node.name].append(by_name[member.name][-1])
    return by_name


LAYER_DEFINITIONS = index_definitions(sorted(LAYER.rglob("*.py")))


def reachable(folder: str) -> list[Definition]:
    """The definitions a function's app.py can reach: its module-level calls and defs, then by name."""
    app = ROOT / "functions" / folder / "app.py"
    definitions = {**LAYER_DEFINITIONS}
    for name, defs in index_definitions([app]).items():
        definitions[name] = [*definitions.get(name, []), *defs]
    entry = Definition(ast.parse(app.read_text()))
    seen: set[int] = set()
    found: list[Definition] = [entry]
    names = list(entry.callees) + [
        node.name for node in ast.parse(app.read_text()).body if isinstance(node, ast.FunctionDef)
    ]
    while names:
        for definition in definitions.get(names.pop(), []):
            if id(definition) not in seen:
                seen.add(id(definition))
                found.append(definition)
                names.extend(definition.callees)
    return found


def code_actions(folder: str) -> set[str]:
    return set().union(*(definition.actions for definition in reachable(folder)))


# --- what the roles grant ---------------------------------------------------------------------------
def statements(template, logical_id: str) -> list[dict]:
    """The role's own statements, then those of policies attached to it (whatever their condition: a grant
    that some deployments make must still be one the code uses)."""
    function = resource(template, logical_id)["Properties"]
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = resource(template, role_id)
    assert role["Type"] == "AWS::IAM::Role"
    assert "ManagedPolicyArns" not in role["Properties"], "managed policies grant more than the code calls"
    found = [st for policy in role["Properties"]["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    return found + [
        st for policy in attached_policies(template, role_id) for st in policy["PolicyDocument"]["Statement"]
    ]


def attached_policies(template, role_id: str) -> list[dict]:
    """The Properties of every AWS::IAM::Policy that names the role (`!Ref Role` or `!If [cond, !Ref Role, ...]`)."""
    found = []
    for policy in template["Resources"].values():
        if policy["Type"] == "AWS::IAM::Policy":
            roles = [role.get("Fn::If", [None, role])[1] for role in policy["Properties"].get("Roles", [])]
            if {"Ref": role_id} in roles:
                found.append(policy["Properties"])
    return found


def actions_of(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_role_grants_exactly_what_the_code_calls(template, logical_id):
    granted = set().union(
        *(actions_of(st) for st in statements(template, logical_id) if not st["Sid"].startswith("Platform"))
    )
    called = code_actions(FUNCTIONS[logical_id])
    assert called - granted == set(), f"{logical_id} calls actions its role lacks"
    assert granted - called == set(), f"{logical_id}'s role grants actions no code calls"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_platform_grants_are_what_lambda_needs_for_this_function(template, logical_id):
    function = resource(template, logical_id)["Properties"]
    assert "Policies" not in function, "SAM would make its own role, with logs:* on *"
    platform = {st["Sid"]: st for st in statements(template, logical_id) if st["Sid"].startswith("Platform")}
    own_group = function["LoggingConfig"]["LogGroup"]["Ref"]
    logs = platform.pop("PlatformLogs")
    assert actions_of(logs) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert logs["Resource"] == {"Fn::GetAtt": [own_group, "Arn"]}
    tracing = template["Globals"]["Function"].get("Tracing") == "Active"
    assert actions_of(platform.pop("PlatformTracing")) == (
        {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} if tracing else set()
    )
    failure_destination = function.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
    if failure_destination:
        failed_polls = platform.pop("PlatformFailedPolls")
        assert actions_of(failed_polls) == {"sqs:SendMessage"}
        assert failed_polls["Resource"] == failure_destination["Destination"]
    queues = [event["Properties"]["Queue"] for event in function.get("Events", {}).values() if event["Type"] == "SQS"]
    if queues:  # Lambda's SQS event source polls the queue with the function's role
        consumer = platform.pop("PlatformFanoutConsumer")
        assert actions_of(consumer) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
        assert [consumer["Resource"]] == queues
    assert platform == {}, "unexplained platform grants"


@pytest.mark.parametrize("logical_id", sorted(PROVIDER_FUNCTIONS))
def test_provider_functions_reach_only_their_own_items_and_index_partition(template, logical_id):
    provider = FUNCTIONS[logical_id]
    for statement in statements(template, logical_id):
        if statement["Resource"] == "*":
            assert statement["Sid"] == "PlatformTracing", "only X-Ray takes no resource"
        if not any(action.startswith("dynamodb:") for action in actions_of(statement)):
            continue
        (operator, condition), *rest = statement["Condition"].items()
        assert rest == []
        on_index = "index/ActiveJobs" in str(statement["Resource"])
        expected = (
            ("ForAllValues:StringEquals", [provider]) if on_index else ("ForAllValues:StringLike", [f"{provider}#*"])
        )
        assert (operator, condition["dynamodb:LeadingKeys"]) == expected


def test_leading_key_conditions_match_the_keys_the_store_uses():
    """The conditions above hold for the store's actual keys: item pk `<provider>#<job_id>`, index
    partition `active_provider` = the provider id."""
    from transcode_core.store import ACTIVE_INDEX, JobStore, job_key

    class Recorder:
        meta = SimpleNamespace(events=HierarchicalEmitter())  # the store hooks into its client's events

        def query(self, **kwargs):
            self.kwargs = kwargs
            return {"Items": []}

    client = Recorder()
    JobStore("jobs", client=client).active_jobs("xvid")
    assert client.kwargs["IndexName"] == ACTIVE_INDEX == "ActiveJobs"
    assert client.kwargs["KeyConditionExpression"] == "active_provider = :p"
    assert client.kwargs["ExpressionAttributeValues"] == {":p": {"S": "xvid"}}
    assert job_key("xvid", "42")["pk"] == "xvid#42"


def test_every_aws_operation_the_code_calls_is_mapped():
    """A boto3 call missing from OPERATIONS would go unchecked: name the IAM actions it needs above."""
    session = botocore.session.get_session()
    known = {
        xform_name(operation)
        for service in ("dynamodb", "sns", "sqs", "secretsmanager", "cloudwatch", "events")
        for operation in session.get_service_model(service).operation_names
    }
    called = set().union(*(d.operations for defs in LAYER_DEFINITIONS.values() for d in defs))
    assert (called & known) - OPERATIONS.keys() == set()


def test_the_scan_sees_the_calls_it_must():
    """The scan itself: a provider function reads, writes, publishes and reads its secret; the jobs API
    reads and registers, and never publishes, reads secrets, scans or deletes."""
    provider = code_actions("xvid")
    assert {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "sns:Publish",
        "secretsmanager:GetSecretValue",
    } <= provider
    jobs_api = code_actions("jobs_api")
    assert {"dynamodb:GetItem", "dynamodb:PutItem"} <= jobs_api
    assert not jobs_api & {"sns:Publish", "secretsmanager:GetSecretValue", "dynamodb:Scan", "dynamodb:DeleteItem"}


# --- the bus (EventBus: none, default, create) -------------------------------------------------------------
BUS_ARNS = {
    "default": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"},
    "create": {"Fn::GetAtt": ["JobEventBus", "Arn"]},
}


def events_grants(template) -> list[tuple[str, dict]]:
    """(logical id, statement) of every statement anywhere in the template that grants an events: action."""
    found = []
    for logical_id, definition in template["Resources"].items():
        documents = [definition["Properties"].get("PolicyDocument")]
        documents += [policy["PolicyDocument"] for policy in definition["Properties"].get("Policies", [])]
        for document in filter(None, documents):
            found += [
                (logical_id, st) for st in document["Statement"] if any(a.startswith("events:") for a in actions_of(st))
            ]
    return found


@pytest.mark.parametrize("bus", ["none", "default", "create"])
def test_only_a_deployment_with_a_bus_may_put_events_and_only_on_that_bus_under_its_source(template, bus):
    from local.artifact import resolve

    refs = {"EventBus": bus, "EventSource": "media.transcode"}
    grants = [
        (logical_id, statement)
        for logical_id, statement in events_grants(template)
        if resolve({"Condition": template["Resources"][logical_id].get("Condition", "SendsToBus")}, template, refs)
    ]
    if bus == "none":
        assert grants == [], "no bus, no events permission anywhere"
        return
    ((logical_id, statement),) = grants
    assert actions_of(statement) == {"events:PutEvents"}
    chosen = statement["Resource"]["Fn::If"]
    assert BUS_ARNS[bus] == (chosen[1] if resolve({"Condition": chosen[0]}, template, refs) else chosen[2])
    sources = statement["Condition"]["ForAllValues:StringEquals"]["events:source"]  # every entry's source
    assert resolve(sources, template, refs) == "media.transcode"
    # attached to exactly the deployed provider functions' roles
    policy = template["Resources"][logical_id]["Properties"]
    for enabled in ("xvid", "encoding_com,vod_station"):
        physical = {f"{prefix}Role": provider for prefix, provider in FUNCTIONS_BY_PREFIX.items()}
        roles = [
            resolve(role, template, {**refs, **physical, "EnabledProviders": enabled, "AWS::NoValue": ""})
            for role in policy["Roles"]
        ]
        assert set(filter(None, roles)) == set(enabled.split(","))


FUNCTIONS_BY_PREFIX = {
    "EncodingCom": "encoding_com",
    "TransparentEdge": "transparent_edge",
    "Xvid": "xvid",
    "VodStation": "vod_station",
}
