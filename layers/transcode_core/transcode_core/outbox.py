"""The events one run holds: taken in its own commits (or claimed from the outbox by a sweep), published 10
a call to each target (the topic's PublishBatch, the bus's PutEvents), and cleared from their jobs' items
once every target has them.

An event is published only by the run that holds its lease, and cleared (with a version bump) well within
the lease, so no fault-free interleaving publishes it twice; a publish that fails gives the lease back and
the event waits in the item for the next run, so none is lost. Delivery is tracked per target: the entry
notes the targets that already have it (`delivered`, written with the lease's release), so a failure on one
target sends the event again to that target only. A table fault in this bookkeeping never fails the run: a
lease that cannot be given back ends on its own (the event is sent later), and a write that records a
delivery (a clear, or the release of a partly delivered event) that fails is tried again (a clear job by
job) and once more at the end; only an event whose record failed every time is published again when its
lease ends (docs/events.md lists the faults that can repeat an event).
Thread-safe: the run's workers add events, and whichever worker fills a batch sends it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from transcode_core.errors import DependencyUnavailable
from transcode_core.notify import BUS, PUBLISH_BATCH_LIMIT
from transcode_core.observability import logger
from transcode_core.store import LEASE_SECONDS, JobStore

if TYPE_CHECKING:
    from transcode_core.pipeline import Report

CLEAR_BATCH = 100
# Published events are cleared at the latest this long after their publish, far inside their lease.
CLEAR_WITHIN_SECONDS = LEASE_SECONDS / 5


CLEAR_FAILED_LOG = "published events could not be cleared; they are published again when their lease ends"


class Target(Protocol):
    """Where events go: notify.Notifier (the topic) and notify.EventBus."""

    target: str  # what the outbox entry's `delivered` and the metrics call it

    def publish(self, events: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]: ...


def message_of(entry: Any) -> dict[str, Any]:
    """The event an outbox entry holds."""
    return json.loads(entry["message"])


def delivered_to(entry: Mapping[str, Any]) -> list[str]:
    """The targets an outbox entry already reached (a run that reached only some of them noted those)."""
    return list(entry.get("delivered") or ())


class EventDispatch:
    def __init__(self, store: JobStore, targets: Sequence[Target], report: Report) -> None:
        self.store = store
        self.targets = tuple(targets)
        self.report = report
        self._lock = threading.Lock()
        self._pending: list[tuple[Mapping[str, Any], str]] = []  # (item as taken, event id)
        self._published: dict[str, tuple[Mapping[str, Any], list[str]]] = {}  # pk -> (latest item, ids)
        self._oldest_published: float | None = None
        self._uncleared: list[tuple[Mapping[str, Any], Sequence[str]]] = []  # published, their clear failed
        # Events some targets took and others did not, whose note of that failed: (item, event id, targets).
        self._unrecorded: list[tuple[Mapping[str, Any], str, list[str]]] = []

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
            unrecorded, self._unrecorded = self._unrecorded, []
        uncleared = self.store.clear_outbox(retry) if retry else []
        event_ids = [event_id for _, ids in uncleared for event_id in ids]
        for item, event_id, delivered in unrecorded:
            if not self._give_back(item, event_id, delivered):
                event_ids.append(event_id)
        if event_ids:
            self.report.record(events_uncleared=len(event_ids))
            logger.error(CLEAR_FAILED_LOG, extra={"event_ids": event_ids[:50], "lease_seconds": LEASE_SECONDS})

    def _take(self, count: int) -> list[tuple[Mapping[str, Any], str]]:
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def _send(self, batch: list[tuple[Mapping[str, Any], str]]) -> None:
        items = {event_id: item for item, event_id in batch}
        before = {event_id: delivered_to(item["outbox"][event_id]) for item, event_id in batch}
        delivered = {event_id: list(targets) for event_id, targets in before.items()}
        failed: set[str] = set()
        for target in self.targets:
            due = [event_id for _, event_id in batch if target.target not in delivered[event_id]]
            if not due:
                continue
            sent, refused = target.publish([message_of(items[event_id]["outbox"][event_id]) for event_id in due])
            self._count(target.target, sent, refused)
            for event_id in sent:
                delivered[event_id].append(target.target)
                logger.info("event published", extra={"event_id": event_id, "target": target.target})
            failed.update(refused)
        published = [event_id for _, event_id in batch if event_id not in failed]
        # What was published is recorded first: whatever happens to the releases, it is cleared, not sent again.
        with self._lock:
            for event_id in published:
                item = items[event_id]
                known, ids = self._published.get(item["pk"], (item, []))
                latest = item if item["version"] >= known["version"] else known
                self._published[item["pk"]] = (latest, [*ids, event_id])
            if published and self._oldest_published is None:
                self._oldest_published = time.monotonic()
        for event_id in sorted(failed):
            reached = delivered[event_id]
            if self._give_back(items[event_id], event_id, reached) or reached == before[event_id]:
                continue
            # A target has it now: sent again to every target when the lease ends, unless a later try notes it.
            with self._lock:
                self._unrecorded.append((items[event_id], event_id, reached))
        self._clear(force=False)

    def _count(self, target: str, sent: Sequence[str], refused: Sequence[str]) -> None:
        self.report.record(events_published=len(sent), publish_failures=len(refused))
        if target == BUS:
            self.report.record(bus_events_published=len(sent), bus_publish_failures=len(refused))

    def _give_back(self, item: Mapping[str, Any], event_id: str, delivered: Sequence[str]) -> bool:
        """Gives an event's lease back after a failed publish, with the targets that have it; False when the
        table could not be written."""
        try:
            self.store.release_outbox(item, [event_id], delivered=delivered)
            return True
        except DependencyUnavailable:
            # Not lost: the lease ends on its own and a later run sends the event then.
            logger.warning(
                "a lease could not be given back; the event is sent when it ends", extra={"event_id": event_id}
            )
            return False

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
