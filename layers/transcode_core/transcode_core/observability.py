"""Logger, Tracer and Metrics, created once and imported everywhere; and the logging rules that keep
secrets out of the logs whatever the environment switches on (README "Operations")."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# Libraries that log requests and answers at DEBUG (botocore: whole GetSecretValue answers and signed
# headers; urllib3: request paths with their queries; the X-Ray SDK: whole trace segments). Held at WARNING
# even when the root logger (Lambda's application log level) or POWERTOOLS_DEBUG asks for DEBUG. Whatever
# turns them on again later, every record is redacted where it reaches a handler (install_redaction).
QUIET_LOGGERS = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "requests",
    "aws_lambda_powertools",
    "aws_xray_sdk",
)
_SENSITIVE_KEY = r"(?<![\w-])[\w-]*?(?:secret|token|password|passwd|user_?key|access_?key|api_?key|signature)[\w-]*"
_QUOTE = r"(?:\\*[\"'])?"  # a quote, or one escaped inside a string that holds JSON (once or more)
_VALUE_QUOTE = r"(?:b?\\*[\"'])?"  # ... or the start of a bytes value's repr (botocore's headers)
# Each rule: (words, lower case, one of which a line holds where the rule may apply; the pattern; its
# replacement). Most lines hold none of the words, and a substring test costs far less than the pattern.
_REDACTIONS = (
    (("?",), re.compile(r"(https?://[^\s'\"?#]*)\?[^\s'\"#)\\]*"), r"\1?<redacted>"),  # URLs' queries
    (("?",), re.compile(r"(\s/[^\s'\"?#]*)\?[^\s'\"#)\\]*"), r"\1?<redacted>"),  # request paths' queries
    (  # headers: the whole value (e.g. "Bearer ...", "AWS4-HMAC-SHA256 Credential=..., Signature=...")
        ("authoriz", "x-amz-", "credential"),
        re.compile(
            rf"(?i)((?:authorization|x-amz-security-token|x-amz-credential|credential){_QUOTE}\s*[:=]\s*{_VALUE_QUOTE})"
            r"[^'\"\\\r\n]+"
        ),
        r"\1<redacted>",
    ),
    (("akia", "asia"), re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "<redacted-key-id>"),
    (  # secret-named keys of JSON, forms and headers, also in JSON held in a string (escaped quotes)
        (
            "secret",
            "token",
            "passw",
            "userkey",
            "user_key",
            "accesskey",
            "access_key",
            "apikey",
            "api_key",
            "signature",
        ),
        re.compile(rf"(?i)({_SENSITIVE_KEY}{_QUOTE}\s*[:=]\s*{_VALUE_QUOTE})(?:[^\s,;}}&'\"\\]|\\(?![\"'\\]))+"),
        r"\1<redacted>",
    ),
)
# Any of the rules' words, in one pattern: most lines (every job's "job changed") hold none, and one search
# costs less than testing each rule's words.
_ANY_RULE_WORD = re.compile("|".join(re.escape(word) for words, _, _ in _REDACTIONS for word in words))
MIN_SECRET_LENGTH = 8  # shorter values (an id, a word such as "testing") would mask ordinary text
_known_secrets: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_known_lock = threading.Lock()


def mask_values(values: Iterable[Any]) -> None:
    """Values known to be secret (credentials as loaded, OAuth access tokens): masked wherever they appear in
    a log record, whatever its key or form (as is, JSON-escaped, URL-encoded)."""
    global _known_pattern
    forms = set()
    for value in values:
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            forms.update({value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)})
    with _known_lock:
        if forms <= _known_secrets:
            return
        _known_secrets.update(forms)
        ordered = sorted(_known_secrets, key=len, reverse=True)  # a value containing another one first
        _known_pattern = re.compile("|".join(re.escape(form) for form in ordered))


def redact(text: str) -> str:
    """`text` without known secret values, URL query strings, authorization headers, access key ids or
    secret-named values."""
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub("<redacted>", text)
    lowered = text.lower()
    if not _ANY_RULE_WORD.search(lowered):
        return text
    for words, rule, replacement in _REDACTIONS:
        if any(word in lowered for word in words):
            text = rule.sub(replacement, text)
    return text


def _redacted_value(value: Any, depth: int = 0) -> Any:
    """An `extra` value of a record with its strings redacted, and secret-named keys' values masked."""
    if isinstance(value, str):
        return redact(value)
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {
            key: "<redacted>"
            if isinstance(key, str) and re.fullmatch(f"(?i){_SENSITIVE_KEY}", key)
            else _redacted_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_redacted_value(item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, (bytes, bytearray)):
        return redact(repr(value))
    return value


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, stack and `extra` values redacted (once); a traceback is redacted in the
    formatted line (install_redaction), so that formatters still see the exception itself."""
    if getattr(record, "_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a malformed library log call: keep only its template
        message = str(record.msg)
    record.msg, record.args = redact(message), None
    if record.exc_text:  # the traceback of exc_info (kept for JSON formatters) is redacted where it is formatted
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    for key, value in list(vars(record).items()):
        if key not in _RECORD_FIELDS:
            setattr(record, key, _redacted_value(value))
    record._redacted = True
    return record


def _redacted_print(*values: Any, sep: str | None = " ", end: str | None = "\n", **kwargs: Any) -> None:
    """http.client's debug output (HTTPConnection.debuglevel > 0 prints each request and answer header,
    signed headers and form bodies included): printed as it would be, redacted."""
    print(redact((sep if sep is not None else " ").join(str(value) for value in values)), end=end, **kwargs)


def install_redaction() -> None:
    """Redacts every record where it reaches any handler (root, library, Powertools, pytest, one added
    later by boto3.set_stream_logger or logging.basicConfig) and every line http.client's debug mode prints,
    whatever turned them on. Holds the libraries' loggers at WARNING. Safe to call again."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    http.client.print = _redacted_print  # type: ignore[attr-defined]  # the name HTTPConnection prints with
    handle = logging.Handler.handle
    if getattr(handle, "redacting", False):
        return

    def redacting_handle(self: logging.Handler, record: logging.LogRecord) -> Any:
        return handle(self, redact_record(record))

    format_record = logging.Handler.format

    def redacting_format(self: logging.Handler, record: logging.LogRecord) -> str:
        return redact(format_record(self, record))  # what a formatter adds (a traceback, a JSON field)

    redacting_handle.redacting = True  # type: ignore[attr-defined]
    logging.Handler.handle = redacting_handle  # type: ignore[method-assign]
    logging.Handler.format = redacting_format  # type: ignore[method-assign]


install_redaction()
# The process's own AWS credentials (Lambda's role session): never worth a log line.
mask_values(os.environ.get(name) for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))

logger = Logger()
# What the code calls; patching all costs more imports. requests is patched where the provider calls are made
# (transcode_core.http): a function that never calls a provider (the jobs API) does not import it.
tracer = Tracer(patch_modules=("botocore",))
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


__all__ = [
    "logger",
    "tracer",
    "metrics",
    "MetricUnit",
    "redact",
    "mask_values",
    "install_redaction",
    "use_metric_dimensions",
]
