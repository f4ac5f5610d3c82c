"""A room session with chat and polls, end to end on the local stack: the webhook enqueues the session's end, the
worker writes 6000-6002 and starts the Reports Microservice's chat-and-collaboration reports on the simulator, polls
them through delayed re-deliveries of the same event (moto's SQS delay, released by the test instead of waited for),
writes them cut to the session window, the manifest and the summary page, and alerts on participation once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from browser import Chromium, save_screenshot
from kauto.aws.report_keys import report_key
from product_stack import PARTNER_ID, ProductStack, WorkerRun, csv_rows, product_stack, session_prefix_of

pytestmark = pytest.mark.integration

COLLAB = ["pollsActivity", "chatUserActivity", "chatModeration", "groupChatTranscripts", "moderatorTranscripts"]
FILES = ("polls_activity", "chat_user_activity", "chat_moderation", "group_chat_transcripts", "moderator_transcripts")
CONFIG = {
    "partners": {
        str(PARTNER_ID): {
            "session_reports": {
                "window_padding_seconds": 60,
                "reports": [6000, 6001, 6002, *COLLAB],
                "transcripts_enabled": True,
                "pending_limit_seconds": 600,
            },
            "thresholds": {
                "poll_participation_below": 0.9,
                "chat_participation_below": 0.9,
                "unresolved_moderation_above": 0,
            },
        }
    }
}


@pytest.fixture
def stack(moto_aws: str) -> Iterator[ProductStack]:
    with product_stack(CONFIG) as running:
        running.sim.microservice.pending_seconds = 60
        running.sim.microservice.in_progress_seconds = 60
        yield running


def add_session(stack: ProductStack, **changes: Any) -> Any:
    now = int(time.time())
    values: dict[str, Any] = {
        "room_name": "Town hall, Q3",
        "start": now - 4000,
        "end": now - 400,
        "attendees": 9,
        "breakouts": 1,
        "chat_messages": 24,
        "polls": 2,
        "announce": False,
    }
    return stack.sim.add_room_session(PARTNER_ID, **(values | changes))


def moment(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def check_summary_page(objects: dict[str, bytes], prefix: str, tmp_path: Path, chromium: Chromium) -> None:
    """The summary page as a person sees it in headless Chromium, on a desktop and on a phone, opened from the
    bucket's layout (so its relative CSV links resolve). Screenshots: ``test-output/session-summary-*.png``."""
    for key, body in objects.items():
        path = tmp_path / "s3" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    page_path = tmp_path / "s3" / prefix / "summary.html"
    for width in (1280, 390):
        page = chromium.open(page_path, width=width)
        save_screenshot(page, tmp_path, f"session-summary-{width}")
        assert page.external_requests == [], "the page fetches nothing"
        assert (page.overflow_px, page.clipped) == (0, []), f"nothing to scroll sideways at {width} px"
        assert page.visible_texts("h1") == ["Room session Town hall Q3"]  # report 6000 never quotes: comma dropped
        assert page.visible_texts("h2")[:2] == ["Overview", "Attendees (9), most engaged first"]
        assert "Breakout rooms (1)" in page.visible_texts("h2") and "Polls (2)" in page.visible_texts("h2")
        overview = " ".join(page.visible_texts("#overview tr"))
        assert "Attendees who chatted" in overview and "Attendees who answered polls" in overview
        rates = [int(text.rstrip("%")) for text in page.visible_texts("#attendees td:last-child")]
        assert len(rates) == 9 and rates == sorted(rates, reverse=True), "the attendee table is sorted by engagement"
        assert "How useful was this session?" in page.visible_texts("#polls h3")
        assert "Answers (unique participants)" in page.visible_texts("#polls .chart-title")
        links = page.visible_texts("#files a")
        assert "group_chat_transcripts.csv" in links and "attendees.csv" in links
        missing = page.evaluate(
            "Array.from(document.querySelectorAll('#files a')).filter(a => !a.href.startsWith('file:')).length"
        )
        assert missing == 0
    linked = chromium.open(page_path).evaluate("document.querySelector('#files a').href")
    assert Path(unquote(linked.removeprefix("file://"))).exists(), "a CSV link resolves to its file in the layout"


def poll_until_done(stack: ProductStack, *, max_polls: int = 8) -> list[WorkerRun]:
    """Run the worker; while it left a delayed re-delivery, move Kaltura's clock on and let the delay pass."""
    runs = [stack.run_worker()]
    while stack.release_delayed():
        assert len(runs) < max_polls, "the session's reports never finished"
        stack.sim.clock.advance(60)
        runs.append(stack.run_worker())
    return runs


def test_a_session_with_chat_and_polls_lands_every_report_cut_to_the_session(
    stack: ProductStack, tmp_path: Path, chromium: Chromium
) -> None:
    session = add_session(stack)
    add_session(stack, room_name="Other room", chat_messages=5, polls=1)  # noise: another room, same time

    assert stack.deliver(stack.sim.dispatcher.session_ended_envelope(session.cue_point_id)) == 200
    runs = poll_until_done(stack)

    assert all(run.failed == [] for run in runs)
    assert len(runs) >= 3, "generated, polled while pending, then written: across delayed re-deliveries"
    generates = stack.sim.calls_to("microservice", "generate")
    assert len(generates) == len(COLLAB), "each report generated once, then only polled"
    prefix = session_prefix_of(session)
    objects = stack.objects(prefix.split("/entry_id=")[0])
    for name in ("room_data", "attendees", "breakouts", *FILES):
        assert report_key(prefix, name) in objects, name
    chat = csv_rows(objects[report_key(prefix, "group_chat_transcripts")])
    assert len(chat) == 24, "lobby and after-session messages are cut"
    assert all(session.start <= moment(row["sentAt"]) <= session.end for row in chat)
    assert any(row["message"].startswith("'=HYPERLINK") for row in chat), "formula neutralized"
    assert any("\n" in row["message"] for row in chat), "a quoted line break survives"
    polls = csv_rows(objects[report_key(prefix, "polls_activity")])
    assert polls and all(moment(row["answeredAt"]) <= session.end for row in polls)
    assert {row["contextId"] for row in polls} == {session.room_entry_id}

    manifest = json.loads(objects[prefix + "manifest.json"])
    files = {entry["report"]: entry for entry in manifest["files"]}
    assert set(files) == {"room_data", "attendees", "breakouts", *FILES}
    assert files["group_chat_transcripts"]["classification"] == ["personal_data", "message_content"]
    assert manifest["pages"] == {"summary": prefix + "summary.html"}
    check_summary_page(objects, prefix, tmp_path, chromium)

    alerts = stack.alerts()
    rules = sorted(alert["alert"] for alert in alerts)
    assert rules == ["chat_participation_low", "poll_participation_low", "unresolved_moderation_high"]
    summary_link = f"s3://{stack.outputs['ReportsBucketName']}/{prefix}summary.html"
    assert all(summary_link in alert["links"] for alert in alerts)
    text = json.dumps(alerts)
    assert "example.com" not in text and "HYPERLINK" not in text

    before = stack.objects(prefix.split("/entry_id=")[0])
    stack.deliver(stack.sim.dispatcher.session_ended_envelope(session.cue_point_id))
    for body in runs[0].handled:
        stack.enqueue(body)  # an SQS redelivery of the first message
    again = stack.run_worker()
    assert again.failed == [] and stack.release_delayed() == 0
    assert stack.objects(prefix.split("/entry_id=")[0]) == before, "redelivery writes nothing new"
    assert stack.alerts() == []


def test_a_failed_chat_report_does_not_block_the_room_reports(stack: ProductStack) -> None:
    stack.sim.microservice.failures["pollsActivity"] = "virtual event not found"
    session = add_session(stack)

    stack.deliver(stack.sim.dispatcher.session_ended_envelope(session.cue_point_id))
    runs = poll_until_done(stack)

    assert all(run.failed == [] for run in runs)
    prefix = session_prefix_of(session)
    objects = stack.objects(prefix.split("/entry_id=")[0])
    for name in ("room_data", "attendees", "breakouts", "chat_moderation"):
        assert report_key(prefix, name) in objects, name
    assert report_key(prefix, "polls_activity") not in objects
    manifest = json.loads(objects[prefix + "manifest.json"])
    assert manifest["missing_reports"] == [{"report": "polls_activity", "reason": "virtual event not found"}]
    failed = [alert for alert in stack.alerts() if alert["alert"] == "session_report_failed"]
    assert [alert["details"]["report"] for alert in failed] == ["pollsActivity"]
    row = stack.ledger(f"session#{PARTNER_ID}#{session.room_entry_id}", session.cue_point_id)
    assert row is not None and row["state"] == "done" and row["failed_reports"] == ["pollsActivity"]
