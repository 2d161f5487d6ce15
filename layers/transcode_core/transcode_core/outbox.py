"""The events one run holds: taken in its own commits (or claimed from the outbox by a sweep), published 10
per PublishBatch call, and cleared from their jobs' items 100 per transaction once published.

An event is published only by the run that holds its lease, and cleared (with a version bump) well within
the lease, so no fault-free interleaving publishes it twice; a publish that fails gives the lease back and
the event waits in the item for the next run, so none is lost. A table fault in this bookkeeping never fails
the run: a lease that cannot be given back ends on its own (the event is sent later), and a clear that fails
is tried again job by job, and once more at the end; only an event whose clear failed every time is
published again when its lease ends (docs/events.md lists the faults that can repeat an event).
Thread-safe: the run's workers add events, and whichever worker fills a batch sends it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from transcode_core.errors import DependencyUnavailable
from transcode_core.notify import PUBLISH_BATCH_LIMIT, Notifier
from transcode_core.observability import logger
from transcode_core.store import LEASE_SECONDS, JobStore

if TYPE_CHECKING:
    from transcode_core.pipeline import Report

CLEAR_BATCH = 100
# Published events are cleared at the latest this long after their publish, far inside their lease.
CLEAR_WITHIN_SECONDS = LEASE_SECONDS / 5


def message_of(entry: Any) -> dict[str, Any]:
    """The event an outbox entry holds."""
    return json.loads(entry["message"])


class EventDispatch:
    def __init__(self, store: JobStore, notifier: Notifier, report: Report) -> None:
        self.store = store
        self.notifier = notifier
        self.report = report
        self._lock = threading.Lock()
        self._pending: list[tuple[Mapping[str, Any], str]] = []  # (item as taken, event id)
        self._published: dict[str, tuple[Mapping[str, Any], list[str]]] = {}  # pk -> (latest item, ids)
        self._oldest_published: float | None = None
        self._uncleared: list[tuple[Mapping[str, Any], Sequence[str]]] = []  # published, their clear failed

    def add(self, item: Mapping[str, Any], event_ids: Sequence[str]) -> None:
        """Events this run now holds in `item` (the item as its write left it: the version is exact)."""
        if not event_ids:
            return
        with self._lock:
            self._pending.extend((item, event_id) for event_id in event_ids)
            batch = self._take(PUBLISH_BATCH_LIMIT) if len(self._pending) >= PUBLISH_BATCH_LIMIT else []
        if batch:
            self._send(batch)

    def finish(self) -> None:
        """Publishes what is left and clears everything published (what failed to clear gets one more try)."""
        while True:
            with self._lock:
                batch = self._take(PUBLISH_BATCH_LIMIT)
            if not batch:
                break
            self._send(batch)
        self._clear(force=True)
        with self._lock:
            retry, self._uncleared = self._uncleared, []
        if not retry:
            return
        uncleared = self.store.clear_outbox(retry)
        if uncleared:
            event_ids = [event_id for _, ids in uncleared for event_id in ids]
            self.report.record(events_uncleared=len(event_ids))
            logger.error(
                "published events could not be cleared; they are published again when their lease ends",
                extra={"event_ids": event_ids[:50], "lease_seconds": LEASE_SECONDS},
            )

    def _take(self, count: int) -> list[tuple[Mapping[str, Any], str]]:
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def _send(self, batch: list[tuple[Mapping[str, Any], str]]) -> None:
        items = {event_id: item for item, event_id in batch}
        published, failed = self.notifier.publish([message_of(item["outbox"][event_id]) for item, event_id in batch])
        self.report.record(events_published=len(published), publish_failures=len(failed))
        for event_id in published:
            logger.info("event published", extra={"event_id": event_id})
        # What was published is recorded first: whatever happens to the releases, it is cleared, not sent again.
        with self._lock:
            for event_id in published:
                item = items[event_id]
                known, ids = self._published.get(item["pk"], (item, []))
                latest = item if item["version"] >= known["version"] else known
                self._published[item["pk"]] = (latest, [*ids, event_id])
            if published and self._oldest_published is None:
                self._oldest_published = time.monotonic()
        for event_id in failed:
            try:
                self.store.release_outbox(items[event_id], [event_id])
            except DependencyUnavailable:
                # Not lost: the lease ends on its own and a later run sends the event then.
                logger.warning(
                    "a lease could not be given back; the event is sent when it ends", extra={"event_id": event_id}
                )
        self._clear(force=False)

    def _clear(self, *, force: bool) -> None:
        with self._lock:
            due = self._oldest_published is not None and (
                force
                or len(self._published) >= CLEAR_BATCH
                or time.monotonic() - self._oldest_published > CLEAR_WITHIN_SECONDS
            )
            if not due:
                return
            cleared, self._published, self._oldest_published = list(self._published.values()), {}, None
        uncleared = self.store.clear_outbox(cleared)
        if uncleared:
            with self._lock:
                self._uncleared.extend(uncleared)
