"""Lambda events shaped like the real ones (as `sam local generate-event` prints them), and a context."""

from __future__ import annotations

import base64 as b64
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


def scheduled_event(rule_arn: str = "arn:aws:events:us-east-1:123456789012:rule/transcode-status-poll") -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [rule_arn],
        "detail": {},
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:fanout") -> dict:
    """What Lambda's SQS event source hands the function for messages `ReceiveMessage` returned."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for message in messages
        ]
    }


def http_event(
    method: str,
    path: str,
    route_key: str,
    *,
    body: str | bytes | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    base64: bool = False,
    iam_caller: bool = False,
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event."""
    raw_body = body.encode() if isinstance(body, str) else body
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {
            "host": "api.example.com",
            "user-agent": "local",
            **{k.lower(): v for k, v in (headers or {}).items()},
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "local",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": "25/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795608000000,
        },
        "isBase64Encoded": base64,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if raw_body is not None:
        event["body"] = b64.b64encode(raw_body).decode() if base64 else raw_body.decode()
    if iam_caller:
        event["requestContext"]["authorizer"] = {
            "iam": {
                "accessKey": "AKIALOCAL",
                "accountId": "123456789012",
                "userArn": "arn:aws:iam::123456789012:user/local",
            }
        }
    return event


@dataclass
class LambdaContext:
    function_name: str = "local-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 120_000
