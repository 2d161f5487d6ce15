"""The local stack's moto server (make demo, make invoke) answers concurrent requests without breaking:
a provider function polls through a pool of threads, and moto's tables are not thread-safe."""

from __future__ import annotations

import copy
import logging
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config

from local.moto_server import MotoServer


@pytest.mark.slow
def test_concurrent_transactions_and_writes_all_succeed(monkeypatch):
    from moto.dynamodb import models

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto as it ships: the suite's faster transaction backup (conftest) makes the race it loses rarer
    monkeypatch.setattr(models, "copy", copy)
    backend = models.DynamoDBBackend
    monkeypatch.setattr(backend, "transact_write_items", backend.transact_write_items.__wrapped__)
    with MotoServer() as server:
        # No retries: a request moto failed (HTTP 500) must show here, not be hidden by botocore's retry.
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=8),
        )
        dynamodb.create_table(
            TableName="jobs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def write(worker: int) -> None:
            for number in range(30):  # a transaction copies the table while the other workers write to it
                item = {"pk": {"S": f"{worker}-{number}"}}
                dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "jobs", "Item": item}}])
                dynamodb.put_item(TableName="jobs", Item={"pk": {"S": f"plain-{worker}-{number}"}})

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(8)))  # re-raises a worker's ClientError (HTTP 500)
        assert dynamodb.scan(TableName="jobs", Select="COUNT")["Count"] == 8 * 30 * 2
