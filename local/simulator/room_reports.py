"""Kaltura Room reports 6000/6001/6002 via ``report.getCsvFromStringParams`` / ``report.getCsv``
(docs/kaltura.md#report-csv-strings).

The answer is a raw CSV file even with ``format=1``: UTF-8 BOM, a header line, one line per row, commas inside
values replaced with spaces, nothing quoted, ``\\n`` line ends. Rows come from the room sessions added to the
simulator, then optionally from synthetic padding rows (a knob sets their count or the body size), all streamed
in chunks so a body of any size is never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .api import Auth, CallContext, RawResponse, Registry
from .entries import add_entry
from .errors import ApiError
from .events import SESSION_ENDED, SimEvent, TimedEvent
from .params import Params
from .serialize import php_float
from .state import ENTRY_TYPE_ROOM, Attendee, Breakout, RoomSession
from .synth import mix64, object_id, person_name, seed_of, unit

if TYPE_CHECKING:
    from .core import SimulatorCore

BOM = b"\xef\xbb\xbf"
_CHUNK = 64 * 1024

ROOM_DATA = 6000
ATTENDEES = 6001
BREAKOUTS = 6002

# Columns as documented in "Retrieve Kaltura Room data with the Kaltura API".
COLUMNS: dict[int, tuple[str, ...]] = {
    ROOM_DATA: (
        "entry_id",
        "entry_name",
        "parent_entry_id",
        "cue_point_id",
        "session_start_time",
        "session_end_time",
        "session_host_user_id",
        "meeting_view_period_unique_users",
        "meeting_engaged_play_time_ratio",
    ),
    ATTENDEES: (
        "entry_id",
        "cue_point_id",
        "user_id",
        "user_name",
        "user_email",
        "user_type",
        "meeting_view_time",
        "meeting_engaged_play_time_ratio",
    ),
    BREAKOUTS: (
        "parent_entry_id",
        "parent_entry_name",
        "breakout_entry_id",
        "breakout_entry_name",
        "cue_point_id",
        "session_initiator",
        "session_start_time",
        "session_end_time",
        "duration",
        "participant_count",
        "engagement_rate",
    ),
}


@dataclass(frozen=True, slots=True)
class Volume:
    """Synthetic rows appended after the real ones: a row count, or rows until the body reaches ``body_bytes``."""

    rows: int | None = None
    body_bytes: int | None = None


@dataclass(slots=True)
class RoomReportSettings:
    """Per report id volume knobs."""

    volumes: dict[int, Volume] = field(default_factory=dict)

    def configure(self, report_id: int, *, rows: int | None = None, body_bytes: int | None = None) -> None:
        """Pad report ``report_id`` with ``rows`` synthetic rows, or until its body is ``body_bytes`` long."""
        if report_id not in COLUMNS:
            raise ValueError(f"unknown room report {report_id}")
        self.volumes[report_id] = Volume(rows, body_bytes)


def _cell(value: object) -> str:
    text = php_float(value) if isinstance(value, float) else str(value)
    # docs/kaltura.md#report-csv-strings: commas inside values become spaces; nothing is quoted. Line breaks would split
    # a row, so they go too.
    return text.replace(",", " ").replace("\r", " ").replace("\n", " ")


def csv_line(cells: Sequence[object]) -> str:
    """One CSV line as Kaltura writes it."""
    return ",".join(_cell(cell) for cell in cells) + "\n"


def _parse_string_params(text: str) -> dict[str, str]:
    """``"k1=v1;k2=v2"`` -> dict."""
    pairs = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True, slots=True)
class RoomFilter:
    """Filters of the room reports; list values are comma-separated."""

    from_date: int
    to_date: int
    entry_ids: frozenset[str] | None
    parent_entry_ids: frozenset[str] | None
    cue_point_ids: frozenset[str] | None
    user_ids: frozenset[str] | None
    virtual_event_ids: frozenset[str] | None

    def session_matches(self, session: RoomSession) -> bool:
        """A session started inside the window and matching the entry/event/cue point filters."""
        return (
            self.from_date <= session.start <= self.to_date
            and (self.virtual_event_ids is None or session.virtual_event_id in self.virtual_event_ids)
            and (self.cue_point_ids is None or session.cue_point_id in self.cue_point_ids)
        )


def _id_set(values: dict[str, str], *names: str) -> frozenset[str] | None:
    for name in names:
        if values.get(name):
            return frozenset(part.strip() for part in values[name].split(",") if part.strip())
    return None


def _room_filter(report_id: int, values: dict[str, str]) -> RoomFilter:
    bounds = []
    for names in (("from_date", "fromDate"), ("to_date", "toDate")):
        raw = next((values[name] for name in names if values.get(name)), None)
        if raw is None:
            raise ApiError(errors.REPORT_PARAMETER_MISSING, names[0])
        try:
            bounds.append(int(raw))
        except ValueError as exc:
            raise ApiError(errors.INVALID_PARAMETER_VALUE, names[0], raw) from exc
    parent_names = ("parentEntryIds", "parent_entry_ids") + (("entry_ids",) if report_id == BREAKOUTS else ())
    return RoomFilter(
        from_date=bounds[0],
        to_date=bounds[1],
        entry_ids=_id_set(values, "entry_ids") if report_id != BREAKOUTS else None,
        parent_entry_ids=_id_set(values, *parent_names),
        cue_point_ids=_id_set(values, "cue_point_ids"),
        user_ids=_id_set(values, "user_ids"),
        virtual_event_ids=_id_set(values, "virtual_event_ids", "virtualeventid"),
    )


def _real_rows(core: SimulatorCore, partner_id: int, report_id: int, room_filter: RoomFilter) -> list[list[object]]:
    """Rows from the simulator's room sessions (snapshot taken under the state lock)."""
    with core.state.lock:
        sessions = sorted(
            (s for s in core.state.room_sessions.values() if s.partner_id == partner_id),
            key=lambda s: (s.start, s.cue_point_id),
        )
        names = {entry_id: entry.name for entry_id, entry in core.state.entries.items()}
    rows: list[list[object]] = []
    for session in sessions:
        if not room_filter.session_matches(session):
            continue
        if report_id == ROOM_DATA:
            if room_filter.entry_ids is None or session.room_entry_id in room_filter.entry_ids:
                rows.append(
                    [
                        session.room_entry_id,
                        names.get(session.room_entry_id, ""),
                        session.parent_entry_id or "",
                        session.cue_point_id,
                        session.start,
                        session.end,
                        session.host_user_id,
                        len(session.attendees),
                        _mean([attendee.engagement for attendee in session.attendees]),
                    ]
                )
            for breakout in session.breakouts:
                if room_filter.entry_ids is None or breakout.entry_id in room_filter.entry_ids:
                    rows.append(
                        [
                            breakout.entry_id,
                            breakout.name,
                            session.room_entry_id,
                            breakout.cue_point_id,
                            breakout.start,
                            breakout.end,
                            breakout.initiator,
                            breakout.participant_count,
                            breakout.engagement_rate,
                        ]
                    )
        elif report_id == ATTENDEES:
            if room_filter.entry_ids is not None and session.room_entry_id not in room_filter.entry_ids:
                continue
            rows.extend(
                [
                    session.room_entry_id,
                    session.cue_point_id,
                    attendee.user_id,
                    attendee.name,
                    attendee.email,
                    attendee.user_type,
                    attendee.view_time,
                    attendee.engagement,
                ]
                for attendee in session.attendees
                if room_filter.user_ids is None or attendee.user_id in room_filter.user_ids
            )
        else:
            if room_filter.parent_entry_ids is not None and session.room_entry_id not in room_filter.parent_entry_ids:
                continue
            rows.extend(
                [
                    session.room_entry_id,
                    names.get(session.room_entry_id, ""),
                    breakout.entry_id,
                    breakout.name,
                    breakout.cue_point_id,
                    breakout.initiator,
                    breakout.start,
                    breakout.end,
                    breakout.end - breakout.start,
                    breakout.participant_count,
                    breakout.engagement_rate,
                ]
                for breakout in session.breakouts
            )
    return rows


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


_NAME_POOL = 4096
_RATIOS = tuple(php_float(value / 10000) for value in range(10001))
_ATTENDEES_PER_SESSION = 40


def synthetic_cells(seed: int, report_id: int, window_start: int) -> Iterator[list[str]]:
    """Padding rows, endless; row ``i`` is a pure function of (seed, report, window start, ``i``).

    Written for speed (a 1 GB body is ~15 million rows): names come from a pool computed once, ratios from a
    table, and ids are derived once per synthetic session.
    """
    names = [_cell(person_name(seed, index)) for index in range(_NAME_POOL)]
    index = 0
    while True:
        session = index // _ATTENDEES_PER_SESSION if report_id == ATTENDEES else index
        session_value = mix64(seed ^ (session + (1 << 40)))
        room_id = object_id(seed, session // 5)
        cue_point_id = object_id(seed ^ 0xC0FFEE, session)
        start = window_start + (session % 500) * 1800
        end = str(start + 600 + unit(session_value, 8, 5400))
        start_text = str(start)
        if report_id == ATTENDEES:
            for _ in range(_ATTENDEES_PER_SESSION):
                value = mix64(seed ^ index)
                user = f"user{index:08d}"
                role = "Host" if index % _ATTENDEES_PER_SESSION == 0 else "Attendee"
                yield [
                    room_id,
                    cue_point_id,
                    user,
                    names[value % _NAME_POOL],
                    f"{user}@example.com",
                    role,
                    str(unit(value, 40, 3600)),
                    _RATIOS[unit(value, 24, 10001)],
                ]
                index += 1
            continue
        room_name = f"Synthetic room {session // 5}"
        ratio = _RATIOS[unit(session_value, 24, 10001)]
        if report_id == ROOM_DATA:
            yield [
                room_id,
                room_name,
                "",
                cue_point_id,
                start_text,
                end,
                names[session_value % _NAME_POOL],
                str(2 + unit(session_value, 40, 300)),
                ratio,
            ]
        else:
            yield [
                room_id,
                room_name,
                object_id(seed ^ 0xB0, index),
                f"Breakout {index % 12 + 1}",
                cue_point_id,
                names[session_value % _NAME_POOL],
                start_text,
                end,
                str(int(end) - start),
                str(1 + unit(session_value, 40, 30)),
                ratio,
            ]
        index += 1


def stream_csv(
    header: Sequence[str],
    keep: list[int],
    rows: list[list[object]],
    volume: Volume | None,
    synthetic: Iterator[list[str]],
) -> Iterator[bytes]:
    """BOM + header + real rows + synthetic rows in ~64 KiB chunks, stopping at the volume's row or byte target.

    With a byte target the body ends at the first row boundary at or past it.
    """
    everything = keep == list(range(len(header)))
    head = BOM + csv_line([header[i] for i in keep]).encode("utf-8")
    lines = [csv_line([row[i] for i in keep]) for row in rows]
    written = 0
    pending = head + "".join(lines).encode("utf-8")
    rows_left = volume.rows if volume is not None else 0
    bytes_target = volume.body_bytes if volume is not None else None
    if volume is None or (volume.rows is None and bytes_target is None):
        rows_left = 0
    elif rows_left is None:
        rows_left = -1  # unbounded: the byte target decides
    while True:
        if bytes_target is not None and written + len(pending) >= bytes_target:
            break
        if rows_left == 0:
            break
        batch = []
        for _ in range(512 if rows_left < 0 else min(512, rows_left)):
            cells = next(synthetic)
            batch.append(",".join(cells) if everything else ",".join([cells[i] for i in keep]))
        if rows_left > 0:
            rows_left -= len(batch)
        encoded = ("\n".join(batch) + "\n").encode("utf-8")
        if bytes_target is not None and written + len(pending) + len(encoded) >= bytes_target:
            # Finish exactly at the first row boundary at or past the target.
            for line in batch:
                pending += (line + "\n").encode("utf-8")
                if written + len(pending) >= bytes_target:
                    break
            break
        pending += encoded
        if len(pending) >= _CHUNK:
            written += len(pending)
            yield pending
            pending = b""
    if pending:
        yield pending


def _csv_response(ctx: CallContext, report_id: int, values: dict[str, str], excluded: str | None) -> RawResponse:
    if report_id not in COLUMNS:
        raise ApiError(errors.REPORT_NOT_FOUND, report_id)
    partner_id = ctx.require_partner()
    room_filter = _room_filter(report_id, values)
    header = COLUMNS[report_id]
    excluded_names = {name.strip() for name in (excluded or "").split(",") if name.strip()}
    keep = [index for index, name in enumerate(header) if name not in excluded_names]
    rows = _real_rows(ctx.core, partner_id, report_id, room_filter)
    volume = ctx.core.room_reports.volumes.get(report_id)
    seed = seed_of(ctx.core.seed, partner_id, report_id)
    suffix = "".join(f"_{key}_{value}" for key, value in values.items())
    filename = f"Report_{report_id}_{partner_id}{suffix}.csv".replace('"', "")
    headers = {"Content-Type": "text/csv", "Content-Disposition": f'attachment; filename="{filename}"'}
    body = stream_csv(header, keep, rows, volume, synthetic_cells(seed, report_id, room_filter.from_date))
    return RawResponse(200, headers, body)


def _get_csv_from_string_params(ctx: CallContext, params: Params) -> RawResponse:
    report_id = params.required_int("id")
    values = _parse_string_params(params.get_str("params", "") or "")
    return _csv_response(ctx, report_id, values, params.get_str("excludedFields"))


def _get_csv(ctx: CallContext, params: Params) -> RawResponse:
    report_id = params.required_int("id")
    raw = params.raw.get("params")
    items: list[Any] = list(raw.values()) if isinstance(raw, dict) else list(raw) if isinstance(raw, list) else []
    values = {
        str(item.get("key")): str(item.get("value", ""))
        for item in items
        if isinstance(item, dict) and item.get("key") is not None
    }
    return _csv_response(ctx, report_id, values, params.get_str("excludedFields"))


def _generated_attendees(count: int, host_user_id: str, session_seed: int) -> list[Attendee]:
    if count <= 0:
        return []
    attendees = [Attendee(host_user_id, person_name(session_seed, 0), host_user_id, "Host", 3000, 0.91)]
    for index in range(1, count):
        value = mix64(session_seed ^ index)
        user = f"attendee{index:03d}.{session_seed % 10_000:04d}"
        attendees.append(
            Attendee(
                user_id=user,
                name=person_name(session_seed, index),
                email=f"{user}@example.com",
                user_type="Attendee",
                view_time=60 + unit(value, 8, 3000),
                engagement=unit(value, 24, 10001) / 10000,
            )
        )
    return attendees


def add_room_session(
    core: SimulatorCore,
    partner_id: int,
    *,
    room_entry_id: str | None = None,
    room_name: str = "Team room",
    name: str = "Room session",
    start: int | None = None,
    end: int | None = None,
    duration: int = 3600,
    host_user_id: str = "host@example.com",
    attendees: int | Sequence[Attendee] = 5,
    breakouts: int | Sequence[Breakout] = 0,
    virtual_event_id: str | None = None,
    chat_messages: int = 0,
    polls: int = 0,
    announce: bool = True,
) -> RoomSession:
    """Add a room session (creating the room entry when ``room_entry_id`` is None).

    ``chat_messages``/``polls`` feed the chat-and-collaboration reports of the Reports Microservice; a
    ``virtual_event_id`` is also set on the room entry (``virtualEventId``).

    Defaults to a session that ends now. With ``announce`` the session-ended event is raised once the clock has
    reached ``end`` (right away for a session that already ended).
    """
    now = core.clock.now()
    end = end if end is not None else (start + duration if start is not None else now)
    start = start if start is not None else end - duration
    if room_entry_id is None:
        room_entry_id = add_entry(core, partner_id, name=room_name, entry_type=ENTRY_TYPE_ROOM, duration=0).id
    with core.state.lock:
        room = core.state.entries.get(room_entry_id)
        if room is not None and virtual_event_id:
            room.virtual_event_id = virtual_event_id
        cue_point_id = core.state.new_object_id()
        session_seed = seed_of(core.seed, cue_point_id)
        attendee_list = (
            _generated_attendees(attendees, host_user_id, session_seed)
            if isinstance(attendees, int)
            else list(attendees)
        )
    breakout_list: list[Breakout]
    if isinstance(breakouts, int):
        breakout_list = []
        for index in range(breakouts):
            room = add_entry(
                core,
                partner_id,
                name=f"{room_name} breakout {index + 1}",
                entry_type=ENTRY_TYPE_ROOM,
                room_type=2,
                duration=0,
            )
            value = mix64(session_seed ^ (index + 1000))
            breakout_list.append(
                Breakout(
                    entry_id=room.id,
                    name=room.name,
                    cue_point_id=core.state.new_object_id(),
                    initiator=attendee_list[index % len(attendee_list)].name if attendee_list else host_user_id,
                    start=start + 300,
                    end=min(end, start + 300 + 600 + unit(value, 8, 1800)),
                    participant_count=1 + unit(value, 24, 8),
                    engagement_rate=unit(value, 32, 10001) / 10000,
                )
            )
    else:
        breakout_list = list(breakouts)
    session = RoomSession(
        cue_point_id=cue_point_id,
        partner_id=partner_id,
        room_entry_id=room_entry_id,
        name=name,
        start=start,
        end=end,
        host_user_id=host_user_id,
        attendees=attendee_list,
        breakouts=breakout_list,
        virtual_event_id=virtual_event_id,
        chat_messages=chat_messages,
        polls=polls,
        announce=announce,
    )
    with core.state.lock:
        core.state.room_sessions[cue_point_id] = session
    return session


def settle(core: SimulatorCore, now: int) -> list[TimedEvent]:
    """Sessions whose end time has passed raise their session-ended event once."""
    events: list[TimedEvent] = []
    for index, session in enumerate(core.state.room_sessions.values()):
        if session.announce and not session.announced and session.end <= now:
            session.announced = True
            events.append(
                (session.end, index, SimEvent(SESSION_ENDED, session.partner_id, session.to_api(), session.end))
            )
    return events


def register(registry: Registry) -> None:
    """Add the room CSV report actions."""
    registry.add("report", "getCsvFromStringParams", Auth.ADMIN, _get_csv_from_string_params)
    registry.add("report", "getCsv", Auth.ADMIN, _get_csv)
