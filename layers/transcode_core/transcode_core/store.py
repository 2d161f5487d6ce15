"""The jobs table (CONTRACT "The jobs table"): one item per job, history items, the sparse active index.

Everything above this module works with plain Python dicts; DynamoDB types, conditions and errors stay
here. A job item carries `active_provider` (the ActiveJobs index key) while it needs polling or holds an
unpublished event, so finding the work of a poll is one Query, never a Scan. Every job item (never a
history item) also carries `listed_provider`, the key of the JobsByProvider index (sorted by `updated_at`)
that lists jobs newest first for operators.
"""

from __future__ import annotations

import json
import time
from base64 import b64decode
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from transcode_core.errors import DependencyUnavailable
from transcode_core.status import Status, is_terminal
from transcode_core.times import is_later, iso_z, utc_now

ACTIVE_INDEX = "ActiveJobs"
LIST_INDEX = "JobsByProvider"
JOB_SK = "JOB"
# Bookkeeping attributes: never shown by the jobs API nor published.
INTERNAL_FIELDS = frozenset(
    {
        "pk",
        "sk",
        "active_provider",
        "listed_provider",
        "outbox",
        "rewatch_until",
        "stalled_attempt",
        "expires_at",
        "read_at",
        "estimate_from",
    }
)
# How long a run that took a pending event (in its commit, or by a claim) has to publish and clear it before
# another run may take it: longer than an invocation, so only a fault (a crash, a lost clear) repeats one.
LEASE_SECONDS = 300
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_BATCH_GET_LIMIT = 100
# DynamoDB ends a page at 1 MB (about a thousand jobs); the limit keeps a page half that where items are smaller
# or an endpoint does not page (moto answers every item at once: ~10 KiB of transient heap a job while parsing).
ACTIVE_PAGE_ITEMS = 500
_UNPARSED_QUERY = "transcode-status-query-items-unparsed"
_UNPARSED_BATCH_GET = "transcode-status-batch-get-items-unparsed"


class Conflict(Exception):
    """A conditional write lost a race; `current` is the item as it is now (from the failed write itself)."""

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("the job changed since it was read")
        self.current = current


def job_key(provider: str, job_id: str) -> dict[str, str]:
    return {"pk": f"{provider}#{job_id}", "sk": JOB_SK}


def public_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The job as users see it (jobs API GET, the event's `job`): without keys and bookkeeping."""
    return {key: value for key, value in item.items() if key not in INTERNAL_FIELDS}


def needs_index(item: Mapping[str, Any], now_iso: str) -> bool:
    """Whether a job belongs on the ActiveJobs index: it is not terminal, has an unpublished event, or was
    asked to be watched again (jobs API PUT on a terminal job). A job no longer tracked (jobs API DELETE)
    stays only until its unpublished event is sent."""
    if item.get("untracked_at"):
        return bool(item.get("outbox"))
    if "status" not in item or not is_terminal(item["status"]):
        return True
    return bool(item.get("outbox")) or is_later(item.get("rewatch_until"), now_iso)


@dataclass
class JobStore:
    table_name: str
    history_days: int = 365  # history items expire through the table's TTL; 0 keeps them forever
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = boto3.client("dynamodb")
        self.client.meta.events.register("before-parse.dynamodb.Query", _items_unparsed, unique_id=_UNPARSED_QUERY)
        self.client.meta.events.register(
            "before-parse.dynamodb.BatchGetItem", _items_unparsed, unique_id=_UNPARSED_BATCH_GET
        )

    # --- reads --------------------------------------------------------------------------------------
    def get(self, provider: str, job_id: str) -> dict[str, Any] | None:
        answer = self._call(
            "get_item", TableName=self.table_name, Key=_to_dynamo(job_key(provider, job_id)), ConsistentRead=True
        )
        return _from_dynamo(answer["Item"]) if "Item" in answer else None

    def get_many(self, provider: str, job_ids: Sequence[str], consistent: bool = True) -> dict[str, dict[str, Any]]:
        """Stored items by job id (missing ones left out), in batches of 100 with unprocessed keys retried.
        An eventually consistent read costs half the read units (what the ActiveJobs index gives is one too)."""
        found: dict[str, dict[str, Any]] = {}
        unique_ids = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique_ids), _BATCH_GET_LIMIT):
            keys = [_to_dynamo(job_key(provider, job_id)) for job_id in unique_ids[start : start + _BATCH_GET_LIMIT]]
            request = {self.table_name: {"Keys": keys, "ConsistentRead": consistent}}
            for _ in range(10):
                answer = self._call("batch_get_item", RequestItems=request)
                for raw in answer.get("Responses", {}).get(self.table_name, []):
                    item = _from_dynamo(raw)
                    found[item["job_id"]] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise DependencyUnavailable("the jobs table kept some reads unprocessed")
        return found

    def active_jobs(self, provider: str) -> list[dict[str, Any]]:
        """Every job of this provider on the ActiveJobs index."""
        return [item for page in self.active_pages(provider) for item in page]

    def active_pages(self, provider: str) -> Iterator[list[dict[str, Any]]]:
        """This provider's jobs on the ActiveJobs index, a page (a Query, never a Scan) at a time. A page holds
        at most ACTIVE_PAGE_ITEMS jobs, so a reader that keeps no page costs the same memory for any number."""
        query = {
            "TableName": self.table_name,
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": "active_provider = :p",
            "ExpressionAttributeValues": {":p": {"S": provider}},
            "Limit": ACTIVE_PAGE_ITEMS,
        }
        next_query: dict[str, Any] | None = query
        while next_query:
            page, next_query = self._active_page(next_query)
            yield page
            del page  # not held while the next page is read

    def _active_page(self, query: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the index, and the query of the next (None: it was the last)."""
        answer = self._call("query", **query)
        last_key = answer.get("LastEvaluatedKey")
        page = [_from_dynamo(raw) for raw in answer.get("Items", [])]
        return page, {**query, "ExclusiveStartKey": last_key} if last_key else None

    def history(self, provider: str, job_id: str) -> list[dict[str, Any]]:
        answer = self._call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :event)",
            ExpressionAttributeValues={":pk": {"S": f"{provider}#{job_id}"}, ":event": {"S": "EVENT#"}},
        )
        return [_from_dynamo(raw) for raw in answer.get("Items", [])]

    def list_jobs(
        self,
        provider: str,
        *,
        since: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 50,
        start_after: Mapping[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One provider's jobs, newest `updated_at` first, from the JobsByProvider index (Queries, never a
        Scan): at most `limit`, changed at or after `since`, in `statuses` if given. Returns the jobs (the
        index's projection) and the item to pass as `start_after` for the next page (None: no more)."""
        values: dict[str, Any] = {":p": {"S": provider}}
        condition = "listed_provider = :p"
        if since:
            condition += " AND updated_at >= :since"
            values[":since"] = {"S": since}
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
        }
        if statuses:
            names = {f":s{n}": {"S": status} for n, status in enumerate(statuses)}
            query["FilterExpression"] = f"#status IN ({', '.join(names)})"
            query["ExpressionAttributeNames"] = {"#status": "status"}
            values.update(names)
        query["ExpressionAttributeValues"] = values
        if start_after:
            query["ExclusiveStartKey"] = _to_dynamo(
                {key: start_after[key] for key in ("pk", "sk", "listed_provider", "updated_at")}
            )
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            answer = self._call("query", Limit=max(limit - len(items), 10), **query)
            items.extend(_from_dynamo(raw) for raw in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return items[:limit], (items[limit - 1] if len(items) > limit else None)
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return items[:limit], items[limit - 1]

    # --- writes -------------------------------------------------------------------------------------
    def commit(
        self, item: Mapping[str, Any], expected_version: int | None, source: str, actor: str | None = None
    ) -> None:
        """Writes the job item and its history item in one transaction, if the stored version is still
        `expected_version` (None: the job must not exist yet). Raises Conflict with the current item.
        `actor`: who asked for the change (the jobs API's caller), kept in the history item."""
        condition = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected_version is None
            else {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        )
        item = {**item, "listed_provider": item["provider"]}  # job items only: history stays off the list
        history = self._history_item(item, source, actor)
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _to_dynamo(item),
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            **condition,
                        }
                    },
                    {"Put": {"TableName": self.table_name, "Item": _to_dynamo(history)}},
                ],
                passthrough=("TransactionCanceledException",),
            )
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                old = reasons[0].get("Item")
                raise Conflict(_from_dynamo(old) if old else None) from None
            raise DependencyUnavailable(f"jobs table write cancelled: {_reason_codes(reasons)}") from None

    def claim_outbox(self, item: Mapping[str, Any], event_ids: Sequence[str]) -> dict[str, Any] | None:
        """Takes pending events that nobody holds (a sweep after a failed publish or a crashed run) for
        LEASE_SECONDS. Returns the item as it now is (version + 1, so that a write based on an older read
        loses), or None when any of them is gone or held by another run."""
        now = int(time.time())
        names = {f"#e{index}": event_id for index, event_id in enumerate(event_ids)}
        free = " AND ".join(
            f"attribute_exists(outbox.{name}) AND "
            f"(attribute_not_exists(outbox.{name}.lease) OR outbox.{name}.lease < :now)"
            for name in names
        )
        return self._update_if(
            item,
            "SET " + ", ".join(f"outbox.{name}.lease = :until" for name in names) + ", version = version + :one",
            free,
            names,
            {":until": {"N": str(now + LEASE_SECONDS)}, ":now": {"N": str(now)}, ":one": {"N": "1"}},
        )

    def release_outbox(
        self, item: Mapping[str, Any], event_ids: Iterable[str], *, delivered: Sequence[str] = ()
    ) -> None:
        """Gives leases back after a failed publish, so that the next run retries at once. `delivered`: the
        targets that have these events (each target gets an event at least once, and only the ones that
        lack it get it again); none given leaves the entries' note as it is."""
        for event_id in event_ids:
            values: dict[str, Any] = {":one": {"N": "1"}}
            update = "REMOVE outbox.#e.lease SET version = version + :one"
            if delivered:
                update += ", outbox.#e.delivered = :delivered"
                values[":delivered"] = {"L": [{"S": target} for target in delivered]}
            self._update_if(item, update, "attribute_exists(outbox.#e)", {"#e": event_id}, values)

    def clear_outbox(
        self, published: Sequence[tuple[Mapping[str, Any], Sequence[str]]]
    ) -> list[tuple[Mapping[str, Any], Sequence[str]]]:
        """Forgets published events: (item as this run last wrote or claimed it, its published event ids).
        One conditional write per job, not a transaction: a transaction costs each item's write units twice
        and buys nothing here, since every job's clear stands alone. Each write bumps the version (so that a
        run that read the event before it was cleared cannot write it back), and a job with nothing left to
        poll or publish leaves the active index in the same write. Returns the entries that could not be
        cleared (the table throttled or unreachable): they stay leased by this run, and are published again
        once the lease ends unless a later try clears them."""
        uncleared: list[tuple[Mapping[str, Any], Sequence[str]]] = []
        for item, event_ids in published:
            try:
                self._clear_each(item, event_ids)
            except DependencyUnavailable:
                uncleared.append((item, event_ids))
        return uncleared

    def _clear_update(self, item: Mapping[str, Any], event_ids: Sequence[str]) -> dict[str, Any]:
        """The write that clears these events if the job is still at the version this run knows."""
        names = {f"#e{index}": event_id for index, event_id in enumerate(event_ids)}
        rest = [key for key in item.get("outbox", {}) if key not in event_ids]
        if not rest and not needs_index({**item, "outbox": {}}, iso_z(utc_now())):
            update = "REMOVE outbox, active_provider SET version = version + :one"
            names = {}
        else:
            update = "REMOVE " + ", ".join(f"outbox.{name}" for name in names) + " SET version = version + :one"
        return {
            "update": update,
            "condition": "version = :v",
            "names": names,
            "values": {":v": {"N": str(item["version"])}, ":one": {"N": "1"}},
        }

    def _clear_each(self, item: Mapping[str, Any], event_ids: Sequence[str]) -> None:
        if self._update_if(item, **self._clear_update(item, event_ids)):
            return
        # The job changed meanwhile (the writer carried the events, still leased by this run): remove just
        # them; a later sweep takes a job with nothing left to do off the index.
        for event_id in event_ids:
            self._update_if(
                item,
                "REMOVE outbox.#e SET version = version + :one",
                "attribute_exists(outbox.#e)",
                {"#e": event_id},
                {":one": {"N": "1"}},
            )

    def note_read(self, item: Mapping[str, Any], read_at: str) -> None:
        """Records when an unchanged job was last read from its provider (`read_at`, bookkeeping). No version
        bump and no history: nothing about the job changed. A job that changed meanwhile keeps its newer
        `updated_at`, which serves as well, so a lost race is simply ignored."""
        self._update_if(
            item, "SET read_at = :at", "version = :v", None, {":at": {"S": read_at}, ":v": {"N": str(item["version"])}}
        )

    def deactivate(self, item: Mapping[str, Any]) -> bool:
        """Takes a terminal job with nothing to publish off the active index (if it did not change)."""
        return None is not self._update_if(
            item,
            "REMOVE active_provider, rewatch_until",
            "version = :v AND (attribute_not_exists(outbox) OR size(outbox) = :zero)",
            None,
            {":v": {"N": str(item["version"])}, ":zero": {"N": "0"}},
        )

    def register(
        self, provider: str, job_id: str, *, rewatch_minutes: float, actor: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Starts tracking a job (jobs API PUT by `actor`). Returns (created, item). A terminal job is put
        back on the poll list for `rewatch_minutes`, so a restart at the provider is seen."""
        now = utc_now()
        item: dict[str, Any] = {
            **job_key(provider, job_id),
            "provider": provider,
            "job_id": job_id,
            "status": Status.SUBMITTED.value,
            "attempt": 1,
            "version": 1,
            "updated_at": iso_z(now),
            "active_provider": provider,
        }
        try:
            self.commit(item, None, "api", actor)
            return True, item
        except Conflict as lost:
            existing = lost.current or self.get(provider, job_id) or {}
        for _ in range(5):
            terminal = bool(existing.get("status")) and is_terminal(existing["status"])
            if not terminal and not existing.get("untracked_at"):
                return False, existing
            # A change like any other (version + 1, history), so that a write based on an older read loses.
            rewatched = {
                **{key: value for key, value in existing.items() if key != "untracked_at"},
                "active_provider": provider,
                "version": existing["version"] + 1,
                "updated_at": iso_z(now),
            }
            if terminal:
                rewatched["rewatch_until"] = iso_z(now + timedelta(minutes=rewatch_minutes))
            try:
                self.commit(rewatched, existing["version"], "api", actor)
                return False, rewatched
            except Conflict as lost:
                existing = lost.current or {}
        raise DependencyUnavailable(f"job {provider}#{job_id} kept changing while it was registered")

    def untrack(self, provider: str, job_id: str, actor: str | None = None) -> dict[str, Any] | None:
        """Stops tracking a job (jobs API DELETE by `actor`): it leaves the poll list at once, keeps its item and
        history, and carries `untracked_at` so that webhooks and listings do not track it again until a PUT
        does. A change like any other (version + 1, history), so that a poll that read it before loses its
        write. An unpublished event keeps it on the active index until it is sent. None: not tracked."""
        existing = self.get(provider, job_id)
        for _ in range(5):
            if existing is None:
                return None
            if existing.get("untracked_at"):
                return existing
            now_iso = iso_z(utc_now())
            untracked = {
                **{key: value for key, value in existing.items() if key not in ("active_provider", "rewatch_until")},
                "untracked_at": now_iso,
                "version": existing["version"] + 1,
                "updated_at": now_iso,
            }
            if needs_index(untracked, now_iso):
                untracked["active_provider"] = provider
            try:
                self.commit(untracked, existing["version"], "api", actor)
                return untracked
            except Conflict as lost:
                existing = lost.current
        raise DependencyUnavailable(f"job {provider}#{job_id} kept changing while it was untracked")

    # --- internals ----------------------------------------------------------------------------------
    def _update_if(
        self,
        item: Mapping[str, Any],
        update: str,
        condition: str,
        names: dict[str, str] | None,
        values: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """A conditional UpdateItem on the job item: the item as it now is, None when the condition failed."""
        try:
            answer = self._call(
                "update_item",
                ReturnValues="ALL_NEW",
                passthrough=("ConditionalCheckFailedException",),
                **self._update_request(item, update, condition, names, values),
            )
        except ClientError:
            return None
        return _from_dynamo(answer.get("Attributes", {}))

    def _update_request(
        self,
        item: Mapping[str, Any],
        update: str,
        condition: str,
        names: dict[str, str] | None,
        values: dict[str, Any] | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _to_dynamo(job_key(item["provider"], item["job_id"])),
            "UpdateExpression": update,
            "ConditionExpression": condition,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        return request

    def _history_item(self, item: Mapping[str, Any], source: str, actor: str | None = None) -> dict[str, Any]:
        history = {
            "pk": item["pk"],
            "sk": f"EVENT#{item['updated_at']}#{item['version']}",
            "status": item.get("status"),
            "provider_status": item.get("provider_status"),
            "progress": item.get("progress"),
            "source": source,
            "actor": actor,
            "version": item["version"],
            "attempt": item.get("attempt", 1),
        }
        if self.history_days > 0:
            history["expires_at"] = int(utc_now().timestamp()) + self.history_days * 86400
        return {key: value for key, value in history.items() if value is not None}

    def _call(self, operation: str, passthrough: Iterable[str] = (), **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in passthrough:
                raise
            raise DependencyUnavailable(f"jobs table {operation} failed: {exc.response['Error']['Code']}") from None
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"jobs table {operation} failed: {type(exc).__name__}") from None


def new_lease() -> int:
    """The lease a run takes on the events it adds in its own commit (epoch seconds it ends at)."""
    return int(time.time()) + LEASE_SECONDS


def is_leased(entry: Mapping[str, Any], now: int | None = None) -> bool:
    """Whether a run holds this outbox entry ({"message": event JSON, "lease": epoch seconds, and "delivered":
    the targets that already have it, once a run reached only some of them})."""
    return int(entry.get("lease") or 0) >= (int(time.time()) if now is None else now)


def unleased(item: Mapping[str, Any]) -> list[str]:
    """The item's pending events that no run holds (left by a failed publish or a crashed run)."""
    now = int(time.time())
    return [event_id for event_id, entry in (item.get("outbox") or {}).items() if not is_leased(entry, now)]


def _reason_codes(reasons: list[dict[str, Any]]) -> str:
    return ", ".join(reason.get("Code", "?") for reason in reasons) or "unknown"


# The item <-> AttributeValue conversions run for every job a poll reads or writes (tens of thousands a period),
# so the plain types items hold (str, int, bool, None, dict, list) are converted here directly, as boto3's
# TypeSerializer / TypeDeserializer would (a test holds them equal); floats, Decimals, sets and binary values go
# through boto3's, as before.
_LARGEST_N = 10**38  # DynamoDB numbers hold 38 digits: a larger int is refused by boto3's serializer, as before


def _to_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _attribute(value) for key, value in item.items() if value is not None}


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int) and -_LARGEST_N < value < _LARGEST_N:
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {key: _attribute(inner) for key, inner in value.items() if inner is not None}}
    if isinstance(value, (list, tuple)):
        return {"L": [_attribute(inner) for inner in value]}
    if value is None:
        return {"NULL": True}
    if isinstance(value, float):
        return _serializer.serialize(Decimal(str(value)))
    return _serializer.serialize(value)


def _from_dynamo(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain_value(value) for key, value in raw.items()}


def _plain_value(attribute: Mapping[str, Any]) -> Any:
    [(kind, data)] = attribute.items()
    if kind == "S":
        return data
    if kind == "N":
        return _number(data)
    if kind == "M":
        return {key: _plain_value(inner) for key, inner in data.items()}
    if kind == "L":
        return [_plain_value(inner) for inner in data]
    if kind == "BOOL":
        return data
    if kind == "NULL":
        return None
    if kind == "SS":
        return sorted(data)
    if kind == "NS":
        return sorted(_number(number) for number in data)
    if kind in ("B", "BS") and (isinstance(data, str) or (kind == "BS" and data and isinstance(data[0], str))):
        # as the wire carries it (a Query's items are read unparsed, see _items_unparsed): base64
        attribute = {kind: b64decode(data) if kind == "B" else [b64decode(inner) for inner in data]}
    return _plain(_deserializer.deserialize(attribute))


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return _plain(Decimal(text))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(_plain(inner) for inner in value)
    return value


def _items_unparsed(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore `before-parse` of a Query or a BatchGetItem: its items (`Items`, `Responses`) are taken from the
    body as they came (AttributeValue JSON) and handed on beside botocore's parse of the rest, since botocore's
    parse walks every attribute through the service model (several times the CPU of the conversion above, for
    every active job a poll reads). An error answer is parsed as botocore parses it."""
    if response_dict.get("status_code") != 200:
        return
    document = json.loads(response_dict["body"])
    if not isinstance(document, dict):
        return
    for name in ("Items", "Responses"):
        if name in document:
            customized_response_dict[name] = document.pop(name)
    response_dict["body"] = json.dumps(document).encode()
