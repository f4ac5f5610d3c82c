"""Chat, polls and moderation reports of a room session (Reports Microservice) on fakes: generated, polled by
re-sending the session's event with a delay, cut to the session, written beside 6000-6002, alerted when they fail,
counted for the participation alerts and shown on the summary page."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kauto.automations.session_events import RoomSession, session_ended_event
from kauto.automations.sessions import COLLAB_POLL_SECONDS, SessionPullStatus, pull_session_reports
from kauto.aws.report_keys import report_key
from kauto.errors import ConfigError
from kauto.models import KalturaEvent
from room_fakes import PARTNER_ID, FakeClock, FakeKaltura, make_deps, partner_config
from test_sessions import END, PREFIX, ROOM, SESSION_ID, START, room_session, webhook_event

CHAT_COLUMNS = ("userId", "userFirstName", "userLastName", "userEmail", "userRole", "messageId", "sentAt", "message")
ALL_COLLAB = ["pollsActivity", "chatUserActivity", "chatModeration", "groupChatTranscripts", "moderatorTranscripts"]
FILES = ("polls_activity", "chat_user_activity", "chat_moderation", "group_chat_transcripts", "moderator_transcripts")


def iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def body(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def person(user: str) -> tuple[str, str, str, str, str]:
    return (user, "First", f"Last {user}", f"{user}@example.com", "Viewer")


def collab_bodies() -> dict[str, bytes]:
    """Attendees u1..u3 (room_session): u1 and u2 chat, u1 answers the poll; plus rows outside the session."""
    return {
        "groupChatTranscripts": body(
            CHAT_COLUMNS,
            [
                (*person("u1"), "m0", iso(START - 600), "lobby: anyone here?"),
                (*person("u1"), "m1", iso(START + 60), "Hello, all"),
                (*person("u2"), "m2", iso(START + 120), '=HYPERLINK("http://x.example")\nsecond line'),
                (*person("u2"), "m3", iso(END + 900), "after the end"),
            ],
        ),
        "chatUserActivity": body(
            ("userId", "contextId", "messagesSent", "firstMessageAt", "lastMessageAt"),
            [
                ("u1", ROOM, 1, iso(START + 60), iso(START + 60)),
                ("u2", ROOM, 1, iso(START + 120), iso(START + 120)),
                ("u1", ROOM, 1, iso(START - 600), iso(START - 600)),
            ],
        ),
        "pollsActivity": body(
            ("pollId", "question", "pollType", "userId", "answer", "answeredAt"),
            [
                ("p1", "Which topic, next?", "Poll", "u1", "Budget, again", iso(START + 300)),
                ("p1", "Which topic, next?", "Poll", "u3", "Security", iso(END + 900)),
            ],
        ),
        "chatModeration": body(
            ("contextId", "contextName", "lastActivityAt", "pendingThreads", "ownedThreads", "resolvedThreads"),
            [(ROOM, "Room", iso(START + 900), 2, 1, 4), (ROOM, "Lobby", iso(START - 600), 9, 0, 0)],
        ),
        "moderatorTranscripts": body(
            ("threadId", "userId", "messageId", "sentAt", "message"),
            [("t1", "u3", "q1", iso(START + 200), "Recording?")],
        ),
    }


def collab_config(**rules: Any) -> dict[str, Any]:
    session_reports = {"reports": [6000, 6001, 6002, *ALL_COLLAB], "transcripts_enabled": True} | rules
    return partner_config(session_reports=session_reports)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kaltura() -> FakeKaltura:
    fake = FakeKaltura()
    fake.add_session(room_session())
    fake.add_entry(ROOM, objectType="KalturaRoomEntry", type="room.room", roomType=1)
    fake.collab_bodies = collab_bodies()
    return fake


def deliver_until_done(deps: Any, clock: FakeClock, event: KalturaEvent, limit: int = 10) -> list[SessionPullStatus]:
    """Deliver ``event``, then every re-sent copy after its delay, as SQS would; the statuses seen."""
    statuses = [pull_session_reports(event, deps).status]
    while statuses[-1] is SessionPullStatus.WAITING_FOR_REPORTS and len(statuses) < limit:
        resent = deps.events.sent[-1]
        clock.advance(resent.delay_seconds)
        statuses.append(pull_session_reports(resent.event, deps).status)
    return statuses


def rows_of(deps: Any, name: str) -> list[dict[str, str]]:
    data = deps.store.objects[report_key(PREFIX, name)]
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_the_reports_are_polled_across_delayed_redeliveries_then_written_cut_to_the_session(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.collab_pending_polls = 2
    deps = make_deps(kaltura, clock, collab_config())

    statuses = deliver_until_done(deps, clock, webhook_event())

    assert statuses == [SessionPullStatus.WAITING_FOR_REPORTS] * 3 + [SessionPullStatus.PULLED]
    assert [sent.delay_seconds for sent in deps.events.sent] == [COLLAB_POLL_SECONDS] * 3
    assert sorted(g.report_name for g in kaltura.collab_generated) == sorted(ALL_COLLAB), "each generated once"
    assert len(kaltura.csv_calls) == 3, "the room reports were pulled once, in the first delivery"
    chat = rows_of(deps, "group_chat_transcripts")
    assert [row["messageId"] for row in chat] == ["m1", "m2"], "lobby and after-session messages are cut"
    assert chat[1]["message"] == '\'=HYPERLINK("http://x.example")\nsecond line', "quoted, formula neutralized"
    assert [row["userId"] for row in rows_of(deps, "polls_activity")] == ["u1"]
    assert [row["contextName"] for row in rows_of(deps, "chat_moderation")] == ["Room"]
    generate = kaltura.collab_generated[0]
    assert generate.parameters == {
        "entries_ids": [ROOM],
        "from_date_id": datetime.fromtimestamp(START, tz=UTC).date().isoformat(),
        "to_date_id": datetime.fromtimestamp(END, tz=UTC).date().isoformat(),
    }
    assert generate.privileges == "", "no virtual event, no extra privilege"


def test_the_manifest_lists_every_report_and_marks_transcripts(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, collab_config())

    deliver_until_done(deps, clock, webhook_event())

    manifest = json.loads(deps.store.objects[PREFIX + "manifest.json"])
    files = {entry["report"]: entry for entry in manifest["files"]}
    assert set(files) == {"room_data", "attendees", "breakouts", *FILES}
    assert files["group_chat_transcripts"]["classification"] == ["personal_data", "message_content"]
    assert files["moderator_transcripts"]["classification"] == ["personal_data", "message_content"]
    assert files["polls_activity"]["classification"] == ["personal_data"]
    assert files["group_chat_transcripts"]["rows"] == 2
    assert manifest["pages"] == {"summary": PREFIX + "summary.html"}
    assert "missing_reports" not in manifest


def test_participation_alerts_fire_once_with_counts_only(kaltura: FakeKaltura, clock: FakeClock) -> None:
    config = collab_config()
    config["partners"][str(PARTNER_ID)]["thresholds"] = {
        "poll_participation_below": 0.5,
        "chat_participation_below": 0.9,
        "unresolved_moderation_above": 2,
    }
    deps = make_deps(kaltura, clock, config)

    deliver_until_done(deps, clock, webhook_event())
    again = pull_session_reports(webhook_event(), deps)

    assert again.status is SessionPullStatus.ALREADY_DONE
    messages = {json.loads(p.message)["alert"]: json.loads(p.message) for p in deps.alerts.published}
    assert set(messages) == {"poll_participation_low", "chat_participation_low", "unresolved_moderation_high"}
    assert len(deps.alerts.published) == 3
    assert messages["poll_participation_low"]["details"]["poll_respondents"] == 1
    assert messages["chat_participation_low"]["details"]["chatters"] == 2
    assert messages["unresolved_moderation_high"]["details"]["unresolved_threads"] == 3, "the lobby row is cut"
    text = " ".join(p.message for p in deps.alerts.published)
    for private in ("Hello", "HYPERLINK", "example.com", "Ann", "Budget"):
        assert private not in text
    assert all(
        any(link.endswith(PREFIX + "summary.html") for link in message["links"]) for message in messages.values()
    )


def test_a_failed_report_is_alerted_once_and_the_others_are_written(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.collab_failures["pollsActivity"] = "virtual event not found"
    deps = make_deps(kaltura, clock, collab_config())

    statuses = deliver_until_done(deps, clock, webhook_event())

    assert statuses[-1] is SessionPullStatus.PULLED
    objects = deps.store.objects
    assert report_key(PREFIX, "polls_activity") not in objects
    for name in ("room_data", "attendees", "breakouts", "group_chat_transcripts"):
        assert report_key(PREFIX, name) in objects
    manifest = json.loads(objects[PREFIX + "manifest.json"])
    assert manifest["missing_reports"] == [{"report": "polls_activity", "reason": "virtual event not found"}]
    failed = [json.loads(p.message) for p in deps.alerts.published]
    assert [(alert["alert"], alert["details"]["report"]) for alert in failed] == [
        ("session_report_failed", "pollsActivity")
    ]


def test_the_sweep_retries_a_failed_report_and_rewrites_the_manifest(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.collab_failures["pollsActivity"] = "temporarily unavailable"
    deps = make_deps(kaltura, clock, collab_config())
    deliver_until_done(deps, clock, webhook_event())
    del kaltura.collab_failures["pollsActivity"]
    retry = session_ended_event(
        RoomSession(PARTNER_ID, ROOM, SESSION_ID, START, END),
        dedupe_key="sweep:retry",
        received_at=int(clock()),
        retry_reports=True,
    )

    statuses = deliver_until_done(deps, clock, retry)

    assert statuses[-1] is SessionPullStatus.PULLED
    assert [g.report_name for g in kaltura.collab_generated].count("pollsActivity") == 2
    assert [g.report_name for g in kaltura.collab_generated].count("chatModeration") == 1, "written ones kept"
    assert len(kaltura.csv_calls) == 3, "the room reports are not pulled again"
    manifest = json.loads(deps.store.objects[PREFIX + "manifest.json"])
    assert "missing_reports" not in manifest
    assert "polls_activity" in {entry["report"] for entry in manifest["files"]}
    row = deps.ledger.get(f"session#{PARTNER_ID}#{ROOM}", SESSION_ID)
    assert row is not None and row["failed_reports"] == [] and row["report_retries"] == 1
    assert len(deps.alerts.published) == 1, "the failure was alerted once"


def test_a_report_pending_past_the_limit_fails_and_is_alerted(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.collab_pending_polls = 10_000
    deps = make_deps(kaltura, clock, collab_config(reports=[6000, "chatModeration"], pending_limit_seconds=120))

    statuses = deliver_until_done(deps, clock, webhook_event())

    assert statuses == [SessionPullStatus.WAITING_FOR_REPORTS] * 3 + [SessionPullStatus.PULLED]
    (alert,) = [json.loads(p.message) for p in deps.alerts.published]
    assert alert["alert"] == "session_report_failed"
    assert "pending" in alert["summary"]


def test_a_redelivery_after_done_writes_nothing_new(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, collab_config())
    deliver_until_done(deps, clock, webhook_event())
    before = dict(deps.store.objects)
    calls = len(deps.store.calls)

    outcome = pull_session_reports(webhook_event(), deps)

    assert outcome.status is SessionPullStatus.ALREADY_DONE
    assert deps.store.objects == before
    assert len(deps.store.calls) == calls
    assert len(kaltura.collab_generated) == len(ALL_COLLAB)


def test_another_trigger_while_reports_are_collected_does_not_start_a_second_poll(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.collab_pending_polls = 1
    deps = make_deps(kaltura, clock, collab_config())
    pull_session_reports(webhook_event(), deps)
    sweep = session_ended_event(
        RoomSession(PARTNER_ID, ROOM, SESSION_ID, START, END), dedupe_key="sweep:x", received_at=int(clock())
    )

    outcome = pull_session_reports(sweep, deps)

    assert outcome.status is SessionPullStatus.IN_PROGRESS
    assert len(deps.events.sent) == 1


def test_a_room_of_a_virtual_event_asks_with_the_virtualeventid_privilege(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.entries[ROOM]["virtualEventId"] = "4321"
    deps = make_deps(kaltura, clock, collab_config(reports=[6000, "pollsActivity"]))

    deliver_until_done(deps, clock, webhook_event())

    (generate,) = kaltura.collab_generated
    assert generate.privileges == "virtualeventid:4321"
    assert generate.parameters["virtual_event_ids"] == ["4321"]


def test_the_summary_page_shows_the_session_escaped(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, collab_config())

    deliver_until_done(deps, clock, webhook_event())

    page = deps.store.objects[PREFIX + "summary.html"].decode("utf-8")
    assert deps.store.content_types[PREFIX + "summary.html"].startswith("text/html")
    assert "Ann &quot;The Boss&quot; Lee" in page
    assert "=HYPERLINK(evil) room" in page, "shown as text (the cleaner's guard dropped, escaped)"
    assert "<script" not in page and "http://" not in page.replace("http://x.example", "")
    assert page.index("=cmd|") < page.index("Ann &quot;") < page.index("-2+3"), "sorted by engagement"
    assert "Which topic, next?" in page and "Budget, again" in page
    assert 'href="../../report=attendees/' in page


def test_transcripts_are_refused_unless_enabled(kaltura: FakeKaltura, clock: FakeClock) -> None:
    refused = (
        {"reports": [6000, "groupChatTranscripts"]},  # message content without transcripts_enabled
        {"reports": [6000, "privateTranscripts"]},  # not a session report
        {"reports": [6000], "pending_limit_seconds": 10},
    )
    for rules in refused:
        deps = make_deps(kaltura, clock, partner_config(session_reports=rules))
        with pytest.raises(ConfigError, match="session_reports"):
            deps.config.partner(PARTNER_ID)


def test_without_the_attendees_report_the_page_says_so_and_the_transcript_counts_the_chatters(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    config = collab_config(reports=[6000, "groupChatTranscripts"])
    config["partners"][str(PARTNER_ID)]["thresholds"] = {"chat_participation_below": 0.9}
    deps = make_deps(kaltura, clock, config)

    deliver_until_done(deps, clock, webhook_event())

    page = deps.store.objects[PREFIX + "summary.html"].decode("utf-8")
    assert "Report 6001 (attendees) was not pulled." in page
    assert "Attendees who answered polls" in page and "n/a (report not pulled)" in page
    (alert,) = [json.loads(p.message) for p in deps.alerts.published]
    # Report 6000's unique users (3) stand in for the attendees; two of them wrote in the session.
    assert (alert["alert"], alert["details"]["chatters"], alert["details"]["attendees"]) == (
        "chat_participation_low",
        2,
        3,
    )


def test_the_summary_page_can_be_turned_off(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, collab_config(summary_page=False))

    deliver_until_done(deps, clock, webhook_event())

    assert PREFIX + "summary.html" not in deps.store.objects
    assert "pages" not in json.loads(deps.store.objects[PREFIX + "manifest.json"])


def test_a_copy_of_the_delivery_that_took_over_keeps_the_only_poll_chain(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.collab_pending_polls = 5
    deps = make_deps(kaltura, clock, collab_config(reports=[6000, "pollsActivity"]))
    pull_session_reports(webhook_event(), deps)
    resent = deps.events.sent[-1]
    clock.advance(resent.delay_seconds)
    original_update = deps.ledger.update

    def a_copy_takes_over_first(pk: str, sk: str, attrs: Any, **kwargs: Any) -> Any:
        if attrs.get("state") == "collecting_reports":
            deps.ledger.update = original_update  # type: ignore[method-assign]
            original_update(pk, sk, {"owner": "another-copy"})
        return original_update(pk, sk, attrs, **kwargs)

    deps.ledger.update = a_copy_takes_over_first  # type: ignore[method-assign]
    outcome = pull_session_reports(resent.event, deps)

    assert outcome.status is SessionPullStatus.IN_PROGRESS
    assert len(deps.events.sent) == 1, "no second chain of re-deliveries"


def test_transcripts_and_names_are_never_logged(
    kaltura: FakeKaltura, clock: FakeClock, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    kaltura.collab_failures["chatModeration"] = "boom"
    deps = make_deps(kaltura, clock, collab_config())

    deliver_until_done(deps, clock, webhook_event())

    logged = capsys.readouterr().out + caplog.text
    assert "chat and collaboration report written" in logged
    for private in ("Hello, all", "HYPERLINK", "Recording?", "Budget, again", "example.com", "Ann"):
        assert private not in logged
