"""The sweep end to end: SweepFunction finds in the simulator what no webhook reported (an ended session, an entry
ready without a caption decision, a vendor task that failed), enqueues it, the worker acts on it through the same
paths as webhooks; after webhooks, a sweep acts on nothing twice; watermarks advance and bounded runs resume."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kauto_local.simulator import TaskBehaviour
from room_stack import PARTNER_ID, AutomationStack, automation_stack

pytestmark = pytest.mark.integration

CATALOG_ITEM_ID = 501
# Kaltura's clock starts this far behind the wall clock: REACH tasks can progress on it without getting ahead of the
# automations' clock, while staying inside the sweep's overlap (Kaltura's timestamps are assumed in sync with AWS).
LAG = 600


def config(**sweep: Any) -> dict[str, Any]:
    return {
        "partners": {
            str(PARTNER_ID): {
                "captions": {"enabled": True, "catalog_item_id": CATALOG_ITEM_ID},
                "session_reports": {"window_padding_seconds": 60},
                "sweep": {"lookback_seconds": 86400, "overlap_seconds": 900, "max_slice_results": 100, **sweep},
            }
        }
    }


def prepare(stack: AutomationStack, behaviour: TaskBehaviour | None = None) -> None:
    stack.sim.add_catalog_item(
        PARTNER_ID,
        item_id=CATALOG_ITEM_ID,
        behaviour=behaviour or TaskBehaviour(pending_seconds=60, processing_seconds=120),
    )
    stack.sim.add_reach_profile(PARTNER_ID, credit=1000, default_for=[CATALOG_ITEM_ID])


@pytest.fixture
def stack(moto_aws: str) -> Iterator[AutomationStack]:
    # moto keeps its state per process: moto_aws resets it, so every test gets a fresh stack.
    with automation_stack(config(), simulator_lag_seconds=LAG) as running:
        prepare(running)
        yield running


def add_session(stack: AutomationStack) -> Any:
    now = int(time.time())
    return stack.sim.add_room_session(PARTNER_ID, start=now - 3000, end=now - 600, attendees=4, announce=False)


def report_pulls(stack: AutomationStack) -> list[str]:
    return [str(call.params.get("id")) for call in stack.sim.calls_to("report", "getCsvFromStringParams")]


def test_the_sweep_finds_what_no_webhook_reported_and_the_worker_acts_on_it(moto_aws: str) -> None:
    with automation_stack(config(), simulator_lag_seconds=LAG) as stack:
        prepare(stack, TaskBehaviour(result="error", err_description="no audio", pending_seconds=60))
        entry = stack.sim.add_entry(PARTNER_ID, name="Lecture 1", duration=300)
        session = add_session(stack)

        totals = stack.run_sweep()
        bodies = stack.queued()
        run = stack.run_worker()

        assert totals["enqueued"] == 2
        assert sorted((body["kind"], body["body_format"]) for body in bodies) == [
            ("entry_ready", "sweep"),
            ("session_ended", "sweep"),
        ]
        assert run.failed == []
        (task,) = stack.sim.tasks(PARTNER_ID)
        assert task.entry_id == entry.id
        row = stack.ledger(f"session#{PARTNER_ID}#{session.room_entry_id}", session.cue_point_id)
        assert row is not None and row["state"] == "done"

        # The vendor fails the task; Kaltura has no HTTP template for that (docs/kaltura.md#partner-configuration): only
        # the sweep sees it.
        stack.sim.clock.advance(LAG)
        stack.run_sweep()
        stack.run_worker()
        stack.run_sweep()
        stack.run_worker()

        task_alerts = [alert for alert in stack.alerts() if alert["alert"].startswith("reach_task")]
        assert [(alert["alert"], alert["details"]["task_id"]) for alert in task_alerts] == [
            ("reach_task_error", task.id)
        ]
        assert task_alerts[0]["details"]["err_description"] == "no audio"
        task_row = stack.ledger(f"task#{PARTNER_ID}#{task.id}", "task")
        assert task_row is not None and task_row["state"] == "error"
        assert len(stack.sim.calls_to("reach_entryvendortask", "add")) == 1


def test_a_sweep_after_webhooks_acts_on_nothing_twice(stack: AutomationStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Lecture 2", duration=300)
    session = add_session(stack)
    stack.deliver(stack.sim.dispatcher.entry_ready_envelope(entry.id))
    stack.deliver(stack.sim.dispatcher.session_ended_envelope(session.cue_point_id))
    assert stack.run_worker().failed == []
    (task,) = stack.sim.tasks(PARTNER_ID)
    first_alerts = stack.alerts()
    stack.sim.clear_calls()

    totals = stack.run_sweep()
    after_sweep = stack.run_worker()

    assert totals["enqueued"] == 0 and after_sweep.handled == []
    assert stack.sim.calls_to("reach_entryvendortask", "add") == []
    assert report_pulls(stack) == ["6000"]  # the sweep's look at report 6000, no pull of the session's reports
    assert stack.alerts() == []

    # The task finishes: the READY webhook closes it, and the next sweep changes nothing.
    stack.sim.subscribe(stack.webhook_url, kinds=("vendor_task_status",), hash_algorithm="sha256")
    stack.sim.clock.advance(LAG)
    assert stack.run_worker().failed == []
    stack.sim.clear_calls()
    stack.run_sweep()
    stack.run_worker()

    assert stack.sim.calls_to("reach_entryvendortask", "add") == []
    assert report_pulls(stack) == ["6000"]
    assert stack.alerts() == [] and first_alerts == []
    caption = stack.ledger(f"caption#{PARTNER_ID}#{entry.id}", f"item#{CATALOG_ITEM_ID}")
    assert caption is not None and caption["state"] == "done" and caption["task_id"] == task.id


def test_watermarks_advance_overlap_and_a_bounded_run_resumes(moto_aws: str) -> None:
    with automation_stack(config(max_slice_results=2), simulator_lag_seconds=LAG) as stack:
        prepare(stack)
        entries = []
        for index in range(5):
            entries.append(stack.sim.add_entry(PARTNER_ID, name=f"Lecture {index}", duration=300))
            stack.sim.clock.advance(10)

        sent: list[str] = []
        for _ in range(3):
            stack.run_sweep()
            sent += [body["entry_id"] for body in stack.queued() if body["kind"] == "entry_ready"]
            stack.run_worker()
        watermark = stack.ledger(f"sweep#{PARTNER_ID}", "entries")
        fourth = stack.run_sweep()

        assert sent == [entry.id for entry in entries]
        assert len(stack.sim.tasks(PARTNER_ID)) == 5
        assert watermark is not None and watermark["complete"] is True
        assert abs(watermark["watermark"] - time.time()) < 120
        assert fourth["enqueued"] == 0
