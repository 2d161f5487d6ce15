"""Snapshots in, transitions out: the one path both triggers (poll and webhook) share.

For each snapshot the rules of change (model.decide) say what to write; the store writes it conditionally
(a lost race re-decides against the winner's state); an event enters the item's outbox in the same write,
already taken by this run (a lease), and is published in batches right after to each target (the topic, and
the EventBridge bus where one is configured), then cleared. A publish that fails gives the lease back (noting
the targets that have the event) and the next run sends it to the others. The per-job work runs on a bounded pool
(CONCURRENCY), a job's own steps in order (a polled snapshot that changes nothing is decided on the poll's
own thread: most of a poll's jobs, each spared a hand-off); a poll stops starting new work when its
Deadline runs out, and a poll of more than FANOUT_THRESHOLD active jobs hands its changes to the fan-out queue
(fanout.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from transcode_core.config import Settings
from transcode_core.deadline import Deadline
from transcode_core.errors import DependencyUnavailable, ProviderError, ProviderUnavailable
from transcode_core.estimate import estimate_fields
from transcode_core.fanout import FanOutBatch, FanOutQueue, read_message, still_current
from transcode_core.model import Change, Kind, Snapshot, decide, snapshot_part
from transcode_core.notify import EventBus, Notifier, build_event
from transcode_core.observability import MetricUnit, logger, metrics
from transcode_core.outbox import EventDispatch
from transcode_core.providers.base import Adapter, PollContext, PollFailure, ReadLater, iter_chunks
from transcode_core.status import Status, is_terminal
from transcode_core.store import Conflict, JobStore, is_leased, job_key, needs_index, new_lease, public_item, unleased
from transcode_core.stored_items import READ_AHEAD, ActiveJobs, StoredItems
from transcode_core.times import is_later, iso_z, to_datetime, utc_now

MAX_RACE_RETRIES = 5
# Kinds of apply() outcome that wrote nothing: not counted as changed jobs.
NO_CHANGE = ("unchanged", "untracked")


@dataclass
class Report:
    """What one run did; returned by the poll handler and logged. Workers record into it under a lock;
    metrics are emitted from it once, by the run's own thread (Powertools Metrics is not thread-safe)."""

    provider: str
    source: str
    jobs_tracked: int = 0
    snapshots: int = 0
    changes: Counter = field(default_factory=Counter)
    events_published: int = 0  # deliveries, every target together (an event the topic and the bus took: 2)
    publish_failures: int = 0  # refused or failed deliveries, every target together
    bus: bool = False  # whether an EventBridge bus is a target (EVENT_BUS_NAME)
    bus_events_published: int = 0  # the bus's part of events_published
    bus_publish_failures: int = 0  # the bus's part of publish_failures
    events_uncleared: int = 0  # published, but their clear failed: published again when their lease ends
    provider_failures: list[str] = field(default_factory=list)
    job_failures: list[str] = field(default_factory=list)
    unknown_words: int = 0
    race_retries: int = 0
    jobs_deferred: int = 0  # jobs left for the next run: the time budget ran out, or a fan-out came late
    jobs_fanned_out: int = 0  # jobs handed to the fan-out queue: changed ones, and ones to read (TransparentEdge)
    terminal: Counter = field(default_factory=Counter)  # jobs that entered COMPLETE / ERROR / CANCELED
    outbox_oldest_age: float = 0.0  # seconds the oldest event still unpublished after the sweep has waited
    table_unreachable: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def record_change(self, kind: str) -> None:
        with self._lock:
            self.changes[kind] += 1

    def record_terminal(self, status: str) -> None:
        with self._lock:
            self.terminal[status] += 1

    def record_job_failure(self, text: str, *, table_unreachable: bool = False) -> None:
        with self._lock:
            self.job_failures.append(text)
            self.table_unreachable = self.table_unreachable or table_unreachable

    def jobs_changed(self) -> int:
        return sum(count for kind, count in self.changes.items() if kind not in NO_CHANGE)

    def every_write_failed(self) -> bool:
        """Whether the run tried to write jobs and none of its writes (changes, claims of pending events) held."""
        return bool(self.job_failures) and self.jobs_changed() == 0 and self.events_published == 0

    def to_dict(self) -> dict[str, Any]:
        bus = (
            {"bus_events_published": self.bus_events_published, "bus_publish_failures": self.bus_publish_failures}
            if self.bus
            else {}
        )
        return {
            "provider": self.provider,
            "source": self.source,
            "jobs_tracked": self.jobs_tracked,
            "snapshots": self.snapshots,
            "changes": dict(self.changes),
            "events_published": self.events_published,
            "publish_failures": self.publish_failures,
            "events_uncleared": self.events_uncleared,
            "provider_failures": self.provider_failures,
            "job_failures": self.job_failures,
            "unknown_words": self.unknown_words,
            "race_retries": self.race_retries,
            "jobs_deferred": self.jobs_deferred,
            "jobs_fanned_out": self.jobs_fanned_out,
            **bus,
        }


class JobWorkers:
    """A bounded pool for per-job work: at most twice its size waiting, a job's own tasks in order (a
    job's next task starts after its previous one ended)."""

    def __init__(self, size: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="job")
        self._slots = threading.BoundedSemaphore(size * 2)
        self._lock = threading.Lock()
        self._last: dict[str, Future] = {}

    def submit(self, job_id: str, task: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            previous = self._last.get(job_id)
        if previous is not None:
            wait([previous])
        self._slots.acquire()
        future = self._pool.submit(task, *args)
        with self._lock:
            self._last[job_id] = future
        future.add_done_callback(lambda done: self._done(job_id, done))

    def busy(self, job_id: str) -> bool:
        """Whether a task of this job is queued or running."""
        with self._lock:
            return job_id in self._last

    def _done(self, job_id: str, future: Future) -> None:
        self._slots.release()
        with self._lock:
            if self._last.get(job_id) is future:
                del self._last[job_id]

    def drain(self) -> None:
        with self._lock:
            running = list(self._last.values())
        wait(running)

    def __enter__(self) -> JobWorkers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._pool.shutdown(wait=True)


class Pipeline:
    def __init__(
        self,
        provider: str,
        store: JobStore,
        notifier: Notifier,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        fanout: FanOutQueue | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.provider = provider
        self.store = store
        self.notifier = notifier
        self.settings = settings
        self.clock = clock
        self.fanout = fanout
        self.bus = bus

    def _report(self, source: str) -> Report:
        return Report(self.provider, source, bus=self.bus is not None)

    def _dispatch(self, report: Report) -> EventDispatch:
        targets = (self.notifier,) if self.bus is None else (self.notifier, self.bus)
        return EventDispatch(self.store, targets, report)

    # --- the triggers -------------------------------------------------------------------------------
    def poll(self, adapter: Adapter, deadline: Deadline | None = None) -> Report:
        started = time.monotonic()
        deadline = deadline or Deadline.none()
        report = self._report("poll")
        dispatch = self._dispatch(report)
        now = self.clock()
        # Read as the index gives them (eventually consistent, half the units): a write conditional on the
        # version read re-decides a job whose item lagged.
        items = StoredItems(partial(self.store.get_many, self.provider, consistent=False))
        context: PollContext | None = None
        with JobWorkers(self.settings.concurrency) as workers:
            to_poll, may_stall = self._sweep_all(now, items, workers, dispatch, report, deadline)
            if deadline.expired():
                report.record(jobs_deferred=len(to_poll))
            else:
                active = ActiveJobs(to_poll, items)
                context = self._poll_jobs(adapter, active, items, may_stall, now, workers, dispatch, report, deadline)
        dispatch.finish()
        for name, value in (context.stats if context else {}).items():
            metrics.add_metric(name=_metric_name(name), unit=MetricUnit.Count, value=value)
        # Every poll sweeps the provider's whole outbox: its oldest unpublished event (0: none) feeds the alarm.
        metrics.add_metric(name="OutboxOldestEventAge", unit=MetricUnit.Seconds, value=report.outbox_oldest_age)
        self._report_metrics(report)
        metrics.add_metric(
            name="PollDuration", unit=MetricUnit.Milliseconds, value=round((time.monotonic() - started) * 1000)
        )
        if report.jobs_deferred:
            logger.warning("time ran out; jobs left for the next run", extra={"jobs_deferred": report.jobs_deferred})
        return report

    def _sweep_all(
        self,
        now: datetime,
        items: StoredItems,
        workers: JobWorkers,
        dispatch: EventDispatch,
        report: Report,
        deadline: Deadline,
    ) -> tuple[list[str], set[str]]:
        """Reads the ActiveJobs index a page at a time, keeping no page but the items `items` has room for:
        takes and sends the events earlier runs left pending, and finished jobs with nothing left leave the
        index. Returns the ids of the jobs to poll, and of those whose last change is old enough that they may
        have stalled (checked after the poll). When the time runs out, the pages not read yet wait for the next
        run."""
        now_iso = iso_z(now)
        stale_before = self._stale_before(now)
        to_poll: list[str] = []
        may_stall: set[str] = set()
        for page in self._active_pages(report):
            report.record(jobs_tracked=len(page))
            swept: dict[str, dict[str, Any]] = {}
            for item in page:
                if deadline.expired():
                    break
                if item.get("outbox") or not needs_index(item, now_iso):
                    workers.submit(item["job_id"], self._sweep, item, now_iso, swept, dispatch, report)
            workers.drain()
            for item in page:
                current = swept.get(item["job_id"], item)
                report.outbox_oldest_age = max(report.outbox_oldest_age, pending_event_age(current, now))
                if not needs_index({**current, "outbox": {}}, now_iso):
                    continue
                to_poll.append(current["job_id"])
                items.hold_while_room(current["job_id"], current)
                if stale_before and _may_have_stalled(current, stale_before):
                    may_stall.add(current["job_id"])
            if deadline.expired():
                break
            del page, swept  # not held while the next page is read
        return to_poll, may_stall

    def _active_pages(self, report: Report) -> Iterator[list[dict[str, Any]]]:
        """The ActiveJobs index's pages. Unreachable at the first page, the poll fails (nothing could be done);
        at a later one, the jobs read so far are polled and the others wait for the next run."""
        pages = self.store.active_pages(self.provider)
        yield next(pages)
        try:
            yield from pages
        except DependencyUnavailable:
            self._table_unreachable(report, "jobs table unreachable; the index's other pages wait for the next run")

    def _poll_jobs(
        self,
        adapter: Adapter,
        active: ActiveJobs,
        items: StoredItems,
        may_stall: set[str],
        now: datetime,
        workers: JobWorkers,
        dispatch: EventDispatch,
        report: Report,
        deadline: Deadline,
    ) -> PollContext:
        """The adapter's snapshots applied on the pool (or fanned out), then the stall checks. Each snapshot is
        decided against its stored item (`items`: what the adapter looked up, or read now)."""
        fanned_out = (
            FanOutBatch(self.provider, self.settings.fanout_batch_size, self.fanout.enqueue)
            if self.fanout and len(active) > self.settings.fanout_threshold
            else None
        )
        context = PollContext(active, items.items_of, now, self.settings, defer_reads=fanned_out is not None)
        shown = bytearray(len(active))  # which active jobs the provider showed: a byte a job
        not_stalled: set[str] = set()  # of may_stall: shown changed, or handed to the fan-out's consumers
        unread: set[str] = set()  # of may_stall: an outage or a failed batch left them unread, not proof of a stall
        every_job_unread = False  # a failure naming no job may hide any of them
        results = self._results(adapter, context, report)
        for result in results:
            if deadline.expired():
                results.close()  # no new provider calls either
                break
            if isinstance(result, PollFailure):
                if _hides_jobs(result):
                    unread.update(job_id for job_id in result.job_ids if job_id in may_stall)
                    every_job_unread = every_job_unread or not result.job_ids
                continue
            if isinstance(result, ReadLater):
                if fanned_out is not None:  # the consumers read them: no stall check here either
                    fanned_out.add_reads(result.jobs)
                    for job_id in result.jobs:
                        _mark_shown(shown, active, job_id)
                    not_stalled.update(job_id for job_id in result.jobs if job_id in may_stall)
                continue
            job_id = result.job_id
            _mark_shown(shown, active, job_id)
            report.record(snapshots=1)
            try:
                # An active job's item not looked up is read with the next ones in the index's order (its adapter's).
                stored = active.get(job_id) if job_id in active else items.item_of(job_id)
            except DependencyUnavailable:
                self._table_unreachable(report, "jobs table unreachable", job_id)
                continue
            self._note_unknown(result, report)
            if fanned_out is not None:
                if self._decide_for_fanout(result, stored, fanned_out, report) and job_id in may_stall:
                    not_stalled.add(job_id)
            elif not workers.busy(job_id) and _plainly_unchanged(stored, result):
                report.record_change("unchanged")  # most jobs of a poll: decided here, no hand-off to a worker
            else:
                workers.submit(job_id, self._apply_isolated, result, "poll", items, report, dispatch)
        report.record(jobs_deferred=shown.count(0) if deadline.expired() else 0)
        if fanned_out is not None:
            self._fan_out_rest(fanned_out, report)
        workers.drain()

        # A job the provider shows unchanged (or keeps failing to find) for too long has stalled: checked
        # against its item as this poll left it (a job it changed is not old any more).
        stale_before = self._stale_before(now)
        candidates = (
            []
            if every_job_unread
            else [
                job_id
                for job_id in active
                if job_id in may_stall and job_id not in not_stalled and job_id not in unread
            ]
        )
        for chunk in iter_chunks(candidates, READ_AHEAD):
            if deadline.expired() or not stale_before:
                break  # the remaining stall checks wait for the next run
            try:
                stored_chunk = items.items_of(chunk)
            except DependencyUnavailable:
                self._table_unreachable(report, "jobs table unreachable; stall checks wait for the next run")
                break
            for stored in stored_chunk.values():
                if _may_have_stalled(stored, stale_before):
                    workers.submit(stored["job_id"], self._check_stall, stored, report, dispatch)
        workers.drain()
        return context

    def _results(
        self, adapter: Adapter, context: PollContext, report: Report
    ) -> Iterator[Snapshot | PollFailure | ReadLater]:
        """The adapter's results, with every failure logged and counted; an adapter that gives up entirely
        (e.g. its token was refused) ends as one failure naming every job it was to poll."""
        try:
            for result in adapter.poll(context):
                if isinstance(result, PollFailure):
                    self._provider_failure(result.error, report, result.job_ids)
                yield result
        except ProviderError as error:
            failure = PollFailure(error, tuple(context.active_by_id))
            self._provider_failure(error, report, failure.job_ids)
            yield failure
        except DependencyUnavailable:  # the stored jobs it looked up: what it showed so far is applied
            self._table_unreachable(report, "jobs table unreachable; the provider's other jobs wait for the next run")

    def ingest(self, snapshots: Sequence[Snapshot], source: str = "webhook") -> Report:
        """Applies webhook-borne snapshots. Raises DependencyUnavailable when the table or the topic
        could not be reached, so that the provider sends the webhook again (nothing is lost either way)."""
        report = self._report(source)
        stored = self.store.get_many(self.provider, [snapshot.job_id for snapshot in snapshots])
        for snapshot in snapshots:
            self._note_unknown(snapshot, report)
        self._apply_all([(snapshot, stored.get(snapshot.job_id)) for snapshot in snapshots], source, report)
        if report.table_unreachable:
            raise DependencyUnavailable("the jobs table could not be reached")
        if report.publish_failures:
            raise DependencyUnavailable("a job events target could not be reached; events wait in the outbox")
        return report

    def apply_fanned_out(self, body: str, adapter: Callable[[], Adapter] | None = None) -> Report:
        """Applies one fan-out message: each job whose state is still the one the poll decided against (else
        the next poll reads it again), or each job to read, read now from the provider (`adapter` builds the
        adapter). Raises DependencyUnavailable when a job could not be read or applied, so that the queue
        delivers the message again (jobs already applied are then unchanged)."""
        report = self._report("fanout")
        message = read_message(body, self.provider)
        stored = self.store.get_many(
            self.provider, [snapshot.job_id for snapshot, _ in message.jobs] + list(message.reads)
        )
        current = []
        for snapshot, decided_against in message.jobs:
            item = stored.get(snapshot.job_id)
            if still_current(item, decided_against):
                current.append((snapshot, item))
            else:
                report.record(jobs_deferred=1)
        if message.reads:
            if adapter is None:
                raise ValueError(f"a {self.provider} fan-out message of jobs to read, and no provider to read them")
            current.extend(self._read_fanned_out(adapter(), message.reads, stored, report))
        self._apply_all(current, "poll", report)
        if report.job_failures or report.provider_failures:
            raise DependencyUnavailable(
                f"{len(report.provider_failures)} fanned-out jobs could not be read, "
                f"{len(report.job_failures)} could not be applied"
            )
        return report

    def _read_fanned_out(
        self, adapter: Adapter, reads: Mapping[str, Any], stored: Mapping[str, Any], report: Report
    ) -> list[tuple[Snapshot, Mapping[str, Any] | None]]:
        """The jobs a poll handed over to read, read (each failing alone: it stays as stored, and the message
        comes back), with the items to decide them against."""
        read = []
        for result in adapter.read_deferred(reads, {job_id: stored[job_id] for job_id in reads if job_id in stored}):
            if isinstance(result, PollFailure):
                self._provider_failure(result.error, report, result.job_ids)
                continue
            self._note_unknown(result, report)
            read.append((result, stored.get(result.job_id)))
        return read

    def _apply_all(
        self, work: Sequence[tuple[Snapshot, Mapping[str, Any] | None]], source: str, report: Report
    ) -> None:
        dispatch = self._dispatch(report)
        items = StoredItems(partial(self.store.get_many, self.provider), held=max(len(work), 1))
        for snapshot, stored in work:
            items.remember(snapshot.job_id, stored)
        with JobWorkers(self.settings.concurrency) as workers:
            for snapshot, _ in work:
                workers.submit(snapshot.job_id, self._apply_isolated, snapshot, source, items, report, dispatch)
        dispatch.finish()
        self._report_metrics(report)

    # --- one job (on a worker) ----------------------------------------------------------------------
    def _sweep(
        self, item: dict[str, Any], now_iso: str, swept: dict[str, Any], dispatch: EventDispatch, report: Report
    ) -> None:
        try:
            free = unleased(item)
            if free:
                claimed = self.store.claim_outbox(item, free)
                if claimed:
                    swept[item["job_id"]] = claimed
                    dispatch.add(claimed, free)
            elif not item.get("outbox") and not needs_index(item, now_iso):
                self.store.deactivate(item)
        except DependencyUnavailable:
            self._table_unreachable(report, "jobs table unreachable", item["job_id"])

    def _apply_isolated(
        self,
        snapshot: Snapshot,
        source: str,
        items: StoredItems,
        report: Report,
        dispatch: EventDispatch,
    ) -> str | None:
        """Applies one snapshot; returns the kind of change, None when it failed (logged and counted).
        The job's entry in `items` becomes what this write left, for the job's next snapshot."""
        if source != "poll":  # a poll counts what the provider showed, applied or fanned out
            report.record(snapshots=1)
        try:
            kind, item = self._apply(snapshot, source, items.item_of(snapshot.job_id), report, dispatch)
        except DependencyUnavailable:
            self._table_unreachable(report, "jobs table unreachable", snapshot.job_id)
            return None
        except Exception as exc:  # one bad job never fails the batch
            report.record_job_failure(f"{snapshot.job_id}: {type(exc).__name__}")
            logger.exception("job could not be applied", extra={"job_id": snapshot.job_id, "source": source})
            return None
        items.remember(snapshot.job_id, item)
        report.record_change(kind)
        return kind

    def apply(self, snapshot: Snapshot, source: str, stored: Mapping[str, Any] | None, report: Report) -> str:
        """Decides, writes and publishes one snapshot against `stored`; returns the kind of change."""
        dispatch = self._dispatch(report)
        kind, _ = self._apply(snapshot, source, stored, report, dispatch)
        dispatch.finish()
        return kind

    def _apply(
        self,
        snapshot: Snapshot,
        source: str,
        stored: Mapping[str, Any] | None,
        report: Report,
        dispatch: EventDispatch,
    ) -> tuple[str, Mapping[str, Any] | None]:
        """Decides and writes one snapshot; returns the kind of change (one of NO_CHANGE when none) and the item
        as it now is. The events the write took go to `dispatch`."""
        for _ in range(MAX_RACE_RETRIES):
            if stored and stored.get("untracked_at"):  # jobs API DELETE: only a PUT tracks it again
                logger.info("job not tracked; snapshot ignored", extra={"job_id": snapshot.job_id, "source": source})
                return "untracked", stored
            change = decide(stored, snapshot)
            if change is None:
                self._note_read(snapshot, stored)
                return "unchanged", self._take_pending(stored, dispatch) if stored else stored
            item, taken = self._next_item(snapshot.job_id, stored, change, snapshot.time_left_seconds)
            try:
                self.store.commit(item, stored.get("version") if stored else None, source)
            except Conflict as lost:
                report.record(race_retries=1)
                stored = lost.current
                continue
            logger.info(
                "job changed",
                extra={
                    "job_id": snapshot.job_id,
                    "change": change.kind.value,
                    "status": item["status"],
                    "previous_status": change.previous_status.value if change.previous_status else None,
                    "version": item["version"],
                    "source": source,
                },
            )
            if change.publishes and is_terminal(item["status"]):
                report.record_terminal(item["status"])
            dispatch.add(item, taken)
            return change.kind.value, item
        raise RuntimeError(f"job {snapshot.job_id} kept changing under {MAX_RACE_RETRIES} writes")

    def _take_pending(self, stored: Mapping[str, Any], dispatch: EventDispatch) -> Mapping[str, Any]:
        """Takes and sends the events a job holds that no run holds (left by a failed publish)."""
        free = unleased(stored)
        claimed = self.store.claim_outbox(stored, free) if free else None
        if not claimed:
            return stored
        dispatch.add(claimed, free)
        return claimed

    def _next_item(
        self, job_id: str, stored: Mapping[str, Any] | None, change: Change, time_left_seconds: float | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """The item after the change, and the events it takes: its own new event, and pending ones nobody
        holds (so the commit itself is the claim, and no other run can publish them meanwhile)."""
        stored = stored or {}
        now = self.clock()
        now_iso = iso_z(now)
        attempt = int(stored.get("attempt", 1)) + (1 if change.kind is Kind.NEW_ATTEMPT else 0)
        item: dict[str, Any] = {
            **job_key(self.provider, job_id),
            "provider": self.provider,
            "job_id": job_id,
            **change.fields,
            "attempt": attempt,
            "version": int(stored.get("version", 0)) + 1,
            "updated_at": now_iso,
        }
        for bookkeeping in ("rewatch_until", "stalled_attempt"):
            if bookkeeping in stored:
                item[bookkeeping] = stored[bookkeeping]
        reading = change.kind is not Kind.STALLED  # a stall reads nothing new: its estimate stays
        item.update(estimate_fields(stored, item, now, time_left_seconds=time_left_seconds, reading=reading))
        lease = new_lease()
        outbox: dict[str, Any] = {}
        taken: list[str] = []
        for event_id, entry in (stored.get("outbox") or {}).items():
            if is_leased(entry):
                outbox[event_id] = entry  # another run (or this one) is publishing it
            else:
                outbox[event_id] = {**entry, "lease": lease}
                taken.append(event_id)
        if change.publishes:
            event = build_event(
                public_item(item),
                change.previous_status.value if change.previous_status else None,
                now_iso,
                stalled=change.kind is Kind.STALLED,
            )
            if event["event_id"] not in outbox:
                outbox[event["event_id"]] = {"message": json.dumps(event), "lease": lease}
                taken.append(event["event_id"])
        if outbox:
            item["outbox"] = outbox
        if needs_index(item, now_iso):
            item["active_provider"] = self.provider
        return item, taken

    def _stale_before(self, now: datetime) -> str | None:
        """The time before which a job's last change makes it stalled; None when stall checks are off."""
        threshold = timedelta(minutes=self.settings.stall_minutes)
        return iso_z(now - threshold) if threshold > timedelta(0) else None

    def _check_stall(self, stored: Mapping[str, Any], report: Report, dispatch: EventDispatch) -> None:
        """Marks a job `_may_have_stalled` chose as stalled, unless it changed meanwhile."""
        change = Change(Kind.STALLED, snapshot_part(stored), Status(stored["status"]), True)
        item, taken = self._next_item(stored["job_id"], stored, change)
        item["stalled_attempt"] = item["attempt"]
        try:
            self.store.commit(item, stored.get("version"), "poll")
        except Conflict:
            return  # it changed meanwhile, so it is not stalled
        except DependencyUnavailable:
            self._table_unreachable(report, "jobs table unreachable", stored["job_id"])
            return
        logger.warning("job stalled", extra={"job_id": stored["job_id"], "status": stored["status"]})
        report.record_change(Kind.STALLED.value)
        dispatch.add(item, taken)

    # --- fan-out ------------------------------------------------------------------------------------
    def _decide_for_fanout(
        self,
        snapshot: Snapshot,
        stored: Mapping[str, Any] | None,
        fanned_out: FanOutBatch,
        report: Report,
    ) -> bool:
        """Unchanged jobs cost nothing; a job that changes goes to the queue with the job it was decided
        against (its message is sent once full, so the poll does not hold every changed job). Returns whether
        it changes."""
        if decide(stored, snapshot) is None:
            self._note_read(snapshot, stored)
            report.record_change("unchanged")
            return False
        fanned_out.add(snapshot, stored)
        return True

    def _fan_out_rest(self, fanned_out: FanOutBatch, report: Report) -> None:
        fanned_out.flush()
        report.record(jobs_fanned_out=fanned_out.sent, jobs_deferred=fanned_out.unsent)
        if fanned_out.error:
            # Not lost: the provider still shows these changes to the next poll.
            logger.error(
                "fan-out queue unreachable; the changes are left for the next poll",
                extra={"error": str(fanned_out.error), "jobs_deferred": fanned_out.unsent},
            )
        if fanned_out.sent:
            logger.info("changes fanned out", extra={"jobs": fanned_out.sent})

    def _note_read(self, snapshot: Snapshot, stored: Mapping[str, Any] | None) -> None:
        if not (snapshot.note_read and stored and "version" in stored):
            return
        try:
            self.store.note_read(stored, iso_z(self.clock()))
        except DependencyUnavailable:  # costs one early read next time, never the job's change or the poll
            logger.warning("read time not recorded", extra={"job_id": snapshot.job_id}, exc_info=True)

    def _note_unknown(self, snapshot: Snapshot, report: Report) -> None:
        if snapshot.status is Status.UNKNOWN:
            report.record(unknown_words=1)
            logger.warning(
                "unknown provider status word",
                extra={"job_id": snapshot.job_id, "provider_status": snapshot.provider_status},
            )

    # --- reporting ----------------------------------------------------------------------------------
    def _table_unreachable(self, report: Report, text: str, job_id: str | None = None) -> None:
        report.record_job_failure(f"{job_id}: {text}" if job_id else text, table_unreachable=True)
        logger.exception(text, extra={"job_id": job_id} if job_id else {})

    def _provider_failure(self, error: ProviderError, report: Report, job_ids: Sequence[str]) -> None:
        report.provider_failures.append(error.message)
        logger.error(
            "provider call failed; these jobs stay as they were",
            extra={"error": error.message, "error_type": type(error).__name__, "job_ids": list(job_ids)[:50]},
        )

    def _report_metrics(self, report: Report) -> None:
        counts = {
            "SnapshotsRead": report.snapshots,
            "EventsPublished": report.events_published,
            "PublishFailures": report.publish_failures,
            **(
                {"BusEventsPublished": report.bus_events_published, "BusPublishFailures": report.bus_publish_failures}
                if report.bus
                else {}
            ),
            "ProviderFailures": len(report.provider_failures),
            "JobFailures": len(report.job_failures),
            "UnknownStatusWords": report.unknown_words,
            "JobsChanged": report.jobs_changed(),
            "JobsCompleted": report.terminal[Status.COMPLETE.value],
            "JobsFailed": report.terminal[Status.ERROR.value],
            "JobsCanceled": report.terminal[Status.CANCELED.value],
            "JobsStalled": report.changes[Kind.STALLED.value],
            "RaceRetries": report.race_retries,
            "JobsDeferred": report.jobs_deferred,
            "JobsFannedOut": report.jobs_fanned_out,
        }
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        if report.events_uncleared:  # a fault's trace: sent only when it happens (each metric costs a month)
            metrics.add_metric(name="EventsUncleared", unit=MetricUnit.Count, value=report.events_uncleared)


def _plainly_unchanged(stored: Mapping[str, Any] | None, snapshot: Snapshot) -> bool:
    """Whether applying the snapshot would write, publish and note nothing: a stored job it leaves as it is,
    with no event pending and no read time to note. Anything else (or a snapshot `decide` cannot read) goes
    the full way on a worker, which counts and logs what it finds."""
    if not stored or stored.get("untracked_at") or stored.get("outbox") or snapshot.note_read:
        return False
    try:
        return decide(stored, snapshot) is None
    except Exception:  # the worker's path records the failure
        return False


def _may_have_stalled(stored: Mapping[str, Any], stale_before: str) -> bool:
    """Whether a job is not terminal, its attempt has not been marked stalled yet and its last change is
    before `stale_before`."""
    if is_terminal(stored.get("status", "SUBMITTED")) or stored.get("stalled_attempt") == stored.get("attempt", 1):
        return False
    return is_later(stale_before, stored.get("updated_at"))


def _mark_shown(shown: bytearray, active: ActiveJobs, job_id: str) -> None:
    if job_id in active:
        shown[active.position(job_id)] = 1


def pending_event_age(item: Mapping[str, Any], now: datetime) -> float:
    """Seconds the item's oldest unpublished event has waited since it occurred (0 when none waits)."""
    ages = [0.0]
    for entry in (item.get("outbox") or {}).values():
        occurred = to_datetime(json.loads(entry["message"]).get("occurred_at"))
        if occurred:
            ages.append((now - occurred).total_seconds())
    return max(ages)


def _hides_jobs(failure: PollFailure) -> bool:
    """Whether a failure says nothing about its jobs (an outage, a failed batch or listing), as opposed to
    the provider answering about one job that it cannot show it (unknown id): that job may stall."""
    return isinstance(failure.error, ProviderUnavailable) or len(failure.job_ids) != 1


def _metric_name(stat: str) -> str:
    return "".join(part.capitalize() for part in stat.split("_"))
