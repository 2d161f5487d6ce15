"""Every command in README.md and docs/*.md runs as written. The shell commands of their code blocks (and
the inline `make ...`, `.venv/bin/...` spans) are classified: the cheap offline ones run here and must exit 0
(`make help`, each documented CLI command and `python -m` module with its options, through `--help`); what
needs AWS, a deployment, Docker or minutes is not run, but the make targets, functions, options and files it
names must exist. A command no rule knows fails the test: classify it below."""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.template import load_template

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
# Inline code that is a command (not a name or a value).
COMMAND_SPAN = re.compile(r"^(make [a-z]|\.venv/bin/|transcode-status |sam |aws |curl )")
# Not run here, and why (checked in order; the first match decides).
NOT_RUN = [
    (re.compile(r"(^|[\s(|;&])(aws|curl)\s"), "needs AWS credentials or a deployed stack"),
    (re.compile(r"(^|\s)(\.venv/bin/)?sam (deploy|delete|logs|sync)\b"), "needs AWS credentials or a deployed stack"),
    (re.compile(r"(^|\s)(\.venv/bin/)?sam local\b"), "needs Docker"),
    (re.compile(r"(^|\s)(\.venv/bin/)?sam (build|validate)\b"), "runs in make test (minutes, or > 20 s here)"),
    (re.compile(r"^[A-Z_][A-Z0-9_]*=\S*<[^>]+>"), "sets a variable to a value the reader fills in"),
]
# make targets run here (the others install, build, deploy or run for minutes; each is checked to exist).
MAKE_RUN = {"help"}
# Top-level directories whose paths the pages name; a named path must exist (placeholders aside).
REPO_DIRS = ("functions", "layers", "local", "tests", "events", "docs", "bench", "cli", "schemas", ".ci")


@dataclass(frozen=True)
class Command:
    text: str
    where: str  # page:line

    def words(self) -> list[str]:
        """The words after any leading VAR=value assignments."""
        words = shlex.split(self.text, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words.pop(0)
        return words


def fenced_blocks(text: str):
    """(language, body, first line number) of each fenced code block."""
    for match in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.S | re.M):
        yield match.group(1), match.group(2), text.count("\n", 0, match.start(2)) + 1


def continues(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return bool(re.search(r"(\||&&)\s*(#.*)?$", text))


def commands_of(page: Path) -> list[Command]:
    text = page.read_text(encoding="utf-8")
    name = page.relative_to(ROOT).as_posix()
    found: list[Command] = []
    for language, body, first in fenced_blocks(text):
        if language not in SHELL_BLOCKS:
            continue
        lines = body.split("\n")
        pending, start = "", 0
        for offset, line in enumerate(lines):
            if language == "console":  # a transcript: only the prompted lines are commands
                if line.startswith("$ "):
                    found.append(Command(line[2:].strip(), f"{name}:{first + offset}"))
                continue
            if not pending:
                start = offset
            pending += line
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            if continues(pending):  # an open quote or a trailing pipe: the command goes on
                pending += "\n"
                continue
            if pending.strip() and not pending.lstrip().startswith("#"):
                found.append(Command(pending.strip(), f"{name}:{first + start}"))
            pending = ""
    outside = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    for match in re.finditer(r"`([^`\n]+)`", outside):
        span = match.group(1).strip()
        if COMMAND_SPAN.match(span) and "..." not in span:  # `.venv/bin/...` names a place, not a command
            found.append(Command(span, f"{name}:{outside.count(chr(10), 0, match.start()) + 1}"))
    return found


ALL_COMMANDS = [command for page in PAGES for command in commands_of(page)]


def makefile_targets() -> dict[str, list[str]]:
    """Each target of the Makefile and its recipe lines."""
    targets: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([a-z][\w-]*):(?!=)", line)
        if match:
            current = match.group(1)
            targets[current] = []
        elif line.startswith("\t") and current:
            targets[current].append(line.strip())
    return targets


def options_of(words: list[str]) -> set[str]:
    return {word.split("=", 1)[0] for word in words if word.startswith("--")}


def classify(command: Command) -> str:
    """'make', 'cli', 'module', or why it is not run."""
    for pattern, reason in NOT_RUN:
        if pattern.search(command.text):
            return reason
    words = command.words()
    program = Path(words[0]).name if words else ""
    if program == "make":
        return "make"
    if program == "transcode-status":
        return "cli"
    if re.fullmatch(r"python(3(\.\d+)?)?", program) and len(words) > 2 and words[1] == "-m":
        return "module"
    return "unclassified"


def test_the_pages_hold_commands_of_each_kind():
    kinds = defaultdict(list)
    for command in ALL_COMMANDS:
        kinds[classify(command)].append(command)
    assert kinds["unclassified"] == [], "classify these commands in tests/test_docs_commands.py"
    assert kinds["make"] and kinds["cli"] and kinds["module"], "the extraction found nothing to check"


def test_every_make_target_the_pages_name_exists_and_make_help_runs():
    targets = makefile_targets()
    named = {}
    for page in PAGES:
        for match in re.finditer(r"`make ([a-z][\w-]*)", page.read_text(encoding="utf-8")):
            named.setdefault(match.group(1), f"{page.name}")
    for command in ALL_COMMANDS:
        if classify(command) == "make":
            named.setdefault(command.words()[1], command.where)
    missing = {target: where for target, where in named.items() if target not in targets}
    assert missing == {}, "the pages name make targets the Makefile lacks"
    for target in sorted(MAKE_RUN & set(named)):
        make = shutil.which("make")
        assert make, "make is not installed"
        result = subprocess.run([make, target], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, f"make {target}: {result.stderr}"
        if target == "help":  # it lists every target the pages name
            assert set(named) <= set(re.findall(r"^\s+([a-z][\w-]*)\s", result.stdout, re.M))


# The tests that run a module's or the CLI's --help start a Python process per module (seconds in all):
# `make test` runs them, `make check-fast` leaves them out.
@pytest.mark.slow
def test_make_arguments_the_pages_show_are_ones_the_targets_take():
    """`make demo ARGS=--keep-running`, `make invoke FUNCTION=... EVENT=...`: ARGS are options of the module
    the target runs, FUNCTION a function of template.yaml, EVENT a file."""
    targets = makefile_targets()
    functions = {
        name
        for name, body in load_template(ROOT / "template.yaml")["Resources"].items()
        if body["Type"] == "AWS::Serverless::Function"
    }
    for command in ALL_COMMANDS:
        if classify(command) != "make":
            continue
        words = command.words()
        settings = dict(word.split("=", 1) for word in words[2:] if "=" in word)
        if "FUNCTION" in settings and "<" not in settings["FUNCTION"]:
            assert settings["FUNCTION"] in functions, command
        if "EVENT" in settings and "<" not in settings["EVENT"]:
            assert (ROOT / settings["EVENT"]).is_file(), command
        if "ARGS" in settings:
            recipe = " ".join(targets[words[1]])
            module = re.search(r"-m ([\w.]+) .*\$\(ARGS\)", recipe)
            assert module, f"{command.where}: make {words[1]} takes no ARGS"
            help_text = module_help(module.group(1))
            for option in options_of(shlex.split(settings["ARGS"])):
                assert option in help_text, f"{command.where}: {option} is not an option of {module.group(1)}"


@functools.cache  # one process per module, whichever test asks
def module_help(module: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"python -m {module} --help: exit {result.returncode}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_every_python_module_command_runs_with_the_options_the_pages_show():
    by_module: dict[str, list[Command]] = defaultdict(list)
    for command in ALL_COMMANDS:
        if classify(command) == "module":
            by_module[command.words()[2]].append(command)
    assert by_module
    for module, commands in by_module.items():
        help_text = module_help(module)
        for command in commands:
            for option in options_of(command.words()[3:]):
                assert option in help_text, f"{command.where}: {option} is not an option of python -m {module}"


@pytest.mark.slow
def test_the_cli_runs_and_every_cli_command_the_pages_show_parses_as_written():
    from click.testing import CliRunner

    from transcode_status_cli.main import cli

    installed = Path(sys.executable).with_name("transcode-status")
    result = subprocess.run([str(installed), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "jobs" in result.stdout, result.stderr
    runner = CliRunner()
    commands = [command for command in ALL_COMMANDS if classify(command) == "cli"]
    assert commands
    for command in commands:
        # --help is eager: the words before it must name a command, the options must be its own
        answer = runner.invoke(cli, [*command.words()[1:], "--help"])
        assert answer.exit_code == 0, f"{command.where}: {command.text}\n{answer.output}"
        for option in options_of(command.words()[1:]):
            assert option in answer.output, f"{command.where}: {option} is not an option of this command"


_DIRS = "|".join(re.escape(directory) for directory in REPO_DIRS)
PATH_TOKEN = re.compile(rf"(?<![\w/.$-])((?:{_DIRS})/[^\s`'\"()\[\],;:|#]*)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_file_and_link_a_page_names_exists(page):
    text = page.read_text(encoding="utf-8")
    missing = []
    for match in PATH_TOKEN.finditer(text):
        path = match.group(1).rstrip(".")
        if re.search(r"[<{*$]", path) or path.endswith("-"):  # a pattern or placeholder, not a file
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    for match in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", text):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):  # http(s), mailto
            continue
        if not (page.parent / target).exists():
            missing.append(target)
    assert missing == [], f"{page.name} names files that do not exist"
