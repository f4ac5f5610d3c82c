"""The automation configuration document: caption rules, task SLAs, session reports, thresholds, alerts, sweep and
the weekly report set.

One JSON document serves every partner of a deployment (SSM parameter ``AUTOMATION_CONFIG_PARAMETER``, created by the
template from its ``AutomationConfig`` parameter, ``{}`` by default)::

    {"defaults": {<partner settings>}, "partners": {"1234567": {<partner settings>}}, "weekly": {...}}

The Structs below are the schema: every default, bound and description lives here only (``kauto-config schema
automation`` and the README tables are generated from them). A partner's settings are the schema defaults, overridden
by ``defaults``, overridden by ``partners.<pid>``: objects merge key by key, anything else (lists, numbers, strings,
``null``) replaces. ``weekly`` is described in :mod:`kauto.weekly.schema`.

Validation (:mod:`kauto.validation`) reports every problem at once with its path, e.g.
``partners.1234567.captions.min_duration_seconds``, and refuses unknown keys (a typo must not silently turn a rule
off). Partners are validated one by one: a broken ``partners.<pid>`` or ``weekly.partners.<pid>`` entry disables that
partner alone (:meth:`AutomationConfig.partner` raises :class:`kauto.errors.PartnerConfigError`, the sweep and the
weekly schedule skip it and the sweep alerts). A document that is not JSON, not an object, has unknown top-level keys,
or a broken ``defaults`` or top-level ``weekly`` (they apply to every partner) is a deployment-wide
:class:`~kauto.validation.ConfigErrors`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from kauto.aws.alerts import AlertPeriod
from kauto.aws.parameters import fetch_parameter_string
from kauto.aws.secrets import CachedSecret
from kauto.config import Schema, document_problems, is_partner_id, load_json
from kauto.errors import PartnerConfigError
from kauto.validation import ConfigErrors, Problem, join, validate
from kauto.weekly.schema import WeeklyPartner, WeeklySection

CONFIG_TTL_SECONDS = 300.0
"""How long a loaded document is used before SSM is read again (a change applies within five minutes)."""
AUTOMATION_DOCUMENT = "automation config"

MAX_LIST_RESULTS = 10_000
"""Kaltura object lists stop at 10,000 results (docs/kaltura.md#api-success)."""
CAPTIONS_FEATURE = 1
"""``KalturaVendorServiceFeature`` CAPTIONS (docs/kaltura.md#reach-enums)."""
SESSION_REPORT_IDS = (6000, 6001, 6002)
"""Room reports: 6000 room data, 6001 attendees, 6002 breakout sessions."""
CHAT_AND_COLLABORATION_REPORTS = (
    "pollsActivity",
    "chatUserActivity",
    "chatModeration",
    "groupChatTranscripts",
    "moderatorTranscripts",
)
"""Reports Microservice reports of a session (docs/kaltura.md#chat-and-collaboration-reports)."""
TRANSCRIPT_REPORTS = ("groupChatTranscripts", "moderatorTranscripts")
"""Reports holding what people wrote: refused unless ``transcripts_enabled``."""

_TEXT = Annotated[str, Meta(pattern=r"\S", extra={"expected": "a non-empty string"})]
_TEXTS = tuple[_TEXT, ...]
_Ratio = Annotated[float, Meta(ge=0, le=1)]
SessionReport = Literal[
    6000, 6001, 6002, "pollsActivity", "chatUserActivity", "chatModeration", "groupChatTranscripts",
    "moderatorTranscripts",
]  # fmt: skip


class CatalogItemSelector(Schema, frozen=True):
    """How to choose the caption catalog item from the items enabled for the partner; ``null`` fields don't filter."""

    service_feature: Annotated[Literal[1], Meta(description="KalturaVendorServiceFeature: only 1 (captions).")] = 1
    service_type: Annotated[Literal[1, 2] | None, Meta(description="1 human, 2 machine.")] = None
    source_language: Annotated[_TEXT | None, Meta(description='The spoken language, e.g. "English".')] = None
    turn_around_time: Annotated[
        Annotated[int, Meta(ge=-1)] | None,
        Meta(description="-1 best effort, 0 immediate, 1-7 business days, otherwise seconds."),
    ] = None


class CaptionRules(Schema, frozen=True):
    """When and what to order from REACH when an entry becomes ready."""

    enabled: Annotated[bool, Meta(description="Order captions for entries that become ready.")] = False
    dry_run: Annotated[bool, Meta(description="Decide and record, but order nothing.")] = False
    catalog_item_id: Annotated[
        Annotated[int, Meta(ge=1)] | None, Meta(description="The REACH catalog item to order; wins when set.")
    ] = None
    catalog_item: Annotated[
        CatalogItemSelector | None,
        Meta(description="Selects the catalog item from vendorCatalogItem.list when catalog_item_id is null."),
    ] = msgspec.field(
        default_factory=lambda: CatalogItemSelector(service_type=2, source_language="English", turn_around_time=-1)
    )
    reach_profile_id: Annotated[
        Annotated[int, Meta(ge=1)] | None, Meta(description="REACH profile; null: the catalog item's default.")
    ] = None
    media_types: Annotated[
        tuple[Annotated[int, Meta(ge=1)], ...], Meta(description="Kaltura media types (1 video, 5 audio); empty: any.")
    ] = (1, 5)
    min_duration_seconds: Annotated[
        Annotated[int, Meta(ge=0)] | None, Meta(description="Shortest entry captioned; null: no bound.")
    ] = 10
    max_duration_seconds: Annotated[
        Annotated[int, Meta(ge=0)] | None, Meta(description="Longest entry captioned; null: no bound.")
    ] = None
    include_categories: Annotated[
        _TEXTS, Meta(description="Category ids or full names (a name covers its sub-categories); empty: any.")
    ] = ()
    exclude_categories: Annotated[_TEXTS, Meta(description="Category ids or full names never captioned.")] = ()
    include_tags: Annotated[_TEXTS, Meta(description="Tags (case-insensitive), one must match; empty: any.")] = ()
    exclude_tags: Annotated[_TEXTS, Meta(description="Tags (case-insensitive) never captioned.")] = ()
    include_admin_tags: Annotated[_TEXTS, Meta(description="Admin tags, one must match; empty: any.")] = ()
    exclude_admin_tags: Annotated[_TEXTS, Meta(description="Admin tags never captioned.")] = ()
    skip_if_caption_exists: Annotated[bool, Meta(description="Order nothing when the entry has a caption.")] = True
    caption_language: Annotated[
        _TEXT | None, Meta(description="Language of the caption; null: the catalog item's source language.")
    ] = None

    def cross_check(self) -> list[tuple[str, str]]:
        """The catalog item is named or selectable; min <= max."""
        found: list[tuple[str, str]] = []
        if self.catalog_item_id is None and self.catalog_item is None:
            found.append(("catalog_item", "a selector object when catalog_item_id is null"))
        low, high = self.min_duration_seconds, self.max_duration_seconds
        if low is not None and high is not None and high < low:
            found.append(("max_duration_seconds", "at least min_duration_seconds"))
        return found


class TaskRules(Schema, frozen=True):
    """Vendor task tracking: when an open task counts as stuck, whether errors alert."""

    stuck_grace_factor: Annotated[float, Meta(ge=1, description="A task is stuck after its SLA times this factor.")] = (
        1.5
    )
    best_effort_sla_hours: Annotated[float, Meta(gt=0, description="The SLA of best-effort turnaround.")] = 120.0
    alert_on_error: Annotated[bool, Meta(description="Alert when a REACH task ends in ERROR.")] = True


class SessionReportRules(Schema, frozen=True):
    """Room session reports."""

    enabled: Annotated[bool, Meta(description="Pull the reports of each ended room session.")] = True
    window_padding_seconds: Annotated[
        int, Meta(ge=0, description="Added before and after the session's time window.")
    ] = 300
    trigger_on_meeting_recordings: Annotated[
        bool, Meta(description="A ready meeting recording also triggers its session's reports.")
    ] = True
    meeting_admin_tag: Annotated[_TEXT, Meta(description="Admin tag marking meeting recordings.")] = "kalturameeting"
    reports: Annotated[
        tuple[SessionReport, ...],
        Meta(
            min_length=1,
            description="Room reports 6000 (room data), 6001 (attendees), 6002 (breakouts) and the Reports "
            "Microservice reports pollsActivity, chatUserActivity, chatModeration, groupChatTranscripts, "
            "moderatorTranscripts (the last two need transcripts_enabled).",
        ),
    ] = (6000, 6001, 6002)
    transcripts_enabled: Annotated[
        bool, Meta(description="Allow the transcript reports (they hold what people wrote).")
    ] = False
    pending_limit_seconds: Annotated[
        int, Meta(ge=60, description="A microservice report still pending after this is given up.")
    ] = 3600
    summary_page: Annotated[bool, Meta(description="Write the session summary page.")] = True

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "reports", tuple(dict.fromkeys(self.reports)))

    def cross_check(self) -> list[tuple[str, str]]:
        """Transcripts only when enabled."""
        if not self.transcripts_enabled and any(report in TRANSCRIPT_REPORTS for report in self.reports):
            return [("reports", "transcript reports only with transcripts_enabled: true")]
        return []


class ThresholdRules(Schema, frozen=True):
    """Alert thresholds evaluated on pulled session data; ``null`` turns a rule off."""

    session_engagement_rate_below: Annotated[
        _Ratio | None, Meta(description="Alert when a session's engagement ratio (0..1) is below this.")
    ] = None
    unique_users_below: Annotated[
        Annotated[int, Meta(ge=0)] | None, Meta(description="Alert when a session has fewer unique users.")
    ] = None
    attendee_engagement_below: Annotated[
        _Ratio | None, Meta(description="Count attendees whose engagement ratio (0..1) is below this.")
    ] = None
    poll_participation_below: Annotated[
        _Ratio | None, Meta(description="Alert when the share of attendees answering polls (0..1) is below this.")
    ] = None
    chat_participation_below: Annotated[
        _Ratio | None, Meta(description="Alert when the share of attendees writing in chat (0..1) is below this.")
    ] = None
    unresolved_moderation_above: Annotated[
        Annotated[int, Meta(ge=0)] | None, Meta(description="Alert when more moderation items stay unresolved.")
    ] = None
    alert_on_zero_attendees: Annotated[bool, Meta(description="Alert on a session nobody attended.")] = False


class AlertRules(Schema, frozen=True):
    """Alert pacing."""

    credit_period: Annotated[
        AlertPeriod, Meta(description="At most one REACH credit alert per partner per hour, day or week.")
    ] = AlertPeriod.DAY


class SweepRules(Schema, frozen=True):
    """The scheduled reconciliation sweep."""

    lookback_seconds: Annotated[
        int, Meta(ge=1, description="How far the first run looks back; no run covers more.")
    ] = 86400
    overlap_seconds: Annotated[
        int, Meta(ge=0, description="Each window starts this much before the last watermark.")
    ] = 900
    max_slice_results: Annotated[
        int, Meta(ge=1, le=MAX_LIST_RESULTS, description="Items per part and run (Kaltura lists stop at 10,000).")
    ] = 5000

    def cross_check(self) -> list[tuple[str, str]]:
        """The overlap is shorter than the look-back."""
        if self.overlap_seconds >= self.lookback_seconds:
            return [("overlap_seconds", "shorter than lookback_seconds")]
        return []


class PartnerSettings(Schema, frozen=True):
    """One partner's settings (every key optional: the schema defaults fill in)."""

    captions: Annotated[CaptionRules, Meta(description="REACH caption orders.")] = CaptionRules()
    tasks: Annotated[TaskRules, Meta(description="REACH task tracking.")] = TaskRules()
    session_reports: Annotated[SessionReportRules, Meta(description="Room session reports.")] = SessionReportRules()
    thresholds: Annotated[ThresholdRules, Meta(description="Session alert thresholds.")] = ThresholdRules()
    alerts: Annotated[AlertRules, Meta(description="Alert pacing.")] = AlertRules()
    sweep: Annotated[SweepRules, Meta(description="The reconciliation sweep.")] = SweepRules()


class AutomationDocument(Schema, frozen=True):
    """The automation configuration (SSM parameter ``AUTOMATION_CONFIG_PARAMETER``)."""

    defaults: Annotated[PartnerSettings, Meta(description="Settings of every partner.")] = PartnerSettings()
    partners: Annotated[
        dict[str, PartnerSettings],
        Meta(description="Partner id -> overrides of defaults for that partner (validated per partner)."),
    ] = {}
    weekly: Annotated[WeeklySection | None, Meta(description="The weekly report set.")] = None


@dataclass(frozen=True, slots=True)
class AutomationConfig:
    """The validated document. Use :meth:`partner` to get a partner's settings."""

    defaults: PartnerSettings
    partners: Mapping[int, PartnerSettings]
    weekly: Mapping[str, Any] | None = None
    """The ``weekly`` section as written (validated; :mod:`kauto.weekly.config` builds the runtime settings)."""
    broken: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)
    """Partner key as written -> the problems of its ``partners`` / ``weekly.partners`` entries (partner disabled)."""

    def partner(self, partner_id: int) -> PartnerSettings:
        """The settings of ``partner_id``: its merged overrides, or the defaults when it has none.

        Raises :class:`PartnerConfigError` when the partner's entry is broken (the partner is disabled).
        """
        problems = self.broken.get(str(partner_id))
        if problems is not None:
            raise PartnerConfigError(partner_id, AUTOMATION_DOCUMENT, [problem.path for problem in problems])
        return self.partners.get(partner_id, self.defaults)

    @property
    def configured_partner_ids(self) -> tuple[int, ...]:
        """Partners with a valid section of their own in the document, ascending."""
        return tuple(sorted(self.partners))

    @property
    def disabled_partner_ids(self) -> tuple[int, ...]:
        """Partners whose entry is broken, ascending."""
        return tuple(sorted(int(key) for key in self.broken if is_partner_id(key)))

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem of every broken partner entry."""
        return tuple(problem for problems in self.broken.values() for problem in problems)


# ---------------------------------------------------------------------------------------------------- loading


def parse_automation_config(text: str) -> AutomationConfig:
    """Validate the document text (empty: ``{}``); raises :class:`ConfigErrors` for deployment-wide problems."""
    return build_automation_config(load_json(text, AUTOMATION_DOCUMENT) if text.strip() else {})


def build_automation_config(document: Any) -> AutomationConfig:
    """Validate ``document`` (parsed JSON) partner by partner (see the module docstring)."""
    problems = document_problems(document, required=None, allowed=("defaults", "partners", "weekly"))
    if problems:
        raise ConfigErrors(AUTOMATION_DOCUMENT, problems)
    # Merging over the schema's defaults as a document keeps nested defaults (a partner setting only
    # catalog_item.source_language keeps the default selector's service_type).
    raw_defaults = document.get("defaults", {})
    defaults_document = msgspec.to_builtins(PartnerSettings())
    if isinstance(raw_defaults, dict):
        defaults, problems = validate(deep_merge(defaults_document, raw_defaults), PartnerSettings, "defaults")
    else:
        defaults, problems = None, [Problem("defaults", "an object")]
    weekly = document.get("weekly")
    weekly_top = {key: value for key, value in weekly.items() if key != "partners"} if isinstance(weekly, dict) else {}
    if weekly is not None:
        _, weekly_problems = validate(weekly, WeeklySection, "weekly")
        problems += weekly_problems
    if defaults is None or problems:
        raise ConfigErrors(AUTOMATION_DOCUMENT, problems)
    broken: dict[str, list[Problem]] = {}
    partners: dict[int, PartnerSettings] = {}
    for key, overrides in document.get("partners", {}).items():
        path = join("partners", key)
        if not is_partner_id(key):
            broken.setdefault(key, []).append(Problem(path, "a partner id: a positive whole number"))
            continue
        if not isinstance(overrides, dict):
            broken.setdefault(key, []).append(Problem(path, "an object"))
            continue
        settings, found = validate(deep_merge(copy.deepcopy(defaults_document), overrides), PartnerSettings, path)
        if settings is None:
            broken.setdefault(key, []).extend(found)
        else:
            partners[int(key)] = settings
    weekly_partners = weekly.get("partners") if isinstance(weekly, dict) else None
    for key, overrides in (weekly_partners or {}).items():
        path = join("weekly.partners", key)
        if not is_partner_id(key):
            broken.setdefault(key, []).append(Problem(path, "a partner id: a positive whole number"))
        elif not isinstance(overrides, dict):
            broken.setdefault(key, []).append(Problem(path, "an object"))
        else:
            broken.setdefault(key, []).extend(validate(weekly_top | overrides, WeeklyPartner, path)[1])
    broken = {key: problems for key, problems in broken.items() if problems}
    partners = {pid: settings for pid, settings in partners.items() if str(pid) not in broken}
    return AutomationConfig(
        defaults=defaults,
        partners=MappingProxyType(partners),
        weekly=MappingProxyType(weekly) if weekly is not None else None,
        broken=MappingProxyType({key: tuple(problems) for key, problems in broken.items()}),
    )


def automation_problems(text: str) -> list[Problem]:
    """Every problem of the automation document ``text`` (for ``kauto-config check``)."""
    try:
        return list(parse_automation_config(text).problems)
    except ConfigErrors as error:
        return list(error.problems)


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
    """The validated configuration from SSM parameter ``parameter_name`` (cached)."""
    return automation_config_source(parameter_name).get()
