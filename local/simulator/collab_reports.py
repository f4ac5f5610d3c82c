"""Chat-and-collaboration reports of the Reports Microservice (``pollsActivity`` & co), from the room sessions.

Kaltura's guides name the reports and their parameters (``entries_ids``, ``virtual_event_ids``, ISO
``from_date_id``/``to_date_id``) and say they need ``virtualeventid:<id>`` in the KS privileges when the room
belongs to a virtual event; the room analytics guide lists the columns of the transcripts and of the moderation
report. The rest (column names of the activity reports, ISO times with milliseconds like a JSON date) is this
simulator's choice, written down here so the product's parser has something concrete to meet.

Rows are a pure function of (simulator seed, session): each session added with ``chat_messages``/``polls`` gets
that many group chat messages and polls, a few moderator threads, per-user activity and moderation counters. Some
rows fall outside the session on purpose (lobby chat before it starts, a late poll answer and a thank-you after it
ends), and the texts contain what a CSV consumer must cope with: commas, quotes, line breaks and formula prefixes.
The dates select sessions by their start day; the dates carry no zone, so a day is matched with a day of slack on
each side (the product cuts rows to its session window anyway). Bodies are RFC 4180 CSV (quoted where needed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .state import Attendee, RoomSession
from .synth import mix64, seed_of, unit

if TYPE_CHECKING:
    from .core import SimulatorCore

POLLS_ACTIVITY = "pollsActivity"
CHAT_USER_ACTIVITY = "chatUserActivity"
CHAT_MODERATION = "chatModeration"
GROUP_CHAT_TRANSCRIPTS = "groupChatTranscripts"
MODERATOR_TRANSCRIPTS = "moderatorTranscripts"
PRIVATE_TRANSCRIPTS = "privateTranscripts"

COLUMNS: dict[str, tuple[str, ...]] = {
    GROUP_CHAT_TRANSCRIPTS: (
        "userId",
        "userFirstName",
        "userLastName",
        "userEmail",
        "userRole",
        "messageId",
        "sentAt",
        "message",
        "repliedToMessageId",
        "likes",
        "isDeleted",
        "subContext",
        "contextId",
    ),
    MODERATOR_TRANSCRIPTS: (
        "threadId",
        "userId",
        "userFirstName",
        "userLastName",
        "userEmail",
        "userRole",
        "messageId",
        "sentAt",
        "message",
        "isModerator",
        "threadStatus",
        "contextId",
    ),
    CHAT_MODERATION: (
        "contextId",
        "contextName",
        "lastActivityAt",
        "pendingThreads",
        "ownedThreads",
        "resolvedThreads",
        "doneThreads",
        "userMessages",
        "moderatorMessages",
        "moderatorsOwningResolvedThreads",
        "moderatorsOwningUnresolvedThreads",
    ),
    CHAT_USER_ACTIVITY: (
        "userId",
        "userFirstName",
        "userLastName",
        "userEmail",
        "userRole",
        "contextId",
        "messagesSent",
        "repliesSent",
        "likesReceived",
        "firstMessageAt",
        "lastMessageAt",
    ),
    POLLS_ACTIVITY: (
        "pollId",
        "question",
        "pollType",
        "userId",
        "userFirstName",
        "userLastName",
        "userEmail",
        "answer",
        "answeredAt",
        "contextId",
    ),
    PRIVATE_TRANSCRIPTS: ("userId", "recipientId", "messageId", "sentAt", "message", "contextId"),
}
REPORT_NAMES = frozenset(COLUMNS)

_MESSAGES = (
    "Hello everyone, glad to be here",
    "Can you share the slides?",
    '=HYPERLINK("http://evil.example","click me")',
    'She said "ship it", so we did',
    "+1 to that",
    "Two lines:\nfirst, then second",
    "@host is the recording on?",
    "Très bien — merci ✓",
    "-5 degrees outside today",
    "Where do I find the breakout rooms?",
)
_LOBBY_MESSAGE = "Is this the right room? Waiting for the start"
_AFTER_MESSAGE = "Thanks all, see you next week"
_QUESTIONS = (
    ("How useful was this session?", "Rating scale", ("5", "4", "3", "2", "1")),
    ("Which topic next, part 2?", "Poll", ("Security, again", "Budget", "=SUM(A1:A9)", 'The "roadmap"')),
    ("Did you read the pre-work?", "Poll", ("Yes", "No", "Partly")),
)
_MODERATOR_QUESTIONS = ("Can I get the recording?", "My audio drops, help", "Is there a certificate, please?")
_LOBBY_SECONDS = 600
_LATE_SECONDS = 900


@dataclass(frozen=True, slots=True)
class CollabQuery:
    """What a generate request asks for: rooms, virtual events and the day range (inclusive)."""

    entry_ids: frozenset[str] | None
    virtual_event_ids: frozenset[str] | None
    from_day: date | None
    to_day: date | None

    def matches(self, session: RoomSession) -> bool:
        """Whether ``session`` (a main-room session) is in this query."""
        if session.parent_entry_id is not None:
            return False
        if self.entry_ids is not None and session.room_entry_id not in self.entry_ids:
            return False
        if self.virtual_event_ids is not None and session.virtual_event_id not in self.virtual_event_ids:
            return False
        day = datetime.fromtimestamp(session.start, tz=UTC).date()
        slack = timedelta(days=1)
        if self.from_day is not None and day < self.from_day - slack:
            return False
        return self.to_day is None or day <= self.to_day + slack


class CollabParameterError(ValueError):
    """A parameter the service would refuse (a bad date)."""


def parse_query(parameters: Mapping[str, Any]) -> CollabQuery:
    """The query of ``reportParameters``; raises :class:`CollabParameterError` for a malformed date."""

    def ids(name: str) -> frozenset[str] | None:
        value = parameters.get(name)
        if value is None:
            return None
        items = value if isinstance(value, list) else str(value).split(",")
        found = frozenset(str(item).strip() for item in items if str(item).strip())
        return found or None

    def day(name: str) -> date | None:
        value = parameters.get(name)
        if value in (None, ""):
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise CollabParameterError(f"{name} must be an ISO date like 2025-09-15") from None

    return CollabQuery(ids("entries_ids"), ids("virtual_event_ids"), day("from_date_id"), day("to_date_id"))


def sessions_of(core: SimulatorCore, partner_id: int, query: CollabQuery) -> list[RoomSession]:
    """The partner's main-room sessions a query selects, by start time."""
    with core.state.lock:
        sessions = [s for s in core.state.room_sessions.values() if s.partner_id == partner_id and query.matches(s)]
    return sorted(sessions, key=lambda s: (s.start, s.cue_point_id))


def required_virtual_events(sessions: Iterable[RoomSession]) -> set[str]:
    """The virtual events whose ``virtualeventid:<id>`` KS privilege a C&C report over ``sessions`` needs."""
    return {s.virtual_event_id for s in sessions if s.virtual_event_id}


def report_csv(core: SimulatorCore, report_name: str, sessions: Sequence[RoomSession]) -> bytes:
    """The whole report body: UTF-8 BOM, header, rows of every session (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = COLUMNS[report_name]
    writer.writerow(columns)
    for session in sessions:
        for row in _rows(core.seed, report_name, session):
            writer.writerow([_cell(row.get(column)) for column in columns])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


# ------------------------------------------------------------------------------------------- per-session rows


@dataclass(frozen=True, slots=True)
class _Message:
    message_id: str
    sender: Attendee
    sent_at: int
    text: str
    replied_to: str
    likes: int
    deleted: bool
    sub_context: str


def _rows(seed: int, report_name: str, session: RoomSession) -> Iterator[dict[str, object]]:
    if report_name == GROUP_CHAT_TRANSCRIPTS:
        yield from (_message_row(session, message) for message in _chat(seed, session))
    elif report_name == CHAT_USER_ACTIVITY:
        yield from _user_activity(seed, session)
    elif report_name == MODERATOR_TRANSCRIPTS:
        yield from _moderator_rows(seed, session)
    elif report_name == CHAT_MODERATION:
        yield from _moderation_rows(seed, session)
    elif report_name == POLLS_ACTIVITY:
        yield from _poll_rows(seed, session)


def _chatters(session: RoomSession) -> list[Attendee]:
    """About two thirds of the attendees chat (the host always)."""
    people = session.attendees
    return [person for index, person in enumerate(people) if index % 3 != 2]


def _chat(seed: int, session: RoomSession) -> list[_Message]:
    if session.chat_messages <= 0 or not session.attendees:
        return []
    base = seed_of(seed, session.cue_point_id, "chat")
    chatters = _chatters(session)
    span = max(1, session.end - session.start - 120)
    messages = [
        # Lobby chat before the session starts, in the same room on the same day.
        _Message(
            f"msg-{session.cue_point_id}-lobby",
            chatters[-1],
            session.start - _LOBBY_SECONDS,
            _LOBBY_MESSAGE,
            "",
            0,
            False,
            "main",
        ),
    ]
    for index in range(session.chat_messages):
        value = mix64(base ^ index)
        sender = chatters[index % len(chatters)]
        replied = messages[-1].message_id if index and value % 4 == 0 else ""
        messages.append(
            _Message(
                message_id=f"msg-{session.cue_point_id}-{index:04d}",
                sender=sender,
                sent_at=session.start + 60 + span * index // session.chat_messages,
                text=_MESSAGES[index % len(_MESSAGES)],
                replied_to=replied,
                likes=unit(value, 16, 4),
                deleted=value % 17 == 0,
                sub_context="breakout" if session.breakouts and value % 5 == 0 else "main",
            )
        )
    messages.append(
        _Message(
            f"msg-{session.cue_point_id}-after",
            chatters[0],
            session.end + _LATE_SECONDS,
            _AFTER_MESSAGE,
            "",
            1,
            False,
            "main",
        )
    )
    return messages


def _person(person: Attendee) -> dict[str, object]:
    first, _, last = person.name.partition(" ")
    return {
        "userId": person.user_id,
        "userFirstName": first,
        "userLastName": last,
        "userEmail": person.email,
        "userRole": person.user_type,
    }


def _message_row(session: RoomSession, message: _Message) -> dict[str, object]:
    return _person(message.sender) | {
        "messageId": message.message_id,
        "sentAt": iso_ms(message.sent_at),
        "message": message.text,
        "repliedToMessageId": message.replied_to,
        "likes": message.likes,
        "isDeleted": message.deleted,
        "subContext": message.sub_context,
        "contextId": session.room_entry_id,
    }


def _user_activity(seed: int, session: RoomSession) -> Iterator[dict[str, object]]:
    """One row per user and chat period: the lobby and the after-session messages count as their own periods
    (their ``lastMessageAt`` lies outside the session)."""
    inside = [m for m in _chat(seed, session) if session.start <= m.sent_at <= session.end]
    outside = [m for m in _chat(seed, session) if not session.start <= m.sent_at <= session.end]
    for group in (inside, *([m] for m in outside)):
        by_user: dict[str, list[_Message]] = {}
        for message in group:
            by_user.setdefault(message.sender.user_id, []).append(message)
        for sent in by_user.values():
            yield _person(sent[0].sender) | {
                "contextId": session.room_entry_id,
                "messagesSent": len(sent),
                "repliesSent": sum(1 for m in sent if m.replied_to),
                "likesReceived": sum(m.likes for m in sent),
                "firstMessageAt": iso_ms(min(m.sent_at for m in sent)),
                "lastMessageAt": iso_ms(max(m.sent_at for m in sent)),
            }


def _threads(seed: int, session: RoomSession) -> list[tuple[str, Attendee, int, str, str]]:
    """(thread id, asker, asked at, question, status) of the moderator threads."""
    if session.chat_messages <= 0 or len(session.attendees) < 2:
        return []
    base = seed_of(seed, session.cue_point_id, "moderation")
    count = max(1, session.chat_messages // 8)
    statuses = ("resolved", "pending", "done", "owned")
    threads = []
    for index in range(count):
        asker = session.attendees[1 + index % (len(session.attendees) - 1)]
        asked_at = session.start + 120 + (session.end - session.start - 240) * index // count
        question = _MODERATOR_QUESTIONS[mix64(base ^ index) % len(_MODERATOR_QUESTIONS)]
        threads.append((f"thread-{session.cue_point_id}-{index}", asker, asked_at, question, statuses[index % 4]))
    return threads


def _moderator(session: RoomSession) -> Attendee:
    return session.attendees[0]


def _moderator_rows(seed: int, session: RoomSession) -> Iterator[dict[str, object]]:
    moderator = _moderator(session)
    for thread_id, asker, asked_at, question, status in _threads(seed, session):
        yield _person(asker) | {
            "threadId": thread_id,
            "messageId": f"{thread_id}-q",
            "sentAt": iso_ms(asked_at),
            "message": question,
            "isModerator": False,
            "threadStatus": status,
            "contextId": session.room_entry_id,
        }
        if status != "pending":
            yield _person(moderator) | {
                "threadId": thread_id,
                "messageId": f"{thread_id}-a",
                "sentAt": iso_ms(asked_at + 45),
                "message": "Thanks, on it: see the resources tab, or reply here",
                "isModerator": True,
                "threadStatus": status,
                "contextId": session.room_entry_id,
            }


def _moderation_rows(seed: int, session: RoomSession) -> Iterator[dict[str, object]]:
    threads = _threads(seed, session)
    if not threads:
        return
    room_name = f"Room {session.name}"
    statuses = [thread[4] for thread in threads]
    moderator = _moderator(session).name
    unresolved = sum(1 for status in statuses if status in ("pending", "owned"))
    yield {
        "contextId": session.room_entry_id,
        "contextName": room_name,
        "lastActivityAt": iso_ms(max(thread[2] for thread in threads) + 45),
        "pendingThreads": statuses.count("pending"),
        "ownedThreads": statuses.count("owned"),
        "resolvedThreads": statuses.count("resolved"),
        "doneThreads": statuses.count("done"),
        "userMessages": len(threads),
        "moderatorMessages": len(threads) - statuses.count("pending"),
        "moderatorsOwningResolvedThreads": f"{moderator}, Co-host" if len(threads) > statuses.count("pending") else "",
        "moderatorsOwningUnresolvedThreads": moderator if unresolved else "",
    }
    # The lobby's own moderation context, last active before the session started.
    yield {
        "contextId": session.room_entry_id,
        "contextName": f"{room_name} (lobby)",
        "lastActivityAt": iso_ms(session.start - _LOBBY_SECONDS),
        "pendingThreads": 1,
        "ownedThreads": 0,
        "resolvedThreads": 0,
        "doneThreads": 0,
        "userMessages": 1,
        "moderatorMessages": 0,
        "moderatorsOwningResolvedThreads": "",
        "moderatorsOwningUnresolvedThreads": "",
    }


def _poll_rows(seed: int, session: RoomSession) -> Iterator[dict[str, object]]:
    if session.polls <= 0 or not session.attendees:
        return
    base = seed_of(seed, session.cue_point_id, "polls")
    span = max(1, session.end - session.start - 300)
    for poll in range(session.polls):
        question, kind, answers = _QUESTIONS[poll % len(_QUESTIONS)]
        poll_id = f"poll-{session.cue_point_id}-{poll}"
        opened = session.start + 120 + span * poll // session.polls
        for index, person in enumerate(session.attendees):
            value = mix64(base ^ (poll * 1000 + index))
            if value % 4 == 0:
                continue  # about a quarter do not answer
            yield _person(person) | {
                "pollId": poll_id,
                "question": question,
                "pollType": kind,
                "answer": answers[(value >> 8) % len(answers)],
                "answeredAt": iso_ms(opened + unit(value, 16, 90)),
                "contextId": session.room_entry_id,
            }
        if poll == 0:
            late = session.attendees[-1]
            yield _person(late) | {
                "pollId": poll_id,
                "question": question,
                "pollType": kind,
                "answer": answers[0],
                "answeredAt": iso_ms(session.end + _LATE_SECONDS),
                "contextId": session.room_entry_id,
            }


def iso_ms(moment: int) -> str:
    """A unix time as a JSON date string (``2025-09-15T10:03:12.000Z``)."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
