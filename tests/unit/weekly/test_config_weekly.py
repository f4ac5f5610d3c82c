"""The weekly report set: bundled default, per-partner overrides, and validation errors that name the setting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kauto.automation_config import automation_problems, build_automation_config
from kauto.weekly.config import (
    DEFAULT_REPORTS,
    Pieces,
    RowLimit,
    Surface,
    parse_report,
    parse_weekly_config,
)


def test_default_set_covers_the_issue_report_kinds_with_their_surfaces() -> None:
    settings = parse_weekly_config(None).defaults

    kinds = {(r.name, r.surface, r.report_type or r.report_id) for r in settings.reports}

    assert kinds == {
        ("top_content", Surface.TABLE, 1),
        ("top_content_creators", Surface.TABLE, 38),
        ("user_engagement", Surface.CSV_URL, 13),
        ("content_dropoff", Surface.TABLE, 2),
        ("platforms", Surface.TABLE, 21),
        ("geography", Surface.TABLE, 36),
        ("room_data", Surface.CSV_PARAMS, 6000),
        ("attendees", Surface.CSV_PARAMS, 6001),
        ("breakouts", Surface.CSV_PARAMS, 6002),
    }
    assert settings.enabled and settings.time_zone is None
    assert settings.microservice_poll_seconds == 60


def test_room_reports_get_the_session_report_parameters_and_timestamp_columns() -> None:
    settings = parse_weekly_config(None).defaults
    room, breakouts = settings.report("room_data"), settings.report("breakouts")

    assert room is not None and breakouts is not None
    assert dict(room.params) == {"from_date": "{from_unix}", "to_date": "{to_unix}", "entry_ids": "{entries}"}
    assert dict(breakouts.params) == {"fromDate": "{from_unix}", "toDate": "{to_unix}", "parentEntryIds": "{entries}"}
    assert set(room.timestamp_columns) == {"session_start_time", "session_end_time"}
    assert room.pieces is Pieces.DAY


def test_partner_section_overrides_top_level_keys_and_replaces_the_report_list() -> None:
    weekly = {
        "time_zone": "Europe/Berlin",
        "partners": {
            "111": {
                "time_zone": "America/New_York",
                "reports": [{"name": "geo", "surface": "getTable", "report_type": 36}],
            },
            "222": {"enabled": False},
        },
    }
    config = parse_weekly_config(weekly)

    assert config.for_partner(111).time_zone == "America/New_York"
    assert [r.name for r in config.for_partner(111).reports] == ["geo"]
    assert config.for_partner(333).time_zone == "Europe/Berlin"
    assert len(config.for_partner(333).reports) == len(DEFAULT_REPORTS)
    automation = build_automation_config({"partners": {"444": {}}})
    # 222 is disabled; 444 comes from the automation config's partners, 111 from weekly.partners.
    assert config.scheduled_partners(automation) == (111, 444)


def test_report_entries_round_trip_through_their_stored_form() -> None:
    entries: list[dict[str, Any]] = [
        {
            "name": "polls",
            "surface": "reportsMicroservice",
            "report_name": "pollsActivity",
            "filters": {"virtual_events": ["ve1"], "entries": ["1_a", "1_b"]},
            "timestamp_columns": ["answered_at"],
        },
        {
            "name": "reactions",
            "surface": "getCsvFromStringParams",
            "report_id": 4021,
            "params": {"from_date": "{from_unix}", "to_date": "{to_unix}", "virtualeventid": "{virtual_events}"},
            "pieces": "week",
            "excluded_fields": ["email"],
        },
        {
            "name": "users",
            "surface": "getUrlForReportAsCsv",
            "report_type": 13,
            "time_zone": "Asia/Kolkata",
            "columns": ["name", "count_plays"],
            "on_row_limit": "fail",
            "filters": {"categories": ["123"], "playback_contexts": ["ctx"]},
        },
    ]
    for entry in entries:
        report = parse_report(entry)

        assert parse_report(report.to_dict()) == report
    assert parse_report(entries[2]).on_row_limit is RowLimit.FAIL


def test_microservice_reports_default_to_date_and_filter_parameters() -> None:
    report = parse_report({"name": "polls", "surface": "reportsMicroservice", "report_name": "pollsActivity"})

    assert dict(report.params) == {
        "from_date_id": "{from_date}",
        "to_date_id": "{to_date}",
        "entries_ids": "{entries}",
        "virtual_event_ids": "{virtual_events}",
    }


BAD = [
    ({"nope": 1}, "weekly.nope"),
    ({"time_zone": "Mars/Olympus"}, "weekly.time_zone"),
    ({"microservice_poll_seconds": 901}, "weekly.microservice_poll_seconds"),
    ({"checkpoint_margin_seconds": 0}, "weekly.checkpoint_margin_seconds"),
    ({"reports": []}, "weekly.reports"),
    ({"partners": {"abc": {}}}, "weekly.partners.abc"),
    ({"partners": {"1": {"partners": {}}}}, "weekly.partners.1.partners"),
    ({"reports": [{"name": "Bad Name", "surface": "getTable", "report_type": 1}]}, "weekly.reports[0].name"),
    ({"reports": [{"name": "a", "surface": "getGraphs", "report_type": 1}]}, "weekly.reports[0].surface"),
    ({"reports": [{"name": "a", "surface": "getTable"}]}, "weekly.reports[0].report_type"),
    (
        {"reports": [{"name": "a", "surface": "getTable", "report_type": 1, "params": {"x": "1"}}]},
        "weekly.reports[0].params",
    ),
    (
        {"reports": [{"name": "a", "surface": "getCsvFromStringParams", "report_id": 6000, "order": "-x"}]},
        "weekly.reports[0].order",
    ),
    ({"reports": [{"name": "a", "surface": "getCsvFromStringParams", "report_id": 4021}]}, "weekly.reports[0].params"),
    (
        {"reports": [{"name": "a", "surface": "getCsvFromStringParams", "report_id": 1, "params": {"x": "{nope}"}}]},
        "weekly.reports[0].params.x",
    ),
    (
        # Only plain placeholders: no attribute access or format specs in a user-supplied template.
        {
            "reports": [
                {"name": "a", "surface": "getCsvFromStringParams", "report_id": 1, "params": {"x": "{from_unix.real}"}}
            ]
        },
        "weekly.reports[0].params.x",
    ),
    (
        {"reports": [{"name": "a", "surface": "getTable", "report_type": 1, "filters": {"entries": ["1_a|1_b"]}}]},
        "weekly.reports[0].filters.entries[0]",
    ),
    (
        {"reports": [{"name": "a", "surface": "getTable", "report_type": 1, "columns": ["x", "x"]}]},
        "weekly.reports[0].columns",
    ),
    (
        {
            "reports": [
                {"name": "a", "surface": "getTable", "report_type": 1},
                {"name": "a", "surface": "getTable", "report_type": 2},
            ]
        },
        "weekly.reports[1].name",
    ),
]


@pytest.mark.parametrize(("weekly", "setting"), BAD, ids=[setting for _, setting in BAD])
def test_invalid_settings_are_refused_with_the_path_of_the_setting(weekly: dict[str, Any], setting: str) -> None:
    # Top-level problems refuse the section; a partner's entry disables that partner (both listed by the checker).
    assert setting in [problem.path for problem in automation_problems(json.dumps({"weekly": weekly}))]


def test_week_over_week_rules_are_accepted_at_both_levels_and_validated() -> None:
    rules = [{"metric": "plays", "change_below_percent": -30}]
    config = parse_weekly_config({"week_over_week": rules, "partners": {"1234567": {"week_over_week": []}}})
    assert config.defaults.enabled

    broken = build_automation_config({"weekly": {"partners": {"1234567": {"week_over_week": [{"metric": "likes"}]}}}})
    assert [problem.path for problem in broken.problems] == ["weekly.partners.1234567.week_over_week[0].metric"]
    assert parse_weekly_config(broken.weekly).broken == {1234567}
