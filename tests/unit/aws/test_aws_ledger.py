"""Ledger primitives: every behaviour runs against DynamoLedger (moto) and the InMemoryLedger fake, which must agree."""

from __future__ import annotations

from typing import Any

import pytest
from aws_support import LEDGER_TABLE, ClientSpy, FakeClock
from kauto.aws.ledger import (
    DynamoLedger,
    Ledger,
    LedgerConflictError,
    LedgerFinalStateError,
    LedgerUnavailableError,
    from_dynamo,
    to_dynamo,
)
from kauto_local.fakes import InMemoryLedger

PK = "order#1234567"
FINAL = ("ready", "error")
DAY = 24 * 3600


@pytest.fixture(params=["dynamodb", "in-memory"])
def ledger(request: pytest.FixtureRequest, clock: FakeClock) -> Ledger:
    if request.param == "in-memory":
        return InMemoryLedger(clock=clock)
    return DynamoLedger(request.getfixturevalue("dynamodb"), LEDGER_TABLE, clock=clock)


def test_first_claim_wins_and_later_claims_see_the_winner(ledger: Ledger, clock: FakeClock) -> None:
    first = ledger.claim(PK, "entry#1_a", {"state": "pending", "owner": "worker-1", "credit": 12.5}, ttl_seconds=DAY)
    second = ledger.claim(PK, "entry#1_a", {"state": "pending", "owner": "worker-2"}, ttl_seconds=DAY)

    assert first.claimed
    assert not second.claimed
    assert second.item["owner"] == "worker-1"
    assert second.item["credit"] == 12.5
    assert second.item["expires_at"] == int(clock.now) + DAY
    assert type(second.item["expires_at"]) is int  # no Decimal leaks out of the adapter


def test_an_expired_claim_counts_as_absent(ledger: Ledger, clock: FakeClock) -> None:
    ledger.claim(PK, "entry#1_a", {"owner": "old"}, ttl_seconds=60)
    clock.advance(61)  # DynamoDB has not deleted it yet, but it is past its TTL

    assert ledger.get(PK, "entry#1_a") is None
    assert list(ledger.query(PK)) == []
    claim = ledger.claim(PK, "entry#1_a", {"owner": "new"}, ttl_seconds=60)
    assert claim.claimed
    assert ledger.get(PK, "entry#1_a") == claim.item


def test_get_put_and_query_by_prefix_in_sort_key_order(ledger: Ledger) -> None:
    for sk in ("run#2025-W02", "run#2025-W01", "other#x"):
        ledger.put(PK, sk, {"rows": 3})
    ledger.put(PK, "run#2025-W01", {"rows": 4})  # put overwrites

    assert ledger.get(PK, "missing") is None
    assert [item["sk"] for item in ledger.query(PK, "run#")] == ["run#2025-W01", "run#2025-W02"]
    assert next(iter(ledger.query(PK, "run#")))["rows"] == 4
    assert [item["sk"] for item in ledger.query(PK, "run#", limit=1)] == ["run#2025-W01"]
    assert len(list(ledger.query(PK))) == 3


def test_values_round_trip_as_plain_python(ledger: Ledger) -> None:
    attrs = {
        "count": 3,
        "ratio": 0.4123711340206186,
        "flag": True,
        "nothing": None,
        "blob": b"\x00\x01",
        "nested": {"ids": ["1_a", "1_b"], "n": 2, "x": -1.5},
        "tags": ("a", "b"),
    }
    ledger.put(PK, "values", attrs)
    item = ledger.get(PK, "values")

    assert item is not None
    assert {key: item[key] for key in attrs} == {**attrs, "tags": ["a", "b"]}
    assert type(item["count"]) is int and type(item["ratio"]) is float


def test_reserved_attributes_cannot_be_set(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="managed by the ledger"):
        ledger.put(PK, "x", {"expires_at": 1})
    with pytest.raises(ValueError, match="managed by the ledger"):
        ledger.claim(PK, "x", {"pk": "other"})


def test_update_checks_expectations_and_returns_the_new_item(ledger: Ledger) -> None:
    ledger.claim(PK, "task#9", {"state": "ordered", "owner": "w1", "attempts": 1})

    item = ledger.update(PK, "task#9", {"attempts": 2, "vendor_task_id": 77}, expect={"owner": "w1", "gone": None})
    assert (item["attempts"], item["vendor_task_id"]) == (2, 77)

    with pytest.raises(LedgerConflictError) as raised:
        ledger.update(PK, "task#9", {"attempts": 3}, expect={"owner": "w2"})
    assert raised.value.current is not None and raised.value.current["attempts"] == 2

    item = ledger.update(PK, "task#9", {"note": "x"}, remove=["vendor_task_id"])
    assert "vendor_task_id" not in item

    with pytest.raises(LedgerConflictError) as missing:
        ledger.update(PK, "task#404", {"attempts": 1})
    assert missing.value.current is None


def test_transition_moves_between_states_and_is_idempotent(ledger: Ledger) -> None:
    ledger.claim(PK, "task#1", {"state": "pending", "owner": "w1"})

    moved = ledger.transition(PK, "task#1", from_states={"pending"}, to_state="ordered", attrs={"task_id": 5})
    assert moved.changed and moved.item["state"] == "ordered" and moved.item["task_id"] == 5

    redelivered = ledger.transition(PK, "task#1", from_states={"pending"}, to_state="ordered")
    assert not redelivered.changed and redelivered.item["state"] == "ordered"

    done = ledger.transition(PK, "task#1", from_states={"pending", "ordered"}, to_state="ready", final_states=FINAL)
    assert done.changed


def test_nothing_leaves_a_final_state(ledger: Ledger) -> None:
    ledger.claim(PK, "task#1", {"state": "ready"})

    with pytest.raises(LedgerFinalStateError) as raised:
        ledger.transition(PK, "task#1", from_states={"pending", "ordered"}, to_state="error", final_states=FINAL)
    assert raised.value.current_state == "ready"
    with pytest.raises(ValueError, match="out of final states"):
        ledger.transition(PK, "task#1", from_states={"ready"}, to_state="pending", final_states=FINAL)
    item = ledger.get(PK, "task#1")
    assert item is not None and item["state"] == "ready"


def test_transition_from_an_unexpected_state_or_a_missing_item_conflicts(ledger: Ledger) -> None:
    ledger.claim(PK, "task#1", {"state": "pending"})
    with pytest.raises(LedgerConflictError) as wrong_state:
        ledger.transition(PK, "task#1", from_states={"ordered"}, to_state="processing", final_states=FINAL)
    assert not isinstance(wrong_state.value, LedgerFinalStateError)
    assert wrong_state.value.current_state == "pending"

    with pytest.raises(LedgerConflictError) as missing:
        ledger.transition(PK, "task#404", from_states={"pending"}, to_state="ordered")
    assert missing.value.current is None


def test_delete_if_only_deletes_ones_own_claim(ledger: Ledger) -> None:
    ledger.claim(PK, "lock", {"owner": "me"})
    assert not ledger.delete_if(PK, "lock", "someone-else")
    assert ledger.get(PK, "lock") is not None
    assert ledger.delete_if(PK, "lock", "me")
    assert ledger.get(PK, "lock") is None
    assert not ledger.delete_if(PK, "lock", "me")


def test_dynamodb_errors_become_typed_retryable_errors(dynamodb: Any) -> None:
    failing = DynamoLedger(
        ClientSpy(dynamodb, fail=("put_item", 1), code="ProvisionedThroughputExceededException"), LEDGER_TABLE
    )
    with pytest.raises(LedgerUnavailableError) as raised:
        failing.claim(PK, "x", {"owner": "me"})
    assert raised.value.operation == "PutItem"
    assert "ProvisionedThroughputExceededException" in raised.value.detail

    with pytest.raises(LedgerUnavailableError, match="ResourceNotFoundException"):
        DynamoLedger(dynamodb, "no-such-table").get(PK, "x")


def test_query_follows_pages(dynamodb: Any, clock: FakeClock) -> None:
    spy = ClientSpy(dynamodb)
    ledger = DynamoLedger(spy, LEDGER_TABLE, clock=clock)
    padding = "x" * 300_000  # DynamoDB returns at most 1 MB per query page
    for index in range(7):
        ledger.put(PK, f"run#{index}", {"padding": padding})
    assert [item["sk"] for item in ledger.query(PK, "run#")] == [f"run#{index}" for index in range(7)]
    assert spy.calls.count("query") > 1


def test_claim_writes_the_item_dynamodb_sees(dynamodb: Any, clock: FakeClock) -> None:
    DynamoLedger(dynamodb, LEDGER_TABLE, clock=clock).claim(PK, "entry#1", {"state": "pending"}, ttl_seconds=DAY)
    raw = dynamodb.get_item(TableName=LEDGER_TABLE, Key={"pk": {"S": PK}, "sk": {"S": "entry#1"}})["Item"]
    assert raw["expires_at"] == {"N": str(int(clock.now) + DAY)}
    assert raw["state"] == {"S": "pending"}


def test_type_conversion_at_the_boundary() -> None:
    assert to_dynamo(1.5) == {"N": "1.5"}
    assert from_dynamo({"N": "10"}) == 10 and type(from_dynamo({"N": "10"})) is int
    assert from_dynamo({"NS": ["1", "2.5"]}) == {1, 2.5}
    with pytest.raises(ValueError, match="NaN"):
        to_dynamo(float("nan"))
    with pytest.raises(TypeError):
        to_dynamo(object())
