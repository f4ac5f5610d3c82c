"""The event sink the automations re-enqueue through: SqsEventQueue's delay and its in-memory fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kauto.aws.queue import SqsEventQueue
from kauto.models import KalturaEvent
from kauto_local.fakes import InMemoryEventQueue
from moto import mock_aws
from reach_fakes import entry_ready_event


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_delayed_event_is_not_visible_before_its_delay(sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue = SqsEventQueue(queue_url, client=lambda: sqs)

    queue.send(entry_ready_event(), delay_seconds=300)
    queue.send(entry_ready_event("1_now"))

    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    (visible,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert KalturaEvent.from_json(visible["Body"]).entry_id == "1_now"


@pytest.mark.parametrize("delay", [-1, 901])
def test_delays_sqs_would_refuse_are_refused_before_sending(delay: int) -> None:
    sent: list[Any] = []
    queue = SqsEventQueue("https://queue.invalid/events", client=lambda: sent.append(1))

    with pytest.raises(ValueError, match="delay_seconds"):
        queue.send(entry_ready_event(), delay_seconds=delay)
    with pytest.raises(ValueError, match="delay_seconds"):
        InMemoryEventQueue().send(entry_ready_event(), delay_seconds=delay)
    assert sent == []


def test_in_memory_queue_records_events_as_sqs_would_carry_them() -> None:
    queue = InMemoryEventQueue()

    message_id = queue.send(entry_ready_event(), delay_seconds=60)

    (queued,) = queue.sent
    assert queued.message_id == message_id
    assert queued.delay_seconds == 60
    assert queued.event == entry_ready_event()
