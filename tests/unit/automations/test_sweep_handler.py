"""The sweep handler on fakes: it sweeps with the invocation's remaining time, answers the totals, and lets a failed
part propagate so that the schedule's retry policy and dead-letter queue see it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT, FakeLambdaContext, load_handler
from kauto.automations.sweep import MIN_SECONDS_LEFT, SweepError
from kauto.kaltura import KalturaRateLimitedError
from room_fakes import NOW, PARTNER_ID, FakeClock, FakeKaltura, make_deps, partner_config

SAMPLE_EVENT = Path(REPO_ROOT, "events", "sweep", "schedule.event.json")


@pytest.fixture
def kaltura() -> FakeKaltura:
    fake = FakeKaltura()
    fake.add_entry("0_new", updatedAt=NOW - 600)
    return fake


def handler_with(kaltura: FakeKaltura, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    config = partner_config(captions={"enabled": True, "catalog_item_id": 11})
    deps = make_deps(kaltura, FakeClock(), config)
    module = load_handler("sweep")
    monkeypatch.setattr(module, "build_deps", lambda context: deps)
    return module, deps


def test_the_scheduled_invocation_sweeps_and_answers_the_totals(
    kaltura: FakeKaltura, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, deps = handler_with(kaltura, monkeypatch)

    totals = module.lambda_handler(json.loads(SAMPLE_EVENT.read_text()), FakeLambdaContext(remaining_millis=290_000))

    assert totals == {"partners": 1, "found": 1, "enqueued": 1, "checked": 0, "incomplete_parts": 0}
    assert [queued.event.entry_id for queued in deps.events.sent] == ["0_new"]
    assert deps.ledger.get(f"sweep#{PARTNER_ID}", "entries")["watermark"] == NOW


def test_an_invocation_with_too_little_time_left_starts_nothing(
    kaltura: FakeKaltura, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, deps = handler_with(kaltura, monkeypatch)

    totals = module.lambda_handler({}, FakeLambdaContext(remaining_millis=int(MIN_SECONDS_LEFT * 1000) - 1))

    assert totals["found"] == 0 and deps.events.sent == []


def test_a_failed_part_fails_the_invocation(kaltura: FakeKaltura, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(report_id: int, params: Any) -> bytes:
        raise KalturaRateLimitedError("ACTION_BLOCKED", "blocked")

    kaltura.render = refused  # type: ignore[method-assign]
    module, deps = handler_with(kaltura, monkeypatch)

    with pytest.raises(SweepError):
        module.lambda_handler({}, FakeLambdaContext(remaining_millis=290_000))
    assert [queued.event.entry_id for queued in deps.events.sent] == ["0_new"]  # the other parts still ran
