"""Provider credentials from Secrets Manager, through Powertools parameters (cached, never logged)."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import BotoCoreError, ClientError

from transcode_core.errors import ConfigurationError, DependencyUnavailable


def load_credentials(secret_id: str | None, required: Iterable[str], *, max_age: int = 300) -> dict[str, str]:
    """The secret's JSON as a dict holding every `required` key (plus `webhook_token`)."""
    if not secret_id:
        raise ConfigurationError("PROVIDER_SECRET_ID is not set")
    try:
        secret = parameters.get_secret(secret_id, transform="json", max_age=max_age)
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError(f"secret {secret_id} is not a JSON object") from None
    except parameters.exceptions.GetParameterError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and cause.response["Error"]["Code"] in (
            "ResourceNotFoundException",
            "AccessDeniedException",
        ):
            raise ConfigurationError(f"secret {secret_id}: {cause.response['Error']['Code']}") from None
        if isinstance(cause, ClientError) and "does not exist" in str(cause):
            raise ConfigurationError(f"secret {secret_id} holds no value yet") from None
        raise DependencyUnavailable(f"secret {secret_id} could not be read") from None
    except (BotoCoreError, ClientError):
        raise DependencyUnavailable(f"secret {secret_id} could not be read") from None
    if not isinstance(secret, dict):
        raise ConfigurationError(f"secret {secret_id} is not a JSON object")
    missing = sorted(key for key in set(required) | {"webhook_token"} if not secret.get(key))
    if missing:
        raise ConfigurationError(f"secret {secret_id} lacks: {', '.join(missing)}")
    return {key: str(value) for key, value in secret.items()}
