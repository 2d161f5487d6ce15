"""The Lambda edge: the only module that knows Lambda events. Each provider function's app.py is
`lambda_handler = provider_handler("<id>")`; this tells the two triggers apart, maps the core's errors to
HTTP answers in one place and hands everything else to the pipeline.

The jobs API imports this module too, for its services and error answers. What only the provider functions
use (the pipeline, the adapters, requests) is imported by provider_handler(), which each provider function
calls at its cold start, and the functions it builds: the jobs API's cold start never loads it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from transcode_core import aws
from transcode_core.config import Settings
from transcode_core.deadline import HTTP_API_SECONDS, Deadline
from transcode_core.errors import (
    BadRequest,
    ConfigurationError,
    DependencyUnavailable,
    PayloadTooLarge,
    PollFailed,
    ProviderError,
    ProviderUnavailable,
    Unauthorized,
)
from transcode_core.observability import MetricUnit, logger, metrics, tracer, use_metric_dimensions
from transcode_core.secrets import load_credentials
from transcode_core.store import JobStore

if TYPE_CHECKING:
    import requests
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from transcode_core.fanout import FanOutQueue
    from transcode_core.notify import EventBus, Notifier
    from transcode_core.pipeline import Pipeline, Report
    from transcode_core.providers.base import Adapter, ProviderSpec


class Services:
    """What a warm Lambda reuses between invocations. The notifier, the fan-out queue and the bus (and their
    clients) are built when first used: the jobs API, which only reads and writes the table, builds none."""

    def __init__(self, settings: Settings, client: Callable[[str], Any]) -> None:
        self.settings = settings
        self._client = client
        self.store = JobStore(settings.table_name, history_days=settings.history_days, client=client("dynamodb"))

    @cached_property
    def notifier(self) -> Notifier:
        from transcode_core.notify import Notifier

        return Notifier(self.settings.topic_arn, client=self._client("sns"))

    @cached_property
    def fanout(self) -> FanOutQueue | None:
        from transcode_core.fanout import FanOutQueue

        url = self.settings.fanout_queue_url
        return FanOutQueue(url, self._client("sqs")) if url else None

    @cached_property
    def bus(self) -> EventBus | None:
        """None when EVENT_BUS_NAME is unset: no bus, no client."""
        from transcode_core.notify import EventBus

        name = self.settings.event_bus_name
        return EventBus(name, self.settings.event_source, self._client("events")) if name else None

    def pipeline(self, provider: str, *, fanout: bool = False) -> Pipeline:
        from transcode_core.pipeline import Pipeline  # the jobs API never loads the pipeline

        return Pipeline(
            provider, self.store, self.notifier, self.settings, fanout=self.fanout if fanout else None, bus=self.bus
        )


# The time this invocation's AWS calls may use: every client services() builds stops trying when it is used up.
INVOCATION_BUDGET = aws.CallBudget()


def begin_invocation(event: Any, context: Any) -> None:
    """Starts the AWS calls' budget: the invocation's remaining time, at most the HTTP API's 30 s for a request."""
    cap = HTTP_API_SECONDS if is_http_event(event) else None
    INVOCATION_BUDGET.begin(Deadline.from_context(context, margin=aws.END_MARGIN_SECONDS, cap=cap))


@lru_cache(maxsize=1)
def services() -> Services:
    settings = Settings.from_env()
    # Every worker of the per-job pool may hold a connection at once (and the run's own thread one more).
    pool_size = settings.concurrency + 2

    def client(service: str) -> Any:
        return aws.client(service, INVOCATION_BUDGET, pool_size=pool_size)

    return Services(settings, client)


@lru_cache(maxsize=1)
def provider_session() -> requests.Session:
    """The provider functions' HTTP session, shared by a warm Lambda's invocations (the jobs API calls no
    provider)."""
    from transcode_core.http import build_session
    from transcode_core.providers.base import READ_SCALE_UP

    settings = services().settings
    return build_session(
        retries=settings.http_retries,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        pool_size=max(16, settings.concurrency * READ_SCALE_UP),
        max_retry_wait=settings.max_retry_wait,
    )


@lru_cache(maxsize=1)
def secrets_client() -> Any:
    """The provider functions' Secrets Manager client (built at the first secret read: the jobs API reads none)."""
    return aws.client("secretsmanager", INVOCATION_BUDGET)


def reset_services() -> None:
    """Forget cached clients, settings and secrets (tests and the local runner change the environment)."""
    from aws_lambda_powertools.utilities import parameters

    services.cache_clear()
    provider_session.cache_clear()
    secrets_client.cache_clear()
    parameters.clear_caches()


def build_adapter(
    spec: ProviderSpec, svc: Services, credentials: dict[str, str], deadline: Deadline | None = None
) -> Adapter:
    return spec.adapter(
        api_url=svc.settings.provider_api_url or spec.default_api_url,
        credentials=credentials,
        session=provider_session(),
        settings=svc.settings,
        deadline=deadline or Deadline.none(),
    )


def credentials_of(spec: ProviderSpec, svc: Services) -> dict[str, str]:
    return load_credentials(
        svc.settings.provider_secret_id,
        spec.secret_keys,
        max_age=svc.settings.secret_max_age,
        client=secrets_client(),
    )


def run_poll(spec: ProviderSpec, deadline: Deadline | None = None) -> Report:
    """One poll. Raises PollFailed when it tried to write jobs and every write failed (after logging its
    report, its metrics emitted): a poll that could change nothing fails like one that could not run."""
    svc = services()
    credentials = credentials_of(spec, svc)
    pipeline = svc.pipeline(spec.id, fanout=True)
    report = pipeline.poll(build_adapter(spec, svc, credentials, deadline), deadline)
    if report.every_write_failed():
        logger.error("poll failed: every job write failed", extra={"report": report.to_dict()})
        raise PollFailed(f"{spec.id}: all {len(report.job_failures)} job writes failed; see job_failures")
    logger.info("poll finished", extra={"report": report.to_dict()})
    return report


def run_fanout(spec: ProviderSpec, event: dict, context: Any) -> dict:
    """Applies fan-out messages (SQS event source with ReportBatchItemFailures), reading from the provider
    the jobs a message names to read: a message that could not be read or applied is reported, and only it
    comes back (then, after maxReceiveCount, goes to the DLQ)."""
    # Imported here: only a fan-out invocation needs batch processing, so a poll's cold start skips it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    svc = services()
    pipeline = svc.pipeline(spec.id)
    deadline = Deadline.from_context(context)

    @lru_cache(maxsize=1)
    def adapter() -> Adapter:
        # Built at the first message of jobs to read (TransparentEdge): one token serves the invocation.
        return build_adapter(spec, svc, credentials_of(spec, svc), deadline)

    def apply(record: SQSRecord) -> None:
        report = pipeline.apply_fanned_out(record.body, adapter)
        logger.info("fan-out batch applied", extra={"report": report.to_dict()})

    # A batch that failed whole is answered like any other (its messages listed), not raised: same retry.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=apply, processor=processor, context=context)


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and all(record.get("eventSource") == "aws:sqs" for record in records)


def is_http_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("version") == "2.0" and "http" in event.get("requestContext", {})


def _error(status: int, message: str, metric: str) -> Response:
    from aws_lambda_powertools.event_handler import Response, content_types

    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"error": message})


def install_error_answers(app: APIGatewayHttpResolver) -> None:
    """The one place where the core's exceptions become HTTP answers (webhooks and the jobs API)."""

    @app.exception_handler(Unauthorized)
    def unauthorized(exc: Unauthorized) -> Response:
        logger.warning("request refused: bad token")
        return _error(401, "unauthorized", "RequestsRejected")

    @app.exception_handler(PayloadTooLarge)
    def too_large(exc: PayloadTooLarge) -> Response:
        logger.warning("request refused: too large", extra={"reason": str(exc)})
        return _error(413, str(exc), "RequestsRejected")

    @app.exception_handler(BadRequest)
    def bad_request(exc: BadRequest) -> Response:
        logger.warning("request refused: bad body", extra={"reason": str(exc)})
        return _error(400, str(exc), "RequestsRejected")

    @app.exception_handler(ProviderUnavailable)
    def provider_down(exc: ProviderUnavailable) -> Response:
        logger.error("provider unreachable", extra={"reason": str(exc)})
        return _error(503, "provider API unreachable, retry later", "RequestsDeferred")

    @app.exception_handler(DependencyUnavailable)
    def dependency_down(exc: DependencyUnavailable) -> Response:
        logger.error("dependency unreachable", extra={"reason": str(exc)})
        return _error(503, "service temporarily unavailable, retry later", "RequestsDeferred")

    @app.exception_handler(ProviderError)
    def provider_error(exc: ProviderError) -> Response:
        logger.error("provider answered with an error", extra={"reason": str(exc)})
        return _error(502, f"provider error: {exc.message}", "RequestsDeferred")

    @app.exception_handler(ConfigurationError)
    def misconfigured(exc: ConfigurationError) -> Response:
        logger.error("function misconfigured", extra={"reason": str(exc)})
        return _error(500, "service misconfigured", "ConfigurationErrors")


def provider_handler(provider: str) -> Callable[[dict, Any], dict]:
    # At the provider function's cold start, as a module's imports would be (see the module's docstring).
    import aws_lambda_powertools.utilities.parameters  # noqa: F401  (the secrets' reader, as the pipeline)

    import transcode_core.pipeline  # noqa: F401  (loaded at the cold start, not on the first poll)
    from transcode_core.providers import get_spec
    from transcode_core.webhook import WebhookBody, authenticate, check_size

    spec = get_spec(provider)
    app = None

    def webhook_router() -> APIGatewayHttpResolver:
        # Built at the first webhook: a poll's cold start skips importing Powertools' HTTP router (~30 ms).
        nonlocal app
        if app is None:
            from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

            app = APIGatewayHttpResolver(debug=False)  # pinned: debug mode prints the event (the token)
            install_error_answers(app)
            app.post(spec.webhook_path)(webhook)
        return app

    @tracer.capture_method
    def webhook() -> dict[str, int]:
        event = app.current_event
        svc = services()
        credentials = credentials_of(spec, svc)
        authenticate(
            event.get_query_string_value("token"),
            (credentials["webhook_token"], credentials.get("previous_webhook_token")),
        )
        try:
            text = event.decoded_body or ""
        except ValueError:  # invalid base64, or bytes that are not UTF-8
            raise BadRequest("body is not valid base64-encoded UTF-8 text") from None
        check_size(text)
        body = WebhookBody(text=text, content_type=event.headers.get("content-type", ""))
        # The HTTP API cuts an integration off at 30 s, whatever the function's own timeout.
        deadline = Deadline.from_context(app.lambda_context, cap=HTTP_API_SECONDS)
        adapter = build_adapter(spec, svc, credentials, deadline)
        snapshots = adapter.webhook_snapshots(body, lambda job_ids: svc.store.get_many(provider, job_ids))
        for snapshot in snapshots:  # whatever a body or a provider's answer holds, a job id is one printable line
            spec.check_job_id(snapshot.job_id)
        if not snapshots:
            logger.info("webhook accepted; it names no job that can be applied yet")
            return {"accepted": 0}
        report = svc.pipeline(provider).ingest(snapshots)
        logger.info("webhook applied", extra={"report": report.to_dict()})
        # Jobs touched: neither a snapshot that failed nor one of a job the jobs API stopped tracking.
        return {"accepted": report.snapshots - len(report.job_failures) - report.changes["untracked"]}

    @logger.inject_lambda_context(clear_state=True, log_event=False)  # never the event, whatever the env says
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict, context: Any) -> dict:
        use_metric_dimensions(provider=provider)
        begin_invocation(event, context)
        if is_http_event(event):
            return webhook_router().resolve(event, context)
        if is_sqs_event(event):
            return run_fanout(spec, event, context)
        # An EventBridge scheduled event, or the {} that EventBridge Scheduler sends: a poll.
        try:
            return run_poll(spec, Deadline.from_context(context)).to_dict()
        except ConfigurationError as exc:  # counted for the ConfigurationErrors alarm, then a failed invocation
            logger.error("function misconfigured", extra={"reason": str(exc)})
            metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
            raise

    return lambda_handler
