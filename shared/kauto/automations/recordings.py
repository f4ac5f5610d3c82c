"""Meeting recordings as a trigger for session reports: a recording (adminTag ``kalturameeting``,
docs/kaltura.md#room-session-end) became ready; the session it recorded is looked up in report 6000 (see
:func:`match_recording_session`) and pulled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kauto.automations.room_reports import MAX_SESSION_SECONDS, read_session_rows
from kauto.automations.session_events import RoomSession, has_admin_tag, session_ended_event
from kauto.automations.sessions import SessionPullOutcome, SessionPullStatus, counted, pull_session_reports
from kauto.automations.telemetry import logger

if TYPE_CHECKING:
    from kauto.automations.deps import AutomationDeps
    from kauto.kaltura import KalturaClient
    from kauto.kaltura.types import Entry
    from kauto.models import KalturaEvent

RECORDING_MIN_COVERAGE = 0.5
"""Share of a recording's time a session must cover to be the session it recorded."""

MAX_ROOMS_TO_CHECK = 10
"""Candidate rooms read with ``baseEntry.get`` to find the one whose ``recordedEntryId`` is the recording."""

RECORDING_LEDGER_TTL_SECONDS = 35 * 86400


def handle_meeting_recording_ready(event: KalturaEvent, entry: Entry, deps: AutomationDeps) -> SessionPullOutcome:
    """Pull the reports of the session a meeting recording ``entry`` (already re-read through the API) recorded.

    The session is found with :func:`match_recording_session`; the decision is recorded in the ledger
    (``pk=recording#<pid>#<entry id>``, ``sk=session``). A recording whose session cannot be identified is left to
    the sweep, which finds every ended session in report 6000.
    """
    rules = deps.config.partner(event.partner_id).session_reports
    if not (rules.enabled and rules.trigger_on_meeting_recordings):
        outcome = SessionPullOutcome(SessionPullStatus.DISABLED, detail="meeting recording trigger is disabled")
        return counted(outcome, "recording")
    if not has_admin_tag(entry.admin_tags, rules.meeting_admin_tag):
        outcome = SessionPullOutcome(SessionPullStatus.NOT_MATCHED, detail="entry is not a meeting recording")
        return counted(outcome, "recording")
    client = deps.kaltura(event.partner_id)
    decided_at = int(deps.clock())
    match = match_recording_session(
        client, entry, partner_id=event.partner_id, padding_seconds=rules.window_padding_seconds, now=decided_at
    )
    pk, sk = f"recording#{event.partner_id}#{entry.id}", "session"
    decision: dict[str, Any] = {"outcome": match.reason, "candidates": match.candidates, "decided_at": decided_at}
    session = match.session
    if session is not None:
        decision |= {
            "room_entry_id": session.room_entry_id,
            "session_id": session.session_id,
            "coverage": round(match.coverage, 4),
        }
    deps.ledger.put(pk, sk, decision, ttl_seconds=RECORDING_LEDGER_TTL_SECONDS)
    if session is None:
        logger.info("meeting recording not matched to a session", extra={"entry_id": entry.id, "reason": match.reason})
        return counted(SessionPullOutcome(SessionPullStatus.NOT_MATCHED, detail=match.reason), "recording")
    # From here on it is the session's own event: deferred or re-sent as such, never as the recording's entry_ready.
    key = f"recording:{event.partner_id}:{entry.id}:{session.room_entry_id}:{session.session_id}"
    return pull_session_reports(session_ended_event(session, dedupe_key=key, received_at=decided_at), deps)


@dataclass(frozen=True, slots=True)
class RecordingMatch:
    """The session a recording belongs to (``session`` None when not identified). ``reason`` says how it was chosen
    (``only_room``, ``root_entry_id``, ``recorded_entry_id``) or why not (``no_session_in_report``,
    ``ambiguous_rooms``, ``recording_without_created_at``)."""

    session: RoomSession | None
    reason: str
    coverage: float = 0.0
    candidates: int = 0


def match_recording_session(
    client: KalturaClient, recording: Entry, *, partner_id: int, padding_seconds: int, now: int
) -> RecordingMatch:
    """Find the room session a meeting recording recorded. Heuristic, since Kaltura links neither way reliably:

    1. The recording spans ``duration`` seconds either before or after its ``createdAt`` (KME may create the entry
       when recording starts or when it uploads it); a span ending after ``now`` is impossible for a ready
       recording. Report 6000 is read around the spans, reaching :data:`MAX_SESSION_SECONDS` further back because
       it selects sessions by start time.
    2. Candidates are main-room sessions with an end time covering at least half of one of the spans (the session
       padded by ``padding_seconds``); without a known duration, sessions whose padded time contains ``createdAt``.
    3. The room is narrowed by the recording's ``rootEntryId`` when it names another entry, else, when candidates
       are in several rooms, by reading those rooms (at most :data:`MAX_ROOMS_TO_CHECK`) and keeping the one whose
       ``recordedEntryId`` is the recording.
    4. The best-covering session of the one remaining room wins; candidates still in several rooms are ambiguous.

    Limits: concurrent sessions in several rooms cannot be told apart without one of the room links; a recording
    made over less than half of its session's span, or sessions report 6000 does not list yet, are not matched.
    The sweep still finds those sessions in report 6000 once they are listed.
    """
    created = recording.created_at
    if created is None:
        return RecordingMatch(None, "recording_without_created_at")
    duration = recording.duration or ((recording.ms_duration or 0) // 1000)
    spans = [(created - duration, created)]
    if created + duration <= now:
        spans.append((created, created + duration))
    from_date = created - duration - padding_seconds - MAX_SESSION_SECONDS
    to_date = created + duration + padding_seconds
    scored: list[tuple[float, RoomSession]] = []
    for row in read_session_rows(client, from_date, to_date):
        if row.parent_entry_id or row.start is None or row.end is None or row.end < row.start:
            continue
        low, high = row.start - padding_seconds, row.end + padding_seconds
        if duration > 0:
            coverage = max(_overlap((low, high), span) / duration for span in spans)
        else:
            coverage = 1.0 if low <= created <= high else 0.0
        if coverage >= RECORDING_MIN_COVERAGE:
            scored.append((coverage, RoomSession(partner_id, row.room_entry_id, row.session_id, row.start, row.end)))
    if not scored:
        return RecordingMatch(None, "no_session_in_report")
    rooms = {session.room_entry_id for _, session in scored}
    reason = "only_room"
    hint = recording.root_entry_id if recording.root_entry_id and recording.root_entry_id != recording.id else None
    if hint is not None and hint in rooms:
        rooms, reason = {hint}, "root_entry_id"
    elif 1 < len(rooms) <= MAX_ROOMS_TO_CHECK:
        recorded_in = {
            room for room in sorted(rooms) if client.entries.get(room).raw.get("recordedEntryId") == recording.id
        }
        if len(recorded_in) == 1:
            rooms, reason = recorded_in, "recorded_entry_id"
    if len(rooms) != 1:
        return RecordingMatch(None, "ambiguous_rooms", candidates=len(scored))
    (room,) = rooms
    coverage, best = max(
        ((coverage, session) for coverage, session in scored if session.room_entry_id == room),
        key=lambda item: (item[0], item[1].end),
    )
    return RecordingMatch(best, reason, coverage, len(scored))


def _overlap(first: tuple[int, int], second: tuple[int, int]) -> int:
    return max(0, min(first[1], second[1]) - max(first[0], second[0]))
