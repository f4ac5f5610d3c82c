"""REACH captions end to end: Kaltura (simulator) -> webhook -> EventsQueue -> poller -> worker -> Kaltura, on the
resources template.yaml creates in moto server mode."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kauto.aws.ledger import DynamoLedger, LedgerUnavailableError
from product_stack import PARTNER_ID, ProductStack, captions_config, without_kaltura_backoff, worker_stack

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_backoff_sleeps(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto keeps its state per process: moto_aws resets it, so every test creates a fresh stack.
    without_kaltura_backoff(monkeypatch)


@pytest.fixture
def stack() -> Iterator[ProductStack]:
    with worker_stack(captions_config()) as stack:
        yield stack


def caption_row(stack: ProductStack, entry_id: str) -> dict[str, Any] | None:
    return stack.ledger(f"caption#{PARTNER_ID}#{entry_id}", f"item#{stack.catalog_item_id}")


def decisions(stack: ProductStack, entry_id: str) -> list[dict[str, Any]]:
    rows = stack.ledger_items(f"caption#{PARTNER_ID}#{entry_id}")
    return [row for (_, sk), row in rows.items() if sk.startswith("decision#")]


def test_entry_ready_three_times_orders_one_reach_task(stack: ProductStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Lecture 1", duration=300)

    stack.entry_ready(entry.id, times=3)
    report = stack.poller.drain()

    (task,) = stack.tasks()
    row = caption_row(stack, entry.id)
    assert report.empty and report.failed == 0 and report.succeeded == 3
    assert (task.entry_id, task.catalog_item_id) == (entry.id, stack.catalog_item_id)
    assert row is not None and (row["state"], row["task_id"]) == ("ordered", task.id)
    assert [d["outcome"] for d in decisions(stack, entry.id)] == ["ordered"]
    assert stack.adds() == 1


@pytest.mark.usefixtures("atomic_moto_writes")
def test_concurrent_deliveries_in_parallel_workers_order_one_task(stack: ProductStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Lecture 2", duration=300)
    stack.entry_ready(entry.id, times=3)
    messages = [stack.poller.receive() for _ in range(3)]
    while sum(len(batch) for batch in messages) < 3:  # moto may hand all three to the first receive
        messages.append(stack.poller.receive())
    batches = [batch for batch in messages if batch]
    # One record per worker, all at once: split whatever the receives returned.
    singles = [[message] for batch in batches for message in batch]
    barrier = threading.Barrier(len(singles))
    results: list[Any] = []

    def worker(batch: list[dict[str, Any]]) -> None:
        barrier.wait()
        results.append(stack.poller.invoke(batch))

    threads = [threading.Thread(target=worker, args=(batch,)) for batch in singles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    retried = stack.poller.drain()  # whoever found the order in flight comes back

    assert len(stack.tasks()) == 1
    assert retried.empty
    assert caption_row(stack, entry.id)["state"] == "ordered"  # type: ignore[index]


def test_dry_run_orders_nothing_and_records_the_decision() -> None:
    with worker_stack(captions_config(dry_run=True)) as stack:
        entry = stack.sim.add_entry(PARTNER_ID, name="Lecture 3", duration=300)

        stack.entry_ready(entry.id)
        stack.poller.drain()

        (decision,) = decisions(stack, entry.id)
        assert stack.tasks() == []
        assert stack.adds() == 0
        assert (decision["outcome"], decision["catalog_item_id"], decision["dry_run"]) == (
            "dry_run",
            stack.catalog_item_id,
            True,
        )


def test_credit_exhausted_alerts_once_for_many_entries_and_the_records_succeed() -> None:
    with worker_stack(captions_config(), credit=0.5) as stack:
        entries = [stack.sim.add_entry(PARTNER_ID, name=f"Talk {n}", duration=600) for n in range(4)]
        for entry in entries:
            stack.entry_ready(entry.id)

        report = stack.poller.drain()

        (alert,) = stack.alerts()
        assert report.failed == 0 and report.succeeded == 4  # not retried
        assert stack.tasks() == []
        assert alert["alert"] == "reach_credit"
        assert alert["details"]["code"] == "EXCEEDED_MAX_CREDIT_ALLOWED"
        assert all([d["outcome"] for d in decisions(stack, e.id)] == ["credit"] for e in entries)


def test_entry_still_converting_retries_later_and_is_ordered_once_ready(stack: ProductStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Upload", duration=300, status=1, ready_in=600)
    # A stale (or premature) READY notification: the entry is still converting when the worker re-reads it.
    envelope = stack.sim.dispatcher.entry_ready_envelope(entry.id)
    envelope["object"]["status"] = 2
    assert stack.deliver(envelope) == 200

    first = stack.poller.poll_once()
    stack.sim.clock.advance(600)  # READY now (the simulator would also notify again; the retry gets there first)
    second = stack.poller.poll_once()

    assert first is not None and len(first.failed) == 1
    assert second is not None and second.failed == ()
    assert len(stack.tasks()) == 1


def test_worker_that_loses_the_add_response_does_not_order_again(stack: ProductStack) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Town hall", duration=300)
    # entryVendorTask.add runs in Kaltura, then every answer is lost (all of the client's attempts).
    lost = stack.sim.faults.http_error("reach_entryvendortask/add", status=503, when="after", count=4)
    stack.entry_ready(entry.id)

    first = stack.poller.poll_once()
    row_after_crash = caption_row(stack, entry.id)
    retry = stack.poller.poll_once()

    (task,) = stack.tasks()
    assert lost.fired == 4
    assert first is not None and len(first.failed) == 1
    assert row_after_crash is not None and row_after_crash["state"] == "claimed"
    assert retry is not None and retry.failed == ()
    assert caption_row(stack, entry.id)["task_id"] == task.id  # type: ignore[index]


def test_worker_killed_between_add_and_recording_does_not_order_again(
    stack: ProductStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = stack.sim.add_entry(PARTNER_ID, name="Board meeting", duration=300)
    original_update = DynamoLedger.update
    killed = []

    def dies_once(self: DynamoLedger, pk: str, sk: str, attrs: Any, **kwargs: Any) -> Any:
        if pk.startswith("caption#") and attrs.get("state") == "ordered" and not killed:
            killed.append(pk)
            raise LedgerUnavailableError("dynamodb", "UpdateItem", "worker killed")
        return original_update(self, pk, sk, attrs, **kwargs)

    monkeypatch.setattr(DynamoLedger, "update", dies_once)
    stack.entry_ready(entry.id)

    report = stack.poller.drain()

    (task,) = stack.tasks()
    assert killed and report.failed == 1 and report.empty
    assert stack.adds() == 1
    assert caption_row(stack, entry.id)["task_id"] == task.id  # type: ignore[index]


def test_kaltura_outage_mid_batch_retries_only_the_failed_records(stack: ProductStack) -> None:
    entries = [stack.sim.add_entry(PARTNER_ID, name=f"Course {n}", duration=300) for n in range(4)]
    for entry in entries:
        stack.entry_ready(entry.id)
    # Kaltura answers 503 to every attempt of the first two records' entry reads, then recovers.
    stack.sim.faults.http_error("baseentry/get", status=503, count=8)

    first = stack.poller.poll_once()
    rest = stack.poller.drain()

    assert first is not None and len(first.message_ids) == 4
    assert len(first.failed) == 2
    assert rest.succeeded == 2 and rest.failed == 0 and rest.empty
    assert sorted(task.entry_id for task in stack.tasks()) == sorted(entry.id for entry in entries)
    assert stack.adds() == 4


def test_poison_message_reaches_the_dead_letter_queue_and_the_batch_is_unaffected(stack: ProductStack) -> None:
    entries = [stack.sim.add_entry(PARTNER_ID, name=f"Clip {n}", duration=300) for n in range(2)]
    stack.send_raw('{"kind": "entry_ready", "truncated')
    for entry in entries:
        stack.entry_ready(entry.id)

    report = stack.poller.drain()

    max_receive = stack.poller.source.max_receive_count
    assert max_receive == 5
    assert report.empty
    assert report.failed == max_receive  # tried maxReceiveCount times, then moved on the next receive
    assert report.succeeded == 2
    assert stack.dead_letters() == ['{"kind": "entry_ready", "truncated']
    assert sorted(task.entry_id for task in stack.tasks()) == sorted(entry.id for entry in entries)
