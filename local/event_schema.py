"""The job event's JSON Schema (schemas/job-event.json), checked against every event the tests and the local
run receive, so the schema users read and the events they get cannot drift apart.

The same schema is registered in the stack's EventBridge schema registry (template.yaml, JobEventSchema), whose
JSON Schema type is Draft 4: `eventbridge_schema()` derives that document from the file (the envelope
EventBridge delivers, with the job event as `detail`), and `python -m local.event_schema` writes it into the
template, so there is one schema to edit."""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "job-event.json"
TEMPLATE_PATH = SCHEMA_PATH.parent.parent / "template.yaml"
# The detail-type of each event on the bus (CONTRACT "Events on the topic"): stalls apart, so a rule for
# them needs no content filter.
STATE_CHANGE_DETAIL_TYPE = "Transcode Job State Change"
STALLED_DETAIL_TYPE = "Transcode Job Stalled"
STALLED_EVENT = "job.stalled"
DRAFT4_URI = "http://json-schema.org/draft-04/schema#"
# Where the registered schema sits in template.yaml: the block under this line, indented by 8 spaces.
TEMPLATE_CONTENT_LINE = "      Content: |  # the registered schema: written by `python -m local.event_schema`"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def check_event(event: Any) -> None:
    """Raises ValueError naming every way `event` departs from the schema."""
    errors = sorted(validator().iter_errors(event), key=lambda error: list(error.path))
    if errors:
        where = event.get("event_id", "?") if isinstance(event, dict) else "?"
        details = "; ".join(f"{'/'.join(map(str, error.path)) or '(top)'}: {error.message}" for error in errors[:5])
        raise ValueError(f"event {where} does not match schemas/job-event.json: {details}")


# --- the schema registered with EventBridge ----------------------------------------------------------------
def _draft4(node: Any) -> Any:
    """A 2020-12 subschema said in Draft 4: `const` as a one-value `enum`, `$defs` as `definitions`, and
    `if`/`then`/`else` as the `anyOf` that means the same (not the condition, or the consequence)."""
    if isinstance(node, list):
        return [_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "if", "then", "else"):
            continue
        if key == "const":
            converted["enum"] = [value]
        elif key == "$defs":
            converted["definitions"] = {name: _draft4(item) for name, item in value.items()}
        elif key == "$ref":
            converted["$ref"] = value.replace("#/$defs/", "#/definitions/")
        elif key in ("properties", "definitions"):  # names, not keywords
            converted[key] = {name: _draft4(item) for name, item in value.items()}
        else:
            converted[key] = _draft4(value)
    if "if" in node:
        condition = _draft4(node["if"])
        rules = []
        if "then" in node:
            rules.append(_when(condition, _draft4(node["then"])))
        if "else" in node:
            rules.append({"anyOf": [condition, _draft4(node["else"])]})
        converted["allOf"] = [*converted.get("allOf", []), *rules]
    return converted


def _when(condition: dict[str, Any], consequence: dict[str, Any]) -> dict[str, Any]:
    """`if condition then consequence` in Draft 4, which has no if/then."""
    return {"anyOf": [{"not": condition}, consequence]}


def eventbridge_schema() -> dict[str, Any]:
    """The event as a rule's target receives it: EventBridge's envelope, `detail` the job event."""
    detail = _draft4(schema())
    definitions = detail.pop("definitions")
    stalled_type = {"properties": {"detail-type": {"enum": [STALLED_DETAIL_TYPE]}}}
    stalled_detail = {"properties": {"detail": {"properties": {"event": {"enum": [STALLED_EVENT]}}}}}
    return {
        "$schema": DRAFT4_URI,
        "title": "TranscodeJobEvent",
        "description": (
            "A transcode-status job event on EventBridge: the envelope EventBridge adds, and in `detail` the "
            "JSON every subscriber of the job-events topic receives (schemas/job-event.json, where this is "
            "generated from). Version 1 of the detail only gains fields; ignore fields you do not know."
        ),
        "type": "object",
        "required": ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"enum": [STATE_CHANGE_DETAIL_TYPE, STALLED_DETAIL_TYPE]},
            "source": {
                "description": "The stack's EventSource parameter (transcode-status unless set).",
                "type": "string",
            },
            "account": {"type": "string"},
            "time": {
                "description": "The event's occurred_at, in whole seconds.",
                "type": "string",
                "format": "date-time",
            },
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": {"$ref": "#/definitions/JobEvent"},
        },
        # detail-type "Transcode Job Stalled" exactly for the event job.stalled
        "allOf": [_when(stalled_type, stalled_detail), _when(stalled_detail, stalled_type)],
        "definitions": {"JobEvent": detail, **definitions},
    }


@lru_cache(maxsize=1)
def bus_validator() -> Draft4Validator:
    Draft4Validator.check_schema(eventbridge_schema())
    return Draft4Validator(eventbridge_schema())


def check_bus_event(event: Any) -> None:
    """Raises ValueError naming every way `event` (as EventBridge delivers it) departs from the registered
    schema."""
    errors = sorted(bus_validator().iter_errors(event), key=lambda error: list(error.path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, error.path)) or '(top)'}: {error.message}" for error in errors[:5])
        raise ValueError(f"bus event does not match the registered schema: {details}")


def _content_block(lines: list[str]) -> tuple[int, int]:
    """The lines [start, end) of template.yaml that hold the registered schema (under TEMPLATE_CONTENT_LINE)."""
    start = end = lines.index(TEMPLATE_CONTENT_LINE) + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" " * 8)):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def template_content(text: str) -> str:
    """The registered schema as template.yaml holds it."""
    lines = text.splitlines()
    start, end = _content_block(lines)
    return "".join(f"{line[8:]}\n" for line in lines[start:end])


def _json_lines(value: Any, indent: str = "", width: int = 110) -> str:
    """JSON indented by level, each object or list that fits in `width` on one line (as the schema file)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        members = [
            f"{inner}{json.dumps(key)}: {_json_lines(item, inner, width).lstrip()}" for key, item in value.items()
        ]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    members = [f"{inner}{_json_lines(item, inner, width)}" for item in value]
    return "[\n" + ",\n".join(members) + f"\n{indent}]"


def with_template_content(text: str) -> str:
    """template.yaml's text with its registered schema written from schemas/job-event.json."""
    lines = text.splitlines()
    start, end = _content_block(lines)
    content = _json_lines(eventbridge_schema())
    lines[start:end] = [f"        {line}" for line in content.splitlines()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.event_schema",
        description="Write the EventBridge schema (JSON Schema Draft 4) generated from schemas/job-event.json "
        "into template.yaml (JobEventSchema's Content).",
    )
    parser.add_argument(
        "--check", action="store_true", help="only check that template.yaml is up to date (exit 1 if not)"
    )
    arguments = parser.parse_args(argv)
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    updated = with_template_content(text)
    if updated == text:
        return 0
    if arguments.check:
        print(
            f"{TEMPLATE_PATH.name}: its registered schema differs from {SCHEMA_PATH.name} (run without --check)",
            file=sys.stderr,
        )
        return 1
    TEMPLATE_PATH.write_text(updated, encoding="utf-8")
    print(f"{TEMPLATE_PATH.name}: registered schema written from {SCHEMA_PATH.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
