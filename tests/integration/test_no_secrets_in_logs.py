"""Every documented logging switch on at once, a poll and webhooks for each provider: no secret value in
anything written (stdout, stderr, every log record of every logger). Also the token rotation through the
handler: the previous token is accepted while the secret holds it."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.simulators.encoding_com import EncodingComSimulator
from local.simulators.transparent_edge import TransparentEdgeSimulator
from local.simulators.vod_station import VodStationSimulator
from local.simulators.xvid import XvidSimulator
from local.stack import FUNCTION_ENV
from tests.integration import leak_probe

WEBHOOK_TOKEN = leak_probe.WEBHOOK_TOKEN  # the tokens the exercise sends
PREVIOUS_TOKEN = leak_probe.PREVIOUS_TOKEN
AWS_KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIALEAKCHECK0000001",
    "AWS_SECRET_ACCESS_KEY": "leak-aws-secret-access-key-0008",
    "AWS_SESSION_TOKEN": "leak-aws-session-token-0009",
}
# Every switch the README and Powertools document that could make more be logged.
SWITCHES = {
    "POWERTOOLS_LOGGER_LOG_EVENT": "true",
    "POWERTOOLS_DEV": "true",
    "POWERTOOLS_DEBUG": "true",
    "POWERTOOLS_LOG_LEVEL": "DEBUG",
    "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
    "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
}
PROVIDERS = {
    "encoding_com": (EncodingComSimulator, {"user_id": "leak-user-id", "user_key": "leak-user-key-0001"}),
    "transparent_edge": (
        TransparentEdgeSimulator,
        {"company_id": "4711", "client_id": "leak-te-client", "client_secret": "leak-te-secret-0002"},
    ),
    "xvid": (XvidSimulator, {"client_id": "leak-xvid-client", "client_secret": "leak-xvid-secret-0003"}),
    "vod_station": (VodStationSimulator, {"access_key": "leak-vod-access-0004", "secret_key": "leak-vod-secret-0005"}),
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_no_switch_makes_a_secret_reach_the_logs(provider, stack, monkeypatch, capfd, caplog):
    from transcode_core.observability import install_redaction, logger

    simulator_class, credentials = PROVIDERS[provider]
    for name, value in {**SWITCHES, **AWS_KEYS}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(FUNCTION_ENV, "POWERTOOLS_LOG_LEVEL", "DEBUG")
    # What the switches do at a cold start, done here on the already imported objects as well.
    logging.getLogger("aws_lambda_powertools").setLevel(logging.DEBUG)  # POWERTOOLS_DEBUG at import
    install_redaction()  # what observability does at import, after Powertools
    caplog.set_level(logging.DEBUG)  # the root logger: Lambda's application log level DEBUG
    written = io.StringIO()
    root_handler = logging.StreamHandler(written)
    root_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(root_handler)
    own_handler = logging.StreamHandler(written)
    own_handler.setFormatter(logger.registered_formatter)
    logger.addHandler(own_handler)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    try:
        with simulator_class(**credentials) as sim:
            rotating = {**credentials, "previous_webhook_token": PREVIOUS_TOKEN}
            stack.configure(provider, sim.url, rotating, webhook_token=WEBHOOK_TOKEN)
            codes = leak_probe.exercise(provider, stack, sim)
            oauth = getattr(sim, "oauth", None)
            access_tokens = list(oauth.tokens) if oauth else []
    finally:
        logger.setLevel(previous_level)
        logger.removeHandler(own_handler)
        logging.getLogger().removeHandler(root_handler)

    assert codes == [200, 200, 401, 400], "current and previous tokens accepted, a wrong one refused"
    captured = capfd.readouterr()
    output = "\n".join([written.getvalue(), captured.out, captured.err, caplog.text])
    assert "job" in output.lower() and len(output) > 1000, "the switches should have made the logs talkative"
    secrets = {
        WEBHOOK_TOKEN,
        PREVIOUS_TOKEN,
        *AWS_KEYS.values(),
        *(value for key, value in credentials.items() if key not in ("company_id", "user_id", "client_id")),
        *access_tokens,
    }
    leaked = sorted(secret for secret in secrets if secret in output)
    assert leaked == [], f"secret values in the logs: {leaked}"


def test_library_records_are_held_at_warning_and_redacted(caplog):
    from transcode_core.observability import install_redaction

    install_redaction()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("botocore.endpoint").debug("Response body: %s", b'{"SecretString": "s3cret"}')
    logging.getLogger("urllib3.connectionpool").warning(
        "Retrying (%r) after connection broken by '%r': %s", "Retry(total=1)", "boom", "/jobs/42?token=s3cret&x=1"
    )
    logging.getLogger("urllib3.connectionpool").warning("https://h.example/p?user_key=s3cret failed")
    signed = "headers {'Authorization': 'AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP'}"
    logging.getLogger("botocore.auth").warning(signed)
    assert "s3cret" not in caplog.text and "AKIAABCDEFGHIJKLMNOP" not in caplog.text
    assert "Response body" not in caplog.text  # DEBUG is not emitted at all
    assert "/jobs/42?<redacted>" in caplog.text and "https://h.example/p?<redacted>" in caplog.text


def test_known_secrets_are_masked_in_any_handler_added_later_and_in_tracebacks():
    from transcode_core.observability import logger, mask_values

    secret = "leak-known-secret-0010"
    mask_values([secret])
    # Given a handler added after the import (as logging.basicConfig or boto3.set_stream_logger adds one)
    written = io.StringIO()
    late = logging.StreamHandler(written)
    logging.getLogger("late.library").addHandler(late)
    own = logging.StreamHandler(written)
    own.setFormatter(logger.registered_formatter)
    logger.addHandler(own)
    try:
        logging.getLogger("late.library").error("answer: %s", {"Body": f'{{\\"user_key\\": \\"{secret}\\"}}'})
        logging.getLogger("late.library").error("quoted %s", json.dumps(f'a"{secret}'))
        try:
            raise ValueError(f"refused with {secret}")
        except ValueError:
            logger.exception("call failed", extra={"detail": {"note": secret, "client_secret": "other-value"}})
    finally:
        logging.getLogger("late.library").removeHandler(late)
        logger.removeHandler(own)
    text = written.getvalue()
    assert secret not in text and "other-value" not in text and text.count("<redacted>") >= 4, text
    line = json.loads(text.splitlines()[-1])
    assert line["exception_name"] == "ValueError" and "refused with <redacted>" in line["exception"]


ROOT = Path(__file__).resolve().parents[2]
HELD = r"(?:botocore|urllib3|aws_xray_sdk)"
PROBES = [(switch, when) for switch in leak_probe.SWITCHES for when in ("before", "after")]


@pytest.fixture(scope="module")
def probe_outputs(tmp_path_factory):
    """Every switch set in a fresh process, on before the first import and after it; run side by side."""
    directory = tmp_path_factory.mktemp("leak-probes")

    def run(probe: tuple[str, str]) -> tuple[subprocess.CompletedProcess, list[str]]:
        switch, when = probe
        secrets_file = directory / f"{switch}-{when}.json"
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "POWERTOOLS_", "PYTEST_")) and name not in ("LAMBDA_TASK_ROOT",)
        }
        env[leak_probe.SECRETS_FILE_ENV] = str(secrets_file)
        process = subprocess.run(
            [sys.executable, "-m", "tests.integration.leak_probe", switch, when],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        secrets = json.loads(secrets_file.read_text()) if secrets_file.exists() else []
        return process, secrets

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(PROBES, pool.map(run, PROBES), strict=True))


@pytest.mark.slow  # ten fresh processes, each polling four providers
@pytest.mark.parametrize(("switch", "when"), PROBES)
def test_no_switch_turned_on_before_or_after_the_import_lets_a_secret_out(probe_outputs, switch, when):
    # Given a switch that makes an SDK talk (boto3.set_stream_logger, logging.basicConfig(level=DEBUG),
    # http.client's debuglevel, the X-Ray SDK's logger, the Powertools environment), on at a cold start or
    # added by a line after the imports; when every provider polls and takes webhooks
    process, secrets = probe_outputs[(switch, when)]
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-3000:]
    # then the process said a lot, and none of the secrets it used (six credentials, the two webhook tokens,
    # the AWS keys, every OAuth access token issued)
    access_tokens = [secret for secret in secrets if not secret.startswith(("leak-", "AKIA"))]
    assert len(secrets) == 10 + len(access_tokens) and len(access_tokens) >= 2, secrets
    assert len(output) > 10_000, "the switches should have made the logs talkative"
    leaked = {secret: output.count(secret) for secret in secrets if secret in output}
    assert leaked == {}, f"secret values in the output of {switch} ({when} the import): {leaked}"
    if when == "before":  # on at a cold start: the SDKs' loggers are held at WARNING all the same
        held = re.findall(rf"DEBUG:{HELD}|{HELD}\S* \[?DEBUG", output)
        assert held == [], f"DEBUG lines of held loggers: {held[:5]}"
