"""Python's logging refuses an `extra` key that names a LogRecord attribute (KeyError "Attempt to overwrite
'created' in LogRecord"), at the level where the record is built: a suite that never builds INFO records
passes, and the deployed function (INFO) fails. This test reads every Python file of the repository and
fails on such a key wherever it is written: a literal `extra={...}`, a dict variable passed as `extra=`,
`dict(...)` keywords, and Powertools' `logger.append_keys(...)` keywords."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("layers", "functions", "local", "bench", "tests")

# Every attribute a LogRecord has, plus the two that Formatter.format() adds.
RESERVED = frozenset(vars(logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None))) | {
    "message",
    "asctime",
}


def _python_files() -> list[Path]:
    return sorted(path for folder in SOURCES for path in (ROOT / folder).rglob("*.py") if ".aws-sam" not in path.parts)


def _dict_keys(node: ast.AST) -> list[tuple[str, int]]:
    """The constant string keys of a dict display or a dict(...) call."""
    if isinstance(node, ast.Dict):
        constants = [key for key in node.keys if isinstance(key, ast.Constant) and type(key.value) is str]
        return [(key.value, key.lineno) for key in constants]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return [(keyword.arg, node.lineno) for keyword in node.keywords if keyword.arg]
    return []


def reserved_extra_keys(source: str) -> list[tuple[int, str]]:
    """(line, key) for every LogRecord attribute used as a log `extra` key in `source`."""
    tree = ast.parse(source)
    # Names bound to a dict somewhere in the module (function scopes are not told apart: over-reporting a
    # variable that shares a name is acceptable, missing one is not), and their item assignments.
    dict_vars: dict[str, list[tuple[str, int]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    dict_vars.setdefault(target.id, []).extend(_dict_keys(node.value))
                elif (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and isinstance(target.slice, ast.Constant)
                    and type(target.slice.value) is str
                ):
                    dict_vars.setdefault(target.value.id, []).append((target.slice.value, node.lineno))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        keys: list[tuple[str, int]] = []
        for keyword in node.keywords:
            if keyword.arg == "extra":
                keys += _dict_keys(keyword.value)
                if isinstance(keyword.value, ast.Name):
                    keys += dict_vars.get(keyword.value.id, [])
        if isinstance(node.func, ast.Attribute) and node.func.attr == "append_keys":
            keys += [(keyword.arg, node.lineno) for keyword in node.keywords if keyword.arg]
        found += [(line, key) for key, line in keys if key in RESERVED]
    return sorted(set(found))


def test_the_reserved_set_holds_the_usual_suspects():
    assert {"created", "name", "msg", "args", "module", "filename", "lineno", "process", "message"} <= RESERVED


@pytest.mark.parametrize(
    "source",
    [
        'logger.info("x", extra={"created": 1})',
        'logger.info("x", extra=dict(module="m"))',
        'fields = {"name": 1}\nlogger.info("x", extra=fields)',
        'fields = {}\nfields["lineno"] = 3\nlogger.warning("x", extra=fields)',
        'logger.append_keys(message="m")',
    ],
)
def test_a_reserved_key_is_found_however_it_is_written(source):
    assert reserved_extra_keys(source), source


def test_allowed_keys_pass():
    assert not reserved_extra_keys('fields = {"job_id": 1}\nlogger.info("x", extra={"new_job": True, **fields})')


def test_no_log_call_in_the_repository_uses_a_logrecord_attribute_as_extra_key():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: extra key {key!r} is a LogRecord attribute"
        for path in _python_files()
        for line, key in reserved_extra_keys(path.read_text(encoding="utf-8"))
        if path.name != Path(__file__).name  # this file writes them on purpose, as test input
    ]
    assert not offenders, "\n".join(offenders)
