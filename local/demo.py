"""`make demo`: the whole product on the embedded local stack, driven through a realistic scenario, in under a minute.

What runs (:func:`kauto_local.serve.local_product`): template.yaml created in moto server mode, the real handlers
in-process, the HTTP API stand-in in front of the webhook, Lambda's SQS event source for every queue of the template
(batches, partial-batch failures, redrive to the dead-letter queues), the template's schedules fired on demand, and
the Kaltura simulator (seeded: the same ids and data every run) as the partner's Kaltura. The simulator is subscribed
to the webhook and notifies it by itself, signed, as Kaltura's dispatcher does, whenever its clock moves something.

The scenario (:func:`run_scenario`), on Kaltura's clock in 30-second ticks, the queues drained after each tick:

1. a dozen entries become ready one after the other; Kaltura delivers the first notification twice (same job id);
   one entry is tagged ``no-captions`` (skipped by the caption rules) and the last is too long for the REACH credit;
2. the REACH tasks ordered go PENDING -> PROCESSING -> READY, one ends in ERROR (and is alerted);
3. two room sessions with breakout rooms end; their reports land in S3 (one session alerts on low engagement);
4. the reconciliation sweep runs (its 15-minute schedule, fired once): it re-checks everything and repeats nothing;
5. the weekly schedule fires for the week before last (with a ``week`` input, as an operator would backfill it),
   then with its own input: the previous ISO week. The simulator filled both weeks with analytics and room sessions
   (one session the week before last, three last week), so the second digest compares real numbers week over week
   and the partner's week-over-week rule (room sessions up by more than 50 %) alerts.

Time: the automations read the wall clock, Kaltura the simulator's. The simulator starts half an hour behind the wall
clock, so everything it says happened (a session that just ended, a task that just finished) is in the automations'
past, as it would be in production where Kaltura's news arrive after the fact.

Outputs (cleaned at the start of each run): ``demo-output/`` with the bucket mirrored under ``s3/`` (by key),
``digest.html`` (the weekly digest), ``session-summary.html`` (the summary page of the session with chat and
polls), ``lambda.log`` (what CloudWatch Logs would hold) and ``summary.txt``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import shutil
import sys
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from kauto_local.poller import DrainReport
from kauto_local.progress import Progress, Step
from kauto_local.serve import (
    SIMULATOR_ADMIN_SECRET,
    SIMULATOR_PARTNER_ID,
    SIMULATOR_SEED,
    LocalProduct,
    local_product,
)
from kauto_local.simulator import Attendee, KalturaSimulator, TaskBehaviour
from kauto_local.simulator.dispatcher import Delivery
from kauto_local.simulator.state import RoomSession
from kauto_local.stack import REPO_ROOT
from kauto_ops.config_cli import refuse_broken_documents

PARTNER_ID = SIMULATOR_PARTNER_ID
ADMIN_SECRET = SIMULATOR_ADMIN_SECRET  # a fake one: the simulator signs with it, the local partner secret holds it
HASH_ALGORITHM = "sha256"
SEED = SIMULATOR_SEED
OUTPUT_DIR = REPO_ROOT / "demo-output"
SIMULATOR_LAG_SECONDS = 1800
TICK_SECONDS = 30
MAX_TICKS = 120  # every phase converges in a few dozen ticks; a bound keeps a broken run from spinning
NO_CAPTIONS_TAG = "no-captions"
CREDIT_SLACK_MINUTES = 60  # credit left after the regular orders: less than the long entry needs
ATTENDEE_ENGAGEMENT_BELOW = 0.3
# The partner's week-over-week rule: three room sessions last week after one the week before is +200 %.
WEEK_OVER_WEEK_RULES = ({"metric": "room_sessions", "change_above_percent": 50, "min_previous": 1, "severity": "info"},)
WORKER = "WorkerFunction"
REPORT_WORKER = "ReportWorkerFunction"
SWEEP_SCHEDULE = "sweep"
WEEKLY_SCHEDULE = "weekly-reports"

# Kaltura's KalturaEntryVendorTaskStatus values (docs/kaltura.md#reach-enums).
TASK_STATUS_NAMES = {
    1: "PENDING",
    2: "READY",
    3: "PROCESSING",
    4: "PENDING_MODERATION",
    5: "REJECTED",
    6: "ERROR",
    7: "ABORTED",
    8: "PENDING_ENTRY_READY",
    9: "SCHEDULED",
}
TASK_READY, TASK_ERROR = 2, 6
FINAL_TASK_STATUSES = frozenset({TASK_READY, 5, TASK_ERROR, 7})
ENTRY_READY_STATUS = 2
ENTRY_PRECONVERT_STATUS = 1
NOTIFICATION_KINDS = {
    "KalturaMediaEntry": "entry ready",
    "KalturaEntryVendorTask": "REACH task status",
    "KalturaSessionCuePoint": "room session ended",
}

# (name, minutes): the entries that get captions. The second one's REACH task ends in ERROR.
LECTURES = (
    ("Intro to Statistics - Lecture 1", 52),
    ("Organic Chemistry - Lab safety briefing", 18),
    ("Welcome to the MBA programme", 7),
    ("Linear Algebra - Eigenvalues", 48),
    ("History of Art - The Renaissance", 55),
    ("Campus tour 2026", 4),
    ("Machine Learning - Gradient descent", 61),
    ("Research seminar: urban heat islands", 43),
    ("Library skills workshop", 25),
    ("Intro to Statistics - Lecture 2", 50),
)
SKIPPED_ENTRY = ("Staff meeting (internal)", 35)
# (room, session, breakout rooms, attendees under the engagement threshold): the first session alerts.
SESSIONS = (
    # room, session, breakout rooms, disengaged attendees, group chat messages, polls
    ("Seminar room A", "Thesis clinic", 2, 2, 30, 3),
    ("Design studio", "Crit session", 1, 0, 0, 0),
)
SESSION_REPORTS = [6000, 6001, 6002, "pollsActivity", "chatUserActivity", "chatModeration", "groupChatTranscripts"]
"""The demo's data is synthetic, so it shows a transcript too (off by default: personal data and message text)."""
SESSION_SUMMARY_FILE = "session-summary.html"
ATTENDEE_NAMES = (
    "Ana Souza",
    "O'Brien, Siobhan",
    "Björn Åberg",
    '=HYPERLINK("http://example.com")',
    "Chen Wei",
    'Kwame "KM" Mensah',
    "Léa Dubois",
    "Priya Patel",
)
CREDIT_ENTRY = ("Open day - full-day livestream", 450)


@dataclass(frozen=True, slots=True)
class ScenarioSize:
    """How big the scenario is: the demo runs the default, the integration test a smaller one."""

    entries: int = 12
    """Entries that become ready, the skipped one and the one over the credit included (at least 4)."""
    attendees: int = 8
    """People in each of the two room sessions (the host included; at least 4)."""
    weekly_rows_per_day: int = 20
    """Rows per day of the weekly content and engagement reports."""

    def __post_init__(self) -> None:
        if not 4 <= self.entries <= len(LECTURES) + 2:
            raise ValueError(f"entries must be between 4 and {len(LECTURES) + 2}")
        if self.attendees < 4:
            raise ValueError("attendees must be at least 4")


DEMO_SIZE = ScenarioSize()


@dataclass(frozen=True, slots=True)
class DemoEntry:
    """An entry of the scenario and what should happen to it: ``caption``, ``task_error``, ``skipped``, ``credit``."""

    name: str
    minutes: int
    role: str


def scenario_entries(size: ScenarioSize) -> list[DemoEntry]:
    """The entries in the order they become ready: the skipped one third, the one over the credit last."""
    regular = [DemoEntry(name, minutes, "caption") for name, minutes in LECTURES[: size.entries - 2]]
    regular[1] = replace(regular[1], role="task_error")
    skipped = DemoEntry(*SKIPPED_ENTRY, role="skipped")
    over_credit = DemoEntry(*CREDIT_ENTRY, role="credit")
    return [*regular[:2], skipped, *regular[2:], over_credit]


def reach_credit(entries: list[DemoEntry]) -> int:
    """REACH credit (minutes of machine captions at 1 unit a minute): the regular orders fit, the long one doesn't."""
    return sum(entry.minutes for entry in entries if entry.role in ("caption", "task_error")) + CREDIT_SLACK_MINUTES


def automation_config() -> dict[str, Any]:
    """The ``AutomationConfig`` stack parameter: captions on for the partner (off by default), one exclusion rule,
    an engagement threshold so the room sessions can alert, and a week-over-week rule for the weekly digest."""
    return {
        "partners": {
            str(PARTNER_ID): {
                "captions": {"enabled": True, "exclude_tags": [NO_CAPTIONS_TAG]},
                "thresholds": {
                    "attendee_engagement_below": ATTENDEE_ENGAGEMENT_BELOW,
                    "poll_participation_below": 0.8,
                    "chat_participation_below": 0.8,
                },
                "session_reports": {"reports": SESSION_REPORTS, "transcripts_enabled": True},
            }
        },
        "weekly": {"week_over_week": [dict(rule) for rule in WEEK_OVER_WEEK_RULES]},
    }


def partner_secrets(service_url: str, reports_service_url: str | None = None) -> dict[str, Any]:
    """The partner secret (Secrets Manager) pointing at the simulator (and its Reports Microservice)."""
    partner: dict[str, Any] = {
        "admin_secret": ADMIN_SECRET,
        "webhook_hash_algorithms": [HASH_ALGORITHM],
        "service_url": service_url,
    }
    if reports_service_url is not None:
        partner["reports_service_url"] = reports_service_url
    return {"partners": {str(PARTNER_ID): partner}}


def previous_iso_week(now: float, time_zone: str) -> tuple[str, dt.datetime]:
    """``YYYY-Www`` and Monday 00:00 of the ISO week before the one ``now`` is in (what the weekly run reports on)."""
    zone = zoneinfo.ZoneInfo(time_zone)
    today = dt.datetime.fromtimestamp(now, tz=zone).date()
    monday = today - dt.timedelta(days=today.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return f"{year:04d}-W{week:02d}", dt.datetime.combine(monday, dt.time(0), tzinfo=zone)


@dataclass(frozen=True, slots=True)
class KalturaSetup:
    """What :func:`prepare_kaltura` created in the simulator."""

    catalog_item_id: int
    credit: int
    week: str
    weekly_sessions: int
    week_before: str
    """The ISO week before ``week``: its run is the digest's comparison."""


def prepare_kaltura(sim: KalturaSimulator, size: ScenarioSize, *, week_time_zone: str = "UTC") -> KalturaSetup:
    """The partner's Kaltura before the scenario: REACH (a machine-caption item, a credit-limited profile) and the
    analytics of the last two weeks (content and engagement rows; last week three room sessions with a breakout room
    each, the week before one)."""
    sim.add_partner(PARTNER_ID, ADMIN_SECRET, name="Demo University")
    item = sim.add_catalog_item(PARTNER_ID, name="English machine captions", price_per_unit=1.0)
    credit = reach_credit(scenario_entries(size))
    sim.add_reach_profile(PARTNER_ID, credit=credit, default_for=[item.id])
    for report_type in (1, 13, 38):  # top content, user engagement, top content creators
        sim.configure_report(report_type, rows_per_day=size.weekly_rows_per_day)
    week, monday = previous_iso_week(time.time(), week_time_zone)
    week_before, monday_before = previous_iso_week(monday.timestamp(), week_time_zone)
    days = (0, 2, 4)
    for first_day, session_days in ((monday_before, (1,)), (monday, days)):
        for day in session_days:
            start = int((first_day + dt.timedelta(days=day, hours=9)).timestamp())
            sim.add_room_session(
                PARTNER_ID,
                room_name=f"Office hours ({['Mon', 'Tue', 'Wed', 'Thu', 'Fri'][day]})",
                start=start,
                duration=3600,
                attendees=size.attendees,
                breakouts=1,
                announce=False,  # past weeks' sessions were handled then
            )
    return KalturaSetup(item.id, credit, week, len(days), week_before)


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """One entry of the scenario and what the product did with it."""

    entry: DemoEntry
    entry_id: str
    decision: str | None
    reason: str | None
    task_ids: tuple[int, ...]
    task_status: str | None
    caption_asset_ids: tuple[str, ...]
    add_calls: int


@dataclass(frozen=True, slots=True)
class DuplicateDelivery:
    """Kaltura delivering the same job again, and what the webhook did."""

    job_id: int
    status: int | None
    queued_before: int
    queued_after: int


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    room_name: str
    room_entry_id: str
    session_id: str
    breakouts: int
    attendees: int
    state: str | None
    manifest_key: str | None
    summary_page_key: str | None = None
    failed_reports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WeeklyOutcome:
    week: str
    scheduler_totals: Mapping[str, int]
    run_state: str | None
    jobs_done: int
    jobs_failed: int
    digest_key: str


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    rows: int | None
    """Data rows of a CSV (its header excluded); None for other objects."""


@dataclass
class ScenarioResult:
    """Everything the summary prints (and the integration test asserts)."""

    webhook_url: str
    bucket: str
    credit: int
    notifications: Counter[str] = field(default_factory=Counter)
    delivery_statuses: Counter[int | None] = field(default_factory=Counter)
    duplicate: DuplicateDelivery | None = None
    entries: list[EntryOutcome] = field(default_factory=list)
    sessions: list[SessionOutcome] = field(default_factory=list)
    sweep_totals: Mapping[str, int] = field(default_factory=dict)
    sweep_new_tasks: int = 0
    sweep_new_alerts: int = 0
    weekly: WeeklyOutcome | None = None
    week_before: WeeklyOutcome | None = None
    """The run of the week before ``weekly``'s (its digest is the comparison)."""
    objects: list[StoredObject] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: dict[str, list[str]] = field(default_factory=dict)
    failed_records: int = 0
    simulated_seconds: int = 0

    def outcome(self, role: str) -> list[EntryOutcome]:
        """The entries with ``role`` (``caption``, ``task_error``, ``skipped``, ``credit``)."""
        return [outcome for outcome in self.entries if outcome.entry.role == role]


# ---------------------------------------------------------------------------------------------------- the scenario


class _Driver:
    """Moves Kaltura's clock tick by tick and delivers the queues to the workers after each tick."""

    def __init__(self, sim: KalturaSimulator, product: LocalProduct, result: ScenarioResult) -> None:
        self.sim = sim
        self.product = product
        self.result = result
        self.started_at = sim.clock.now()

    def tick(self, step: Step) -> None:
        self.sim.clock.advance(TICK_SECONDS)
        self.product.aws.pass_queue_time(TICK_SECONDS)  # delayed re-deliveries (report polls) come due too
        self.drain(WORKER)
        step.note(f"Kaltura clock +{(self.sim.clock.now() - self.started_at) // 60} min")

    def drain(self, function_id: str) -> DrainReport:
        report = self.product.drain(function_id)
        self.result.failed_records += report.failed
        if not report.empty:
            raise RuntimeError(f"{function_id} did not drain its queue")
        return report

    def until(self, step: Step, done: Callable[[], bool], what: str) -> None:
        for _ in range(MAX_TICKS):
            if done():
                return
            self.tick(step)
        raise RuntimeError(f"the scenario did not converge: {what}")

    def deliveries(self, object_type: str) -> list[Delivery]:
        return [d for d in self.sim.dispatcher.deliveries if _object_type(d) == object_type]


def run_scenario(
    sim: KalturaSimulator, product: LocalProduct, setup: KalturaSetup, size: ScenarioSize, progress: Progress
) -> ScenarioResult:
    """Drive the scenario of the module docstring; returns what happened (read back from Kaltura and AWS)."""
    result = ScenarioResult(
        webhook_url=product.webhook_url(PARTNER_ID),
        bucket=product.outputs["ReportsBucketName"],
        credit=setup.credit,
    )
    driver = _Driver(sim, product, result)
    sim.subscribe(result.webhook_url, partner_id=PARTNER_ID, hash_algorithm=HASH_ALGORITHM)
    entries = scenario_entries(size)

    with progress.step("Entries becoming ready") as step:
        created = _add_entries(sim, entries)
        result.duplicate = _entries_become_ready(driver, step, created)
    with progress.step("REACH tasks progressing") as step:
        driver.until(step, lambda: _tasks_final(sim) and product.depth("EventsQueueUrl") == 0, "REACH tasks")
        tasks = sim.tasks(PARTNER_ID)
        step.set("READY", sum(1 for task in tasks if task.status == TASK_READY))
        step.set("ERROR", sum(1 for task in tasks if task.status == TASK_ERROR))
    with progress.step("Room sessions ending") as step:
        sessions = _sessions_end(driver, step, size)
        step.set("sessions pulled", len(sessions))
    with progress.step(f"Sweep (schedule '{SWEEP_SCHEDULE}')") as step:
        tasks_before, alerts_before = len(sim.tasks(PARTNER_ID)), len(product.alerts())
        result.sweep_totals = product.fire(SWEEP_SCHEDULE)
        step.set("found", result.sweep_totals.get("found", 0))
        step.set("re-sent", driver.drain(WORKER).succeeded)
        result.sweep_new_tasks = len(sim.tasks(PARTNER_ID)) - tasks_before
        result.sweep_new_alerts = len(product.alerts()) - alerts_before
    with progress.step(f"Weekly run {setup.week_before} (schedule '{WEEKLY_SCHEDULE}', week given)") as step:
        schedule_input = dict(product.schedules[WEEKLY_SCHEDULE].input)
        totals_before = product.fire(WEEKLY_SCHEDULE, {**schedule_input, "week": setup.week_before})
        step.set("report jobs", totals_before.get("jobs", 0))
        step.set("messages", driver.drain(REPORT_WORKER).succeeded)
    with progress.step(f"Weekly run {setup.week} (schedule '{WEEKLY_SCHEDULE}')") as step:
        totals = product.fire(WEEKLY_SCHEDULE)
        step.set("report jobs", totals.get("jobs", 0))
        step.set("messages", driver.drain(REPORT_WORKER).succeeded)
    with progress.step("Reading back S3, DynamoDB, SNS, SQS") as step:
        result.entries = [_entry_outcome(sim, product, entry, entry_id) for entry, entry_id in created]
        result.sessions = [_session_outcome(sim, product, session) for session in sessions]
        result.weekly = _weekly_outcome(product, setup.week, totals)
        result.week_before = _weekly_outcome(product, setup.week_before, totals_before)
        result.objects = [_stored(key, body) for key, body in product.objects().items()]
        result.alerts = product.alerts()
        result.dead_letters = {
            name.removesuffix("Url"): product.peek(name)
            for name in sorted(product.outputs)
            if name.endswith("DeadLetterQueueUrl")
        }
        for delivery in sim.dispatcher.deliveries:
            result.notifications[NOTIFICATION_KINDS.get(_object_type(delivery), "other")] += 1
            result.delivery_statuses.update(attempt.status for attempt in delivery.attempts)
        result.simulated_seconds = sim.clock.now() - driver.started_at
        step.set("S3 objects", len(result.objects))
        step.set("alerts", len(result.alerts))
    return result


def _add_entries(sim: KalturaSimulator, entries: list[DemoEntry]) -> list[tuple[DemoEntry, str]]:
    created = []
    for index, entry in enumerate(entries):
        kaltura_entry = sim.add_entry(
            PARTNER_ID,
            name=entry.name,
            duration=entry.minutes * 60,
            status=ENTRY_PRECONVERT_STATUS,
            ready_in=TICK_SECONDS * (index + 1),  # one entry finishes converting per tick
            tags=NO_CAPTIONS_TAG if entry.role == "skipped" else "lecture",
        )
        if entry.role == "task_error":
            sim.set_task_behaviour(kaltura_entry.id, TaskBehaviour(result="error", err_description="Silent audio"))
        created.append((entry, kaltura_entry.id))
    return created


def _entries_become_ready(driver: _Driver, step: Step, created: list[tuple[DemoEntry, str]]) -> DuplicateDelivery:
    sim, product = driver.sim, driver.product
    step.set("notifications", 0)
    step.set("orders", 0)
    # The first entry's notification: Kaltura delivers it again with the same job id (as after a timeout on its
    # side) while the first delivery's message is still queued.
    sim.clock.advance(TICK_SECONDS)
    (first,) = driver.deliveries("KalturaMediaEntry")
    queued_before = product.depth("EventsQueueUrl")
    again = sim.dispatcher.send(
        first.url,
        sim.dispatcher.entry_ready_envelope(created[0][1], job_id=first.job_id),
        partner_id=PARTNER_ID,
        hash_algorithm=HASH_ALGORITHM,
    )
    queued_after = product.depth("EventsQueueUrl")
    duplicate = DuplicateDelivery(first.job_id, again.attempts[-1].status, queued_before, queued_after)
    step.count(f"repeat answered {duplicate.status}")
    driver.drain(WORKER)

    def all_ready() -> bool:
        step.set("notifications", len(driver.deliveries("KalturaMediaEntry")))
        step.set("orders", len(sim.tasks(PARTNER_ID)))
        return all(sim.entry(entry_id).status == ENTRY_READY_STATUS for _, entry_id in created)

    driver.until(step, lambda: all_ready() and product.depth("EventsQueueUrl") == 0, "entries becoming ready")
    return duplicate


def _tasks_final(sim: KalturaSimulator) -> bool:
    return all(task.status in FINAL_TASK_STATUSES for task in sim.tasks(PARTNER_ID))


def session_attendees(count: int, disengaged: int) -> list[Attendee]:
    """A host and ``count - 1`` attendees, the last ``disengaged`` of them under the engagement threshold. Some names
    are awkward on purpose (a comma, quotes, accents, a spreadsheet formula): the CSVs in S3 must stay clean."""
    attendees = [Attendee("host.lee", "Dr. Morgan Lee", "morgan.lee@example.edu", "Host", 3500, 0.93)]
    for index in range(1, count):
        name = ATTENDEE_NAMES[(index - 1) % len(ATTENDEE_NAMES)]
        low = index >= count - disengaged
        attendees.append(
            Attendee(
                user_id=f"student{index:03d}",
                name=name,
                email=f"student{index:03d}@example.edu",
                view_time=600 if low else 2400 + 60 * index,
                engagement=round(0.12 + 0.05 * (index % 2) if low else 0.55 + 0.04 * (index % 8), 2),
            )
        )
    return attendees


def _sessions_end(driver: _Driver, step: Step, size: ScenarioSize) -> list[RoomSession]:
    sim, product = driver.sim, driver.product
    now = sim.clock.now()
    sessions = [
        sim.add_room_session(
            PARTNER_ID,
            room_name=room_name,
            name=name,
            start=now + TICK_SECONDS * (index + 1) - 3600,
            duration=3600,  # ends within the next ticks: Kaltura notifies then
            attendees=session_attendees(size.attendees, disengaged),
            breakouts=breakouts,
            chat_messages=chat_messages,
            polls=polls,
        )
        for index, (room_name, name, breakouts, disengaged, chat_messages, polls) in enumerate(SESSIONS)
    ]

    def pulled() -> bool:
        done = [_session_state(product, s.room_entry_id, s.cue_point_id) == "done" for s in sessions]
        step.set("sessions ended", len(driver.deliveries("KalturaSessionCuePoint")))
        return all(done)

    driver.until(step, pulled, "room sessions")
    return sessions


# ---------------------------------------------------------------------------------------------------- reading back


def _ledger(product: LocalProduct, pk: str) -> list[dict[str, Any]]:
    deserializer = TypeDeserializer()
    response = product.aws.client("dynamodb").query(
        TableName=product.outputs["LedgerTableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for item in response["Items"]]


def _session_state(product: LocalProduct, room_entry_id: str, session_id: str) -> str | None:
    rows = [row for row in _ledger(product, f"session#{PARTNER_ID}#{room_entry_id}") if row["sk"] == session_id]
    return str(rows[0]["state"]) if rows else None


def _entry_outcome(sim: KalturaSimulator, product: LocalProduct, entry: DemoEntry, entry_id: str) -> EntryOutcome:
    rows = _ledger(product, f"caption#{PARTNER_ID}#{entry_id}")
    decisions = [row for row in rows if row["sk"].startswith("decision#")]
    decision = max(decisions, key=lambda row: int(row.get("decided_at", 0)), default=None)
    tasks = [task for task in sim.tasks(PARTNER_ID) if task.entry_id == entry_id]
    adds = [
        call
        for call in sim.calls_to("reach_entryvendortask", "add")
        if (call.params.get("entryVendorTask") or {}).get("entryId") == entry_id
    ]
    return EntryOutcome(
        entry=entry,
        entry_id=entry_id,
        decision=str(decision["outcome"]) if decision else None,
        reason=str(decision["reason"]) if decision and decision.get("reason") else None,
        task_ids=tuple(task.id for task in tasks),
        task_status=TASK_STATUS_NAMES.get(tasks[-1].status, str(tasks[-1].status)) if tasks else None,
        caption_asset_ids=tuple(asset.id for asset in sim.caption_assets(entry_id)),
        add_calls=len(adds),
    )


def _session_outcome(sim: KalturaSimulator, product: LocalProduct, session: RoomSession) -> SessionOutcome:
    rows = [
        row
        for row in _ledger(product, f"session#{PARTNER_ID}#{session.room_entry_id}")
        if row["sk"] == session.cue_point_id
    ]
    row = rows[0] if rows else {}
    return SessionOutcome(
        room_name=sim.entry(session.room_entry_id).name,
        room_entry_id=session.room_entry_id,
        session_id=session.cue_point_id,
        breakouts=len(session.breakouts),
        attendees=len(session.attendees),
        state=row.get("state"),
        manifest_key=row.get("manifest_key"),
        summary_page_key=str(row["manifest_key"]).replace("manifest.json", "summary.html")
        if row.get("manifest_key")
        else None,
        failed_reports=tuple(str(name) for name in row.get("failed_reports") or ()),
    )


def _weekly_outcome(product: LocalProduct, week: str, totals: Mapping[str, int]) -> WeeklyOutcome:
    runs = [row for row in _ledger(product, f"weekly#{PARTNER_ID}") if row["sk"] == f"run#{week}"]
    run = runs[0] if runs else {}
    return WeeklyOutcome(
        week=week,
        scheduler_totals=dict(totals),
        run_state=run.get("state"),
        jobs_done=int(run.get("jobs_done", 0)),
        jobs_failed=int(run.get("jobs_failed", 0)),
        digest_key=f"weekly/partner_id={PARTNER_ID}/week={week}/digest.html",
    )


def _stored(key: str, body: bytes) -> StoredObject:
    rows = None
    if key.endswith(".csv"):
        rows = max(0, len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))) - 1)
    return StoredObject(key, len(body), rows)


def _object_type(delivery: Delivery) -> str:
    try:
        return str(json.loads(delivery.body)["object"]["objectType"])
    except (ValueError, KeyError, TypeError):
        return "other"


# ---------------------------------------------------------------------------------------------------- outputs


def write_outputs(product: LocalProduct, result: ScenarioResult, output_dir: Path) -> Path | None:
    """Mirror the reports bucket under ``output_dir/s3/<key>`` and copy the digest to ``output_dir/digest.html``
    (and the first session's summary page to ``session-summary.html``); returns the digest's path (None when the
    weekly run wrote none)."""
    digest = None
    summary_page = next((s.summary_page_key for s in result.sessions if s.summary_page_key), None)
    for key, body in product.objects().items():
        path = output_dir / "s3" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        if key == summary_page:
            # Its CSV links are relative to its place in the bucket: they work from s3/, not from this copy.
            (output_dir / SESSION_SUMMARY_FILE).write_bytes(body)
        if result.weekly is not None and key == result.weekly.digest_key:
            digest = output_dir / "digest.html"
            digest.write_bytes(body)
    return digest


def format_summary(result: ScenarioResult, output_dir: Path | None = None) -> str:
    """The readable summary: notifications, REACH orders, sessions, sweep, weekly run, S3 objects, alerts, DLQs."""
    lines: list[str] = []
    add = lines.append
    add("")
    add(f"Kaltura partner {PARTNER_ID} (simulator, seed {SEED}) -> webhook {result.webhook_url}")
    add(f"Kaltura's clock ran {result.simulated_seconds // 60} min in {TICK_SECONDS}-second ticks.")

    add("")
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(result.delivery_statuses.items(), key=str))
    add(f"Notifications Kaltura sent (HTTP status of each attempt: {statuses}):")
    add("  " + ", ".join(f"{result.notifications[kind]} {kind}" for kind in NOTIFICATION_KINDS.values()))
    if result.duplicate is not None:
        dup = result.duplicate
        add(
            f"  job {dup.job_id} delivered twice: the second answered {dup.status}, events queue "
            f"{dup.queued_before} -> {dup.queued_after} message(s) (no second message)"
        )

    add("")
    ordered = [o for o in result.entries if o.task_ids]
    add(f"REACH captions ordered (credit {result.credit} minutes, 1 per started minute):")
    add(f"  {'entry':<11} {'min':>4}  {'name':<40} {'decision':<38} {'task':<9} status")
    for outcome in result.entries:
        decision = outcome.decision or "-"
        if outcome.reason:
            decision += f" ({outcome.reason})"
        task = ",".join(str(task_id) for task_id in outcome.task_ids) or "-"
        status = outcome.task_status or "-"
        if outcome.caption_asset_ids:
            status += f", caption {outcome.caption_asset_ids[0]}"
        if not outcome.task_ids and outcome.add_calls:
            status = f"{outcome.add_calls} order attempt(s) refused"
        name = outcome.entry.name[:40]
        add(f"  {outcome.entry_id:<11} {outcome.entry.minutes:>4}  {name:<40} {decision:<38} {task:<9} {status}")
    by_status = Counter(o.task_status for o in ordered)
    add(
        f"  => {sum(len(o.task_ids) for o in ordered)} task(s) for {len(ordered)} entries "
        f"({', '.join(f'{n} {s}' for s, n in sorted(by_status.items(), key=str))}); "
        f"{len(result.outcome('skipped'))} skipped by the rules; {len(result.outcome('credit'))} refused for credit"
    )

    add("")
    add("Room sessions ended (reports 6000/6001/6002, chat and polls pulled into S3, a summary page each):")
    for session in result.sessions:
        failed = f" ({', '.join(session.failed_reports)} failed)" if session.failed_reports else ""
        add(
            f"  {session.room_name:<16} room {session.room_entry_id} session {session.session_id}: "
            f"{session.attendees} people, {session.breakouts} breakout room(s), "
            + ("reports pulled" + failed if session.state == "done" else f"ledger state {session.state}")
        )

    add("")
    sweep = ", ".join(f"{name} {value}" for name, value in result.sweep_totals.items())
    add(f"Reconciliation sweep: {sweep}")
    add(
        f"  what it re-sent (final task statuses, the entry refused for credit) went through the worker again: "
        f"{result.sweep_new_tasks} new task(s), {result.sweep_new_alerts} new alert(s)"
    )

    weekly_runs = [run for run in (result.week_before, result.weekly) if run is not None]
    if weekly_runs:
        add("")
    for weekly in weekly_runs:
        add(
            f"Weekly run {weekly.week}: {weekly.scheduler_totals.get('jobs', 0)} report job(s), run {weekly.run_state} "
            f"({weekly.jobs_done} done, {weekly.jobs_failed} failed), digest s3://{result.bucket}/{weekly.digest_key}"
        )

    add("")
    add(f"S3 objects in {result.bucket} ({len(result.objects)}):")
    add(f"  {'rows':>6}  {'bytes':>7}  key")
    for stored in result.objects:
        rows = "-" if stored.rows is None else str(stored.rows)
        add(f"  {rows:>6}  {stored.size:>7}  {stored.key}")

    add("")
    add(f"SNS alerts ({len(result.alerts)}):")
    for alert in result.alerts:
        add(f"  {alert.get('severity', '?'):<8} {alert.get('alert', '?'):<24} {alert.get('subject', '')}")

    add("")
    dead = ", ".join(f"{name} {len(bodies)}" for name, bodies in result.dead_letters.items())
    add(f"Dead-letter queues (messages): {dead}")
    add(f"Records that failed and were retried: {result.failed_records}")
    if output_dir is not None:
        add("")
        add(
            f"Outputs in {_display(output_dir)}/: s3/ (the bucket by key), digest.html, {SESSION_SUMMARY_FILE}, "
            "lambda.log, summary.txt"
        )
    return "\n".join(lines)


def problems(result: ScenarioResult) -> list[str]:
    """What went differently from the scenario's plan (the demo exits 1 when there is any)."""
    found = []
    if set(result.delivery_statuses) != {200}:
        found.append(f"notifications answered {dict(result.delivery_statuses)}")
    if any(result.dead_letters.values()):
        found.append("messages in a dead-letter queue")
    for run in (result.week_before, result.weekly):
        if run is None or run.run_state != "complete":
            found.append(f"the weekly run {run.week if run else ''} did not complete")
    if not any(alert.get("alert") == "weekly_change" for alert in result.alerts):
        found.append("the week-over-week rule did not alert")
    for outcome in result.entries:
        expected = {"caption": "READY", "task_error": "ERROR", "skipped": None, "credit": None}[outcome.entry.role]
        if outcome.task_status != expected or len(outcome.task_ids) > 1:
            found.append(f"{outcome.entry.name}: task {outcome.task_ids} {outcome.task_status}, expected {expected}")
    return found


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


@contextlib.contextmanager
def demo_stack(
    size: ScenarioSize, output_dir: Path, progress: Progress
) -> Iterator[tuple[KalturaSimulator, LocalProduct, KalturaSetup]]:
    """The simulator (prepared for the scenario) and the local product, function logs in ``output_dir``."""
    title = "Starting the local stack"
    with contextlib.ExitStack() as stack:
        with progress.step(title) as step:
            sim = stack.enter_context(
                KalturaSimulator(seed=SEED, start_time=int(time.time()) - SIMULATOR_LAG_SECONDS, tls=False)
            )
            setup = prepare_kaltura(sim, size)
            # The same check as `kauto-config check`: a broken document stops here, with every problem listed.
            refuse_broken_documents(secret=partner_secrets(sim.url), automation=automation_config())
            product = stack.enter_context(
                local_product(
                    partner_secrets(sim.url, sim.reports_url),
                    automation_config(),
                    log_path=output_dir / "lambda.log",
                    # Lambda makes a failed record visible again after the queue's visibility timeout; here at once.
                    failed_visibility_seconds=0,
                )
            )
            step.set("functions", len(product.aws.functions))
            step.set("queue pollers", len(product.pollers))
            step.set("schedules", len(product.schedules))
        yield sim, product, setup


def main() -> int:
    """Run the demo; exit status 0 when everything went as planned."""
    started = time.monotonic()
    progress = Progress(sys.stdout)
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    OUTPUT_DIR.mkdir(parents=True)
    with demo_stack(DEMO_SIZE, OUTPUT_DIR, progress) as (sim, product, setup):
        result = run_scenario(sim, product, setup, DEMO_SIZE, progress)
        with progress.step(f"Copying outputs to {_display(OUTPUT_DIR)}/") as step:
            write_outputs(product, result, OUTPUT_DIR)
            step.set("files", len(result.objects))
    summary = format_summary(result, OUTPUT_DIR)
    (OUTPUT_DIR / "summary.txt").write_text(summary.lstrip("\n") + "\n", encoding="utf-8")
    progress.line(summary)
    found = problems(result)
    for problem in found:
        progress.line(f"UNEXPECTED: {problem}")
    progress.line(f"\nDone in {time.monotonic() - started:.1f} s. Open {_display(OUTPUT_DIR / 'digest.html')}.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
