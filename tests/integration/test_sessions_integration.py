"""Room session reports end to end: the Kaltura simulator sends a session-ended notification (or a meeting recording
becomes ready), the webhook enqueues it, the worker pulls reports 6000/6001/6002 from the simulator over loopback
HTTP into the template's bucket, writes the manifest, records the session in the ledger table and alerts through the
topic; redeliveries change nothing."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kauto.aws.report_keys import report_key
from kauto_local.simulator import Attendee
from product_stack import PARTNER_ID, ProductStack, csv_rows, product_stack, session_prefix_of

pytestmark = pytest.mark.integration

PADDING = 60
ADMIN_SECRET_FRAGMENT = "0123456789abcdef"
CONFIG = {
    "partners": {
        str(PARTNER_ID): {
            "session_reports": {"window_padding_seconds": PADDING},
            "thresholds": {
                "session_engagement_rate_below": 0.9,
                "unique_users_below": 10,
                "attendee_engagement_below": 0.5,
            },
        }
    }
}
ATTENDEES = [
    Attendee("host01", '=HYPERLINK("http://x")', "host01@example.com", "Host", 3000, 0.95),
    Attendee("user02", "+Mallory, the tester", "user02@example.com", "Attendee", 1200, 0.3),
    Attendee("user03", '@Élodie "Lo" Dupont', "user03@example.com", "Attendee", 900, 0.2),
    Attendee("user04", "\tTabby", "user04@example.com", "Attendee", 600, 0.7),
]


@pytest.fixture
def stack(moto_aws: str) -> Iterator[ProductStack]:
    # moto keeps its state per process: moto_aws resets it, so every test gets a fresh stack.
    with product_stack(CONFIG) as running:
        yield running


def add_session(stack: ProductStack, **changes: Any) -> Any:
    now = int(time.time())
    values: dict[str, Any] = {
        "room_name": "-Quarterly review",
        "start": now - 4000,
        "end": now - 400,
        "attendees": ATTENDEES,
        "breakouts": 2,
        "announce": False,
    }
    values.update(changes)
    return stack.sim.add_room_session(PARTNER_ID, **values)


def test_a_session_ended_notification_lands_clean_reports_a_manifest_and_alerts_once(stack: ProductStack) -> None:
    session = add_session(stack)
    # Noise in the same window: another room's session must not leak into this session's files.
    add_session(stack, room_name="Other room", attendees=3)

    assert stack.deliver(stack.sim.dispatcher.session_ended_envelope(session.cue_point_id)) == 200
    run = stack.run_worker()

    assert run.failed == [] and [body["kind"] for body in run.handled] == ["session_ended"]
    prefix = session_prefix_of(session)
    objects = stack.objects(prefix.split("/entry_id=")[0])  # each report kind has its folder above the session's
    assert sorted(objects) == sorted(
        [prefix + "manifest.json", prefix + "summary.html"]
        + [report_key(prefix, name) for name in ("attendees", "breakouts", "room_data")]
    )

    room = csv_rows(objects[report_key(prefix, "room_data")])
    assert [(row["entry_id"], row["cue_point_id"]) for row in room] == [(session.room_entry_id, session.cue_point_id)]
    assert room[0]["entry_name"] == "'-Quarterly review"
    assert room[0]["session_start_time_iso"] == datetime.fromtimestamp(session.start, tz=UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    attendees = csv_rows(objects[report_key(prefix, "attendees")])
    assert [row["user_name"] for row in attendees] == [
        '\'=HYPERLINK("http://x")',
        "'+Mallory  the tester",  # Kaltura replaced the comma with a space (docs/kaltura.md#report-csv-strings)
        '\'@Élodie "Lo" Dupont',
        "'\tTabby",
    ]
    assert [row["user_id"] for row in attendees] == ["host01", "user02", "user03", "user04"]
    breakouts = csv_rows(objects[report_key(prefix, "breakouts")])
    assert [row["breakout_entry_id"] for row in breakouts] == [b.entry_id for b in session.breakouts]
    for key, body in objects.items():
        assert not body.startswith(b"\xef\xbb\xbf"), key
        if key.endswith(".csv"):
            assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")

    manifest = json.loads(objects[prefix + "manifest.json"])
    assert manifest["scope"] == {"entry_id": session.room_entry_id, "session_id": session.cue_point_id}
    assert (manifest["window"]["start_unix"], manifest["window"]["end_unix"]) == (
        session.start - PADDING,
        session.end + PADDING,
    )
    files = {entry["report"]: entry for entry in manifest["files"]}
    assert {name: entry["rows"] for name, entry in files.items()} == {"room_data": 1, "attendees": 4, "breakouts": 2}
    for entry in files.values():
        assert entry["sha256"] == hashlib.sha256(objects[entry["key"]]).hexdigest()
    assert ADMIN_SECRET_FRAGMENT not in json.dumps(manifest)

    row = stack.ledger(f"session#{PARTNER_ID}#{session.room_entry_id}", session.cue_point_id)
    assert row is not None and row["state"] == "done" and row["manifest_key"] == prefix + "manifest.json"

    alerts = stack.alerts()
    assert sorted(alert["alert"] for alert in alerts) == [
        "attendee_engagement_low",
        "session_engagement_low",
        "session_unique_users_low",
    ]
    attendee_alert = next(alert for alert in alerts if alert["alert"] == "attendee_engagement_low")
    assert attendee_alert["details"]["attendees_below"] == 2
    assert f"s3://{stack.outputs['ReportsBucketName']}/{report_key(prefix, 'attendees')}" in attendee_alert["links"]
    alert_text = json.dumps(alerts)
    assert "example.com" not in alert_text and "Mallory" not in alert_text


def test_redeliveries_and_a_later_sweep_pull_nothing_and_alert_nothing_again(stack: ProductStack) -> None:
    session = add_session(stack)
    envelope = stack.sim.dispatcher.session_ended_envelope(session.cue_point_id)
    stack.deliver(envelope)
    first = stack.run_worker()
    stack.alerts()
    stack.sim.clear_calls()
    prefix = session_prefix_of(session)
    before = stack.objects(prefix)

    stack.deliver(envelope)  # Kaltura's retry of the same job: the webhook's dedupe drops it
    for body in first.handled:
        stack.enqueue(body)  # an SQS redelivery of the same message
    again = stack.run_worker()
    sweep = stack.run_sweep()
    after_sweep = stack.run_worker()

    assert again.failed == [] and len(again.handled) == 1
    assert sweep["enqueued"] == 0 and after_sweep.handled == []
    # The sweep read report 6000 once to look for ended sessions; nothing pulled the session's reports again.
    assert [str(call.params.get("id")) for call in stack.sim.calls_to("report", "getCsvFromStringParams")] == ["6000"]
    assert stack.alerts() == []
    assert stack.objects(prefix) == before


def test_a_meeting_recording_becoming_ready_pulls_the_session_it_recorded(stack: ProductStack) -> None:
    session = add_session(stack)
    duration = session.end - session.start - 20
    recording = stack.sim.add_entry(
        PARTNER_ID,
        name="Quarterly review (recording)",
        admin_tags="kalturameeting",
        duration=duration,
        created_at=session.end + 30,
    )

    stack.deliver(stack.sim.dispatcher.entry_ready_envelope(recording.id))
    run = stack.run_worker()

    assert run.failed == []
    prefix = session_prefix_of(session)
    assert prefix + "manifest.json" in stack.objects(prefix)
    decision = stack.ledger(f"recording#{PARTNER_ID}#{recording.id}", "session")
    assert decision is not None
    assert (decision["room_entry_id"], decision["session_id"]) == (session.room_entry_id, session.cue_point_id)


def test_a_kaltura_outage_mid_stream_fails_the_record_and_the_retry_completes_the_same_keys(
    stack: ProductStack,
) -> None:
    session = add_session(stack)
    stack.sim.faults.truncated_body("report/getCsvFromStringParams", after_bytes=60, count=1)

    stack.deliver(stack.sim.dispatcher.session_ended_envelope(session.cue_point_id))
    failed = stack.run_worker()

    assert len(failed.failed) == 1 and failed.handled == []
    prefix = session_prefix_of(session)
    assert stack.objects(prefix) == {}  # the interrupted upload was aborted; no manifest, no partial file
    row = stack.ledger(f"session#{PARTNER_ID}#{session.room_entry_id}", session.cue_point_id)
    assert row is not None and row["state"] == "failed"

    stack.make_failed_visible()  # what the visibility timeout does, without waiting for it
    retried = stack.run_worker()

    assert retried.failed == [] and len(retried.handled) == 1
    assert prefix + "manifest.json" in stack.objects(prefix)
    assert len([alert for alert in stack.alerts() if alert["alert"] == "session_engagement_low"]) == 1
