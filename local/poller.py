"""Lambda's SQS event source, locally: receive batches from a queue and invoke the consuming function in-process.

What it does the way Lambda's poller does (AWS Lambda developer guide, "Using Lambda with Amazon SQS"):

- receives up to the mapping's ``BatchSize`` messages (with their attributes, ``ApproximateReceiveCount`` included)
  and invokes the function with the SQS event shape;
- with ``ReportBatchItemFailures`` deletes only the records the response does not list in ``batchItemFailures``;
  without it, any error fails the whole batch; a handler that raises fails the whole batch either way;
- leaves failed messages in the queue: they come back when their visibility timeout expires, and moto moves a message
  to the dead-letter queue once it has been received more than the queue's ``maxReceiveCount`` (its RedrivePolicy).

Only for tests and the demo: ``failed_visibility_seconds`` shortens the wait before a failed message reappears
(``ChangeMessageVisibility``, as a shorter queue visibility would), so retries happen without real waiting. Every loop
is bounded: :meth:`SqsPoller.drain` stops when the queue is empty or after ``max_batches``, never runs forever.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.stack import REGION, LocalAwsStack, QueueEventSource

DEFAULT_MAX_BATCHES = 200


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One invocation: the message ids it carried, those that failed, and the handler's exception if it raised."""

    message_ids: tuple[str, ...]
    failed: tuple[str, ...]
    error: str | None = None

    @property
    def succeeded(self) -> tuple[str, ...]:
        return tuple(message_id for message_id in self.message_ids if message_id not in self.failed)


@dataclass(slots=True)
class DrainReport:
    """What :meth:`SqsPoller.drain` did. ``empty`` is False when it stopped at its bound with work left."""

    batches: list[BatchResult] = field(default_factory=list)
    empty: bool = False

    @property
    def succeeded(self) -> int:
        return sum(len(batch.succeeded) for batch in self.batches)

    @property
    def failed(self) -> int:
        return sum(len(batch.failed) for batch in self.batches)


class SqsPoller:
    """Polls the queue of one SQS event source mapping and invokes its function through ``runtime``."""

    def __init__(
        self,
        stack: LocalAwsStack,
        runtime: LocalLambdaRuntime,
        source: QueueEventSource,
        *,
        failed_visibility_seconds: int | None = None,
    ) -> None:
        self._sqs = stack.client("sqs")
        self._runtime = runtime
        self.source = source
        self._failed_visibility = failed_visibility_seconds
        self._first_invocation = threading.Lock()
        self._loaded = False

    @classmethod
    def for_function(
        cls,
        stack: LocalAwsStack,
        runtime: LocalLambdaRuntime,
        function_id: str,
        *,
        failed_visibility_seconds: int | None = None,
    ) -> SqsPoller:
        """The poller of ``function_id``'s (only) SQS event source."""
        sources = [s for s in stack.queue_sources if s.function.logical_id == function_id]
        if len(sources) != 1:
            raise ValueError(f"{function_id} has {len(sources)} SQS event sources, expected one")
        return cls(stack, runtime, sources[0], failed_visibility_seconds=failed_visibility_seconds)

    # -- one batch -------------------------------------------------------------------------------------------

    def receive(self) -> list[dict[str, Any]]:
        """Receive up to ``BatchSize`` visible messages (they become invisible for the queue's visibility timeout)."""
        response = self._sqs.receive_message(
            QueueUrl=self.source.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))

    def invoke(self, messages: list[dict[str, Any]]) -> BatchResult:
        """Invoke the function with ``messages`` and settle them: delete successes, return failures to the queue."""
        ids = tuple(str(message["MessageId"]) for message in messages)
        event = {"Records": [self._record(message) for message in messages]}
        error: str | None = None
        try:
            response = self._call(event)
            failed = self._failed_ids(response, ids)
        except Exception as exc:  # a raising handler fails the whole batch, as in Lambda
            error = f"{type(exc).__name__}: {exc}"
            failed = ids
        by_id = {str(message["MessageId"]): message for message in messages}
        self._delete([by_id[message_id] for message_id in ids if message_id not in failed])
        self._return_to_queue([by_id[message_id] for message_id in failed])
        return BatchResult(ids, tuple(failed), error)

    def poll_once(self) -> BatchResult | None:
        """Receive one batch and invoke the function; ``None`` when nothing was visible."""
        messages = self.receive()
        return self.invoke(messages) if messages else None

    # -- until empty -----------------------------------------------------------------------------------------

    def drain(
        self,
        *,
        max_batches: int = DEFAULT_MAX_BATCHES,
        concurrency: int = 1,
        wait_for_in_flight_seconds: float = 0.0,
    ) -> DrainReport:
        """Poll until the queue has no visible or in-flight messages, or ``max_batches`` invocations ran.

        ``concurrency`` > 1 invokes that many batches at once (several Lambda instances). Messages delayed with
        ``DelaySeconds`` are not waited for. In-flight (invisible) messages are waited for at most
        ``wait_for_in_flight_seconds`` in total.
        """
        report = DrainReport()
        deadline = time.monotonic() + wait_for_in_flight_seconds
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            while len(report.batches) < max_batches:
                batches = []
                for _ in range(min(concurrency, max_batches - len(report.batches))):
                    messages = self.receive()
                    if not messages:
                        break
                    batches.append(messages)
                if batches:
                    report.batches.extend(pool.map(self.invoke, batches))
                    continue
                if self.in_flight() == 0:
                    report.empty = True
                    return report
                if time.monotonic() >= deadline:
                    return report
                time.sleep(0.05)
        return report

    def in_flight(self) -> int:
        """Messages received but neither deleted nor visible again yet."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.source.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))

    # -- internals -------------------------------------------------------------------------------------------

    def _call(self, event: dict[str, Any]) -> Any:
        function = self.source.function
        if self._loaded:
            return self._runtime.invoke(function.logical_id, event)
        # The first invocation imports the handler module: never twice concurrently.
        with self._first_invocation:
            result = self._runtime.invoke(function.logical_id, event)
            self._loaded = True
            return result

    def _failed_ids(self, response: Any, ids: tuple[str, ...]) -> tuple[str, ...]:
        if not self.source.report_batch_item_failures:
            return ()
        if not isinstance(response, Mapping) or not isinstance(response.get("batchItemFailures"), list):
            return ids  # an unreadable partial-batch response fails the batch (Lambda does the same)
        failed = [str(item.get("itemIdentifier")) for item in response["batchItemFailures"]]
        if any(item not in ids for item in failed):
            return ids
        return tuple(message_id for message_id in ids if message_id in failed)

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        body = str(message["Body"])
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's checksum
            "eventSource": "aws:sqs",
            "eventSourceARN": self.source.queue_arn,
            "awsRegion": REGION,
        }

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)]
            response = self._sqs.delete_message_batch(QueueUrl=self.source.queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"could not delete processed messages: {json.dumps(response['Failed'])}")

    def _return_to_queue(self, messages: list[dict[str, Any]]) -> None:
        if self._failed_visibility is None:
            return  # visible again when the queue's visibility timeout expires, as in Lambda
        for message in messages:
            self._sqs.change_message_visibility(
                QueueUrl=self.source.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=self._failed_visibility,
            )


def _lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API message attributes in the shape Lambda's event uses (camelCase keys)."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
    return converted


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible + in-flight + delayed messages of a queue (for checks like "the DLQ holds one message")."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)
