"""ReportJobsQueue: where job steps and digest requests go (``REPORT_JOBS_QUEUE_URL``), and its in-memory fake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kauto.aws.clients import sqs_client
from kauto.aws.queue import send_message
from kauto.weekly.messages import WeeklyMessage


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
