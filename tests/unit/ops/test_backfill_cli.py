"""kauto-backfill on fakes and in-process moto: weeks of a range, dry runs that change nothing, one scheduler call
per week, session_ended events for the sessions of a window, dead letters moved back once, clear errors."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest
from kauto.kaltura import StreamResult
from kauto.models import EventKind
from kauto_local.fakes import InMemoryEventQueue, InMemoryLedger
from kauto_ops.backfill import main
from kauto_ops.dlq import replay_dead_letters
from kauto_ops.sessions import SessionAction, backfill_sessions
from kauto_ops.stack import OpsError
from kauto_ops.weekly import backfill_weeks, check_ended, iso_weeks
from moto import mock_aws

PARTNER_ID = 1234567


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------------------------ weekly


def test_iso_weeks_cover_every_week_overlapping_the_range_across_a_year_end() -> None:
    assert iso_weeks(date(2024, 12, 25), date(2025, 1, 13)) == ["2024-W52", "2025-W01", "2025-W02", "2025-W03"]
    assert iso_weeks(date(2025, 1, 6), date(2025, 1, 6)) == ["2025-W02"]
    assert iso_weeks(date(2020, 12, 28), date(2021, 1, 3)) == ["2020-W53"]


def test_weeks_that_have_not_ended_are_refused() -> None:
    check_ended(["2025-W02"], date(2025, 1, 13))
    with pytest.raises(OpsError, match="2025-W02 has not ended yet"):
        check_ended(["2025-W02"], date(2025, 1, 12))


def test_weekly_dry_run_lists_the_weeks_and_touches_nothing() -> None:
    status, out, err = run_cli(
        "weekly", "--partner", "1234567", "--from", "2025-01-01", "--to", "2025-01-19", "--dry-run"
    )

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "2025-W01: run unknown; would be started",
        "2025-W02: run unknown; would be started",
        "2025-W03: run unknown; would be started",
        "would request 3 week(s) for partner 1234567",
    ]


class FakeLambda:
    """Records invocations; answers like the weekly scheduler (a duplicate for weeks in ``existing``)."""

    def __init__(self, existing: frozenset[str] = frozenset(), fail_week: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.existing = existing
        self.fail_week = fail_week

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        request = json.loads(Payload)
        self.calls.append({"function": FunctionName, "type": InvocationType, **request})
        if request["week"] == self.fail_week:
            body = {"errorMessage": "weekly runs not started for partners 1234567 (LedgerUnavailableError)"}
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        duplicate = request["week"] in self.existing and not request["force"]
        totals = {
            "partners": 1,
            "started": 0 if duplicate else 1,
            "duplicate": int(duplicate),
            "jobs": 0 if duplicate else 9,
        }
        return {"Payload": io.BytesIO(json.dumps(totals).encode())}


def test_each_week_is_one_synchronous_scheduler_call_with_the_schedules_input() -> None:
    fake = FakeLambda(existing=frozenset({"2025-W01"}))
    ledger = InMemoryLedger()
    ledger.put(f"weekly#{PARTNER_ID}", "run#2025-W01", {"state": "complete", "run_id": "a" * 32})

    results = backfill_weeks(
        fake, "kauto-weekly-scheduler", PARTNER_ID, ["2025-W01", "2025-W02"], ledger=ledger, force=False, dry_run=False
    )

    assert fake.calls == [
        {
            "function": "kauto-weekly-scheduler",
            "type": "RequestResponse",
            "partner_id": PARTNER_ID,
            "week": w,
            "force": False,
        }
        for w in ("2025-W01", "2025-W02")
    ]
    assert [(r.week, r.existing_state, r.totals["duplicate"]) for r in results if r.totals] == [
        ("2025-W01", "complete", 1),
        ("2025-W02", None, 0),
    ]


def test_a_failing_scheduler_stops_with_its_message() -> None:
    fake = FakeLambda(fail_week="2025-W02")

    with pytest.raises(OpsError, match="failed for week 2025-W02: weekly runs not started"):
        backfill_weeks(
            fake, "fn", PARTNER_ID, ["2025-W01", "2025-W02", "2025-W03"], ledger=None, force=False, dry_run=False
        )

    assert [call["week"] for call in fake.calls] == ["2025-W01", "2025-W02"]


# ---------------------------------------------------------------------------------------------------- sessions


ROOM_HEADER = "entry_id,entry_name,parent_entry_id,cue_point_id,session_start_time,session_end_time"


class FakeRoomReports:
    """``client.reports.csv`` for report 6000: the raw CSV Kaltura sends (BOM stripped by the client)."""

    def __init__(self, lines: list[str]) -> None:
        self.body = ("\n".join([ROOM_HEADER, *lines]) + "\n").encode()
        self.params: list[dict[str, Any]] = []

    def csv(self, report_id: int, params: dict[str, Any], sink: Any, **_: Any) -> StreamResult:
        assert report_id == 6000
        self.params.append(dict(params))
        for start in range(0, len(self.body), 5):
            sink.write(self.body[start : start + 5])
        return StreamResult(len(self.body), hashlib.sha256(self.body).hexdigest(), self.body.count(b"\n"))


class FakeClient:
    def __init__(self, lines: list[str]) -> None:
        self.reports = FakeRoomReports(lines)


SINCE = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp())
UNTIL = int(datetime(2025, 3, 8, tzinfo=UTC).timestamp())


def test_sessions_that_ended_in_the_window_are_sent_once_and_pulled_ones_skipped() -> None:
    client = FakeClient(
        [
            f"0_room,Standup,,cp_1,{SINCE - 7200},{SINCE + 600}",  # started before, ended inside: in
            f"0_room,Standup,,cp_2,{SINCE + 3600},{SINCE + 7200}",  # pulled already
            f"0_break,Breakout,0_room,cp_2,{SINCE + 3600},{SINCE + 7200}",  # a breakout room: not a session
            f"0_room,Standup,,cp_3,{UNTIL - 60},{UNTIL + 60}",  # ends after the window
            f"0_room,Standup,,cp_4,{SINCE - 7200},{SINCE - 1}",  # ended before the window
        ]
    )
    events = InMemoryEventQueue()
    ledger = InMemoryLedger()
    ledger.put(f"session#{PARTNER_ID}#0_room", "cp_2", {"state": "done"})

    items = backfill_sessions(
        client,
        PARTNER_ID,
        SINCE,
        UNTIL,
        events=events,
        ledger=ledger,
        now=UNTIL + 100,
        dry_run=False,
    )

    assert [(i.session.session_id, i.action) for i in items] == [
        ("cp_1", SessionAction.ENQUEUED),
        ("cp_2", SessionAction.ALREADY_PULLED),
    ]
    (sent,) = events.sent
    assert sent.event.kind is EventKind.SESSION_ENDED
    assert (sent.event.entry_id, sent.event.object_id) == ("0_room", "cp_1")
    assert sent.event.dedupe_key == f"backfill:session:{PARTNER_ID}:0_room:cp_1"
    # Report 6000 selects by start time: the query reaches back for long sessions ending in the window.
    assert client.reports.params[0]["from_date"] < SINCE - 7200


def test_a_sessions_dry_run_sends_nothing() -> None:
    client = FakeClient([f"0_room,Standup,,cp_1,{SINCE + 60},{SINCE + 600}"])
    events = InMemoryEventQueue()

    items = backfill_sessions(client, PARTNER_ID, SINCE, UNTIL, events=events, ledger=None, now=UNTIL, dry_run=True)

    assert [i.action for i in items] == [SessionAction.WOULD_ENQUEUE]
    assert events.sent == []


# ------------------------------------------------------------------------------------------------- replay-dlq


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def queues(sqs: Any) -> tuple[str, str]:
    target = sqs.create_queue(QueueName="events")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    for index in range(3):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"kind": "session_ended", "partner_id": PARTNER_ID, "n": index}),
            MessageAttributes={"origin": {"DataType": "String", "StringValue": f"m{index}"}},
        )
    return target, dlq


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return received.get("Messages", [])


def test_replay_moves_every_dead_letter_back_once_with_body_and_attributes(sqs: Any) -> None:
    target, dlq = queues(sqs)

    first = replay_dead_letters(sqs, dead_letter_url=dlq, target_url=target, wait_seconds=0)
    second = replay_dead_letters(sqs, dead_letter_url=dlq, target_url=target, wait_seconds=0)

    moved = drain(sqs, target)
    assert (first.count, second.count) == (3, 0)
    assert sorted(json.loads(m["Body"])["n"] for m in moved) == [0, 1, 2]
    assert sorted(m["MessageAttributes"]["origin"]["StringValue"] for m in moved) == ["m0", "m1", "m2"]
    assert drain(sqs, dlq) == []
    assert first.messages[0].hint == f"kind=session_ended partner_id={PARTNER_ID}"


def test_replay_dry_run_lists_and_leaves_the_messages_visible(sqs: Any) -> None:
    target, dlq = queues(sqs)

    listed = replay_dead_letters(sqs, dead_letter_url=dlq, target_url=target, dry_run=True, wait_seconds=0)

    assert listed.count == 3
    assert drain(sqs, target) == []
    assert len(drain(sqs, dlq)) == 3  # visible again at once


def test_replay_stops_at_max(sqs: Any) -> None:
    target, dlq = queues(sqs)

    moved = replay_dead_letters(sqs, dead_letter_url=dlq, target_url=target, max_messages=2, wait_seconds=0)

    assert moved.count == 2
    assert len(drain(sqs, target)) == 2


# ------------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("replay-dlq", "--queue", "events"), "pass --stack NAME (the deployed stack) or --dlq-url"),
        (("weekly", "--partner", "1", "--from", "2025-02-01", "--to", "2025-01-01", "--dry-run"), "is before --from"),
        (("sessions", "--partner", "1", "--from", "2025-01-01", "--to", "2025-03-01"), "more than 31 days"),
        (("weekly", "--partner", "1", "--from", "2999-01-04", "--to", "2999-01-05", "--dry-run"), "has not ended yet"),
        (("sessions", "--partner", "1", "--from", "2999-01-01", "--to", "2999-01-02"), "in the future"),
    ],
)
def test_errors_say_what_to_fix(argv: tuple[str, ...], message: str) -> None:
    status, out, err = run_cli(*argv)

    assert status == 1
    assert out == ""
    assert err.startswith("kauto-backfill: error: ")
    assert message in err


def test_invalid_arguments_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, _ = run_cli("weekly", "--partner", "abc", "--from", "2025-01-01", "--to", "2025-01-02")

    assert status == 2
    assert "is not a positive integer" in capsys.readouterr().err


def test_unknown_stack_is_a_clear_error(sqs: Any) -> None:
    status, _, err = run_cli("replay-dlq", "--queue", "events", "--stack", "nope")

    assert status == 1
    assert "stack nope does not exist" in err
