"""Dedupe claims in DynamoDB (moto server mode), and concurrent deliveries of one job through the handler."""

from __future__ import annotations

import functools
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
from kauto.aws.dedupe import RETENTION_SECONDS, ClaimState, DynamoDedupeStore
from kauto.errors import DedupeStoreUnavailableError
from moto.dynamodb.models import DynamoDBBackend

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


def test_claim_mark_and_duplicate(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()

    claim = store.try_claim("p:job:1", now=now, lease_seconds=15)
    assert claim.acquired
    assert store.try_claim("p:job:1", now=now + 1, lease_seconds=15).existing is ClaimState.PENDING

    assert store.mark_enqueued("p:job:1", claim.token or "", message_id="m-1", now=now + 2)
    assert store.try_claim("p:job:1", now=now + 3, lease_seconds=15).existing is ClaimState.ENQUEUED
    stored = row(table, "p:job:1") or {}
    assert (stored["state"]["S"], stored["message_id"]["S"]) == ("enqueued", "m-1")
    assert int(stored["expires_at"]["N"]) == int(now) + RETENTION_SECONDS


def test_only_the_claimer_may_mark_or_release(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()
    claim = store.try_claim("p:job:2", now=now, lease_seconds=15)

    assert not store.mark_enqueued("p:job:2", "someone-else", message_id="m", now=now)
    assert not store.release("p:job:2", "someone-else")
    assert row(table, "p:job:2") is not None

    assert store.release("p:job:2", claim.token or "")
    assert row(table, "p:job:2") is None


def test_an_enqueued_row_is_never_released(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()
    claim = store.try_claim("p:job:3", now=now, lease_seconds=15)
    store.mark_enqueued("p:job:3", claim.token or "", message_id="m", now=now)

    assert not store.release("p:job:3", claim.token or "")
    assert row(table, "p:job:3") is not None


def test_expired_claim_is_taken_over_and_the_old_claimer_loses_it(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()
    dead = store.try_claim("p:job:4", now=now - 60, lease_seconds=15)

    takeover = store.try_claim("p:job:4", now=now, lease_seconds=15)

    assert takeover.acquired and takeover.token != dead.token
    assert not store.mark_enqueued("p:job:4", dead.token or "", message_id="late", now=now)
    assert store.mark_enqueued("p:job:4", takeover.token or "", message_id="m", now=now)


def test_row_past_its_ttl_but_not_yet_deleted_counts_as_absent(table: str) -> None:
    store = DynamoDedupeStore(table)
    now = time.time()
    old = store.try_claim("p:job:5", now=now - RETENTION_SECONDS - 10, lease_seconds=15)
    store.mark_enqueued("p:job:5", old.token or "", message_id="m", now=now - RETENTION_SECONDS - 9)

    assert store.try_claim("p:job:5", now=now, lease_seconds=15).acquired


def test_missing_table_is_a_dependency_error(moto_aws: str) -> None:
    with pytest.raises(DedupeStoreUnavailableError, match="ResourceNotFoundException"):
        DynamoDedupeStore("no-such-table").try_claim("p:job:6", now=time.time(), lease_seconds=15)


@pytest.fixture
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB evaluates a condition and writes atomically; moto's server threads do not. Serialize its writes."""
    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


@pytest.mark.parametrize("claim_wait", ["0", "1"])
def test_concurrent_deliveries_of_one_job_leave_exactly_one_message(
    moto_aws: str, monkeypatch: pytest.MonkeyPatch, atomic_moto_writes: None, claim_wait: str
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
    monkeypatch.setenv("WEBHOOK_CLAIM_WAIT_SECONDS", claim_wait)
    handler = load_handler("webhook").lambda_handler
    event = json.loads((REPO_ROOT / "events" / "webhook" / "entry_ready_object_json.event.json").read_text())
    handler(event, FakeLambdaContext())  # warm up: clients and the secret are loaded once, as in Lambda
    drain_queue(stack.queue_url)
    boto3.client("dynamodb").delete_item(TableName=stack.table_name, Key={"pk": {"S": "1234567:job:33578094492"}})
    start = threading.Barrier(8)

    def deliver(_: int) -> tuple[int, str]:
        start.wait()
        response = handler(event, FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])["outcome"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(deliver, range(8)))

    assert len(drain_queue(stack.queue_url)) == 1
    assert [outcome for _, outcome in answers].count("accepted") == 1
    assert {status for status, _ in answers} <= {200, 503}  # 503: Kaltura retries, then sees a duplicate
    retries = [handler(event, FakeLambdaContext())["statusCode"] for status, _ in answers if status == 503]
    assert set(retries) <= {200}
    assert drain_queue(stack.queue_url) == []
    assert [item["state"]["S"] for item in dedupe_rows(stack.table_name)] == ["enqueued"]
