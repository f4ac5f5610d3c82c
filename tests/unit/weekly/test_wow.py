"""Week-over-week rules: validation naming the setting, when a rule fires, one alert per (partner, week, rule)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.aws.alerts import Severity
from kauto.errors import ConfigError
from kauto.weekly.wow import (
    ALERT_RULE,
    Metric,
    WowRule,
    change_percent,
    evaluate,
    parse_rules,
    partner_rules,
    publish_findings,
)
from kauto_local.fakes import InMemoryAlertPublisher

PARTNER_ID = 1234567
NOW = 1_736_150_400.0  # 2025-01-06T08:00:00Z
PLAYS_DOWN_30 = WowRule(Metric.PLAYS, change_below_percent=-30)


def totals(**values: float | None) -> dict[Metric, float | None]:
    return {Metric(name): value for name, value in values.items()}


def test_parse_rules_reads_both_bounds_and_defaults() -> None:
    rules = parse_rules(
        [
            {"metric": "plays", "change_below_percent": -30},
            {"metric": "caption_errors", "change_above_percent": 100, "min_previous": 5, "severity": "critical"},
        ],
        "weekly.week_over_week",
    )

    assert rules == (
        WowRule(Metric.PLAYS, change_below_percent=-30.0),
        WowRule(Metric.CAPTION_ERRORS, change_above_percent=100.0, min_previous=5.0, severity=Severity.CRITICAL),
    )
    assert [rule.rule_id for rule in rules] == ["plays.below.-30", "caption_errors.above.100"]


@pytest.mark.parametrize(
    ("rules", "setting"),
    [
        ({"metric": "plays"}, "weekly.week_over_week"),
        ([{"metric": "likes", "change_below_percent": -30}], "weekly.week_over_week[0].metric"),
        ([{"metric": "plays"}], "weekly.week_over_week[0]"),
        ([{"metric": "plays", "change_below_percent": -30, "change_above_percent": 30}], "weekly.week_over_week[0]"),
        ([{"metric": "plays", "change_below_percent": "-30"}], "weekly.week_over_week[0].change_below_percent"),
        ([{"metric": "plays", "change_below_percent": -100}], "weekly.week_over_week[0].change_below_percent"),
        ([{"metric": "plays", "change_above_percent": 3, "min_previous": -1}], "weekly.week_over_week[0].min_previous"),
        ([{"metric": "plays", "change_below_percent": -30, "severity": "loud"}], "weekly.week_over_week[0].severity"),
        ([{"metric": "plays", "change_below_percent": -30, "threshold": 1}], "weekly.week_over_week[0].threshold"),
        ([{"metric": "plays", "change_below_percent": -30}] * 2, "weekly.week_over_week"),
        (["plays"], "weekly.week_over_week[0]"),
    ],
)
def test_invalid_rules_name_the_setting(rules: Any, setting: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_rules(rules, "weekly.week_over_week")

    assert error.value.setting == setting


def test_no_rules_configured_is_an_empty_set() -> None:
    assert parse_rules(None, "weekly.week_over_week") == ()


@pytest.mark.parametrize(
    ("current", "previous", "fires"),
    [(69, 100, True), (70, 100, False), (71, 100, False), (0, 100, True), (150, 100, False)],
)
def test_a_below_rule_fires_strictly_below_its_bound(current: float, previous: float, fires: bool) -> None:
    findings = evaluate([PLAYS_DOWN_30], totals(plays=current), totals(plays=previous))

    assert bool(findings) is fires


def test_an_above_rule_fires_strictly_above_its_bound() -> None:
    rule = WowRule(Metric.CAPTION_ERRORS, change_above_percent=100)

    assert evaluate([rule], totals(caption_errors=21), totals(caption_errors=10))[0].change_percent == 110
    assert evaluate([rule], totals(caption_errors=20), totals(caption_errors=10)) == []


def test_nothing_fires_without_a_previous_week_or_from_zero_or_below_min_previous() -> None:
    small_base = WowRule(Metric.PLAYS, change_below_percent=-30, min_previous=10)

    assert evaluate([PLAYS_DOWN_30], totals(plays=0), None) == []
    assert evaluate([PLAYS_DOWN_30], totals(plays=5), totals(plays=0)) == []
    assert evaluate([PLAYS_DOWN_30], totals(plays=None), totals(plays=100)) == []
    assert evaluate([small_base], totals(plays=1), totals(plays=2)) == []
    assert evaluate([small_base], totals(plays=1), totals(plays=10)) != []


def test_change_percent_is_relative_to_the_previous_week() -> None:
    assert change_percent(50, 200) == -75
    assert change_percent(3, 0) is None


def publish(alerts: InMemoryAlertPublisher, week: str, current: float, previous: float) -> int:
    findings = evaluate([PLAYS_DOWN_30], totals(plays=current), totals(plays=previous))
    return publish_findings(
        findings,
        partner_id=PARTNER_ID,
        week=week,
        previous_week="2025-W01",
        alerts=alerts,
        links=("s3://bucket/weekly/partner_id=1234567/week=2025-W02/digest.html",),
    )


def test_a_finding_alerts_once_per_run_however_often_the_digest_runs() -> None:
    alerts = InMemoryAlertPublisher(clock=lambda: NOW)

    first = publish(alerts, "2025-W02", 40, 100)
    again = publish(alerts, "2025-W02", 40, 100)
    next_week = publish(alerts, "2025-W03", 40, 100)

    assert (first, again, next_week) == (1, 0, 1)
    assert len(alerts.published) == 2


def test_the_alert_names_the_metric_week_and_numbers_and_links_the_digest() -> None:
    alerts = InMemoryAlertPublisher(clock=lambda: NOW)

    publish(alerts, "2025-W02", 40, 100)
    sent = alerts.published[0]
    message = json.loads(sent.message)

    assert sent.attributes["alert"]["StringValue"] == ALERT_RULE
    assert sent.attributes["severity"]["StringValue"] == "warning"
    assert sent.subject == "Kaltura partner 1234567: plays down 60% in 2025-W02"
    assert {k: message["details"][k] for k in ("metric", "week", "current", "previous", "change_percent")} == {
        "metric": "plays",
        "week": "2025-W02",
        "current": 40,
        "previous": 100,
        "change_percent": -60.0,
    }
    assert message["links"] == ["s3://bucket/weekly/partner_id=1234567/week=2025-W02/digest.html"]
    assert message["dedupe_key"] == "weekly:1234567:2025-W02:plays.below.-30"


def test_partner_rules_take_the_partners_own_list_over_the_top_level_one() -> None:
    section = {
        "week_over_week": [{"metric": "plays", "change_below_percent": -30}],
        "partners": {str(PARTNER_ID): {"week_over_week": [{"metric": "room_sessions", "change_below_percent": -50}]}},
    }

    assert [rule.rule_id for rule in partner_rules(section, PARTNER_ID)] == ["room_sessions.below.-50"]
    assert [rule.rule_id for rule in partner_rules(section, 7654321)] == ["plays.below.-30"]
    assert partner_rules(None, PARTNER_ID) == ()


def test_a_bad_partner_rule_names_its_path() -> None:
    section = {"partners": {str(PARTNER_ID): {"week_over_week": [{"metric": "likes", "change_below_percent": -1}]}}}

    with pytest.raises(ConfigError) as error:
        partner_rules(section, PARTNER_ID)

    assert error.value.setting == f"weekly.partners.{PARTNER_ID}.week_over_week[0].metric"
