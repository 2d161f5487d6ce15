"""Least privilege as IAM evaluates it. Every AWS call each function's code makes while it runs its real
paths (a provider function's polls, webhooks, fan-out and fan-out consumer; the jobs API's PUT, GET and
DELETE) is recorded with the resource it targets (table or index ARN, topic, queue, secret) and the key
values IAM's `dynamodb:LeadingKeys` sees, and must be allowed by that function's role in template.yaml: an
Allow statement whose Action, Resource and Condition all match, as IAM matches them. Each statement of the
role must allow at least one recorded call (the paths driven here reach everything the role grants).
tests/test_permissions.py checks the action names both ways from the source, paths not driven included."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from local.lambda_events import sqs_event
from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.transparent_edge import TransparentEdgeSimulator
from local.simulators.vod_station import VodStationSimulator
from local.simulators.xvid import XvidSimulator
from local.template import load_template, resource

pytestmark = (
    pytest.mark.slow
)  # every function's paths driven end to end: `make test` runs them, `make check-fast` does not

ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's
FUNCTIONS = {
    "encoding_com": "EncodingCom",
    "transparent_edge": "TransparentEdge",
    "xvid": "Xvid",
    "vod_station": "VodStation",
    "jobs_api": "JobsApi",
}
SIMULATORS = {
    "encoding_com": (EncodingComSimulator, {"user_id": "u", "user_key": "k"}),
    "transparent_edge": (TransparentEdgeSimulator, {"company_id": "4711", "client_id": "c", "client_secret": "s"}),
    "xvid": (XvidSimulator, {"client_id": "c", "client_secret": "s"}),
    "vod_station": (VodStationSimulator, {"access_key": "a", "secret_key": "s"}),
}
TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


# --- what the code called ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: an action on a resource, with the partition key values the request
    names (`dynamodb:LeadingKeys`; empty for other services)."""

    action: str
    resource: str
    leading_keys: tuple[str, ...]
    call: str  # the API call it came from, for the failure message
    source: str | None = None  # PutEvents: the entry's Source (`events:source`)


class Recorder:
    """Every boto3 call made while `function` is set, as (service, operation, parameters)."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.calls: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)

    def install(self, monkeypatch) -> None:
        original = BaseClient._make_api_call
        recorder = self

        def recording(client, operation_name, api_params):
            if recorder.function:
                service = client.meta.service_model.service_name
                recorder.calls[recorder.function].append((service, operation_name, copy.deepcopy(api_params)))
            return original(client, operation_name, api_params)

        monkeypatch.setattr(BaseClient, "_make_api_call", recording)

    def watch(self, stack) -> None:
        """Attributes the calls made inside `stack.invoke(function, ...)` to that function."""
        invoke = stack.invoke

        def invoke_recorded(function, event, **kwargs):
            self.function = function
            try:
                return invoke(function, event, **kwargs)
            finally:
                self.function = None

        stack.invoke = invoke_recorded


def key_schemas(template) -> dict[str | None, str]:
    """The partition key attribute of the table (None) and of each index, as template.yaml defines them."""
    table = resource(template, "JobsTable")["Properties"]
    hash_of = {None: table["KeySchema"]}
    hash_of.update({index["IndexName"]: index["KeySchema"] for index in table.get("GlobalSecondaryIndexes", [])})
    return {
        name: next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH") for name, schema in hash_of.items()
    }


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def bus_arn(name_or_arn: str) -> str:
    return (
        name_or_arn if name_or_arn.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name_or_arn}"
    )


def queue_arn(url: str) -> str:
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def query_partition_value(params: dict[str, Any], partition_key: str) -> str:
    """The value a Query's key condition gives the partition key (`name = :value`)."""
    names = params.get("ExpressionAttributeNames", {})
    for name, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
        if names.get(name, name) == partition_key:
            return params["ExpressionAttributeValues"][placeholder]["S"]
    raise AssertionError(f"a Query without a partition key condition: {params['KeyConditionExpression']}")


def requests_of(call: tuple[str, str, dict[str, Any]], partition_keys: dict[str | None, str], secret_arns) -> list:
    """The authorizations IAM makes for one API call (a transaction or a batch: one per item or table)."""
    service, operation, params = call
    label = f"{service}.{operation}"
    if service == "dynamodb":
        pk = partition_keys[None]
        if operation == "TransactWriteItems":
            return [
                Request(
                    TRANSACT_ACTIONS[kind],
                    table_arn(body["TableName"]),
                    ((body.get("Key") or body["Item"])[pk]["S"],),
                    label,
                )
                for entry in params["TransactItems"]
                for kind, body in entry.items()
            ]
        if operation == "BatchGetItem":
            return [
                Request(
                    "dynamodb:BatchGetItem", table_arn(table), tuple(key[pk]["S"] for key in request["Keys"]), label
                )
                for table, request in params["RequestItems"].items()
            ]
        if operation == "Query":
            index = params.get("IndexName")
            arn = table_arn(params["TableName"]) + (f"/index/{index}" if index else "")
            return [Request("dynamodb:Query", arn, (query_partition_value(params, partition_keys[index]),), label)]
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            key = params.get("Key") or params["Item"]
            return [Request(f"dynamodb:{operation}", table_arn(params["TableName"]), (key[pk]["S"],), label)]
    if service == "sns" and operation in ("Publish", "PublishBatch"):  # PublishBatch is authorized as Publish
        return [Request("sns:Publish", params["TopicArn"], (), label)]
    if service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):  # the batch as SendMessage
        return [Request("sqs:SendMessage", queue_arn(params["QueueUrl"]), (), label)]
    if service == "events" and operation == "PutEvents":  # authorized per entry: its bus and its source
        return [
            Request("events:PutEvents", bus_arn(entry.get("EventBusName", "default")), (), label, entry["Source"])
            for entry in params["Entries"]
        ]
    if service == "secretsmanager" and operation == "GetSecretValue":
        return [Request("secretsmanager:GetSecretValue", secret_arns(params["SecretId"]), (), label)]
    raise AssertionError(f"{label}: map this call to the IAM actions it needs (and grant them)")


# --- what the role allows, as IAM evaluates it ---------------------------------------------------------
NO_VALUE = object()  # AWS::NoValue: the list member or property is left out


def resolve(value: Any, template: dict, physical: dict[str, dict[str, str]], parameters: dict[str, str]) -> Any:
    """A template value with intrinsics resolved: `physical[logical_id]` holds the resource's Ref and
    attributes; parameters not given take their Default."""

    def again(inner: Any) -> Any:
        return resolve(inner, template, physical, parameters)

    def condition(name: str) -> bool:
        return bool(again(template["Conditions"][name]))

    def ref(name: str) -> Any:
        if name in physical:
            return physical[name]["Ref"]
        if name in parameters:
            return parameters[name]
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": "t"}
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        parameter = template["Parameters"][name]
        default = str(parameter["Default"])
        listed = parameter["Type"] == "CommaDelimitedList" or parameter["Type"].startswith("List<")
        return [item.strip() for item in default.split(",")] if listed else default

    if isinstance(value, list):
        return [item for item in (again(item) for item in value) if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {key: again(item) for key, item in value.items()}
    (kind, argument), *_ = value.items()
    if kind == "Ref":
        return ref(argument)
    if kind == "Fn::GetAtt":
        logical_id, attribute = argument
        return physical[logical_id][attribute]
    if kind == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {name: again(item) for name, item in variables.items()}

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return variables[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return physical[logical_id][attribute]
            return ref(name)

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)
    if kind == "Fn::If":
        name, if_true, if_false = argument
        return again(if_true if condition(name) else if_false)
    if kind == "Condition":
        return condition(argument)
    if kind == "Fn::Equals":
        left, right = (again(item) for item in argument)
        return str(left) == str(right)
    if kind == "Fn::Not":
        return not again(argument[0])
    if kind == "Fn::And":
        return all(again(item) for item in argument)
    if kind == "Fn::Or":
        return any(again(item) for item in argument)
    if kind == "Fn::Join":
        separator, items = argument
        return separator.join(str(item) for item in again(items))
    if kind == "Fn::Select":
        index, items = argument
        return again(items)[int(again(index))]
    if kind == "Fn::FindInMap":
        mapping, top, second = (again(item) for item in argument)
        return template["Mappings"][mapping][top][second]
    if kind == "Fn::Split":
        separator, text = argument
        return again(text).split(separator)
    if kind.startswith("Fn::"):
        raise AssertionError(f"the test cannot resolve {kind}")
    return {kind: again(argument)}


def role_statements(template, function: str, physical, parameters) -> list[dict[str, Any]]:
    """The role's own statements and those of the policies attached to it that this deployment (`parameters`)
    creates."""
    properties = resource(template, f"{FUNCTIONS[function]}Function")["Properties"]
    role_id = properties["Role"]["Fn::GetAtt"][0]
    role = resource(template, role_id)["Properties"]
    found = [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]
    for definition in template["Resources"].values():
        if definition["Type"] != "AWS::IAM::Policy":
            continue
        condition = definition.get("Condition")
        if condition and not resolve({"Condition": condition}, template, physical, parameters):
            continue
        named = {f"{prefix}Role": {"Ref": f"{prefix}Role"} for prefix in FUNCTIONS.values()}
        roles = resolve(definition["Properties"]["Roles"], template, {**physical, **named}, parameters)
        if role_id in roles:
            found += definition["Properties"]["PolicyDocument"]["Statement"]
    return resolve(found, template, physical, parameters)


def wildcard(pattern: str) -> re.Pattern:
    """IAM's wildcards in actions, resources and StringLike: `*` any run of characters, `?` one."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def condition_holds(condition: dict[str, dict[str, Any]], request: Request) -> bool:
    string_tests: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": lambda value, pattern: value == pattern,
        "StringLike": lambda value, pattern: wildcard(pattern).fullmatch(value) is not None,
    }
    for operator, block in condition.items():
        qualifier, _, test_name = operator.rpartition(":")
        test = string_tests[test_name]
        for key, patterns in block.items():
            context = {"dynamodb:LeadingKeys": request.leading_keys, "events:source": (request.source,)}
            assert key in context, f"the test does not know the condition key {key}"
            values = tuple(value for value in context[key] if value is not None)

            def matches(value: str, patterns: list[str] = _listed(patterns), test=test) -> bool:
                return any(test(value, pattern) for pattern in patterns)

            if qualifier == "ForAllValues":  # every value matches (true for none at all, as in IAM)
                holds = all(matches(value) for value in values)
            elif qualifier == "ForAnyValue":
                holds = any(matches(value) for value in values)
            else:  # a single-valued test of a multivalued key holds only for exactly one value
                holds = len(values) == 1 and matches(values[0])
            if not holds:
                return False
    return True


def statement_allows(statement: dict[str, Any], request: Request) -> bool:
    return (
        any(wildcard(action.lower()).fullmatch(request.action.lower()) for action in _listed(statement["Action"]))
        and any(wildcard(arn).fullmatch(request.resource) for arn in _listed(statement["Resource"]))
        and condition_holds(statement.get("Condition", {}), request)
    )


def evaluate(statements: list[dict[str, Any]], requests: list[Request]) -> tuple[list[Request], set[str]]:
    """IAM's answer for each request (an explicit Deny wins, else an Allow is needed): the requests it
    denies, and the Sids of the statements that allowed something."""
    denied, used = [], set()
    for request in requests:
        allowing = [st["Sid"] for st in statements if st["Effect"] == "Allow" and statement_allows(st, request)]
        if not allowing or any(st["Effect"] == "Deny" and statement_allows(st, request) for st in statements):
            denied.append(request)
        used.update(allowing)
    return denied, used


# --- driving the functions' real paths ----------------------------------------------------------------
@dataclass
class Run:
    stack: Any
    recorder: Recorder
    template: dict[str, Any]
    physical: dict[str, dict[str, str]]
    secrets: dict[str, str]  # secret name -> ARN
    parameters: dict[str, str] = field(default_factory=dict)  # the deployment's (EventBus, ...); others: Default

    def secret_arn(self, secret_id: str) -> str:
        return secret_id if secret_id.startswith("arn:") else self.secrets[secret_id]

    def check(self, function: str) -> tuple[list[Request], set[str], list[dict[str, Any]]]:
        """(requests the role denies, Sids that allowed a call, the role's statements) for `function`."""
        partition_keys = key_schemas(self.template)
        requests = [
            request
            for call in self.recorder.calls[function]
            for request in requests_of(call, partition_keys, self.secret_arn)
        ]
        assert requests, f"{function} made no AWS call: the paths were not driven"
        statements = role_statements(self.template, function, self.physical, self.parameters)
        return (*evaluate(statements, requests), statements)


@pytest.fixture
def run(stack, monkeypatch) -> Iterator[Run]:
    template = load_template(ROOT / "template.yaml")
    recorder = Recorder()
    recorder.install(monkeypatch)
    recorder.watch(stack)
    physical: dict[str, dict[str, str]] = {
        "JobsTable": {"Ref": stack.table_name, "Arn": table_arn(stack.table_name)},
        "JobEventsTopic": {"Ref": stack.topic_arn},
        "PollFailureQueue": {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:poll-failures"},
    }
    for prefix in FUNCTIONS.values():
        physical[f"{prefix}LogGroup"] = {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{prefix}:*"}
    yield Run(stack, recorder, template, physical, {})


def configure(run: Run, provider: str, sim, credentials: dict[str, str]) -> str:
    """The provider's secret (the role's own, a stack-created one) and its fan-out queue; returns the
    queue's URL."""
    prefix = FUNCTIONS[provider]
    arn = run.stack.configure(provider, sim.url, credentials)
    bus = run.parameters.get("EventBus", "none")
    if bus != "none":  # the environment template.yaml gives the function with this EventBus
        source = run.parameters.get("EventSource", "transcode-status")
        name = run.physical["JobEventBus"]["Ref"] if bus == "create" else "default"
        run.stack.function_env[provider].update({"EVENT_BUS_NAME": name, "EVENT_SOURCE": source})
    run.secrets[f"{run.stack.name}/{provider}"] = arn
    run.physical[f"{prefix}Secret"] = {"Ref": arn}
    url = boto3.client("sqs").create_queue(QueueName=f"{provider}-fanout")["QueueUrl"]
    run.physical[f"{prefix}FanoutQueue"] = {"Arn": queue_arn(url)}
    return url


def new_job(provider: str, stack, sim, number: int) -> str:
    if provider == "encoding_com":
        job = sim.add_job()
        assert stack.track(provider, job) == 201  # encoding.com has no listing: the jobs API tracks it
        return job
    if provider == "transparent_edge":
        return sim.add_order()
    if provider == "xvid":
        return sim.add_job()
    return sim.add_job(10019, f"input/movie-{number}.mp4", ["AVC_SD_1Pass_30fps"])


def webhook_body(provider: str, sim, job: str) -> tuple[str, str]:
    if provider == "encoding_com":
        return sim.notification(job, kind="xml")
    if provider == "transparent_edge":
        return json.dumps({"order_id": job}), "application/json"
    if provider == "xvid":
        return json.dumps({"job_id": job}), "application/json"
    callbacks = sim.take_callbacks()
    assert callbacks, "the VOD Station simulator sent no callback"
    return json.dumps(callbacks[-1]), "application/json"


def finish(provider: str, sim, job: str) -> None:
    sim.advance(job, 100)


def poll_and_drain(stack, provider: str, queue: str) -> int:
    """A poll, then its fan-out messages handed to the function as its SQS event source would; returns
    how many jobs the poll fanned out."""
    report = stack.poll(provider)
    assert report["provider_failures"] == []
    sqs = boto3.client("sqs")
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        assert stack.invoke(provider, sqs_event(messages, queue_arn(queue))) == {"batchItemFailures": []}
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return report["jobs_fanned_out"]


def drive_provider(run: Run, provider: str) -> None:
    """Polls, webhooks, a fan-out and its consumer: the paths a provider function runs in production."""
    stack = run.stack
    simulator, credentials = SIMULATORS[provider]
    with simulator(**credentials) as sim:
        queue = configure(run, provider, sim, credentials)
        # A poll that writes itself: a job seen, moved on by a webhook, finished by the next poll
        first = new_job(provider, stack, sim, 1)
        assert stack.poll(provider)["provider_failures"] == []
        sim.advance(first, 2)
        body, content_type = webhook_body(provider, sim, first)
        assert stack.webhook(provider, body, content_type=content_type)[0] == 200
        finish(provider, sim, first)
        assert stack.poll(provider)["provider_failures"] == []
        # A webhook of a finished job (read, nothing to change)
        body, content_type = webhook_body(provider, sim, first)
        assert stack.webhook(provider, body, content_type=content_type)[0] == 200
        # A poll past the fan-out threshold queues its changes; the SQS trigger applies them
        stack.function_env[provider].update(
            {"FANOUT_QUEUE_URL": queue, "FANOUT_THRESHOLD": "1", "FANOUT_BATCH_SIZE": "1"}
        )
        later = [new_job(provider, stack, sim, number) for number in (2, 3)]
        fanned_out = poll_and_drain(stack, provider, queue)
        for job in later:
            finish(provider, sim, job)
        fanned_out += poll_and_drain(stack, provider, queue)
        assert fanned_out >= 1
    published = {event["job_id"] for event in stack.events()}
    assert {first, *later} <= published, "the paths ended short of publishing every finished job"


def drive_jobs_api(run: Run) -> None:
    stack = run.stack
    job = "559cbbec14ea67a7cad6d7d8"
    assert stack.jobs_api("PUT", "xvid", job)[0] == 201
    assert stack.jobs_api("PUT", "xvid", job)[0] == 200
    assert stack.jobs_api("GET", "xvid", job)[0] == 200
    assert stack.jobs_api("DELETE", "xvid", job)[0] == 204
    assert stack.jobs_api("PUT", "xvid", job)[0] == 200  # tracked again
    assert stack.jobs_api("GET", "vod_station", "10019:input/key note.mp4")[0] == 404
    assert stack.jobs_api("DELETE", "encoding_com", "404404")[0] == 404


def describe(requests: list[Request]) -> str:
    return "\n".join(f"  {r.call}: {r.action} on {r.resource} keys {list(r.leading_keys)}" for r in requests)


@pytest.mark.parametrize("provider", sorted(SIMULATORS))
def test_every_call_of_a_provider_function_is_allowed_by_its_role_as_iam_evaluates_it(run, provider):
    drive_provider(run, provider)
    denied, used, statements = run.check(provider)
    assert denied == [], f"{provider}'s role denies calls its code makes:\n{describe(denied)}"
    unused = {st["Sid"] for st in statements if not st["Sid"].startswith("Platform")} - used
    assert unused == set(), f"{provider}'s role grants what none of its calls used"


@pytest.mark.parametrize(("bus", "source"), [("create", "transcode-status"), ("default", "media.transcode")])
@pytest.mark.parametrize("provider", sorted(SIMULATORS))
def test_with_a_bus_every_call_is_allowed_and_the_bus_grant_is_used(run, provider, bus, source):
    # Given the deployment's bus (EventBus=create: the stack's own; default: the account's)
    run.parameters.update({"EventBus": bus, "EventSource": source})
    if bus == "create":
        arn = boto3.client("events").create_event_bus(Name="t-job-events")["EventBusArn"]
        run.physical["JobEventBus"] = {"Ref": "t-job-events", "Arn": arn}
    # When the function runs its paths, then every call (PutEvents included) is allowed, every grant used
    drive_provider(run, provider)
    denied, used, statements = run.check(provider)
    assert denied == [], f"{provider}'s role denies calls its code makes:\n{describe(denied)}"
    assert "PutJobEventsOnBus" in used
    unused = {st["Sid"] for st in statements if not st["Sid"].startswith("Platform")} - used
    assert unused == set(), f"{provider}'s role grants what none of its calls used"


def test_every_call_of_the_jobs_api_is_allowed_by_its_role_as_iam_evaluates_it(run):
    drive_jobs_api(run)
    denied, used, statements = run.check("jobs_api")
    assert denied == [], f"the jobs API's role denies calls its code makes:\n{describe(denied)}"
    assert {st["Sid"] for st in statements if not st["Sid"].startswith("Platform")} - used == set()


def test_a_base_table_query_on_the_webhook_path_is_denied_as_iam_would(run, monkeypatch):
    """The check itself: a webhook that also read a job's history (a Query on the table, where the role
    grants Query only on its ActiveJobs partition) holds an action the role names, and IAM still says no."""
    from transcode_core.store import JobStore

    get_many = JobStore.get_many

    def get_many_and_history(self, provider, job_ids):
        for job_id in job_ids:
            self.history(provider, job_id)
        return get_many(self, provider, job_ids)

    monkeypatch.setattr(JobStore, "get_many", get_many_and_history)
    with XvidSimulator(client_id="c", client_secret="s") as sim:
        configure(run, "xvid", sim, {"client_id": "c", "client_secret": "s"})
        job = sim.add_job()
        assert run.stack.webhook("xvid", json.dumps({"job_id": job}))[0] == 200  # moto has no IAM: it answers

    denied, _, statements = run.check("xvid")
    assert "dynamodb:Query" in {action for st in statements for action in _listed(st["Action"])}
    assert {(r.action, r.resource, r.leading_keys) for r in denied} == {
        ("dynamodb:Query", table_arn(run.stack.table_name), (f"xvid#{job}",))
    }


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (Request("dynamodb:GetItem", table_arn("t"), ("xvid#1",), ""), True),
        (Request("dynamodb:GetItem", table_arn("t"), ("vod_station#1",), ""), False),  # another provider's
        (Request("dynamodb:BatchGetItem", table_arn("t"), ("xvid#1", "xvid#2"), ""), True),
        (Request("dynamodb:BatchGetItem", table_arn("t"), ("xvid#1", "encoding_com#2"), ""), False),
        (Request("dynamodb:Query", table_arn("t") + "/index/ActiveJobs", ("xvid",), ""), True),
        (Request("dynamodb:Query", table_arn("t") + "/index/ActiveJobs", ("xvid#1",), ""), False),
        (Request("dynamodb:Query", table_arn("t") + "/index/JobsByProvider", ("xvid",), ""), False),
        (Request("dynamodb:Query", table_arn("t"), ("xvid#1",), ""), False),  # the base table
        (Request("dynamodb:Scan", table_arn("t"), (), ""), False),
        (Request("sns:Publish", "arn:aws:sns:us-east-1:123456789012:topic", (), ""), True),
        (Request("sns:Publish", "arn:aws:sns:us-east-1:123456789012:other", (), ""), False),
        (Request("secretsmanager:GetSecretValue", "arn:secret:xvid", (), ""), True),
        (Request("secretsmanager:GetSecretValue", "arn:secret:vod_station", (), ""), False),
    ],
)
def test_the_evaluation_follows_iam_s_rules(request_, allowed):
    template = load_template(ROOT / "template.yaml")
    physical = {
        "JobsTable": {"Ref": "t", "Arn": table_arn("t")},
        "JobEventsTopic": {"Ref": "arn:aws:sns:us-east-1:123456789012:topic"},
        "XvidSecret": {"Ref": "arn:secret:xvid"},
        "XvidFanoutQueue": {"Arn": "arn:queue:xvid"},
        "XvidLogGroup": {"Arn": "arn:logs:xvid"},
        "PollFailureQueue": {"Arn": "arn:queue:failures"},
    }
    statements = role_statements(template, "xvid", physical, {})
    denied, _ = evaluate(statements, [request_])
    assert (denied == []) is allowed


OWN_BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/t-job-events"
DEFAULT_BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"


@pytest.mark.parametrize(
    ("bus", "request_", "allowed"),
    [
        ("create", Request("events:PutEvents", OWN_BUS, (), "", "transcode-status"), True),
        ("create", Request("events:PutEvents", OWN_BUS, (), "", "aws.mediaconvert"), False),  # not its source
        ("create", Request("events:PutEvents", DEFAULT_BUS, (), "", "transcode-status"), False),  # not its bus
        ("default", Request("events:PutEvents", DEFAULT_BUS, (), "", "transcode-status"), True),
        ("default", Request("events:PutEvents", OWN_BUS, (), "", "transcode-status"), False),
        ("none", Request("events:PutEvents", DEFAULT_BUS, (), "", "transcode-status"), False),  # no bus, no grant
    ],
)
def test_the_evaluation_of_the_bus_grant_follows_iam_s_rules(bus, request_, allowed):
    template = load_template(ROOT / "template.yaml")
    physical = {
        "JobsTable": {"Ref": "t", "Arn": table_arn("t")},
        "JobEventsTopic": {"Ref": "arn:aws:sns:us-east-1:123456789012:topic"},
        "JobEventBus": {"Ref": "t-job-events", "Arn": OWN_BUS},
        "XvidSecret": {"Ref": "arn:secret:xvid"},
        "XvidFanoutQueue": {"Arn": "arn:queue:xvid"},
        "XvidLogGroup": {"Arn": "arn:logs:xvid"},
        "PollFailureQueue": {"Arn": "arn:queue:failures"},
    }
    statements = role_statements(template, "xvid", physical, {"EventBus": bus})
    denied, _ = evaluate(statements, [request_])
    assert (denied == []) is allowed
