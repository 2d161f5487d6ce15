"""Jobs API (CONTRACT): PUT /jobs/{provider}/{job_id} starts tracking a job, GET returns it, DELETE stops
tracking it. IAM auth is on the routes (template.yaml); this function only sees signed requests."""

from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from transcode_core.errors import BadRequest
from transcode_core.lambda_entry import begin_invocation, install_error_answers, services
from transcode_core.observability import logger, metrics, tracer, use_metric_dimensions
from transcode_core.providers import PROVIDER_IDS
from transcode_core.providers.job_ids import check_job_id
from transcode_core.store import public_item

# The route's job_id is greedy ({job_id+} in template.yaml): VOD Station ids hold the file's path, slashes
# included. API Gateway hands it over decoded in pathParameters; the raw path is the fallback.
JOB_ROUTE = "/jobs/<provider>/.+"

app = APIGatewayHttpResolver(debug=False)  # pinned: debug mode prints the event whatever the env
install_error_answers(app)


def _job_id(provider: str) -> str:
    """The job id of the request, checked against what the provider's ids look like."""
    if provider not in PROVIDER_IDS:
        raise BadRequest(f"unknown provider {provider!r}; known: {', '.join(PROVIDER_IDS)}")
    raw_job_id = app.current_event.path.split("/", 3)[3]  # /jobs/<provider>/<the rest>
    job_id = (app.current_event.path_parameters or {}).get("job_id") or unquote(raw_job_id)
    check_job_id(provider, job_id)
    return job_id


def _caller() -> dict[str, str]:
    """The IAM principal that signed the request (API Gateway verified the signature), so that the log and
    the job's history tell who tracked or untracked a job."""
    iam = app.current_event.request_context.authorizer.iam
    return {"user_arn": iam.user_arn, "caller_id": iam.caller_id, "account_id": iam.account_id}


def _not_tracked() -> Response:
    return Response(status_code=404, content_type=content_types.APPLICATION_JSON, body={"error": "job not tracked"})


@app.put(JOB_ROUTE)
@tracer.capture_method
def track_job(provider: str) -> Response:
    job_id = _job_id(provider)
    svc = services()
    caller = _caller()
    enabled = svc.settings.enabled_providers
    if enabled is not None and provider not in enabled:  # no function of this stack would ever poll the job
        raise BadRequest(
            f"provider {provider} is not deployed in this stack (EnabledProviders: {', '.join(enabled)}); "
            "its jobs would never be polled"
        )
    created, item = svc.store.register(
        provider, job_id, rewatch_minutes=svc.settings.rewatch_minutes, actor=caller["user_arn"] or None
    )
    # "new_job", not "created": logging refuses extra keys named like LogRecord fields.
    logger.info("job tracked", extra={"provider": provider, "job_id": job_id, "new_job": created, "caller": caller})
    return Response(
        status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=public_item(item)
    )


@app.get(JOB_ROUTE)
@tracer.capture_method
def get_job(provider: str) -> Response:
    job_id = _job_id(provider)
    item = services().store.get(provider, job_id)
    if item is None:
        return _not_tracked()
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=public_item(item))


@app.delete(JOB_ROUTE)
@tracer.capture_method
def untrack_job(provider: str) -> Response:
    job_id = _job_id(provider)
    caller = _caller()
    if services().store.untrack(provider, job_id, actor=caller["user_arn"] or None) is None:
        return _not_tracked()
    logger.info("job untracked", extra={"provider": provider, "job_id": job_id, "caller": caller})
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body=None)


@logger.inject_lambda_context(clear_state=True, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: Any) -> dict:
    use_metric_dimensions()
    begin_invocation(event, context)
    return app.resolve(event, context)
