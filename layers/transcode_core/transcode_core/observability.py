"""Logger, Tracer and Metrics, created once and imported everywhere; and the logging rules that keep
secrets out of the logs whatever the environment switches on (README "Operations")."""

from __future__ import annotations

import logging
import os
import re
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# Libraries that log requests and answers at DEBUG (botocore: whole GetSecretValue answers and signed
# headers; urllib3: request paths with their queries). Held at WARNING even when the root logger (Lambda's
# application log level) or POWERTOOLS_DEBUG asks for DEBUG; what they do log at WARNING is redacted.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "requests", "aws_lambda_powertools")
_QUIET_PREFIXES = tuple(f"{name}." for name in QUIET_LOGGERS)
_REDACTIONS = (
    (re.compile(r"(https?://[^\s'\"?#]*)\?[^\s'\"#)]*"), r"\1?<redacted>"),  # absolute URLs' queries
    (re.compile(r"(\s/[^\s'\"?#]*)\?[^\s'\"#)]*"), r"\1?<redacted>"),  # request paths' queries
    (
        re.compile(r"(?i)(authorization|x-amz-security-token|x-amz-credential|credential)([\"']?\s*[:=]\s*)\S+"),
        r"\1\2<redacted>",
    ),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "<redacted-key-id>"),
    (
        re.compile(r"(?i)\"?(secret\w*|token\w*|password|user_?key|access_?key\w*)\"?(\s*[:=]\s*)[^\s,}&]+"),
        r"\1\2<redacted>",
    ),
)


def redact(text: str) -> str:
    """`text` without URL query strings, authorization headers, access key ids or secret-named values."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _is_quiet(name: str) -> bool:
    return name in QUIET_LOGGERS or name.startswith(_QUIET_PREFIXES)


def hold_library_loggers() -> None:
    """Holds the libraries' loggers at WARNING and redacts what they still emit. A record factory (not a
    logger filter, which children's records bypass) sees every record of every child logger."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if _is_quiet(record.name):
            try:
                message = record.getMessage()
            except Exception:  # a malformed library log call: keep only its template
                message = str(record.msg)
            record.msg, record.args = redact(message), None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


hold_library_loggers()

logger = Logger()
tracer = Tracer(patch_modules=("botocore", "requests"))  # what the code calls; patching all costs more imports
metrics = Metrics()
# An invocation that counted nothing (a jobs API read, a webhook naming no tracked job) is normal here;
# Powertools' warning about it would read as a fault in the function's log (and the local run's output).
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def use_metric_dimensions(**dimensions: str) -> None:
    """Sets the dimensions every metric of this invocation carries: `stack` (STACK_NAME, which the template
    fills with the stack's name, so that two stacks in one account never count each other's figures in
    their alarms and dashboards) and `dimensions`. Called per invocation: Metrics' state is process-wide."""
    stack = os.environ.get("STACK_NAME", "")
    wanted = {**({"stack": stack} if stack else {}), **dimensions}
    if metrics.default_dimensions != wanted:
        metrics.clear_default_dimensions()
        metrics.dimension_set.clear()
        metrics.set_default_dimensions(**wanted)


__all__ = ["logger", "tracer", "metrics", "MetricUnit", "redact", "hold_library_loggers", "use_metric_dimensions"]
