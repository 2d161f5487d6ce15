"""The project's AWS side without AWS: the table, topic, secrets and (when asked) the event bus created from
template.yaml's definitions in whatever endpoint boto3 talks to (moto's `mock_aws` in tests, a moto server in
the local run, or real AWS), and the functions invoked the way Lambda would, with real-shaped events."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import boto3

from local.event_schema import check_event
from local.lambda_events import LambdaContext, http_event, scheduled_event
from local.template import load_template, table_definition

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_ENV = {
    "POWERTOOLS_SERVICE_NAME": "transcode-status",
    "POWERTOOLS_METRICS_NAMESPACE": "TranscodeStatus",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_LOG_LEVEL": "DEBUG",
}


def layer_on_path() -> None:
    """Puts the core layer where Lambda puts it (/opt/python), i.e. first on sys.path."""
    layer = str(ROOT / "layers" / "transcode_core")
    if layer not in sys.path:
        sys.path.insert(0, layer)


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py as a fresh module of its own (every function's file is called app.py)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"function_{name}_{uuid.uuid4().hex[:8]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LocalStack:
    def __init__(self, name: str = "transcode-status-local", template: Path = ROOT / "template.yaml") -> None:
        layer_on_path()
        self.name = name
        self.template = load_template(template)
        self.dynamodb = boto3.client("dynamodb")
        self.sns = boto3.client("sns")
        self.sqs = boto3.client("sqs")
        self.secrets = boto3.client("secretsmanager")
        self.events_client = boto3.client("events")
        self.table_name = f"{name}-jobs"
        self.topic_arn = ""
        self.queue_url = ""
        self.bus_name = ""  # set by create(bus=True): every function then puts its events there too
        self.bus_queue_url = ""
        self.bus_received: list[dict[str, Any]] = []
        self.function_env: dict[str, dict[str, str]] = {}
        self.received: list[dict[str, Any]] = []
        self._modules: dict[str, ModuleType] = {}
        self._warm: str | None = None

    # --- resources ----------------------------------------------------------------------------------
    def create(self, *, bus: bool = False) -> LocalStack:
        """The table, the topic with an SQS subscriber, and with `bus` an event bus whose rule sends every
        event of the functions' source to an SQS queue (the functions' environment then names the bus)."""
        self.dynamodb.create_table(TableName=self.table_name, **table_definition(self.template))
        self.dynamodb.get_waiter("table_exists").wait(TableName=self.table_name)
        self.topic_arn = self.sns.create_topic(Name=f"{self.name}-job-events")["TopicArn"]
        # An SQS subscriber stands in for email/chat/automation, so we can read what was published.
        self.queue_url = self.sqs.create_queue(QueueName=f"{self.name}-subscriber")["QueueUrl"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._queue_arn(self.queue_url))
        if bus:
            self._create_bus()
        return self

    def _create_bus(self) -> None:
        from transcode_core.config import DEFAULT_EVENT_SOURCE

        self.bus_name = f"{self.name}-events"
        self.events_client.create_event_bus(Name=self.bus_name)
        self.bus_queue_url = self.sqs.create_queue(QueueName=f"{self.name}-bus-subscriber")["QueueUrl"]
        rule = f"{self.name}-all-job-events"
        self.events_client.put_rule(
            Name=rule, EventBusName=self.bus_name, EventPattern=json.dumps({"source": [DEFAULT_EVENT_SOURCE]})
        )
        self.events_client.put_targets(
            Rule=rule,
            EventBusName=self.bus_name,
            Targets=[{"Id": "subscriber", "Arn": self._queue_arn(self.bus_queue_url)}],
        )

    def delete_bus(self) -> None:
        """Removes what create(bus=True) made (a simulation creates many stacks in one moto)."""
        if not self.bus_name:
            return
        rule = f"{self.name}-all-job-events"
        self.events_client.remove_targets(Rule=rule, EventBusName=self.bus_name, Ids=["subscriber"])
        self.events_client.delete_rule(Name=rule, EventBusName=self.bus_name)
        self.events_client.delete_event_bus(Name=self.bus_name)
        self.sqs.delete_queue(QueueUrl=self.bus_queue_url)

    def _queue_arn(self, queue_url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def base_env(self) -> dict[str, str]:
        """What every function's environment names: the table, the topic, and the bus if there is one."""
        env = {"TABLE_NAME": self.table_name, "TOPIC_ARN": self.topic_arn}
        if self.bus_name:
            env["EVENT_BUS_NAME"] = self.bus_name
        return env

    def configure(
        self,
        provider: str,
        api_url: str,
        credentials: dict[str, str],
        *,
        webhook_token: str = "test-token",
        env: dict[str, str] | None = None,
    ) -> str:
        """Stores the provider's secret and sets its function's environment. Returns the secret's ARN."""
        secret_name = f"{self.name}/{provider}"
        value = json.dumps({**credentials, "webhook_token": webhook_token})
        try:
            arn = self.secrets.create_secret(Name=secret_name, SecretString=value)["ARN"]
        except self.secrets.exceptions.ResourceExistsException:
            arn = self.secrets.put_secret_value(SecretId=secret_name, SecretString=value)["ARN"]
        self.function_env[provider] = {
            **self.base_env(),
            "PROVIDER_API_URL": api_url,
            "PROVIDER_SECRET_ID": arn,
            "HTTP_RETRIES": "1",
            **(env or {}),
        }
        return arn

    # --- invoking functions -------------------------------------------------------------------------
    def invoke(self, function: str, event: dict[str, Any], *, warm: bool = False) -> Any:
        """Runs functions/<function>/app.py's handler with its environment, as its own Lambda would."""
        env = {
            **FUNCTION_ENV,
            **self.function_env.get(function, self.base_env()),
        }
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            module = self._module(function)
            from transcode_core.lambda_entry import reset_services

            if not warm or self._warm != function:
                reset_services()  # each function is its own process in Lambda: no settings shared between them
            self._warm = function  # `warm`: the same function again keeps its clients and cached secret
            return module.lambda_handler(event, LambdaContext(function_name=function))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def poll(self, provider: str) -> dict[str, Any]:
        return self.invoke(provider, scheduled_event())

    def webhook(
        self,
        provider: str,
        body: str | bytes | dict[str, Any] | list[Any] | None,
        *,
        token: str | None = "test-token",
        content_type: str = "application/json",
        base64: bool = False,
        query: dict[str, str] | None = None,
        warm: bool = False,
    ) -> tuple[int, Any]:
        """POSTs `body` to the provider's webhook route; a dict or list is sent as its JSON text."""
        from transcode_core.providers import get_spec

        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        params = dict(query or {})
        if token is not None:
            params["token"] = token
        path = get_spec(provider).webhook_path
        event = http_event(
            "POST", path, f"POST {path}", body=body, query=params, headers={"content-type": content_type}, base64=base64
        )
        return _answer(self.invoke(provider, event, warm=warm))

    def track(self, provider: str, job_id: str) -> int:
        return self.jobs_api("PUT", provider, job_id)[0]

    def jobs_api(self, method: str, provider: str, job_id: str, *, path_parameters: bool = True) -> tuple[int, Any]:
        """A signed jobs API call as API Gateway hands it over: the raw path percent-encoded, the path
        parameters decoded (leave them out with `path_parameters=False` to see the raw path read)."""
        path = f"/jobs/{quote(provider, safe='')}/{quote(job_id, safe=':/')}"
        event = http_event(
            method,
            path,
            f"{method} /jobs/{{provider}}/{{job_id+}}",
            path_parameters={"provider": provider, "job_id": job_id} if path_parameters else None,
            iam_caller=True,
        )
        return _answer(self.invoke("jobs_api", event))

    # --- reading what happened ----------------------------------------------------------------------
    def job(self, provider: str, job_id: str) -> dict[str, Any] | None:
        from transcode_core.store import JobStore, public_item

        item = JobStore(self.table_name, client=self.dynamodb).get(provider, job_id)
        return public_item(item) if item else None

    def jobs(self, provider: str | None = None) -> list[dict[str, Any]]:
        from transcode_core.store import JOB_SK, _from_dynamo, public_item

        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name):  # test helper only
            items.extend(_from_dynamo(raw) for raw in page["Items"])
        return sorted(
            (public_item(item) for item in items if item["sk"] == JOB_SK and provider in (None, item["provider"])),
            key=lambda item: item["job_id"],
        )

    def history(self, provider: str, job_id: str) -> list[dict[str, Any]]:
        from transcode_core.store import JobStore

        return JobStore(self.table_name, client=self.dynamodb).history(provider, job_id)

    def messages(self) -> list[dict[str, Any]]:
        """Every SNS notification the subscriber queue received so far (subject, attributes, message)."""
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = answer.get("Messages", [])
            if not batch:
                return list(self.received)
            for message in batch:
                envelope = json.loads(message["Body"])
                check_event(json.loads(envelope["Message"]))  # every published event matches the schema
                self.received.append(
                    {
                        "subject": envelope.get("Subject"),
                        "attributes": {
                            name: value.get("Value") for name, value in envelope.get("MessageAttributes", {}).items()
                        },
                        "message": json.loads(envelope["Message"]),
                    }
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def events(self) -> list[dict[str, Any]]:
        """The published job events (the JSON every machine subscriber gets), in order."""
        return [notification["message"] for notification in self.messages()]

    def event_ids(self) -> list[str]:
        """The published events' ids (`provider#job_id#attempt#STATUS`), in order."""
        return [event["event_id"] for event in self.events()]

    def bus_messages(self) -> list[dict[str, Any]]:
        """Every EventBridge event the bus rule's queue received so far (as EventBridge delivers it)."""
        while self.bus_queue_url:
            answer = self.sqs.receive_message(QueueUrl=self.bus_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = answer.get("Messages", [])
            if not batch:
                break
            for message in batch:
                delivered = json.loads(message["Body"])
                check_event(delivered["detail"])  # the bus carries the same schema-checked JSON as the topic
                self.bus_received.append(delivered)
                self.sqs.delete_message(QueueUrl=self.bus_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return list(self.bus_received)

    def bus_events(self) -> list[dict[str, Any]]:
        """The job events the bus delivered (each EventBridge event's `detail`), in order."""
        return [delivered["detail"] for delivered in self.bus_messages()]

    def _module(self, function: str) -> ModuleType:
        if function not in self._modules:
            self._modules[function] = load_function(function)
        return self._modules[function]


def _answer(response: dict[str, Any]) -> tuple[int, Any]:
    body = response.get("body")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return response["statusCode"], parsed
