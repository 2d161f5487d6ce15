"""One Lambda invocation, as the python3.13 runtime makes it. local/artifact.py starts it in its own process:

    python3.13 -I -S -B lambda_bootstrap.py <result file> <Handler> <timeout s> <event file> <sys.path entries>...

Standard library only: sys.path holds nothing but the entries given (the function's folder, the built layer's
`python/` folder, the runtime's boto3) and the interpreter's own. The handler is imported from the template's
`Handler` (module.function), called with the event and a Lambda-like context, and the answer (or the error
as Lambda reports it: errorType, errorMessage, stackTrace) is written as JSON to the result file. What the
function prints or logs goes to this process's stdout/stderr, which the runner captures as its log lines.
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid


class LambdaContext:
    """The attributes and method of the runtime's context object that functions read."""

    def __init__(self, timeout_seconds: float) -> None:
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(error_type: str, exc: BaseException) -> dict:
    return {
        "errorType": error_type,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def invoke(handler_name: str, timeout_seconds: float, event: object) -> dict:
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # what the runtime reports: Runtime.ImportModuleError
        traceback.print_exc()
        return {"error": _error("Runtime.ImportModuleError", exc)}
    handler = getattr(module, function_name, None)
    if not callable(handler):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        print(message, file=sys.stderr)
        return {"error": {"errorType": "Runtime.HandlerNotFound", "errorMessage": message, "stackTrace": []}}
    try:
        response = handler(event, LambdaContext(timeout_seconds))
    except Exception as exc:
        traceback.print_exc()
        return {"error": _error(type(exc).__name__, exc)}
    try:
        json.dumps(response)
    except (TypeError, ValueError) as exc:
        return {"error": _error("Runtime.MarshalError", exc)}
    return {"response": response}


def main(argv: list) -> int:
    result_path, handler_name, timeout, event_path, *path = argv
    sys.path[:0] = path
    with open(event_path, encoding="utf-8") as stream:
        event = json.load(stream)
    result = invoke(handler_name, float(timeout), event)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(result_path, "w", encoding="utf-8") as stream:
        json.dump(result, stream)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
