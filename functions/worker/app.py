"""Worker function: consumes EventsQueue and runs the automation of each event, reporting partial batch failures.

Thin by design: routing and the error classification live in :mod:`kauto.automations.router`. A record whose
handling raises is reported as failed (only that record returns to the queue, then the dead-letter queue after
``maxReceiveCount`` tries); the others are deleted.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from kauto.automations.audit import delivery_failed_fact, notification_fact
from kauto.automations.deps import AutomationDeps, build_deps
from kauto.automations.router import handle_event
from kauto.automations.telemetry import count, logger
from kauto.models import KalturaEvent

_RECORD_KEYS = ("partner_id", "kind", "dedupe_key", "object_id", "message_id")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Handle one SQS batch; returns ``{"batchItemFailures": [...]}`` naming the records to retry."""
    deps = build_deps(context)
    try:
        # A processor per invocation: it holds the batch's results, and the local runner may invoke concurrently.
        return process_partial_response(
            event=event,
            record_handler=lambda record: handle_record(record, deps),
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    finally:
        deps.audit.flush()  # one audit object per partner and day for the whole batch


def handle_record(record: SQSRecord, deps: AutomationDeps) -> str:
    """Parse one message into a :class:`KalturaEvent` and route it; raises to fail (and retry) the record."""
    logger.thread_safe_append_keys(message_id=record.message_id)
    automation_event: KalturaEvent | None = None
    try:
        automation_event = KalturaEvent.from_json(record.body)
        logger.thread_safe_append_keys(
            partner_id=automation_event.partner_id,
            kind=automation_event.kind.value,
            dedupe_key=automation_event.dedupe_key,
            object_id=automation_event.object_id,
        )
        deps.audit.record(notification_fact(automation_event, attempt=_attempt(record)))
        outcome = handle_event(automation_event, deps)
    except Exception as error:
        # The message only: errors may quote Kaltura's text, never a KS or secret (scrubbed), and bodies are not
        # logged at all.
        logger.warning(
            "record failed, it will be retried",
            extra={"error": type(error).__name__, "code": getattr(error, "code", None)},
        )
        count("RecordFailed", error=type(error).__name__)
        if automation_event is not None:
            deps.audit.record(delivery_failed_fact(automation_event, attempt=_attempt(record), error=error))
        raise
    finally:
        logger.thread_safe_remove_keys(list(_RECORD_KEYS))
    logger.info("record handled", extra={"outcome": outcome.value})
    return outcome.value


def _attempt(record: SQSRecord) -> int | None:
    """Which delivery of this queue message this is (SQS's ``ApproximateReceiveCount``; above 1: a redelivery)."""
    count_text = str(record.raw_event.get("attributes", {}).get("ApproximateReceiveCount", ""))
    return int(count_text) if count_text.isdigit() else None
