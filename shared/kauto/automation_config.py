"""The automation configuration document: caption rules, task SLAs, session reports, thresholds, alerts, sweep.

One JSON document serves every partner of a deployment::

    {"defaults": {<partner settings>}, "partners": {"1234567": {<overrides of partner settings>}}, "weekly": {...}}

The bundled ``default_automation_config.json`` (package data) is deep-merged with an optional override document read
from SSM Parameter Store (env ``AUTOMATION_CONFIG_PARAMETER``; the template creates it from its ``AutomationConfig``
parameter, ``{}`` by default). Merging: objects merge key by key, anything else (lists, numbers, strings, ``null``)
replaces. A partner's settings are ``defaults`` deep-merged with ``partners.<pid>``.

Everything is validated once when the document is loaded; a :class:`ConfigError` names the setting path, e.g.
``partners.1234567.captions.min_duration_seconds``. Unknown keys are rejected (a typo must not silently turn a rule
off), except the top-level ``weekly`` section, which is kept untouched for the weekly reports.

Partner settings (``PartnerSettings``):

- ``captions``: ``enabled``, ``dry_run``, ``catalog_item_id`` (wins when set) or ``catalog_item`` (selected from
  ``vendorCatalogItem.list`` by ``service_feature`` (1 = captions), ``service_type`` (1 human, 2 machine),
  ``source_language`` (e.g. ``"English"``) and ``turn_around_time`` (docs/kaltura.md#reach-enums); ``null`` fields don't
  filter), ``reach_profile_id`` (``null``: the catalog item's default profile), ``media_types`` (Kaltura media types,
  1 video, 5 audio; empty = any), ``min_duration_seconds`` / ``max_duration_seconds`` (``null`` = no bound),
  ``include_categories`` / ``exclude_categories`` (category ids or full names; a name also covers its
  sub-categories), ``include_tags`` / ``exclude_tags`` / ``include_admin_tags`` / ``exclude_admin_tags``
  (case-insensitive; include lists need one match, empty = any), ``skip_if_caption_exists`` and
  ``caption_language`` (``null``: the catalog item's source language).
- ``tasks``: ``stuck_grace_factor`` (a task is stuck after SLA x factor), ``best_effort_sla_hours`` (the SLA of
  best-effort turnaround), ``alert_on_error``.
- ``session_reports``: ``enabled``, ``window_padding_seconds``, ``trigger_on_meeting_recordings``,
  ``meeting_admin_tag``, ``reports`` (a subset of 6000, 6001, 6002 and the chat-and-collaboration report names
  ``pollsActivity``, ``chatUserActivity``, ``chatModeration``, ``groupChatTranscripts``, ``moderatorTranscripts``;
  the two transcripts only with ``transcripts_enabled``), ``pending_limit_seconds`` (>= 60), ``summary_page``.
- ``thresholds``: ``session_engagement_rate_below``, ``unique_users_below``, ``attendee_engagement_below``,
  ``poll_participation_below``, ``chat_participation_below`` (shares 0..1), ``unresolved_moderation_above``,
  ``alert_on_zero_attendees``
  (``null`` = off).
- ``alerts``: ``credit_period`` (``hour``, ``day`` or ``week``: at most one credit alert per partner per period).
- ``sweep``: ``lookback_seconds``, ``overlap_seconds``, ``max_slice_results`` (at most 10,000, Kaltura's list cap).
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kauto.aws.alerts import AlertPeriod
from kauto.aws.parameters import fetch_parameter_string
from kauto.aws.secrets import CachedSecret
from kauto.errors import ConfigError

DEFAULT_DOCUMENT_RESOURCE = "default_automation_config.json"
CONFIG_TTL_SECONDS = 300.0
"""How long a loaded document is used before SSM is read again (a change applies within five minutes)."""

SESSION_REPORT_IDS = (6000, 6001, 6002)
"""Room reports: 6000 room data, 6001 attendees, 6002 breakout sessions."""
COLLAB_REPORT_NAMES = (
    "pollsActivity",
    "chatUserActivity",
    "chatModeration",
    "groupChatTranscripts",
    "moderatorTranscripts",
)
"""The Reports Microservice's chat-and-collaboration reports a session can pull."""
TRANSCRIPT_REPORT_NAMES = frozenset({"groupChatTranscripts", "moderatorTranscripts"})
"""Message content: refused unless ``session_reports.transcripts_enabled``."""
MIN_PENDING_LIMIT_SECONDS = 60
MAX_LIST_RESULTS = 10_000
"""Kaltura object lists stop at 10,000 results (docs/kaltura.md#api-success)."""
CAPTIONS_FEATURE = 1
"""``KalturaVendorServiceFeature`` CAPTIONS (docs/kaltura.md#reach-enums)."""
SERVICE_TYPES = (1, 2)
"""``KalturaVendorServiceType``: 1 HUMAN, 2 MACHINE."""

_TOP_LEVEL_KEYS = frozenset({"defaults", "partners", "weekly"})


@dataclass(frozen=True, slots=True)
class CatalogItemSelector:
    """How to choose the caption catalog item from the items enabled for the partner; ``None`` fields don't filter."""

    service_feature: int = CAPTIONS_FEATURE
    service_type: int | None = None
    source_language: str | None = None
    turn_around_time: int | None = None


@dataclass(frozen=True, slots=True)
class CaptionRules:
    """When and what to order from REACH when an entry becomes ready."""

    enabled: bool
    dry_run: bool
    catalog_item_id: int | None
    catalog_item: CatalogItemSelector | None
    reach_profile_id: int | None
    media_types: tuple[int, ...]
    min_duration_seconds: int | None
    max_duration_seconds: int | None
    include_categories: tuple[str, ...]
    exclude_categories: tuple[str, ...]
    include_tags: tuple[str, ...]
    exclude_tags: tuple[str, ...]
    include_admin_tags: tuple[str, ...]
    exclude_admin_tags: tuple[str, ...]
    skip_if_caption_exists: bool
    caption_language: str | None


@dataclass(frozen=True, slots=True)
class TaskRules:
    """Vendor task tracking: when an open task counts as stuck, whether errors alert."""

    stuck_grace_factor: float
    best_effort_sla_hours: float
    alert_on_error: bool


@dataclass(frozen=True, slots=True)
class SessionReportRules:
    """Room session reports."""

    enabled: bool
    window_padding_seconds: int
    trigger_on_meeting_recordings: bool
    meeting_admin_tag: str
    reports: tuple[int | str, ...]
    transcripts_enabled: bool = False
    pending_limit_seconds: int = 3600
    summary_page: bool = True


@dataclass(frozen=True, slots=True)
class ThresholdRules:
    """Alert thresholds evaluated on pulled session data; ``None`` turns a rule off."""

    session_engagement_rate_below: float | None
    unique_users_below: int | None
    attendee_engagement_below: float | None
    poll_participation_below: float | None = None
    chat_participation_below: float | None = None
    unresolved_moderation_above: int | None = None
    alert_on_zero_attendees: bool = False


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Alert pacing."""

    credit_period: AlertPeriod


@dataclass(frozen=True, slots=True)
class SweepRules:
    """The scheduled reconciliation sweep."""

    lookback_seconds: int
    overlap_seconds: int
    max_slice_results: int


@dataclass(frozen=True, slots=True)
class PartnerSettings:
    """One partner's effective settings (defaults merged with the partner's overrides)."""

    captions: CaptionRules
    tasks: TaskRules
    session_reports: SessionReportRules
    thresholds: ThresholdRules
    alerts: AlertRules
    sweep: SweepRules


@dataclass(frozen=True, slots=True)
class AutomationConfig:
    """The validated document. Use :meth:`partner` to get a partner's settings."""

    defaults: PartnerSettings
    partners: Mapping[int, PartnerSettings]
    weekly: Mapping[str, Any] | None = field(default=None)
    """The ``weekly`` section, untouched (validated by the weekly reports)."""

    def partner(self, partner_id: int) -> PartnerSettings:
        """The settings of ``partner_id``: its merged overrides, or the defaults when it has none."""
        return self.partners.get(partner_id, self.defaults)

    @property
    def configured_partner_ids(self) -> tuple[int, ...]:
        """Partners with their own section in the document, ascending."""
        return tuple(sorted(self.partners))


# ---------------------------------------------------------------------------------------------------- loading


@functools.cache
def default_document() -> Mapping[str, Any]:
    """The bundled default document (package data), parsed once. Callers get it read-only."""
    text = importlib.resources.files("kauto").joinpath(DEFAULT_DOCUMENT_RESOURCE).read_text(encoding="utf-8")
    return MappingProxyType(json.loads(text))


def parse_automation_config(override_text: str) -> AutomationConfig:
    """Validate the override JSON text merged over the bundled defaults; raises :class:`ConfigError` naming the path."""
    try:
        override = json.loads(override_text) if override_text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError("automation config", f"not valid JSON (line {exc.lineno} column {exc.colno})") from exc
    return build_automation_config(override)


def build_automation_config(override: Any) -> AutomationConfig:
    """Validate ``override`` (a parsed document) merged over the bundled defaults."""
    if not isinstance(override, dict):
        raise ConfigError("automation config", "must be a JSON object")
    unknown = sorted(set(override) - _TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown top-level section (allowed: {', '.join(sorted(_TOP_LEVEL_KEYS))})")
    document = deep_merge(copy.deepcopy(dict(default_document())), override)
    defaults_document = _object(document.get("defaults"), "defaults")
    defaults = _partner_settings(defaults_document, "defaults")
    partners_document = _object(document.get("partners", {}), "partners")
    partners: dict[int, PartnerSettings] = {}
    for key, overrides in partners_document.items():
        path = f"partners.{key}"
        if not key.isascii() or not key.isdigit() or int(key) <= 0:
            raise ConfigError(path, "partner id must be a positive integer")
        merged = deep_merge(copy.deepcopy(defaults_document), _object(overrides, path))
        partners[int(key)] = _partner_settings(merged, path)
    weekly = document.get("weekly")
    if weekly is not None and not isinstance(weekly, dict):
        raise ConfigError("weekly", "must be an object")
    return AutomationConfig(
        defaults=defaults,
        partners=MappingProxyType(partners),
        weekly=MappingProxyType(weekly) if weekly is not None else None,
    )


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into ``base`` (mutated and returned): objects merge recursively, other values replace."""
    for key, value in override.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            deep_merge(current, value)
        else:
            base[key] = copy.deepcopy(value)
    return base


@functools.cache
def automation_config_source(parameter_name: str) -> CachedSecret[AutomationConfig]:
    """The process-wide cached document read from SSM parameter ``parameter_name`` (refetched after the TTL)."""
    return CachedSecret(
        parameter_name, parse_automation_config, fetch=fetch_parameter_string, ttl_seconds=CONFIG_TTL_SECONDS
    )


def load_automation_config(parameter_name: str) -> AutomationConfig:
    """The validated configuration from SSM parameter ``parameter_name`` merged over the defaults (cached)."""
    return automation_config_source(parameter_name).get()


# ------------------------------------------------------------------------------------------------- validation

_SECTIONS = frozenset({"captions", "tasks", "session_reports", "thresholds", "alerts", "sweep"})
_CAPTION_KEYS = frozenset(
    {
        "enabled",
        "dry_run",
        "catalog_item_id",
        "catalog_item",
        "reach_profile_id",
        "media_types",
        "min_duration_seconds",
        "max_duration_seconds",
        "include_categories",
        "exclude_categories",
        "include_tags",
        "exclude_tags",
        "include_admin_tags",
        "exclude_admin_tags",
        "skip_if_caption_exists",
        "caption_language",
    }
)
_SELECTOR_KEYS = frozenset({"service_feature", "service_type", "source_language", "turn_around_time"})
_TASK_KEYS = frozenset({"stuck_grace_factor", "best_effort_sla_hours", "alert_on_error"})
_SESSION_KEYS = frozenset(
    {
        "enabled",
        "window_padding_seconds",
        "trigger_on_meeting_recordings",
        "meeting_admin_tag",
        "reports",
        "transcripts_enabled",
        "pending_limit_seconds",
        "summary_page",
    }
)
_THRESHOLD_KEYS = frozenset(
    {
        "session_engagement_rate_below",
        "unique_users_below",
        "attendee_engagement_below",
        "poll_participation_below",
        "chat_participation_below",
        "unresolved_moderation_above",
        "alert_on_zero_attendees",
    }
)
_ALERT_KEYS = frozenset({"credit_period"})
_SWEEP_KEYS = frozenset({"lookback_seconds", "overlap_seconds", "max_slice_results"})


def _partner_settings(document: dict[str, Any], path: str) -> PartnerSettings:
    _only(document, _SECTIONS, path)
    return PartnerSettings(
        captions=_captions(_section(document, "captions", _CAPTION_KEYS, path), f"{path}.captions"),
        tasks=_tasks(_section(document, "tasks", _TASK_KEYS, path), f"{path}.tasks"),
        session_reports=_session_reports(
            _section(document, "session_reports", _SESSION_KEYS, path), f"{path}.session_reports"
        ),
        thresholds=_thresholds(_section(document, "thresholds", _THRESHOLD_KEYS, path), f"{path}.thresholds"),
        alerts=_alerts(_section(document, "alerts", _ALERT_KEYS, path), f"{path}.alerts"),
        sweep=_sweep(_section(document, "sweep", _SWEEP_KEYS, path), f"{path}.sweep"),
    )


def _captions(section: Mapping[str, Any], path: str) -> CaptionRules:
    selector_value = section["catalog_item"]
    selector = None if selector_value is None else _selector(selector_value, f"{path}.catalog_item")
    rules = CaptionRules(
        enabled=_bool(section, "enabled", path),
        dry_run=_bool(section, "dry_run", path),
        catalog_item_id=_optional_int(section, "catalog_item_id", path, minimum=1),
        catalog_item=selector,
        reach_profile_id=_optional_int(section, "reach_profile_id", path, minimum=1),
        media_types=tuple(_int_list(section, "media_types", path, minimum=1)),
        min_duration_seconds=_optional_int(section, "min_duration_seconds", path, minimum=0),
        max_duration_seconds=_optional_int(section, "max_duration_seconds", path, minimum=0),
        include_categories=_str_list(section, "include_categories", path),
        exclude_categories=_str_list(section, "exclude_categories", path),
        include_tags=_str_list(section, "include_tags", path),
        exclude_tags=_str_list(section, "exclude_tags", path),
        include_admin_tags=_str_list(section, "include_admin_tags", path),
        exclude_admin_tags=_str_list(section, "exclude_admin_tags", path),
        skip_if_caption_exists=_bool(section, "skip_if_caption_exists", path),
        caption_language=_optional_str(section, "caption_language", path),
    )
    if rules.catalog_item_id is None and rules.catalog_item is None:
        raise ConfigError(f"{path}.catalog_item", "set catalog_item_id or a catalog_item selector")
    low, high = rules.min_duration_seconds, rules.max_duration_seconds
    if low is not None and high is not None and high < low:
        raise ConfigError(f"{path}.max_duration_seconds", "must not be below min_duration_seconds")
    return rules


def _selector(value: Any, path: str) -> CatalogItemSelector:
    section = _object(value, path)
    _only(section, _SELECTOR_KEYS, path)
    feature = _optional_int(section, "service_feature", path)
    if feature is not None and feature != CAPTIONS_FEATURE:
        raise ConfigError(f"{path}.service_feature", f"only captions ({CAPTIONS_FEATURE}) are ordered")
    service_type = _optional_int(section, "service_type", path)
    if service_type is not None and service_type not in SERVICE_TYPES:
        raise ConfigError(f"{path}.service_type", "must be 1 (human) or 2 (machine)")
    return CatalogItemSelector(
        service_type=service_type,
        source_language=_optional_str(section, "source_language", path),
        # -1 best effort, 0 immediate, 1-7 business days, otherwise seconds (docs/kaltura.md#reach-enums).
        turn_around_time=_optional_int(section, "turn_around_time", path, minimum=-1),
    )


def _tasks(section: Mapping[str, Any], path: str) -> TaskRules:
    factor = _number(section, "stuck_grace_factor", path)
    if factor < 1:
        raise ConfigError(f"{path}.stuck_grace_factor", "must be at least 1")
    hours = _number(section, "best_effort_sla_hours", path)
    if hours <= 0:
        raise ConfigError(f"{path}.best_effort_sla_hours", "must be positive")
    return TaskRules(
        stuck_grace_factor=factor, best_effort_sla_hours=hours, alert_on_error=_bool(section, "alert_on_error", path)
    )


def _session_reports(section: Mapping[str, Any], path: str) -> SessionReportRules:
    reports = section["reports"]
    allowed = (*SESSION_REPORT_IDS, *COLLAB_REPORT_NAMES)
    if not isinstance(reports, list):
        raise ConfigError(f"{path}.reports", "must be a list of report ids and names")
    unknown = [report for report in reports if isinstance(report, bool) or report not in allowed]
    if unknown:
        names = ", ".join(str(report) for report in allowed)
        raise ConfigError(f"{path}.reports", f"unknown report {unknown[0]!r} (allowed: {names})")
    if not reports:
        raise ConfigError(f"{path}.reports", "name at least one report")
    transcripts_enabled = _bool(section, "transcripts_enabled", path)
    transcripts = [report for report in reports if report in TRANSCRIPT_REPORT_NAMES]
    if transcripts and not transcripts_enabled:
        raise ConfigError(f"{path}.reports", f"{transcripts[0]} is message content: set transcripts_enabled to pull it")
    tag = _optional_str(section, "meeting_admin_tag", path)
    if tag is None:
        raise ConfigError(f"{path}.meeting_admin_tag", "required non-empty string")
    return SessionReportRules(
        enabled=_bool(section, "enabled", path),
        window_padding_seconds=_int(section, "window_padding_seconds", path, minimum=0),
        trigger_on_meeting_recordings=_bool(section, "trigger_on_meeting_recordings", path),
        meeting_admin_tag=tag,
        reports=tuple(dict.fromkeys(reports)),
        transcripts_enabled=transcripts_enabled,
        pending_limit_seconds=_int(section, "pending_limit_seconds", path, minimum=MIN_PENDING_LIMIT_SECONDS),
        summary_page=_bool(section, "summary_page", path),
    )


def _thresholds(section: Mapping[str, Any], path: str) -> ThresholdRules:
    return ThresholdRules(
        session_engagement_rate_below=_optional_number(section, "session_engagement_rate_below", path),
        unique_users_below=_optional_int(section, "unique_users_below", path, minimum=0),
        attendee_engagement_below=_optional_number(section, "attendee_engagement_below", path),
        poll_participation_below=_optional_ratio(section, "poll_participation_below", path),
        chat_participation_below=_optional_ratio(section, "chat_participation_below", path),
        unresolved_moderation_above=_optional_int(section, "unresolved_moderation_above", path, minimum=0),
        alert_on_zero_attendees=_bool(section, "alert_on_zero_attendees", path),
    )


def _alerts(section: Mapping[str, Any], path: str) -> AlertRules:
    value = section["credit_period"]
    try:
        period = AlertPeriod(value)
    except ValueError as exc:
        allowed = ", ".join(p.value for p in AlertPeriod)
        raise ConfigError(f"{path}.credit_period", f"must be one of {allowed}") from exc
    return AlertRules(credit_period=period)


def _sweep(section: Mapping[str, Any], path: str) -> SweepRules:
    rules = SweepRules(
        lookback_seconds=_int(section, "lookback_seconds", path, minimum=1),
        overlap_seconds=_int(section, "overlap_seconds", path, minimum=0),
        max_slice_results=_int(section, "max_slice_results", path, minimum=1),
    )
    if rules.max_slice_results > MAX_LIST_RESULTS:
        raise ConfigError(f"{path}.max_slice_results", f"at most {MAX_LIST_RESULTS} (Kaltura's list cap)")
    if rules.overlap_seconds >= rules.lookback_seconds:
        raise ConfigError(f"{path}.overlap_seconds", "must be shorter than lookback_seconds")
    return rules


# -------------------------------------------------------------------------------------------- value checkers


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, "must be an object")
    return value


def _only(section: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", "unknown setting")


def _section(document: Mapping[str, Any], name: str, keys: frozenset[str], path: str) -> Mapping[str, Any]:
    section = _object(document.get(name), f"{path}.{name}")
    _only(section, keys, f"{path}.{name}")
    missing = sorted(keys - set(section))
    if missing:
        raise ConfigError(f"{path}.{name}.{missing[0]}", "missing setting")
    return section


def _bool(section: Mapping[str, Any], key: str, path: str) -> bool:
    value = section[key]
    if not isinstance(value, bool):
        raise ConfigError(f"{path}.{key}", "must be true or false")
    return value


def _int(section: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}.{key}", "must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{path}.{key}", f"must be at least {minimum}")
    return value


def _optional_int(section: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int | None:
    return None if section.get(key) is None else _int(section, key, path, minimum=minimum)


def _number(section: Mapping[str, Any], key: str, path: str) -> float:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{path}.{key}", "must be a number")
    return float(value)


def _optional_number(section: Mapping[str, Any], key: str, path: str) -> float | None:
    if section.get(key) is None:
        return None
    value = _number(section, key, path)
    if value < 0:
        raise ConfigError(f"{path}.{key}", "must not be negative")
    return value


def _optional_ratio(section: Mapping[str, Any], key: str, path: str) -> float | None:
    value = _optional_number(section, key, path)
    if value is not None and value > 1:
        raise ConfigError(f"{path}.{key}", "must be a share between 0 and 1")
    return value


def _optional_str(section: Mapping[str, Any], key: str, path: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}.{key}", "must be a non-empty string or null")
    return value.strip()


def _int_list(section: Mapping[str, Any], key: str, path: str, *, minimum: int) -> list[int]:
    value = section[key]
    if not isinstance(value, list):
        raise ConfigError(f"{path}.{key}", "must be a list of integers")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
            raise ConfigError(f"{path}.{key}", f"must be a list of integers >= {minimum}")
    return list(value)


def _str_list(section: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = section[key]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ConfigError(f"{path}.{key}", "must be a list of non-empty strings")
    return tuple(item.strip() for item in value)
