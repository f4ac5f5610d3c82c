"""The reconciliation sweep on fakes: what it finds and enqueues (ended sessions, entries without a caption decision,
vendor task statuses), what it leaves alone, the open-task check, watermarks (advance, overlap, bounded runs that
resume) and failure isolation."""

from __future__ import annotations

from typing import Any

import pytest
from kauto.automations.captions import caption_pk, decision_sk
from kauto.automations.session_events import RoomSession, session_ended_event, session_from_event
from kauto.automations.sessions import pull_session_reports
from kauto.automations.sweep import (
    MIN_SECONDS_LEFT,
    SweepError,
    SweepPart,
    entry_fields,
    run_sweep,
    task_fields,
)
from kauto.automations.tasks import task_pk
from kauto.intake.normalize import ENTRY_FIELDS, VENDOR_TASK_FIELDS
from kauto.kaltura import Entry, KalturaRateLimitedError, VendorTask
from kauto.models import BodyFormat, EventKind, KalturaEvent
from room_fakes import (
    NOW,
    PARTNER_ID,
    Breakout,
    FakeClock,
    FakeKaltura,
    FlakyEventQueue,
    Session,
    make_deps,
    partner_config,
)

LOOKBACK = 86400
OVERLAP = 900


def sweep_config(**sections: Any) -> dict[str, Any]:
    sections.setdefault("sweep", {"lookback_seconds": LOOKBACK, "overlap_seconds": OVERLAP, "max_slice_results": 100})
    return partner_config(**sections)


def captions_on() -> dict[str, Any]:
    return {"enabled": True, "catalog_item_id": 11}


def sent(deps: Any) -> list[KalturaEvent]:
    return [queued.event for queued in deps.events.sent]


def watermark(deps: Any, part: SweepPart) -> dict[str, Any] | None:
    return deps.ledger.get(f"sweep#{PARTNER_ID}", part.value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kaltura() -> FakeKaltura:
    return FakeKaltura()


# ------------------------------------------------------------------------------------------------------ sessions


def test_ended_sessions_not_yet_pulled_are_enqueued_once(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_session(
        Session("1_roomA", "1_done", NOW - 9000, NOW - 7000)  # pulled already (below)
    )
    breakout = Breakout("1_brk", "B", "1_bcp", NOW - 4000, NOW - 3000)
    kaltura.add_session(Session("1_roomA", "1_new", NOW - 5000, NOW - 1000, breakouts=[breakout]))
    kaltura.add_session(Session("1_roomB", "1_long", NOW - 40000, NOW - 2000))  # started 11 h ago, ended in window
    kaltura.add_session(Session("1_roomB", "1_old", NOW - 100_000, NOW - 95_000))  # ended before the window
    deps = make_deps(kaltura, clock, sweep_config())
    deps.ledger.put(f"session#{PARTNER_ID}#1_roomA", "1_done", {"state": "done"})

    report = run_sweep(deps, NOW)

    events = sent(deps)
    assert [event.dedupe_key for event in events] == [  # in order of their end
        f"sweep:session:{PARTNER_ID}:1_roomB:1_long",
        f"sweep:session:{PARTNER_ID}:1_roomA:1_new",
    ]
    first = events[1]
    assert (first.kind, first.body_format, first.partner_id) == (EventKind.SESSION_ENDED, BodyFormat.SWEEP, PARTNER_ID)
    assert session_from_event(first) == RoomSession(PARTNER_ID, "1_roomA", "1_new", NOW - 5000, NOW - 1000)
    sessions_call = kaltura.csv_calls[0]
    assert sessions_call.report_id == 6000
    assert int(sessions_call.params["from_date"]) <= NOW - LOOKBACK - 12 * 3600
    assert report.totals()["enqueued"] == 2
    assert watermark(deps, SweepPart.SESSIONS) is not None


def test_done_sessions_with_failed_reports_are_sent_again_to_retry_them(kaltura: FakeKaltura, clock: FakeClock) -> None:
    for session_id in ("1_failed", "1_gave_up", "1_fine"):
        kaltura.add_session(Session("1_roomA", session_id, NOW - 5000, NOW - 1000))
    deps = make_deps(kaltura, clock, sweep_config())
    pk = f"session#{PARTNER_ID}#1_roomA"
    deps.ledger.put(pk, "1_failed", {"state": "done", "failed_reports": ["pollsActivity"], "report_retries": 1})
    deps.ledger.put(pk, "1_gave_up", {"state": "done", "failed_reports": ["pollsActivity"], "report_retries": 3})
    deps.ledger.put(pk, "1_fine", {"state": "done", "failed_reports": []})

    run_sweep(deps, NOW)

    (event,) = sent(deps)
    assert event.dedupe_key == f"sweep:session:{PARTNER_ID}:1_roomA:1_failed:retry-reports:1"
    assert event.fields["retryReports"] == 1


def test_a_sweep_event_is_pulled_by_the_session_path(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_session(Session("1_roomA", "1_new", NOW - 5000, NOW - 1000))
    deps = make_deps(kaltura, clock, sweep_config())
    run_sweep(deps, NOW)

    (event,) = sent(deps)
    pull_session_reports(KalturaEvent.from_json(event.to_json()), deps)
    clock.advance(900)
    deps.events.sent.clear()  # type: ignore[attr-defined]
    run_sweep(deps, int(clock.now))

    assert sent(deps) == []
    row = deps.ledger.get(f"session#{PARTNER_ID}#1_roomA", "1_new")
    assert row is not None and row["state"] == "done"


def test_session_reports_disabled_skips_the_sessions_part(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_session(Session("1_roomA", "1_new", NOW - 5000, NOW - 1000))
    deps = make_deps(kaltura, clock, sweep_config(session_reports={"enabled": False}))

    report = run_sweep(deps, NOW)

    assert sent(deps) == [] and kaltura.csv_calls == []
    assert [part.part for part in report.partners[0].parts] == [SweepPart.TASKS]


# ------------------------------------------------------------------------------------------------------- entries


def test_ready_entries_without_a_final_caption_decision_are_enqueued(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_entry("0_new", updatedAt=NOW - 600, adminTags="lecture", categoriesIds="12,13", sourceType="1")
    decided = kaltura.add_entry("0_decided", updatedAt=NOW - 500)
    credit = kaltura.add_entry("0_credit", updatedAt=NOW - 400)
    kaltura.add_entry("0_converting", updatedAt=NOW - 300, status=1)
    kaltura.add_entry("0_room", updatedAt=NOW - 200, type="room.room", objectType="KalturaRoomEntry")
    kaltura.add_entry("0_old", updatedAt=NOW - 2 * LOOKBACK)
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()))
    deps.ledger.put(caption_pk(PARTNER_ID, "0_decided"), decision_sk(Entry.from_api(decided)), {"final": True})
    # A credit problem is not final: the sweep tries again.
    deps.ledger.put(caption_pk(PARTNER_ID, "0_credit"), decision_sk(Entry.from_api(credit)), {"final": False})

    run_sweep(deps, NOW)

    entry_events = [event for event in sent(deps) if event.kind is EventKind.ENTRY_READY]
    assert [event.entry_id for event in entry_events] == ["0_new", "0_credit"]
    new = entry_events[0]
    assert new.dedupe_key == f"sweep:entry:{PARTNER_ID}:0_new:{NOW - 600}"
    assert (new.object_id, new.object_type, new.status, new.body_format) == (
        "0_new",
        "KalturaMediaEntry",
        "2",
        BodyFormat.SWEEP,
    )
    assert new.fields["adminTags"] == "lecture" and new.fields["categoriesIds"] == "12,13"
    assert new.fields["status"] == 2 and new.fields["updatedAt"] == NOW - 600 and new.fields["sourceType"] == "1"
    assert kaltura.entry_lists == [(NOW - LOOKBACK, NOW, "updatedAt")]


def test_entry_fields_are_named_and_typed_like_the_webhooks() -> None:
    raw = {
        "objectType": "KalturaMediaEntry",
        "id": "0_x",
        "name": "Lecture",
        "type": 1,
        "mediaType": "1",
        "status": 2,
        "duration": "125",
        "msDuration": 125000,
        "createdAt": 1,
        "updatedAt": 2,
        "tags": "a,b",
        "adminTags": "kalturameeting",
        "categories": "Top>Sub",
        "categoriesIds": "3",
        "replacedEntryId": "",
        "replacementStatus": 0,
        "sourceType": 36,
        "rootEntryId": "0_live",
        "partnerId": PARTNER_ID,
        "userId": "someone@example.com",
    }

    fields = entry_fields(Entry.from_api(raw))

    assert set(fields) <= set(ENTRY_FIELDS)
    assert set(fields) == set(ENTRY_FIELDS) - {"replacedEntryId"}
    assert (fields["mediaType"], fields["duration"], fields["sourceType"], fields["type"]) == (1, 125, "36", 1)


def test_captions_disabled_skips_the_entries_part(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_entry("0_new", updatedAt=NOW - 600)
    deps = make_deps(kaltura, clock, sweep_config())

    run_sweep(deps, NOW)

    assert kaltura.entry_lists == [] and sent(deps) == []


# --------------------------------------------------------------------------------------------------------- tasks


def test_task_statuses_the_ledger_lacks_are_enqueued_and_known_ones_are_not(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.add_task(1, status=3, updatedAt=NOW - 100)  # PROCESSING, ledger has PENDING
    kaltura.add_task(2, status=3, updatedAt=NOW - 90)  # PROCESSING, ledger has it already
    kaltura.add_task(3, status=6, updatedAt=NOW - 80, errDescription="audio missing")  # ERROR: always sent
    kaltura.add_task(4, status=2, updatedAt=NOW - 70, outputObjectId="1_cap")  # READY, unknown
    kaltura.add_task(5, status=1, updatedAt=NOW - 2 * LOOKBACK)  # outside the window
    deps = make_deps(kaltura, clock, sweep_config())
    deps.ledger.put(task_pk(PARTNER_ID, 1), "task", {"state": "pending", "status": 1, "updated_at": NOW - 500})
    deps.ledger.put(task_pk(PARTNER_ID, 2), "task", {"state": "processing", "status": 3, "updated_at": NOW - 90})
    deps.ledger.put(task_pk(PARTNER_ID, 3), "task", {"state": "error", "status": 6, "updated_at": NOW - 80})

    run_sweep(deps, NOW)

    task_events = [event for event in sent(deps) if event.kind is EventKind.VENDOR_TASK_STATUS]
    assert [(event.object_id, event.status) for event in task_events] == [("1", "3"), ("3", "6"), ("4", "2")]
    error = task_events[1]
    assert error.dedupe_key == f"sweep:task:{PARTNER_ID}:3:6:{NOW - 80}"
    assert error.fields["errDescription"] == "audio missing" and error.entry_id == "0_entry"
    assert VendorTask.from_api({**error.fields, "partnerId": PARTNER_ID}).status == 6
    assert kaltura.task_list_calls[0]["updatedAtGreaterThanOrEqual"] == NOW - LOOKBACK


def test_task_fields_are_named_like_the_webhooks() -> None:
    task = VendorTask.from_api(
        {"id": 7, "entryId": "0_e", "status": 2, "catalogItemId": 1, "serviceType": 2, "price": 1.5, "createdAt": 1}
    )
    fields = task_fields(task)
    assert set(fields) <= set(VENDOR_TASK_FIELDS)
    expected = {"id": 7, "entryId": "0_e", "status": 2, "catalogItemId": 1, "serviceType": 2, "price": 1.5}
    assert fields == {**expected, "createdAt": 1}


def test_open_tasks_are_tracked_and_a_stuck_one_alerts_once(kaltura: FakeKaltura, clock: FakeClock) -> None:
    # Best effort: SLA 120 h x grace 1.5 = 180 h after createdAt.
    kaltura.add_task(8, status=3, createdAt=NOW - 200 * 3600, updatedAt=NOW - 3 * LOOKBACK)
    kaltura.add_task(9, status=1, createdAt=NOW - 3600, updatedAt=NOW - 3 * LOOKBACK)
    kaltura.add_task(10, status=2, createdAt=NOW - 200 * 3600, updatedAt=NOW - 3 * LOOKBACK)  # final: not open
    deps = make_deps(kaltura, clock, sweep_config())

    report = run_sweep(deps, NOW)
    clock.advance(900)
    run_sweep(deps, int(clock.now))

    assert report.totals()["checked"] == 2
    for task_id, state in ((8, "processing"), (9, "pending")):
        row = deps.ledger.get(task_pk(PARTNER_ID, task_id), "task")
        assert row is not None and row["state"] == state
    assert deps.ledger.get(task_pk(PARTNER_ID, 10), "task") is None
    stuck = [alert for alert in deps.alerts.published if alert.attributes["alert"]["StringValue"] == "reach_task_stuck"]  # type: ignore[attr-defined]
    assert len(stuck) == 1 and "task 8" in stuck[0].subject


# ---------------------------------------------------------------------------------------------------- watermarks


def test_watermarks_advance_and_the_next_window_overlaps_the_previous(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()))

    run_sweep(deps, NOW)
    # An entry updated just before the first run that Kaltura's index showed only afterwards.
    kaltura.add_entry("0_late", updatedAt=NOW - 60)
    run_sweep(deps, NOW + 900)

    assert kaltura.entry_lists == [(NOW - LOOKBACK, NOW, "updatedAt"), (NOW - OVERLAP, NOW + 900, "updatedAt")]
    assert [event.entry_id for event in sent(deps)] == ["0_late"]
    row = watermark(deps, SweepPart.ENTRIES)
    assert row is not None and (row["watermark"], row["complete"]) == (NOW + 900, True)


def test_items_seen_again_in_the_overlap_are_not_enqueued_twice(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_entry("0_edge", updatedAt=NOW - 100)
    kaltura.add_session(Session("1_roomA", "1_edge", NOW - 3000, NOW - 100))
    kaltura.add_task(1, status=3, updatedAt=NOW - 100)
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()))

    run_sweep(deps, NOW)
    run_sweep(deps, NOW + 900)

    assert sorted(event.dedupe_key for event in sent(deps)) == sorted(
        [
            f"sweep:entry:{PARTNER_ID}:0_edge:{NOW - 100}",
            f"sweep:session:{PARTNER_ID}:1_roomA:1_edge",
            f"sweep:task:{PARTNER_ID}:1:3:{NOW - 100}",
        ]
    )


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_bounded_run_resumes_where_it_stopped_without_missing_anything(
    kaltura: FakeKaltura, clock: FakeClock, limit: int
) -> None:
    for index in range(5):
        kaltura.add_entry(f"0_e{index}", updatedAt=NOW - 5000 + index * 100)
    kaltura.add_entry("0_twin", updatedAt=NOW - 5000)  # shares its second with the first entry
    sweep_rules = {"lookback_seconds": LOOKBACK, "overlap_seconds": OVERLAP, "max_slice_results": limit}
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on(), sweep=sweep_rules))

    run_sweep(deps, NOW)
    row = watermark(deps, SweepPart.ENTRIES)
    assert row is not None and row["complete"] is False
    assert len(sent(deps)) == limit
    runs = 1
    while row is not None and not row["complete"]:
        assert runs < 10, "the sweep stopped making progress"
        run_sweep(deps, NOW + 900 * runs)
        row = watermark(deps, SweepPart.ENTRIES)
        runs += 1

    assert sorted(event.entry_id for event in sent(deps)) == sorted(["0_twin"] + [f"0_e{i}" for i in range(5)])
    assert len(sent(deps)) == 6  # nothing twice
    resumed_from = [since for since, _, _ in kaltura.entry_lists[1:]]
    assert resumed_from[0] > NOW - 5000 - OVERLAP  # resumed at the last entry handled, not overlap earlier


def test_a_run_out_of_time_takes_nothing_and_keeps_the_watermark(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_entry("0_e", updatedAt=NOW - 600)
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()))

    report = run_sweep(deps, NOW, time_left=lambda: MIN_SECONDS_LEFT - 1)

    assert sent(deps) == [] and report.partners[0].parts == []
    assert watermark(deps, SweepPart.ENTRIES) is None


def test_the_catch_up_window_is_capped_at_the_lookback(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()))
    deps.ledger.put(f"sweep#{PARTNER_ID}", "entries", {"watermark": NOW - 10 * LOOKBACK, "complete": True})

    run_sweep(deps, NOW)

    since = NOW - 10 * LOOKBACK - OVERLAP
    assert kaltura.entry_lists == [(since, since + LOOKBACK, "updatedAt")]
    row = watermark(deps, SweepPart.ENTRIES)
    assert row is not None and row["watermark"] == since + LOOKBACK


# ------------------------------------------------------------------------------------------------------ failures


def test_a_failing_part_keeps_its_watermark_and_does_not_stop_the_others(
    kaltura: FakeKaltura, clock: FakeClock
) -> None:
    kaltura.add_entry("0_e", updatedAt=NOW - 600)

    def refused(report_id: int, params: Any) -> bytes:
        raise KalturaRateLimitedError("ACTION_BLOCKED", "blocked")

    kaltura.render = refused  # type: ignore[method-assign]
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()))

    with pytest.raises(SweepError) as raised:
        run_sweep(deps, NOW)

    assert raised.value.failures == {(PARTNER_ID, "sessions"): "KalturaRateLimitedError"}
    assert watermark(deps, SweepPart.SESSIONS) is None
    assert watermark(deps, SweepPart.ENTRIES) is not None
    assert [event.entry_id for event in sent(deps)] == ["0_e"]


def test_an_enqueue_that_fails_is_sent_again_by_the_next_run(kaltura: FakeKaltura, clock: FakeClock) -> None:
    kaltura.add_entry("0_e", updatedAt=NOW - 600)
    queue = FlakyEventQueue()
    deps = make_deps(kaltura, clock, sweep_config(captions=captions_on()), events=queue)

    queue.down = True
    with pytest.raises(SweepError) as raised:
        run_sweep(deps, NOW)
    assert raised.value.failures == {(PARTNER_ID, "entries"): "QueueUnavailableError"}
    queue.down = False
    run_sweep(deps, NOW + 900)

    assert [event.entry_id for event in sent(deps)] == ["0_e"]


def test_only_partners_with_a_configuration_section_are_swept(kaltura: FakeKaltura, clock: FakeClock) -> None:
    deps = make_deps(kaltura, clock, {})

    report = run_sweep(deps, NOW)

    assert report.partners == () and kaltura.csv_calls == []


def test_session_events_built_by_the_sweep_survive_the_queue() -> None:
    session = RoomSession(PARTNER_ID, "1_r", "1_s", NOW - 60, NOW)
    event = session_ended_event(session, dedupe_key="sweep:session:1:1_r:1_s", received_at=NOW)
    assert session_from_event(KalturaEvent.from_json(event.to_json())) == session
