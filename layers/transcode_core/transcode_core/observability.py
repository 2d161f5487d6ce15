"""Logger, Tracer and Metrics, created once and imported everywhere."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["logger", "tracer", "metrics", "MetricUnit"]
