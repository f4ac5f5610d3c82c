"""The automation configuration: schema defaults, deep merge of the SSM document, validation naming the setting,
SSM loading with a cache, and build_deps wiring (the full error table: tests/unit/config/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from helpers import FakeLambdaContext
from kauto.automation_config import (
    CONFIG_TTL_SECONDS,
    automation_config_source,
    automation_problems,
    build_automation_config,
    deep_merge,
    load_automation_config,
    parse_automation_config,
)
from kauto.automations.deps import build_deps
from kauto.aws.alerts import AlertPeriod
from kauto.errors import ConfigError
from moto import mock_aws

PARAMETER = "/kaltura-automations/config"


def test_bundled_defaults_are_valid_and_safe() -> None:
    config = parse_automation_config("{}")
    settings = config.partner(1234567)

    assert config.partners == {}
    assert settings.captions.enabled is False  # nothing is ordered (credit spent) until a partner opts in
    assert settings.captions.catalog_item is not None
    assert settings.captions.catalog_item.service_type == 2
    assert settings.session_reports.reports == (6000, 6001, 6002)
    assert settings.session_reports.meeting_admin_tag == "kalturameeting"
    assert settings.alerts.credit_period is AlertPeriod.DAY
    assert settings.thresholds.unique_users_below is None
    assert config.weekly is None


def test_partner_overrides_merge_deeply_over_the_defaults() -> None:
    config = build_automation_config(
        {
            "defaults": {"captions": {"min_duration_seconds": 30}},
            "partners": {
                "42": {"captions": {"enabled": True, "catalog_item": {"source_language": "Spanish"}}},
                "7": {"thresholds": {"unique_users_below": 3}},
            },
        }
    )
    pid42, pid7, other = config.partner(42), config.partner(7), config.partner(99)

    assert pid42.captions.enabled is True
    assert pid42.captions.catalog_item is not None
    assert pid42.captions.catalog_item.source_language == "Spanish"
    assert pid42.captions.catalog_item.service_type == 2  # the rest of the selector comes from the defaults
    assert pid42.captions.min_duration_seconds == 30  # from the override's defaults
    assert pid7.thresholds.unique_users_below == 3
    assert pid7.captions.enabled is False
    assert other == config.defaults
    assert config.configured_partner_ids == (7, 42)


def test_null_replaces_and_lists_replace_rather_than_append() -> None:
    config = build_automation_config(
        {"defaults": {"captions": {"media_types": [5], "min_duration_seconds": None, "catalog_item_id": 12}}}
    )

    assert config.defaults.captions.media_types == (5,)
    assert config.defaults.captions.min_duration_seconds is None
    assert config.defaults.captions.catalog_item_id == 12


def test_weekly_section_is_kept_as_written_once_valid() -> None:
    weekly = {"reports": [{"name": "geo", "surface": "getTable", "report_type": 36}], "time_zone": "Europe/Paris"}

    config = build_automation_config({"weekly": weekly})

    assert config.weekly == weekly


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"defaults": {"captions": {"min_duration_seconds": -1}}}, "defaults.captions.min_duration_seconds"),
        (
            {"partners": {"1234567": {"captions": {"min_duration_seconds": "10"}}}},
            "partners.1234567.captions.min_duration_seconds",
        ),
        ({"partners": {"1234567": {"captions": {"enabeld": True}}}}, "partners.1234567.captions.enabeld"),
        ({"partners": {"1234567": {"caption": {}}}}, "partners.1234567.caption"),
        ({"partners": {"abc": {}}}, "partners.abc"),
        ({"partners": {"0": {}}}, "partners.0"),
        ({"partners": {"5": []}}, "partners.5"),
        ({"partner": {}}, "partner"),
        ({"defaults": {"captions": {"enabled": "yes"}}}, "defaults.captions.enabled"),
        ({"defaults": {"captions": {"catalog_item_id": None, "catalog_item": None}}}, "defaults.captions.catalog_item"),
        (
            {"defaults": {"captions": {"catalog_item": {"service_feature": 2}}}},
            "defaults.captions.catalog_item.service_feature",
        ),
        (
            {"defaults": {"captions": {"catalog_item": {"service_type": 3}}}},
            "defaults.captions.catalog_item.service_type",
        ),
        ({"defaults": {"captions": {"catalog_item": {"language": "x"}}}}, "defaults.captions.catalog_item.language"),
        ({"defaults": {"captions": {"max_duration_seconds": 5}}}, "defaults.captions.max_duration_seconds"),
        ({"defaults": {"captions": {"media_types": [1, True]}}}, "defaults.captions.media_types[1]"),
        ({"defaults": {"captions": {"include_tags": ["ok", ""]}}}, "defaults.captions.include_tags[1]"),
        ({"defaults": {"tasks": {"stuck_grace_factor": 0.5}}}, "defaults.tasks.stuck_grace_factor"),
        ({"defaults": {"tasks": {"best_effort_sla_hours": 0}}}, "defaults.tasks.best_effort_sla_hours"),
        ({"defaults": {"session_reports": {"reports": [6000, 6003]}}}, "defaults.session_reports.reports[1]"),
        ({"defaults": {"session_reports": {"reports": []}}}, "defaults.session_reports.reports"),
        ({"defaults": {"session_reports": {"meeting_admin_tag": ""}}}, "defaults.session_reports.meeting_admin_tag"),
        ({"defaults": {"thresholds": {"unique_users_below": 2.5}}}, "defaults.thresholds.unique_users_below"),
        (
            {"defaults": {"thresholds": {"attendee_engagement_below": -1}}},
            "defaults.thresholds.attendee_engagement_below",
        ),
        (
            {"defaults": {"session_reports": {"reports": [6000, "privateTranscripts"]}}},
            "defaults.session_reports.reports[1]",
        ),
        ({"defaults": {"session_reports": {"reports": [6000, True]}}}, "defaults.session_reports.reports[1]"),
        (
            {"defaults": {"session_reports": {"reports": [6000, "moderatorTranscripts"]}}},
            "defaults.session_reports.reports",
        ),
        (
            {"defaults": {"session_reports": {"pending_limit_seconds": 59}}},
            "defaults.session_reports.pending_limit_seconds",
        ),
        ({"defaults": {"session_reports": {"summary_page": 1}}}, "defaults.session_reports.summary_page"),
        (
            {"defaults": {"thresholds": {"poll_participation_below": 1.5}}},
            "defaults.thresholds.poll_participation_below",
        ),
        (
            {"defaults": {"thresholds": {"chat_participation_below": "0.5"}}},
            "defaults.thresholds.chat_participation_below",
        ),
        (
            {"defaults": {"thresholds": {"unresolved_moderation_above": -1}}},
            "defaults.thresholds.unresolved_moderation_above",
        ),
        (
            {"defaults": {"thresholds": {"alert_on_zero_attendees": None}}},
            "defaults.thresholds.alert_on_zero_attendees",
        ),
        ({"defaults": {"alerts": {"credit_period": "month"}}}, "defaults.alerts.credit_period"),
        ({"defaults": {"sweep": {"max_slice_results": 10001}}}, "defaults.sweep.max_slice_results"),
        ({"defaults": {"sweep": {"overlap_seconds": 86400}}}, "defaults.sweep.overlap_seconds"),
        ({"weekly": []}, "weekly"),
    ],
)
def test_invalid_settings_are_named_by_their_path(override: dict[str, Any], setting: str) -> None:
    # Deployment-wide problems raise, a partner's disable that partner: the checker lists both.
    assert setting in [problem.path for problem in automation_problems(json.dumps(override))]


def test_session_report_names_and_participation_rules_are_accepted() -> None:
    config = build_automation_config(
        {
            "defaults": {
                "session_reports": {
                    "reports": [6000, "pollsActivity", "groupChatTranscripts"],
                    "transcripts_enabled": True,
                    "pending_limit_seconds": 600,
                },
                "thresholds": {"poll_participation_below": 0.5, "unresolved_moderation_above": 0},
            }
        }
    )

    rules, thresholds = config.defaults.session_reports, config.defaults.thresholds
    assert rules.reports == (6000, "pollsActivity", "groupChatTranscripts")
    assert (rules.transcripts_enabled, rules.pending_limit_seconds, rules.summary_page) == (True, 600, True)
    assert (thresholds.poll_participation_below, thresholds.chat_participation_below) == (0.5, None)
    assert (thresholds.unresolved_moderation_above, thresholds.alert_on_zero_attendees) == (0, False)


def test_invalid_json_is_a_config_error_without_the_text() -> None:
    with pytest.raises(ConfigError, match="line 1") as raised:
        parse_automation_config('{"partners": {"1": {"admin_secret": "s3cr3t"')

    assert "s3cr3t" not in str(raised.value)


def test_a_partner_section_error_names_the_partner_even_when_the_value_is_inherited() -> None:
    # The partner's override pushes a default past the allowed range: the error is reported where it applies.
    config = build_automation_config({"partners": {"9": {"captions": {"max_duration_seconds": 1}}}})

    assert [problem.path for problem in config.problems] == ["partners.9.captions.max_duration_seconds"]
    assert config.disabled_partner_ids == (9,)


def test_deep_merge() -> None:
    assert deep_merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2], "e": None}}) == {
        "a": {"b": 1, "c": [2], "e": None},
        "d": 1,
    }


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def test_config_is_read_from_ssm_and_cached_with_a_ttl(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ssm.put_parameter(Name=PARAMETER, Type="String", Value='{"partners": {"5": {"captions": {"enabled": true}}}}')
    clock = [1000.0]
    source = automation_config_source(PARAMETER)
    monkeypatch.setattr(source, "_clock", lambda: clock[0])

    first = load_automation_config(PARAMETER)
    ssm.put_parameter(Name=PARAMETER, Type="String", Value="{}", Overwrite=True)
    cached = load_automation_config(PARAMETER)
    clock[0] += CONFIG_TTL_SECONDS
    refreshed = load_automation_config(PARAMETER)

    assert first.partner(5).captions.enabled is True
    assert cached is first
    assert refreshed.partner(5).captions.enabled is False


def test_missing_parameter_is_a_config_error_naming_it(ssm: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        load_automation_config("/absent")

    assert raised.value.setting == "/absent"


def test_invalid_parameter_value_is_a_config_error(ssm: Any) -> None:
    ssm.put_parameter(Name=PARAMETER, Type="String", Value='{"defaults": {"alerts": {"credit_period": "year"}}}')

    with pytest.raises(ConfigError) as raised:
        load_automation_config(PARAMETER)

    assert raised.value.setting == "defaults.alerts.credit_period"


WORKER_ENV = {
    "LEDGER_TABLE": "ledger",
    "REPORTS_BUCKET": "reports",
    "ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/events",
    "PARTNER_SECRETS_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:p-AbCdEf",
    "AUTOMATION_CONFIG_PARAMETER": PARAMETER,
}


@pytest.mark.parametrize("missing", sorted(WORKER_ENV))
def test_build_deps_names_a_missing_variable(missing: str) -> None:
    env = {name: value for name, value in WORKER_ENV.items() if name != missing}

    with pytest.raises(ConfigError) as raised:
        build_deps(FakeLambdaContext(), env)

    assert raised.value.setting == missing


def test_build_deps_wires_the_configuration_and_worker_timeout(ssm: Any) -> None:
    ssm.put_parameter(Name=PARAMETER, Type="String", Value="{}")

    deps = build_deps(FakeLambdaContext(), {**WORKER_ENV, "WORKER_TIMEOUT_SECONDS": "300"})

    assert deps.worker_timeout_seconds == 300
    assert deps.config.partner(1).captions.enabled is False
    assert deps.memo == {}


@pytest.mark.parametrize("value", ["0", "abc", "901", "-5"])
def test_build_deps_refuses_a_bad_worker_timeout(ssm: Any, value: str) -> None:
    ssm.put_parameter(Name=PARAMETER, Type="String", Value="{}")

    with pytest.raises(ConfigError) as raised:
        build_deps(FakeLambdaContext(), {**WORKER_ENV, "WORKER_TIMEOUT_SECONDS": value})

    assert raised.value.setting == "WORKER_TIMEOUT_SECONDS"
