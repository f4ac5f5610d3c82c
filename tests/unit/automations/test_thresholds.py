"""Session threshold rules: which alerts fire, what they carry (counts and links, no personal data), and that each
fires at most once per (rule, session) however often the session is evaluated."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.automation_config import ThresholdRules
from kauto.automations.thresholds import (
    ATTENDEE_ENGAGEMENT_LOW,
    CHAT_PARTICIPATION_LOW,
    POLL_PARTICIPATION_LOW,
    SESSION_ENGAGEMENT_LOW,
    SESSION_UNIQUE_USERS_LOW,
    SESSION_ZERO_ATTENDEES,
    UNRESOLVED_MODERATION_HIGH,
    ParticipationCounts,
    SessionKey,
    SessionMetrics,
    participation_alerts,
    publish_session_alerts,
    session_alerts,
)
from kauto_local.fakes import InMemoryAlertPublisher
from room_fakes import NOW, PARTNER_ID, FakeClock

SESSION = SessionKey(PARTNER_ID, "1_room0001", "1_sess0001")
LINKS = {
    "room_data": "s3://bucket/sessions/x/room_data.csv",
    "attendees": "s3://bucket/sessions/x/attendees.csv",
    "manifest": "s3://bucket/sessions/x/manifest.json",
}
OFF = ThresholdRules(None, None, None)


def metrics_for(
    *, rate: str = "0.42", users: str = "3", attendee_rates: tuple[str, ...] = (), below: float | None = None
) -> SessionMetrics:
    metrics = SessionMetrics(attendee_engagement_below=below)
    metrics.observe_session_row(
        {
            "meeting_engaged_play_time_ratio": rate,
            "meeting_view_period_unique_users": users,
            "session_start_time": str(NOW - 3600),
            "session_end_time": str(NOW),
        }
    )
    for index, attendee_rate in enumerate(attendee_rates):
        metrics.observe_attendee(
            {"user_email": f"user{index}@example.com", "meeting_engaged_play_time_ratio": attendee_rate}
        )
    return metrics


def rules_names(rules: ThresholdRules, metrics: SessionMetrics) -> list[str]:
    return [alert.rule for alert in session_alerts(SESSION, metrics, rules, links=LINKS)]


def test_no_rule_fires_when_thresholds_are_off() -> None:
    assert rules_names(OFF, metrics_for(rate="0.0", users="0")) == []


@pytest.mark.parametrize(("rate", "fires"), [("0.42", True), ("0.5", False), ("0.9", False)])
def test_session_engagement_below_the_threshold_alerts(rate: str, fires: bool) -> None:
    rules = ThresholdRules(0.5, None, None)
    assert rules_names(rules, metrics_for(rate=rate)) == ([SESSION_ENGAGEMENT_LOW] if fires else [])


@pytest.mark.parametrize(("users", "fires"), [("3", True), ("10", False), ("11", False)])
def test_unique_users_below_the_threshold_alerts(users: str, fires: bool) -> None:
    rules = ThresholdRules(None, 10, None)
    assert rules_names(rules, metrics_for(users=users)) == ([SESSION_UNIQUE_USERS_LOW] if fires else [])


def test_attendee_engagement_alerts_with_counts_only() -> None:
    rules = ThresholdRules(None, None, 0.3)
    metrics = metrics_for(attendee_rates=("0.9", "0.2", "0.1", "", "n/a"), below=0.3)

    (alert,) = session_alerts(SESSION, metrics, rules, links=LINKS)

    assert alert.rule == ATTENDEE_ENGAGEMENT_LOW
    assert alert.details["attendees_below"] == 2
    assert alert.details["attendees_with_rate"] == 3
    assert alert.details["attendees"] == 5
    assert alert.details["share_below"] == pytest.approx(0.6667, abs=1e-4)
    assert metrics.unparsable_values == 1
    assert alert.links == (LINKS["attendees"], LINKS["manifest"])
    assert "example.com" not in json.dumps(
        {"subject": alert.subject, "summary": alert.summary, "details": dict(alert.details)}
    )


def test_no_attendee_below_no_alert() -> None:
    rules = ThresholdRules(None, None, 0.3)
    assert rules_names(rules, metrics_for(attendee_rates=("0.5", "0.4"), below=0.3)) == []


def test_metrics_gathered_for_another_attendee_threshold_are_refused() -> None:
    with pytest.raises(ValueError, match="another attendee_engagement_below"):
        session_alerts(SESSION, metrics_for(below=0.2), ThresholdRules(None, None, 0.3), links=LINKS)


def test_missing_session_row_values_fire_nothing() -> None:
    metrics = SessionMetrics()
    assert rules_names(ThresholdRules(0.5, 10, None), metrics) == []


def test_engagement_alert_carries_ids_numbers_and_links() -> None:
    (alert,) = session_alerts(SESSION, metrics_for(), ThresholdRules(0.5, None, None), links=LINKS)

    assert alert.partner_id == PARTNER_ID
    assert alert.subject == "Low engagement in room session 1_room0001/1_sess0001"
    assert alert.details["engagement_rate"] == pytest.approx(0.42)
    assert alert.details["threshold"] == 0.5
    assert alert.details["session_start"] == "2026-11-18T10:06:40Z"
    assert alert.links == (LINKS["room_data"], LINKS["manifest"])


def test_each_rule_fires_once_per_session_however_often_it_is_evaluated() -> None:
    clock = FakeClock()
    publisher = InMemoryAlertPublisher(clock=clock)
    rules = ThresholdRules(0.5, 10, 0.3)
    metrics = metrics_for(attendee_rates=("0.1",), below=0.3)
    other_session = SessionKey(PARTNER_ID, "1_room0001", "1_sess0002")

    for _ in range(3):
        publish_session_alerts(publisher, SESSION, metrics, rules, links=LINKS)
        clock.advance(600)
    publish_session_alerts(publisher, other_session, metrics, rules, links=LINKS)

    messages: list[dict[str, Any]] = [json.loads(alert.message) for alert in publisher.published]
    assert sorted((m["alert"], m["dedupe_key"]) for m in messages) == sorted(
        [(rule, key) for rule in (SESSION_ENGAGEMENT_LOW, SESSION_UNIQUE_USERS_LOW, ATTENDEE_ENGAGEMENT_LOW)
         for key in ("1_room0001/1_sess0001", "1_room0001/1_sess0002")]
    )  # fmt: skip
    assert {alert.attributes["alert"]["StringValue"] for alert in publisher.published} == {
        SESSION_ENGAGEMENT_LOW,
        SESSION_UNIQUE_USERS_LOW,
        ATTENDEE_ENGAGEMENT_LOW,
    }


# ------------------------------------------------------------------------------------------------ participation


def participation_rules(**changes: Any) -> ThresholdRules:
    return ThresholdRules(None, None, None, **changes)


def participation_names(counts: ParticipationCounts, rules: ThresholdRules) -> list[str]:
    return [alert.rule for alert in participation_alerts(SESSION, counts, rules, links=LINKS)]


def test_poll_participation_needs_polls_held_and_a_share_below_the_threshold() -> None:
    rules = participation_rules(poll_participation_below=0.5)

    assert participation_names(ParticipationCounts(10, 2, 4), rules) == [POLL_PARTICIPATION_LOW]
    assert participation_names(ParticipationCounts(10, 2, 5), rules) == [], "half is not below half"
    assert participation_names(ParticipationCounts(10, 0, 0), rules) == [], "no poll held"
    assert participation_names(ParticipationCounts(10, None, None), rules) == [], "polls not pulled"


def test_chat_moderation_and_zero_attendee_rules() -> None:
    rules = participation_rules(
        chat_participation_below=0.2, unresolved_moderation_above=3, alert_on_zero_attendees=True
    )

    assert participation_names(ParticipationCounts(10, chatters=1, unresolved_threads=4), rules) == [
        CHAT_PARTICIPATION_LOW,
        UNRESOLVED_MODERATION_HIGH,
    ]
    assert participation_names(ParticipationCounts(10, chatters=2, unresolved_threads=3), rules) == []
    assert participation_names(ParticipationCounts(0), rules) == [SESSION_ZERO_ATTENDEES]
    assert participation_names(ParticipationCounts(0), participation_rules()) == [], "off by default"


def test_participation_alerts_carry_counts_and_link_the_summary_page() -> None:
    links = {**LINKS, "summary_page": "s3://bucket/sessions/x/summary.html"}
    (alert,) = participation_alerts(
        SESSION, ParticipationCounts(8, 1, 2), participation_rules(poll_participation_below=0.5), links=links
    )

    assert alert.details["poll_respondents"] == 2 and alert.details["attendees"] == 8
    assert alert.links == ("s3://bucket/sessions/x/summary.html", "s3://bucket/sessions/x/manifest.json")


def test_metrics_survive_the_ledger_round_trip() -> None:
    metrics = metrics_for(attendee_rates=("0.1", "0.9"), below=0.3)

    again = SessionMetrics.from_state(json.loads(json.dumps(metrics.to_state())), attendee_engagement_below=0.3)

    assert again.summary() == metrics.summary()
    assert again.attendees_with_rate == metrics.attendees_with_rate
