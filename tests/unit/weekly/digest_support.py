"""Fakes for the digest tests: a finished weekly run in the in-memory store (CSVs written through the real cleaner,
the manifest through the real writer), ledger rows of caption orders and REACH tasks, and a fake Kaltura graph."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from kauto.automation_config import build_automation_config
from kauto.aws.manifest import Manifest, ManifestFile, SourceCall, write_manifest
from kauto.aws.report_keys import report_key, weekly_prefix
from kauto.csvclean import ROOM_ATTENDEES_SPEC, ROOM_DATA_SPEC, CsvCleaner, CsvSpec
from kauto.kaltura import KalturaRateLimitedError, ReportFilter, ReportGraph
from kauto.weekly.config import parse_weekly_config
from kauto.weekly.deps import RunDeps, WeeklyDeps
from kauto.weekly.digest import WeekWindow
from kauto_local.fakes import (
    InMemoryAlertPublisher,
    InMemoryDigestSources,
    InMemoryJobQueue,
    InMemoryLedger,
    InMemoryObjectStore,
)

PARTNER_ID = 1234567
WEEK = "2025-W02"  # Monday 2025-01-06 .. Sunday 2025-01-12
PREVIOUS_WEEK = "2025-W01"
TIME_ZONE = "Europe/Berlin"
NOW = datetime(2025, 1, 13, 7, 0, tzinfo=UTC).timestamp()
HOSTILE_NAME = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
FORMULA_NAME = '=HYPERLINK("evil")'

CONTENT_HEADER = ("object_id", "entry_name", "count_plays", "sum_time_viewed", "avg_time_viewed", "unique_known_users")
CREATORS_HEADER = ("object_id", "entry_name", "creator_name", "count_plays", "sum_time_viewed")
DROPOFF_HEADER = (
    "object_id",
    "entry_name",
    "count_plays",
    "count_plays_25",
    "count_plays_50",
    "count_plays_75",
    "count_plays_100",
    "play_through_ratio",
)
GEOGRAPHY_HEADER = ("country", "coordinates", "count_plays", "sum_time_viewed")
USERS_HEADER = ("name", "full_name", "count_plays", "sum_time_viewed")
PLATFORM_HEADER = ("device", "count_plays", "sum_time_viewed")
ROOM_HEADER = (
    "entry_id",
    "entry_name",
    "parent_entry_id",
    "cue_point_id",
    "session_start_time",
    "session_end_time",
    "session_host_user_id",
    "meeting_view_period_unique_users",
    "meeting_engaged_play_time_ratio",
)
ATTENDEE_HEADER = (
    "entry_id",
    "cue_point_id",
    "user_id",
    "user_name",
    "user_email",
    "user_type",
    "meeting_view_time",
    "meeting_engaged_play_time_ratio",
)


def at(day: int, hour: int = 12) -> int:
    """Unix time of January ``day``, 2025 at ``hour``:00 Berlin time (CET, UTC+1)."""
    return int(datetime(2025, 1, day, hour - 1, 0, tzinfo=UTC).timestamp())


class FakeReports:
    """``client.reports.graphs``: daily points of plays and minutes for the week asked; ``fail`` raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, ReportFilter]] = []
        self.fail = False
        self.plays_per_day = (10, 20, 30, 40, 50, 60, 70)

    def graphs(self, report_type: int, report_filter: ReportFilter) -> list[ReportGraph]:
        self.calls.append((report_type, report_filter))
        if self.fail:
            raise KalturaRateLimitedError("ACTION_BLOCKED", "rate limited")
        first = datetime.fromtimestamp(report_filter.from_date, tz=ZoneInfo(TIME_ZONE)).date()
        labels = [(first + timedelta(days=offset)).strftime("%Y%m%d") for offset in range(7)]
        plays = list(zip(labels, self.plays_per_day, strict=True))
        return [
            ReportGraph("count_plays", tuple((label, str(n)) for label, n in plays)),
            ReportGraph("sum_time_viewed", tuple((label, str(n * 1.5)) for label, n in plays)),
            ReportGraph("count_loads", tuple((label, "1") for label in labels)),
        ]


@dataclass
class FakeKaltura:
    reports: FakeReports = field(default_factory=FakeReports)


@dataclass
class DigestWorld:
    deps: WeeklyDeps
    store: InMemoryObjectStore
    ledger: InMemoryLedger
    alerts: InMemoryAlertPublisher
    kaltura: FakeKaltura
    sources: InMemoryDigestSources


def make_world(weekly_section: dict[str, Any] | None = None) -> DigestWorld:
    """In-memory ports; ``weekly_section`` is the raw ``weekly`` section (week-over-week rules live there)."""
    clock = lambda: NOW  # noqa: E731
    ledger = InMemoryLedger(clock=clock)
    store = InMemoryObjectStore("reports-bucket")
    alerts = InMemoryAlertPublisher(clock=clock, ledger=ledger)
    kaltura = FakeKaltura()
    config = build_automation_config({"weekly": weekly_section} if weekly_section is not None else {})
    run = RunDeps(
        config=config,
        weekly=parse_weekly_config(None),
        ledger=ledger,
        jobs=InMemoryJobQueue(),
        clock=clock,
        default_time_zone=TIME_ZONE,
    )
    deps = WeeklyDeps(run=run, store=store, alerts=alerts, kaltura=lambda _partner_id: kaltura)
    return DigestWorld(deps, store, ledger, alerts, kaltura, InMemoryDigestSources(store, ledger, clock=clock))


# ------------------------------------------------------------------------------------------------------ the run


def content_rows(scale: int = 1) -> list[tuple[object, ...]]:
    """TOP_CONTENT rows; entry 1_split appears twice (a week split past the row limit lists it once per part)."""
    return [
        ("1_alpha", "Quarterly all-hands", 152 * scale, 611.5 * scale, 4.02, 87),
        ("1_bravo", HOSTILE_NAME, 97 * scale, 201.33333333333334 * scale, 2.07, 61),
        ("1_split", "Onboarding, part 1", 40 * scale, 80.25 * scale, 2.0, 20),
        ("1_formula", FORMULA_NAME, 12 * scale, 0.1 * scale, 0.01, 3),
        ("1_split", "Onboarding, part 1", 25 * scale, 19.75 * scale, 0.8, 9),
        ("1_zero", "Never played", 0, 0, 0, 0),
    ]


def creator_rows(scale: int = 1) -> list[tuple[object, ...]]:
    """TOP_CONTENT_CREATOR rows: two creators (one twice, a split week), a hostile name."""
    return [
        ("1_alpha", "Quarterly all-hands", "Comms team", 152 * scale, 611.5 * scale),
        ("1_bravo", HOSTILE_NAME, HOSTILE_NAME, 97 * scale, 201.5 * scale),
        ("1_split", "Onboarding, part 1", "Comms team", 65 * scale, 100.0 * scale),
    ]


def dropoff_rows() -> list[tuple[object, ...]]:
    """CONTENT_DROPOFF rows: plays and how many reached 25/50/75/100 % (1_split listed twice: a split week)."""
    return [
        ("1_alpha", "Quarterly all-hands", 100, 90, 70, 50, 40, 0.4),
        ("1_bravo", HOSTILE_NAME, 80, 40, 20, 10, 4, 0.05),
        ("1_split", "Onboarding, part 1", 10, 9, 8, 7, 6, 0.6),
        ("1_split", "Onboarding, part 1", 10, 9, 8, 7, 6, 0.6),
        ("1_zero", "Never played", 0, 0, 0, 0, 0, 0),
    ]


def geography_rows() -> list[tuple[object, ...]]:
    return [("GERMANY", "51.1/10.4", 150, 300.0), ("CÔTE D'IVOIRE", "7.5/-5.5", 50, 20.0), ("FRANCE", "46/2", 0, 0)]


def user_rows() -> list[tuple[object, ...]]:
    """USER_TOP_CONTENT rows: one user twice (split week), one user without plays."""
    return [
        ("alice@example.com", "Alice", 10, 30.5),
        ("bob", "Bob", 3, 4.0),
        ("alice@example.com", "Alice", 2, 1.0),
        ("carol", "Carol", 0, 0),
        ("dave", "Dave", 1, 0.5),
    ]


def room_rows() -> list[tuple[object, ...]]:
    """Room data: three main-room sessions (Mon, Mon, Thu), one without an engagement value, and a breakout row."""
    return [
        ("0_room1", "Standup", "", "cp_a", at(6, 9), at(6, 10), "host1", 12, 0.5),
        ("0_room1", "Standup", "", "cp_b", at(6, 15), at(6, 16), "host1", 8, 0.25),
        ("0_room2", "Town hall", "", "cp_c", at(9, 18), at(9, 19), "host2", 40, ""),
        ("0_break1", "Breakout A", "0_room2", "cp_c", at(9, 18), at(9, 19), "host2", 5, 0.9),
    ]


def attendee_rows() -> list[tuple[object, ...]]:
    return [
        ("0_room1", "cp_a", "u1", "User 1", "u1@example.com", "attendee", 600, 0.5),
        ("0_room1", "cp_a", "u2", "User 2", "u2@example.com", "attendee", 300, 0.1),
        ("0_room1", "cp_b", "u1", "User 1", "u1@example.com", "attendee", 200, 0.3),
        ("0_room2", "cp_c", "u3", "User 3", "u3@example.com", "attendee", 900, 0.05),
    ]


RUN_REPORTS: dict[str, tuple[tuple[str, ...], CsvSpec, SourceCall]] = {
    "top_content": (CONTENT_HEADER, CsvSpec(), SourceCall("report", "getTable", {"reportType": 1})),
    "top_content_creators": (CREATORS_HEADER, CsvSpec(), SourceCall("report", "getTable", {"reportType": 38})),
    "user_engagement": (USERS_HEADER, CsvSpec(), SourceCall("report", "getUrlForReportAsCsv", {"reportType": 13})),
    "platforms": (PLATFORM_HEADER, CsvSpec(), SourceCall("report", "getTable", {"reportType": 21})),
    "content_dropoff": (DROPOFF_HEADER, CsvSpec(), SourceCall("report", "getTable", {"reportType": 2})),
    "geography": (GEOGRAPHY_HEADER, CsvSpec(), SourceCall("report", "getTable", {"reportType": 36})),
    "breakouts": (ROOM_HEADER, ROOM_DATA_SPEC, SourceCall("report", "getCsvFromStringParams", {"id": 6002})),
    "room_data": (ROOM_HEADER, ROOM_DATA_SPEC, SourceCall("report", "getCsvFromStringParams", {"id": 6000})),
    "attendees": (ATTENDEE_HEADER, ROOM_ATTENDEES_SPEC, SourceCall("report", "getCsvFromStringParams", {"id": 6001})),
}


def write_run(world: DigestWorld, week: str, *, scale: int = 1, reports: Sequence[str] | None = None) -> dict[str, str]:
    """Write the CSVs of ``week``'s run and its manifest (last); returns report name -> key."""
    rows = {
        "top_content": content_rows(scale),
        "top_content_creators": creator_rows(scale),  # the same plays by creator: must not be counted twice
        "user_engagement": user_rows(),
        "platforms": [("Computer", 200 * scale, 500.0), ("Mobile", 126 * scale, 413.0)],
        "content_dropoff": dropoff_rows(),
        "geography": geography_rows(),
        "breakouts": [],
        "room_data": room_rows() if week == WEEK else [],
        "attendees": attendee_rows() if week == WEEK else [],
    }
    prefix = weekly_prefix(PARTNER_ID, week)
    files = []
    keys = {}
    for name in reports if reports is not None else RUN_REPORTS:
        header, spec, source = RUN_REPORTS[name]
        cleaner = CsvCleaner(spec)
        with world.store.open_writer(report_key(prefix, name)) as writer:
            writer.write_records(cleaner.clean_rows(header, rows[name]), with_header=True)
            result = writer.complete()
        files.append(ManifestFile.from_result(name, result, cleaner.columns, source))
        keys[name] = result.key
    window = WeekWindow.of(week, TIME_ZONE)
    write_manifest(
        world.store,
        prefix,
        Manifest(PARTNER_ID, "weekly", window.start, window.end, tuple(files), datetime.fromtimestamp(NOW, tz=UTC)),
    )
    return keys


def csv_dicts(world: DigestWorld, key: str) -> list[dict[str, str]]:
    """A stored CSV read with the csv module, independently of the digest's own reader."""
    return list(csv.DictReader(io.StringIO(world.store.objects[key].decode("utf-8"), newline="")))


def decimal_sum(rows: Sequence[dict[str, str]], column: str) -> Decimal:
    return sum((Decimal(row[column]) for row in rows if row[column]), Decimal(0))


# ------------------------------------------------------------------------------------------------------ ledger


def add_caption_order(world: DigestWorld, entry_id: str, ordered_at: int, *, state: str = "ordered") -> None:
    world.ledger.put(
        f"caption#{PARTNER_ID}#{entry_id}",
        "item#101",
        {"state": state, "task_id": 5000, "ordered_at": ordered_at, "entry_id": entry_id},
    )
    world.ledger.put(
        f"caption#{PARTNER_ID}#{entry_id}", "decision#v1", {"outcome": "ordered", "decided_at": ordered_at}
    )


def add_task(world: DigestWorld, task_id: int, state: str, updated_at: int, *, partner_id: int = PARTNER_ID) -> None:
    world.ledger.put(
        f"task#{partner_id}#{task_id}", "task", {"state": state, "updated_at": updated_at, "task_id": task_id}
    )
