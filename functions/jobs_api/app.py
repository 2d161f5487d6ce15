"""Jobs API (CONTRACT): PUT /jobs/{provider}/{job_id} starts tracking a job, GET returns it. IAM auth is
on the routes (template.yaml); this function only sees signed requests."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from transcode_core.errors import BadRequest
from transcode_core.lambda_entry import install_error_answers, services
from transcode_core.observability import logger, metrics, tracer
from transcode_core.providers import PROVIDER_IDS
from transcode_core.store import public_item

MAX_JOB_ID_LENGTH = 512

app = APIGatewayHttpResolver()
install_error_answers(app)


def _checked(provider: str, job_id: str) -> None:
    if provider not in PROVIDER_IDS:
        raise BadRequest(f"unknown provider {provider!r}; known: {', '.join(PROVIDER_IDS)}")
    if not job_id or len(job_id) > MAX_JOB_ID_LENGTH or not job_id.isprintable():
        raise BadRequest("job_id must be 1-512 printable characters")


@app.put("/jobs/<provider>/<job_id>")
@tracer.capture_method
def track_job(provider: str, job_id: str) -> Response:
    _checked(provider, job_id)
    svc = services()
    created, item = svc.store.register(provider, job_id, rewatch_minutes=svc.settings.rewatch_minutes)
    logger.info("job tracked", extra={"provider": provider, "job_id": job_id, "created": created})
    return Response(
        status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=public_item(item)
    )


@app.get("/jobs/<provider>/<job_id>")
@tracer.capture_method
def get_job(provider: str, job_id: str) -> Response:
    _checked(provider, job_id)
    item = services().store.get(provider, job_id)
    if item is None:
        return Response(status_code=404, content_type=content_types.APPLICATION_JSON, body={"error": "job not tracked"})
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=public_item(item))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: Any) -> dict:
    return app.resolve(event, context)
