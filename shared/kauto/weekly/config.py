"""The weekly report set: each partner's runtime settings from the ``weekly`` section of the automation config.

The section's schema (keys, defaults, bounds) is :mod:`kauto.weekly.schema`; :mod:`kauto.automation_config` validates
it when the document is loaded, reporting every problem with its path (e.g.
``weekly.partners.1234567.reports[2].surface``), and a broken ``weekly.partners.<pid>`` entry disables that partner
alone. This module merges each partner's entry over the top-level keys and fills in what the schema leaves to the
session reports (the parameters of room reports 6000-6002).

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from kauto.automation_config import AutomationConfig
from kauto.automations.room_reports import ROOM_REPORTS
from kauto.config import Schema, is_partner_id
from kauto.validation import ConfigErrors, join, validate
from kauto.weekly.schema import (
    DEFAULT_REPORTS,
    LIST_PLACEHOLDERS,
    MAX_REPORTS,
    MICROSERVICE_DEFAULT_PARAMS,
    PLACEHOLDERS,
    TIME_ZONE_CHECK,
    Pieces,
    ReportFilters,
    RowLimit,
    Surface,
    Template,
    WeeklyPartner,
    WeeklyReport,
    WeeklySection,
    parse_template,
)

__all__ = [
    "DEFAULT_REPORTS",
    "LIST_PLACEHOLDERS",
    "MAX_REPORTS",
    "PLACEHOLDERS",
    "Pieces",
    "ReportFilters",
    "ReportWorkerSettings",
    "RowLimit",
    "RunSettings",
    "Surface",
    "Template",
    "WeeklyConfig",
    "WeeklyReport",
    "WeeklySettings",
    "parse_report",
    "parse_template",
    "parse_weekly_config",
]


class RunSettings(Schema, frozen=True):
    """What the weekly scheduler needs from its environment (names from template.yaml)."""

    ledger_table: Annotated[str, Meta(description="Name of the ledger table")]
    report_jobs_queue_url: Annotated[str, Meta(description="URL of the report jobs queue")]
    automation_config_parameter: Annotated[str, Meta(description="Name of the automation config SSM parameter")]
    weekly_time_zone: Annotated[
        str, TIME_ZONE_CHECK, Meta(description="The schedule's zone: where weeks are cut unless the config says")
    ] = "UTC"


class ReportWorkerSettings(RunSettings, frozen=True, kw_only=True):
    """What the report worker needs from its environment, beyond :class:`RunSettings`."""

    reports_bucket: Annotated[str, Meta(description="Name of the reports bucket")]
    alerts_topic_arn: Annotated[str, Meta(description="ARN of the alerts topic")]
    partner_secrets_arn: Annotated[str, Meta(description="ARN of the partner secret")]


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
    broken: frozenset[int] = field(default_factory=frozenset)
    """Partners whose ``weekly.partners`` entry is invalid: not scheduled until it is fixed."""

    def for_partner(self, partner_id: int) -> WeeklySettings:
        """``partner_id``'s settings (its own section merged over the top level, or the top level)."""
        return self.partners.get(partner_id, self.defaults)

    def scheduled_partners(self, automation: AutomationConfig) -> tuple[int, ...]:
        """Partners a scheduled run covers: those of the automation config and of ``weekly.partners`` whose weekly
        settings are enabled and whose configuration is valid, ascending."""
        candidates = set(automation.configured_partner_ids) | set(self.partners)
        disabled = self.broken | set(automation.disabled_partner_ids)
        return tuple(sorted(pid for pid in candidates - disabled if self.for_partner(pid).enabled))


def parse_weekly_config(section: Mapping[str, Any] | None) -> WeeklyConfig:
    """Build the runtime settings of the ``weekly`` section (``None``: all defaults).

    Raises :class:`ConfigErrors` listing every problem of the top-level keys; a broken partner entry only lands in
    :attr:`WeeklyConfig.broken`.
    """
    document = dict(section or {})
    top, problems = validate(document, WeeklySection, "weekly")
    if top is None:
        raise ConfigErrors("weekly", problems)
    top_document = {key: value for key, value in document.items() if key != "partners"}
    partners: dict[int, WeeklySettings] = {}
    broken: set[int] = set()
    for key, overrides in top.partners.items():
        if not is_partner_id(key):
            continue
        merged = None
        if isinstance(overrides, dict):
            merged, _ = validate(top_document | overrides, WeeklyPartner, join("weekly.partners", key))
        if merged is None:
            broken.add(int(key))
        else:
            partners[int(key)] = _settings(merged)
    return WeeklyConfig(defaults=_settings(top), partners=MappingProxyType(partners), broken=frozenset(broken))


def parse_report(document: Any, path: str = "report") -> WeeklyReport:
    """Validate one report entry (also how job rows turn their stored entry back into a :class:`WeeklyReport`)."""
    report, problems = validate(document, WeeklyReport, path)
    if report is None:
        raise ConfigErrors(path, problems)
    return resolve_report(report)


def resolve_report(report: WeeklyReport) -> WeeklyReport:
    """Fill in the parameters the schema leaves to the product: the microservice defaults, and for room reports
    6000-6002 the session reports' parameters and timestamp columns."""
    if report.surface is Surface.MICROSERVICE and not report.params:
        return msgspec.structs.replace(report, params=dict(MICROSERVICE_DEFAULT_PARAMS))
    room = ROOM_REPORTS.get(report.report_id or 0) if report.surface is Surface.CSV_PARAMS else None
    if room is None:
        return report
    changes: dict[str, Any] = {}
    if not report.params:
        # Room reports select sessions whose start lies in [from, to] (docs/kaltura.md#report-csv-strings via the
        # session reports).
        changes["params"] = {room.from_param: "{from_unix}", room.to_param: "{to_unix}", room.room_param: "{entries}"}
    if not report.timestamp_columns:
        changes["timestamp_columns"] = tuple(sorted(room.spec.timestamp_columns))
    return msgspec.structs.replace(report, **changes) if changes else report


def _settings(partner: WeeklyPartner) -> WeeklySettings:
    return WeeklySettings(
        enabled=partner.enabled,
        time_zone=partner.time_zone,
        reports_service_url=partner.reports_service_url.rstrip("/") if partner.reports_service_url else None,
        microservice_poll_seconds=partner.microservice_poll_seconds,
        microservice_max_wait_seconds=partner.microservice_max_wait_seconds,
        checkpoint_margin_seconds=partner.checkpoint_margin_seconds,
        reports=tuple(resolve_report(report) for report in partner.reports),
    )
