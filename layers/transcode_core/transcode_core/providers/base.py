"""What every provider adapter offers the pipeline, and the spec the registry holds for it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

import requests

from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import ProviderError
from transcode_core.model import Snapshot
from transcode_core.providers import job_ids
from transcode_core.stored_items import READ_AHEAD, StoredJob
from transcode_core.webhook import WebhookBody

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class PollFailure:
    """One call of a poll failed: these jobs stay as they were; the pipeline logs and counts it."""

    error: ProviderError
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadLater:
    """Jobs a poll hands to the fan-out consumers to read (PollContext.defer_reads), each with what the poll
    already knows of it (its listing entry, JSON; {} when none): a consumer hands both to `read_deferred`."""

    jobs: Mapping[str, Mapping[str, Any]]


@dataclass
class PollContext:
    """What an adapter knows of the store when it polls."""

    # This provider's jobs to poll (not terminal, or watched again), by id: the pipeline gives ActiveJobs, which
    # holds their ids and reads their items when asked for, in this order (look others up with stored_jobs).
    active_by_id: Mapping[str, StoredJob]
    lookup: Callable[[Sequence[str]], Mapping[str, StoredJob]]  # job_id -> stored item, for any job
    now: datetime
    settings: Settings
    stats: Counter[str] = field(default_factory=Counter)  # adapter counters the pipeline turns into metrics
    # The poll fans out: an adapter that reads jobs one request each may yield ReadLater instead of reading
    # them, so that the fan-out consumers make those requests (adapters that read in batches ignore it).
    defer_reads: bool = False

    def stored_jobs(self, job_ids: Iterable[str]) -> dict[str, StoredJob]:
        """The stored items of these jobs, active or not (missing ones left out). Ask a page at a time
        (`in_chunks`): a poll holds only the items it works on."""
        return dict(self.lookup(list(dict.fromkeys(job_ids))))

    def in_chunks(self, job_ids: Iterable[str]) -> Iterator[tuple[Sequence[str], dict[str, StoredJob]]]:
        """These jobs READ_AHEAD at a time, each chunk with its jobs' stored items (missing ones left out)."""
        for chunk in iter_chunks(list(dict.fromkeys(job_ids)), READ_AHEAD):
            yield chunk, self.stored_jobs(chunk)


class Adapter(ABC):
    """A provider's client and normalizer. Builds Snapshots; never touches the table or the topic."""

    provider: str

    def __init__(
        self,
        *,
        api_url: str,
        credentials: Mapping[str, str],
        session: requests.Session,
        settings: Settings,
        deadline: Deadline | None = None,
    ) -> None:
        self.api_url = api_url
        self.credentials = credentials
        self.session = session
        self.settings = settings
        # The invocation's time budget: every provider call (timeouts, retries, Retry-After) stays within it.
        self.deadline = deadline or Deadline.none()

    @abstractmethod
    def poll(self, context: PollContext) -> Iterator[Snapshot | PollFailure]:
        """Snapshots of the active jobs and of jobs discovered in listings; a failed call yields a
        PollFailure and the poll goes on with the rest."""

    @abstractmethod
    def webhook_job_ids(self, body: WebhookBody) -> list[str]:
        """The job ids a webhook body names; BadRequest when it names none or cannot be read."""

    @abstractmethod
    def read_jobs(self, job_ids: Sequence[str]) -> Iterator[Snapshot | PollFailure]:
        """The current state of these jobs, read from the provider's API."""

    def read_deferred(
        self, jobs: Mapping[str, Mapping[str, Any]], stored: Mapping[str, StoredJob]
    ) -> Iterator[Snapshot | PollFailure]:
        """The jobs of a ReadLater this adapter yielded, read now (in a fan-out consumer) with what the poll
        knew of them and their stored items."""
        return self.read_jobs(list(jobs))

    def webhook_snapshots(
        self, body: WebhookBody, lookup: Callable[[Sequence[str]], dict[str, StoredJob]]
    ) -> list[Snapshot]:
        """A webhook is a hint: read the named jobs from the API and apply what it says. Providers whose API
        cannot read one job (VOD Station) override this and build snapshots from the body itself."""
        snapshots: list[Snapshot] = []
        for result in self.read_jobs(self.webhook_job_ids(body)):
            if isinstance(result, PollFailure):
                raise result.error
            snapshots.append(result)
        return snapshots


@dataclass(frozen=True)
class ProviderSpec:
    id: str
    default_api_url: str
    secret_keys: tuple[str, ...]
    adapter: type[Adapter]
    status_words: Mapping[str, Any]  # lower-case word -> Status, for the README and tests
    is_job_id: Callable[[str], bool]  # whether a string can name one of its jobs (the jobs API checks it)
    webhook_path: str  # the HTTP API route of its webhooks

    def check_job_id(self, job_id: str) -> None:
        """BadRequest, saying why, unless `job_id` can name one of this provider's jobs: one line of
        printable text (whatever the provider allows) in the provider's own form."""
        job_ids.check_job_id(self.id, job_id)


# How many times CONCURRENCY an adapter may read side by side when CONCURRENCY would not fit the time left
# (TransparentEdge's detail reads): an operator who lowers CONCURRENCY for a provider's limits lowers this too.
# The HTTP session's connection pool holds as many.
READ_SCALE_UP = 4


def iter_chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_concurrently(
    read: Callable[[Item], Result], items: Sequence[Item], concurrency: int, name: str
) -> Iterator[Result]:
    """`read(item)` for each item, at most `concurrency` at a time, the results in the items' order.

    `read` must not raise (a failure is a result, so one item cannot stop the others). At most twice
    `concurrency` reads are started ahead of the consumer, so memory stays flat however many items there are;
    a consumer that stops early (a poll out of time) cancels the reads not yet started."""
    if concurrency <= 1 or len(items) <= 1:
        yield from map(read, items)
        return
    remaining = iter(items)
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix=name) as pool:
        started: deque[Future[Result]] = deque(pool.submit(read, item) for item in islice(remaining, 2 * concurrency))
        try:
            while started:
                result = started.popleft().result()
                started.extend(pool.submit(read, item) for item in islice(remaining, 1))
                yield result
        finally:
            for future in started:
                future.cancel()
