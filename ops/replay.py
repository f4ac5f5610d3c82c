"""``kauto-ops replay entry|task|session ID --partner PID``: send the event that makes the automation look again.

What is sent is what the sweep would send: an ``entry_ready`` (the worker re-reads the entry and decides), a
``vendor_task_status`` without fields (the worker reads the task from REACH), or a ``session_ended`` with the
session's window from its ledger row. The paths are idempotent: nothing is ordered twice, a session writes the same
keys. A caption decision that is final for the entry's current version stays as it is (a replay after a permanent
failure or a credit refusal decides; one after a rule skip repeats the skip). The replay is recorded in the audit
trail (``kind`` ``replay``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from kauto.automations.session_events import RoomSession, session_ended_event
from kauto.aws.audit import AuditFact
from kauto.aws.clients import dynamodb_client, s3_client
from kauto.aws.ledger import DynamoLedger
from kauto.aws.queue import SqsEventQueue
from kauto.models import EventKind, KalturaEvent
from kauto_ops.stack import OpsError
from kauto_ops.stack_options import Stack, add_stack_option, positive_int
from kauto_ops.trail import record_operator_facts

SUBJECTS = ("entry", "task", "session")


def register(commands: Any) -> None:
    """Add ``replay`` to the ``kauto-ops`` subcommands."""
    parser = commands.add_parser(
        "replay",
        help="send the event that makes the automation handle an entry, REACH task or room session again",
        description=(
            "Enqueue an entry_ready, vendor_task_status or session_ended event for one object, as the sweep would. "
            "Idempotent: nothing is ordered twice. Recorded in the audit trail."
        ),
    )
    parser.add_argument("subject", choices=SUBJECTS)
    parser.add_argument("id", metavar="ID", help="entry id, task id or session (cue point) id")
    parser.add_argument("--partner", required=True, type=positive_int, metavar="PID", help="Kaltura partner id")
    parser.add_argument("--room", metavar="ENTRY_ID", help="the room entry id of a session (required for sessions)")
    add_stack_option(parser)
    parser.set_defaults(command=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """The ``replay`` command."""
    stack = Stack(args.stack)
    now = int(time.time())
    event = build_event(args.subject, args.id, args.partner, args.room, now, stack)
    message_id = SqsEventQueue(stack.resource("EventsQueue")).send(event)
    fact = AuditFact(
        args.partner,
        "replay",
        args.subject,
        args.id,
        (event.dedupe_key,),
        {"event": event.dedupe_key, "reason": f"kauto-ops replay {args.subject}", "state": event.kind.value},
    )
    record_operator_facts(s3_client(), stack.resource("ReportsBucket"), [fact], "replay")
    out.write(
        f"sent {event.kind.value} for {args.subject} {args.id} (event {event.dedupe_key}, message {message_id})\n"
    )
    out.write(f"follow it: kauto-ops explain {args.subject} {args.id} --partner {args.partner}\n")
    return 0


def build_event(subject: str, object_id: str, partner: int, room: str | None, now: int, stack: Stack) -> KalturaEvent:
    """The event that replays ``subject`` ``object_id``."""
    key = f"replay:{subject}:{partner}:{object_id}:{now}"
    if subject == "entry":
        return KalturaEvent.sweep(
            EventKind.ENTRY_READY,
            partner_id=partner,
            dedupe_key=key,
            object_type="KalturaMediaEntry",
            object_id=object_id,
            entry_id=object_id,
            received_at=now,
        )
    if subject == "task":
        if not object_id.isdigit():
            raise OpsError(f"a task id is a number, not {object_id!r}")
        return KalturaEvent.sweep(
            EventKind.VENDOR_TASK_STATUS,
            partner_id=partner,
            dedupe_key=key,
            object_type="KalturaEntryVendorTask",
            object_id=object_id,
            entry_id=None,
            received_at=now,
        )
    if not room:
        raise OpsError("a session replay needs --room ENTRY_ID (kauto-ops explain session ID shows it)")
    ledger = DynamoLedger(dynamodb_client(), stack.resource("LedgerTable"))
    row = ledger.get(f"session#{partner}#{room}", object_id)
    start, end = (row or {}).get("session_start"), (row or {}).get("session_end")
    if not isinstance(start, int) or not isinstance(end, int):
        raise OpsError(
            f"no ledger row with the window of session {object_id} of room {room}: pull its day with "
            "kauto-ops sessions --partner PID --from YYYY-MM-DD --to YYYY-MM-DD --stack NAME"
        )
    return session_ended_event(RoomSession(partner, room, object_id, start, end), dedupe_key=key, received_at=now)
