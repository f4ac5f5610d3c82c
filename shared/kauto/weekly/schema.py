"""The schema of the automation configuration's ``weekly`` section (msgspec Structs; validation in
:mod:`kauto.validation`).

Kept apart from :mod:`kauto.weekly.config` (which turns a validated section into each partner's runtime settings and
fills the room reports' parameters from the session reports) so that :mod:`kauto.automation_config` can validate the
whole document when it is loaded, without importing the automations: ``{"weekly": {"enabeld": false}}`` is refused
at start, not when the schedule fires on Monday.
"""

from __future__ import annotations

import re
import string
import zoneinfo
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from kauto.weekly.wow import WowRule

ROOM_REPORT_IDS = (6000, 6001, 6002)
"""Stored room reports whose parameters the session reports define (6000 room data, 6001 attendees, 6002 breakouts)."""
MAX_REPORTS = 50
"""Reports per partner and week: each is one job message and one ledger row."""
MAX_CHECKPOINT_MARGIN_SECONDS = 3600
MAX_WAIT_SECONDS = 7 * 86400
MAX_QUEUE_DELAY_SECONDS = 900
"""SQS's longest message delay, the microservice poll interval's bound."""

PLACEHOLDERS = frozenset(
    {
        "from_unix",
        "to_unix",
        "from_day",
        "to_day",
        "from_date",
        "to_date",
        "tz_offset",
        "entries",
        "categories",
        "virtual_events",
        "playback_contexts",
    }
)
LIST_PLACEHOLDERS = frozenset({"entries", "categories", "virtual_events", "playback_contexts"})

_ID_LIST = tuple[
    Annotated[str, Meta(pattern=r"^[^|,;=\s]{1,128}$", extra={"expected": "an id without | , ; = or spaces"})], ...
]
_COLUMNS = tuple[Annotated[str, Meta(pattern=r"^[^\x00-\x1f\x7f]{1,128}$", extra={"expected": "a column name"})], ...]
_BASE_URL = r"^https?://[^/?#\s]+(/[^?#\s]*)?$"
_TIME_ZONE_EXPECTED = "an IANA time zone that exists, such as Europe/Berlin, or null"


def _zone_problem(name: str | None) -> str | None:
    return None if name is None or time_zone_exists(name) else _TIME_ZONE_EXPECTED


TIME_ZONE_CHECK = Meta(extra={"check": _zone_problem, "expected": _TIME_ZONE_EXPECTED})


class Surface(StrEnum):
    """The Kaltura API a report comes from (docs/kaltura.md#reports)."""

    TABLE = "getTable"
    CSV_URL = "getUrlForReportAsCsv"
    CSV_PARAMS = "getCsvFromStringParams"
    MICROSERVICE = "reportsMicroservice"


class RowLimit(StrEnum):
    """What a getTable / getUrlForReportAsCsv report does when the week holds more rows than one query serves."""

    SPLIT = "split"
    FAIL = "fail"


class Pieces(StrEnum):
    """How a getCsvFromStringParams report is requested: one request per local day, or one for the week."""

    DAY = "day"
    WEEK = "week"


class _Schema(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Immutable, keyword-only, unknown keys refused."""


class ReportFilters(_Schema, frozen=True):
    """Ids that narrow a report (``categoriesIdsIn``, ``entryIdIn``, ``virtualEventIdIn``, ``playbackContextIdsIn``)."""

    categories: Annotated[_ID_LIST, Meta(description="Category ids.")] = ()
    entries: Annotated[_ID_LIST, Meta(description="Entry ids.")] = ()
    virtual_events: Annotated[_ID_LIST, Meta(description="Virtual event ids.")] = ()
    playback_contexts: Annotated[_ID_LIST, Meta(description="Playback context ids.")] = ()

    def values(self, placeholder: str) -> tuple[str, ...]:
        """The ids a list placeholder (``entries``, ...) stands for."""
        return tuple(getattr(self, placeholder))

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-ready form."""
        return {name: list(getattr(self, name)) for name in self.__struct_fields__}


_SURFACE_FIELDS: dict[Surface, frozenset[str]] = {
    Surface.TABLE: frozenset({"report_type", "order"}),
    Surface.CSV_URL: frozenset({"report_type", "order"}),
    Surface.CSV_PARAMS: frozenset({"report_id", "pieces", "params", "excluded_fields"}),
    Surface.MICROSERVICE: frozenset({"report_name", "params"}),
}
_REQUIRED_FIELD: dict[Surface, str] = {
    Surface.TABLE: "report_type",
    Surface.CSV_URL: "report_type",
    Surface.CSV_PARAMS: "report_id",
    Surface.MICROSERVICE: "report_name",
}
MICROSERVICE_DEFAULT_PARAMS = {
    "from_date_id": "{from_date}",
    "to_date_id": "{to_date}",
    "entries_ids": "{entries}",
    "virtual_event_ids": "{virtual_events}",
}


class WeeklyReport(_Schema, frozen=True):
    """One report of the weekly set. ``to_dict`` and :func:`kauto.weekly.config.parse_report` round-trip it."""

    name: Annotated[
        str,
        Meta(
            pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
            description="Output file <name>.csv; unique in the set.",
            extra={"expected": "lowercase letters, digits, _ and - (at most 64, not starting with _ or -)"},
        ),
    ]
    surface: Annotated[Surface, Meta(description="The Kaltura API the report comes from.")]
    report_type: Annotated[
        int | None, Meta(description="KalturaReportType (getTable, getUrlForReportAsCsv); a positive number.")
    ] = None
    report_id: Annotated[
        int | None, Meta(description="Stored report id (getCsvFromStringParams); a positive number.")
    ] = None
    report_name: Annotated[
        str | None,
        Meta(description="Reports Microservice reportName (reportsMicroservice), e.g. pollsActivity."),
    ] = None
    filters: Annotated[ReportFilters, Meta(description="Ids that narrow the report.")] = ReportFilters()
    time_zone: Annotated[
        str | None,
        TIME_ZONE_CHECK,
        Meta(description="The report's own zone (window and day buckets); null: the run's."),
    ] = None
    columns: Annotated[_COLUMNS, Meta(description="Output only these columns, in this order; empty: all.")] = ()
    timestamp_columns: Annotated[_COLUMNS, Meta(description="Unix-seconds columns that get an <column>_iso twin.")] = ()
    order: Annotated[
        Annotated[str, Meta(pattern=r"^[+-]?[A-Za-z0-9_]{1,64}$", extra={"expected": "a column, + or - first"})] | None,
        Meta(
            description="getTable / getUrlForReportAsCsv order: a column with an optional + or - prefix.",
        ),
    ] = None
    on_row_limit: Annotated[
        RowLimit, Meta(description="Past the row limit of one query: split the time range, or fail.")
    ] = RowLimit.SPLIT
    pieces: Annotated[Pieces, Meta(description='getCsvFromStringParams: one request per "day" or per "week".')] = (
        Pieces.DAY
    )
    params: Annotated[
        dict[
            Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.]{0,63}$", extra={"expected": "a parameter name"})],
            str,
        ],
        Meta(
            description="getCsvFromStringParams params / microservice reportParameters, with placeholders such as "
            "{from_unix}; empty: the defaults of room reports 6000-6002 and of the microservice."
        ),
    ] = {}
    excluded_fields: Annotated[_ID_LIST, Meta(description="getCsvFromStringParams excludedFields.")] = ()

    def cross_check(self) -> list[tuple[str, str]]:
        """Surface-specific keys, placeholders, zones and columns (see :mod:`kauto.validation`)."""
        found: list[tuple[str, str]] = []
        required = _REQUIRED_FIELD[self.surface]
        value = getattr(self, required)
        if required == "report_name":
            if value is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", value):
                found.append((required, f"required for {self.surface.value}: a report name such as pollsActivity"))
        elif value is None or value <= 0:
            found.append((required, f"required for {self.surface.value}: a positive whole number"))
        defaults = WeeklyReport(name=self.name, surface=self.surface)
        for name in sorted(set().union(*_SURFACE_FIELDS.values()) - _SURFACE_FIELDS[self.surface]):
            if getattr(self, name) != getattr(defaults, name):
                found.append((name, f"not set: it does not apply to {self.surface.value}"))
        if self.surface is Surface.CSV_PARAMS and not self.params and self.report_id not in ROOM_REPORT_IDS:
            found.append(("params", "required for this report_id (only 6000-6002 have defaults)"))
        for key, template in self.params.items():
            problem = template_problem(template)
            if problem is not None:
                found.append((f"params.{key}", problem))
        if len(set(self.columns)) != len(self.columns):
            found.append(("columns", "each column once"))
        return found

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready document that :func:`kauto.weekly.config.parse_report` accepts."""
        document: dict[str, Any] = {
            "name": self.name,
            "surface": self.surface.value,
            "filters": self.filters.to_dict(),
            "time_zone": self.time_zone,
            "columns": list(self.columns),
            "timestamp_columns": list(self.timestamp_columns),
            "on_row_limit": self.on_row_limit.value,
        }
        for name in sorted(_SURFACE_FIELDS[self.surface]):
            value = getattr(self, name)
            document[name] = value.value if isinstance(value, StrEnum) else msgspec.to_builtins(value)
        return document


DEFAULT_REPORTS: tuple[dict[str, Any], ...] = (
    {"name": "top_content", "surface": "getTable", "report_type": 1, "order": "-count_plays"},
    {"name": "top_content_creators", "surface": "getTable", "report_type": 38, "order": "-count_plays"},
    {"name": "user_engagement", "surface": "getUrlForReportAsCsv", "report_type": 13, "order": "-count_plays"},
    {"name": "content_dropoff", "surface": "getTable", "report_type": 2, "order": "-count_plays"},
    {"name": "platforms", "surface": "getTable", "report_type": 21, "order": "-count_plays"},
    {"name": "geography", "surface": "getTable", "report_type": 36, "order": "-count_plays"},
    {"name": "room_data", "surface": "getCsvFromStringParams", "report_id": 6000},
    {"name": "attendees", "surface": "getCsvFromStringParams", "report_id": 6001},
    {"name": "breakouts", "surface": "getCsvFromStringParams", "report_id": 6002},
)
"""Content performance, per-user engagement (through the CSV export, 60,000 rows per query,
docs/kaltura.md#report-csv-url: users outnumber entries by far), drop-off, platforms, geography, and the room reports of
the week's sessions."""


class WeeklyPartner(_Schema, frozen=True):
    """One partner's weekly settings (a ``weekly.partners.<pid>`` entry overrides the top-level keys one by one)."""

    enabled: Annotated[bool, Meta(description="Run the weekly reports.")] = True
    time_zone: Annotated[
        str | None,
        TIME_ZONE_CHECK,
        Meta(description="IANA zone of the week boundaries; null: the deployment's ScheduleTimezone."),
    ] = None
    reports_service_url: Annotated[
        Annotated[str, Meta(pattern=_BASE_URL, extra={"expected": "an http(s) base URL"})] | None,
        Meta(
            description="Reports Microservice base URL, e.g. https://reports.nvp1.ovp.kaltura.com; null: the "
            "partner secret's.",
        ),
    ] = None
    microservice_poll_seconds: Annotated[
        int, Meta(ge=1, le=MAX_QUEUE_DELAY_SECONDS, description="Delay between Reports Microservice status polls.")
    ] = 60
    microservice_max_wait_seconds: Annotated[
        int,
        Meta(ge=1, le=MAX_WAIT_SECONDS, description="A microservice report still pending after this fails."),
    ] = 6 * 3600
    checkpoint_margin_seconds: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_CHECKPOINT_MARGIN_SECONDS,
            description="A job checkpoints when less Lambda time than this is left.",
        ),
    ] = 120
    reports: Annotated[
        tuple[WeeklyReport, ...],
        Meta(
            min_length=1,
            max_length=MAX_REPORTS,
            description="The report set (replaces the default set as a whole); default: top_content, "
            "top_content_creators, user_engagement, content_dropoff, platforms, geography, room_data, attendees, "
            "breakouts.",
        ),
    ] = msgspec.field(default_factory=lambda: tuple(msgspec.convert(DEFAULT_REPORTS, tuple[WeeklyReport, ...])))
    week_over_week: Annotated[
        tuple[WowRule, ...],
        Meta(description="Week-over-week alert rules of the digest (a partner's list replaces the top-level one)."),
    ] = ()

    def cross_check(self) -> list[tuple[str, str]]:
        """Unique names, max wait >= poll interval, no rule twice."""
        found: list[tuple[str, str]] = []
        if self.microservice_max_wait_seconds < self.microservice_poll_seconds:
            found.append(("microservice_max_wait_seconds", "at least microservice_poll_seconds"))
        seen: set[str] = set()
        for index, report in enumerate(self.reports):
            if report.name in seen:
                found.append((f"reports[{index}].name", "a name not used by another report of the set"))
            seen.add(report.name)
        rule_ids = [rule.rule_id for rule in self.week_over_week]
        if len(set(rule_ids)) != len(rule_ids):
            found.append(("week_over_week", "each rule once"))
        return found


class WeeklySection(WeeklyPartner, frozen=True):
    """The ``weekly`` section: the settings of every partner, and per-partner overrides."""

    partners: Annotated[
        dict[str, Any],
        Meta(description="Partner id -> overrides of the keys above (validated per partner)."),
    ] = {}


def time_zone_exists(name: str) -> bool:
    """Whether ``name`` is an IANA time zone of the bundled database."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


Template = tuple[tuple[str, str | None], ...]
"""A parsed parameter template: ``(literal text, placeholder name or None)`` pairs in order."""


def parse_template(template: str) -> Template:
    """Split ``template`` into literal text and placeholder names; raises ValueError for braces that are not a plain
    ``{name}`` (no attribute access, index, conversion or format spec: the text is filled in verbatim)."""
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if name is not None and (spec or conversion or not re.fullmatch(r"[a-z_]+", name)):
            raise ValueError("braces hold a plain placeholder such as {from_unix}")
        parts.append((literal, name))
    return tuple(parts)


def template_problem(template: str) -> str | None:
    """What is wrong with a parameter template, or ``None``."""
    try:
        names = [name for _, name in parse_template(template) if name is not None]
    except ValueError as error:
        return str(error)
    if set(names) - PLACEHOLDERS:
        return "placeholders among {" + "}, {".join(sorted(PLACEHOLDERS)) + "}"
    return None
