"""Options every command takes: where the stack is (AWS CLI style) and `--json`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from transcode_core.providers import PROVIDER_IDS
from transcode_core.status import Status
from transcode_status_cli.target import Target

PROVIDER = click.Choice(PROVIDER_IDS)
STATUS = click.Choice([status.value for status in Status], case_sensitive=False)

_TARGET_OPTIONS = (
    click.option(
        "--stack",
        envvar="TRANSCODE_STATUS_STACK",
        help="Deployed stack: table, topic and API are read from its outputs. [env TRANSCODE_STATUS_STACK]",
    ),
    click.option(
        "--region",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's).",
    ),
    click.option("--profile", help="AWS profile (default: AWS_PROFILE)."),
    click.option(
        "--endpoint-url", help="AWS endpoint, e.g. the local run's moto server (boto3 also reads AWS_ENDPOINT_URL)."
    ),
    click.option("--table", "table_name", envvar="TRANSCODE_STATUS_TABLE", help="Jobs table, instead of --stack."),
    click.option(
        "--topic", "topic_arn", envvar="TRANSCODE_STATUS_TOPIC", help="Job-events topic ARN, instead of --stack."
    ),
    click.option("--api-url", envvar="TRANSCODE_STATUS_API_URL", help="HTTP API base URL, instead of --stack."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."),
)


def target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the stack options and --json; the command receives a Target and as_json."""

    @functools.wraps(command)
    def wrapper(
        stack: str | None,
        region: str | None,
        profile: str | None,
        endpoint_url: str | None,
        table_name: str | None,
        topic_arn: str | None,
        api_url: str | None,
        as_json: bool,
        **kwargs: Any,
    ) -> Any:
        named = {"table_name": table_name, "topic_arn": topic_arn, "api_url": api_url}
        if stack:  # the stack's outputs win over the environment; options given on the command line win over both
            context = click.get_current_context()
            for name in named:
                if context.get_parameter_source(name) is click.core.ParameterSource.ENVIRONMENT:
                    named[name] = None
        target = Target(stack=stack, region=region, profile=profile, endpoint_url=endpoint_url, **named)
        return command(target, as_json, **kwargs)

    for option in reversed(_TARGET_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def examples(*command_lines: str) -> str:
    """A command's --help epilog: example command lines, kept as written (click's \\b: no rewrapping)."""
    return "\b\nExamples:\n" + "".join(f"  transcode-status {line}\n" for line in command_lines)
