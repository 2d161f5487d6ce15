"""The core's exception types. The Lambda edge maps them to HTTP answers in one place."""


class TranscodeStatusError(Exception):
    """Base of every error the core raises on purpose."""


class ConfigurationError(TranscodeStatusError):
    """A setting or secret is missing or malformed: an operator must fix the deployment."""


class ProviderError(TranscodeStatusError):
    """The provider answered, but with an error or a document we cannot read. Jobs stay as they were."""

    def __init__(self, provider: str, message: str, *, job_ids: tuple[str, ...] = ()) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.job_ids = job_ids


class ProviderUnavailable(ProviderError):
    """The provider could not be reached (after retries): a webhook answers 503 so that it is sent again."""


class DependencyUnavailable(TranscodeStatusError):
    """The table, the topic or the secret store could not be reached: a webhook answers 503."""


class BadRequest(TranscodeStatusError):
    """A webhook or API body that cannot be read or names no job: 400 with this message."""


class Unauthorized(TranscodeStatusError):
    """Wrong or missing webhook token: 401, nothing read or written."""


class PayloadTooLarge(TranscodeStatusError):
    """A webhook body over the size limit: 413."""


class PollFailed(TranscodeStatusError):
    """A poll tried to write jobs and every write failed: the invocation fails (Errors alarm, failed-poll queue)."""
