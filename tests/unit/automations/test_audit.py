"""The audit trail on fakes: what lands in S3 for the decisions and side effects of an invocation, that a redelivery
states the same facts under the same ids, and that no personal data is copied."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from kauto.automations.audit import audited, delivery_failed_fact, new_trail, notification_fact
from kauto.automations.captions import order_captions
from kauto.automations.router import handle_event
from kauto.automations.tasks import handle_task_status
from kauto.aws.audit import AUDIT_CONTENT_TYPE, FACT_COLUMNS, AuditTrail
from kauto.aws.ledger import LedgerUnavailableError
from kauto.aws.object_store import WriteResult
from kauto.aws.report_keys import report_key, session_prefix
from kauto.kaltura import Entry
from kauto_local.fakes import InMemoryObjectStore
from reach_fakes import (
    ITEM_ID,
    NOW,
    PARTNER_ID,
    Harness,
    api_error,
    catalog_harness,
    entry_ready_event,
    task_event,
)

ERROR = 6


@pytest.fixture
def harness() -> Harness:
    return catalog_harness()


@dataclasses.dataclass
class Invocation:
    deps: Any
    trail: AuditTrail
    bucket: InMemoryObjectStore


def invocation(harness: Harness, **partner_settings: Any) -> Invocation:
    """One Lambda invocation's deps: the harness's fakes behind the audited ports, with a fresh trail."""
    base = harness.with_config(**partner_settings).deps if partner_settings else harness.deps
    bucket = InMemoryObjectStore()
    trail = new_trail(bucket, harness.clock, None)
    ledger, alerts, store = audited(base.ledger, base.alerts, bucket, trail)
    return Invocation(dataclasses.replace(base, ledger=ledger, alerts=alerts, store=store, audit=trail), trail, bucket)


def lines(bucket: InMemoryObjectStore) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key, body in sorted(bucket.objects.items())
        if key.startswith("audit/")
        for line in body.decode().splitlines()
    ]


def facts(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["kind"] == kind]


def test_an_order_lands_as_one_json_lines_object_with_the_decision_the_order_and_the_task(harness: Harness) -> None:
    run = invocation(harness)
    entry = Entry.from_api(harness.kaltura.entries["1_entry"])
    event = entry_ready_event("1_entry", dedupe_key="1234567:job:77")
    run.trail.record(notification_fact(event, attempt=1))

    decision = order_captions(event, entry, run.deps)
    keys = run.trail.flush()

    [key] = keys
    assert key.startswith(f"audit/partner_id={PARTNER_ID}/date=2026-01-01/") and key.endswith(".jsonl")
    assert run.bucket.content_types[key] == AUDIT_CONTENT_TYPE
    rows = lines(run.bucket)
    assert all(list(row) == list(FACT_COLUMNS) for row in rows)
    [notified] = facts(rows, "notification_handled")
    assert (notified["subject_type"], notified["subject_id"], notified["attempt"]) == (
        "notification",
        "1234567:job:77",
        1,
    )
    [decided] = facts(rows, "caption_decision")
    assert (decided["subject_id"], decided["outcome"], decided["task_id"], decided["event"]) == (
        "1_entry",
        "ordered",
        decision.task_id,
        "1234567:job:77",
    )
    [ordered] = facts(rows, "caption_ordered")
    assert (ordered["task_id"], ordered["catalog_item_id"], ordered["reason"]) == (decision.task_id, ITEM_ID, "add")
    [task] = facts(rows, "task_status")
    assert (task["subject_type"], task["subject_id"], task["state"]) == ("task", str(decision.task_id), "pending")
    # Names stay in the ledger: the trail carries ids and reasons only.
    body = b"".join(run.bucket.objects.values())
    assert b"Quarterly all-hands" not in body


def test_a_skipped_entry_states_the_rule_that_decided(harness: Harness) -> None:
    harness.kaltura.add_entry("1_short", msDuration=20_000)
    run = invocation(harness, captions={"min_duration_seconds": 60})
    entry = Entry.from_api(harness.kaltura.entries["1_short"])

    order_captions(entry_ready_event("1_short"), entry, run.deps)
    run.trail.flush()

    [decided] = facts(lines(run.bucket), "caption_decision")
    assert (decided["subject_id"], decided["outcome"], decided["reason"]) == ("1_short", "skipped", "too_short")
    assert facts(lines(run.bucket), "caption_ordered") == []


def test_a_credit_refusal_states_the_code_and_the_alert(harness: Harness) -> None:
    harness.kaltura.add_failures.append(api_error("EXCEEDED_MAX_CREDIT_ALLOWED"))
    run = invocation(harness)

    order_captions(entry_ready_event(), Entry.from_api(harness.kaltura.entries["1_entry"]), run.deps)
    run.trail.flush()

    rows = lines(run.bucket)
    [decided] = facts(rows, "caption_decision")
    assert (decided["outcome"], decided["reason"]) == ("credit", "EXCEEDED_MAX_CREDIT_ALLOWED")
    [alerted] = facts(rows, "alert_published")
    assert (alerted["alert"], alerted["subject_type"], alerted["subject_id"], alerted["code"]) == (
        "reach_credit",
        "entry",
        "1_entry",
        "EXCEEDED_MAX_CREDIT_ALLOWED",
    )


def test_a_redelivered_task_error_states_the_same_facts_under_the_same_ids(harness: Harness) -> None:
    event = task_event(4242, ERROR, updated_at=NOW + 60, errDescription="ask jane.doe@example.com")
    first, second = invocation(harness), invocation(harness)

    handle_task_status(event, first.deps)
    first.trail.flush()
    handle_task_status(event, second.deps)  # the redelivery: nothing changes, nothing new is published
    handle_task_status(event, second.deps)
    second.trail.flush()

    rows = lines(first.bucket)
    [status] = facts(rows, "task_status")
    [alerted] = facts(rows, "alert_published")
    assert (status["subject_id"], status["state"]) == ("4242", "error")
    assert (alerted["alert"], alerted["subject_type"], alerted["subject_id"]) == ("reach_task_error", "task", "4242")
    assert {row["fact_id"] for row in lines(second.bucket)} <= {row["fact_id"] for row in rows}
    assert b"jane.doe" not in b"".join(first.bucket.objects.values())


def test_a_permanent_failure_states_its_code(harness: Harness) -> None:
    def forbidden(*_: Any, **__: Any) -> Any:
        raise api_error("SERVICE_FORBIDDEN")

    harness.kaltura.list_caption_catalog_items = forbidden  # type: ignore[method-assign]
    run = invocation(harness, captions={})  # rebuilt client view over the patched fake

    handle_event(entry_ready_event(dedupe_key="1234567:job:9"), run.deps)
    run.trail.flush()

    [failure] = facts(lines(run.bucket), "permanent_failure")
    assert (failure["subject_type"], failure["subject_id"], failure["code"], failure["event"]) == (
        "entry",
        "1_entry",
        "SERVICE_FORBIDDEN",
        "1234567:job:9",
    )


def test_report_files_written_are_stated_with_their_session(harness: Harness) -> None:
    run = invocation(harness)
    prefix = session_prefix(PARTNER_ID, date(2026, 1, 1), "1_room", "cp1")
    with run.deps.store.open_writer(report_key(prefix, "attendees")) as writer:
        writer.write("a,b\r\n1,2\r\n", rows=1)
        writer.complete()
    run.trail.flush()

    [written] = facts(lines(run.bucket), "object_written")
    assert written["s3_key"] == report_key(prefix, "attendees")
    assert (written["subject_type"], written["subject_id"], written["room_entry_id"], written["rows"]) == (
        "session",
        "cp1",
        "1_room",
        1,
    )


class _BrokenStore(InMemoryObjectStore):
    def put_bytes(self, key: str, body: bytes, *, content_type: str) -> WriteResult:
        raise OSError("S3 is down")


def test_a_trail_that_cannot_be_written_does_not_fail_the_invocation(harness: Harness) -> None:
    counted: list[str] = []
    trail = AuditTrail(_BrokenStore(), clock=harness.clock, metrics=counted.append)
    trail.record(notification_fact(entry_ready_event(), attempt=1))

    assert trail.flush() == []
    assert counted == ["AuditFlushFailed"]


def test_facts_of_two_partners_or_days_go_to_separate_objects(harness: Harness) -> None:
    bucket = InMemoryObjectStore()
    clock: Callable[[], float] = harness.clock
    trail = AuditTrail(bucket, clock=clock, invocation_id="inv1")
    trail.record(notification_fact(entry_ready_event(dedupe_key="a"), attempt=1))
    harness.clock.advance(86_400)
    trail.record(notification_fact(entry_ready_event(dedupe_key="b"), attempt=1))
    trail.record(notification_fact(entry_ready_event(dedupe_key="b"), attempt=1))

    keys = trail.flush()

    assert [key.rsplit("/", 2)[1] for key in keys] == ["date=2026-01-01", "date=2026-01-02"]
    assert all(key.endswith("-inv1.jsonl") for key in keys)
    assert len(lines(bucket)) == 2


def test_a_failed_delivery_states_the_error_type_and_code_never_its_message() -> None:
    event = entry_ready_event(dedupe_key="1234567:job:5")
    kaltura = delivery_failed_fact(event, attempt=2, error=api_error("SERVICE_FORBIDDEN"))
    aws = delivery_failed_fact(
        event, attempt=3, error=LedgerUnavailableError("dynamodb", "PutItem", "ledger: Throttled")
    )

    rows = [fact.row(NOW, "inv") for fact in (kaltura, aws)]

    assert [(row["kind"], row["subject_id"], row["attempt"], row["code"]) for row in rows] == [
        ("delivery_failed", "1234567:job:5", 2, "SERVICE_FORBIDDEN"),
        ("delivery_failed", "1234567:job:5", 3, "dynamodb:PutItem"),
    ]
    assert rows[1]["reason"] == "LedgerUnavailableError" and "Throttled" not in json.dumps(rows)
    assert kaltura.fact_id != aws.fact_id  # two deliveries, two facts; the same delivery again: the same id
    assert delivery_failed_fact(event, attempt=2, error=api_error("OTHER")).fact_id == kaltura.fact_id
