"""Settings from environment variables, read and validated once (CONTRACT "Configuration")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from transcode_core.errors import ConfigurationError
from transcode_core.times import zone

WEBHOOK_MAX_BYTES = 256 * 1024
ENCODING_COM_FORMATS = ("xml", "json")
DEFAULT_EVENT_SOURCE = "transcode-status"


@dataclass(frozen=True)
class Settings:
    table_name: str
    topic_arn: str
    provider_api_url: str | None
    provider_secret_id: str | None
    batch_size: int = 25  # encoding.com media ids per GetStatus extended request
    concurrency: int = 8  # parallel per-job work of a run (reads, writes, publishes) and connections
    page_size: int = 100  # list page size (Xvid, VOD Station)
    connect_timeout: float = 3.05
    read_timeout: float = 20.0
    http_retries: int = 3
    max_retry_wait: float = 10.0  # the longest Retry-After (or backoff) a call waits; longer ones defer it
    detail_refresh_minutes: float = 10.0  # TransparentEdge: an unmoved active order's detail is read this often
    stall_minutes: float = 120.0
    secret_max_age: int = 300  # seconds a secret is cached in a warm Lambda
    provider_timezone: str = "UTC"  # zone of provider dates that carry no offset (encoding.com)
    discovery_days: float = 2.0  # how far back listings discover jobs (TransparentEdge, VOD Station)
    rewatch_minutes: float = 60.0  # a terminal job PUT again through the jobs API is polled this long
    history_days: int = 365  # history items expire through the table's TTL after this; 0 keeps them
    encoding_com_format: str = "xml"  # which of encoding.com's two equivalent APIs is called: xml or json
    fanout_queue_url: str | None = None  # the provider's fan-out queue; empty: every poll applies its own jobs
    fanout_threshold: int = 2000  # a poll of more active jobs than this hands its changes to the fan-out queue
    fanout_batch_size: int = 200  # jobs per fan-out message (one SQS message, applied by one invocation)
    enabled_providers: tuple[str, ...] | None = None  # the providers the stack deploys (jobs API); None: all
    event_bus_name: str | None = None  # the EventBridge bus (name or ARN) that also gets every event; None: none
    event_source: str = DEFAULT_EVENT_SOURCE  # the bus entries' `source`

    def __post_init__(self) -> None:
        try:
            zone(self.provider_timezone)
        except (KeyError, ValueError):
            raise ConfigurationError(f"PROVIDER_TIMEZONE={self.provider_timezone!r} is not a time zone") from None
        if self.encoding_com_format not in ENCODING_COM_FORMATS:
            raise ConfigurationError(
                f"ENCODING_COM_FORMAT={self.encoding_com_format!r} is not one of {', '.join(ENCODING_COM_FORMATS)}"
            )
        # EventBridge refuses (per entry) a source that is empty, longer than 256 or in AWS's own `aws.` space.
        if not 0 < len(self.event_source) <= 256 or self.event_source.startswith("aws."):
            raise ConfigurationError(
                f"EVENT_SOURCE={self.event_source!r}: 1-256 characters, not starting with 'aws.' (EventBridge's)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [name for name in ("TABLE_NAME", "TOPIC_ARN") if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            table_name=env["TABLE_NAME"],
            topic_arn=env["TOPIC_ARN"],
            provider_api_url=env.get("PROVIDER_API_URL") or None,
            provider_secret_id=env.get("PROVIDER_SECRET_ID") or None,
            batch_size=_number(env, "BATCH_SIZE", "batch_size", low=1, high=1000),
            concurrency=_number(env, "CONCURRENCY", "concurrency", low=1, high=64),
            page_size=_number(env, "PAGE_SIZE", "page_size", low=1, high=5000),
            connect_timeout=_number(env, "HTTP_CONNECT_TIMEOUT", "connect_timeout", low=0.1, high=60),
            read_timeout=_number(env, "HTTP_READ_TIMEOUT", "read_timeout", low=0.1, high=300),
            http_retries=_number(env, "HTTP_RETRIES", "http_retries", low=0, high=10),
            max_retry_wait=_number(env, "HTTP_MAX_RETRY_WAIT", "max_retry_wait", low=0, high=300),
            detail_refresh_minutes=_number(
                env, "DETAIL_REFRESH_MINUTES", "detail_refresh_minutes", low=0, high=60 * 24
            ),
            stall_minutes=_number(env, "STALL_MINUTES", "stall_minutes", low=0, high=60 * 24 * 30),
            secret_max_age=_number(env, "SECRET_MAX_AGE", "secret_max_age", low=0, high=86400),
            provider_timezone=env.get("PROVIDER_TIMEZONE") or "UTC",
            discovery_days=_number(env, "DISCOVERY_DAYS", "discovery_days", low=0.1, high=365),
            rewatch_minutes=_number(env, "REWATCH_MINUTES", "rewatch_minutes", low=1, high=60 * 24 * 30),
            history_days=_number(env, "HISTORY_DAYS", "history_days", low=0, high=36500),
            encoding_com_format=(env.get("ENCODING_COM_FORMAT") or "xml").strip().lower(),
            fanout_queue_url=env.get("FANOUT_QUEUE_URL") or None,
            fanout_threshold=_number(env, "FANOUT_THRESHOLD", "fanout_threshold", low=1, high=10_000_000),
            fanout_batch_size=_number(env, "FANOUT_BATCH_SIZE", "fanout_batch_size", low=1, high=1000),
            enabled_providers=_providers(env, "ENABLED_PROVIDERS"),
            event_bus_name=(env.get("EVENT_BUS_NAME") or "").strip() or None,
            event_source=(env.get("EVENT_SOURCE") or "").strip() or DEFAULT_EVENT_SOURCE,
        )


def _number(env: Mapping[str, str], name: str, attribute: str, *, low: float, high: float) -> int | float:
    """Environment variable `name` as the number Settings.`attribute` holds (of its default's type)."""
    default = Settings.__dataclass_fields__[attribute].default
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={raw!r} is outside {low}..{high}")
    return value


def _providers(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """Environment variable `name` as a comma-separated list of provider ids; unset or empty: None."""
    from transcode_core.providers import PROVIDER_IDS  # here, not at the top: the providers import this module

    raw = env.get(name) or ""
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [provider for provider in names if provider not in PROVIDER_IDS]
    if unknown:
        raise ConfigurationError(
            f"{name}={raw!r} names no provider {', '.join(unknown)}; known: {', '.join(PROVIDER_IDS)}"
        )
    return names or None
