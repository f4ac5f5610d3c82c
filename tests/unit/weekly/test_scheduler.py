"""The weekly fan-out: schedule input, which partners and weeks, one job message per report, failure isolation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kauto.aws.ledger import LedgerUnavailableError
from kauto.weekly.messages import JobMessage
from kauto.weekly.scheduler import (
    ScheduleRequest,
    ScheduleRequestError,
    WeeklySchedulingError,
    schedule_runs,
)
from weekly_fakes import PARTNER_ID, harness

OTHER_PARTNER = 7654321
MONDAY_0630_UTC = dt.datetime(2026, 3, 9, 6, 30, tzinfo=dt.UTC).timestamp()


def test_an_empty_input_means_every_configured_partner_and_the_previous_week() -> None:
    assert ScheduleRequest.from_event({}) == ScheduleRequest()
    assert ScheduleRequest.from_event(None) == ScheduleRequest()


def test_input_names_partners_a_week_and_force() -> None:
    request = ScheduleRequest.from_event({"partner_id": ["123", 456, 123], "week": "2026-W53", "force": True})

    assert request == ScheduleRequest(partner_ids=(123, 456), week="2026-W53", force=True)
    assert ScheduleRequest.from_event({"partner_id": 9}).partner_ids == (9,)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"partners": [1]}, "partners"),
        ({"week": "2025-W53"}, "week"),  # 2025 has 52 ISO weeks
        ({"week": "2026-10"}, "week"),
        ({"partner_id": 0}, "partner_id"),
        ({"partner_id": []}, "partner_id"),
        ({"partner_id": True}, "partner_id"),
        ({"force": "yes"}, "force"),
        (["not", "an", "object"], "event"),
    ],
)
def test_malformed_input_is_refused_naming_the_key(event: Any, field: str) -> None:
    with pytest.raises(ScheduleRequestError) as raised:
        ScheduleRequest.from_event(event)

    assert raised.value.field == field


def test_each_configured_partner_gets_its_previous_week_in_its_own_time_zone() -> None:
    h = harness(
        {"partners": {str(OTHER_PARTNER): {"time_zone": "America/Los_Angeles"}}},
        partners={str(PARTNER_ID): {}},
    )
    h.clock.now = MONDAY_0630_UTC

    report = schedule_runs(ScheduleRequest(), h.deps.run, trigger="t")

    started = {(run.partner_id, run.week, run.status.value, run.jobs_sent) for run in report.runs}
    # Monday 06:30 UTC is still Sunday in Los Angeles.
    assert started == {(PARTNER_ID, "2026-W10", "started", 9), (OTHER_PARTNER, "2026-W09", "started", 9)}
    sent = [queued.message for queued in h.jobs.take()]
    assert len(sent) == 18 and all(isinstance(message, JobMessage) for message in sent)
    assert report.totals() == {
        "partners": 2,
        "failed": 0,
        "jobs": 18,
        "started": 2,
        "duplicate": 0,
        "fan_out_resumed": 0,
        "restarted": 0,
        "disabled": 0,
    }


def test_running_the_schedule_twice_starts_nothing_the_second_time() -> None:
    h = harness(partners={str(PARTNER_ID): {}})
    h.clock.now = MONDAY_0630_UTC

    schedule_runs(ScheduleRequest(), h.deps.run, trigger="first")
    h.jobs.take()
    again = schedule_runs(ScheduleRequest(), h.deps.run, trigger="retry")

    assert [run.status.value for run in again.runs] == ["duplicate"]
    assert h.jobs.take() == []


class PartnerOutageLedger:
    """A ledger that fails every call for one partner's run row (the other partners work)."""

    def __init__(self, inner: Any, partner_id: int) -> None:
        self._inner = inner
        self._pk = f"weekly#{partner_id}"

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(pk: str, *args: Any, **kwargs: Any) -> Any:
            if pk == self._pk:
                raise LedgerUnavailableError("dynamodb", name, "throttled")
            return method(pk, *args, **kwargs)

        return call


def test_one_partner_failing_does_not_stop_the_others_and_is_raised_at_the_end() -> None:
    h = harness()
    h.clock.now = MONDAY_0630_UTC
    run_deps = h.deps.run
    flaky = type(run_deps)(
        **{
            **{name: getattr(run_deps, name) for name in type(run_deps).__dataclass_fields__},
            "ledger": PartnerOutageLedger(run_deps.ledger, PARTNER_ID),
        }
    )

    with pytest.raises(WeeklySchedulingError) as raised:
        schedule_runs(ScheduleRequest(partner_ids=(PARTNER_ID, OTHER_PARTNER)), flaky, trigger="t")

    report = raised.value.report
    assert report.failures == {PARTNER_ID: "LedgerUnavailableError"}
    assert [(run.partner_id, run.status.value) for run in report.runs] == [(OTHER_PARTNER, "started")]
    assert {m.partner_id for m in (q.message for q in h.jobs.take())} == {OTHER_PARTNER}


def test_an_explicit_week_and_force_restart_an_existing_run() -> None:
    h = harness(partners={str(PARTNER_ID): {}})
    first = schedule_runs(ScheduleRequest(week="2026-W01"), h.deps.run, trigger="t").runs[0]

    forced = schedule_runs(ScheduleRequest(week="2026-W01", force=True), h.deps.run, trigger="backfill").runs[0]

    assert (first.week, forced.week) == ("2026-W01", "2026-W01")
    assert forced.status.value == "restarted" and forced.run_id != first.run_id
