"""The worker and the local SQS poller on the template's resources: what is retried, parked or dropped."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest
from kauto.models import BodyFormat, EventKind, KalturaEvent
from kauto_local.poller import SqsPoller
from product_stack import PARTNER_ID, ProductStack, captions_config, without_kaltura_backoff, worker_stack

pytestmark = pytest.mark.integration

OTHER_EVENT = KalturaEvent(
    kind=EventKind.OTHER,
    partner_id=PARTNER_ID,
    dedupe_key=f"{PARTNER_ID}:job:1",
    job_id=1,
    template_id=None,
    template_system_name=None,
    event_type=3,
    event_object_type=1,
    object_type="KalturaMediaEntry",
    object_id="1_other",
    entry_id="1_other",
    status="4",
    fields={},
    body_format=BodyFormat.OBJECT_JSON,
    received_at=int(time.time()),
)


@pytest.fixture(autouse=True)
def fresh_aws(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto keeps its state per process: moto_aws resets it, so every test creates a fresh stack.
    without_kaltura_backoff(monkeypatch)


@pytest.fixture
def stack() -> Iterator[ProductStack]:
    with worker_stack(captions_config()) as stack:
        yield stack


def test_events_no_automation_handles_are_consumed(stack: ProductStack) -> None:
    stack.send_raw(OTHER_EVENT.to_json())

    report = stack.poller.drain()

    assert (report.succeeded, report.failed, report.empty) == (1, 0, True)
    assert stack.sim.calls == []
    assert stack.dead_letters() == []


def test_a_partner_missing_from_the_secret_is_parked_in_the_dead_letter_queue(stack: ProductStack) -> None:
    # A configuration error: retrying cannot help until an operator adds the partner, so the message waits in the
    # dead-letter queue (whose alarm fires) instead of being dropped; the partner's other events are unaffected.
    entry = stack.sim.add_entry(PARTNER_ID, name="Lecture", duration=300)
    stranger = dataclasses.replace(OTHER_EVENT, kind=EventKind.ENTRY_READY, partner_id=7654321, status="2")
    stack.send_raw(stranger.to_json())
    stack.entry_ready(entry.id)

    report = stack.poller.drain()

    (parked,) = stack.dead_letters()
    assert json.loads(parked)["partner_id"] == 7654321
    assert report.succeeded == 1
    assert [task.entry_id for task in stack.tasks()] == [entry.id]


def test_drain_is_bounded_and_says_when_work_is_left(stack: ProductStack) -> None:
    for _ in range(3):
        stack.send_raw("not an event")

    report = stack.poller.drain(max_batches=2)

    assert len(report.batches) == 2
    assert report.empty is False
    assert stack.events_left() == 3


def test_without_a_short_retry_visibility_failed_records_wait_for_the_queue_timeout(stack: ProductStack) -> None:
    honest = SqsPoller.for_function(stack.aws, stack.runtime, "WorkerFunction")
    stack.send_raw("not an event")

    first = honest.poll_once()
    second = honest.poll_once()
    report = honest.drain()

    assert first is not None and len(first.failed) == 1
    assert second is None  # invisible for the queue's visibility timeout (750 s), as in Lambda
    assert report.empty is False and honest.in_flight() == 1
