"""Snapshots in, transitions out: the one path both triggers (poll and webhook) share.

For each snapshot the rules of change (model.decide) say what to write; the store writes it conditionally
(a lost race re-decides against the winner's state); an event enters the item's outbox in the same write
and is published right after. A publish that fails stays in the outbox and the next run sends it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from transcode_core.config import Settings
from transcode_core.errors import DependencyUnavailable, ProviderError, ProviderUnavailable
from transcode_core.model import Change, Kind, Snapshot, Status, decide, is_terminal, snapshot_part
from transcode_core.notify import Notifier, build_event
from transcode_core.observability import MetricUnit, logger, metrics
from transcode_core.providers.base import Adapter, PollContext, PollFailure
from transcode_core.store import Conflict, JobStore, job_key, needs_index, public_item
from transcode_core.times import is_later, iso_z, to_datetime, utc_now

MAX_RACE_RETRIES = 5
# Kinds of apply() outcome that wrote nothing: not counted as changed jobs.
NO_CHANGE = ("unchanged", "untracked")


@dataclass
class Report:
    """What one run did; returned by the poll handler and logged."""

    provider: str
    source: str
    jobs_tracked: int = 0
    snapshots: int = 0
    changes: Counter = field(default_factory=Counter)
    events_published: int = 0
    publish_failures: int = 0
    provider_failures: list[str] = field(default_factory=list)
    job_failures: list[str] = field(default_factory=list)
    unknown_words: int = 0
    terminal: Counter = field(default_factory=Counter)  # jobs that entered COMPLETE / ERROR / CANCELED

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "source": self.source,
            "jobs_tracked": self.jobs_tracked,
            "snapshots": self.snapshots,
            "changes": dict(self.changes),
            "events_published": self.events_published,
            "publish_failures": self.publish_failures,
            "provider_failures": self.provider_failures,
            "job_failures": self.job_failures,
            "unknown_words": self.unknown_words,
        }


class Pipeline:
    def __init__(
        self,
        provider: str,
        store: JobStore,
        notifier: Notifier,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.provider = provider
        self.store = store
        self.notifier = notifier
        self.settings = settings
        self.clock = clock

    # --- the two triggers ---------------------------------------------------------------------------
    def poll(self, adapter: Adapter) -> Report:
        started = time.monotonic()
        report = Report(self.provider, "poll")
        now = self.clock()
        tracked = self.store.active_jobs(self.provider)
        report.jobs_tracked = len(tracked)
        to_poll: list[dict[str, Any]] = []
        now_iso = iso_z(now)
        oldest_pending = 0.0
        for item in tracked:
            item = self._flush_outbox(item, report)
            oldest_pending = max(oldest_pending, pending_event_age(item, now))
            if needs_index({**item, "outbox": {}}, now_iso):
                to_poll.append(item)
            elif not item.get("outbox"):
                self.store.deactivate(item)

        stored_by_id: dict[str, Any] = {item["job_id"]: item for item in to_poll}

        def lookup(job_ids: Sequence[str]) -> dict[str, Any]:
            # What an adapter looks up is remembered, so its snapshots are decided against the stored job.
            found = self.store.get_many(self.provider, [job_id for job_id in job_ids if job_id not in stored_by_id])
            stored_by_id.update(found)
            stored_by_id.update({job_id: None for job_id in job_ids if job_id not in stored_by_id})
            return {job_id: stored_by_id[job_id] for job_id in job_ids if stored_by_id.get(job_id)}

        context = PollContext(active_jobs=to_poll, lookup=lookup, now=now, settings=self.settings)
        changed: set[str] = set()
        unread: set[str] = set()  # jobs an outage or a failed batch left unread: not proof of a stall
        for result in self._results(adapter, context, to_poll, report):
            if isinstance(result, PollFailure):
                if _hides_jobs(result):
                    unread.update(result.job_ids or stored_by_id)  # naming no job, it may hide any of them
                continue
            if result.job_id not in stored_by_id:
                stored_by_id[result.job_id] = self.store.get(self.provider, result.job_id)
            if self._apply_isolated(result, "poll", stored_by_id[result.job_id], report) not in NO_CHANGE:
                changed.add(result.job_id)

        # A job the provider shows unchanged (or keeps failing to find) for too long has stalled.
        for item in to_poll:
            job_id = item["job_id"]
            if job_id not in changed and job_id not in unread and not is_terminal(item.get("status", "SUBMITTED")):
                self._check_stall(item, now, report)
        for name, value in context.stats.items():
            metrics.add_metric(name=_metric_name(name), unit=MetricUnit.Count, value=value)
        # Every poll sweeps the provider's whole outbox: its oldest unpublished event (0: none) feeds the alarm.
        metrics.add_metric(name="OutboxOldestEventAge", unit=MetricUnit.Seconds, value=oldest_pending)
        self._report_metrics(report)
        metrics.add_metric(
            name="PollDuration", unit=MetricUnit.Milliseconds, value=round((time.monotonic() - started) * 1000)
        )
        return report

    def _results(
        self, adapter: Adapter, context: PollContext, to_poll: Sequence[Mapping[str, Any]], report: Report
    ) -> Iterator[Snapshot | PollFailure]:
        """The adapter's results, with every failure logged and counted; an adapter that gives up entirely
        (e.g. its token was refused) ends as one failure naming every job it was to poll."""
        try:
            for result in adapter.poll(context):
                if isinstance(result, PollFailure):
                    self._provider_failure(result.error, report, result.job_ids)
                yield result
        except ProviderError as error:
            failure = PollFailure(error, tuple(item["job_id"] for item in to_poll))
            self._provider_failure(error, report, failure.job_ids)
            yield failure

    def ingest(self, snapshots: Sequence[Snapshot], source: str = "webhook") -> Report:
        """Applies webhook-borne snapshots. Raises DependencyUnavailable when the table or the topic
        could not be reached, so that the provider sends the webhook again (nothing is lost either way)."""
        report = Report(self.provider, source)
        stored = self.store.get_many(self.provider, [snapshot.job_id for snapshot in snapshots])
        for snapshot in snapshots:
            self._apply_isolated(snapshot, source, stored.get(snapshot.job_id), report)
        self._report_metrics(report)
        if report.publish_failures:
            raise DependencyUnavailable("the job events topic could not be reached; events wait in the outbox")
        return report

    # --- one job ------------------------------------------------------------------------------------
    def _apply_isolated(
        self, snapshot: Snapshot, source: str, stored: Mapping[str, Any] | None, report: Report
    ) -> str | None:
        """Applies one snapshot; returns the kind of change, None when it failed (logged and counted)."""
        report.snapshots += 1
        try:
            kind = self.apply(snapshot, source, stored, report)
        except DependencyUnavailable:
            if source == "poll":
                report.job_failures.append(f"{snapshot.job_id}: jobs table unreachable")
                logger.exception("jobs table unreachable", extra={"job_id": snapshot.job_id})
                return None
            raise
        except Exception as exc:  # one bad job never fails the batch
            report.job_failures.append(f"{snapshot.job_id}: {type(exc).__name__}")
            logger.exception("job could not be applied", extra={"job_id": snapshot.job_id, "source": source})
            return None
        report.changes[kind] += 1
        return kind

    def apply(self, snapshot: Snapshot, source: str, stored: Mapping[str, Any] | None, report: Report) -> str:
        """Decides and writes one snapshot; returns the kind of change (one of NO_CHANGE when none)."""
        if snapshot.status is Status.UNKNOWN:
            report.unknown_words += 1
            logger.warning(
                "unknown provider status word",
                extra={"job_id": snapshot.job_id, "provider_status": snapshot.provider_status},
            )
        for _ in range(MAX_RACE_RETRIES):
            if stored and stored.get("untracked_at"):  # jobs API DELETE: only a PUT tracks it again
                logger.info("job not tracked; snapshot ignored", extra={"job_id": snapshot.job_id, "source": source})
                return "untracked"
            change = decide(stored, snapshot)
            if change is None:
                if stored:
                    self._flush_outbox(stored, report)
                return "unchanged"
            item = self._next_item(snapshot.job_id, stored, change)
            try:
                self.store.commit(item, stored.get("version") if stored else None, source)
            except Conflict as lost:
                metrics.add_metric(name="RaceRetries", unit=MetricUnit.Count, value=1)
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
                report.terminal[item["status"]] += 1
            self._flush_outbox(item, report)
            return change.kind.value
        raise RuntimeError(f"job {snapshot.job_id} kept changing under {MAX_RACE_RETRIES} writes")

    def _next_item(self, job_id: str, stored: Mapping[str, Any] | None, change: Change) -> dict[str, Any]:
        stored = stored or {}
        now_iso = iso_z(self.clock())
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
        for bookkeeping in ("rewatch_until", "stalled_attempt", "outbox_lease"):
            if bookkeeping in stored:
                item[bookkeeping] = stored[bookkeeping]
        outbox = dict(stored.get("outbox") or {})
        if change.publishes:
            event = build_event(
                public_item(item),
                change.previous_status.value if change.previous_status else None,
                now_iso,
                stalled=change.kind is Kind.STALLED,
            )
            outbox[event["event_id"]] = json.dumps(event)
        if outbox:
            item["outbox"] = outbox
        if needs_index(item, now_iso):
            item["active_provider"] = self.provider
        return item

    def _check_stall(self, stored: Mapping[str, Any], now: datetime, report: Report) -> None:
        threshold = timedelta(minutes=self.settings.stall_minutes)
        if threshold <= timedelta(0) or stored.get("stalled_attempt") == stored.get("attempt", 1):
            return
        if not is_later(iso_z(now - threshold), stored.get("updated_at")):
            return
        change = Change(Kind.STALLED, snapshot_part(stored), Status(stored["status"]), True)
        item = self._next_item(stored["job_id"], stored, change)
        item["stalled_attempt"] = item["attempt"]
        try:
            self.store.commit(item, stored.get("version"), "poll")
        except Conflict:
            return  # it changed meanwhile, so it is not stalled
        logger.warning("job stalled", extra={"job_id": stored["job_id"], "status": stored["status"]})
        report.changes[Kind.STALLED.value] += 1
        self._flush_outbox(item, report)

    # --- events -------------------------------------------------------------------------------------
    def _flush_outbox(self, item: Mapping[str, Any], report: Report) -> dict[str, Any]:
        """Publishes the item's pending events (just written, or left by an earlier failed publish).
        Returns the item as it now is, so that a later write does not carry a published event again."""
        pending = dict(item.get("outbox") or {})
        for event_id, message in list(pending.items()):
            if not self.store.claim_outbox(item, event_id):
                continue  # published already, or being published by a concurrent run
            try:
                self.notifier.publish(json.loads(message))
            except DependencyUnavailable:
                report.publish_failures += 1
                logger.exception("event publish failed; it stays in the outbox", extra={"event_id": event_id})
                self.store.release_outbox(item)
                continue
            report.events_published += 1
            logger.info("event published", extra={"event_id": event_id})
            self.store.clear_outbox({**item, "outbox": pending}, event_id)
            pending.pop(event_id)
        flushed = {key: value for key, value in item.items() if key != "outbox"}
        if pending:
            flushed["outbox"] = pending
        return flushed

    # --- reporting ----------------------------------------------------------------------------------
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
            "ProviderFailures": len(report.provider_failures),
            "JobFailures": len(report.job_failures),
            "UnknownStatusWords": report.unknown_words,
            "JobsChanged": sum(count for kind, count in report.changes.items() if kind not in NO_CHANGE),
            "JobsCompleted": report.terminal[Status.COMPLETE.value],
            "JobsFailed": report.terminal[Status.ERROR.value],
            "JobsCanceled": report.terminal[Status.CANCELED.value],
            "JobsStalled": report.changes[Kind.STALLED.value],
        }
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def pending_event_age(item: Mapping[str, Any], now: datetime) -> float:
    """Seconds the item's oldest unpublished event has waited since it occurred (0 when none waits)."""
    ages = [0.0]
    for message in (item.get("outbox") or {}).values():
        occurred = to_datetime(json.loads(message).get("occurred_at"))
        if occurred:
            ages.append((now - occurred).total_seconds())
    return max(ages)


def _hides_jobs(failure: PollFailure) -> bool:
    """Whether a failure says nothing about its jobs (an outage, a failed batch or listing), as opposed to
    the provider answering about one job that it cannot show it (unknown id): that job may stall."""
    return isinstance(failure.error, ProviderUnavailable) or len(failure.job_ids) != 1


def _metric_name(stat: str) -> str:
    return "".join(part.capitalize() for part in stat.split("_"))
