"""Dedupe claims in DynamoDB (moto server mode), and concurrent deliveries of one job through the handler."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from helpers import (
    REPO_ROOT,
    FakeLambdaContext,
    create_webhook_stack,
    dedupe_rows,
    drain_queue,
    load_handler,
    partner_document,
)
from kauto.aws.dedupe import RETENTION_SECONDS, DynamoDedupeStore
from kauto.errors import DedupeStoreUnavailableError

pytestmark = pytest.mark.integration

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def table(moto_aws: str) -> str:
    boto3.client("dynamodb").create_table(
        TableName="dedupe",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "dedupe"


def row(table_name: str, key: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb").get_item(TableName=table_name, Key={"pk": {"S": key}}, ConsistentRead=True)
    return item.get("Item")


def test_claim_then_duplicate_and_the_row_kept_eight_days(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()

    assert store.claim("p:job:1", "token-a", now=now)
    assert not store.claim("p:job:1", "token-b", now=now + 1)

    stored = row(table, "p:job:1") or {}
    assert set(stored) == {"pk", "claim_token", "claimed_at", "expires_at"}
    assert stored["claim_token"]["S"] == "token-a"
    assert int(stored["expires_at"]["N"]) == int(now) + RETENTION_SECONDS >= int(now) + 7 * 86400


def test_a_retried_put_of_the_same_claim_recognises_its_own_row(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()
    store.claim("p:job:2", "token-a", now=now)

    # What botocore's retry of a PutItem whose response was lost sees: the row its first attempt wrote.
    assert store.claim("p:job:2", "token-a", now=now)


def test_only_the_claimer_may_release(table: str) -> None:
    store = DynamoDedupeStore(table)
    store.claim("p:job:3", "token-a", now=time.time())

    assert not store.release("p:job:3", "someone-else")
    assert row(table, "p:job:3") is not None

    assert store.release("p:job:3", "token-a")
    assert row(table, "p:job:3") is None
    assert not store.release("p:job:3", "token-a")  # nothing left to undo


def test_row_past_its_expiry_but_not_yet_deleted_by_ttl_is_claimed_again(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()
    assert store.claim("p:job:4", "long-ago", now=now - RETENTION_SECONDS - 10)

    assert store.claim("p:job:4", "token-b", now=now)
    assert (row(table, "p:job:4") or {})["claim_token"]["S"] == "token-b"


def test_missing_table_is_a_dependency_error(moto_aws: str) -> None:
    store = DynamoDedupeStore("no-such-table")

    with pytest.raises(DedupeStoreUnavailableError, match="ResourceNotFoundException"):
        store.claim("p:job:5", "token", now=time.time())
    with pytest.raises(DedupeStoreUnavailableError, match="ResourceNotFoundException"):
        store.release("p:job:5", "token")


def test_concurrent_deliveries_of_one_job_leave_exactly_one_message(
    moto_aws: str, monkeypatch: pytest.MonkeyPatch, atomic_moto_writes: None
) -> None:
    stack = create_webhook_stack(
        monkeypatch,
        partner_document(
            p1234567={
                "admin_secret": SECRET,
                "webhook_hash_algorithms": ["sha256"],
                "service_url": "https://www.kaltura.com",
            }
        ),
    )
    handler = load_handler("webhook").lambda_handler
    event = json.loads((REPO_ROOT / "events" / "webhook" / "entry_ready_object_json.event.json").read_text())
    handler(event, FakeLambdaContext())  # warm up: clients and the secret are loaded once, as in Lambda
    drain_queue(stack.queue_url)
    boto3.client("dynamodb").delete_item(TableName=stack.table_name, Key={"pk": {"S": "1234567:job:33578094492"}})
    start = threading.Barrier(8)

    def deliver(_: int) -> tuple[int, str]:
        start.wait(timeout=30)
        response = handler(event, FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])["outcome"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(deliver, range(8)))

    assert sorted(answers) == [(200, "accepted")] + [(200, "duplicate")] * 7
    assert len(drain_queue(stack.queue_url)) == 1
    assert len(dedupe_rows(stack.table_name)) == 1
