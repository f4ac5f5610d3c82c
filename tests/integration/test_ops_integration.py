"""kauto-ops on the local stack (template.yaml in moto server mode, the real handlers, the Kaltura simulator): the
audit trail the worker writes to S3, ``explain`` answering why an entry was not captioned, and the operations
walk-through of the README: a failed event found with ``failures``, understood with ``explain``, replayed with the
command ``failures`` printed, and captioned."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kauto_local.stack import STACK_NAME
from kauto_ops.cli import main
from product_stack import (
    PARTNER_ID,
    ProductStack,
    captions_config,
    product_stack,
    without_kaltura_backoff,
    worker_stack,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_backoff_sleeps(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    without_kaltura_backoff(monkeypatch)


@pytest.fixture
def stack() -> Iterator[ProductStack]:
    with worker_stack(captions_config(min_duration_seconds=60)) as stack:
        yield stack


def ops(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*argv, "--stack", STACK_NAME] if argv[0] != "replay-dlq" else list(argv), out=out, err=err)
    return status, out.getvalue() + err.getvalue()


def trail(stack: ProductStack) -> list[dict[str, Any]]:
    s3 = stack.aws.client("s3")
    bucket = stack.outputs["ReportsBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"audit/partner_id={PARTNER_ID}/").get("Contents", [])
    return [
        json.loads(line)
        for item in listed
        for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines()
    ]


def test_the_worker_writes_its_decisions_to_the_audit_trail_and_explain_tells_why_an_entry_was_not_captioned(
    stack: ProductStack,
) -> None:
    lecture = stack.sim.add_entry(PARTNER_ID, name="Lecture 1", duration=300)
    teaser = stack.sim.add_entry(PARTNER_ID, name="Teaser", duration=20)
    stack.entry_ready(lecture.id, times=2)
    stack.entry_ready(teaser.id)

    assert stack.poller.drain().failed == 0

    (task,) = stack.tasks()
    facts = trail(stack)
    kinds = sorted(fact["kind"] for fact in facts if fact.get("entry_id") == lecture.id)
    assert kinds.count("notification_handled") == 2
    assert {"caption_decision", "caption_ordered", "task_status"} <= set(kinds)
    assert "Lecture 1" not in json.dumps(facts)  # ids and reasons, never names

    status, skipped = ops("explain", "entry", teaser.id, "--partner", str(PARTNER_ID))
    assert status == 0
    assert "caption decision: skipped because too_short" in skipped
    assert "Not captioned by design: the rule 'too_short' decided" in skipped

    status, ordered = ops("explain", "entry", lecture.id, "--partner", str(PARTNER_ID))
    assert status == 0
    assert f"REACH task {task.id} ordered (entryVendorTask.add)" in ordered
    assert f"task {task.id} status pending" in ordered
    assert f"caption order item#{stack.catalog_item_id}: ordered, task {task.id}" in ordered

    status, unknown = ops("explain", "entry", "1_nothing", "--partner", str(PARTNER_ID))
    assert status == 1 and "Nothing was decided" in unknown


def test_a_failed_event_is_found_understood_and_replayed_with_the_commands_kauto_ops_prints(
    stack: ProductStack,
) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Board meeting", duration=900)
    outage = stack.sim.faults.http_error("baseentry/get", status=503)  # Kaltura answers 503 until it is removed
    stack.entry_ready(entry.id)

    stack.poller.drain()
    assert len(stack.dead_letters()) == 1 and stack.tasks() == []

    # 1. Find it.
    status, failures = ops("failures", "--since", "1h")
    assert status == 0
    assert "EventsDeadLetterQueue: 1" in failures
    assert f"kauto-ops explain entry {entry.id} --partner {PARTNER_ID}" in failures
    [replay_command] = re.findall(r"kauto-ops (replay-dlq --queue events --message-id \S+ --stack \S+)", failures)

    # 2. Understand it: five deliveries, each failed on Kaltura's 503, nothing decided.
    status, explained = ops("explain", "entry", entry.id, "--partner", str(PARTNER_ID))
    assert status == 0
    assert explained.count("(a redelivery)") == 4
    assert explained.count("FAILED: KalturaTransportError") == 5
    assert "Nothing was decided: every delivery failed" in explained

    # 3. Replay it once Kaltura is back.
    stack.sim.faults.remove(outage)
    status, replayed = ops(*replay_command.split())
    assert status == 0 and "moved 1 message(s)" in replayed
    assert stack.poller.drain().failed == 0

    (task,) = stack.tasks()
    status, after = ops("explain", "entry", entry.id, "--partner", str(PARTNER_ID))
    assert f"REACH task {task.id} ordered (entryVendorTask.add)" in after
    assert "operator replay: entry" in after
    assert ops("failures", "--since", "1h")[1].strip().endswith("Nothing failed.")


def test_replay_sends_the_event_again_and_a_notification_is_explained_by_its_job_id(stack: ProductStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Seminar", duration=300)
    stack.entry_ready(entry.id)
    stack.poller.drain()
    [handled] = [fact for fact in trail(stack) if fact["kind"] == "notification_handled"]

    status, notification = ops("explain", "notification", handled["subject_id"], "--partner", str(PARTNER_ID))
    status_replay, replayed = ops("replay", "entry", entry.id, "--partner", str(PARTNER_ID))
    stack.poller.drain()

    assert status == 0
    assert "accepted by the webhook at" in notification
    assert f"worker took up notification {handled['subject_id']}: entry_ready" in notification
    assert "caption decision: ordered" in notification
    assert status_replay == 0 and "sent entry_ready" in replayed
    assert len(stack.tasks()) == 1  # the replay decided again: the entry's decision repeats, nothing is re-ordered


def test_a_room_session_is_explained_with_its_pull_files_and_alerts(moto_aws: str) -> None:
    config = {"partners": {str(PARTNER_ID): {"thresholds": {"unique_users_below": 10}}}}
    with product_stack(config) as rooms:
        now = int(time.time())
        session = rooms.sim.add_room_session(
            PARTNER_ID, room_name="Weekly sync", start=now - 4000, end=now - 400, attendees=3, announce=False
        )
        assert rooms.deliver(rooms.sim.dispatcher.session_ended_envelope(session.cue_point_id)) == 200
        assert rooms.run_worker().failed == []

        status, explained = ops("explain", "session", session.cue_point_id, "--partner", str(PARTNER_ID))

    assert status == 0  # the room was found in the trail: no --room needed
    assert f"session {session.cue_point_id} of room {session.room_entry_id}: pulling" in explained
    assert f"session {session.cue_point_id} of room {session.room_entry_id}: done" in explained
    assert re.search(r"wrote s3://\S+/report=attendees/\S+attendees\.csv \(3 rows", explained)
    assert (
        f"alert session_unique_users_low published (info, key {session.room_entry_id}/{session.cue_point_id})"
        in explained
    )
    assert "manifest sessions/partner_id=" in explained  # the ledger row, now
