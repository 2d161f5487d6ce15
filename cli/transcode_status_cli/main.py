"""The `transcode-status` command (pyproject's console script): `jobs ...` and `events ...`."""

from __future__ import annotations

from typing import Any

import click

from transcode_status_cli.errors import CliError, explain
from transcode_status_cli.events import events
from transcode_status_cli.jobs import jobs
from transcode_status_cli.setup import setup

EPILOG = """\b
Examples:
  transcode-status jobs list --stack prod --status ERROR --since 2h
  transcode-status jobs show vod_station '10019:/keynote.mp4' --stack prod
  transcode-status jobs track encoding_com 31000001 --stack prod
  transcode-status events tail --stack prod --event job.failed

Exit codes: 0 ok, 1 AWS or the jobs API answered with an error, 2 usage (also: no --stack/--table),
3 not found (stack, table, topic, bus, job, event), 4 credentials, region or permission, 5 unreachable.

\b
Shell completion (bash; zsh and fish alike with zsh_source, fish_source):
  eval "$(_TRANSCODE_STATUS_COMPLETE=bash_source transcode-status)"
"""


class _Cli(click.Group):
    """Turns AWS, network and lookup failures into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a subcommand's arguments (e.g. an unknown provider): one line too
            click.echo(f"transcode-status: {exc.format_message()} (see --help)", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            error = exc if isinstance(exc, CliError) else explain(exc)
            if error is None:
                raise
            click.echo(f"transcode-status: {error}", err=True)
            ctx.exit(error.code)


@click.group(cls=_Cli, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="transcode-status", message="%(prog)s %(version)s")
def cli() -> None:
    """Jobs and events of a transcode-status stack: deployed (--stack NAME) or the local run
    (--table/--topic/--api-url, which `make demo ARGS=--keep-running` prints)."""


cli.add_command(jobs)
cli.add_command(events)
cli.add_command(setup)


def main() -> None:
    cli(prog_name="transcode-status")
