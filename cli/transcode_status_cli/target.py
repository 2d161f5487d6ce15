"""Which stack the CLI talks to: a deployed one (`--stack NAME`, read from its CloudFormation outputs) or
named resources (`--table`, `--topic`, `--api-url`, e.g. the local run's), with the AWS CLI's `--region`,
`--profile` and `--endpoint-url`. Also the jobs API client, SigV4-signed (service execute-api)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import NoCredentialsError, NoRegionError

from transcode_core.store import JobStore
from transcode_status_cli.errors import NOT_FOUND, UNREACHABLE, USAGE, CliError

# Outputs of template.yaml that the CLI reads.
OUTPUT_TABLE = "JobsTableName"
OUTPUT_TOPIC = "JobEventsTopicArn"
OUTPUT_API = "ApiUrl"
OUTPUT_BUS = "EventBusName"
OUTPUT_SOURCE = "EventSource"
DEFAULT_SOURCE = "transcode-status"  # template.yaml's EventSource default
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


@dataclass
class Target:
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    table_name: str | None = None
    topic_arn: str | None = None
    api_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def session(self) -> boto3.Session:
        return boto3.Session(profile_name=self.profile, region_name=self.region)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    @cached_property
    def outputs(self) -> dict[str, str]:
        if not self.stack:
            return {}
        stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
        return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}

    def _resource(self, explicit: str | None, output: str, option: str) -> str:
        if self.stack:
            outputs = self.outputs  # read even when overridden, so a wrong stack name is never silently ignored
            if explicit:
                return explicit
            value = outputs.get(output)
            if not value:
                raise CliError(
                    f"stack {self.stack} has no output {output} (is it a transcode-status stack?)", NOT_FOUND
                )
            return value
        if explicit:
            return explicit
        raise CliError(f"say which stack: --stack NAME, or {option} (see --help)", USAGE)

    @property
    def table(self) -> str:
        return self._resource(self.table_name, OUTPUT_TABLE, "--table NAME")

    @property
    def topic(self) -> str:
        return self._resource(self.topic_arn, OUTPUT_TOPIC, "--topic ARN")

    @property
    def api(self) -> str:
        return self._resource(self.api_url, OUTPUT_API, "--api-url URL").rstrip("/")

    def bus(self, explicit: str | None) -> str:
        """The event bus: the one named, else the stack's (which a stack deployed with EventBus=none lacks)."""
        if explicit:
            return explicit
        if not self.stack:
            raise CliError("say which bus: --bus NAME, or --stack with --bus (see --help)", USAGE)
        if not self.outputs.get(OUTPUT_BUS):
            raise CliError(
                f"stack {self.stack} sends no events to a bus (deploy it with EventBus=default or create)", NOT_FOUND
            )
        return self.outputs[OUTPUT_BUS]

    def event_source(self, explicit: str | None) -> str:
        """The events' source: the one named, else the stack's EventSource, else the template's default."""
        return explicit or self.outputs.get(OUTPUT_SOURCE) or DEFAULT_SOURCE

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.table, client=self.client("dynamodb"))

    # --- the jobs API -------------------------------------------------------------------------------
    def call_api(self, method: str, provider: str, job_id: str) -> tuple[int, Any]:
        """A SigV4-signed jobs API request; returns (HTTP status, parsed JSON body or None)."""
        url = f"{self.api}/jobs/{quote(provider, safe='')}/{quote(job_id, safe=':/')}"
        credentials = self.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        request = AWSRequest(method=method, url=url, data=b"")
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self._api_region(url)).add_auth(request)
        try:
            response = requests.request(method, url, headers=dict(request.headers), data=b"", timeout=30)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach the jobs API at {self.api}: {type(exc).__name__}", UNREACHABLE) from None
        try:
            body = response.json() if response.content else None
        except ValueError:  # e.g. a proxy's HTML error page: its text, on one line
            body = {"error": one_line(response.text)}
        return response.status_code, body

    def _api_region(self, url: str) -> str:
        host = re.sub(r"^https?://", "", url)
        match = _EXECUTE_API_HOST.match(host)
        region = match.group(1) if match else self.session.region_name
        if not region:
            raise NoRegionError()
        return region


def one_line(text: str, limit: int = 200) -> str:
    """A non-JSON answer (an HTML error page) as one short line: its text without tags and line breaks."""
    words = " ".join(re.sub(r"(?s)<(script|style)\b.*?</\1>|<[^>]*>", " ", text).split())
    return words if len(words) <= limit else words[: limit - 1] + "…"
