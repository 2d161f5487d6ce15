"""Leaf values of provider documents (JSON, or XML read through `xmlsafe.to_plain`) as text or integers."""

from __future__ import annotations

import math
import re

_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})$")  # [H:]MM:SS


def text(value: object) -> str | None:
    """A leaf value as stripped text; None for null, empty text, a boolean or a nested object."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value).strip() or None


def integer(value: object) -> int | None:
    """A whole number from a number or numeric text ("12", "12.0", 12.7 -> 12); None when absent, a boolean or
    not a finite number."""
    if isinstance(value, bool):
        return None
    try:
        return int(float(text(value) or ""))
    except (ValueError, OverflowError):
        return None


def seconds(value: object) -> float | None:
    """A duration as seconds: a number of seconds ("90", "90.5") or a clock reading ("1:30", "0:01:30");
    None when absent, negative or unreadable."""
    shown = text(value)
    if shown is None:
        return None
    clock = _CLOCK.match(shown)
    if clock:
        hours, minutes, secs = (int(part or 0) for part in clock.groups())
        return float(hours * 3600 + minutes * 60 + secs)
    try:
        number = float(shown)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
