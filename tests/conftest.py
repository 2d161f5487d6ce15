"""Shared fixtures: AWS is moto (`mock_aws`), providers are the project's simulators on 127.0.0.1."""

from __future__ import annotations

import os

import pytest

# Before anything imports boto3 or Powertools: no real credentials, no real endpoints, no tracing.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "transcode-status",
        "POWERTOOLS_METRICS_NAMESPACE": "TranscodeStatus",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
)
for _variable in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_variable, None)


def share_botocore_loader() -> None:
    """Every new boto3 Session (mock_aws makes a default one per test, each function's cold start makes its
    own) would read botocore's JSON models and endpoint rules from disk again, most of a test's time. One
    loader per data path serves them all: it caches what it read, and the models are only read."""
    import functools

    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.session.create_loader)


share_botocore_loader()


def back_up_only_what_a_transaction_touches() -> None:
    """moto backs a TransactWriteItems up (to roll a failed one back) by deep-copying the whole table, once
    per item of the transaction: O(table) a write, minutes for a test of a few hundred jobs. Here the backup
    shares the items the transaction cannot change and copies the ones it names, so a failed transaction
    still leaves the table exactly as it was, at the cost of what it touches."""
    import contextvars

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_copy = models.copy
    touched: contextvars.ContextVar[tuple[list, dict] | None] = contextvars.ContextVar("touched", default=None)

    def keys_of(table: Table, transact_items: list) -> list[tuple[DynamoType, DynamoType | None]]:
        keys = []
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            if operation.get("TableName") != table.name:
                continue
            key = operation.get("Key") or operation.get("Item") or {}
            if table.hash_key_attr not in key:
                continue
            range_value = key.get(table.range_key_attr) if table.range_key_attr else None
            keys.append((DynamoType(key[table.hash_key_attr]), DynamoType(range_value) if range_value else None))
        return keys

    def backup(table: Table, transact_items: list) -> Table:
        copied = real_copy.copy(table)  # definitions and indexes shared: a transaction writes only items
        items = type(table.items)(dict) if table.has_range_key else type(table.items)()
        for hash_value, entry in table.items.items():
            items[hash_value] = dict(entry) if table.has_range_key else entry
        for hash_value, range_value in keys_of(table, transact_items):
            if table.has_range_key and range_value in table.items.get(hash_value, {}):
                items[hash_value][range_value] = real_copy.deepcopy(table.items[hash_value][range_value])
            elif not table.has_range_key and hash_value in table.items:
                items[hash_value] = real_copy.deepcopy(table.items[hash_value])
        copied.items = items
        if table.stream_shard is not None:
            copied.stream_shard = real_copy.copy(table.stream_shard)
            copied.stream_shard.items = list(table.stream_shard.items)
        return copied

    class TransactionCopy:
        def __getattr__(self, name: str):
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            state = touched.get()
            if state is None or not isinstance(value, Table):
                return real_copy.deepcopy(value, memo)
            transact_items, backups = state
            if value.name not in backups:  # moto asks once per item of the transaction
                backups[value.name] = backup(value, transact_items)
            return backups[value.name]

    transact_write_items = models.DynamoDBBackend.transact_write_items

    def with_small_backups(self, transact_items):
        token = touched.set((transact_items, {}))
        try:
            return transact_write_items(self, transact_items)
        finally:
            touched.reset(token)

    with_small_backups.__wrapped__ = transact_write_items  # type: ignore[attr-defined]  # moto's own, for a test
    models.copy = TransactionCopy()
    models.DynamoDBBackend.transact_write_items = with_small_backups


back_up_only_what_a_transaction_touches()


@pytest.fixture(autouse=True)
def cold_token_cache():
    """Every test starts as a cold Lambda: no OAuth token cached from an earlier test."""
    from transcode_core import oauth

    oauth.clear_token_cache()
    yield
    oauth.clear_token_cache()


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    serialize_moto(monkeypatch)
    # moto's backends start empty for every test; boto3's default session is kept from one test to the next
    # (moto would make a new one per test: its handlers registered again, about 15 ms of CPU a test). No test
    # keeps a hook on it: test_faults removes its own.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        yield


@pytest.fixture
def no_aws_retry_waits(monkeypatch):
    """The AWS SDK tries an unreachable endpoint as often as deployed, without the waits between the tries
    (seconds of jittered backoff, which no test checks)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def serialize_moto(monkeypatch) -> None:
    """moto in-process is not thread-safe (a transaction deep-copies the table while another thread writes):
    requests from a poll's worker pool reach it one at a time, as a server would take them (all but SQS
    receives, which may wait for a message that another thread is about to send)."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    call = BotocoreStubber.__call__

    def one_at_a_time(self, event_name, request, **kwargs):
        if event_name.endswith(".sqs.ReceiveMessage"):  # a long poll would hold every other thread up
            return call(self, event_name, request, **kwargs)
        with lock:
            return call(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", one_at_a_time)


@pytest.fixture
def stack(aws):
    """The table, topic and subscriber queue created from template.yaml, with handlers to invoke."""
    from aws_lambda_powertools.utilities import parameters

    from local.stack import LocalStack

    parameters.clear_caches()
    yield LocalStack().create()
    parameters.clear_caches()
