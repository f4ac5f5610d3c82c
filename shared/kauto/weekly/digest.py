"""The weekly digest of a completed run: key totals vs the week before, daily trend, top entries, alerts.

:func:`build_digest` runs once every job of a partner's ISO-week run has finished (the ``weekly_digest`` message of
:mod:`kauto.weekly.runs`). It reads the run's ``manifest.json``, streams the CSVs it lists (bounded memory, never a
whole file), scans the ledger for the week's caption orders and REACH errors, and writes next to the run:

- ``weekly/partner_id=<pid>/week=<YYYY-Www>/digest.html``: a self-contained page (inline CSS and SVG charts, no
  script, no link or external asset, every value escaped; readable offline), see :mod:`kauto.weekly.digest_page`;
- ``digest.json``: the totals, daily series and top entries, which next week's digest compares against without
  re-reading this week's CSVs (when it is missing, the previous run's CSVs are read instead).

Then it evaluates the partner's week-over-week rules (:mod:`kauto.weekly.wow`, one alert per partner, week and
rule) and publishes one summary (rule ``weekly_digest``, severity info) linking to the page. Re-running the digest
of a week overwrites the same two objects and publishes nothing twice.

Totals, and where each comes from (report roles are recognised by their report type or id in the weekly set):

- ``plays`` / ``minutes_viewed``: sums of ``count_plays`` / ``sum_time_viewed`` (minutes, as Kaltura reports them)
  of the content report (TOP_CONTENT, type 1; TOP_CONTENT_CREATOR, type 38, when the set has no type 1). The top
  entries are the entries with most plays there (rows of one entry from a split week are added up).
- ``unique_viewers``: distinct users (``name``, else ``user_id``) with plays in the per-user report (type 13).
- ``room_sessions`` / ``avg_engagement``: main-room sessions (no ``parent_entry_id``) of room data (report 6000) and
  the mean of their ``meeting_engaged_play_time_ratio``, as a percentage.
- ``caption_orders``: caption ledger rows (``caption#<pid>#<entry>`` / ``item#...``) ordered in the week;
  ``caption_errors``: REACH task rows (``task#<pid>#<task>``) that ended ERROR or REJECTED in the week.

The page's other sections, from the same run and ledger:

- the week's alerts: the alert publisher's claim rows (``pk=alert#<pid>``, one per alert sent, see
  :mod:`kauto.aws.alerts`) claimed inside the week, worst severity first (the digest's own summary left out);
- drop-off (CONTENT_DROPOFF, type 2): plays reaching 25/50/75/100 % of the entry, and the most played entries that
  keep the fewest viewers to the end;
- platforms (type 21, by ``device``), geography (type 36, by ``country``) and top creators (type 38, by
  ``creator_name``): plays and minutes per line, the top :data:`TOP_BREAKDOWN_ROWS`;
- every CSV of the run with what it is used for (:func:`used_for`), linked to its object in the S3 console.

Sums are exact decimal sums of the CSV cells; a metric whose report is not in the run is ``None`` (shown as "n/a",
never compared).

Daily series (days of the partner's time zone): room sessions by start day, attendees (report 6001) on their
session's day, the day's mean engagement and caption orders, all from the same rows and ledger items; and plays and
minutes per day from one ``report.getGraphs`` call for the content report (daily points; no CSV of the default set
has a day column). The graph is the one number not read from the run: if Kaltura cannot answer, the digest is built
without that chart rather than not at all.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kauto.automations.captions import ClaimState
from kauto.automations.errors import RetryLaterError
from kauto.automations.tasks import STATE_NAMES, TASK_SK
from kauto.automations.telemetry import count, logger
from kauto.aws.alerts import Alert, Severity
from kauto.aws.ledger import PK, STATE_ATTRIBUTE
from kauto.aws.object_store import JSON_CONTENT_TYPE
from kauto.aws.report_keys import manifest_key, weekly_prefix
from kauto.csvclean import decoded_lines
from kauto.errors import KautoError
from kauto.kaltura import KalturaError, ReportFilter, ReportInterval, VendorTaskStatus
from kauto.weekly.config import Surface, WeeklyReport
from kauto.weekly.digest_page import render_page
from kauto.weekly.digest_sources import AwsDigestSources, DigestSources
from kauto.weekly.runs import get_run
from kauto.weekly.wow import (
    Metric,
    WowFinding,
    WowRule,
    change_percent,
    evaluate,
    partner_rules,
    publish_findings,
)

if TYPE_CHECKING:
    from kauto.kaltura import KalturaClient
    from kauto.weekly.deps import WeeklyDeps

DIGEST_HTML = "digest.html"
DIGEST_JSON = "digest.json"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
DIGEST_VERSION = 1
SUMMARY_RULE = "weekly_digest"
TOP_ENTRIES = 10
DEFAULT_CONSOLE_REGION = "us-east-1"
"""The region of the S3 console links when the environment names none (Lambda always sets AWS_REGION)."""

CONTENT_REPORT_TYPES = (1, 38)
"""TOP_CONTENT, then TOP_CONTENT_CREATOR: the first of these in the set is the content report."""
USERS_REPORT_TYPE = 13
ROOM_DATA_REPORT = 6000
ATTENDEES_REPORT = 6001
BREAKOUTS_REPORT = 6002
BREAKDOWN_REPORT_TYPES = {2: "dropoff", 21: "platforms", 36: "geography", 38: "creators"}
"""CONTENT_DROPOFF, PLATFORMS, MAP_OVERLAY_COUNTRY, TOP_CONTENT_CREATOR: the page's breakdown sections."""
BREAKDOWN_COLUMNS = {"platforms": ("device",), "geography": ("country",), "creators": ("creator_name", "creator_id")}
TOP_BREAKDOWN_ROWS = 10
WEAKEST_DROPOFF_ENTRIES = 5
DROPOFF_COLUMNS = ("count_plays_25", "count_plays_50", "count_plays_75", "count_plays_100")
SEVERITY_ORDER = ("critical", "warning", "info")
ERROR_STATES = frozenset({STATE_NAMES[VendorTaskStatus.ERROR], STATE_NAMES[VendorTaskStatus.REJECTED]})
ORDERED_STATES = frozenset({ClaimState.ORDERED.value, ClaimState.DONE.value})
USER_COLUMNS = ("name", "user_id")
GRAPH_SERIES = {"count_plays": "plays", "sum_time_viewed": "minutes_viewed"}
# The CSV cleaner prefixes text cells that start like a formula with a quote (kauto.csvclean); names are shown as
# they were in Kaltura.
_FORMULA_FIRST = frozenset("=+-@\t\r")


class DigestError(KautoError):
    """The digest cannot be built from what the run left (e.g. a manifest that is not one)."""


class RunNotCompleteError(RetryLaterError):
    """The run's manifest is not in the bucket (yet): the digest request is retried later."""

    def __init__(self, partner_id: int, week: str) -> None:
        super().__init__(f"weekly run {week} of partner {partner_id} has no manifest")
        self.partner_id = partner_id
        self.week = week


# ------------------------------------------------------------------------------------------------------ models


@dataclass(frozen=True, slots=True)
class WeekWindow:
    """An ISO week in a time zone: ``[start, end)`` and its seven local days (Monday first)."""

    week: str
    zone: ZoneInfo
    days: tuple[date, ...]
    start: datetime
    end: datetime

    @classmethod
    def of(cls, week: str, time_zone: str) -> WeekWindow:
        """The window of ``week`` (``YYYY-Www``) in ``time_zone``."""
        zone = ZoneInfo(time_zone)
        monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
        days = tuple(monday + timedelta(days=offset) for offset in range(7))
        start = datetime.combine(monday, time(0), tzinfo=zone)
        end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
        return cls(week, zone, days, start, end)

    @property
    def previous_week(self) -> str:
        """The ISO week before this one (``2025-W01`` -> ``2024-W52``)."""
        year, week, _ = (self.days[0] - timedelta(days=7)).isocalendar()
        return f"{year:04d}-W{week:02d}"

    def contains(self, unix: float) -> bool:
        """Whether unix time ``unix`` falls in the week."""
        return self.start.timestamp() <= unix < self.end.timestamp()

    def day_index(self, unix: float) -> int | None:
        """0 (Monday) .. 6 (Sunday) for a moment inside the week, else ``None``."""
        if not self.contains(unix):
            return None
        local = datetime.fromtimestamp(unix, tz=UTC).astimezone(self.zone).date()
        return (local - self.days[0]).days


@dataclass(frozen=True, slots=True)
class TopEntry:
    """An entry of the week's ranking by plays."""

    entry_id: str
    name: str
    plays: float
    minutes_viewed: float


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A CSV of the run the digest read, with the role it played (``content``, ``users``, ...; ``""``: unused) and
    what it is used for, in words (every file has one, summarised here or not)."""

    report: str
    key: str
    rows: int
    role: str
    used_for: str = ""


@dataclass(frozen=True, slots=True)
class Share:
    """One line of a breakdown (a device, a country, a creator): plays and minutes viewed over the week."""

    label: str
    plays: float
    minutes_viewed: float | None


@dataclass(frozen=True, slots=True)
class DropoffEntry:
    """An entry of the drop-off report: plays and the share of plays watched to the end (percent)."""

    entry_id: str
    name: str
    plays: float
    play_through_percent: float


@dataclass(frozen=True, slots=True)
class Dropoff:
    """Plays of the week and how many reached 25/50/75/100 % of the entry; the most played entries that lose most."""

    plays: float
    reached: tuple[float, float, float, float]
    weakest: tuple[DropoffEntry, ...]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert claimed in the week (the publisher's ledger row): its rule, severity, subject key and time."""

    rule: str
    severity: str
    subject_key: str
    claimed_at: float
    published: bool


@dataclass(frozen=True, slots=True)
class WeekDigest:
    """Everything the page and next week's comparison need, as computed from one run."""

    partner_id: int
    week: str
    time_zone: str
    window_start: datetime
    window_end: datetime
    totals: Mapping[Metric, float | None]
    daily: Mapping[str, tuple[float | None, ...]]
    top_entries: tuple[TopEntry, ...]
    sources: tuple[SourceFile, ...] = ()
    days: tuple[date, ...] = ()
    breakdowns: Mapping[str, tuple[Share, ...]] = field(default_factory=dict)
    """``platforms``, ``geography``, ``creators``: the top lines by plays (absent: the report is not in the run)."""
    dropoff: Dropoff | None = None
    alerts: tuple[AlertRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``digest.json``."""
        return {
            "digest_version": DIGEST_VERSION,
            "partner_id": self.partner_id,
            "week": self.week,
            "time_zone": self.time_zone,
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "days": [day.isoformat() for day in self.days],
            "totals": {metric.value: self.totals.get(metric) for metric in Metric},
            "daily": {name: list(values) for name, values in self.daily.items()},
            "top_entries": [
                {"entry_id": e.entry_id, "name": e.name, "plays": e.plays, "minutes_viewed": e.minutes_viewed}
                for e in self.top_entries
            ],
            "sources": [
                {"report": s.report, "key": s.key, "rows": s.rows, "role": s.role, "used_for": s.used_for}
                for s in self.sources
            ],
            "breakdowns": {
                name: [{"label": r.label, "plays": r.plays, "minutes_viewed": r.minutes_viewed} for r in rows]
                for name, rows in self.breakdowns.items()
            },
            "dropoff": None
            if self.dropoff is None
            else {
                "plays": self.dropoff.plays,
                "reached": list(self.dropoff.reached),
                "weakest": [
                    {"entry_id": e.entry_id, "name": e.name, "plays": e.plays, "play_through": e.play_through_percent}
                    for e in self.dropoff.weakest
                ],
            },
            "alerts": [
                {
                    "rule": a.rule,
                    "severity": a.severity,
                    "subject_key": a.subject_key,
                    "claimed_at": a.claimed_at,
                    "published": a.published,
                }
                for a in self.alerts
            ],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> WeekDigest:
        """Read ``digest.json`` back; raises :class:`DigestError` when it is not one."""
        try:
            if document["digest_version"] != DIGEST_VERSION:
                raise DigestError(f"digest.json version {document['digest_version']} is not supported")
            totals_document = document["totals"]
            return cls(
                partner_id=int(document["partner_id"]),
                week=str(document["week"]),
                time_zone=str(document["time_zone"]),
                window_start=datetime.fromisoformat(document["window"]["start"]),
                window_end=datetime.fromisoformat(document["window"]["end"]),
                totals={metric: _optional_float(totals_document.get(metric.value)) for metric in Metric},
                daily={
                    str(name): tuple(_optional_float(value) for value in values)
                    for name, values in document["daily"].items()
                },
                top_entries=tuple(
                    TopEntry(str(e["entry_id"]), str(e["name"]), float(e["plays"]), float(e["minutes_viewed"]))
                    for e in document["top_entries"]
                ),
                days=tuple(date.fromisoformat(day) for day in document.get("days", [])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DigestError(f"digest.json is malformed: {error}") from error


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What :func:`build_digest` did."""

    digest: WeekDigest
    previous: WeekDigest | None
    html_key: str
    json_key: str
    findings: tuple[WowFinding, ...]
    alerts_published: int
    summary_published: bool


# ------------------------------------------------------------------------------------------------ the digest


def build_digest(
    partner_id: int,
    week: str,
    deps: WeeklyDeps,
    *,
    sources: DigestSources | None = None,
    rules: Sequence[WowRule] | None = None,
) -> DigestOutcome:
    """Build, store and announce the digest of ``partner_id``'s run of ``week`` (see the module docstring).

    ``sources`` defaults to the report bucket and the ledger table (``LEDGER_TABLE``); ``rules`` to the partner's
    week-over-week rules of the configuration (:func:`kauto.weekly.wow.partner_rules`). Raises
    :class:`RunNotCompleteError` when the run has no manifest, and the store, ledger and alert errors (the request
    is then retried; everything already done is idempotent).
    """
    reader = sources if sources is not None else AwsDigestSources.for_bucket(deps.store.bucket)
    graphs = DailyGraphs(lambda: deps.kaltura(partner_id))
    time_zone, reports = run_context(partner_id, week, deps)
    window = WeekWindow.of(week, time_zone)
    digest = compute_week(partner_id, window, reader, reports, graphs)
    if digest is None:
        raise RunNotCompleteError(partner_id, week)
    previous_zone, previous_reports = run_context(partner_id, window.previous_week, deps)
    previous = load_previous(
        partner_id, WeekWindow.of(window.previous_week, previous_zone), reader, previous_reports, graphs
    )
    if rules is None:
        rules = partner_rules(deps.config.weekly, partner_id)
    findings = tuple(evaluate(rules, digest.totals, previous.totals if previous is not None else None))

    prefix = weekly_prefix(partner_id, week)
    json_key, html_key = f"{prefix}{DIGEST_JSON}", f"{prefix}{DIGEST_HTML}"
    generated_at = datetime.fromtimestamp(deps.clock(), tz=UTC)
    body = json.dumps(digest.to_json(), indent=2, ensure_ascii=False).encode("utf-8")
    deps.store.put_bytes(json_key, body, content_type=JSON_CONTENT_TYPE)
    page = render_page(
        digest,
        previous,
        findings,
        generated_at=generated_at,
        previous_week=window.previous_week,
        bucket=deps.store.bucket,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_CONSOLE_REGION,
    )
    html_result = deps.store.put_bytes(html_key, page.encode("utf-8"), content_type=HTML_CONTENT_TYPE)
    links = (html_result.uri, f"s3://{deps.store.bucket}/{json_key}")

    published = publish_findings(
        findings,
        partner_id=partner_id,
        week=week,
        previous_week=window.previous_week,
        alerts=deps.alerts,
        links=links[:1],
    )
    summary = deps.alerts.publish(summary_alert(digest, previous, findings, links), dedupe_key=f"digest:{week}")
    count("WeeklyDigest", alerts=str(published))
    logger.info(
        "weekly digest written",
        extra={"partner_id": partner_id, "week": week, "findings": len(findings), "html_key": html_key},
    )
    return DigestOutcome(digest, previous, html_key, json_key, findings, published, summary.published)


def run_context(partner_id: int, week: str, deps: WeeklyDeps) -> tuple[str, dict[str, WeeklyReport]]:
    """The time zone and report set a week's run used (its ledger row), or the current settings without a run."""
    run = get_run(partner_id, week, deps)
    if run is not None:
        return run.time_zone, {spec.name: spec for spec in run.specs}
    return deps.run.time_zone(partner_id), {report.name: report for report in deps.run.settings(partner_id).reports}


def compute_week(
    partner_id: int,
    window: WeekWindow,
    sources: DigestSources,
    reports: Mapping[str, WeeklyReport],
    graphs: DailyGraphs | None = None,
) -> WeekDigest | None:
    """The digest data of ``window``'s run, from its manifest's CSVs and the ledger (and the daily plays from
    ``graphs``, if given); ``None`` without a manifest."""
    raw = sources.get_object(manifest_key(weekly_prefix(partner_id, window.week)))
    if raw is None:
        return None
    files = manifest_files(raw)
    roles = assign_roles(files, reports)
    aggregate = _Aggregate(window)
    used: list[SourceFile] = []
    # Room data first: attendees are placed on their session's day.
    for role in ("room_data", "attendees", "content", "users", *BREAKDOWN_REPORT_TYPES.values()):
        for name, key, rows in files:
            if roles.get(name) == role:
                aggregate.read(role, csv_rows(sources.stream_object(key)))
                used.append(SourceFile(name, key, rows, role, used_for(role, reports.get(name))))
    used.extend(
        SourceFile(name, key, rows, "", used_for("", reports.get(name)))
        for name, key, rows in files
        if name not in roles
    )
    aggregate.read_ledger(partner_id, sources)
    aggregate.read_alerts(partner_id, sources)
    content = next((reports.get(name) for name, role in roles.items() if role == "content"), None)
    daily = aggregate.daily(set(roles.values()))
    if graphs is not None and content is not None:
        daily |= graphs.daily(content, window)
    return WeekDigest(
        partner_id=partner_id,
        week=window.week,
        time_zone=window.zone.key,
        window_start=window.start,
        window_end=window.end,
        totals=aggregate.totals(set(roles.values())),
        daily=daily,
        top_entries=aggregate.top_entries(TOP_ENTRIES),
        sources=tuple(used),
        days=window.days,
        breakdowns=aggregate.breakdown_tops(set(roles.values())),
        dropoff=aggregate.dropoff_summary() if "dropoff" in roles.values() else None,
        alerts=aggregate.week_alerts(),
    )


def load_previous(
    partner_id: int,
    window: WeekWindow,
    sources: DigestSources,
    reports: Mapping[str, WeeklyReport],
    graphs: DailyGraphs | None = None,
) -> WeekDigest | None:
    """The digest data of the previous week ``window``: its ``digest.json``, else computed from its run's CSVs (a
    backfill may build weeks out of order); ``None`` when that week has no run either."""
    raw = sources.get_object(f"{weekly_prefix(partner_id, window.week)}{DIGEST_JSON}")
    if raw is not None:
        try:
            return WeekDigest.from_json(json.loads(raw))
        except (ValueError, DigestError):
            logger.warning("previous digest.json unreadable, reading its run", extra={"week": window.week})
    return compute_week(partner_id, window, sources, reports, graphs)


def summary_alert(
    digest: WeekDigest, previous: WeekDigest | None, findings: Sequence[WowFinding], links: Sequence[str]
) -> Alert:
    """The SNS summary of a digest (counts only, never entry names: names are free text)."""
    parts = []
    changes: dict[str, float | None] = {}
    for metric in Metric:
        value = digest.totals.get(metric)
        before = previous.totals.get(metric) if previous is not None else None
        change = change_percent(value, before) if value is not None and before is not None else None
        changes[metric.value] = round(change, 2) if change is not None else None
        shown = "n/a" if value is None else _number(value)
        parts.append(f"{metric.label} {shown}" + (f" ({change:+.1f}%)" if change is not None else ""))
    return Alert(
        rule=SUMMARY_RULE,
        severity=Severity.INFO,
        partner_id=digest.partner_id,
        subject=f"Kaltura partner {digest.partner_id}: weekly digest {digest.week}",
        summary="; ".join(parts) + f". Digest: {links[0]}",
        details={
            "week": digest.week,
            "time_zone": digest.time_zone,
            "totals": {metric.value: digest.totals.get(metric) for metric in Metric},
            "previous_week": previous.week if previous is not None else None,
            "change_percent": changes,
            "week_over_week_alerts": [finding.rule.rule_id for finding in findings],
        },
        links=tuple(links),
    )


# ----------------------------------------------------------------------------------------------- the manifest


def manifest_files(raw: bytes) -> list[tuple[str, str, int]]:
    """``(report name, key, rows)`` of each CSV a run manifest lists (the format of :mod:`kauto.aws.manifest`)."""
    try:
        document = json.loads(raw)
        files = [(str(f["report"]), str(f["key"]), int(f.get("rows", 0))) for f in document["files"]]
    except (ValueError, KeyError, TypeError) as error:
        raise DigestError(f"run manifest is malformed: {error}") from error
    return [item for item in files if item[1].endswith(".csv")]


def assign_roles(files: Sequence[tuple[str, str, int]], reports: Mapping[str, WeeklyReport]) -> dict[str, str]:
    """Report name -> role (``content``, ``users``, ``room_data``, ``attendees``) for the run's files.

    Each role goes to one report (content to the first of :data:`CONTENT_REPORT_TYPES` in the run), so that no
    metric is counted twice from two breakdowns of the same plays.
    """
    by_type: dict[int, str] = {}
    roles: dict[str, str] = {}
    for name, _, _ in files:
        report = reports.get(name)
        if report is None:
            continue
        if report.surface in (Surface.TABLE, Surface.CSV_URL) and report.report_type is not None:
            by_type.setdefault(report.report_type, name)
        elif report.surface is Surface.CSV_PARAMS and report.report_id == ROOM_DATA_REPORT:
            roles.setdefault(name, "room_data")
        elif report.surface is Surface.CSV_PARAMS and report.report_id == ATTENDEES_REPORT:
            roles.setdefault(name, "attendees")
    for report_type, role in BREAKDOWN_REPORT_TYPES.items():
        if report_type in by_type:
            roles[by_type[report_type]] = role
    content = next((by_type[t] for t in CONTENT_REPORT_TYPES if t in by_type), None)
    if content is not None:
        roles[content] = "content"  # a creators report that is also the content report feeds both (see _content)
    if USERS_REPORT_TYPE in by_type:
        roles[by_type[USERS_REPORT_TYPE]] = "users"
    return roles


ROLE_USES: Mapping[str, str] = {
    "content": "plays, minutes viewed, top entries",
    "users": "unique viewers",
    "room_data": "room sessions, engagement",
    "attendees": "attendees per day",
    "dropoff": "drop-off: how far plays got",
    "platforms": "platforms and devices",
    "geography": "geography (plays by country)",
    "creators": "top creators",
}


def used_for(role: str, report: WeeklyReport | None) -> str:
    """What a run file is for, in words: its section of the digest, else what the report holds."""
    if role in ROLE_USES:
        return ROLE_USES[role]
    if report is None:
        return "not in this week's report set (kept as written)"
    if report.surface is Surface.CSV_PARAMS and report.report_id == BREAKOUTS_REPORT:
        return "breakout rooms of each session (raw data, not charted)"
    if report.surface is Surface.MICROSERVICE:
        return f"Reports Microservice report {report.report_name} (raw data, not charted)"
    if report.report_type is not None and report.report_type in (*CONTENT_REPORT_TYPES, USERS_REPORT_TYPE):
        return f"report type {report.report_type}: another breakdown of plays already counted (raw data)"
    what = f"report type {report.report_type}" if report.report_type is not None else f"report {report.report_id}"
    return f"{what} (raw data, not charted)"


class DailyGraphs:
    """Plays and minutes per local day of the week from ``report.getGraphs`` (interval days) of a report type."""

    def __init__(self, client: Callable[[], KalturaClient]) -> None:
        self._client = client

    def daily(self, report: WeeklyReport, window: WeekWindow) -> dict[str, tuple[float | None, ...]]:
        """``{"plays": (7 values), "minutes_viewed": (...)}``; empty when Kaltura cannot answer (logged)."""
        if report.report_type is None:
            return {}
        offset = window.start.utcoffset()
        report_filter = ReportFilter(
            from_date=int(window.start.timestamp()),
            to_date=int(window.end.timestamp()),
            # Minutes west of UTC, as JavaScript's getTimezoneOffset (the zone's offset when the week starts).
            time_zone_offset=-int(offset.total_seconds() // 60) if offset is not None else 0,
            interval=ReportInterval.DAYS,
            entry_ids=report.filters.entries,
            category_ids=report.filters.categories,
            virtual_event_ids=report.filters.virtual_events,
        )
        try:
            graphs = self._client().reports.graphs(report.report_type, report_filter)
        except KalturaError as error:
            logger.warning(
                "daily graph unavailable; digest built without it",
                extra={"week": window.week, "error": type(error).__name__},
            )
            count("WeeklyDigestGraphUnavailable")
            return {}
        series: dict[str, tuple[float | None, ...]] = {}
        for graph in graphs:
            name = GRAPH_SERIES.get(graph.id)
            if name is None:
                continue
            values: list[float | None] = [None] * 7
            for label, value in graph.points:
                index = _graph_day(label, window)
                number = _decimal(value)
                if index is not None and number is not None:
                    values[index] = float(number) + (values[index] or 0.0)
            series[name] = tuple(values)
        return series


def _graph_day(label: str, window: WeekWindow) -> int | None:
    """The day index of a graph point labelled ``YYYYMMDD`` (or ``YYYY-MM-DD``), if inside the week."""
    digits = label.replace("-", "").strip()
    try:
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
    index = (day - window.days[0]).days
    return index if 0 <= index < 7 else None


# ----------------------------------------------------------------------------------------------------- reading


def csv_rows(chunks: Iterable[bytes]) -> Iterator[dict[str, str]]:
    """The rows of a streamed CSV as ``{column: cell}`` (header first; a UTF-8 BOM is skipped; quoted newlines
    are kept inside their cell). Memory: one line at a time."""
    reader = csv.reader(decoded_lines(chunks))
    header = next(reader, None)
    if header is None:
        return
    width = len(header)
    for cells in reader:
        if not cells:
            continue
        if len(cells) < width:
            cells += [""] * (width - len(cells))
        yield dict(zip(header, cells[:width], strict=True))


def display_text(cell: str) -> str:
    """A text cell as it was in Kaltura: without the quote the CSV cleaner put before a formula-like start."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_FIRST:
        return cell[1:]
    return cell


@dataclass(slots=True)
class _EntryTotals:
    name: str
    plays: Decimal = Decimal(0)
    minutes: Decimal = Decimal(0)


@dataclass(slots=True)
class _Aggregate:
    """Running sums over the rows of one run (exact decimals)."""

    window: WeekWindow
    plays: Decimal = Decimal(0)
    minutes: Decimal = Decimal(0)
    entries: dict[str, _EntryTotals] = field(default_factory=dict)
    users: set[bytes] = field(default_factory=set)
    sessions: dict[tuple[str, str], tuple[int | None, Decimal | None]] = field(default_factory=dict)
    attendees_by_session: dict[str, int] = field(default_factory=dict)
    daily_orders: list[int] = field(default_factory=lambda: [0] * 7)
    caption_orders: int = 0
    caption_errors: int = 0
    shares: dict[str, dict[str, list[Decimal | None]]] = field(default_factory=dict)
    dropoff_reached: list[Decimal] = field(default_factory=lambda: [Decimal(0)] * 4)
    dropoff_plays: Decimal = Decimal(0)
    dropoff_entries: dict[str, list[Any]] = field(default_factory=dict)
    alerts: list[AlertRecord] = field(default_factory=list)

    def read(self, role: str, rows: Iterator[dict[str, str]]) -> None:
        handler = {
            "content": self._content,
            "users": self._user,
            "room_data": self._room,
            "attendees": self._attendee,
            "dropoff": self._dropoff,
            "platforms": lambda row: self._share("platforms", row),
            "geography": lambda row: self._share("geography", row),
            "creators": lambda row: self._share("creators", row),
        }[role]
        for row in rows:
            handler(row)

    def _share(self, name: str, row: Mapping[str, str]) -> None:
        label = next((display_text(row[c]) for c in BREAKDOWN_COLUMNS[name] if row.get(c)), "") or "(unknown)"
        sums = self.shares.setdefault(name, {}).setdefault(label, [Decimal(0), None])
        sums[0] = (sums[0] or Decimal(0)) + (_decimal(row.get("count_plays")) or 0)
        minutes = _decimal(row.get("sum_time_viewed"))
        if minutes is not None:
            sums[1] = (sums[1] or Decimal(0)) + minutes

    def _dropoff(self, row: Mapping[str, str]) -> None:
        plays = _decimal(row.get("count_plays")) or Decimal(0)
        self.dropoff_plays += plays
        for index, column in enumerate(DROPOFF_COLUMNS):
            self.dropoff_reached[index] += _decimal(row.get(column)) or 0
        entry_id = row.get("object_id") or row.get("entry_id") or ""
        if entry_id:
            entry = self.dropoff_entries.setdefault(
                entry_id, [display_text(row.get("entry_name") or entry_id), Decimal(0), Decimal(0)]
            )
            entry[1] += plays
            entry[2] += _decimal(row.get(DROPOFF_COLUMNS[-1])) or 0

    def _content(self, row: Mapping[str, str]) -> None:
        plays, minutes = _decimal(row.get("count_plays")), _decimal(row.get("sum_time_viewed"))
        self.plays += plays or 0
        self.minutes += minutes or 0
        entry_id = row.get("object_id") or row.get("entry_id") or ""
        if not entry_id:
            return
        entry = self.entries.get(entry_id)
        if entry is None:
            entry = self.entries[entry_id] = _EntryTotals(display_text(row.get("entry_name") or entry_id))
        entry.plays += plays or 0
        entry.minutes += minutes or 0
        if row.get("creator_name") or row.get("creator_id"):
            self._share("creators", row)  # TOP_CONTENT_CREATOR as the content report

    def _user(self, row: Mapping[str, str]) -> None:
        user = next((row[column] for column in USER_COLUMNS if row.get(column)), "")
        plays = _decimal(row.get("count_plays"))
        if user and (plays is None or plays > 0):
            # A digest, not the id: sets of many users stay small and hold no personal data.
            self.users.add(hashlib.blake2b(user.encode("utf-8"), digest_size=12).digest())

    def _room(self, row: Mapping[str, str]) -> None:
        room, session = row.get("entry_id") or "", row.get("cue_point_id") or ""
        if not room or not session or row.get("parent_entry_id"):
            return
        start = _decimal(row.get("session_start_time"))
        day = self.window.day_index(float(start)) if start is not None else None
        self.sessions[(room, session)] = (day, _decimal(row.get("meeting_engaged_play_time_ratio")))

    def _attendee(self, row: Mapping[str, str]) -> None:
        session = row.get("cue_point_id") or ""
        self.attendees_by_session[session] = self.attendees_by_session.get(session, 0) + 1

    def read_ledger(self, partner_id: int, sources: DigestSources) -> None:
        for item in sources.scan_ledger(f"caption#{partner_id}#"):
            ordered_at = item.get("ordered_at")
            if (
                str(item.get("sk", "")).startswith("item#")
                and item.get(STATE_ATTRIBUTE) in ORDERED_STATES
                and isinstance(ordered_at, int | float)
                and self.window.contains(ordered_at)
            ):
                self.caption_orders += 1
                index = self.window.day_index(ordered_at)
                if index is not None:
                    self.daily_orders[index] += 1
        for item in sources.scan_ledger(f"task#{partner_id}#"):
            updated_at = item.get("updated_at")
            if (
                item.get("sk") == TASK_SK
                and item.get(STATE_ATTRIBUTE) in ERROR_STATES
                and isinstance(updated_at, int | float)
                and self.window.contains(updated_at)
            ):
                self.caption_errors += 1

    def read_alerts(self, partner_id: int, sources: DigestSources) -> None:
        """The alert claims of the week (one ledger row per alert sent, see ``kauto.aws.alerts``)."""
        partition = f"alert#{partner_id}"
        for item in sources.scan_ledger(partition):
            claimed_at, rule, sort_key = item.get("claimed_at"), str(item.get("alert", "")), str(item.get("sk", ""))
            if (
                item.get(PK) != partition
                or rule in ("", SUMMARY_RULE)
                or not isinstance(claimed_at, int | float | Decimal)
                or not self.window.contains(float(claimed_at))
            ):
                continue
            self.alerts.append(
                AlertRecord(
                    rule=rule,
                    severity=str(item.get("severity", "info")),
                    subject_key=sort_key.removeprefix(f"{rule}#"),
                    claimed_at=float(claimed_at),
                    published=item.get(STATE_ATTRIBUTE) == "published",
                )
            )

    def week_alerts(self) -> tuple[AlertRecord, ...]:
        """The week's alerts, worst first (critical before warning before info, then the latest)."""
        return tuple(sorted(self.alerts, key=lambda a: (severity_rank(a.severity), -a.claimed_at, a.subject_key)))

    def breakdown_tops(self, roles: set[str]) -> dict[str, tuple[Share, ...]]:
        tops: dict[str, tuple[Share, ...]] = {}
        for name in ("platforms", "geography", "creators"):
            lines = self.shares.get(name, {})
            if name not in roles and not lines:
                continue
            ranked = sorted(lines.items(), key=lambda item: (-(item[1][0] or 0), item[0]))
            tops[name] = tuple(
                Share(label, float(plays or 0), float(minutes) if minutes is not None else None)
                for label, (plays, minutes) in ranked[:TOP_BREAKDOWN_ROWS]
            )
        return tops

    def dropoff_summary(self) -> Dropoff:
        most_played = sorted(self.dropoff_entries.items(), key=lambda item: (-item[1][1], item[0]))[:TOP_ENTRIES]
        weakest = sorted(
            (
                DropoffEntry(entry_id, name, float(plays), float(finished * 100 / plays))
                for entry_id, (name, plays, finished) in most_played
                if plays > 0
            ),
            key=lambda entry: (entry.play_through_percent, -entry.plays, entry.entry_id),
        )
        return Dropoff(
            float(self.dropoff_plays),
            (
                float(self.dropoff_reached[0]),
                float(self.dropoff_reached[1]),
                float(self.dropoff_reached[2]),
                float(self.dropoff_reached[3]),
            ),
            tuple(weakest[:WEAKEST_DROPOFF_ENTRIES]),
        )

    def totals(self, roles: set[str]) -> dict[Metric, float | None]:
        rates = [rate for _, rate in self.sessions.values() if rate is not None]
        has_rooms = "room_data" in roles
        return {
            Metric.PLAYS: float(self.plays) if "content" in roles else None,
            Metric.MINUTES_VIEWED: float(self.minutes) if "content" in roles else None,
            Metric.UNIQUE_VIEWERS: float(len(self.users)) if "users" in roles else None,
            Metric.ROOM_SESSIONS: float(len(self.sessions)) if has_rooms else None,
            Metric.AVG_ENGAGEMENT: float(sum(rates, Decimal(0)) * 100 / len(rates)) if has_rooms and rates else None,
            Metric.CAPTION_ORDERS: float(self.caption_orders),
            Metric.CAPTION_ERRORS: float(self.caption_errors),
        }

    def daily(self, roles: set[str]) -> dict[str, tuple[float | None, ...]]:
        series: dict[str, tuple[float | None, ...]] = {"caption_orders": tuple(float(n) for n in self.daily_orders)}
        if "room_data" in roles:
            sessions = [0] * 7
            attendees = [0] * 7
            rates: list[list[Decimal]] = [[] for _ in range(7)]
            for (_, session_id), (day, rate) in self.sessions.items():
                if day is None:
                    continue
                sessions[day] += 1
                attendees[day] += self.attendees_by_session.get(session_id, 0)
                if rate is not None:
                    rates[day].append(rate)
            series["room_sessions"] = tuple(float(n) for n in sessions)
            series["avg_engagement"] = tuple(
                float(sum(day, Decimal(0)) * 100 / len(day)) if day else None for day in rates
            )
            if "attendees" in roles:
                series["attendees"] = tuple(float(n) for n in attendees)
        return series

    def top_entries(self, limit: int) -> tuple[TopEntry, ...]:
        ranked = sorted(self.entries.items(), key=lambda item: (-item[1].plays, -item[1].minutes, item[0]))
        return tuple(
            TopEntry(entry_id, totals.name, float(totals.plays), float(totals.minutes))
            for entry_id, totals in ranked[:limit]
            if totals.plays > 0
        )


def severity_rank(severity: str) -> int:
    """0 for critical, 1 warning, 2 info (3: anything else)."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def _decimal(raw: str | None) -> Decimal | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()
