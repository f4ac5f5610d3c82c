"""Week-over-week threshold rules: compare a week's digest totals with the week before and alert once per run.

A rule names a digest metric and a bound on its relative change, in percent of the previous week::

    {"metric": "plays", "change_below_percent": -30}              # plays fell by more than 30 %
    {"metric": "caption_errors", "change_above_percent": 100,     # caption errors more than doubled ...
     "min_previous": 5, "severity": "critical"}                   # ... from at least 5, as a critical alert

- ``metric``: one of :class:`Metric` (``plays``, ``minutes_viewed``, ``unique_viewers``, ``room_sessions``,
  ``avg_engagement``, ``caption_orders``, ``caption_errors``).
- exactly one of ``change_below_percent`` (fires when the change is strictly below it) and ``change_above_percent``
  (fires when strictly above).
- ``min_previous`` (default 0): the rule is only evaluated when the previous week's value is at least this much, so
  that 2 -> 1 plays is not reported as a 50 % drop. A previous value of 0 (or no previous week at all) never
  evaluates: a relative change from nothing is undefined.
- ``severity``: ``info``, ``warning`` (default) or ``critical``.

Where rules live: the ``week_over_week`` list of the automation config's ``weekly`` section, at the top level (all
partners) and/or in ``weekly.partners.<pid>`` (replaces the top-level list for that partner); see
:func:`partner_rules`.

Alerts (rule ``weekly_change``) are published at most once per (partner, ISO week, rule): the dedupe key is
``weekly:<partner>:<week>:<rule id>``, so a redelivered digest message or a re-run of the same week does not alert
again, while the next week does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from kauto.aws.alerts import Alert, AlertPublisher, Severity
from kauto.validation import ConfigErrors, Problem, validate

ALERT_RULE = "weekly_change"
"""The ``alert`` attribute of week-over-week alerts (SNS subscribers can filter on it)."""

RULES_SETTING = "week_over_week"
"""The key of the rule list in the ``weekly`` section and in each ``weekly.partners.<pid>`` entry."""


class Metric(StrEnum):
    """A key total of the weekly digest."""

    PLAYS = "plays"
    MINUTES_VIEWED = "minutes_viewed"
    UNIQUE_VIEWERS = "unique_viewers"
    ROOM_SESSIONS = "room_sessions"
    AVG_ENGAGEMENT = "avg_engagement"
    CAPTION_ORDERS = "caption_orders"
    CAPTION_ERRORS = "caption_errors"

    @property
    def label(self) -> str:
        """How the metric is named to people."""
        return _LABELS[self]


_LABELS: Mapping[Metric, str] = {
    Metric.PLAYS: "Plays",
    Metric.MINUTES_VIEWED: "Minutes viewed",
    Metric.UNIQUE_VIEWERS: "Unique viewers",
    Metric.ROOM_SESSIONS: "Room sessions",
    Metric.AVG_ENGAGEMENT: "Average engagement (%)",
    Metric.CAPTION_ORDERS: "Caption orders",
    Metric.CAPTION_ERRORS: "Caption errors",
}


class WowRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One rule; exactly one of the two bounds is set (validated by :func:`parse_rules` / :mod:`kauto.validation`)."""

    metric: Annotated[Metric, Meta(description="The digest total the rule watches.")]
    change_below_percent: Annotated[
        float | None,
        Meta(description="Fires when the change, in percent of the previous week, is strictly below this (> -100)."),
    ] = None
    change_above_percent: Annotated[float | None, Meta(description="Fires when the change is strictly above this.")] = (
        None
    )
    min_previous: Annotated[
        float, Meta(ge=0, description="Evaluated only when the previous week's value is at least this.")
    ] = 0.0
    severity: Annotated[Severity, Meta(description="The alert's severity.")] = Severity.WARNING

    def __post_init__(self) -> None:
        if (self.change_below_percent is None) == (self.change_above_percent is None):
            raise ValueError("exactly one of change_below_percent and change_above_percent")

    def cross_check(self) -> list[tuple[str, str]]:
        """A fall cannot exceed 100 %."""
        below = self.change_below_percent
        if below is not None and (below <= -100 or not math.isfinite(below)):
            return [("change_below_percent", "a number above -100 (a value cannot fall further)")]
        if self.change_above_percent is not None and not math.isfinite(self.change_above_percent):
            return [("change_above_percent", "a finite number")]
        return []

    @property
    def rule_id(self) -> str:
        """A stable name for the rule, part of the alert dedupe key (e.g. ``plays.below.-30``)."""
        if self.change_below_percent is not None:
            return f"{self.metric.value}.below.{_number_id(self.change_below_percent)}"
        return f"{self.metric.value}.above.{_number_id(self.change_above_percent or 0.0)}"

    @property
    def description(self) -> str:
        """The rule in words, e.g. ``Plays change below -30%``."""
        if self.change_below_percent is not None:
            return f"{self.metric.label} change below {_percent(self.change_below_percent)}"
        return f"{self.metric.label} change above {_percent(self.change_above_percent or 0.0)}"

    def fires(self, current: float, previous: float) -> bool:
        """Whether the change from ``previous`` to ``current`` breaks the bound (see the module docstring)."""
        change = change_percent(current, previous)
        if change is None or previous < self.min_previous:
            return False
        if self.change_below_percent is not None:
            return change < self.change_below_percent
        return change > (self.change_above_percent or 0.0)


@dataclass(frozen=True, slots=True)
class WowFinding:
    """A rule that fired, with the numbers that made it fire."""

    rule: WowRule
    current: float
    previous: float
    change_percent: float


def change_percent(current: float, previous: float) -> float | None:
    """Relative change in percent; ``None`` when the previous value is 0 (or either is not a finite number)."""
    if not (math.isfinite(current) and math.isfinite(previous)) or previous == 0:
        return None
    # Multiplying first keeps round cases exact (70 after 100 is -30.0, not -30.000000000000004).
    return round((current - previous) * 100.0 / abs(previous), 9)


def parse_rules(value: Any, path: str) -> tuple[WowRule, ...]:
    """Validate a list of rule objects; :class:`~kauto.validation.ConfigErrors` names every offending setting."""
    if value is None:
        return ()
    rules, problems = validate(value, tuple[WowRule, ...], path)
    if rules is None:
        raise ConfigErrors(path, problems)
    ids = [rule.rule_id for rule in rules]
    if len(set(ids)) != len(ids):
        raise ConfigErrors(path, [Problem(path, "each rule once")])
    return rules


def partner_rules(weekly_section: Mapping[str, Any] | None, partner_id: int) -> tuple[WowRule, ...]:
    """``partner_id``'s rules from the raw ``weekly`` section: its own ``week_over_week`` list if it has one, else
    the top-level list; :class:`ConfigError` names the path of a bad rule."""
    section = weekly_section or {}
    partners = section.get("partners")
    own = partners.get(str(partner_id)) if isinstance(partners, Mapping) else None
    if isinstance(own, Mapping) and RULES_SETTING in own:
        return parse_rules(own[RULES_SETTING], f"weekly.partners.{partner_id}.{RULES_SETTING}")
    return parse_rules(section.get(RULES_SETTING), f"weekly.{RULES_SETTING}")


def evaluate(
    rules: Sequence[WowRule],
    current: Mapping[Metric, float | None],
    previous: Mapping[Metric, float | None] | None,
) -> list[WowFinding]:
    """The rules that fire for ``current`` against ``previous`` (``None``: no previous week, nothing fires).

    A metric missing or ``None`` on either side (e.g. no room report in a run) is not evaluated.
    """
    if previous is None:
        return []
    findings = []
    for rule in rules:
        now, before = current.get(rule.metric), previous.get(rule.metric)
        if now is None or before is None or not rule.fires(now, before):
            continue
        change = change_percent(now, before)
        if change is not None:
            findings.append(WowFinding(rule, now, before, change))
    return findings


def publish_findings(
    findings: Sequence[WowFinding],
    *,
    partner_id: int,
    week: str,
    previous_week: str,
    alerts: AlertPublisher,
    links: Sequence[str] = (),
) -> int:
    """Alert each finding once per (partner, week, rule); returns how many were published now (not before)."""
    published = 0
    for finding in findings:
        rule = finding.rule
        direction = "down" if finding.change_percent < 0 else "up"
        alert = Alert(
            rule=ALERT_RULE,
            severity=rule.severity,
            partner_id=partner_id,
            subject=(
                f"Kaltura partner {partner_id}: {rule.metric.label.lower()} {direction} "
                f"{abs(finding.change_percent):.0f}% in {week}"
            ),
            summary=(
                f"{rule.metric.label} went from {_plain(finding.previous)} in {previous_week} to "
                f"{_plain(finding.current)} in {week} ({_percent(finding.change_percent)}); rule: {rule.description}."
            ),
            details={
                "metric": rule.metric.value,
                "week": week,
                "previous_week": previous_week,
                "current": finding.current,
                "previous": finding.previous,
                "change_percent": round(finding.change_percent, 2),
                "rule": rule.rule_id,
                "change_below_percent": rule.change_below_percent,
                "change_above_percent": rule.change_above_percent,
                "min_previous": rule.min_previous,
            },
            links=tuple(links),
        )
        outcome = alerts.publish(alert, dedupe_key=dedupe_key(partner_id, week, rule))
        published += int(outcome.published)
    return published


def dedupe_key(partner_id: int, week: str, rule: WowRule) -> str:
    """``weekly:<partner>:<week>:<rule id>``: one alert per run and rule."""
    return f"weekly:{partner_id}:{week}:{rule.rule_id}"


def _number_id(value: float) -> str:
    text = f"{value:g}"
    return re.sub(r"[^0-9a-z.+-]", "_", text.lower())


def _percent(value: float) -> str:
    return f"{value:+.1f}%".replace(".0%", "%")


def _plain(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
