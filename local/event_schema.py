"""The job event's JSON Schema (schemas/job-event.json), checked against every event the tests and the local
run receive, so the schema users read and the events they get cannot drift apart."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "job-event.json"


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_event(event: Any) -> None:
    """Raises ValueError naming every way `event` departs from the schema."""
    errors = sorted(validator().iter_errors(event), key=lambda error: list(error.path))
    if errors:
        where = event.get("event_id", "?") if isinstance(event, dict) else "?"
        details = "; ".join(f"{'/'.join(map(str, error.path)) or '(top)'}: {error.message}" for error in errors[:5])
        raise ValueError(f"event {where} does not match schemas/job-event.json: {details}")
