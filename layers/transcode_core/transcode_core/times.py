"""Time parsing to the CONTRACT's form: ISO 8601 UTC with a `Z` suffix."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """A datetime as `YYYY-MM-DDTHH:MM:SSZ` (microseconds kept only when present)."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(value: object, *, assume: tzinfo = UTC) -> str | None:
    """A provider's date (ISO 8601 with or without offset, `YYYY-MM-DD HH:MM:SS`, `+0900` offsets,
    microseconds) as ISO Z; None for empty, zero (`0000-00-00 00:00:00`) or unreadable values.
    `assume` is the zone of dates that carry no offset."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.startswith("0000-00-00"):
        return None
    # Python 3.11 reads "+09:00" but not "+0900" in fromisoformat; normalize the offset.
    text = _COMPACT_OFFSET.sub(r"\1:\2", text.replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=assume)
    return iso_z(moment)


def from_epoch_ms(value: object) -> str | None:
    """Epoch milliseconds (number or numeric string) as ISO Z; None when absent or not a number."""
    if value is None or value == "":
        return None
    try:
        millis = int(float(value))
        if millis <= 0:
            return None
        return iso_z(datetime.fromtimestamp(millis / 1000, tz=UTC))
    except (TypeError, ValueError, OverflowError, OSError):  # not a number, infinite, or beyond year 9999
        return None


def to_datetime(value: object, *, assume: tzinfo = UTC) -> datetime | None:
    """A date `parse_time` reads (an ISO Z string included) as an aware datetime; None when it reads none."""
    iso = parse_time(value, assume=assume)
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


def to_epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def is_later(first: str | None, second: str | None) -> bool:
    """Whether ISO time `first` is after `second` (False when either is missing or unreadable). Compared as
    times: as text, "10:00:05Z" would sort after "10:00:05.5Z"."""
    first_moment, second_moment = to_datetime(first), to_datetime(second)
    return first_moment is not None and second_moment is not None and first_moment > second_moment


def zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC
    from zoneinfo import ZoneInfo  # only for a zone other than UTC: most cold starts never need it (~2 ms)

    return ZoneInfo(name)
