"""The suite's speed-ups to moto (tests/conftest.py) keep moto's answers: a failed transaction still leaves
the table as it was, whatever it wrote before the item that failed."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError


def test_a_failed_transaction_is_rolled_back_whole(aws):
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="jobs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="jobs", Item={"pk": {"S": "a"}, "sk": {"S": "job"}, "version": {"N": "1"}})
    dynamodb.put_item(TableName="jobs", Item={"pk": {"S": "b"}, "sk": {"S": "job"}, "version": {"N": "1"}})
    before = dynamodb.scan(TableName="jobs")["Items"]

    with pytest.raises(ClientError, match="TransactionCanceledException"):
        dynamodb.transact_write_items(
            TransactItems=[
                {  # applied first (an update in place, then a new item) ...
                    "Update": {
                        "TableName": "jobs",
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "job"}},
                        "UpdateExpression": "SET version = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": "jobs", "Item": {"pk": {"S": "a"}, "sk": {"S": "history#1"}}}},
                {  # ... then this condition fails: nothing of the transaction may stay
                    "Delete": {
                        "TableName": "jobs",
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "job"}},
                        "ConditionExpression": "version = :five",
                        "ExpressionAttributeValues": {":five": {"N": "5"}},
                    }
                },
            ]
        )
    assert dynamodb.scan(TableName="jobs")["Items"] == before
    dynamodb.put_item(TableName="jobs", Item={"pk": {"S": "c"}, "sk": {"S": "job"}})  # the table still works
    assert dynamodb.scan(TableName="jobs", Select="COUNT")["Count"] == 3
