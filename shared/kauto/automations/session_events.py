"""Room sessions as events: the :class:`RoomSession` a ``session_ended`` event names, and the events the
automations build for a session (the sweep, a matched meeting recording).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kauto.automations.errors import MalformedEventError
from kauto.automations.thresholds import SessionKey
from kauto.models import EventKind, FieldValue, KalturaEvent

SESSION_OBJECT_TYPE = "KalturaSessionCuePoint"

MAX_FUTURE_END_SECONDS = 86400
"""A session ending further in the future than this is a malformed event, not one to wait for."""

RETRY_REPORTS_FIELD = "retryReports"
"""Set by the sweep on a session whose reports failed: the claim of a done session is taken to retry them."""


class SessionEventError(MalformedEventError):
    """A ``session_ended`` event lacks what identifies the session or its time window; retrying cannot help."""


@dataclass(frozen=True, slots=True)
class RoomSession:
    """One ended Kaltura Room session: the room entry, the session cue point id and its window (unix seconds)."""

    partner_id: int
    room_entry_id: str
    session_id: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.room_entry_id or not self.session_id:
            raise SessionEventError("entryId", "a session needs a room entry id and a session id")
        if self.end < self.start:
            raise SessionEventError("endTime", f"session {self.session_id} ends before it starts")

    @property
    def key(self) -> SessionKey:
        """The (partner, room, session) identity."""
        return SessionKey(self.partner_id, self.room_entry_id, self.session_id)


def session_ended_event(
    session: RoomSession, *, dedupe_key: str, received_at: int, retry_reports: bool = False
) -> KalturaEvent:
    """A ``session_ended`` event for ``session`` built by the automations (the sweep, a matched recording), with
    the fields :func:`session_from_event` reads (times in unix seconds)."""
    fields: dict[str, FieldValue] = {
        "id": session.session_id,
        "cuePointId": session.session_id,
        "entryId": session.room_entry_id,
        "startTime": session.start,
        "endTime": session.end,
    }
    if retry_reports:
        fields[RETRY_REPORTS_FIELD] = 1
    return KalturaEvent.sweep(
        EventKind.SESSION_ENDED,
        partner_id=session.partner_id,
        dedupe_key=dedupe_key,
        object_type=SESSION_OBJECT_TYPE,
        object_id=session.session_id,
        entry_id=session.room_entry_id,
        received_at=received_at,
        fields=fields,
    )


def session_from_event(event: KalturaEvent) -> RoomSession:
    """The session a ``session_ended`` event names, its times normalized to unix seconds.

    Fields: ``entryId`` (room), ``cuePointId`` or ``id`` (session), ``startTime``/``endTime``. The sweep sends unix
    seconds. A session cue point sends ``startTime``/``endTime``/``duration`` in milliseconds
    (docs/kaltura.md#room-session-end), as
    offsets on the room's timeline: those are anchored at the cue point's ``triggeredAt`` or ``createdAt`` (when
    the session cue point was created, i.e. when the session started). Values of 10^11 and more are unix
    milliseconds, values from 10^9 unix seconds, smaller ones millisecond offsets.
    """
    fields = event.fields
    room = _text(fields.get("entryId")) or event.entry_id
    session_id = _text(fields.get("cuePointId")) or _text(fields.get("id")) or event.object_id
    if not room or not session_id:
        raise SessionEventError("entryId", "session_ended event without entryId or session id")
    anchor = _number(fields.get("triggeredAt")) or _number(fields.get("createdAt"))
    start_raw, end_raw = _number(fields.get("startTime")), _number(fields.get("endTime"))
    duration_ms = _number(fields.get("duration"))
    start = _absolute(start_raw, anchor) if start_raw is not None else anchor
    if start is None:
        raise SessionEventError(
            "startTime", f"session {session_id}: no start time (startTime, triggeredAt or createdAt)"
        )
    if end_raw is not None:
        end = _absolute(end_raw, anchor)
    elif duration_ms is not None:
        end = start + duration_ms // 1000
    else:
        end = None
    if end is None:
        raise SessionEventError("endTime", f"session {session_id}: no end time")
    return RoomSession(event.partner_id, room, session_id, start, end)


def has_admin_tag(admin_tags: str | None, tag: str) -> bool:
    """Whether the comma-separated ``admin_tags`` contain ``tag`` (case-insensitive)."""
    wanted = tag.strip().lower()
    return any(part.strip().lower() == wanted for part in (admin_tags or "").split(","))


_UNIX_MILLISECONDS_FROM = 10**11

_UNIX_SECONDS_FROM = 10**9


def _absolute(value: int, anchor: int | None) -> int | None:
    if value >= _UNIX_MILLISECONDS_FROM:
        return value // 1000
    if value >= _UNIX_SECONDS_FROM:
        return value
    return None if anchor is None else anchor + value // 1000


def _number(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return as_int(str(value))


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def as_int(raw: str | None) -> int | None:
    """``raw`` as an int (a float is truncated); None when empty or not a finite number."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        return int(float(text)) if text else None
    except (ValueError, OverflowError):  # not a number, NaN or infinity
        return None


def log_ids(session: RoomSession) -> dict[str, Any]:
    """The ids a log line about ``session`` carries (never names)."""
    return {
        "partner_id": session.partner_id,
        "entry_id": session.room_entry_id,
        "session_id": session.session_id,
    }
