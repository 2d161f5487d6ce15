"""Leaf values of provider documents (JSON, or XML read through `xmlsafe.to_plain`) as text or integers."""

from __future__ import annotations


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
