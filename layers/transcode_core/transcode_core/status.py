"""The canonical job statuses, their order and the provider words that map to them (CONTRACT "Canonical
status"). Apart from the model's dataclasses: what only reads and writes statuses (the table, the jobs API)
imports this alone."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Status(StrEnum):
    SUBMITTED = "SUBMITTED"
    DOWNLOADING = "DOWNLOADING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    UPLOADING = "UPLOADING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"


TERMINAL = frozenset({Status.COMPLETE, Status.ERROR, Status.CANCELED})
_TERMINAL_RANK = 5
_RANK = {
    Status.UNKNOWN: -1,  # only ever stored for a job first seen with a word nobody knows
    Status.SUBMITTED: 0,
    Status.DOWNLOADING: 1,
    Status.QUEUED: 2,
    Status.PROCESSING: 3,
    Status.UPLOADING: 4,
    Status.COMPLETE: _TERMINAL_RANK,
    Status.ERROR: _TERMINAL_RANK,
    Status.CANCELED: _TERMINAL_RANK,
}
EVENT_NAMES = {
    Status.COMPLETE: "job.completed",
    Status.ERROR: "job.failed",
    Status.CANCELED: "job.canceled",
}
STALLED = "STALLED"
STALLED_EVENT = "job.stalled"


def rank(status: Status) -> int:
    return _RANK[status]


def is_terminal(status: Status | str) -> bool:
    return Status(status) in TERMINAL


def normalize_word(word: object) -> str:
    """A provider's word as it is matched: whitespace collapsed, lower case; "" for none."""
    return " ".join(str(word).split()).lower() if word else ""


def map_status(provider_word: str | None, words: Mapping[str, Status]) -> Status:
    """The canonical status of a provider's word; `words` keys are normalized. Unknown words -> UNKNOWN."""
    if not provider_word:
        return Status.UNKNOWN
    return words.get(normalize_word(provider_word), Status.UNKNOWN)


def status_words(table: Mapping[Status, tuple[str, ...]]) -> dict[str, Status]:
    """Turns a readable {Status: (words...)} table into the lookup `map_status` uses."""
    return {normalize_word(word): status for status, words in table.items() for word in words}
