"""Move messages from a dead-letter queue back to the queue they came from.

Each message is received from the DLQ, sent to the source queue with the same body and message attributes, and
deleted from the DLQ **only after** the send succeeded. A failure between the send and the delete leaves the message
in the DLQ as well, so a later replay sends it once more: that is safe because every consumer is idempotent (events
dedupe on their key and ledger rows, report jobs on their run and job). Nothing is ever deleted unsent.

A dry run receives the messages to list them and then makes them visible again at once (visibility timeout 0), so
nothing is moved or hidden for longer than the listing takes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kauto.errors import DependencyUnavailableError

SQS_BATCH = 10
"""SQS returns at most 10 messages per receive."""
RECEIVE_WAIT_SECONDS = 1
"""Long polling: an empty answer after waiting means the DLQ is (practically) drained, unlike short polling."""
REPLAY_VISIBILITY_SECONDS = 120
"""How long a message being replayed stays hidden in the DLQ: enough for one send and one delete."""
_DATA_TYPE_FIELDS = ("StringValue", "BinaryValue")


class ReplayError(DependencyUnavailableError):
    """SQS refused a call; ``moved`` messages had already been moved (and deleted from the DLQ) before it."""

    def __init__(self, operation: str, code: str, moved: int) -> None:
        super().__init__("sqs", operation, f"{code} after {moved} message(s) moved")
        self.code = code
        self.moved = moved


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What a listing shows of a message: ids and how often it was received, plus a short hint of its body.

    The hint is the body's ``kind``/``type`` and ``partner_id`` when the body is a JSON object (never the whole body:
    it may carry object fields); ``subject`` is the event's kind, partner and object id when it is an automation
    event (what ``kauto-ops explain`` takes).
    """

    message_id: str
    receive_count: int | None
    hint: str
    subject: tuple[str, int, str] | None = None


@dataclass(slots=True)
class ReplayResult:
    """Messages listed (dry run) or moved, in the order they were handled."""

    dry_run: bool
    messages: list[DeadLetter] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many messages were listed or moved."""
        return len(self.messages)


def replay_dead_letters(
    sqs: Any,
    *,
    dead_letter_url: str,
    target_url: str,
    max_messages: int | None = None,
    dry_run: bool = False,
    wait_seconds: int = RECEIVE_WAIT_SECONDS,
    message_ids: Collection[str] | None = None,
) -> ReplayResult:
    """Move up to ``max_messages`` (all when ``None``) from ``dead_letter_url`` to ``target_url``; with
    ``message_ids``, only those messages (the others are left in the dead-letter queue, visible again at once).

    Each receive long-polls ``wait_seconds``; the replay ends at the first receive that brings nothing new.

    Raises :class:`ReplayError` when SQS refuses a call; messages already moved stay moved.
    """
    if max_messages is not None and max_messages < 1:
        raise ValueError("max_messages must be at least 1")
    result = ReplayResult(dry_run=dry_run)
    seen: set[str] = set()
    to_release: list[str] = []
    try:
        while max_messages is None or result.count < max_messages:
            wanted = SQS_BATCH if max_messages is None else min(SQS_BATCH, max_messages - result.count)
            batch = _receive(sqs, dead_letter_url, wanted, wait_seconds, result.count, dry_run)
            fresh = [message for message in batch if message["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                if message_ids is not None and message["MessageId"] not in message_ids:
                    to_release.append(message["ReceiptHandle"])
                    continue
                if dry_run:
                    to_release.append(message["ReceiptHandle"])
                else:
                    _move(sqs, message, dead_letter_url, target_url, result.count)
                result.messages.append(_describe(message))
            if message_ids is not None and len(result.messages) == len(message_ids):
                break
    finally:
        if to_release:
            _release(sqs, dead_letter_url, to_release)
    return result


def _receive(
    sqs: Any, queue_url: str, wanted: int, wait_seconds: int, moved: int, dry_run: bool
) -> list[dict[str, Any]]:
    try:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=wait_seconds,
            # A dry run keeps what it listed hidden until the listing ends, so no message is listed twice.
            VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
            AttributeNames=["ApproximateReceiveCount"],
        )
    except (ClientError, BotoCoreError) as error:
        raise ReplayError("ReceiveMessage", _code(error), 0 if dry_run else moved) from error
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def _move(sqs: Any, message: Mapping[str, Any], dead_letter_url: str, target_url: str, moved: int) -> None:
    request: dict[str, Any] = {"QueueUrl": target_url, "MessageBody": message["Body"]}
    attributes = _message_attributes(message.get("MessageAttributes") or {})
    if attributes:
        request["MessageAttributes"] = attributes
    try:
        sqs.send_message(**request)
    except (ClientError, BotoCoreError) as error:
        # Not sent: the message stays in the DLQ and becomes visible again after the visibility timeout.
        raise ReplayError("SendMessage", _code(error), moved) from error
    try:
        sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
    except (ClientError, BotoCoreError) as error:
        # Sent but still in the DLQ: a later replay sends it again, which the idempotent consumers absorb.
        raise ReplayError("DeleteMessage", _code(error), moved + 1) from error


def _release(sqs: Any, queue_url: str, receipt_handles: list[str]) -> None:
    """Make listed messages visible again (dry run)."""
    for start in range(0, len(receipt_handles), SQS_BATCH):
        batch = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(receipt_handles[start : start + SQS_BATCH])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=batch)
        except (ClientError, BotoCoreError):
            # Only cosmetic: the messages reappear by themselves when their visibility timeout ends.
            return


def _message_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Attributes as SendMessage takes them (ReceiveMessage adds list fields SendMessage refuses)."""
    copied: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        entry: dict[str, Any] = {"DataType": value["DataType"]}
        for key in _DATA_TYPE_FIELDS:
            if key in value:
                entry[key] = value[key]
        copied[name] = entry
    return copied


def _describe(message: Mapping[str, Any]) -> DeadLetter:
    count = message.get("Attributes", {}).get("ApproximateReceiveCount")
    return DeadLetter(
        message_id=str(message["MessageId"]),
        receive_count=int(count) if isinstance(count, str) and count.isdigit() else None,
        hint=body_hint(str(message.get("Body", ""))),
        subject=event_subject(str(message.get("Body", ""))),
    )


def event_subject(body: str) -> tuple[str, int, str] | None:
    """``(kind, partner id, object id)`` of an automation event body (ids only), else None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind, partner, object_id = data.get("kind"), data.get("partner_id"), data.get("object_id") or data.get("entry_id")
    if isinstance(kind, str) and isinstance(partner, int) and isinstance(object_id, str) and object_id:
        return kind, partner, object_id
    return None


def body_hint(body: str) -> str:
    """``kind=session_ended partner_id=123`` for a JSON object body, else ``<n bytes>``."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = [
            f"{key}={data[key]}"
            for key in ("kind", "type", "partner_id", "week", "report")
            if isinstance(data.get(key), str | int) and not isinstance(data.get(key), bool)
        ]
        if parts:
            return " ".join(parts)
    return f"<{len(body.encode('utf-8'))} bytes>"


def _code(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
