"""`transcode-status setup` against a moto stack shaped like a first deploy: the stack's secrets hold empty
credentials and a generated webhook token; setup fills them in and prints each webhook URL with its token."""

from __future__ import annotations

import inspect
import json

import boto3
import pytest
from click.testing import CliRunner

from transcode_core.providers import get_spec
from transcode_status_cli.main import cli

API = "https://abc123.execute-api.us-east-1.amazonaws.com"
GENERATED = {"encoding_com": "a" * 47 + "1", "xvid": "b" * 47 + "2"}  # what the stack's GenerateSecretString made
ENCODING = {"user_id": "8899", "user_key": "ek-SECRET-value"}
XVID = {"client_id": "xvid-client", "client_secret": "xs-SECRET-value"}


@pytest.fixture
def deployed(aws):
    """A stack deploying encoding.com and Xvid (EnabledProviders=encoding_com,xvid), as `sam deploy` leaves it."""
    secrets = boto3.client("secretsmanager")
    outputs = {}
    for provider, prefix, path in (("encoding_com", "EncodingCom", "encoding-com"), ("xvid", "Xvid", "xvid")):
        empty = dict.fromkeys(get_spec(provider).secret_keys, "")
        arn = secrets.create_secret(
            Name=f"ts/{path}", SecretString=json.dumps({**empty, "webhook_token": GENERATED[provider]})
        )["ARN"]
        outputs[f"{prefix}SecretArn"] = {"Value": arn}
        outputs[f"{prefix}WebhookUrl"] = {"Value": f"{API}/webhooks/{path}"}
    boto3.client("cloudformation").create_stack(
        StackName="ts",
        TemplateBody=json.dumps({"Resources": {"Dummy": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}),
    )
    return {name: output["Value"] for name, output in outputs.items()}


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    result = CliRunner(**separate).invoke(cli, ["setup", *args], input=input, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def stored(arn: str) -> dict[str, str]:
    return json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_setup_stores_the_credentials_keeps_the_generated_token_and_prints_each_webhook_url_once(deployed):
    from aws_lambda_powertools.utilities import parameters

    from transcode_core.secrets import load_credentials

    # Given encoding.com's credentials typed at the prompts and Xvid's in the environment
    typed = f"{ENCODING['user_id']}\n{ENCODING['user_key']}\n"
    env = {
        "TRANSCODE_STATUS_XVID_CLIENT_ID": XVID["client_id"],
        "TRANSCODE_STATUS_XVID_CLIENT_SECRET": XVID["client_secret"],
    }
    code, out, err = run("--stack", "ts", input=typed, env=env)
    assert code == 0, err
    # Then each secret holds them beside the token the stack generated, as the provider function reads it
    parameters.clear_caches()
    for provider, credentials, prefix in (("encoding_com", ENCODING, "EncodingCom"), ("xvid", XVID, "Xvid")):
        secret = load_credentials(deployed[f"{prefix}SecretArn"], get_spec(provider).secret_keys)
        assert secret == {**credentials, "webhook_token": GENERATED[provider]}
        # and the URL to give the provider is printed once, with that token
        url = f"{deployed[f'{prefix}WebhookUrl']}?token={GENERATED[provider]}"
        assert out.count(url) == 1
        assert (out + err).count(GENERATED[provider]) == 1
    # And no credential it was given is printed (the visible ids are echoed only at a terminal)
    for value in ("ek-SECRET-value", "xs-SECRET-value", "xvid-client"):
        assert value not in out + err


def test_a_filled_secret_is_left_alone_unless_replaced_and_its_token_is_not_printed_again(deployed):
    env = {f"TRANSCODE_STATUS_XVID_{key.upper()}": value for key, value in XVID.items()}
    assert run("--stack", "ts", "--provider", "xvid", env=env)[0] == 0
    arn = deployed["XvidSecretArn"]

    code, out, err = run("--stack", "ts", "--provider", "xvid", env={"TRANSCODE_STATUS_XVID_CLIENT_SECRET": "new"})
    assert code == 0 and "already holds credentials" in out and GENERATED["xvid"] not in out + err
    assert stored(arn)["client_secret"] == XVID["client_secret"]

    replaced = {"TRANSCODE_STATUS_XVID_CLIENT_ID": "other-id", "TRANSCODE_STATUS_XVID_CLIENT_SECRET": "new"}
    code, out, _ = run("--stack", "ts", "--provider", "xvid", "--replace", "--json", env=replaced)
    assert code == 0
    assert json.loads(out)["providers"] == [
        {
            "provider": "xvid",
            "secret_arn": arn,
            "stored": True,
            "webhook_url": f"{deployed['XvidWebhookUrl']}?token={GENERATED['xvid']}",
        }
    ]
    assert stored(arn) == {"client_id": "other-id", "client_secret": "new", "webhook_token": GENERATED["xvid"]}


def test_a_secret_without_a_token_gets_a_generated_one(deployed):
    arn = deployed["XvidSecretArn"]
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="{}")
    env = {"TRANSCODE_STATUS_XVID_CLIENT_ID": "id", "TRANSCODE_STATUS_XVID_CLIENT_SECRET": "secret"}
    code, out, _ = run("--stack", "ts", "--provider", "xvid", "--json", env=env)
    token = stored(arn)["webhook_token"]
    assert code == 0 and len(token) >= 32 and token.isalnum()
    assert json.loads(out)["providers"][0]["webhook_url"].endswith(f"?token={token}")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--stack", "ts", "--provider", "vod_station"), 2, "does not deploy vod_station"),
        (("--stack", "no-such-stack"), 3, "does not exist"),
        ((), 2, "say which stack"),
    ],
)
def test_setup_refuses_what_it_cannot_do_in_one_line(deployed, args, code, message):
    exit_code, out, err = run(*args, input="")
    assert exit_code == code and message in err and err.count("\n") == 1 and out == ""


def test_empty_input_stores_nothing(deployed):
    code, _, err = run("--stack", "ts", "--provider", "xvid", input="\n\n")
    assert code == 2 and "xvid client_id is empty" in err
    assert stored(deployed["XvidSecretArn"])["client_id"] == ""


@pytest.mark.slow  # a moto server and a Python process
def test_setup_as_a_process_reads_hidden_answers_from_a_pipe():
    """The way a script feeds it: credentials piped on stdin, no terminal."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from moto.server import ThreadedMotoServer

    root = Path(__file__).resolve().parents[2]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        clients = {
            name: boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")
            for name in ("secretsmanager", "cloudformation")
        }
        arn = clients["secretsmanager"].create_secret(
            Name="ts/xvid",
            SecretString=json.dumps({"client_id": "", "client_secret": "", "webhook_token": GENERATED["xvid"]}),
        )["ARN"]
        outputs = {"XvidSecretArn": {"Value": arn}, "XvidWebhookUrl": {"Value": f"{API}/webhooks/xvid"}}
        clients["cloudformation"].create_stack(
            StackName="ts",
            TemplateBody=json.dumps({"Resources": {"Dummy": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRANSCODE_STATUS_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(root / "cli"), str(root / "layers" / "transcode_core")]),
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="demo",
            AWS_SECRET_ACCESS_KEY="demo",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        done = subprocess.run(
            [sys.executable, "-m", "transcode_status_cli", "setup", "--stack", "ts"],
            input=f"{XVID['client_id']}\n{XVID['client_secret']}\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.count(f"{API}/webhooks/xvid?token={GENERATED['xvid']}") == 1
        assert XVID["client_secret"] not in done.stdout + done.stderr
        stored_value = json.loads(clients["secretsmanager"].get_secret_value(SecretId=arn)["SecretString"])
        assert stored_value == {**XVID, "webhook_token": GENERATED["xvid"]}
    finally:
        server.stop()
