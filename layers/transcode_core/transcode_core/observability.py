"""Logger, Tracer and Metrics, created once and imported everywhere."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer(patch_modules=("botocore", "requests"))  # what the code calls; patching all costs more imports
metrics = Metrics()

__all__ = ["logger", "tracer", "metrics", "MetricUnit"]
