"""The CLI's exit codes and the one place that turns AWS and HTTP failures into one-line messages."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

# Exit codes scripts can rely on (README "Command-line tool").
OK = 0
FAILED = 1  # AWS or the jobs API answered with an error
USAGE = 2  # bad arguments, unknown provider, nothing says which stack or table (click uses 2 too)
NOT_FOUND = 3  # no such stack, table, topic, bus, job, or no event to replay
CREDENTIALS = 4  # no credentials or region, or not allowed
UNREACHABLE = 5  # AWS endpoint or jobs API unreachable

_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "AuthFailure",
    "MissingAuthenticationTokenException",
}


class CliError(Exception):
    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def explain(exc: BaseException) -> CliError | None:
    """A one-line CliError for an AWS, network or core failure; None for anything else (a bug: traceback).
    The core's DependencyUnavailable hides the botocore error it came from in __context__."""
    original = exc
    while not isinstance(original, (ClientError, BotoCoreError)) and original.__context__ is not None:
        original = original.__context__
    if isinstance(original, (NoCredentialsError, PartialCredentialsError)):
        return CliError(
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give --profile",
            CREDENTIALS,
        )
    if isinstance(original, NoRegionError):
        return CliError("no AWS region: give --region or set AWS_REGION", CREDENTIALS)
    if isinstance(original, ProfileNotFound):
        return CliError(f"AWS profile not found: {original.kwargs.get('profile')}", CREDENTIALS)
    if isinstance(original, EndpointConnectionError):
        return CliError(f"cannot reach AWS at {original.kwargs.get('endpoint_url')}", UNREACHABLE)
    if isinstance(original, ClientError):
        error = original.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        operation = original.operation_name
        if code in _CREDENTIAL_CODES:
            return CliError(f"AWS refused {operation}: {code}: {message}", CREDENTIALS)
        if code == "ResourceNotFoundException" and operation in ("Query", "GetItem", "DescribeTable"):
            return CliError(f"jobs table not found: {message or code}", NOT_FOUND)
        if code == "ResourceNotFoundException" and operation == "DescribeEventBus":
            return CliError(f"event bus not found: {message or code}", NOT_FOUND)
        if code in ("NotFound", "NotFoundException"):
            return CliError(f"topic not found: {message or code}", NOT_FOUND)
        if code == "ValidationError" and "does not exist" in message:
            return CliError(message, NOT_FOUND)  # CloudFormation: "Stack with id X does not exist"
        if code == "ValidationException" and "specified index" in message:
            return CliError(
                "the jobs table has no JobsByProvider index: deploy this version of the stack (sam deploy)", FAILED
            )
        return CliError(f"AWS error in {operation}: {code}: {message}", FAILED)
    if isinstance(original, BotoCoreError):
        return CliError(f"AWS error: {original}", FAILED)
    return None
