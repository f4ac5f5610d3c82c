"""What the automations' ledger writes mean, as audit facts (:mod:`kauto.aws.audit`), and the audited ports.

:func:`ledger_facts` reads a ledger row as written and states, by its key:

=================================  ==========================  =============================================
row                                fact ``kind``               subject, columns
=================================  ==========================  =============================================
``caption#<pid>#<entry>``          ``caption_decision``        entry; outcome, reason (the rule that decided),
``decision#...``                                               catalog item, task, event
``caption#...`` ``item#<id>``      ``caption_ordered`` /       entry; task, ``reason`` = ``add`` (ordered here)
                                   ``caption_done`` /          or ``existing`` (adopted); a claim taken over
                                   ``caption_claim_taken_over`` from a worker that died
``task#<pid>#<task>`` ``task``     ``task_status``             task; state (``pending`` ... ``ready``/``error``)
``session#<pid>#<room>`` ``<id>``  ``session_state``           session; state, trigger, manifest key, error
``recording#<pid>#<entry>``        ``recording_match``         entry; outcome, the session matched
``failure#<pid>``                  ``permanent_failure``       entry/task/session; Kaltura error code
``sweep#<pid>`` ``sent#<key>``     ``sweep_enqueued``          notification (the event the sweep sent)
``weekly#<pid>[#<week>]``          ``weekly_run`` /            run (the ISO week); state, report
                                   ``weekly_job``
=================================  ==========================  =============================================

Alerts (``alert#`` rows) are stated by the publisher wrapper, which knows the alert; other rows state nothing.
Only ids, states, codes and reasons are copied: never names (``entry_name``), descriptions (``err_description``
can quote a person) or metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kauto.automations.telemetry import count
from kauto.aws.alerts import AlertPublisher
from kauto.aws.audit import (
    AuditFact,
    AuditingAlertPublisher,
    AuditingLedger,
    AuditingObjectStore,
    AuditTrail,
)
from kauto.aws.ledger import Item, Ledger
from kauto.aws.object_store import ObjectStore
from kauto.errors import DependencyUnavailableError
from kauto.models import EventKind, KalturaEvent


def audited(
    ledger: Ledger, alerts: AlertPublisher, store: ObjectStore, trail: AuditTrail
) -> tuple[Ledger, AlertPublisher, ObjectStore]:
    """The three ports wrapped so that what they do lands in ``trail`` (``store`` itself writes the trail)."""
    return (
        AuditingLedger(ledger, trail, ledger_facts),
        AuditingAlertPublisher(alerts, trail),
        AuditingObjectStore(store, trail),
    )


def new_trail(store: ObjectStore | None, clock: Callable[[], float], invocation_id: str | None) -> AuditTrail:
    """An empty trail for one invocation, counting failed flushes as a metric."""
    return AuditTrail(store, clock=clock, invocation_id=invocation_id, metrics=lambda name: count(name))


def notification_fact(event: KalturaEvent, *, attempt: int | None) -> AuditFact:
    """``notification_handled``: the worker took up ``event`` (its ``attempt``-th delivery from the queue).

    The subject is the notification (Kaltura's ``eventNotificationJobId``, or the key the sweep or a tool gave it);
    ``attempt`` above 1 is a redelivery of the same queue message.
    """
    return AuditFact(
        event.partner_id,
        "notification_handled",
        "notification",
        event.dedupe_key,
        (event.dedupe_key, attempt),
        _notification_subjects(event)
        | {
            "room_entry_id": event.entry_id if event.kind is EventKind.SESSION_ENDED else None,
            "event": event.job_id,
            "state": event.kind.value,
            "reason": event.body_format.value,
            "attempt": attempt,
        },
    )


def delivery_failed_fact(event: KalturaEvent, *, attempt: int | None, error: BaseException) -> AuditFact:
    """``delivery_failed``: handling ``event`` raised, so the queue retries it (then dead-letters it): the error type
    and its code (a Kaltura error code, or the AWS dependency), never its message."""
    code = getattr(error, "code", None)
    if not isinstance(code, str) and isinstance(error, DependencyUnavailableError):
        code = f"{error.service}:{error.operation}"  # which AWS call failed, e.g. dynamodb:PutItem
    return AuditFact(
        event.partner_id,
        "delivery_failed",
        "notification",
        event.dedupe_key,
        (event.dedupe_key, attempt),
        _notification_subjects(event)
        | {
            "state": event.kind.value,
            "reason": type(error).__name__,
            "code": code if isinstance(code, str) else None,
            "attempt": attempt,
        },
    )


def _notification_subjects(event: KalturaEvent) -> dict[str, Any]:
    """The entry, task or session a notification is about (the facts of handling it name them)."""
    return {
        "entry_id": event.entry_id,
        "task_id": _int(event.object_id) if event.kind is EventKind.VENDOR_TASK_STATUS else None,
        "session_id": event.object_id if event.kind is EventKind.SESSION_ENDED else None,
    }


def ledger_facts(pk: str, sk: str, item: Item) -> Iterator[AuditFact]:
    """The facts one ledger write states (see the module docstring)."""
    kind, _, rest = pk.partition("#")
    partner_text, _, key = rest.partition("#")
    if not partner_text.isdigit():
        return
    partner = int(partner_text)
    if kind == "caption":
        yield from _caption(partner, key, sk, item)
    elif kind == "task":
        task_id = _int(key)
        state = _text(item.get("state"))
        yield AuditFact(
            partner,
            "task_status",
            "task",
            key,
            (key, state, item.get("updated_at")),
            {
                "task_id": task_id,
                "entry_id": item.get("entry_id"),
                "catalog_item_id": item.get("catalog_item_id"),
                "state": state,
            },
        )
    elif kind == "session":
        yield _session(partner, key, sk, item)
    elif kind == "recording":
        fields = {
            "entry_id": key,
            "outcome": item.get("outcome"),
            "room_entry_id": item.get("room_entry_id"),
            "session_id": item.get("session_id"),
        }
        yield AuditFact(
            partner, "recording_match", "entry", key, (key, fields["outcome"], fields["session_id"]), fields
        )
    elif kind == "failure":
        yield _failure(partner, sk, item)
    elif kind == "sweep" and sk.startswith("sent#"):
        dedupe_key = sk.removeprefix("sent#")
        yield AuditFact(partner, "sweep_enqueued", "notification", dedupe_key, (dedupe_key,), {})
    elif kind == "weekly":
        yield _weekly(partner, key, sk, item)


def _caption(partner: int, entry_id: str, sk: str, item: Item) -> Iterator[AuditFact]:
    if sk.startswith("decision#"):
        fields = {
            "entry_id": entry_id,
            "outcome": item.get("outcome"),
            "reason": item.get("reason"),
            "catalog_item_id": item.get("catalog_item_id"),
            "task_id": item.get("task_id"),
            "event": item.get("event"),
            "state": "dry_run" if item.get("dry_run") else None,
        }
        identity = (sk, fields["outcome"], fields["reason"], fields["task_id"], fields["catalog_item_id"])
        yield AuditFact(partner, "caption_decision", "entry", entry_id, identity, fields)
        return
    if not sk.startswith("item#"):
        return
    state = item.get("state")
    base = {"entry_id": entry_id, "catalog_item_id": item.get("catalog_item_id"), "task_id": item.get("task_id")}
    if state == "ordered":
        yield AuditFact(
            partner,
            "caption_ordered",
            "entry",
            entry_id,
            (sk, item.get("task_id")),
            {**base, "state": state, "reason": item.get("ordered_via")},
        )
    elif state == "done":
        yield AuditFact(partner, "caption_done", "entry", entry_id, (sk, item.get("task_id")), {**base, "state": state})
    elif state == "claimed" and item.get("taken_over_at") is not None:
        yield AuditFact(
            partner,
            "caption_claim_taken_over",
            "entry",
            entry_id,
            (sk, item.get("taken_over_at")),
            {**base, "state": state},
        )


def _session(partner: int, room_entry_id: str, session_id: str, item: Item) -> AuditFact:
    state = _text(item.get("state"))
    fields = {
        "room_entry_id": room_entry_id,
        "session_id": session_id,
        "state": state,
        "event": item.get("trigger"),
        "reason": item.get("error"),
        "s3_key": item.get("manifest_key") if state == "done" else None,
        "attempt": item.get("no_data_attempts") if state == "waiting_for_data" else None,
    }
    moment = item.get("done_at") if state == "done" else item.get("started_at")
    identity = (room_entry_id, session_id, state, item.get("trigger"), moment, fields["attempt"], fields["reason"])
    return AuditFact(partner, "session_state", "session", session_id, identity, fields)


# failure#<pid> rows: sk = <event kind>#<object id>#<dedupe key>
_FAILURE_SUBJECTS = {
    EventKind.VENDOR_TASK_STATUS.value: "task",
    EventKind.SESSION_ENDED.value: "session",
    EventKind.ENTRY_READY.value: "entry",
}


def _failure(partner: int, sk: str, item: Item) -> AuditFact:
    event_kind, _, rest = sk.partition("#")
    object_id, _, dedupe_key = rest.partition("#")
    subject_type = _FAILURE_SUBJECTS.get(event_kind, "notification")
    subject_id = object_id if subject_type != "notification" else dedupe_key
    return AuditFact(
        partner,
        "permanent_failure",
        subject_type,
        subject_id,
        (sk, item.get("code")),
        {
            "entry_id": item.get("entry_id"),
            "task_id": _int(object_id) if subject_type == "task" else None,
            "session_id": object_id if subject_type == "session" else None,
            "code": item.get("code"),
            "reason": item.get("error"),
            "state": event_kind,
            "event": dedupe_key,
        },
    )


def _weekly(partner: int, week: str, sk: str, item: Item) -> AuditFact:
    state = _text(item.get("state"))
    if sk.startswith("run#"):
        run_week = sk.removeprefix("run#")
        fields: dict[str, Any] = {"state": state, "event": item.get("run_id")}
        return AuditFact(partner, "weekly_run", "run", run_week, (sk, state, item.get("run_id")), fields)
    report = sk.rsplit("#", 1)[-1]
    fields = {"state": state, "reason": report, "code": item.get("error_code") or item.get("error")}
    return AuditFact(partner, "weekly_job", "run", week, (week, sk, state, fields["code"]), fields)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
