"""Right after a first deploy every secret is empty but for the webhook token: each poll fails, and counts a
ConfigurationErrors metric for the ConfigurationErrorsAlarm (README "Operations")."""

from __future__ import annotations

import json

import pytest

from transcode_core.errors import ConfigurationError


def test_a_poll_with_an_unfilled_secret_fails_and_counts_a_configuration_error(stack, capfd):
    stack.configure("xvid", "http://127.0.0.1:9/", {"client_id": "", "client_secret": ""})
    capfd.readouterr()

    with pytest.raises(ConfigurationError, match="client_id, client_secret"):
        stack.poll("xvid")

    emitted = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    counted = [blob for blob in emitted if blob.get("ConfigurationErrors") == [1.0]]
    assert counted and counted[0]["provider"] == "xvid"
