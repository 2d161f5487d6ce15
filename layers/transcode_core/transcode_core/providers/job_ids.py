"""What each provider's job ids look like, apart from the adapters: the jobs API checks a request's id with
this module alone (a cold start without requests, the XML parser or the pipeline, which it never uses), and
each adapter checks what its provider sends with the same functions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from transcode_core.errors import BadRequest

# Characters no provider's job id holds: control characters (a newline or NUL would forge lines in the
# e-mail text and the logs), line and paragraph separators, and lone surrogates (no UTF-8 form to store).
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

_MEDIA_ID = re.compile(r"[0-9]{1,20}")
MAX_ORDER_ID_LENGTH = 200
# `pk` ("vod_station#" + job id) is also the ActiveJobs index's sort key, which holds at most 1024 bytes.
MAX_VOD_STATION_JOB_ID_BYTES = 1000
_VOD_STATION_JOB_ID = re.compile(r"[0-9]+:.+", re.DOTALL)
_XVID_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a safe path segment; Xvid's own ids are 24 hex digits


def unprintable_character(text: str) -> str | None:
    """The first character of `text` that no job id may hold, as U+XXXX; None when there is none."""
    for character in text:
        if unicodedata.category(character) in _UNPRINTABLE_CATEGORIES:
            return f"U+{ord(character):04X}"
    return None


def is_media_id(value: str) -> bool:
    """encoding.com media ids are positive integers."""
    return bool(_MEDIA_ID.fullmatch(value)) and int(value) > 0


def is_order_id(value: str) -> bool:
    """Whether `value` can be a TransparentEdge order id: any text (ids are URL-quoted into paths) but "." and
    ".."."""
    return bool(value) and value not in (".", "..") and len(value) <= MAX_ORDER_ID_LENGTH and value.isprintable()


def is_vod_station_job_id(value: str) -> bool:
    """`<categoryId>:<filePath>`, one line of printable text short enough (in UTF-8 bytes) to be a key of the
    table and its index."""
    return (
        bool(_VOD_STATION_JOB_ID.fullmatch(value))
        and unprintable_character(value) is None
        and len(value.encode("utf-8")) <= MAX_VOD_STATION_JOB_ID_BYTES
    )


def is_xvid_job_id(value: object) -> bool:
    return isinstance(value, str) and _XVID_JOB_ID.fullmatch(value) is not None


# Provider id -> whether a string can name one of its jobs.
IS_JOB_ID: dict[str, Callable[[str], bool]] = {
    "encoding_com": is_media_id,
    "transparent_edge": is_order_id,
    "xvid": is_xvid_job_id,
    "vod_station": is_vod_station_job_id,
}


def check_job_id(provider: str, job_id: str) -> None:
    """BadRequest, saying why, unless `job_id` can name one of the provider's jobs: one line of printable
    text (whatever the provider allows) in the provider's own form."""
    character = unprintable_character(job_id)
    if character:
        raise BadRequest(f"a {provider} job id cannot hold a control character ({character})")
    if not IS_JOB_ID[provider](job_id):
        raise BadRequest(f"{job_id[:100]!r} is not a {provider} job id")
