"""The HTTP API's jobs routes on 127.0.0.1, for the local run and the CLI's tests: checks the request's
SigV4 signature (service execute-api) the way the IAM authorizer does, then invokes the jobs API function
with the event API Gateway would send. Webhook routes are not served (the local run invokes them)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.lambda_events import http_event

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_ROUTE = re.compile(r"^/jobs/(?P<provider>[^/]+)/(?P<job_id>.+)$")


def signature_problem(method: str, url: str, headers: dict[str, str], body: bytes, secret_key: str) -> str | None:
    """Why the request's SigV4 signature does not hold (None: it holds), recomputed with botocore."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if not match:
        return "missing or malformed SigV4 Authorization header"
    if match["service"] != "execute-api":
        return f"signed for service {match['service']}, not execute-api"
    signed = {name: headers.get(name, "") for name in match["headers"].split(";")}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = headers.get("x-amz-date", "")
    auth = SigV4Auth(
        Credentials(match["key"], secret_key, headers.get("x-amz-security-token")), "execute-api", match["region"]
    )
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    if auth.signature(string_to_sign, request) != match["signature"]:
        return "signature does not match"
    return None


class LocalJobsApi:
    """`with LocalJobsApi(stack) as api:` serves stack's jobs API at `api.url` until the block ends."""

    def __init__(self, stack: Any, secret_key: str | None = None) -> None:
        self.stack = stack
        self.secret_key = secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        self.lock = threading.Lock()  # one invocation at a time: a function's environment is process-wide
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LocalJobsApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalJobsApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                path = urlsplit(self.path).path
                route = _ROUTE.match(path)
                if not route:
                    return self._answer(404, {"message": "Not Found"})
                problem = signature_problem(self.command, f"{api.url}{self.path}", headers, body, api.secret_key)
                if problem:
                    return self._answer(403, {"message": f"Forbidden: {problem}"})
                method = self.command
                event = http_event(
                    method,
                    path,
                    f"{method} /jobs/{{provider}}/{{job_id+}}",
                    path_parameters={"provider": unquote(route["provider"]), "job_id": unquote(route["job_id"])},
                    iam_caller=True,
                )
                with api.lock, contextlib.redirect_stdout(io.StringIO()):  # the function's metric lines
                    response = api.stack.invoke("jobs_api", event)
                self._answer(response["statusCode"], response.get("body"))

            def _answer(self, status: int, body: Any) -> None:
                data = (body if isinstance(body, str) else json.dumps(body) if body is not None else "").encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = _serve

        return Handler
