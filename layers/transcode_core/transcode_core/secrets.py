"""Provider credentials from Secrets Manager, through Powertools parameters (cached, never logged)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from transcode_core.errors import ConfigurationError, DependencyUnavailable
from transcode_core.observability import mask_values


def load_credentials(
    secret_id: str | None, required: Iterable[str], *, max_age: int = 300, client: Any = None
) -> dict[str, str]:
    """The secret's JSON as a dict holding every `required` key (plus `webhook_token`), read with `client`
    (a Secrets Manager client; None: Powertools' own)."""
    # Imported here: the jobs API reads no secret, and its cold start skips Powertools' parameters (~9 ms).
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    if not secret_id:
        raise ConfigurationError("PROVIDER_SECRET_ID is not set")
    if client is not None and getattr(DEFAULT_PROVIDERS.get("secrets"), "client", None) is not client:
        # Powertools reads through its default provider: it gets the client whose tries fit the invocation's
        # time (a new client, after the services were built again, starts with an empty cache).
        DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=client)
    try:
        secret = parameters.get_secret(secret_id, transform="json", max_age=max_age)
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError(f"secret {secret_id} is not a JSON object") from None
    except parameters.exceptions.GetParameterError as exc:
        # Powertools wraps the boto3 error (as the implicit context): an operator's mistake is a
        # configuration error, anything else (network, throttling) is a passing outage.
        cause = exc.__cause__ or exc.__context__
        code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else None
        if code in ("ResourceNotFoundException", "AccessDeniedException", "InvalidRequestException"):
            raise ConfigurationError(f"secret {secret_id} cannot be read: {code}") from None
        raise DependencyUnavailable(f"secret {secret_id} could not be read") from None
    except (BotoCoreError, ClientError):
        raise DependencyUnavailable(f"secret {secret_id} could not be read") from None
    if not isinstance(secret, dict):
        raise ConfigurationError(f"secret {secret_id} is not a JSON object")
    missing = sorted(key for key in set(required) | {"webhook_token"} if not secret.get(key))
    if missing:
        raise ConfigurationError(f"secret {secret_id} lacks: {', '.join(missing)}")
    credentials = {key: str(value) for key, value in secret.items()}
    # Masked in every log line from now on, whatever logs them (an SDK's debug output, a traceback): all
    # but the account and client ids, which name who calls and help an operator.
    mask_values(value for key, value in credentials.items() if not key.endswith("_id"))
    return credentials
