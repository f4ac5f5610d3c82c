"""Malformed configuration documents and the exact errors an operator sees: every problem at once, each with its path
and what was expected, never a value; a broken partner entry disables that partner alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.automation_config import automation_problems, build_automation_config
from kauto.config import parse_partner_secrets, secret_problems
from kauto.errors import PartnerConfigError
from kauto.validation import ConfigErrors
from kauto.weekly.messages import MalformedMessageError, check_week

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "app-token-value-0123456789"


def entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"admin_secret": SECRET, "webhook_hash_algorithms": ["sha256"]}
    return {**base, **changes}


def secret_text(**partners: Any) -> str:
    return json.dumps({"partners": partners})


SECRET_CASES = [
    pytest.param(
        secret_text(**{"1234567": entry(sevice_url="https://www.kaltura.com")}),
        ["partners.1234567.sevice_url: unknown setting; did you mean `service_url`?"],
        id="typo",
    ),
    pytest.param(
        secret_text(**{"1234567": entry(webhook_hash_algorithms="sha256", session_mode=3)}),
        [
            "partners.1234567.webhook_hash_algorithms: a list (at least one) of items each one of sha1, sha256, sha512",
            "partners.1234567.session_mode: one of app_token, auto, local, session_start",
        ],
        id="wrong types, both reported",
    ),
    pytest.param(
        secret_text(**{"1234567": {"webhook_hash_algorithms": ["sha256"]}}),
        ["partners.1234567.admin_secret: required: a non-empty string"],
        id="missing required",
    ),
    pytest.param(
        secret_text(**{"1234567": entry(app_token={"id": "0_a", "token": TOKEN, "hash_type": "SHA384"})}),
        ["partners.1234567.app_token.hash_type: one of MD5, SHA1, SHA256, SHA512"],
        id="nested enum",
    ),
    pytest.param(
        secret_text(**{"1234567": entry(service_url="https://www.kaltura.com/api_v3", session_mode="app_token")}),
        [
            "partners.1234567.service_url: the base URL without /api_v3",
            "partners.1234567.app_token: required when session_mode is app_token",
        ],
        id="cross-field",
    ),
    pytest.param(
        secret_text(**{"1234567": entry(reports_service_url="https://reports.example.com")}),
        ["partners.1234567.reports_service_url: a URL on reports.<region>.ovp.kaltura.com (or loopback, locally)"],
        id="reports host the Kaltura client accepts",
    ),
    pytest.param(
        secret_text(**{"abc": entry()}),
        ["partners.abc: a partner id: a positive whole number"],
        id="partner key not an id",
    ),
    pytest.param("{not json", ["(document): valid JSON (syntax error at line 1 column 2)"], id="not JSON"),
    pytest.param(
        json.dumps({"partner": {}}),
        ["partner: unknown setting; did you mean `partners`?", "partners: required: an object keyed by partner id"],
        id="no partners",
    ),
]


@pytest.mark.parametrize(("text", "expected"), SECRET_CASES)
def test_partner_secret_errors(text: str, expected: list[str]) -> None:
    problems = [str(problem) for problem in secret_problems(text)]

    assert problems == expected
    assert SECRET not in "".join(problems) and TOKEN not in "".join(problems)


AUTOMATION_CASES = [
    pytest.param(
        {"partners": {"1234567": {"captons": {"enabled": True}}}},
        ["partners.1234567.captons: unknown setting; did you mean `captions`?"],
        id="typo",
    ),
    pytest.param(
        {"partners": {"1234567": {"captions": {"enabled": "yes", "min_duration_seconds": "10"}}}},
        [
            "partners.1234567.captions.enabled: true or false",
            "partners.1234567.captions.min_duration_seconds: a whole number >= 0 or null",
        ],
        id="wrong types, both reported",
    ),
    pytest.param(
        {"defaults": {"sweep": {"max_slice_results": 10001}}},
        ["defaults.sweep.max_slice_results: a whole number from 1 to 10000"],
        id="out of range",
    ),
    pytest.param(
        {"partners": {"1234567": {"thresholds": {"session_engagement_rate_below": 30}}}},
        [
            "partners.1234567.thresholds.session_engagement_rate_below: a number from 0 to 1 or null (this looks "
            "like a percentage: ratios are written 0..1, e.g. 0.3 for 30%)"
        ],
        id="percentage for a ratio",
    ),
    pytest.param(
        {"weekly": {"reports": [{"surface": "getTable", "report_type": 1}]}},
        ["weekly.reports[0].name: required: lowercase letters, digits, _ and - (at most 64, not starting with _ or -)"],
        id="missing required",
    ),
    pytest.param(
        {"partners": {"1234567": {"captions": {}, "reach": {}}}},
        ["partners.1234567.reach: unknown setting"],
        id="unknown partner section",
    ),
    pytest.param(
        {"weekly": {"time_zone": "Europe/Berln"}},
        ["weekly.time_zone: an IANA time zone that exists, such as Europe/Berlin, or null"],
        id="invalid time zone",
    ),
    pytest.param(
        {"partners": {"1234567": {"captions": {"min_duration_seconds": 600, "max_duration_seconds": 60}}}},
        ["partners.1234567.captions.max_duration_seconds: at least min_duration_seconds"],
        id="min > max",
    ),
    pytest.param(
        {"partners": {"1234567": {"captions": {"catalog_item_id": None, "catalog_item": None}}}},
        ["partners.1234567.captions.catalog_item: a selector object when catalog_item_id is null"],
        id="catalog item shape",
    ),
    pytest.param(
        {"partners": {"1234567": {"captions": {"catalog_item": {"service_type": 3, "language": "en"}}}}},
        [
            "partners.1234567.captions.catalog_item.language: unknown setting; did you mean `source_language`?",
            "partners.1234567.captions.catalog_item.service_type: one of 1, 2 or null",
        ],
        id="catalog item fields",
    ),
    pytest.param(
        {"defaults": {"session_reports": {"reports": [6000, 6003, "pollsActivity", "groupChatTranscripts"]}}},
        [
            "defaults.session_reports.reports[1]: one of 6000, 6001, 6002, chatModeration, chatUserActivity, "
            "groupChatTranscripts, moderatorTranscripts, pollsActivity"
        ],
        id="report ids the product knows",
    ),
    pytest.param(
        {"defaults": {"session_reports": {"reports": ["groupChatTranscripts"]}}},
        ["defaults.session_reports.reports: transcript reports only with transcripts_enabled: true"],
        id="transcripts refused without opting in",
    ),
    pytest.param(
        {"weekly": {"reports": [{"name": "polls", "surface": "reportsMicroservice", "report_name": "polls-x"}]}},
        ["weekly.reports[0].report_name: required for reportsMicroservice: a report name such as pollsActivity"],
        id="report name",
    ),
    pytest.param(
        {"weekly": {"enabeld": False, "week_over_week": [{"metric": "plays", "change_below_percent": -130}]}},
        [
            "weekly.enabeld: unknown setting; did you mean `enabled`?",
            "weekly.week_over_week[0].change_below_percent: a number above -100 (a value cannot fall further)",
        ],
        id="weekly checked at load",
    ),
    pytest.param({"partner": {}}, ["partner: unknown setting; did you mean `partners`?"], id="unknown top level"),
]


@pytest.mark.parametrize(("document", "expected"), AUTOMATION_CASES)
def test_automation_config_errors(document: dict[str, Any], expected: list[str]) -> None:
    assert [str(problem) for problem in automation_problems(json.dumps(document))] == expected


def test_bad_iso_week_is_refused() -> None:
    check_week("2026-W53")  # 2026 has 53 ISO weeks
    with pytest.raises(MalformedMessageError, match="week"):
        check_week("2025-W53")  # 2025 has 52


def test_two_partners_one_broken_in_the_secret_the_other_works() -> None:
    secrets = parse_partner_secrets(
        secret_text(**{"1111111": entry(), "2222222": entry(webhook_hash_algorithms=["md5"], admin_secret="")})
    )

    assert list(secrets.partners) == [1111111]
    assert secrets.partners[1111111].service_url == "https://www.kaltura.com"  # the schema's default
    problems = secrets.problems_of(2222222)
    assert problems is not None
    assert [str(problem) for problem in problems] == [
        "partners.2222222.admin_secret: a non-empty string",
        "partners.2222222.webhook_hash_algorithms[0]: one of sha1, sha256, sha512",
    ]


def test_two_partners_one_broken_in_the_automation_config_the_other_works() -> None:
    config = build_automation_config(
        {
            "partners": {
                "1111111": {"captions": {"enabled": True}},
                "2222222": {"thresholds": {"unique_users_below": -1}},
            },
            "weekly": {"partners": {"3333333": {"time_zone": "Mars/Olympus"}}},
        }
    )

    assert config.partner(1111111).captions.enabled is True
    assert config.configured_partner_ids == (1111111,)
    assert config.disabled_partner_ids == (2222222, 3333333)
    with pytest.raises(PartnerConfigError) as raised:
        config.partner(2222222)
    assert raised.value.settings == ("partners.2222222.thresholds.unique_users_below",)


def test_deployment_wide_errors_raise_with_every_problem() -> None:
    with pytest.raises(ConfigErrors) as raised:
        build_automation_config({"defaults": {"sweep": {"overlap_seconds": 90000}}, "weekly": {"reports": []}})

    assert [str(problem) for problem in raised.value.problems] == [
        "defaults.sweep.overlap_seconds: shorter than lookback_seconds",
        "weekly.reports: a list of at least 1 object(s)",
    ]
