"""A room session's summary page, from the CSVs the session pull wrote (read back from the bucket).

It mirrors Kaltura's room analytics dashboard: session times and host, unique attendees, average minutes viewed,
average engagement, the shares of attendees who chatted and answered polls, the attendee table sorted by
engagement, the breakout rooms, the polls with their answer distributions, and links to every CSV of the session.
The same reading gives the participation counts the alerts use (:class:`ParticipationCounts`).

The page is one self-contained HTML file (:mod:`kauto.pages`: inline style and SVG, no script, nothing fetched);
every value is escaped. It shows names, so it lives beside the session's manifest (``<prefix>summary.html``) under
the same prefix and access rules as the attendee CSVs.
"""

from __future__ import annotations

import csv
import posixpath
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from kauto.automations.collab_reports import COLLAB_REPORTS
from kauto.automations.session_events import RoomSession, as_int
from kauto.automations.thresholds import ParticipationCounts
from kauto.aws.manifest import ManifestFile
from kauto.aws.object_store import ObjectStore
from kauto.csvclean import decoded_lines
from kauto.pages.charts import format_number, ranking_chart
from kauto.pages.html import escape, page

SUMMARY_PAGE_NAME = "summary.html"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
MAX_PAGE_ATTENDEES = 500
"""Rows of the attendee table on the page (the most engaged first); the CSV holds them all."""
_FORMULA_GUARD = ("'=", "'+", "'-", "'@", "'\t", "'\r")
_POLLS = COLLAB_REPORTS["pollsActivity"].file_name
_CHAT_ACTIVITY = COLLAB_REPORTS["chatUserActivity"].file_name
_MODERATION = COLLAB_REPORTS["chatModeration"].file_name
_TRANSCRIPT = COLLAB_REPORTS["groupChatTranscripts"].file_name


@dataclass(slots=True)
class AttendeeLine:
    """One row of the attendee table."""

    user_id: str
    name: str
    role: str
    seconds_viewed: int | None
    engagement: float | None
    chat_messages: int = 0
    polls_answered: int = 0


@dataclass(slots=True)
class BreakoutLine:
    """One breakout room of the session."""

    name: str
    start: int | None
    end: int | None
    participants: int | None
    engagement: float | None


@dataclass(slots=True)
class PollLine:
    """One poll: its answers with how many chose each, and its respondents."""

    question: str
    kind: str
    answers: dict[str, int] = field(default_factory=dict)
    respondents: set[str] = field(default_factory=set)


@dataclass(slots=True)
class SessionSummary:
    """What the page shows; the counts are also what the participation alerts use."""

    session: RoomSession
    room_name: str = ""
    host: str = ""
    unique_users: int | None = None
    engagement_rate: float | None = None
    attendees: list[AttendeeLine] = field(default_factory=list)
    breakouts: list[BreakoutLine] = field(default_factory=list)
    polls: dict[str, PollLine] = field(default_factory=dict)
    chatters: set[str] | None = None
    chat_messages: int | None = None
    unresolved_threads: int | None = None
    messages_by_user: dict[str, int] = field(default_factory=dict)
    pulled: set[str] = field(default_factory=set)

    @property
    def attendee_count(self) -> int | None:
        """Unique attendees (report 6001), or report 6000's unique users when 6001 was not pulled."""
        if "attendees" in self.pulled:
            return len({line.user_id for line in self.attendees})
        return self.unique_users

    @property
    def poll_respondents(self) -> set[str] | None:
        """Users who answered at least one poll (None: polls not pulled)."""
        if _POLLS not in self.pulled:
            return None
        return set().union(*(poll.respondents for poll in self.polls.values()))

    def participation(self) -> ParticipationCounts:
        """Counts only, for the alerts."""
        respondents = self.poll_respondents
        return ParticipationCounts(
            attendees=self.attendee_count,
            polls=len(self.polls) if _POLLS in self.pulled else None,
            poll_respondents=None if respondents is None else len(respondents),
            chatters=None if self.chatters is None else len(self.chatters),
            unresolved_threads=self.unresolved_threads,
        )


def summary_page_key(prefix: str) -> str:
    """``<prefix>summary.html``: beside the session's manifest."""
    return f"{prefix}{SUMMARY_PAGE_NAME}"


def read_summary(store: ObjectStore, session: RoomSession, files: Sequence[ManifestFile]) -> SessionSummary:
    """Read the session's CSVs back from the bucket and summarise them (streamed; memory grows with attendees)."""
    summary = SessionSummary(session)
    readers = {
        "room_data": _room_data,
        "attendees": _attendees,
        "breakouts": _breakouts,
        _POLLS: _polls,
        _CHAT_ACTIVITY: _chat_activity,
        _MODERATION: _moderation,
        _TRANSCRIPT: _transcript,
    }
    for entry in files:
        reader = readers.get(entry.report)
        if reader is None:
            continue
        summary.pulled.add(entry.report)
        reader(summary, _records(store.stream_object(entry.key)))
    by_user = {line.user_id: line for line in summary.attendees}
    for line in summary.attendees:
        line.chat_messages = summary.messages_by_user.get(line.user_id, 0)
    for poll in summary.polls.values():
        for user in poll.respondents:
            if user in by_user:
                by_user[user].polls_answered += 1
    summary.attendees.sort(key=lambda line: (-(line.engagement or 0.0), line.name))
    return summary


def _records(chunks: Iterable[bytes]) -> Iterator[dict[str, str]]:
    for row in csv.DictReader(decoded_lines(chunks)):
        yield {key: _shown(value or "") for key, value in row.items() if key is not None}


def _shown(cell: str) -> str:
    """A cleaned cell as a person should read it: the cleaner's formula guard (a leading ``'``) is dropped, since
    the page escapes everything and evaluates nothing."""
    return cell[1:] if cell.startswith(_FORMULA_GUARD) else cell


def _room_data(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    session = summary.session
    for row in rows:
        if row.get("entry_id") == session.room_entry_id and row.get("cue_point_id") == session.session_id:
            summary.room_name = row.get("entry_name", "")
            summary.host = row.get("session_host_user_id", "")
            summary.unique_users = as_int(row.get("meeting_view_period_unique_users"))
            summary.engagement_rate = _ratio(row.get("meeting_engaged_play_time_ratio"))


def _attendees(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    for row in rows:
        summary.attendees.append(
            AttendeeLine(
                user_id=row.get("user_id", ""),
                name=row.get("user_name") or row.get("user_id", ""),
                role=row.get("user_type", ""),
                seconds_viewed=as_int(row.get("meeting_view_time")),
                engagement=_ratio(row.get("meeting_engaged_play_time_ratio")),
            )
        )


def _breakouts(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    for row in rows:
        summary.breakouts.append(
            BreakoutLine(
                name=row.get("breakout_entry_name") or row.get("breakout_entry_id", ""),
                start=as_int(row.get("session_start_time")),
                end=as_int(row.get("session_end_time")),
                participants=as_int(row.get("participant_count")),
                engagement=_ratio(row.get("engagement_rate")),
            )
        )


def _polls(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    for row in rows:
        poll_id = row.get("pollId") or row.get("question", "")
        poll = summary.polls.get(poll_id)
        if poll is None:
            poll = summary.polls[poll_id] = PollLine(row.get("question", ""), row.get("pollType", ""))
        answer = row.get("answer", "")
        poll.answers[answer] = poll.answers.get(answer, 0) + 1
        if row.get("userId"):
            poll.respondents.add(row["userId"])


def _chat_activity(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    chatters: set[str] = set()  # the activity report wins over the transcript
    sent: dict[str, int] = {}
    for row in rows:
        user, messages = row.get("userId", ""), as_int(row.get("messagesSent")) or 0
        if user and messages > 0:
            chatters.add(user)
            sent[user] = sent.get(user, 0) + messages
    summary.chatters = chatters
    summary.chat_messages = sum(sent.values())
    summary.messages_by_user = sent


def _transcript(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    # The transcript counts only when the activity report was not pulled (both give the same people).
    if _CHAT_ACTIVITY in summary.pulled and summary.chatters is not None:
        return
    senders: dict[str, int] = {}
    for row in rows:
        if row.get("userId") and row.get("isDeleted", "").lower() != "true":
            senders[row["userId"]] = senders.get(row["userId"], 0) + 1
    summary.chatters = set(senders)
    summary.chat_messages = sum(senders.values())
    summary.messages_by_user = senders


def _moderation(summary: SessionSummary, rows: Iterator[dict[str, str]]) -> None:
    summary.unresolved_threads = sum(
        (as_int(row.get("pendingThreads")) or 0) + (as_int(row.get("ownedThreads")) or 0) for row in rows
    )


def _ratio(raw: str | None) -> float | None:
    try:
        value = float(raw or "")
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


# ---------------------------------------------------------------------------------------------------- the page


def render_summary_page(
    summary: SessionSummary,
    files: Sequence[ManifestFile],
    *,
    page_key: str,
    time_zone: str,
    generated_at: datetime,
    missing: Mapping[str, str] | None = None,
) -> str:
    """The page; links to ``files`` are relative to ``page_key`` (they work in the bucket's layout copied as is)."""
    session = summary.session
    zone = zoneinfo.ZoneInfo(time_zone)
    title = f"Room session {summary.room_name or session.room_entry_id}"
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(_span(session.start, session.end, zone))} &middot; host '
        f"{escape(summary.host or 'unknown')} &middot; room <code>{escape(session.room_entry_id)}</code>, session "
        f"<code>{escape(session.session_id)}</code></p>",
        _overview(summary),
        _attendee_table(summary),
    ]
    if summary.breakouts:
        parts.append(_breakout_table(summary, zone))
    if summary.polls:
        parts.append(_poll_section(summary))
    parts.append(_file_list(files, page_key, missing or {}))
    parts.append(
        f"<footer>Generated {escape(generated_at.strftime('%Y-%m-%d %H:%M UTC'))} from the CSV files listed above. "
        "It shows names of attendees: share it like the attendee CSV.</footer>"
    )
    return page(title, parts)


def _overview(summary: SessionSummary) -> str:
    attendees = summary.attendee_count
    seconds = [line.seconds_viewed for line in summary.attendees if line.seconds_viewed is not None]
    rates = [line.engagement for line in summary.attendees if line.engagement is not None]
    average_rate = summary.engagement_rate if summary.engagement_rate is not None else _mean(rates)
    respondents = summary.poll_respondents
    rows = [
        ("Unique attendees", _count(attendees)),
        ("Average minutes viewed", format_number(_mean(seconds) / 60) if seconds else "n/a"),
        ("Average engagement", _percent(average_rate)),
        (
            "Attendees who chatted",
            _share(
                None if summary.chatters is None else len(summary.chatters),
                attendees,
                summary.chat_messages,
                "messages",
            ),
        ),
        (
            "Attendees who answered polls",
            _share(None if respondents is None else len(respondents), attendees, len(summary.polls), "polls"),
        ),
    ]
    if summary.unresolved_threads is not None:
        rows.append(("Unresolved moderation threads", _count(summary.unresolved_threads)))
    body = "".join(f'<tr><th>{escape(label)}</th><td class="num">{escape(value)}</td></tr>' for label, value in rows)
    return f'<section id="overview"><h2>Overview</h2><div class="scroll"><table>{body}</table></div></section>'


def _attendee_table(summary: SessionSummary) -> str:
    lines = summary.attendees
    if "attendees" not in summary.pulled:
        return '<section id="attendees"><h2>Attendees</h2><p>Report 6001 (attendees) was not pulled.</p></section>'
    head = (
        '<tr><th>Name</th><th class="wide-only">Role</th><th class=num title="Minutes viewed">Minutes</th>'
        '<th class=num title="Group chat messages sent">Messages</th><th class=num title="Polls answered">Polls</th>'
        '<th class=num title="Live engagement rate">Engagement</th></tr>'
    )
    body = "".join(
        f'<tr><td class="name">{escape(line.name)}</td><td class="wide-only">{escape(line.role)}</td>'
        f'<td class="num">{escape(_minutes(line.seconds_viewed))}</td>'
        f'<td class="num">{line.chat_messages}</td><td class="num">{line.polls_answered}</td>'
        f'<td class="num">{escape(_percent(line.engagement))}</td></tr>'
        for line in lines[:MAX_PAGE_ATTENDEES]
    )
    more = (
        f"<p>{len(lines) - MAX_PAGE_ATTENDEES} more attendees are in the attendees CSV.</p>"
        if len(lines) > MAX_PAGE_ATTENDEES
        else ""
    )
    empty = "<p>Nobody attended.</p>" if not lines else ""
    return (
        f'<section id="attendees"><h2>Attendees ({len(lines)}), most engaged first</h2>{empty}'
        f'<div class="scroll"><table>{head}{body}</table></div>{more}</section>'
    )


def _breakout_table(summary: SessionSummary, zone: zoneinfo.ZoneInfo) -> str:
    head = "<tr><th>Breakout room</th><th>Time</th><th class=num>Participants</th><th class=num>Engagement</th></tr>"
    body = "".join(
        f'<tr><td class="name">{escape(line.name)}</td><td>{escape(_span(line.start, line.end, zone))}</td>'
        f'<td class="num">{escape(_count(line.participants))}</td>'
        f'<td class="num">{escape(_percent(line.engagement))}</td></tr>'
        for line in summary.breakouts
    )
    title = f"Breakout rooms ({len(summary.breakouts)})"
    return f'<section id="breakouts"><h2>{title}</h2><div class="scroll"><table>{head}{body}</table></div></section>'


def _poll_section(summary: SessionSummary) -> str:
    parts = [f'<section id="polls"><h2>Polls ({len(summary.polls)})</h2>']
    for poll in summary.polls.values():
        items = sorted(poll.answers.items(), key=lambda item: (-item[1], item[0]))
        respondents = len(poll.respondents)
        parts.append(
            f"<h3>{escape(poll.question)}</h3><p class=meta>{escape(poll.kind)} &middot; {respondents} unique "
            "participants</p>"
        )
        chart_items = [(answer, float(count)) for answer, count in items]
        parts.append(ranking_chart("Answers (unique participants)", chart_items))
        parts.append(
            '<div class="scroll"><table><tr><th>Answer</th><th class=num>Participants</th><th class=num>Rate</th></tr>'
            + "".join(
                f'<tr><td class="name">{escape(answer)}</td><td class="num">{count}</td>'
                f'<td class="num">{escape(_percent(count / respondents if respondents else None))}</td></tr>'
                for answer, count in items
            )
            + "</table></div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _file_list(files: Sequence[ManifestFile], page_key: str, missing: Mapping[str, str]) -> str:
    base = posixpath.dirname(page_key)
    items = "".join(
        f'<li><a href="{escape(quote(posixpath.relpath(entry.key, base), safe="/=._-~"))}">'
        f"{escape(entry.report)}.csv</a> ({entry.rows} row{'' if entry.rows == 1 else 's'})</li>"
        for entry in files
    )
    gaps = "".join(f"<li>{escape(name)}: not available ({escape(why)})</li>" for name, why in missing.items())
    return f'<section id="files"><h2>Files</h2><ul>{items}{gaps}</ul></section>'


def _span(start: int | None, end: int | None, zone: zoneinfo.ZoneInfo) -> str:
    if start is None:
        return "time unknown"
    first = datetime.fromtimestamp(start, tz=zone)
    text = first.strftime("%a %d %b %Y %H:%M")
    if end is not None:
        last = datetime.fromtimestamp(end, tz=zone)
        minutes = max(0, end - start) // 60
        text += f" - {last.strftime('%H:%M')} ({minutes // 60:02d}:{minutes % 60:02d})"
    return f"{text} {first.tzname() or zone.key}"


def _mean(values: Sequence[float | int]) -> float:
    return sum(values) / len(values) if values else 0.0


def _count(value: int | None) -> str:
    return "n/a" if value is None else format_number(value)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _minutes(seconds: int | None) -> str:
    return "n/a" if seconds is None else format_number(round(seconds / 60))


def _share(count: int | None, attendees: int | None, total: int | None, unit: str) -> str:
    if count is None:
        return "n/a (report not pulled)"
    share = f"{min(1.0, count / attendees):.0%}" if attendees else "n/a"
    return f"{share} ({count} people, {total or 0} {unit})"
