"""SQS adapter for the events queue: one normalized event per message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kauto.aws.clients import sqs_client
from kauto.errors import QueueUnavailableError
from kauto.models import KalturaEvent


class SqsEventQueue:
    """Sends :class:`KalturaEvent` messages to the events queue (``EVENTS_QUEUE_URL``)."""

    def __init__(self, queue_url: str, client: Callable[[], Any] = sqs_client) -> None:
        self._queue_url = queue_url
        self._client = client

    def send(self, event: KalturaEvent) -> str:
        """Send ``event`` and return the SQS message id once SQS has durably stored it.

        Raises :class:`QueueUnavailableError` (after the client's bounded retries) when SQS did not accept it.
        """
        try:
            response = self._client().send_message(QueueUrl=self._queue_url, MessageBody=event.to_json())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            raise QueueUnavailableError("sqs", "SendMessage", code) from exc
        except BotoCoreError as exc:
            raise QueueUnavailableError("sqs", "SendMessage", type(exc).__name__) from exc
        return str(response["MessageId"])
