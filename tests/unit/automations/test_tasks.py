"""Vendor task tracking on fakes: out-of-order and repeated statuses, READY closing the order, failure alerts once,
stuck tasks found by the sweep, and the SLA arithmetic."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kauto.automation_config import TaskRules
from kauto.automations.captions import caption_pk, item_sk
from kauto.automations.errors import MalformedEventError
from kauto.automations.tasks import (
    UpdateOutcome,
    add_business_days,
    check_open_task,
    handle_task_status,
    stuck_deadline,
    task_pk,
)
from kauto.kaltura import VendorTask
from reach_fakes import ITEM_ID, NOW, PARTNER_ID, Harness, build_harness, task_event

TASK_ID = 98765433
PENDING, READY, PROCESSING, REJECTED, ERROR, ABORTED = 1, 2, 3, 5, 6, 7


@pytest.fixture
def harness() -> Harness:
    harness = build_harness()
    harness.kaltura.add_entry()
    return harness


def row(harness: Harness, task_id: int = TASK_ID) -> dict[str, Any]:
    return harness.ledger.items[(task_pk(PARTNER_ID, task_id), "task")]


def apply(harness: Harness, status: int, updated_at: int, **fields: Any) -> Any:
    return handle_task_status(task_event(TASK_ID, status, updated_at=updated_at, **fields), harness.deps)


def published(harness: Harness) -> list[dict[str, Any]]:
    return [json.loads(alert.message) for alert in harness.alerts.published]


def test_statuses_in_order_move_the_row_forward(harness: Harness) -> None:
    outcomes = [
        apply(harness, PENDING, NOW).outcome,
        apply(harness, PROCESSING, NOW + 60).outcome,
        apply(harness, READY, NOW + 300, outputObjectId="1_caption").outcome,
    ]

    assert outcomes == [UpdateOutcome.CREATED, UpdateOutcome.UPDATED, UpdateOutcome.FINAL]
    assert row(harness)["state"] == "ready"
    assert row(harness)["output_object_id"] == "1_caption"
    assert row(harness)["updated_at"] == NOW + 300


@pytest.mark.parametrize(
    "late",
    [(PROCESSING, NOW + 60), (PENDING, NOW), (PROCESSING, NOW + 900), (ERROR, NOW + 400), (READY, NOW + 300)],
    ids=["older-processing", "older-pending", "processing-with-a-newer-time", "another-final-status", "repeat"],
)
def test_nothing_moves_a_task_out_of_a_final_status(harness: Harness, late: tuple[int, int]) -> None:
    apply(harness, READY, NOW + 300, outputObjectId="1_caption")

    update = apply(harness, *late)

    assert update.state == "ready"
    assert update.outcome in (UpdateOutcome.DUPLICATE, UpdateOutcome.FINAL_KEPT)
    assert row(harness)["status"] == READY
    assert row(harness)["updated_at"] == NOW + 300
    assert published(harness) == []


def test_an_older_open_status_is_stale_and_the_highest_updated_at_is_kept(harness: Harness) -> None:
    apply(harness, PROCESSING, NOW + 60)

    update = apply(harness, PENDING, NOW)

    assert update.outcome is UpdateOutcome.STALE
    assert (row(harness)["state"], row(harness)["updated_at"]) == ("processing", NOW + 60)


def test_equal_times_let_only_a_later_lifecycle_step_win(harness: Harness) -> None:
    apply(harness, PROCESSING, NOW)

    assert apply(harness, PENDING, NOW).outcome is UpdateOutcome.STALE
    assert row(harness)["state"] == "processing"


def test_final_status_wins_even_with_an_older_time(harness: Harness) -> None:
    apply(harness, PROCESSING, NOW + 600)

    update = apply(harness, ERROR, NOW + 500, errDescription="audio missing")

    assert update.outcome is UpdateOutcome.FINAL
    assert row(harness)["state"] == "error"
    assert row(harness)["updated_at"] == NOW + 600


def test_ready_closes_the_caption_order_with_the_caption_asset(harness: Harness) -> None:
    harness.ledger.claim(caption_pk(PARTNER_ID, "1_entry"), item_sk(ITEM_ID), {"state": "ordered", "task_id": TASK_ID})

    apply(harness, READY, NOW + 300, outputObjectId="1_caption")
    apply(harness, READY, NOW + 300, outputObjectId="1_caption")

    order = harness.ledger.items[(caption_pk(PARTNER_ID, "1_entry"), item_sk(ITEM_ID))]
    assert order["state"] == "done"
    assert order["caption_asset_id"] == "1_caption"
    assert order["task_id"] == TASK_ID


def test_ready_of_a_task_ordered_elsewhere_creates_no_caption_order(harness: Harness) -> None:
    apply(harness, READY, NOW + 300, outputObjectId="1_caption")

    assert harness.rows("caption#") == {}


@pytest.mark.parametrize(
    ("status", "rule", "severity"),
    [
        (ERROR, "reach_task_error", "warning"),
        (REJECTED, "reach_task_rejected", "warning"),
        (ABORTED, "reach_task_aborted", "info"),
    ],
)
def test_failed_task_alerts_once_with_what_a_person_needs(
    harness: Harness, status: int, rule: str, severity: str
) -> None:
    harness.kaltura.entries["1_entry"]["name"] = "Lecture by ada@example.com"
    apply(harness, PROCESSING, NOW + 60)

    for _ in range(3):  # Kaltura's retries and the sweep see the same final status
        apply(harness, status, NOW + 400, errDescription="Entry duration is below the minimum")

    (alert,) = published(harness)
    assert alert["alert"] == rule
    assert alert["severity"] == severity
    assert alert["details"] == {
        "task_id": TASK_ID,
        "status": {ERROR: "ERROR", REJECTED: "REJECTED", ABORTED: "ABORTED"}[status],
        "entry_id": "1_entry",
        "entry_name": "Lecture by [redacted]",
        "catalog_item_id": ITEM_ID,
        "catalog_item_name": None,
        "err_description": "Entry duration is below the minimum",
    }
    assert "@" not in json.dumps(alert)


def test_failure_alert_uses_the_names_recorded_at_order_time(harness: Harness) -> None:
    harness.ledger.claim(
        task_pk(PARTNER_ID, TASK_ID),
        "task",
        {
            "state": "pending",
            "status": PENDING,
            "task_id": TASK_ID,
            "entry_name": "Town hall",
            "catalog_item_name": "EN",
        },
    )

    apply(harness, ERROR, NOW + 400)

    (alert,) = published(harness)
    assert (alert["details"]["entry_name"], alert["details"]["catalog_item_name"]) == ("Town hall", "EN")
    assert harness.kaltura.count("entries.get") == 0


def test_alert_on_error_off_records_without_alerting() -> None:
    harness = build_harness({"tasks": {"alert_on_error": False}})

    handle_task_status(task_event(TASK_ID, ERROR, updated_at=NOW), harness.deps)

    assert published(harness) == []
    assert row(harness)["state"] == "error"


def test_event_without_task_fields_reads_the_task_from_kaltura(harness: Harness) -> None:
    task_id = harness.kaltura.add_task("1_entry", status=PROCESSING, updatedAt=NOW + 5)
    event = task_event(task_id, PROCESSING, updated_at=NOW)
    bare = dataclasses.replace(event, fields={})

    update = handle_task_status(bare, harness.deps)

    assert update.state == "processing"
    assert row(harness, task_id)["updated_at"] == NOW + 5


def test_event_without_task_id_is_malformed(harness: Harness) -> None:
    event = task_event(TASK_ID, PENDING, updated_at=NOW)
    bare = dataclasses.replace(event, fields={}, object_id=None)

    with pytest.raises(MalformedEventError):
        handle_task_status(bare, harness.deps)


def task(status: int, *, created_at: int = NOW, turnaround: int | None = -1, task_id: int = TASK_ID) -> VendorTask:
    return VendorTask(
        id=task_id,
        entry_id="1_entry",
        catalog_item_id=ITEM_ID,
        status=status,
        partner_id=PARTNER_ID,
        created_at=created_at,
        updated_at=created_at,
        turn_around_time=turnaround,
    )


def test_sweep_alerts_once_on_a_task_stuck_past_its_sla(harness: Harness) -> None:
    sla = 7200 * 1.5  # turnaround 7200 s, default grace factor 1.5
    harness.clock.now = NOW + sla - 1
    before = check_open_task(task(PROCESSING, turnaround=7200), harness.deps)
    harness.clock.now = NOW + sla + 1
    checks = [check_open_task(task(PROCESSING, turnaround=7200), harness.deps) for _ in range(3)]

    (alert,) = published(harness)
    assert before.stuck is False
    assert all(check.stuck for check in checks)
    assert checks[0].deadline == NOW + 10800
    assert alert["alert"] == "reach_task_stuck"
    assert alert["details"]["task_id"] == TASK_ID


def test_sweep_records_an_error_it_finds_and_alerts_once(harness: Harness) -> None:
    apply(harness, PROCESSING, NOW + 60)

    check = check_open_task(task(ERROR), harness.deps)
    handle_task_status(task_event(TASK_ID, ERROR, updated_at=NOW + 70), harness.deps)  # the webhook, late

    assert (check.state, check.stuck) == ("error", False)
    assert [alert["alert"] for alert in published(harness)] == ["reach_task_error"]


def test_sweep_needs_a_partner_id() -> None:
    harness = build_harness()
    orphan = VendorTask(id=1, entry_id="1_entry", catalog_item_id=ITEM_ID, status=PENDING)

    with pytest.raises(ValueError, match="partner"):
        check_open_task(orphan, harness.deps)
    assert check_open_task(orphan, harness.deps, partner_id=PARTNER_ID).state == "pending"


RULES = TaskRules(stuck_grace_factor=1.0, best_effort_sla_hours=48, alert_on_error=True)


@pytest.mark.parametrize(
    ("turnaround", "created", "expected"),
    [
        (-1, "2026-01-01T08:00:00", "2026-01-03T08:00:00"),  # best effort -> configured hours
        (None, "2026-01-01T08:00:00", "2026-01-03T08:00:00"),
        (0, "2026-01-01T08:00:00", "2026-01-01T08:30:00"),  # immediate
        (3600 * 2, "2026-01-01T08:00:00", "2026-01-01T10:00:00"),  # seconds as-is
        (1, "2026-01-02T08:00:00", "2026-01-05T08:00:00"),  # Friday + 1 business day = Monday
        (5, "2026-01-01T08:00:00", "2026-01-08T08:00:00"),  # Thursday + 5 business days
        (1, "2026-01-03T08:00:00", "2026-01-05T08:00:00"),  # Saturday + 1 = Monday
    ],
)
def test_stuck_deadline_from_turnaround(turnaround: int | None, created: str, expected: str) -> None:
    created_at = _ts(created)

    assert stuck_deadline(task(PENDING, created_at=created_at, turnaround=turnaround), RULES) == _ts(expected)


def test_grace_factor_stretches_the_sla() -> None:
    rules = TaskRules(stuck_grace_factor=2.5, best_effort_sla_hours=48, alert_on_error=True)

    assert stuck_deadline(task(PENDING, turnaround=1800), rules) == NOW + 4500


def test_no_created_at_no_deadline() -> None:
    untimed = VendorTask(id=1, entry_id="e", catalog_item_id=1, status=PENDING)

    assert stuck_deadline(untimed, RULES) is None


def test_add_business_days_skips_weekends() -> None:
    assert add_business_days(_ts("2026-01-09T12:00:00"), 6) == _ts("2026-01-19T12:00:00")


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
