"""The weekly report set: the ``weekly`` section of the automation config, validated once, with a bundled default.

The automation config keeps its top-level ``weekly`` section untouched (:mod:`kauto.automation_config`); this module
validates it. Every error is a :class:`ConfigError` naming the path, e.g.
``weekly.partners.1234567.reports[2].surface``.

Document (every key optional)::

    "weekly": {
      "enabled": true,
      "time_zone": "Europe/Berlin",           # IANA zone of the week boundaries; null: the deployment's
                                              # ScheduleTimezone (env WEEKLY_TIME_ZONE)
      "reports_service_url": null,            # Reports Microservice base, e.g. https://reports.nvp1.ovp.kaltura.com
      "microservice_poll_seconds": 60,        # delay between status polls (SQS message delay, at most 900)
      "microservice_max_wait_seconds": 21600, # a microservice report still pending after this fails
      "checkpoint_margin_seconds": 120,       # a job checkpoints when less Lambda time than this is left
      "reports": [ ... ],                     # replaces the default set (DEFAULT_REPORTS)
      "partners": {"1234567": { <any key above except partners> }}
    }

A partner's settings are the top-level keys overridden key by key by its ``partners`` entry (``reports`` replaces the
whole list). Weekly runs are scheduled for the partners of the automation config (``partners``) and of
``weekly.partners`` whose weekly settings are enabled.

A report entry names its API surface and what to ask for::

    {"name": "top_content",                   # output file <name>.csv: [a-z0-9][a-z0-9_-]*, unique in the set
     "surface": "getTable",                   # getTable | getUrlForReportAsCsv | getCsvFromStringParams |
                                              # reportsMicroservice
     "report_type": 1,                        # KalturaReportType (getTable, getUrlForReportAsCsv)
     "report_id": 6000,                       # stored report id (getCsvFromStringParams)
     "report_name": "pollsActivity",          # Reports Microservice reportName
     "filters": {"categories": [], "entries": [], "virtual_events": [], "playback_contexts": []},
     "time_zone": null,                       # the report's own zone (window and day buckets); null: the run's
     "columns": [],                           # output only these columns, in this order; empty: all
     "timestamp_columns": [],                 # unix-seconds columns that get an <column>_iso twin
     "order": "-count_plays",                 # getTable / getUrlForReportAsCsv order
     "on_row_limit": "split",                 # split the time range past 12,000 / 60,000 rows, or "fail"
     "pieces": "day",                         # getCsvFromStringParams: one request per "day" or per "week"
     "params": {"from_date": "{from_unix}"},  # getCsvFromStringParams params / microservice reportParameters
     "excluded_fields": []}                   # getCsvFromStringParams excludedFields

``params`` values may use placeholders filled per request: ``{from_unix}``, ``{to_unix}`` (the last second, the
window being inclusive for these reports), ``{from_day}``/``{to_day}`` (``YYYYMMDD``), ``{from_date}``/``{to_date}``
(``YYYY-MM-DD``), ``{tz_offset}`` (minutes west of UTC) and the filters ``{entries}``, ``{categories}``,
``{virtual_events}``, ``{playback_contexts}``: comma-joined in getCsvFromStringParams, a JSON list in the
microservice when the value is the placeholder alone. A parameter whose value comes out empty is not sent.
Room reports 6000/6001/6002 get their parameters and column layout from the session reports
(:data:`kauto.automations.room_reports.ROOM_REPORTS`) when ``params`` is not given.

Aggregated report types (one row per entry, user, device, country over the window) split past the row limit give
one row per part for an entity seen in several parts; additive metrics (plays, minutes) still sum to the week. Per
moment reports (a row per session or per day) split exactly. Use ``"on_row_limit": "fail"`` to refuse instead.
"""

from __future__ import annotations

import dataclasses
import re
import string
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from kauto.automation_config import AutomationConfig
from kauto.automations.room_reports import ROOM_REPORTS
from kauto.aws.queue import MAX_DELAY_SECONDS
from kauto.errors import ConfigError
from kauto.weekly.wow import RULES_SETTING, parse_rules

MAX_REPORTS = 50
"""Reports per partner and week: each is one job message and one ledger row."""
MAX_CHECKPOINT_MARGIN_SECONDS = 3600
MAX_WAIT_SECONDS = 7 * 86400
_REPORT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ORDER = re.compile(r"[+-]?[A-Za-z0-9_]{1,64}")
_ID = re.compile(r"[^|,;=\s]{1,128}")  # ids travel joined by | (getTable) or , and ; (string params)
_COLUMN = re.compile(r"[^\x00-\x1f\x7f]{1,128}")

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


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """Ids that narrow a report (``categoriesIdsIn``, ``entryIdIn``, ``virtualEventIdIn``, ``playbackContextIdsIn``)."""

    categories: tuple[str, ...] = ()
    entries: tuple[str, ...] = ()
    virtual_events: tuple[str, ...] = ()
    playback_contexts: tuple[str, ...] = ()

    def values(self, placeholder: str) -> tuple[str, ...]:
        """The ids a list placeholder (``entries``, ...) stands for."""
        return {
            "categories": self.categories,
            "entries": self.entries,
            "virtual_events": self.virtual_events,
            "playback_contexts": self.playback_contexts,
        }[placeholder]

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-ready form."""
        return {
            "categories": list(self.categories),
            "entries": list(self.entries),
            "virtual_events": list(self.virtual_events),
            "playback_contexts": list(self.playback_contexts),
        }


ParamValue = str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    """One report of the weekly set, validated. ``to_dict``/:func:`parse_report` round-trip it (job rows keep it)."""

    name: str
    surface: Surface
    report_type: int | None = None
    report_id: int | None = None
    report_name: str | None = None
    filters: ReportFilters = field(default_factory=ReportFilters)
    time_zone: str | None = None
    columns: tuple[str, ...] = ()
    timestamp_columns: tuple[str, ...] = ()
    order: str | None = None
    on_row_limit: RowLimit = RowLimit.SPLIT
    pieces: Pieces = Pieces.DAY
    params: Mapping[str, str] = field(default_factory=dict)
    excluded_fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready document that :func:`parse_report` accepts."""
        document: dict[str, Any] = {
            "name": self.name,
            "surface": self.surface.value,
            "filters": self.filters.to_dict(),
            "time_zone": self.time_zone,
            "columns": list(self.columns),
            "timestamp_columns": list(self.timestamp_columns),
            "on_row_limit": self.on_row_limit.value,
        }
        if self.surface in (Surface.TABLE, Surface.CSV_URL):
            document |= {"report_type": self.report_type, "order": self.order}
        if self.surface is Surface.CSV_PARAMS:
            document |= {
                "report_id": self.report_id,
                "pieces": self.pieces.value,
                "excluded_fields": list(self.excluded_fields),
            }
        if self.surface is Surface.MICROSERVICE:
            document["report_name"] = self.report_name
        if self.surface in (Surface.CSV_PARAMS, Surface.MICROSERVICE):
            document["params"] = dict(self.params)
        return document


@dataclass(frozen=True, slots=True)
class WeeklySettings:
    """One partner's effective weekly settings."""

    enabled: bool
    time_zone: str | None
    reports_service_url: str | None
    microservice_poll_seconds: int
    microservice_max_wait_seconds: int
    checkpoint_margin_seconds: int
    reports: tuple[WeeklyReport, ...]

    def report(self, name: str) -> WeeklyReport | None:
        """The report called ``name``, if it is in the set."""
        return next((report for report in self.reports if report.name == name), None)


@dataclass(frozen=True, slots=True)
class WeeklyConfig:
    """The validated ``weekly`` section: the top-level settings and each listed partner's merged settings."""

    defaults: WeeklySettings
    partners: Mapping[int, WeeklySettings]

    def for_partner(self, partner_id: int) -> WeeklySettings:
        """``partner_id``'s settings (its own section merged over the top level, or the top level)."""
        return self.partners.get(partner_id, self.defaults)

    def scheduled_partners(self, automation: AutomationConfig) -> tuple[int, ...]:
        """Partners a scheduled run covers: those of the automation config and of ``weekly.partners`` whose weekly
        settings are enabled, ascending."""
        candidates = set(automation.configured_partner_ids) | set(self.partners)
        return tuple(sorted(pid for pid in candidates if self.for_partner(pid).enabled))


# Default set: content performance, per-user engagement, drop-off, platforms and devices, geography, and the room
# reports of the week's sessions. Per-user engagement goes through the CSV export (60,000 rows per query,
# docs/kaltura.md#report-csv-url) because users outnumber entries by far.
DEFAULT_REPORTS: tuple[Mapping[str, Any], ...] = (
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

_DEFAULT_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "enabled": True,
        "time_zone": None,
        "reports_service_url": None,
        "microservice_poll_seconds": 60,
        "microservice_max_wait_seconds": 6 * 3600,
        "checkpoint_margin_seconds": 120,
        "reports": [dict(report) for report in DEFAULT_REPORTS],
    }
)
_SETTING_KEYS = frozenset(_DEFAULT_SETTINGS)
# Week-over-week rules are read by the digest (kauto.weekly.wow.partner_rules); validated here with the rest.
_PARTNER_KEYS = _SETTING_KEYS | {RULES_SETTING}
_TOP_KEYS = _PARTNER_KEYS | {"partners"}
_REPORT_KEYS = frozenset(
    {
        "name",
        "surface",
        "report_type",
        "report_id",
        "report_name",
        "filters",
        "time_zone",
        "columns",
        "timestamp_columns",
        "order",
        "on_row_limit",
        "pieces",
        "params",
        "excluded_fields",
    }
)
_SURFACE_KEYS: Mapping[Surface, frozenset[str]] = {
    Surface.TABLE: frozenset({"report_type", "order"}),
    Surface.CSV_URL: frozenset({"report_type", "order"}),
    Surface.CSV_PARAMS: frozenset({"report_id", "pieces", "params", "excluded_fields"}),
    Surface.MICROSERVICE: frozenset({"report_name", "params"}),
}
_FILTER_KEYS = ("categories", "entries", "virtual_events", "playback_contexts")
_MICROSERVICE_DEFAULT_PARAMS = {
    "from_date_id": "{from_date}",
    "to_date_id": "{to_date}",
    "entries_ids": "{entries}",
    "virtual_event_ids": "{virtual_events}",
}


def parse_weekly_config(section: Mapping[str, Any] | None) -> WeeklyConfig:
    """Validate the ``weekly`` section (``None``: all defaults); raises :class:`ConfigError` naming the path."""
    document = dict(section or {})
    _only(document, _TOP_KEYS, "weekly")
    parse_rules(document.get(RULES_SETTING), f"weekly.{RULES_SETTING}")
    top = {**_DEFAULT_SETTINGS, **{key: value for key, value in document.items() if key in _SETTING_KEYS}}
    defaults = _settings(top, "weekly")
    partners_document = document.get("partners") or {}
    if not isinstance(partners_document, Mapping):
        raise ConfigError("weekly.partners", "must be an object keyed by partner id")
    partners: dict[int, WeeklySettings] = {}
    for key, overrides in partners_document.items():
        path = f"weekly.partners.{key}"
        if not isinstance(key, str) or not key.isascii() or not key.isdigit() or int(key) <= 0:
            raise ConfigError(path, "partner id must be a positive integer")
        if not isinstance(overrides, Mapping):
            raise ConfigError(path, "must be an object")
        _only(overrides, _PARTNER_KEYS, path)
        parse_rules(overrides.get(RULES_SETTING), f"{path}.{RULES_SETTING}")
        settings = {name: value for name, value in overrides.items() if name in _SETTING_KEYS}
        partners[int(key)] = _settings({**top, **settings}, path)
    return WeeklyConfig(defaults=defaults, partners=MappingProxyType(partners))


def parse_report(document: Any, path: str = "report") -> WeeklyReport:
    """Validate one report entry (also how job rows turn their stored entry back into a :class:`WeeklyReport`)."""
    if not isinstance(document, Mapping):
        raise ConfigError(path, "must be an object")
    _only(document, _REPORT_KEYS, path)
    name = document.get("name")
    if not isinstance(name, str) or not _REPORT_NAME.fullmatch(name):
        raise ConfigError(f"{path}.name", f"must match {_REPORT_NAME.pattern} (it names the output file)")
    surface_value = document.get("surface")
    try:
        surface = Surface(str(surface_value))
    except ValueError:
        allowed = ", ".join(s.value for s in Surface)
        raise ConfigError(f"{path}.surface", f"must be one of {allowed}") from None
    foreign = sorted(key for key in document if key in _REPORT_KEYS - _SURFACE_KEYS[surface] and _is_surface_key(key))
    if foreign:
        raise ConfigError(f"{path}.{foreign[0]}", f"does not apply to {surface.value}")
    filters = _filters(document.get("filters"), f"{path}.filters")
    time_zone = _time_zone(document.get("time_zone"), f"{path}.time_zone")
    columns = _names(document.get("columns"), f"{path}.columns", _COLUMN)
    if len(set(columns)) != len(columns):
        raise ConfigError(f"{path}.columns", "lists a column twice")
    timestamp_columns = _names(document.get("timestamp_columns"), f"{path}.timestamp_columns", _COLUMN)
    on_row_limit = _enum(RowLimit, document.get("on_row_limit", RowLimit.SPLIT.value), f"{path}.on_row_limit")
    report = WeeklyReport(
        name=name,
        surface=surface,
        filters=filters,
        time_zone=time_zone,
        columns=columns,
        timestamp_columns=timestamp_columns,
        on_row_limit=on_row_limit,
    )
    if surface in (Surface.TABLE, Surface.CSV_URL):
        order = document.get("order")
        if order is not None and (not isinstance(order, str) or not _ORDER.fullmatch(order)):
            raise ConfigError(f"{path}.order", "must be a column name with an optional + or - prefix")
        return dataclasses.replace(
            report, report_type=_positive_int(document.get("report_type"), f"{path}.report_type"), order=order
        )
    if surface is Surface.CSV_PARAMS:
        return _csv_params_report(report, document, path)
    report_name = document.get("report_name")
    if not isinstance(report_name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", report_name):
        raise ConfigError(f"{path}.report_name", "must be a Reports Microservice report name, e.g. pollsActivity")
    params = _params(document.get("params", _MICROSERVICE_DEFAULT_PARAMS), f"{path}.params")
    return dataclasses.replace(report, report_name=report_name, params=params)


def _csv_params_report(report: WeeklyReport, document: Mapping[str, Any], path: str) -> WeeklyReport:
    report_id = _positive_int(document.get("report_id"), f"{path}.report_id")
    room = ROOM_REPORTS.get(report_id)
    if "params" in document:
        params = _params(document["params"], f"{path}.params")
    elif room is not None:
        # Room reports select sessions whose start lies in [from, to] (docs/kaltura.md#report-csv-strings via the
        # session reports).
        params = {room.from_param: "{from_unix}", room.to_param: "{to_unix}", room.room_param: "{entries}"}
    else:
        raise ConfigError(f"{path}.params", f"required for report {report_id} (only 6000-6002 have defaults)")
    timestamps = report.timestamp_columns
    if not timestamps and room is not None and "timestamp_columns" not in document:
        timestamps = tuple(sorted(room.spec.timestamp_columns))
    return dataclasses.replace(
        report,
        report_id=report_id,
        params=params,
        pieces=_enum(Pieces, document.get("pieces", Pieces.DAY.value), f"{path}.pieces"),
        excluded_fields=_names(document.get("excluded_fields"), f"{path}.excluded_fields", _ID),
        timestamp_columns=timestamps,
    )


def _is_surface_key(key: str) -> bool:
    return any(key in keys for keys in _SURFACE_KEYS.values())


def _settings(document: Mapping[str, Any], path: str) -> WeeklySettings:
    enabled = document["enabled"]
    if not isinstance(enabled, bool):
        raise ConfigError(f"{path}.enabled", "must be true or false")
    url = document["reports_service_url"]
    if url is not None and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        raise ConfigError(f"{path}.reports_service_url", "must be an http(s) base URL or null")
    poll = _bounded_int(
        document["microservice_poll_seconds"], f"{path}.microservice_poll_seconds", 1, MAX_DELAY_SECONDS
    )
    max_wait = _bounded_int(
        document["microservice_max_wait_seconds"], f"{path}.microservice_max_wait_seconds", poll, MAX_WAIT_SECONDS
    )
    margin = _bounded_int(
        document["checkpoint_margin_seconds"], f"{path}.checkpoint_margin_seconds", 1, MAX_CHECKPOINT_MARGIN_SECONDS
    )
    reports_document = document["reports"]
    if not isinstance(reports_document, Sequence) or isinstance(reports_document, str) or not reports_document:
        raise ConfigError(f"{path}.reports", "must be a non-empty list of report entries")
    if len(reports_document) > MAX_REPORTS:
        raise ConfigError(f"{path}.reports", f"at most {MAX_REPORTS} reports")
    reports = tuple(parse_report(entry, f"{path}.reports[{index}]") for index, entry in enumerate(reports_document))
    seen: set[str] = set()
    for index, report in enumerate(reports):
        if report.name in seen:
            raise ConfigError(f"{path}.reports[{index}].name", f"{report.name!r} is used twice")
        seen.add(report.name)
    return WeeklySettings(
        enabled=enabled,
        time_zone=_time_zone(document["time_zone"], f"{path}.time_zone"),
        reports_service_url=url.rstrip("/") if url else None,
        microservice_poll_seconds=poll,
        microservice_max_wait_seconds=max_wait,
        checkpoint_margin_seconds=margin,
        reports=reports,
    )


def check_time_zone(name: str, setting: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; raises :class:`ConfigError` naming ``setting`` when it does not exist."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(setting, f"unknown IANA time zone {name!r}") from None


def _time_zone(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be an IANA time zone name such as Europe/Berlin, or null")
    check_time_zone(value.strip(), path)
    return value.strip()


def _filters(value: Any, path: str) -> ReportFilters:
    if value is None:
        return ReportFilters()
    if not isinstance(value, Mapping):
        raise ConfigError(path, "must be an object")
    _only(value, frozenset(_FILTER_KEYS), path)
    return ReportFilters(**{key: _names(value.get(key), f"{path}.{key}", _ID) for key in _FILTER_KEYS})


def _params(value: Any, path: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(path, "must be a non-empty object of parameter templates")
    params: dict[str, str] = {}
    for key, template in value.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,63}", key):
            raise ConfigError(f"{path}.{key}", "parameter names are letters, digits, _ and .")
        if not isinstance(template, str):
            raise ConfigError(f"{path}.{key}", "must be a string (placeholders such as {from_unix} are filled in)")
        try:
            names = [name for _, name in parse_template(template) if name is not None]
        except ValueError as exc:
            raise ConfigError(f"{path}.{key}", str(exc)) from None
        unknown = sorted(set(names) - PLACEHOLDERS)
        if unknown:
            raise ConfigError(f"{path}.{key}", f"unknown placeholder {{{unknown[0]}}}")
        params[key] = template
    return MappingProxyType(params)


Template = tuple[tuple[str, str | None], ...]
"""A parsed parameter template: ``(literal text, placeholder name or None)`` pairs in order."""


def parse_template(template: str) -> Template:
    """Split ``template`` into literal text and placeholder names; raises ValueError for braces that are not a plain
    ``{name}`` (no attribute access, index, conversion or format spec: the text is filled in verbatim)."""
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if name is not None and (spec or conversion or not re.fullmatch(r"[a-z_]+", name)):
            raise ValueError(f"{{{name}}} is not a plain placeholder")
        parts.append((literal, name))
    return tuple(parts)


def _names(value: Any, path: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and pattern.fullmatch(item) for item in value):
        raise ConfigError(path, "must be a list of names or ids (no separators such as | , ; =)")
    return tuple(value)


def _enum(kind: Any, value: Any, path: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(path, f"must be one of {', '.join(item.value for item in kind)}") from None


def _positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(path, "must be a positive integer")
    return value


def _bounded_int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(path, f"must be a whole number from {low} to {high}")
    return value


def _only(document: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    unknown = sorted(str(key) for key in document if key not in allowed)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", "unknown setting")
