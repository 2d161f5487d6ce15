"""The CLI in a terminal 80 and 120 columns wide (COLUMNS, as a shell exports it): nothing cut that a user
needs (a job id, a history time), no line wider than the terminal, clear lines for an empty list and for
refused or failed jobs API calls, and --help with examples."""

from __future__ import annotations

import inspect
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from tests.cli.test_cli import api, seeded, sims  # noqa: F401 - fixtures shared with the CLI's main tests
from transcode_status_cli.main import cli

# Every command at several widths: seconds of CPU, so `make test` runs it and `make check-fast` does not.
pytestmark = pytest.mark.slow

WIDTHS = (80, 120)
LONG_VOD_ID = "10019:/media/2026/keynote-final-version-three-with-subtitles-and-a-long-name.mp4"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def terminal(stack, api):  # noqa: F811 - the fixture imported above
    """Runs the CLI as a terminal `columns` wide would; returns (exit code, stdout, stderr)."""
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    runner = CliRunner(**separate)

    def run(columns: int, *args: str, **env: str) -> tuple[int, str, str]:
        environment = {
            "COLUMNS": str(columns),
            "TRANSCODE_STATUS_TABLE": stack.table_name,
            "TRANSCODE_STATUS_TOPIC": stack.topic_arn,
            "TRANSCODE_STATUS_API_URL": api.url,
            **env,
        }
        result = runner.invoke(cli, list(args), env=environment, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def column_text(table: str, header: str) -> str:
    """The text of one column of a rich table, its wrapped lines joined (borders and padding removed)."""
    lines = [line for line in table.splitlines() if line.startswith(("┃", "│"))]
    index = [cell.strip() for cell in lines[0].split("┃")].index(header)
    return "".join(line.split("│")[index].strip() for line in lines[1:] if line.startswith("│"))


def assert_fits(output: str, columns: int) -> None:
    wide = [line for line in output.splitlines() if len(line) > columns]
    assert wide == [], f"lines wider than {columns} columns: {wide}"


@pytest.mark.parametrize("columns", WIDTHS)
def test_jobs_list_never_cuts_a_job_id_and_fits_the_terminal(stack, sims, terminal, columns):  # noqa: F811
    done, failed, media_id = seeded(stack, sims, lambda *args: terminal(columns, *args))
    assert stack.track("vod_station", LONG_VOD_ID) == 201
    code, out, _ = terminal(columns, "jobs", "list")
    assert code == 0
    assert_fits(out, columns)
    ids = column_text(out, "job")
    assert all(job_id in ids for job_id in (done, failed, media_id, LONG_VOD_ID)), out
    assert "status" in out.splitlines()[1]
    # Each row names its provider and status in full, whatever was dropped to make room.
    assert "vod_station" in out and "COMPLETE" in out and "ERROR" in out


@pytest.mark.parametrize("columns", WIDTHS)
def test_jobs_show_keeps_every_history_time_whole(stack, sims, terminal, columns):  # noqa: F811
    done, _, _ = seeded(stack, sims, lambda *args: terminal(columns, *args))
    code, out, _ = terminal(columns, "jobs", "show", "xvid", done)
    assert code == 0
    assert_fits(out, columns)
    history = out[out.index("history") :]
    assert len(TIME.findall(history)) == len(stack.history("xvid", done)) >= 3, history
    assert "…" not in column_text(history.split("\n", 1)[1], "time")


@pytest.mark.parametrize("columns", WIDTHS)
def test_other_commands_fit_the_terminal(stack, sims, terminal, columns):  # noqa: F811
    done, _, media_id = seeded(stack, sims, lambda *args: terminal(columns, *args))
    for args in (
        ("jobs", "show", "encoding_com", media_id),
        ("jobs", "watch", "--max-iterations", "1"),
        ("jobs", "track", "vod_station", LONG_VOD_ID),
        ("jobs", "untrack", "vod_station", LONG_VOD_ID),
        ("events", "replay", "xvid", done),
        ("events", "test", "--provider", "xvid"),
        ("events", "tail", "--timeout", "1"),
    ):
        code, out, err = terminal(columns, *args)
        assert code == 0, (args, err)
        if args[1] not in ("track", "untrack", "replay", "test", "tail"):  # one-line answers: as long as the id
            assert_fits(out, columns)


@pytest.mark.parametrize("columns", WIDTHS)
def test_an_empty_list_says_so_in_a_line(terminal, columns):
    code, out, _ = terminal(columns, "jobs", "list")
    assert code == 0 and out.startswith("no jobs in the table yet") and "┃" not in out
    code, out, _ = terminal(columns, "jobs", "list", "--status", "ERROR", "--provider", "xvid")
    assert code == 0 and out.strip() == "no jobs (provider xvid; status ERROR)"
    code, out, _ = terminal(columns, "jobs", "watch", "--max-iterations", "1")
    assert code == 0 and "no jobs" in out and "┃" not in out


@pytest.fixture
def html_error_api():
    """A jobs API URL that answers every request as a proxy in trouble would: HTTP 500 with an HTML page."""
    page = b"<html>\n<head><title>500 Internal Server Error</title></head>\n<body>\n<h1>Oops</h1>\n</body>\n</html>\n"

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_html_error_page_is_one_line(terminal, html_error_api):
    code, out, err = terminal(80, "jobs", "track", "xvid", "abc", TRANSCODE_STATUS_API_URL=html_error_api)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "HTTP 500" in err and "500 Internal Server Error Oops" in err and "<" not in err


def test_a_bad_signature_is_reported_as_one(terminal):
    code, _, err = terminal(80, "jobs", "track", "xvid", "abc", AWS_SECRET_ACCESS_KEY="not-the-right-key")
    assert code == 4 and err.count("\n") == 1
    assert "signature" in err and "secret access key" in err and "execute-api:Invoke" not in err


HELP_COMMANDS = [
    (),
    ("jobs", "list"),
    ("jobs", "show"),
    ("jobs", "track"),
    ("jobs", "untrack"),
    ("jobs", "watch"),
    ("events", "tail"),
    ("events", "replay"),
    ("events", "test"),
]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda command: " ".join(command) or "top")
def test_help_shows_examples_that_fit(terminal, command, columns):
    code, out, _ = terminal(columns, *command, "--help")
    assert code == 0 and "Examples:" in out
    assert_fits(out, columns)
    examples = out[out.index("Examples:") :].splitlines()[1:]
    assert examples[0].strip().startswith(f"transcode-status {' '.join(command)}".strip())
    if not command:
        assert "make demo ARGS=--keep-running" in " ".join(out.split())
        assert "_TRANSCODE_STATUS_COMPLETE=bash_source transcode-status" in out
