"""Runs in the ledger: ISO week windows, one run per (partner, week), steps and leases, counters, completion."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from kauto.errors import QueueUnavailableError
from kauto.weekly.messages import DigestRequest, JobMessage, WeeklyMessage
from kauto.weekly.runs import (
    JOB_WAITING,
    LeaseStatus,
    RunStartStatus,
    continue_job,
    get_run,
    job_key,
    lease_job,
    previous_week,
    record_job_finished,
    start_run,
    week_window,
)
from kauto_local.fakes import InMemoryJobQueue
from weekly_fakes import PARTNER_ID, WEEK, Harness, harness

TWO_REPORTS = {
    "reports": [
        {"name": "top", "surface": "getTable", "report_type": 1},
        {"name": "geo", "surface": "getTable", "report_type": 36},
    ]
}


def berlin(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()


def test_week_window_is_monday_to_monday_local_and_follows_the_clock_change() -> None:
    window = week_window("2026-W13", "Europe/Berlin")  # clocks go forward on Sunday 2026-03-29

    assert dt.datetime.fromtimestamp(window.start, tz=dt.UTC).isoformat() == "2026-03-22T23:00:00+00:00"
    assert dt.datetime.fromtimestamp(window.end, tz=dt.UTC).isoformat() == "2026-03-29T22:00:00+00:00"
    lengths = [b - a for a, b in zip(window.days, window.days[1:], strict=False)]
    assert lengths == [86400] * 6 + [82800]
    assert window.offset_minutes(window.start) == -60
    assert window.offset_minutes(window.end) == -120


@pytest.mark.parametrize(
    ("now", "zone", "week"),
    [
        (berlin(2026, 3, 9, 6, 0), "Europe/Berlin", "2026-W10"),
        (berlin(2027, 1, 4, 6, 0), "Europe/Berlin", "2026-W53"),  # 2026 is a long ISO year
        (berlin(2026, 1, 5, 6, 0), "Europe/Berlin", "2026-W01"),
        # 06:00 on Monday in Berlin is still Sunday night in Los Angeles: a week earlier there.
        (berlin(2026, 3, 9, 6, 0), "America/Los_Angeles", "2026-W09"),
    ],
)
def test_previous_week_is_taken_in_the_partner_time_zone(now: float, zone: str, week: str) -> None:
    assert previous_week(now, zone) == week


def messages(h: Harness) -> list[WeeklyMessage]:
    return [queued.message for queued in h.jobs.take()]


def test_a_duplicate_trigger_produces_one_run_and_sends_nothing() -> None:
    h = harness(TWO_REPORTS)

    first = start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a")
    sent = messages(h)
    second = start_run(PARTNER_ID, WEEK, h.deps.run, trigger="b")

    assert (first.status, first.jobs_sent) == (RunStartStatus.STARTED, 2)
    assert {m.report for m in sent if isinstance(m, JobMessage)} == {"top", "geo"}
    assert (second.status, second.run_id, second.jobs_sent) == (RunStartStatus.DUPLICATE, first.run_id, 0)
    assert messages(h) == []


class FailingQueue(InMemoryJobQueue):
    """Accepts ``accept`` messages, then fails like an SQS outage."""

    def __init__(self, accept: int) -> None:
        super().__init__()
        self.accept = accept

    def send(self, message: WeeklyMessage, delay_seconds: int = 0) -> str:
        if self.accept <= 0:
            raise QueueUnavailableError("sqs", "SendMessage", "ServiceUnavailable")
        self.accept -= 1
        return super().send(message, delay_seconds)


def test_a_fan_out_cut_short_is_completed_by_the_next_trigger_and_the_week_finishes_once() -> None:
    h = harness(TWO_REPORTS)
    broken = FailingQueue(accept=1)
    run_deps = h.deps.run
    with pytest.raises(QueueUnavailableError):
        start_run(PARTNER_ID, WEEK, type(run_deps)(**{**_fields(run_deps), "jobs": broken}), trigger="a")

    retry = start_run(PARTNER_ID, WEEK, run_deps, trigger="a-retry")
    for queued in broken.take():  # the message that got out before the outage is delivered too
        h.jobs.send(queued.message)

    assert (retry.status, retry.jobs_sent) == (RunStartStatus.FAN_OUT_RESUMED, 2)
    outcomes = h.deliver()
    assert outcomes == ["done", "done", "already_finished"]
    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None and (run.jobs_done, run.state) == (2, "complete")
    assert len(h.digests) == 1


def test_force_starts_a_new_run_and_the_old_runs_messages_are_dropped() -> None:
    h = harness(TWO_REPORTS)
    first = start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a")
    old = messages(h)

    forced = start_run(PARTNER_ID, WEEK, h.deps.run, trigger="backfill", force=True)

    assert forced.status is RunStartStatus.RESTARTED and forced.run_id != first.run_id
    assert [h.send(m).value for m in old if isinstance(m, JobMessage)] == ["stale", "stale"]
    assert sorted(h.deliver()) == ["done", "done"]
    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None and (run.run_id, run.jobs_done) == (forced.run_id, 2)


def test_a_disabled_partner_gets_no_run() -> None:
    h = harness({"partners": {str(PARTNER_ID): {"enabled": False}}})

    assert start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a").status is RunStartStatus.DISABLED
    assert get_run(PARTNER_ID, WEEK, h.deps) is None and messages(h) == []


def test_counting_a_finished_job_twice_counts_it_once_and_completes_once() -> None:
    h = harness(TWO_REPORTS)
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a")
    top, geo = (m for m in messages(h) if isinstance(m, JobMessage))
    top_job = lease_job(top, h.deps).job
    geo_job = lease_job(geo, h.deps).job
    assert top_job is not None and geo_job is not None

    record_job_finished(top_job, True, h.deps)
    record_job_finished(top_job, True, h.deps)
    record_job_finished(geo_job, False, h.deps)
    record_job_finished(geo_job, False, h.deps)

    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None
    assert (run.jobs_done, run.jobs_failed, sorted(run.finished), run.state) == (1, 1, ["geo", "top"], "complete")
    assert [m for m in messages(h) if isinstance(m, DigestRequest)] == [DigestRequest(PARTNER_ID, WEEK)]


def test_a_step_whose_next_message_was_lost_is_resent_by_the_redelivered_message() -> None:
    h = harness({"reports": [TWO_REPORTS["reports"][0]]})
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a")
    (first,) = messages(h)
    assert isinstance(first, JobMessage)
    lease = lease_job(first, h.deps)
    assert lease.job is not None
    broken_deps = type(h.deps)(
        type(h.deps.run)(**{**_fields(h.deps.run), "jobs": FailingQueue(accept=0)}),
        h.store,
        h.alerts,
        kaltura=h.deps.kaltura,
        time_left=h.deps.time_left,
    )
    with pytest.raises(QueueUnavailableError):  # the row moved to step 1, its message never left
        continue_job(lease.job, lease.token, broken_deps, continuation={"k": 1}, delay_seconds=60, waiting=True)

    assert lease_job(first, h.deps).status is LeaseStatus.STALE  # SQS redelivers step 0 ...
    (resent,) = messages(h)  # ... which sends step 1 again
    assert resent == JobMessage(PARTNER_ID, WEEK, first.run_id, "top", 1)
    assert lease_job(first, h.deps).status is LeaseStatus.STALE
    assert messages(h) == []  # once sent, it is not sent again
    row = h.ledger.get(*job_key(PARTNER_ID, WEEK, first.run_id, "top"))
    assert row is not None and (row["state"], row["continuation"]) == (JOB_WAITING, {"k": 1})


def test_a_live_lease_turns_away_a_copy_and_an_expired_one_is_taken_over() -> None:
    h = harness({"reports": [TWO_REPORTS["reports"][0]]})
    h.time_left[0] = 100.0
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a")
    (message,) = messages(h)
    assert isinstance(message, JobMessage)

    owner = lease_job(message, h.deps)
    copy = lease_job(message, h.deps)
    h.clock.advance(100 + 61)
    takeover = lease_job(message, h.deps)

    assert owner.status is LeaseStatus.LEASED
    assert copy.status is LeaseStatus.BUSY
    assert takeover.status is LeaseStatus.LEASED and takeover.token != owner.token


def test_the_manifest_lists_the_reports_in_their_configured_order_with_rows_and_hashes() -> None:
    h = harness(TWO_REPORTS)
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="a")

    h.deliver()

    manifest = json.loads(h.store.objects[f"weekly/partner_id={PARTNER_ID}/week={WEEK}/manifest.json"])
    assert [(f["report"], f["rows"]) for f in manifest["files"]] == [("top", 20), ("geo", 20)]
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256(h.store.objects[entry["key"]]).hexdigest()
    assert manifest["scope"]["week"] == WEEK and "failed_reports" not in manifest["scope"]


def _fields(deps: Any) -> dict[str, Any]:
    return {name: getattr(deps, name) for name in type(deps).__dataclass_fields__}
