"""Vendor task tracking end to end: the simulator's REACH lifecycle notified through the real webhook to the worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kauto_local.simulator import TaskBehaviour
from product_stack import PARTNER_ID, ProductStack, captions_config, without_kaltura_backoff, worker_stack

pytestmark = pytest.mark.integration

PENDING_SECONDS, PROCESSING_SECONDS = 60, 300


@pytest.fixture(autouse=True)
def fresh_aws(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto keeps its state per process: moto_aws resets it, so every test creates a fresh stack.
    without_kaltura_backoff(monkeypatch)


@pytest.fixture
def stack() -> Iterator[ProductStack]:
    with worker_stack(captions_config()) as stack:
        yield stack


def order(stack: ProductStack, name: str = "Lecture", behaviour: TaskBehaviour | None = None) -> tuple[str, int]:
    entry = stack.sim.add_entry(PARTNER_ID, name=name, duration=300)
    if behaviour is not None:
        stack.sim.set_task_behaviour(entry.id, behaviour)
    stack.entry_ready(entry.id)
    stack.poller.drain()
    (task,) = [task for task in stack.tasks() if task.entry_id == entry.id]
    return entry.id, task.id


def task_row(stack: ProductStack, task_id: int) -> dict[str, Any]:
    row = stack.ledger(f"task#{PARTNER_ID}#{task_id}", "task")
    assert row is not None
    return row


def test_ready_records_the_caption_asset_and_closes_the_order(stack: ProductStack) -> None:
    entry_id, task_id = order(stack)
    stack.sim.clock.advance(PENDING_SECONDS + PROCESSING_SECONDS)

    stack.task_status(task_id)
    stack.poller.drain()

    (caption,) = stack.sim.caption_assets(entry_id)
    row = task_row(stack, task_id)
    order_row = stack.ledger(f"caption#{PARTNER_ID}#{entry_id}", f"item#{stack.catalog_item_id}")
    assert (row["state"], row["output_object_id"]) == ("ready", caption.id)
    assert order_row is not None
    assert (order_row["state"], order_row["caption_asset_id"], order_row["task_id"]) == ("done", caption.id, task_id)


def test_out_of_order_statuses_never_leave_the_final_status(stack: ProductStack) -> None:
    _, task_id = order(stack)
    envelopes = [stack.sim.dispatcher.vendor_task_envelope(task_id)]  # PENDING
    stack.sim.clock.advance(PENDING_SECONDS)
    envelopes.append(stack.sim.dispatcher.vendor_task_envelope(task_id))  # PROCESSING
    stack.sim.clock.advance(PROCESSING_SECONDS)
    envelopes.append(stack.sim.dispatcher.vendor_task_envelope(task_id))  # READY
    assert [e["object"]["status"] for e in envelopes] == [1, 3, 2]

    for envelope in reversed(envelopes):  # READY first, then the older ones, then READY again
        assert stack.deliver(envelope) == 200
    stack.task_status(task_id)
    report = stack.poller.drain()

    row = task_row(stack, task_id)
    assert report.failed == 0
    assert (row["state"], row["status"]) == ("ready", 2)
    assert row["updated_at"] == envelopes[-1]["object"]["updatedAt"]


def test_error_task_alerts_once_with_what_a_person_needs_and_no_personal_data(stack: ProductStack) -> None:
    behaviour = TaskBehaviour(result="error", err_description="Audio track missing")
    entry_id, task_id = order(stack, name="Onboarding for new.hire@example.com", behaviour=behaviour)
    stack.sim.clock.advance(PENDING_SECONDS + PROCESSING_SECONDS)

    stack.task_status(task_id, times=3)
    stack.poller.drain()

    (alert,) = stack.alerts()
    assert alert["alert"] == "reach_task_error"
    assert alert["partner_id"] == PARTNER_ID
    assert alert["details"] == {
        "task_id": task_id,
        "status": "ERROR",
        "entry_id": entry_id,
        "entry_name": "Onboarding for [redacted]",
        "catalog_item_id": stack.catalog_item_id,
        "catalog_item_name": "English machine captions",
        "err_description": "Audio track missing",
    }
    assert "example.com" not in str(alert)
    assert task_row(stack, task_id)["state"] == "error"


def test_the_whole_chain_from_upload_to_caption_through_subscribed_webhooks(stack: ProductStack) -> None:
    stack.sim.subscribe(stack.webhook_url, hash_algorithm="sha256")
    entry = stack.sim.add_entry(PARTNER_ID, name="Keynote", duration=900, status=1, ready_in=120)

    stack.sim.clock.advance(120)  # READY: Kaltura notifies the webhook
    stack.poller.drain()
    stack.sim.clock.advance(PENDING_SECONDS + PROCESSING_SECONDS)  # the task runs; each status is notified
    stack.poller.drain()

    (task,) = stack.tasks()
    (caption,) = stack.sim.caption_assets(entry.id)
    order_row = stack.ledger(f"caption#{PARTNER_ID}#{entry.id}", f"item#{stack.catalog_item_id}")
    assert task.entry_id == entry.id
    assert order_row is not None and (order_row["state"], order_row["caption_asset_id"]) == ("done", caption.id)
    assert stack.events_left() == 0
