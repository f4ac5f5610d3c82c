"""ReportJobsQueue: where job steps and digest requests go (``REPORT_JOBS_QUEUE_URL``), and its in-memory fake."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kauto.aws.clients import sqs_client
from kauto.aws.queue import check_delay, send_message
from kauto.weekly.messages import WeeklyMessage, parse_message


class JobQueue(Protocol):
    """Port: send a weekly message, visible after ``delay_seconds`` (at most 900, SQS's limit)."""

    def send(self, message: WeeklyMessage, delay_seconds: int = 0) -> str:
        """Enqueue ``message``; returns the message id once the queue has stored it."""
        ...


class SqsJobQueue:
    """:class:`JobQueue` over SQS."""

    def __init__(self, queue_url: str, client: Callable[[], Any] = sqs_client) -> None:
        self._queue_url = queue_url
        self._client = client

    def send(self, message: WeeklyMessage, delay_seconds: int = 0) -> str:
        """Send ``message``; raises :class:`QueueUnavailableError` when SQS did not accept it."""
        return send_message(self._client, self._queue_url, message.to_json(), delay_seconds)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """What :class:`InMemoryJobQueue` was asked to send."""

    message_id: str
    message: WeeklyMessage
    delay_seconds: int


class InMemoryJobQueue:
    """Fake :class:`JobQueue` for unit tests: ``sent`` lists every message in order (thread-safe).

    Messages go through their JSON body and back, as SQS would carry them.
    """

    def __init__(self) -> None:
        self.sent: list[QueuedMessage] = []
        self._lock = threading.Lock()

    def send(self, message: WeeklyMessage, delay_seconds: int = 0) -> str:
        check_delay(delay_seconds)
        copy = parse_message(message.to_json())
        message_id = uuid.uuid4().hex
        with self._lock:
            self.sent.append(QueuedMessage(message_id, copy, delay_seconds))
        return message_id

    def take(self) -> list[QueuedMessage]:
        """Everything sent so far, removed from the fake (what a consumer would receive next)."""
        with self._lock:
            taken, self.sent = self.sent, []
        return taken
