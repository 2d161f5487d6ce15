"""`transcode-status setup`: after the first deploy, stores each deployed provider's credentials in the secret
the stack created (keeping its generated webhook token) and prints the webhook URL, token included, to give
the provider. Credentials come from the environment or from prompts (stdin when piped), and are never printed."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import click

from transcode_core.providers import PROVIDER_IDS, get_spec
from transcode_status_cli.errors import NOT_FOUND, USAGE, CliError
from transcode_status_cli.options import PROVIDER
from transcode_status_cli.target import Target

# Provider id -> the prefix of its template outputs (<Prefix>SecretArn, <Prefix>WebhookUrl) and where the
# provider takes the webhook URL.
PROVIDER_OUTPUTS = {
    "encoding_com": ("EncodingCom", "encoding.com: the notify URL of each request"),
    "transparent_edge": ("TransparentEdge", "TransparentEdge: transcodingnotification_set[].callback_url"),
    "xvid": ("Xvid", "Xvid: the job's callback URL"),
    "vod_station": ("VodStation", "VOD Station: each category's notification URL"),
}
# Keys that name an account rather than grant access: echoed while typed. Every other key is hidden.
VISIBLE_KEYS = ("user_id", "company_id", "client_id")


def credential_variable(provider: str, key: str) -> str:
    """The environment variable a credential may come from, e.g. TRANSCODE_STATUS_XVID_CLIENT_SECRET."""
    return f"TRANSCODE_STATUS_{provider.upper()}_{key.upper()}"


def new_webhook_token() -> str:
    return secrets.token_hex(24)  # 48 characters, URL-safe as they are (like the stack's generated token)


@click.command(
    short_help="Fill in the provider secrets, print the webhook URLs.",
    epilog="Example: transcode-status setup --stack transcode-status --provider xvid",
)
@click.option("--stack", envvar="TRANSCODE_STATUS_STACK", help="Deployed stack. [env TRANSCODE_STATUS_STACK]")
@click.option(
    "--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], help="AWS region (default: AWS_REGION, the profile's)."
)
@click.option("--profile", help="AWS profile (default: AWS_PROFILE).")
@click.option("--endpoint-url", help="AWS endpoint (boto3 also reads AWS_ENDPOINT_URL).")
@click.option(
    "--provider",
    "providers",
    type=PROVIDER,
    multiple=True,
    help="Only this provider (repeatable); default: every provider the stack deploys.",
)
@click.option("--replace", is_flag=True, help="Overwrite credentials a secret already holds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def setup(
    stack: str | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    providers: tuple[str, ...],
    replace: bool,
    as_json: bool,
) -> None:
    """Store each deployed provider's credentials in its secret and print its webhook URL.

    Each credential is read from TRANSCODE_STATUS_<PROVIDER>_<KEY> (e.g. TRANSCODE_STATUS_XVID_CLIENT_SECRET)
    or asked for (hidden while typed; read from stdin when piped). The secret keeps the webhook token the
    stack generated; the webhook URL with that token is printed once, for you to give the provider.
    A secret that already holds credentials is left alone unless --replace is given."""
    if not stack:
        raise CliError("say which stack: --stack NAME (see --help)", USAGE)
    target = Target(stack=stack, region=region, profile=profile, endpoint_url=endpoint_url)
    outputs = target.outputs
    deployed = [provider for provider in PROVIDER_IDS if f"{PROVIDER_OUTPUTS[provider][0]}SecretArn" in outputs]
    if not deployed:
        raise CliError(f"stack {stack} has no provider secret outputs (is it a transcode-status stack?)", NOT_FOUND)
    for provider in providers:
        if provider not in deployed:
            raise CliError(f"stack {stack} does not deploy {provider} (EnabledProviders)", USAGE)
    results = [_set_up(target, provider, replace, quiet=as_json) for provider in providers or deployed]
    if as_json:
        click.echo(json.dumps({"providers": results}, sort_keys=True))


def _set_up(target: Target, provider: str, replace: bool, *, quiet: bool) -> dict[str, Any]:
    prefix, where = PROVIDER_OUTPUTS[provider]
    secret_arn = target.outputs[f"{prefix}SecretArn"]
    client = target.client("secretsmanager")
    current = _secret_json(client, secret_arn)
    keys = get_spec(provider).secret_keys
    filled = all(current.get(key) for key in keys)
    if filled and not replace:
        if not quiet:
            click.echo(f"{provider}: {secret_arn} already holds credentials; left as it is (--replace to overwrite)")
        return {"provider": provider, "secret_arn": secret_arn, "stored": False}
    if not quiet:
        click.echo(f"{provider}: credentials for {secret_arn}", err=True)
    credentials = {key: _credential(provider, key) for key in keys}
    token = current.get("webhook_token") or new_webhook_token()
    value = {**current, **credentials, "webhook_token": token}
    client.put_secret_value(SecretId=secret_arn, SecretString=json.dumps(value))
    webhook_url = f"{target.outputs[f'{prefix}WebhookUrl']}?token={token}"
    if not quiet:
        click.echo(f"{provider}: credentials stored. Give {where}:\n  {webhook_url}")
    return {"provider": provider, "secret_arn": secret_arn, "stored": True, "webhook_url": webhook_url}


def _secret_json(client: Any, secret_arn: str) -> dict[str, Any]:
    try:
        raw = client.get_secret_value(SecretId=secret_arn).get("SecretString") or "{}"
    except client.exceptions.ResourceNotFoundException:
        raw = "{}"  # created without a value (e.g. an existing secret passed as <Provider>SecretArn)
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CliError(f"secret {secret_arn} does not hold a JSON object; fix or empty it first", USAGE)
    return value


def _credential(provider: str, key: str) -> str:
    value = os.environ.get(credential_variable(provider, key), "").strip()
    if not value:
        # default "": an empty answer ends here (click would ask again forever on a pipe of empty lines)
        value = click.prompt(
            f"  {key}", default="", show_default=False, hide_input=key not in VISIBLE_KEYS, err=True
        ).strip()
    if not value:
        raise CliError(f"{provider} {key} is empty", USAGE)
    return value
