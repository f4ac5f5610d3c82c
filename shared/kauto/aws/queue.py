"""SQS adapter for the events queue: one normalized event per message.

:class:`SqsEventQueue` is used by the webhook (enqueue a delivery) and by the automations (the sweep enqueues what it
finds; the worker may re-enqueue with a delay). :class:`InMemoryEventQueue` is its fake for unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.clients import sqs_client
from kauto.errors import QueueUnavailableError
from kauto.models import KalturaEvent

MAX_DELAY_SECONDS = 900
"""SQS accepts a per-message delay of at most 15 minutes."""


def check_delay(delay_seconds: int) -> None:
    """Refuse a delay SQS would reject."""
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int):
        raise TypeError("delay_seconds must be an int")
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}")


class SqsEventQueue:
    """Sends :class:`KalturaEvent` messages to the events queue (``EVENTS_QUEUE_URL``)."""

    def __init__(self, queue_url: str, client: Callable[[], Any] = sqs_client) -> None:
        self._queue_url = queue_url
        self._client = client

    def send(self, event: KalturaEvent, delay_seconds: int = 0) -> str:
        """Send ``event`` (visible after ``delay_seconds``) and return the SQS message id once SQS has stored it.

        Raises :class:`QueueUnavailableError` (after the client's bounded retries) when SQS did not accept it.
        """
        return send_message(self._client, self._queue_url, event.to_json(), delay_seconds)


def send_message(client: Callable[[], Any], queue_url: str, body: str, delay_seconds: int = 0) -> str:
    """SendMessage ``body`` (visible after ``delay_seconds``); the message id once SQS has stored it.

    Raises :class:`QueueUnavailableError` (after the client's bounded retries) when SQS did not accept it.
    """
    check_delay(delay_seconds)
    request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
    if delay_seconds:
        request["DelaySeconds"] = delay_seconds
    try:
        response = client().send_message(**request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        raise QueueUnavailableError("sqs", "SendMessage", code) from exc
    except BotoCoreError as exc:
        raise QueueUnavailableError("sqs", "SendMessage", type(exc).__name__) from exc
    return str(response["MessageId"])
