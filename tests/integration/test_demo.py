"""``make demo``'s scenario, smaller: the same :func:`run_scenario` on the same local stack (template.yaml in moto
server mode, the real handlers, the Kaltura simulator notifying the webhook by itself), asserting what the summary
prints: REACH orders, task outcomes and alerts, the session reports, the weekly outputs and digest, the dead-letter
queues and the duplicate delivery."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser import Chromium, save_screenshot
from helpers import clear_all_kauto_caches
from kauto_local.demo import (
    PARTNER_ID,
    ScenarioResult,
    ScenarioSize,
    demo_stack,
    format_summary,
    problems,
    run_scenario,
    scenario_entries,
    write_outputs,
)
from kauto_local.progress import Progress
from kauto_local.simulator import KalturaSimulator

pytestmark = pytest.mark.integration

SIZE = ScenarioSize(entries=5, attendees=4, weekly_rows_per_day=4)
WEEKLY_REPORTS = (
    "attendees",
    "breakouts",
    "content_dropoff",
    "geography",
    "platforms",
    "room_data",
    "top_content",
    "top_content_creators",
    "user_engagement",
)


@dataclass
class DemoRun:
    result: ScenarioResult
    sim: KalturaSimulator
    objects: dict[str, bytes]
    output_dir: Path
    progress_text: str
    events_left: int


@pytest.fixture(scope="module")
def demo(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of the scenario for every test of this module (it takes a few seconds)."""
    # moto keeps its state per process (the stack's server shares it): start from nothing, as moto_aws does.
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")  # noqa: S310 - loopback URL
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass
    clear_all_kauto_caches()
    output_dir = tmp_path_factory.mktemp("demo-output")
    console = io.StringIO()
    progress = Progress(console, interactive=False)
    with demo_stack(SIZE, output_dir, progress) as (sim, product, setup):
        result = run_scenario(sim, product, setup, SIZE, progress)
        write_outputs(product, result, output_dir)
        run = DemoRun(result, sim, product.objects(), output_dir, console.getvalue(), product.depth("EventsQueueUrl"))
    clear_all_kauto_caches()
    # Stopped by now: the tests read what the run left (the simulator's state stays readable).
    return run


def rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def test_each_entry_gets_exactly_one_reach_order_except_the_skipped_and_the_one_over_the_credit(demo: DemoRun) -> None:
    result = demo.result
    assert [o.entry.name for o in result.entries] == [e.name for e in scenario_entries(SIZE)]
    for outcome in result.outcome("caption") + result.outcome("task_error"):
        tasks = [task for task in demo.sim.tasks(PARTNER_ID) if task.entry_id == outcome.entry_id]
        assert [task.id for task in tasks] == list(outcome.task_ids), outcome.entry.name
        assert (outcome.decision, len(outcome.task_ids), outcome.add_calls) == ("ordered", 1, 1), outcome.entry.name
    (skipped,) = result.outcome("skipped")
    assert (skipped.decision, skipped.reason, skipped.task_ids, skipped.add_calls) == ("skipped", "tag_excluded", (), 0)
    (over_credit,) = result.outcome("credit")
    assert (over_credit.decision, over_credit.reason) == ("credit", "EXCEEDED_MAX_CREDIT_ALLOWED")
    assert over_credit.task_ids == ()
    # Refused when it became ready, and again when the sweep retried it (a credit decision is not final).
    assert over_credit.add_calls == 2
    assert len(demo.sim.tasks(PARTNER_ID)) == SIZE.entries - 2


def test_tasks_end_ready_with_a_caption_or_in_error_and_each_alert_is_published_once(demo: DemoRun) -> None:
    result = demo.result
    for outcome in result.outcome("caption"):
        assert outcome.task_status == "READY" and len(outcome.caption_asset_ids) == 1, outcome.entry.name
    (failed,) = result.outcome("task_error")
    assert (failed.task_status, failed.caption_asset_ids) == ("ERROR", ())
    alerts = [alert["alert"] for alert in result.alerts]
    # Participation: both sessions below the chat share (the second has no chat at all); the first below the poll
    # share when fewer than 80% of its attendees answered (the simulator's answers follow its seeded ids).
    polls_key = next(
        key for key in demo.objects if "/report=polls_activity/" in key and result.sessions[0].session_id in key
    )
    respondents = {row["userId"] for row in rows(demo.objects[polls_key])}
    poll_alerts = ["poll_participation_low"] if len(respondents) / SIZE.attendees < 0.8 else []
    assert sorted(alerts) == sorted(
        [
            "attendee_engagement_low",
            "chat_participation_low",
            "chat_participation_low",
            *poll_alerts,
            "reach_credit",
            "reach_task_error",
            "weekly_change",  # room sessions 1 -> 3 week over week
            "weekly_digest",  # one summary per weekly run: the week before last, then last week
            "weekly_digest",
        ]
    )
    (task_error,) = [alert for alert in result.alerts if alert["alert"] == "reach_task_error"]
    assert str(failed.task_ids[0]) in task_error["subject"] and failed.entry_id in task_error["subject"]
    (credit,) = [alert for alert in result.alerts if alert["alert"] == "reach_credit"]
    assert credit["details"]["code"] == "EXCEEDED_MAX_CREDIT_ALLOWED"
    assert (result.sweep_new_tasks, result.sweep_new_alerts) == (0, 0)


def test_the_duplicate_delivery_is_answered_200_without_a_second_message(demo: DemoRun) -> None:
    result = demo.result
    duplicate = result.duplicate
    assert duplicate is not None
    assert duplicate.status == 200
    assert duplicate.queued_before == duplicate.queued_after == 1
    job_ids = [d.job_id for d in demo.sim.dispatcher.deliveries]
    assert job_ids.count(duplicate.job_id) == 2
    # Every notification delivered at the first attempt: entries (+ the duplicate), two statuses per task, sessions.
    assert dict(result.delivery_statuses) == {200: len(job_ids)}
    assert result.notifications == {
        "entry ready": SIZE.entries + 1,
        "REACH task status": 2 * (SIZE.entries - 2),
        "room session ended": 2,
    }


def test_each_ended_session_has_its_three_reports_and_a_manifest_with_their_row_counts(demo: DemoRun) -> None:
    result = demo.result
    # The first session has two attendees under the engagement threshold: one alert, for that session only.
    (low,) = [alert for alert in result.alerts if alert["alert"] == "attendee_engagement_low"]
    first = result.sessions[0]
    assert (low["details"]["entry_id"], low["details"]["attendees_below"]) == (first.room_entry_id, 2)
    assert [(s.state, s.breakouts, s.attendees) for s in result.sessions] == [
        ("done", 2, SIZE.attendees),
        ("done", 1, SIZE.attendees),
    ]
    stored = {item.key: item for item in result.objects}
    for session in result.sessions:
        assert session.manifest_key is not None
        manifest = json.loads(demo.objects[session.manifest_key])
        files = {entry["report"]: entry for entry in manifest["files"]}
        expected_rows = {"room_data": 1, "attendees": SIZE.attendees, "breakouts": session.breakouts}
        assert {name: files[name]["rows"] for name in expected_rows} == expected_rows
        chat = {name: entry["rows"] for name, entry in files.items() if name not in expected_rows}
        assert set(chat) == {"polls_activity", "chat_user_activity", "chat_moderation", "group_chat_transcripts"}
        expected_rows |= chat
        for name, entry in files.items():
            body = demo.objects[entry["key"]]
            assert f"/entry_id={session.room_entry_id}/session_id={session.session_id}/" in entry["key"]
            assert stored[entry["key"]].rows == len(rows(body)) == expected_rows[name]


def test_the_session_with_chat_and_polls_has_its_summary_page_in_the_output_folder(demo: DemoRun) -> None:
    first, second = demo.result.sessions
    manifest = json.loads(demo.objects[first.manifest_key or ""])
    rows_of = {entry["report"]: entry["rows"] for entry in manifest["files"]}
    assert rows_of["group_chat_transcripts"] > 0 and rows_of["polls_activity"] > 0
    assert json.loads(demo.objects[second.manifest_key or ""])["files"][3]["rows"] == 0, "no polls: header only"
    page = (demo.output_dir / "session-summary.html").read_bytes()
    assert page == demo.objects[first.summary_page_key or ""]
    assert b"Polls (3)" in page and b"Attendees who chatted" in page


def test_the_weekly_run_writes_every_report_and_the_digest_to_s3_and_the_output_folder(demo: DemoRun) -> None:
    weekly = demo.result.weekly
    assert weekly is not None
    assert (weekly.run_state, weekly.jobs_done, weekly.jobs_failed) == ("complete", len(WEEKLY_REPORTS), 0)
    assert weekly.scheduler_totals["started"] == 1
    prefix = f"weekly/partner_id={PARTNER_ID}/week={weekly.week}/"
    keys = {key.removeprefix(prefix) for key in demo.objects if key.startswith(prefix)}
    assert keys == {"manifest.json", "digest.html", "digest.json"} | {
        f"report={name}/{name}.csv" for name in WEEKLY_REPORTS
    }
    stored = {item.key: item for item in demo.result.objects}
    manifest = json.loads(demo.objects[prefix + "manifest.json"])
    for entry in manifest["files"]:
        assert stored[entry["key"]].rows == entry["rows"], entry["report"]
    # Seven days of the configured rows; three sessions with a breakout each (main rooms and breakouts in 6000).
    assert stored[prefix + "report=top_content/top_content.csv"].rows == 7 * SIZE.weekly_rows_per_day
    assert stored[prefix + "report=room_data/room_data.csv"].rows == 3 * 2
    digest = (demo.output_dir / "digest.html").read_bytes()
    assert digest == demo.objects[weekly.digest_key]
    assert weekly.week.encode() in digest


def test_two_consecutive_weeks_give_a_digest_with_real_changes_and_a_week_over_week_alert(demo: DemoRun) -> None:
    weekly, before = demo.result.weekly, demo.result.week_before
    assert weekly is not None and before is not None
    assert (before.run_state, before.jobs_failed) == ("complete", 0)
    digest = json.loads(demo.objects[weekly.digest_key.replace("digest.html", "digest.json")])
    previous = json.loads(demo.objects[before.digest_key.replace("digest.html", "digest.json")])
    assert (previous["totals"]["room_sessions"], digest["totals"]["room_sessions"]) == (1, 3)
    assert previous["totals"]["plays"] != digest["totals"]["plays"]  # two weeks of the simulator's own numbers
    page = demo.objects[weekly.digest_key].decode("utf-8")
    assert f"compared with {before.week}" in page
    assert "Week-over-week alerts" in page
    (change,) = [alert for alert in demo.result.alerts if alert["alert"] == "weekly_change"]
    assert weekly.week in change["subject"]


@pytest.mark.parametrize("width", [1280, 390])
def test_the_demo_digest_reads_in_a_browser(demo: DemoRun, chromium: Chromium, tmp_path: Path, width: int) -> None:
    page = chromium.open(demo.output_dir / "digest.html", width=width)
    save_screenshot(page, tmp_path, f"demo-digest-{width}")

    titles = page.visible_texts(".chart-title")
    assert len(titles) == page.count("figure.chart-figure") >= 10
    assert all(title.endswith(")") for title in titles)  # each with its unit
    assert "Week-over-week alerts" in page.visible_texts("h2")
    assert (page.overflow_px, page.clipped, page.external_requests) == (0, [], [])


@pytest.mark.parametrize("width", [1280, 390])
def test_the_demo_session_summary_reads_in_a_browser(
    demo: DemoRun, chromium: Chromium, tmp_path: Path, width: int
) -> None:
    first = demo.result.sessions[0]
    page = chromium.open(demo.output_dir / "s3" / (first.summary_page_key or ""), width=width)
    save_screenshot(page, tmp_path, f"demo-session-summary-{width}")

    assert page.visible_texts("h1") == ["Room session Seminar room A"]
    assert f"Attendees ({SIZE.attendees}), most engaged first" in page.visible_texts("h2")
    assert "Polls (3)" in page.visible_texts("h2")
    assert (page.overflow_px, page.clipped, page.external_requests) == (0, [], [])


def test_the_output_folder_mirrors_the_bucket_and_holds_the_function_logs(demo: DemoRun) -> None:
    for key, body in demo.objects.items():
        assert (demo.output_dir / "s3" / key).read_bytes() == body
    log = (demo.output_dir / "lambda.log").read_text(encoding="utf-8")
    # The functions' EMF metrics at least (their Logger may be bound to another stream when an earlier test in
    # this process imported it first; in the demo's own process both go to the file).
    assert '"NotificationAccepted"' in log and '"CaptionDecision"' in log
    assert "0123456789abcdef" not in log  # the admin secret is never logged


def test_nothing_failed_or_was_dead_lettered_and_the_summary_prints_it_all(demo: DemoRun) -> None:
    result = demo.result
    assert result.failed_records == 0
    assert demo.events_left == 0
    assert result.dead_letters == {
        "EventsDeadLetterQueue": [],
        "ReportJobsDeadLetterQueue": [],
        "SweepScheduleDeadLetterQueue": [],
        "WeeklyScheduleDeadLetterQueue": [],
    }
    assert problems(result) == []
    summary = format_summary(result)
    for item in result.objects:
        assert item.key in summary
    for alert in result.alerts:
        assert alert["subject"] in summary
    for outcome in result.entries:
        assert outcome.entry_id in summary
    # One plain line per step when the output is not a terminal.
    assert [line.split("]")[0] for line in demo.progress_text.splitlines()] == ["[  ok  "] * 8
