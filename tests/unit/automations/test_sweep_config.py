"""The sweep and broken configuration entries: a partner disabled by either document is skipped and alerted once a
day (naming the partner and the setting paths, never a value); the other partners are swept as usual."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from kauto.automations.sweep import run_sweep
from kauto.validation import Problem
from room_fakes import NOW, PARTNER_ID, FakeClock, FakeKaltura, make_deps

GOOD, BROKEN_HERE, BROKEN_IN_SECRET = 1111111, PARTNER_ID, 3333333


def published(deps: Any) -> list[dict[str, Any]]:
    return [json.loads(alert.message) for alert in deps.alerts.published]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_the_sweep_skips_broken_partners_and_alerts_once_a_day_naming_the_settings(clock: FakeClock) -> None:
    config = {
        "partners": {
            str(GOOD): {"captions": {"enabled": False}},
            str(BROKEN_HERE): {"thresholds": {"session_engagement_rate_below": 30}},
            str(BROKEN_IN_SECRET): {"sweep": {}},
        }
    }
    secret_problems = {"3333333": (Problem("partners.3333333.admin_secret", "required: a non-empty string"),)}
    deps = dataclasses.replace(make_deps(FakeKaltura(), clock, config), secret_problems=lambda: secret_problems)

    report = run_sweep(deps, int(NOW))
    clock.advance(900)
    run_sweep(deps, int(NOW) + 900)  # the next sweep: still broken, no second alert the same day

    assert [partner.partner_id for partner in report.partners] == [GOOD]
    alerts = published(deps)
    assert [(alert["alert"], alert["partner_id"], alert["details"]) for alert in alerts] == [
        (
            "partner_config_invalid",
            BROKEN_IN_SECRET,
            {"document": "partner secret", "settings": ["partners.3333333.admin_secret"]},
        ),
        (
            "partner_config_invalid",
            BROKEN_HERE,
            {
                "document": "automation config",
                "settings": [f"partners.{BROKEN_HERE}.thresholds.session_engagement_rate_below"],
            },
        ),
    ]
    assert "30" not in alerts[1]["summary"]

    clock.advance(86400)
    run_sweep(deps, int(NOW) + 86400 + 900)
    assert len(published(deps)) == 4  # a new day: alerted again
