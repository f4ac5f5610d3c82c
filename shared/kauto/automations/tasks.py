"""REACH vendor task tracking: status webhooks and the sweep update one ledger row per task.

Row ``task#<pid>#<task_id>`` / ``task``: ``state`` (the status name: ``pending``, ``processing``, ``ready``,
``error`` ...), ``status`` (the Kaltura int), ``updated_at`` (the highest ``updatedAt`` seen), entry and catalog item
ids, turnaround, ``output_object_id`` (the caption asset of a READY task), ``err_description``.

Webhooks can repeat and arrive out of order, and carry no previous status (docs/kaltura.md#recognising-events). So:

- a final status (READY, ERROR, REJECTED, ABORTED; docs/kaltura.md#reach-enums) is entered with a conditional transition
  from the non-final states only; nothing ever leaves a final state, and a second final status is ignored;
- a non-final status is written only when its ``updatedAt`` is newer than the row's (equal times: only a later step
  of the lifecycle wins), with a condition on the row as read, so concurrent updates cannot interleave;
- what a final status implies happens every time it is seen, idempotently: READY records ``outputObjectId`` and
  closes the caption ledger row (``done`` with ``caption_asset_id``); ERROR / REJECTED / ABORTED alert once per task
  (the alert publisher dedupes on the task id). A crash between the transition and the alert is repaired by the
  next delivery or the sweep.

Kaltura only ships an HTTP template for READY (docs/kaltura.md#stock-templates), so the sweep also lists open tasks and
calls :func:`check_open_task`: it applies the status found and alerts once on tasks stuck past their SLA.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kauto.automation_config import TaskRules
from kauto.automations.deps import AutomationDeps
from kauto.automations.errors import MalformedEventError
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, Severity
from kauto.aws.ledger import STATE_ATTRIBUTE, Item, LedgerConflictError, LedgerFinalStateError
from kauto.kaltura import CatalogItem, Entry, KalturaNotFoundError, VendorTask, VendorTaskStatus
from kauto.kaltura.types import FINAL_TASK_STATUSES, as_int
from kauto.models import KalturaEvent

TASK_SK = "task"
TASK_TTL_SECONDS = 400 * 24 * 3600
"""Task rows are kept a little over a year (longer than any REACH turnaround)."""
IMMEDIATE_SLA_SECONDS = 1800
"""SLA of IMMEDIATE (0) turnaround: the shortest turnaround Kaltura lists in seconds (docs/kaltura.md#reach-enums)."""
BEST_EFFORT = -1
IMMEDIATE = 0
MAX_BUSINESS_DAYS = 7
_UPDATE_ATTEMPTS = 3

STATE_NAMES: Mapping[int, str] = {status.value: status.name.lower() for status in VendorTaskStatus}
FINAL_STATES = frozenset(STATE_NAMES[status] for status in FINAL_TASK_STATUSES)
OPEN_STATES = frozenset(STATE_NAMES.values()) - FINAL_STATES
# Lifecycle order of the open statuses, to break ties between deliveries with the same updatedAt.
_STEP: Mapping[int, int] = {
    VendorTaskStatus.PENDING_ENTRY_READY: 0,
    VendorTaskStatus.SCHEDULED: 0,
    VendorTaskStatus.PENDING_MODERATION: 1,
    VendorTaskStatus.PENDING: 1,
    VendorTaskStatus.PROCESSING: 2,
}
_FAILURE_ALERTS: Mapping[int, tuple[str, Severity]] = {
    VendorTaskStatus.ERROR: ("reach_task_error", Severity.WARNING),
    VendorTaskStatus.REJECTED: ("reach_task_rejected", Severity.WARNING),
    VendorTaskStatus.ABORTED: ("reach_task_aborted", Severity.INFO),
}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


class UpdateOutcome(StrEnum):
    """What one status delivery did to the task row."""

    CREATED = "created"
    UPDATED = "updated"
    FINAL = "final"
    """Moved into a final status now."""
    DUPLICATE = "duplicate"
    """Already in this status (a redelivery)."""
    STALE = "stale"
    """Older than what the row holds."""
    FINAL_KEPT = "final_kept"
    """The row is in another final status; it stays there."""


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """Result of applying one task snapshot: the outcome and the row's state afterwards."""

    task_id: int
    outcome: UpdateOutcome
    state: str


@dataclass(frozen=True, slots=True)
class TaskCheck:
    """Result of :func:`check_open_task`: ``stuck`` when past ``deadline`` (unix seconds) and still open."""

    task_id: int
    state: str
    stuck: bool
    deadline: int | None


def task_pk(partner_id: int, task_id: int) -> str:
    """Ledger partition of one vendor task."""
    return f"task#{partner_id}#{task_id}"


def handle_task_status(event: KalturaEvent, deps: AutomationDeps) -> TaskUpdate:
    """Apply a vendor-task status webhook. The task comes from the event's fields, or from ``entryVendorTask.get``
    when the body carried none (a DataFields template)."""
    task = _task_from_event(event, deps)
    return apply_task(event.partner_id, task, deps)


def record_ordered_task(
    partner_id: int, task: VendorTask, *, entry: Entry, catalog_item: CatalogItem, deps: AutomationDeps
) -> TaskUpdate:
    """Track a task the caption automation ordered or adopted, with the names its alerts will need."""
    context = {"entry_name": entry.name, "catalog_item_name": catalog_item.name, "ordered_by_automation": True}
    return apply_task(partner_id, task, deps, context=context)


def check_open_task(task: VendorTask, deps: AutomationDeps, *, partner_id: int | None = None) -> TaskCheck:
    """For the sweep: apply the task's current status (errors found alert once) and alert once if it is stuck.

    A task is stuck when it is still open after its SLA (from ``turnAroundTime``: seconds as given, 1-7 business
    days, best effort = ``tasks.best_effort_sla_hours``) times ``tasks.stuck_grace_factor``, counted from
    ``createdAt``. ``partner_id`` defaults to the task's own.
    """
    pid = partner_id if partner_id is not None else task.partner_id
    if pid is None:
        raise ValueError(f"task {task.id} has no partner id")
    update = apply_task(pid, task, deps)
    if update.state in FINAL_STATES:
        return TaskCheck(task.id, update.state, False, None)
    rules = deps.config.partner(pid).tasks
    deadline = stuck_deadline(task, rules)
    now = deps.clock()
    stuck = deadline is not None and now > deadline
    if stuck and deadline is not None:
        _alert_stuck(pid, task, deadline, now, deps)
    return TaskCheck(task.id, update.state, stuck, deadline)


def apply_task(
    partner_id: int, task: VendorTask, deps: AutomationDeps, *, context: Mapping[str, Any] | None = None
) -> TaskUpdate:
    """Merge one snapshot of ``task`` into its ledger row (rules in the module docstring) and run what a final
    status implies. ``context`` (names for alerts) is stored alongside without touching the status."""
    status = as_int(task.status)
    if status is None or status not in STATE_NAMES:
        raise MalformedEventError("status", f"unknown vendor task status {task.status!r}")
    state = STATE_NAMES[status]
    pk = task_pk(partner_id, task.id)
    ledger = deps.ledger
    attrs = {**_task_attributes(task, status), **(context or {})}
    outcome: UpdateOutcome | None = None
    row: Item | None = None
    for _ in range(_UPDATE_ATTEMPTS):
        row = ledger.get(pk, TASK_SK)
        if row is None:
            claim = ledger.claim(
                pk,
                TASK_SK,
                {STATE_ATTRIBUTE: state, **attrs, "first_seen_at": int(deps.clock())},
                ttl_seconds=TASK_TTL_SECONDS,
            )
            if claim.claimed:
                outcome, row = UpdateOutcome.CREATED, claim.item
                break
            row = claim.item
        outcome, row = _merge(pk, row, status, state, attrs, context, deps)
        if outcome is not None:
            break
    if outcome is None or row is None:
        raise LedgerConflictError(pk, TASK_SK, "task row kept changing under concurrent updates", row)
    final_state = str(row.get(STATE_ATTRIBUTE))
    count("VendorTaskUpdate", outcome=outcome.value, state=final_state)
    logger.info(
        "vendor task status",
        extra={"partner_id": partner_id, "task_id": task.id, "status": state, "outcome": outcome.value},
    )
    if final_state in FINAL_STATES:
        _on_final(partner_id, row, deps)
    return TaskUpdate(task.id, outcome, final_state)


def _merge(
    pk: str,
    row: Item,
    status: int,
    state: str,
    attrs: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    deps: AutomationDeps,
) -> tuple[UpdateOutcome | None, Item]:
    """One attempt to apply the snapshot to ``row``; ``(None, row)`` means the row changed meanwhile: read again."""
    ledger = deps.ledger
    current = row.get(STATE_ATTRIBUTE)
    if current in FINAL_STATES:
        if context:
            row = ledger.update(pk, TASK_SK, dict(context))
        return (UpdateOutcome.DUPLICATE if current == state else UpdateOutcome.FINAL_KEPT), row
    if state in FINAL_STATES:
        seen = row.get("updated_at")
        final_attrs = dict(attrs)
        if isinstance(seen, int) and seen > final_attrs.get("updated_at", seen):
            final_attrs["updated_at"] = seen  # keep the highest updatedAt seen
        try:
            result = ledger.transition(
                pk, TASK_SK, from_states=OPEN_STATES, to_state=state, final_states=FINAL_STATES, attrs=final_attrs
            )
        except LedgerFinalStateError as error:
            return UpdateOutcome.FINAL_KEPT, error.current or row
        except LedgerConflictError:
            return None, row
        return (UpdateOutcome.FINAL if result.changed else UpdateOutcome.DUPLICATE), result.item
    if not _is_newer(attrs.get("updated_at"), status, row):
        if context:
            row = ledger.update(pk, TASK_SK, dict(context))
        return (UpdateOutcome.DUPLICATE if current == state else UpdateOutcome.STALE), row
    try:
        updated = ledger.update(
            pk,
            TASK_SK,
            {STATE_ATTRIBUTE: state, **attrs},
            expect={STATE_ATTRIBUTE: current, "updated_at": row.get("updated_at")},
        )
    except LedgerConflictError:
        return None, row
    return UpdateOutcome.UPDATED, updated


def _is_newer(updated_at: Any, status: int, row: Item) -> bool:
    """Whether a snapshot (``updatedAt``, ``status``) is more recent than what ``row`` holds."""
    seen = row.get("updated_at")
    if not isinstance(seen, int):
        return True
    if not isinstance(updated_at, int):
        return False  # a snapshot without a time cannot prove it is newer
    if updated_at != seen:
        return updated_at > seen
    seen_status = row.get("status")
    return isinstance(seen_status, int) and _STEP.get(status, 0) > _STEP.get(seen_status, 0)


def _task_attributes(task: VendorTask, status: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "status": status,
        "task_id": task.id,
        "entry_id": task.entry_id or None,
        "catalog_item_id": task.catalog_item_id,
        "updated_at": task.updated_at,
        "created_at": task.created_at,
        "turn_around_time": task.turn_around_time,
        "expected_finish_time": task.expected_finish_time,
    }
    if task.output_object_id:
        attrs["output_object_id"] = task.output_object_id
    if task.err_description:
        attrs["err_description"] = task.err_description
    return {name: value for name, value in attrs.items() if value is not None}


# ------------------------------------------------------------------------------------------- final statuses


def _on_final(partner_id: int, row: Item, deps: AutomationDeps) -> None:
    status = row.get("status")
    if status == VendorTaskStatus.READY:
        _close_caption_order(partner_id, row, deps)
    elif status in _FAILURE_ALERTS and deps.config.partner(partner_id).tasks.alert_on_error:
        _alert_failed(partner_id, row, deps)


def _close_caption_order(partner_id: int, row: Item, deps: AutomationDeps) -> None:
    """Mark the caption ledger row of this entry and catalog item ``done`` with the caption asset id."""
    entry_id, catalog_item_id = row.get("entry_id"), row.get("catalog_item_id")
    if not isinstance(entry_id, str) or not isinstance(catalog_item_id, int):
        return
    attrs: dict[str, Any] = {STATE_ATTRIBUTE: "done", "task_id": row["task_id"], "done_at": row.get("updated_at")}
    if row.get("output_object_id"):
        attrs["caption_asset_id"] = row["output_object_id"]
    try:
        deps.ledger.update(f"caption#{partner_id}#{entry_id}", f"item#{catalog_item_id}", attrs)
    except LedgerConflictError:
        return  # no caption order row: the task was ordered outside the automation


def _alert_failed(partner_id: int, row: Item, deps: AutomationDeps) -> None:
    rule, severity = _FAILURE_ALERTS[row["status"]]
    task_id = row["task_id"]
    entry_id = row.get("entry_id")
    entry_name = row.get("entry_name")
    if entry_name is None and isinstance(entry_id, str):
        entry_name = _entry_name(partner_id, entry_id, deps)
    status_name = STATE_NAMES[row["status"]].upper()
    alert = Alert(
        rule=rule,
        severity=severity,
        partner_id=partner_id,
        subject=f"REACH task {task_id} {status_name} for entry {entry_id}",
        summary=f"The REACH task {task_id} for entry {entry_id} ended {status_name}. Review it in the REACH "
        "dashboard and resubmit it if captions are still needed.",
        details={
            "task_id": task_id,
            "status": status_name,
            "entry_id": entry_id,
            "entry_name": _without_emails(entry_name),
            "catalog_item_id": row.get("catalog_item_id"),
            "catalog_item_name": _without_emails(row.get("catalog_item_name")),
            "err_description": _without_emails(row.get("err_description")),
        },
    )
    deps.alerts.publish(alert, dedupe_key=f"task:{task_id}")
    count("VendorTaskFailureAlert", status=status_name)


def _entry_name(partner_id: int, entry_id: str, deps: AutomationDeps) -> str | None:
    try:
        return deps.kaltura(partner_id).entries.get(entry_id).name
    except KalturaNotFoundError:
        return None


def _without_emails(text: Any) -> str | None:
    """Entry names and vendor messages are free text; alerts carry no e-mail addresses (kauto.aws.alerts)."""
    if not isinstance(text, str):
        return None
    return _EMAIL.sub("[redacted]", text)


# -------------------------------------------------------------------------------------------------- the SLA


def stuck_deadline(task: VendorTask, rules: TaskRules) -> int | None:
    """When an open ``task`` counts as stuck: ``createdAt`` + SLA x ``stuck_grace_factor`` (``None`` without a
    ``createdAt``). The SLA comes from ``turnAroundTime`` (docs/kaltura.md#reach-enums): -1 best effort ->
    ``best_effort_sla_hours``; 0 immediate -> 30 minutes; 1-7 business days (Monday-Friday, UTC); else seconds."""
    start = task.created_at
    if start is None:
        return None
    turnaround = task.turn_around_time
    if turnaround is None or turnaround == BEST_EFFORT or turnaround < IMMEDIATE:
        sla = rules.best_effort_sla_hours * 3600
    elif turnaround == IMMEDIATE:
        sla = IMMEDIATE_SLA_SECONDS
    elif turnaround <= MAX_BUSINESS_DAYS:
        sla = add_business_days(start, turnaround) - start
    else:
        sla = turnaround
    return start + math.ceil(sla * rules.stuck_grace_factor)


def add_business_days(start: int, days: int) -> int:
    """Unix time ``days`` business days (Monday-Friday, UTC) after ``start``, at the same time of day."""
    moment = datetime.fromtimestamp(start, tz=UTC)
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return int(moment.timestamp())


def _alert_stuck(partner_id: int, task: VendorTask, deadline: int, now: float, deps: AutomationDeps) -> None:
    overdue_hours = round((now - deadline) / 3600, 1)
    alert = Alert(
        rule="reach_task_stuck",
        severity=Severity.WARNING,
        partner_id=partner_id,
        subject=f"REACH task {task.id} for entry {task.entry_id} is overdue",
        summary=f"The REACH task {task.id} is still {STATE_NAMES.get(as_int(task.status) or 0, 'open')} "
        f"{overdue_hours} h after its SLA (turnaround {task.turn_around_time}).",
        details={
            "task_id": task.id,
            "entry_id": task.entry_id,
            "catalog_item_id": task.catalog_item_id,
            "status": as_int(task.status),
            "turn_around_time": task.turn_around_time,
            "created_at": task.created_at,
            "stuck_after": deadline,
        },
    )
    deps.alerts.publish(alert, dedupe_key=f"task:{task.id}")
    count("VendorTaskStuck")


# ------------------------------------------------------------------------------------------------- the event


def _task_from_event(event: KalturaEvent, deps: AutomationDeps) -> VendorTask:
    fields = dict(event.fields)
    if "id" in fields and "status" in fields:
        return VendorTask.from_api({**fields, "partnerId": event.partner_id})
    task_id = as_int(event.object_id)
    if task_id is None:
        raise MalformedEventError("object_id", "a vendor task event needs the task id")
    return deps.kaltura(event.partner_id).reach.get_task(task_id)
