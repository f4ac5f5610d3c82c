"""Room session reports on fakes: what lands in S3 (keys, rows, clean cells, manifest), the ledger claim, timing
(deferral, waiting for analytics), failures and retries, the meeting-recording trigger, and no personal data in logs.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kauto.automations.recordings import handle_meeting_recording_ready
from kauto.automations.room_reports import stream_report_csv
from kauto.automations.session_events import RoomSession, SessionEventError, session_ended_event, session_from_event
from kauto.automations.sessions import (
    NO_DATA_MAX_ATTEMPTS,
    NO_DATA_RETRY_SECONDS,
    SessionPullInProgressError,
    SessionPullStatus,
    pull_session_reports,
)
from kauto.automations.telemetry import logger
from kauto.aws.report_keys import report_key
from kauto.kaltura import Entry, KalturaRateLimitedError, KalturaStreamInterruptedError
from kauto.models import BodyFormat, EventKind, KalturaEvent
from room_fakes import (
    NOW,
    PARTNER_ID,
    Attendee,
    Breakout,
    FakeClock,
    FakeKaltura,
    Session,
    make_deps,
)

ROOM = "1_room0001"
SESSION_ID = "1_sess0001"
START = NOW - 7200  # 2026-11-18T09:06:40Z
END = NOW - 3600
PREFIX = f"sessions/partner_id={PARTNER_ID}/date=2026-11-18/entry_id={ROOM}/session_id={SESSION_ID}/"


def webhook_event(**fields: Any) -> KalturaEvent:
    """A session_ended event as the intake normalizes a KalturaSessionCuePoint (times in ms on the room timeline)."""
    values = {
        "id": SESSION_ID,
        "entryId": ROOM,
        "cuePointType": "sessionCuePoint.Session",
        "name": "Weekly sync",
        "status": 1,
        "startTime": 0,
        "endTime": (END - START) * 1000,
        "duration": (END - START) * 1000,
        "createdAt": START,
        "updatedAt": END + 5,
        **fields,
    }
    return KalturaEvent(
        kind=EventKind.SESSION_ENDED,
        partner_id=PARTNER_ID,
        dedupe_key=f"{PARTNER_ID}:job:33578120455",
        job_id=33578120455,
        template_id=26970255,
        template_system_name="Custom_Session_Cue_Point_Changed",
        event_type=3,
        event_object_type="cuePointEventNotifications.CuePoint",
        object_type="KalturaSessionCuePoint",
        object_id=SESSION_ID,
        entry_id=ROOM,
        status="1",
        fields={k: v for k, v in values.items() if v is not None},
        body_format=BodyFormat.OBJECT_JSON,
        received_at=END + 10,
    )


def room_session(**changes: Any) -> Session:
    values: dict[str, Any] = {
        "room_entry_id": ROOM,
        "session_id": SESSION_ID,
        "start": START,
        "end": END,
        "room_name": "=HYPERLINK(evil) room",
        "unique_users": 3,
        "engagement": 0.42,
        "attendees": [
            Attendee("u1", "=cmd|' /C calc'!A0", "one@example.com", 0.9, "Host"),
            Attendee("u2", 'Ann "The Boss" Lee', "two@example.com", 0.2),
            Attendee("u3", "-2+3", "three@example.com", 0.1),
        ],
        "breakouts": [Breakout("1_brk0001", "Group A", "1_bcp0001", START + 300, START + 1500)],
    }
    values.update(changes)
    return Session(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kaltura() -> FakeKaltura:
    fake = FakeKaltura()
    fake.add_session(room_session())
    # Noise the filters must drop: another room at the same time, and the same room's next session in the padding.
    fake.add_session(
        Session("1_other001", "1_othsess1", START, END, attendees=[Attendee("x1", "X", "x@example.com", 0.5)])
    )
    fake.add_session(
        Session(ROOM, "1_sess0002", END + 120, END + 1800, attendees=[Attendee("y1", "Y", "y@example.com", 0.5)])
    )
    return fake


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


# ------------------------------------------------------------------------------------------------ event parsing


def test_cue_point_times_in_ms_on_the_room_timeline_are_anchored_at_created_at() -> None:
    session = session_from_event(webhook_event())
    assert (session.room_entry_id, session.session_id, session.start, session.end) == (ROOM, SESSION_ID, START, END)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"startTime": START, "endTime": END}, (START, END)),  # unix seconds (the sweep)
        ({"startTime": START * 1000, "endTime": END * 1000}, (START, END)),  # unix milliseconds
        ({"startTime": 60_000, "endTime": None, "duration": 1_800_000}, (START + 60, START + 1860)),
        ({"triggeredAt": START + 30, "createdAt": START + 99, "endTime": 600_000}, (START + 30, START + 630)),
        ({"cuePointId": "1_other", "startTime": START, "endTime": END}, (START, END)),
    ],
)
def test_session_times_are_normalized_to_unix_seconds(fields: dict[str, Any], expected: tuple[int, int]) -> None:
    session = session_from_event(webhook_event(**fields))
    assert (session.start, session.end) == expected
    assert session.session_id == fields.get("cuePointId", SESSION_ID)


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"entryId": None}, "entryId"),
        ({"endTime": None, "duration": None}, "endTime"),
        ({"startTime": None, "createdAt": None}, "startTime"),
        ({"startTime": END, "endTime": START}, "endTime"),
    ],
)
def test_events_without_room_or_window_are_malformed(fields: dict[str, Any], field_name: str) -> None:
    event = webhook_event(**fields)
    event = KalturaEvent.from_dict(
        {**event.to_dict(), "entry_id": None} if field_name == "entryId" else event.to_dict()
    )
    with pytest.raises(SessionEventError) as raised:
        session_from_event(event)
    assert raised.value.field == field_name


# ------------------------------------------------------------------------------------------------------- the pull


def test_reports_land_under_the_session_prefix_with_the_session_rows_only(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    deps = make_deps(kaltura, clock)

    outcome = pull_session_reports(webhook_event(), deps)

    assert outcome.status is SessionPullStatus.PULLED
    objects = deps.store.objects  # type: ignore[attr-defined]
    assert sorted(objects) == sorted(
        [
            *(report_key(PREFIX, name) for name in ("room_data", "attendees", "breakouts")),
            PREFIX + "manifest.json",
            PREFIX + "summary.html",
        ]
    )
    room_data = read_csv(objects[report_key(PREFIX, "room_data")])
    assert [(row["entry_id"], row["cue_point_id"]) for row in room_data] == [(ROOM, SESSION_ID)]
    attendees = read_csv(objects[report_key(PREFIX, "attendees")])
    assert [row["user_id"] for row in attendees] == ["u1", "u2", "u3"]
    breakouts = read_csv(objects[report_key(PREFIX, "breakouts")])
    assert [row["breakout_entry_id"] for row in breakouts] == ["1_brk0001"]
    assert outcome.files == tuple(report_key(PREFIX, n) for n in ("room_data", "attendees", "breakouts"))
    assert outcome.manifest_key == PREFIX + "manifest.json"


def test_breakout_rows_in_room_data_are_kept_for_the_session_only(kaltura: FakeKaltura, clock: FakeClock) -> None:
    # Should report 6000 list a room's breakouts under entry_ids=<room>, they stay, and the next session's do not.
    kaltura.room_filter_matches_parents = True
    kaltura.sessions[2].breakouts = [Breakout("1_brk0009", "Later group", "1_bcp0009", END + 200, END + 900)]
    deps = make_deps(kaltura, clock)

    pull_session_reports(webhook_event(), deps)

    room_data = read_csv(deps.store.objects[report_key(PREFIX, "room_data")])  # type: ignore[attr-defined]
    assert [(row["entry_id"], row["parent_entry_id"]) for row in room_data] == [(ROOM, ""), ("1_brk0001", ROOM)]
    breakouts = read_csv(deps.store.objects[report_key(PREFIX, "breakouts")])  # type: ignore[attr-defined]
    assert [row["breakout_entry_id"] for row in breakouts] == ["1_brk0001"]


def test_report_requests_carry_the_padded_window_and_the_room_filters(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, {"defaults": {"session_reports": {"window_padding_seconds": 120}}})

    pull_session_reports(webhook_event(), deps)

    calls = {call.report_id: call.params for call in kaltura.csv_calls}
    window = {"from": str(START - 120), "to": str(END + 120)}
    assert calls[6000] == {"from_date": window["from"], "to_date": window["to"], "entry_ids": ROOM}
    assert calls[6001] == {
        "from_date": window["from"],
        "to_date": window["to"],
        "entry_ids": ROOM,
        "cue_point_ids": SESSION_ID,
    }
    assert calls[6002] == {"fromDate": window["from"], "toDate": window["to"], "parentEntryIds": ROOM}


def test_cells_are_sanitized_quoted_without_bom_and_timestamps_get_iso_columns(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    deps = make_deps(kaltura, clock)
    pull_session_reports(webhook_event(), deps)
    objects = deps.store.objects  # type: ignore[attr-defined]

    room_bytes = objects[report_key(PREFIX, "room_data")]
    assert not room_bytes.startswith(b"\xef\xbb\xbf")
    assert room_bytes.endswith(b"\r\n")
    room = read_csv(room_bytes)[0]
    assert room["entry_name"] == "'=HYPERLINK(evil) room"
    assert room["session_start_time"] == str(START)
    assert room["session_start_time_iso"] == "2026-11-18T09:06:40Z"
    assert room["session_end_time_iso"] == "2026-11-18T10:06:40Z"

    attendee_bytes = objects[report_key(PREFIX, "attendees")]
    assert b'"Ann ""The Boss"" Lee"' in attendee_bytes  # RFC 4180 quoting of a quote inside a value
    names = [row["user_name"] for row in read_csv(attendee_bytes)]
    assert names == ["'=cmd|' /C calc'!A0", 'Ann "The Boss" Lee', "'-2+3"]
    assert [row["meeting_engaged_play_time_ratio"] for row in read_csv(attendee_bytes)] == ["0.9", "0.2", "0.1"]


def test_manifest_describes_every_file_without_secrets(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock)
    pull_session_reports(webhook_event(), deps)
    objects = deps.store.objects  # type: ignore[attr-defined]

    manifest = json.loads(objects[PREFIX + "manifest.json"])

    assert manifest["kind"] == "session"
    assert manifest["partner_id"] == PARTNER_ID
    assert manifest["scope"] == {"entry_id": ROOM, "session_id": SESSION_ID}
    assert manifest["window"]["start_unix"] == START - 300
    assert manifest["window"]["end_unix"] == END + 300
    assert manifest["generated_at"] == "2026-11-18T11:06:40Z"
    assert manifest["rows"] == 1 + 3 + 1
    by_report = {entry["report"]: entry for entry in manifest["files"]}
    assert set(by_report) == {"room_data", "attendees", "breakouts"}
    for entry in manifest["files"]:
        body = objects[entry["key"]]
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["bytes"] == len(body)
        assert entry["columns"] == next(csv.reader(io.StringIO(body.decode())))
    assert by_report["attendees"]["rows"] == 3
    assert by_report["attendees"]["source"] == {
        "service": "report",
        "action": "getCsvFromStringParams",
        "params": {
            "id": 6001,
            "params": f"from_date={START - 300};to_date={END + 300};entry_ids={ROOM};cue_point_ids={SESSION_ID}",
        },
    }
    assert "ks" not in json.dumps(manifest).lower().replace("breakouts", "")


def test_only_the_configured_reports_are_pulled(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, {"defaults": {"session_reports": {"reports": [6001]}}})

    outcome = pull_session_reports(webhook_event(), deps)

    assert [call.report_id for call in kaltura.csv_calls] == [6001]
    assert outcome.files == (report_key(PREFIX, "attendees"),)


def test_an_empty_report_still_gets_the_stable_header(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.sessions[0].breakouts = []
    kaltura.render = lambda report_id, params: (
        b"" if report_id == 6002 else FakeKaltura.render(kaltura, report_id, params)
    )  # type: ignore[method-assign]
    deps = make_deps(kaltura, clock)

    pull_session_reports(webhook_event(), deps)

    body = deps.store.objects[report_key(PREFIX, "breakouts")]  # type: ignore[attr-defined]
    assert body.decode().splitlines()[0].startswith("parent_entry_id,parent_entry_name,breakout_entry_id")
    assert read_csv(body) == []


# ------------------------------------------------------------------------------------- once, and again only forced


def test_a_done_session_is_not_pulled_again(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock)
    pull_session_reports(webhook_event(), deps)
    calls = len(kaltura.csv_calls)

    again = pull_session_reports(webhook_event(), deps)
    sweep_event = session_ended_event(
        RoomSession(PARTNER_ID, ROOM, SESSION_ID, START, END), dedupe_key="sweep:x", received_at=NOW
    )
    from_sweep = pull_session_reports(sweep_event, deps)

    assert again.status is from_sweep.status is SessionPullStatus.ALREADY_DONE
    assert len(kaltura.csv_calls) == calls
    row = deps.ledger.get(f"session#{PARTNER_ID}#{ROOM}", SESSION_ID)
    assert row is not None and row["state"] == "done"
    assert row["manifest_key"] == PREFIX + "manifest.json"
    assert row["rows"] == {"room_data": 1, "attendees": 3, "breakouts": 1}


def test_a_forced_rerun_overwrites_the_same_keys_and_alerts_nothing_twice(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    config = {"defaults": {"thresholds": {"session_engagement_rate_below": 0.5, "attendee_engagement_below": 0.3}}}
    deps = make_deps(kaltura, clock, config)
    pull_session_reports(webhook_event(), deps)
    first = dict(deps.store.objects)  # type: ignore[attr-defined]
    published = len(deps.alerts.published)  # type: ignore[attr-defined]

    clock.advance(3600)
    # Report 6000 now says the session started 10 s later (the cue point time was approximate): same keys anyway.
    kaltura.sessions[0].start += 10
    outcome = pull_session_reports(webhook_event(), deps, force=True)

    assert outcome.status is SessionPullStatus.PULLED
    assert sorted(deps.store.objects) == sorted(first)  # type: ignore[attr-defined]
    assert published == 2
    assert len(deps.alerts.published) == published  # type: ignore[attr-defined]


def test_a_concurrent_pull_of_the_same_session_is_retried_later(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, worker_timeout_seconds=300)
    deps.ledger.claim(
        f"session#{PARTNER_ID}#{ROOM}",
        SESSION_ID,
        {"state": "pulling", "owner": "other", "trigger": "sweep:other", "started_at": int(clock.now) - 10},
    )

    with pytest.raises(SessionPullInProgressError):
        pull_session_reports(webhook_event(), deps)
    assert kaltura.csv_calls == []

    clock.advance(300)  # the other worker's claim is now older than a worker can run: it died
    assert pull_session_reports(webhook_event(), deps).status is SessionPullStatus.PULLED


def test_a_redelivery_of_the_same_event_takes_over_its_own_claim(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock)
    event = webhook_event()
    deps.ledger.claim(
        f"session#{PARTNER_ID}#{ROOM}",
        SESSION_ID,
        {"state": "pulling", "owner": "dead", "trigger": event.dedupe_key, "started_at": int(clock.now) - 5},
    )

    assert pull_session_reports(event, deps).status is SessionPullStatus.PULLED


def test_a_failed_pull_is_marked_failed_leaves_no_manifest_and_the_retry_completes(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    deps = make_deps(kaltura, clock)
    kaltura.break_after_bytes = 40

    with pytest.raises(KalturaStreamInterruptedError):
        pull_session_reports(webhook_event(), deps)

    assert deps.store.objects == {}  # type: ignore[attr-defined]
    row = deps.ledger.get(f"session#{PARTNER_ID}#{ROOM}", SESSION_ID)
    assert row is not None and (row["state"], row["error"]) == ("failed", "KalturaStreamInterruptedError")

    assert pull_session_reports(webhook_event(), deps).status is SessionPullStatus.PULLED
    assert PREFIX + "manifest.json" in deps.store.objects  # type: ignore[attr-defined]


def test_a_kaltura_error_before_streaming_propagates_typed(kaltura: FakeKaltura, clock: FakeClock) -> None:
    def blocked(report_id: int, params: Any) -> bytes:
        raise KalturaRateLimitedError("ACTION_BLOCKED", "blocked")

    kaltura.render = blocked  # type: ignore[method-assign]
    deps = make_deps(kaltura, clock)

    with pytest.raises(KalturaRateLimitedError):
        pull_session_reports(webhook_event(), deps)


# -------------------------------------------------------------------------------------------------------- timing


def test_a_pull_waits_until_the_padded_window_has_closed(kaltura: FakeKaltura, clock: FakeClock) -> None:
    clock.now = END + 100  # padding 300 s: the window closes at END + 300
    deps = make_deps(kaltura, clock)
    event = webhook_event()

    outcome = pull_session_reports(event, deps)

    assert outcome.status is SessionPullStatus.DEFERRED
    assert kaltura.csv_calls == []
    sent = deps.events.sent  # type: ignore[attr-defined]
    assert [(queued.event, queued.delay_seconds) for queued in sent] == [(event, 200)]


def test_a_session_report_6000_does_not_list_yet_is_retried_then_pulled_anyway(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.sessions[0].session_id = "1_notyet"  # report 6000 lists another session than the event's
    deps = make_deps(kaltura, clock)
    event = webhook_event()

    for attempt in range(1, NO_DATA_MAX_ATTEMPTS):
        outcome = pull_session_reports(event, deps)
        assert outcome.status is SessionPullStatus.WAITING_FOR_DATA
        row = deps.ledger.get(f"session#{PARTNER_ID}#{ROOM}", SESSION_ID)
        assert row is not None and (row["state"], row["no_data_attempts"]) == ("waiting_for_data", attempt)
        assert deps.events.sent[-1].delay_seconds == NO_DATA_RETRY_SECONDS  # type: ignore[attr-defined]
        assert deps.events.sent[-1].event == event  # type: ignore[attr-defined]
        assert PREFIX + "manifest.json" not in deps.store.objects  # type: ignore[attr-defined]
        clock.advance(NO_DATA_RETRY_SECONDS)

    final = pull_session_reports(event, deps)

    assert final.status is SessionPullStatus.PULLED
    row = deps.ledger.get(f"session#{PARTNER_ID}#{ROOM}", SESSION_ID)
    assert row is not None and row["metrics"]["session_row_found"] is False
    assert len(deps.events.sent) == NO_DATA_MAX_ATTEMPTS - 1  # type: ignore[attr-defined]


def test_disabled_session_reports_pull_nothing(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, {"defaults": {"session_reports": {"enabled": False}}})

    assert pull_session_reports(webhook_event(), deps).status is SessionPullStatus.DISABLED
    assert kaltura.csv_calls == []


# ---------------------------------------------------------------------------------------------------- streaming


def test_a_reader_that_fails_stops_the_download_and_its_error_is_raised(kaltura: FakeKaltura) -> None:
    kaltura.chunk_size = 1  # many chunks: the download would block on the full pipe without the reader
    view = make_deps(kaltura, FakeClock()).kaltura(PARTNER_ID)

    def fail_after_first(chunks: Iterator[bytes]) -> None:
        next(chunks)
        raise RuntimeError("S3 is down")

    with pytest.raises(RuntimeError, match="S3 is down"):
        stream_report_csv(view, 6001, {"from_date": START, "to_date": END}, fail_after_first)


def test_the_stream_reaches_the_reader_whole(kaltura: FakeKaltura) -> None:
    view = make_deps(kaltura, FakeClock()).kaltura(PARTNER_ID)
    params = {"from_date": START - 10, "to_date": END + 10}

    result, body = stream_report_csv(view, 6001, params, lambda chunks: b"".join(chunks))

    assert body == kaltura.render(6001, {k: str(v) for k, v in params.items()})
    assert result.bytes_written == len(body)


# ------------------------------------------------------------------------------------------- meeting recordings


def recording(entry_id: str = "1_rec00001", **fields: Any) -> Entry:
    raw = {
        "objectType": "KalturaMediaEntry",
        "id": entry_id,
        "name": "Weekly sync recording",
        "status": 2,
        "adminTags": "kalturameeting,other",
        "createdAt": END + 60,  # created when the recording was uploaded, after the session
        "duration": END - START - 30,
        **fields,
    }
    return Entry.from_api({k: v for k, v in raw.items() if v is not None})


def entry_ready(entry: Entry) -> KalturaEvent:
    return KalturaEvent(
        kind=EventKind.ENTRY_READY,
        partner_id=PARTNER_ID,
        dedupe_key=f"{PARTNER_ID}:job:1",
        job_id=1,
        template_id=None,
        template_system_name=None,
        event_type=3,
        event_object_type=1,
        object_type="KalturaMediaEntry",
        object_id=entry.id,
        entry_id=entry.id,
        status="2",
        fields={"id": entry.id, "status": 2},
        body_format=BodyFormat.OBJECT_JSON,
        received_at=NOW,
    )


def test_a_meeting_recording_pulls_the_session_it_recorded(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.sessions = [kaltura.sessions[0]]  # one room had a session then
    deps = make_deps(kaltura, clock)
    entry = recording()

    outcome = handle_meeting_recording_ready(entry_ready(entry), entry, deps)

    assert outcome.status is SessionPullStatus.PULLED
    assert outcome.session is not None and (outcome.session.room_entry_id, outcome.session.session_id) == (
        ROOM,
        SESSION_ID,
    )
    assert PREFIX + "manifest.json" in deps.store.objects  # type: ignore[attr-defined]
    decision = deps.ledger.get(f"recording#{PARTNER_ID}#{entry.id}", "session")
    assert decision is not None
    assert (decision["outcome"], decision["room_entry_id"], decision["session_id"]) == ("only_room", ROOM, SESSION_ID)
    # The recording and a later session_ended webhook of the same session pull once.
    assert pull_session_reports(webhook_event(), deps).status is SessionPullStatus.ALREADY_DONE


def test_concurrent_sessions_in_several_rooms_are_told_apart_by_the_rooms_recorded_entry(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    entry = recording()
    kaltura.add_entry(ROOM, type="room.room", recordedEntryId=entry.id)
    kaltura.add_entry("1_other001", type="room.room", recordedEntryId="1_someother")
    deps = make_deps(kaltura, clock)

    outcome = handle_meeting_recording_ready(entry_ready(entry), entry, deps)

    assert outcome.status is SessionPullStatus.PULLED
    assert outcome.session is not None and outcome.session.room_entry_id == ROOM
    decision = deps.ledger.get(f"recording#{PARTNER_ID}#{entry.id}", "session")
    assert decision is not None and decision["outcome"] == "recorded_entry_id"


def test_a_root_entry_id_naming_the_room_decides_without_reading_rooms(kaltura: FakeKaltura, clock: FakeClock) -> None:
    entry = recording(rootEntryId="1_other001", createdAt=START, duration=END - START)
    deps = make_deps(kaltura, clock)

    outcome = handle_meeting_recording_ready(entry_ready(entry), entry, deps)

    assert outcome.session is not None and outcome.session.session_id == "1_othsess1"
    assert kaltura.entry_gets == []


def test_concurrent_sessions_without_a_room_link_are_ambiguous_and_left_to_the_sweep(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.add_entry(ROOM, type="room.room")
    kaltura.add_entry("1_other001", type="room.room")
    deps = make_deps(kaltura, clock)
    entry = recording()

    outcome = handle_meeting_recording_ready(entry_ready(entry), entry, deps)

    assert (outcome.status, outcome.detail) == (SessionPullStatus.NOT_MATCHED, "ambiguous_rooms")
    assert [call.report_id for call in kaltura.csv_calls] == [6000]
    decision = deps.ledger.get(f"recording#{PARTNER_ID}#{entry.id}", "session")
    assert decision is not None and (decision["outcome"], decision["candidates"]) == ("ambiguous_rooms", 2)


def test_a_recording_with_no_session_in_report_6000_is_not_matched(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock)
    entry = recording(createdAt=NOW - 30 * 86400)

    outcome = handle_meeting_recording_ready(entry_ready(entry), entry, deps)

    assert (outcome.status, outcome.detail) == (SessionPullStatus.NOT_MATCHED, "no_session_in_report")


def test_a_recording_of_a_session_whose_window_is_still_open_sends_the_session_event(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.sessions = [kaltura.sessions[0]]
    clock.now = END + 60
    deps = make_deps(kaltura, clock)
    entry = recording(createdAt=END + 30)

    outcome = handle_meeting_recording_ready(entry_ready(entry), entry, deps)

    assert outcome.status is SessionPullStatus.DEFERRED
    (queued,) = deps.events.sent  # type: ignore[attr-defined]
    assert queued.event.kind is EventKind.SESSION_ENDED
    assert queued.event.dedupe_key == f"recording:{PARTNER_ID}:{entry.id}:{ROOM}:{SESSION_ID}"
    assert queued.delay_seconds == 240
    assert session_from_event(queued.event) == RoomSession(PARTNER_ID, ROOM, SESSION_ID, START, END)


@pytest.mark.parametrize(
    ("config", "admin_tags", "status"),
    [
        ({"session_reports": {"trigger_on_meeting_recordings": False}}, "kalturameeting", SessionPullStatus.DISABLED),
        ({}, "lecture", SessionPullStatus.NOT_MATCHED),
    ],
)
def test_recordings_are_ignored_when_the_trigger_is_off_or_the_tag_is_missing(
    kaltura: FakeKaltura, clock: FakeClock, config: dict[str, Any], admin_tags: str, status: SessionPullStatus
) -> None:
    deps = make_deps(kaltura, clock, {"defaults": config})
    entry = recording(adminTags=admin_tags)

    assert handle_meeting_recording_ready(entry_ready(entry), entry, deps).status is status
    assert kaltura.csv_calls == []


# ------------------------------------------------------------------------------------------------- personal data


@contextlib.contextmanager
def captured_automation_logs() -> Iterator[io.StringIO]:
    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def test_names_and_emails_stay_out_of_logs_ledger_and_alerts(kaltura: FakeKaltura, clock: FakeClock) -> None:
    config = {
        "defaults": {
            "thresholds": {
                "session_engagement_rate_below": 0.9,
                "unique_users_below": 10,
                "attendee_engagement_below": 0.5,
            }
        }
    }
    deps = make_deps(kaltura, clock, config)

    with captured_automation_logs() as logs:
        pull_session_reports(webhook_event(), deps)

    assert "session reports pulled" in logs.getvalue()
    ledger_text = json.dumps(list(deps.ledger.items.values()))  # type: ignore[attr-defined]
    alerts_text = " ".join(alert.message for alert in deps.alerts.published)  # type: ignore[attr-defined]
    for text in (logs.getvalue(), ledger_text, alerts_text):
        for personal in ("example.com", "Ann", "calc", "HYPERLINK", "host@"):
            assert personal not in text
