"""Backfill of room session report pulls: the sessions report 6000 lists over a past window, sent to the worker.

The same path as the sweep's ``sessions`` part (:mod:`kauto.automations.sweep`): report 6000 is read over the
window (reaching :data:`~kauto.automations.room_reports.MAX_SESSION_SECONDS` further back, since it selects sessions by
start time), every main-room session that *ended* inside the window becomes a ``session_ended`` event, and the worker
pulls its reports once: a session whose ledger row is ``done`` is not pulled again, whoever asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from kauto.automations.room_reports import MAX_SESSION_SECONDS, SessionRow, read_session_rows
from kauto.automations.session_events import RoomSession, session_ended_event
from kauto.automations.sessions import STATE_DONE as SESSION_DONE
from kauto.automations.sessions import session_ledger_key
from kauto.aws.ledger import STATE_ATTRIBUTE, Ledger

if TYPE_CHECKING:
    from kauto.automations.deps import EventSink
    from kauto.kaltura import KalturaClient


class SessionAction(StrEnum):
    """What the backfill did (or would do) with one session."""

    ENQUEUED = "enqueued"
    WOULD_ENQUEUE = "would enqueue"
    ALREADY_PULLED = "already pulled"


@dataclass(frozen=True, slots=True)
class SessionBackfillItem:
    """One session found in the window and what happened to it."""

    session: RoomSession
    action: SessionAction


def ended_sessions(rows: Iterable[SessionRow], partner_id: int, since: int, until: int) -> list[RoomSession]:
    """Main-room sessions (no parent entry) with both times that ended in ``[since, until)``, by end time."""
    found = {
        (row.room_entry_id, row.session_id): RoomSession(
            partner_id, row.room_entry_id, row.session_id, row.start, row.end
        )
        for row in rows
        if not row.parent_entry_id
        and row.start is not None
        and row.end is not None
        and row.start <= row.end
        and since <= row.end < until
    }
    return sorted(found.values(), key=lambda s: (s.end, s.room_entry_id, s.session_id))


def backfill_sessions(
    client: KalturaClient,
    partner_id: int,
    since: int,
    until: int,
    *,
    events: EventSink,
    ledger: Ledger | None,
    now: int,
    dry_run: bool,
) -> list[SessionBackfillItem]:
    """Send a ``session_ended`` event for every session that ended in ``[since, until)`` and is not pulled yet.

    ``ledger`` (optional) skips sessions already pulled; without it every session is sent and the worker skips the
    done ones. Dedupe keys are ``backfill:session:<pid>:<room>:<session>``.
    """
    rows = read_session_rows(client, since - MAX_SESSION_SECONDS, until)
    items = []
    for session in ended_sessions(rows, partner_id, since, until):
        if ledger is not None:
            row = ledger.get(*session_ledger_key(partner_id, session.room_entry_id, session.session_id))
            if row is not None and row.get(STATE_ATTRIBUTE) == SESSION_DONE:
                items.append(SessionBackfillItem(session, SessionAction.ALREADY_PULLED))
                continue
        if dry_run:
            items.append(SessionBackfillItem(session, SessionAction.WOULD_ENQUEUE))
            continue
        key = f"backfill:session:{partner_id}:{session.room_entry_id}:{session.session_id}"
        events.send(session_ended_event(session, dedupe_key=key, received_at=now))
        items.append(SessionBackfillItem(session, SessionAction.ENQUEUED))
    return items
